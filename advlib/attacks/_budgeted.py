"""Fixed-epsilon attacks that search the epsilon ball from the criterion's gradient target.

:class:`BudgetedSearch` is the ``perturb`` of APGD and Square, written once: it reads the
classes to attack (labels, or the targets of a targeted criterion) and returns the inputs
unchanged when there is nothing to search (a zero budget or no inputs); otherwise it hands the
call to ``_search`` as one :class:`Task`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import NamedTuple

import eagerpy as ep

from ..criteria import Criterion
from ..models.base import Model
from .base import FixedEpsilonAttack


class Task(NamedTuple):
    """One ``perturb`` call with a positive budget and at least one input."""

    model: Model
    inputs: ep.Tensor
    criterion: Criterion
    epsilon: float
    classes: ep.Tensor  # the labels, or the targets of a targeted criterion
    targeted: bool


class BudgetedSearch(FixedEpsilonAttack):
    """A fixed-epsilon attack that searches in :meth:`_search`."""

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        if epsilon == 0 or inputs.shape[0] == 0:
            return inputs
        return self._search(Task(model, inputs, criterion, epsilon, classes, targeted))

    @abstractmethod
    def _search(self, task: Task) -> ep.Tensor:
        """Perturbed inputs within ``task.epsilon`` of ``task.inputs`` and the bounds."""
