"""Running an attack on some rows of a batch only (the samples still robust), then writing the
results back. Rows are chosen on the host between attacks, and inside a loop only at its
sparse checks (:class:`Shrinking`), never per step."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from .._tensors import atleast_kd
from ..criteria import Criterion
from ..criteria.labels import map_labels

if TYPE_CHECKING:
    from ..models.base import Model


class Subset:
    """Rows ``rows`` (host-side indices, repeats allowed) of a batch of ``size`` samples.

    Build one with :meth:`of_mask`. For models that compile their steps it pads the selection
    (repeating its first row) to one of a few sizes, at most 25% larger, so that compiled steps
    see few distinct batch sizes (each new size is a new trace under ``jax.jit`` /
    ``tf.function``). Only the first :attr:`count` rows of a taken tensor are the selected
    samples; the rest is padding whose results are ignored.
    """

    def __init__(self, like: ep.Tensor, size: int, rows: np.ndarray, count: int) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self._like = like
        self.size = size
        self.count = count
        self.rows_np = rows[:count]
        self.everything = (
            count == size and len(rows) == size and bool(np.all(rows == np.arange(size)))
        )
        mask = np.zeros(size, dtype=bool)
        mask[rows] = True
        inverse = np.zeros(size, dtype=np.int64)
        inverse[rows[::-1]] = np.arange(len(rows))[::-1]  # first occurrence wins
        self._all_rows = rows
        self._rows = ep.from_numpy(like, rows)
        self._inverse = ep.from_numpy(like, inverse)
        self._mask = ep.from_numpy(like, mask)

    @classmethod
    def of_mask(cls, like: ep.Tensor, mask: np.ndarray, pad: bool = True) -> Subset:
        """The rows where the host-side bool ``mask`` is True, padded when ``pad`` (pass the
        model's ``compile_enabled``: eager frameworks gain nothing from padding)."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask)
        count = len(rows)
        padded = min(len(mask), padded_size(count)) if pad else count
        if 0 < count < padded:
            rows = np.concatenate([rows, np.full(padded - count, rows[0])])
        return cls(like, len(mask), rows, count)

    @property
    def all_rows(self) -> np.ndarray:
        """The rows of the full batch that :meth:`take` takes, padding included."""
        return self._all_rows

    def take(self, t: ep.Tensor) -> ep.Tensor:
        """The rows of a full-batch tensor (padding included)."""
        return t if self.everything else t[self._rows]

    def selected(self, part: np.ndarray) -> np.ndarray:
        """The entries of a host-side per-row result of :meth:`take` that are selected rows."""
        return part[: self.count]

    def rows_where(self, flags: ep.Tensor) -> np.ndarray:
        """The rows of the full batch (host-side indices) where the per-row bool ``flags`` of
        :meth:`take` hold, padding left out (one device-to-host transfer)."""
        rows: np.ndarray = self.rows_np[self.selected(host_bool(flags))]
        return rows

    def put(self, full: ep.Tensor, part: ep.Tensor) -> ep.Tensor:
        """``full`` with the selected rows replaced by those of ``part`` (a new tensor)."""
        if self.everything:
            return part
        if self.count == 0:
            return full
        return ep.where(atleast_kd(self._mask, full.ndim), part[self._inverse], full)

    def narrowed(self, start: int, stop: int) -> Subset:
        """The subset made of rows ``start:stop`` of :meth:`take`."""
        rows = self._all_rows[start:stop]
        return Subset(self._like, self.size, rows, len(rows))

    def repeated(self, k: int) -> Subset:
        """The same rows in each of ``k`` stacked copies of the batch."""
        rows = np.concatenate([self._all_rows + j * self.size for j in range(k)])
        return Subset(self._like, self.size * k, rows, len(rows))

    def criterion(self, parent: Criterion, inputs: ep.Tensor, outputs: ep.Tensor) -> Criterion:
        """``parent`` restricted to the rows of :meth:`take`; ``inputs``/``outputs`` (full
        batch) fill the other rows when ``parent`` is evaluated."""
        if self.everything:
            return parent
        restricted = map_labels(parent, self.take)
        if restricted is not None:  # a label criterion: take its labels once
            return restricted
        return _SubsetCriterion(parent, self, inputs, outputs)


class Shrinking:
    """The rows of a batch that an iterative run still works on, and the results of the rows
    it finished: at each :meth:`check` the results of newly finished samples are settled
    (later steps change them no more), and the finished samples leave the loop, so they stop
    costing. On eager frameworks at every check; on compiled ones once at most half the rows
    remain (each new batch size is a new trace): either way a sample's results do not depend
    on its batch.

    ``copies``: the batch holds that many stacked runs of the same samples, copy ``j`` standing
    for the ``j``-th of successive runs, each only on the samples that the runs before it did
    not finish (:func:`~advlib.attacks._restarts.stacked_rounds`). A copy is then also finished
    once an earlier copy of its sample is: it is a run that would not have taken place."""

    def __init__(self, size: int, compiled: bool, copies: int = 1) -> None:
        self.size, self.compiled = size, compiled
        self.rows = np.arange(size)  # the batch's row of each current row, padding included
        self.count = size  # current rows that are not padding
        self.settled = np.zeros(size, dtype=bool)  # batch rows whose results are final
        self.full: tuple[ep.Tensor, ...] | None = None  # every row's results, once stored
        self.copies, self.samples = copies, size // copies
        self.first = np.full(self.samples, copies)  # per sample, its first finished copy

    def check(
        self, finished: ep.Tensor, results: Callable[[], tuple[ep.Tensor, ...]]
    ) -> tuple[bool, Subset | None]:
        """Whether every sample is ``finished`` (per current row), and the subset of the
        current rows to go on with (None: all of them, dropping does not pay). ``results``
        gives the current rows' results, read where samples newly finished. One transfer."""
        real = np.arange(len(self.rows)) < self.count
        flags = host_bool(finished) & real
        if self.copies > 1:
            sample, copy = self.rows % self.samples, self.rows // self.samples
            np.minimum.at(self.first, sample[flags], copy[flags])
            flags = real & (flags | (copy > self.first[sample]))
        new = flags & ~self.settled[self.rows]
        if new.any():
            self._store(results(), new)
            self.settled[self.rows[new]] = True
        running = real & ~flags
        remaining = int(running.sum())
        if remaining == 0:
            return True, None
        if remaining == self.count or (self.compiled and 2 * remaining > self.count):
            return False, None
        subset = Subset.of_mask(finished, running, self.compiled)
        self.rows, self.count = self.rows[subset.all_rows], subset.count
        return False, subset

    def results(self, current: tuple[ep.Tensor, ...]) -> tuple[ep.Tensor, ...]:
        """Every row's results: the settled ones, and ``current`` (the current rows') for
        the others."""
        if self.full is None:
            return current
        real = np.arange(len(self.rows)) < self.count
        self._store(current, real & ~self.settled[self.rows])
        return self.full

    def _store(self, current: tuple[ep.Tensor, ...], which: np.ndarray) -> None:
        """``full`` with the current rows ``which`` (a host mask) from ``current``."""
        if self.full is None:  # nothing dropped yet: the current rows are the batch
            self.full = current
            return
        local = np.flatnonzero(which)
        if len(local) == 0:
            return
        pick = Subset(current[0], len(which), local, len(local))
        into = Subset(current[0], self.size, self.rows[local], len(local))
        self.full = tuple(into.put(f, pick.take(c)) for f, c in zip(self.full, current))


def take_rows(subset: Subset, tree: Any) -> Any:
    """``tree`` (tensors in nested tuples) with the per-sample tensors (not the 0-d ones)
    restricted to the rows of ``subset``."""
    if isinstance(tree, tuple):
        parts = [take_rows(subset, t) for t in tree]
        return type(tree)(*parts) if hasattr(tree, "_fields") else tuple(parts)
    if isinstance(tree, ep.Tensor) and tree.ndim > 0:
        return subset.take(tree)
    return tree


def padded_size(count: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ... (four sizes per
    doubling) that holds ``count``."""
    if count <= 8:
        return count
    octave = 1 << (count.bit_length() - 3)  # count lies in [4 * octave, 8 * octave)
    return -(-count // octave) * octave


class _SubsetCriterion(Criterion):
    """Evaluates any criterion on some rows by padding the other rows with fixed values."""

    def __init__(
        self, parent: Criterion, subset: Subset, inputs: ep.Tensor, outputs: ep.Tensor
    ) -> None:
        self.parent, self.subset = parent, subset
        self.inputs, self.outputs = inputs, outputs

    def __repr__(self) -> str:
        return f"{self.parent!r}[{self.subset.count} of {self.subset.size} rows]"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        full_inputs = self.subset.put(self.inputs, perturbed)
        full_outputs = self.subset.put(self.outputs, outputs)
        # padding rows get the verdict of the row they repeat; callers ignore them
        return self.subset.take(self.parent(full_inputs, full_outputs))

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        return self

    def sliced(self, start: int, stop: int) -> Criterion:
        return _SubsetCriterion(
            self.parent, self.subset.narrowed(start, stop), self.inputs, self.outputs
        )

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        classes, targeted = self.parent.gradient_target()
        return self.subset.take(classes), targeted


def repeated(criterion: Criterion, k: int) -> Criterion | None:
    """The criterion for ``k`` copies of the batch stacked along the batch axis (copy ``i`` in
    rows ``i * N`` to ``(i + 1) * N``), so one call judges many perturbations per sample; None
    for criterion types it does not know (callers then judge each copy separately)."""
    if k == 1:
        return criterion
    if isinstance(criterion, _SubsetCriterion):
        parent = repeated(criterion.parent, k)
        if parent is None:
            return None
        return _SubsetCriterion(
            parent,
            criterion.subset.repeated(k),
            tile(criterion.inputs, k),
            tile(criterion.outputs, k),
        )
    return map_labels(criterion, lambda t: tile(t, k))


def tile(t: ep.Tensor, k: int) -> ep.Tensor:
    """``k`` copies of the batch ``t`` stacked along the batch axis."""
    return t if k == 1 else ep.concatenate([t] * k, axis=0)


def host_bool(t: ep.Tensor) -> np.ndarray:
    """A bool tensor as a NumPy array (one device-to-host transfer)."""
    return np.array(t.numpy(), dtype=bool)
