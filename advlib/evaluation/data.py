"""Turn what users pass as ``data`` into NumPy batches of bounded size.

Accepted: a pair ``(inputs, labels)`` of arrays or tensors of any framework, a torch
``DataLoader``, a ``tf.data.Dataset``, or any iterable of ``(inputs, labels)`` batches.
Batches are converted to NumPy one at a time, so only one batch is in memory at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..models import registry

Batch = tuple[np.ndarray, np.ndarray]
#: A block: inputs, labels and the samples' ids.
Block = tuple[np.ndarray, np.ndarray, np.ndarray]


def to_numpy(value: Any, name: str) -> np.ndarray:
    """An array or a tensor of any registered backend (its :attr:`Backend.to_numpy`) as a NumPy
    array (a copy only where needed)."""
    if isinstance(value, np.ndarray):
        return value
    raw = getattr(value, "raw", value)  # EagerPy tensors
    backend = registry.backend_of_type(type(raw))
    try:
        return np.asarray(raw if backend is None else backend.to_numpy(raw))
    except Exception as error:  # any failure to convert is the user's input type
        raise TypeError(
            f"{name}: expected an array or a tensor, got {type(value).__name__} ({error})"
        ) from None


def is_pair(data: Any) -> bool:
    """Whether ``data`` is one ``(inputs, labels)`` pair rather than a sequence of batches."""
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and hasattr(data[0], "shape")
        and hasattr(data[1], "shape")
    )


def progress_total(data: Any) -> tuple[int | None, str]:
    """The units :func:`iter_pieces` counts in all, and their name: samples for a pair of
    arrays, the data's batches when it has a length, else ``(None, "batch")`` (unknown)."""
    if is_pair(data):
        return len(data[0]), "sample"
    try:
        return len(data), "batch"
    except TypeError:
        return None, "batch"


def iter_batches(data: Any, batch_size: int | None) -> Iterator[Batch]:
    """``(inputs, labels)`` NumPy batches of at most ``batch_size`` samples.

    Args:
        data: see the module documentation.
        batch_size: the largest batch to yield; larger batches of ``data`` are split.
            None keeps the data's own batches (a pair of arrays is one batch).
    """
    for inputs, labels, _ in iter_pieces(data, batch_size):
        yield inputs, labels


def iter_pieces(
    data: Any, batch_size: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """The batches of :func:`iter_batches`, each with its share of :func:`progress_total`:
    its number of samples for a pair of arrays, else its fraction of the data's batch."""
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size: expected an int >= 1 or None, got {batch_size!r}")
    if is_pair(data):
        inputs, labels = data
        _check_lengths(len(inputs), len(labels), "data")
        step = len(inputs) if batch_size is None else batch_size
        for start in range(0, len(inputs), max(step, 1)):
            x, y = check_batch(inputs[start : start + step], labels[start : start + step], "data")
            yield x, y, len(y)
        return
    if isinstance(data, str | bytes | dict) or not hasattr(data, "__iter__"):
        raise TypeError(
            "data: expected a pair (inputs, labels), a torch DataLoader, a tf.data.Dataset or "
            f"an iterable of (inputs, labels) batches, got {type(data).__name__}"
        )
    for index, batch in enumerate(data):
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ValueError(
                f"data: batch {index} is not an (inputs, labels) pair "
                f"(got {type(batch).__name__}"
                + (f" of length {len(batch)})" if isinstance(batch, tuple | list) else ")")
            )
        inputs, labels = check_batch(batch[0], batch[1], f"data (batch {index})")
        step = max(len(inputs) if batch_size is None else batch_size, 1)
        pieces = max(math.ceil(len(inputs) / step), 1)
        for start in range(0, len(inputs), step):
            yield inputs[start : start + step], labels[start : start + step], 1 / pieces


def iter_blocks(
    data: Any, batch_size: int | None, indices: Any = None
) -> Iterator[tuple[Block, float]]:
    """The pieces of :func:`iter_pieces` as blocks with their samples' ids: ``indices[k]``
    for the data's ``k``-th sample, or ``k`` itself when ``indices`` is None."""
    ids = None if indices is None else check_indices(indices)
    if ids is not None and is_pair(data):
        _check_ids_length(len(ids), len(data[0]))
    position = 0
    for x, y, share in iter_pieces(data, batch_size):
        stop = position + len(y)
        if ids is not None and stop > len(ids):
            _check_ids_length(len(ids), stop, known=False)
        block_ids = np.arange(position, stop, dtype=np.int64) if ids is None else ids[position:stop]
        yield (x, y, block_ids), share
        position = stop
    if ids is not None and position != len(ids):
        _check_ids_length(len(ids), position)


def check_indices(indices: Any) -> np.ndarray:
    """``indices`` as distinct int64 sample ids of shape (N,)."""
    ids = to_numpy(indices, "indices")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(
            "indices: expected a 1-D array of integer sample ids, one per sample of the data, "
            f"got shape {ids.shape} and dtype {ids.dtype}"
        )
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"indices: sample ids must be distinct, got {values[counts > 1][:10].tolist()} "
            "more than once"
        )
    return ids.astype(np.int64)


def _check_ids_length(n_ids: int, n_samples: int, known: bool = True) -> None:
    """A ValueError unless there are as many ids as samples (``known``: ``n_samples`` is all
    the data's samples, else the number seen so far)."""
    if n_ids != n_samples:
        raise ValueError(
            f"indices: expected one id per sample of the data, got {n_ids} ids for "
            f"{'' if known else 'at least '}{n_samples} samples"
        )


def check_batch(inputs: Any, labels: Any, where: str) -> Batch:
    """One batch as NumPy arrays: float inputs (N, ...) and int64 labels (N,)."""
    x = to_numpy(inputs, f"{where}: inputs")
    y = to_numpy(labels, f"{where}: labels")
    if x.ndim < 2:
        raise ValueError(
            f"{where}: inputs must be a batch of shape (N, ...) with at least 2 dimensions, "
            f"got shape {x.shape}; a dataset of single samples needs batching "
            "(e.g. dataset.batch(128))"
        )
    if y.ndim != 1:
        raise ValueError(
            f"{where}: labels must have shape (N,), one class index per input, got shape "
            f"{y.shape}"
            + ("; one-hot labels need argmax(axis=-1)" if y.ndim == 2 else "")
            + (
                "; a dataset of single samples needs batching (e.g. .batch(128))"
                if y.ndim == 0
                else ""
            )
        )
    _check_lengths(len(x), len(y), where)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{where}: inputs must be numbers, got dtype {x.dtype}")
    if y.dtype.kind not in "iu":
        integral = y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)
        if not integral:
            raise TypeError(f"{where}: labels must be integer class indices, got dtype {y.dtype}")
    return x, y.astype(np.int64)


def _check_lengths(n_inputs: int, n_labels: int, where: str) -> None:
    if n_inputs != n_labels:
        raise ValueError(
            f"{where}: labels must have one entry per input, got {n_inputs} inputs "
            f"and {n_labels} labels"
        )
