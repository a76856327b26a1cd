"""The restart driver of APGD, APGD-T, FAB and AutoAttack.

Each of them runs in rounds (restarts, target classes, component attacks), every round only on
the samples that are not done yet, and writes the round's results back into the full batch. The
driver chooses the rows on the host before each round (one transfer), pads them for compiled
steps (see :class:`~advlib.attacks._subsets.Subset`), restricts the criterion to them, and stops
once no sample is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from ..criteria import Criterion
from ..models.base import Model
from ._subsets import Subset
from .base import current_ids


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
    for index in progress.steps(count):
        mask = remaining()
        if not mask.any():
            return
        subset = Subset.of_mask(inputs, mask, model.compile_enabled)
        yield Round(
            index, subset, subset.take(inputs), subset.criterion(criterion, inputs, outputs)
        )
