"""The restart driver of APGD, APGD-T, FAB and AutoAttack.

Each of them runs in rounds (restarts, target classes, component attacks), every round only on
the samples that are not done yet, and writes the round's results back into the full batch. The
driver chooses the rows on the host before each round (one transfer), pads them for compiled
steps (see :class:`~advlib.attacks._subsets.Subset`), restricts the criterion to them, and stops
once no sample is left.

When few samples are left, APGD and FAB stack several of their rounds into one batch
(:func:`stacked_rounds`): each step then costs its fixed per-call work once for all of them.
A stacked round drops a sample's copy as soon as an earlier copy finished it (see
:class:`~advlib.attacks._subsets.Shrinking`) and the results are read per sample from its first
copy that finished, so they are those of the rounds run one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from ..criteria import Criterion
from ..models.base import Model
from ._subsets import Subset, repeated, tile
from .base import chunk_rows, current_ids

#: Stacked rounds hold at most this many rows, and at most ``_STACK_ELEMENTS`` input elements.
#: Stacking saves the per-call work of every step (dozens of small ops); past a few hundred
#: rows a step is the model's work, which it does not reduce, and a larger batch can cost more
#: per row (the zoo CNN on a 2-core CPU: 3 x 99 rows took 0.77-0.89x the time of 3 runs in
#: turn, 3 x 165 rows 1.2-1.4x).
_STACK_ROWS = 256
_STACK_ELEMENTS = 2**24


@dataclass(frozen=True)
class Round:
    """One round: its number (0-based), the rows it runs on, their inputs and criterion."""

    index: int
    subset: Subset
    inputs: ep.Tensor
    criterion: Criterion

    def ids(self) -> np.ndarray:
        """The global ids of the round's rows (padding included), for the random numbers of
        an attack run on them (see :func:`~advlib.attacks.base.sample_ids`)."""
        outer = current_ids()
        rows = self.subset.all_rows
        return rows if outer is None else outer[rows]


def rounds(
    model: Model,
    inputs: ep.Tensor,
    outputs: ep.Tensor,
    criterion: Criterion,
    count: int,
    remaining: Callable[[], np.ndarray],
) -> Iterator[Round]:
    """Up to ``count`` rounds, each an equal share of the progress bar's portion, on the samples
    where the host-side bool mask ``remaining()`` holds; asked before every round, so the caller
    updates it from the round's results. Stops as soon as no sample remains.

    Args:
        model: the model attacked (whether it compiles decides the padding).
        inputs: the full batch, shape (N, ...).
        outputs: the model's logits for ``inputs`` (a criterion of some rows needs them).
        criterion: the criterion bound to the full batch.
        count: the largest number of rounds.
        remaining: returns the mask, shape (N,), of the samples still to attack.
    """
    for one in stacked_rounds(model, inputs, outputs, criterion, count, remaining, stack=False):
        yield Round(one.first, one.subset, one.inputs, one.criterion)


@dataclass(frozen=True)
class Stack:
    """Rounds ``first`` to ``first + copies - 1`` run at once on the rows of ``subset``: a
    batch of ``copies`` stacked copies of those rows (copy ``j`` runs round ``first + j``),
    its inputs and its criterion."""

    first: int
    copies: int
    subset: Subset
    inputs: ep.Tensor
    criterion: Criterion

    @property
    def indices(self) -> range:
        return range(self.first, self.first + self.copies)

    def tile(self, t: ep.Tensor) -> ep.Tensor:
        """The rows of a full-batch tensor, once per copy."""
        return tile(self.subset.take(t), self.copies)

    def per_copy(self, flags: np.ndarray) -> np.ndarray:
        """A host-side per-row array of the stacked batch as (copies, rows)."""
        return flags.reshape(self.copies, -1)

    def pick(self, t: ep.Tensor, copy: np.ndarray | None) -> ep.Tensor:
        """Row ``i`` of copy ``copy[i]``, for every row of the subset (None: one copy)."""
        if self.copies == 1 or copy is None:
            return t
        n = len(copy)
        return t[ep.from_numpy(t, copy * n + np.arange(n))]


def stacked_rounds(
    model: Model,
    inputs: ep.Tensor,
    outputs: ep.Tensor,
    criterion: Criterion,
    count: int,
    remaining: Callable[[], np.ndarray],
    stack: bool = True,
) -> Iterator[Stack]:
    """:func:`rounds`, with as many successive rounds stacked into one batch as
    ``_STACK_ROWS`` and ``_STACK_ELEMENTS`` allow for the samples remaining (on eager
    frameworks: a compiled step traces once per batch size, and runs its per-call work
    cheaply), and never more rows than the caller's chunk (its ``batch_size`` is what fits in
    memory). ``remaining()`` is asked before every stack; ``stack=False`` (rounds that depend
    on the results of the ones before) yields one round at a time."""
    following = 0
    for index in progress.steps(count):
        if index < following:  # run within the last stack
            continue
        mask = remaining()
        if not mask.any():
            return
        subset = Subset.of_mask(inputs, mask, model.compile_enabled)
        part = subset.criterion(criterion, inputs, outputs)
        copies = copies_that_fit(model, inputs, subset.count, count - index) if stack else 1
        judge = repeated(part, copies)
        if judge is None:  # a criterion type that cannot judge stacked copies
            copies, judge = 1, part
        following = index + copies
        yield Stack(index, copies, subset, tile(subset.take(inputs), copies), judge)


def copies_that_fit(model: Model, batch: ep.Tensor, rows: int, wanted: int) -> int:
    """How many stacked copies of ``rows`` rows of ``batch`` (the inputs an attack was given)
    one call may take, up to ``wanted``: within ``_STACK_ROWS`` rows, ``_STACK_ELEMENTS``
    input elements and the caller's chunk (or ``batch``); 1 on compiled frameworks, where
    every new batch size is a new trace."""
    if model.compile_enabled or rows == 0:
        return 1
    features = max(int(np.prod(batch.shape[1:])), 1)
    limit = min(_STACK_ROWS, max(chunk_rows() or 0, batch.shape[0]))
    return max(1, min(wanted, limit // rows, _STACK_ELEMENTS // (rows * features)))
