"""Contrast reduction: blend the inputs towards a flat grey image.

The flat image has every value at ``lower + target * (upper - lower)`` for the model's
bounds. :class:`L2ContrastReductionAttack` moves an L2 length epsilon towards it (never past
it); the two searches find, per sample, the smallest blend factor in [0, 1] that is
adversarial, by bisection or by a linear scan. Samples never fooled get factor 1, the flat
image itself (as in Foolbox).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model
from ..norms import l2
from ._minimization import Problem, check_float, check_int
from ._signatures import keyword_constructor
from .base import FixedEpsilonAttack
from .inversion import _FlexibleMinimizer

# Whether every sample was fooled is read every this many steps of the scan (a host sync).
_CHECK_EVERY = 10


def check_target(value: Any) -> float:
    """``target``: a number in [0, 1], where the flat image lies between the bounds."""
    checked = check_float(value, "target", positive=False)
    if checked > 1:
        raise ValueError(f"target: expected a number in [0, 1], got {value!r}")
    return checked


def towards_flat(model: Model, inputs: ep.Tensor, target: float) -> ep.Tensor:
    """The direction from ``inputs`` to the flat image at ``target`` of the bounds."""
    lower, upper = model.bounds
    direction: ep.Tensor = (lower + target * (upper - lower)) - inputs
    return direction


def blend(inputs: ep.Tensor, direction: ep.Tensor, factors: ep.Tensor) -> ep.Tensor:
    """``inputs + factor * direction`` with one factor per sample."""
    return inputs + atleast_kd(factors, inputs.ndim) * direction


class L2ContrastReductionAttack(FixedEpsilonAttack):
    """Moves each input an L2 length epsilon towards the flat image (never past it), then
    clips to the bounds. Deterministic; the criterion is not used.

    Args:
        target: where the flat image lies between the bounds, 0 (lower) to 1 (upper);
            default 0.5.
    """

    requires_grad = False
    norm = l2

    __init__ = keyword_constructor(target=0.5)

    def _configure(self, *, target: Any) -> None:
        self.target = check_target(target)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        direction = towards_flat(model, inputs, self.target)
        factors = ep.minimum(epsilon / ep.maximum(l2(direction), 1e-12), 1.0)
        return blend(inputs, direction, factors).clip(*model.bounds)


class _ContrastSearch(_FlexibleMinimizer):
    """The smallest adversarial blend towards the flat image per sample: the factor in [0, 1]
    that :meth:`_search` finds (1, the flat image itself, where none is adversarial)."""

    target: float

    def _configure(self, *, distance: Any, target: Any, **steps: Any) -> None:
        self._set_distance(distance)
        self.target = check_target(target)
        for name, value in steps.items():  # the search's step count, under its own name
            setattr(self, name, check_int(value, name))

    def _minimize(self, problem: Problem) -> ep.Tensor:
        direction = towards_flat(problem.model, problem.inputs, self.target)
        return blend(problem.inputs, direction, self._search(problem, direction))

    @abstractmethod
    def _search(self, problem: Problem, direction: ep.Tensor) -> ep.Tensor:
        """The blend factor of every sample along ``direction``, shape (N,)."""


class BinarySearchContrastReductionAttack(_ContrastSearch):
    """The smallest adversarial blend towards the flat image, by bisection of the blend
    factor in [0, 1] per sample.

    Args:
        distance: how epsilons are measured (``advlib.distances.l2``, ...); default None:
            only ``epsilons=None`` works (see :class:`FlexibleDistanceMinimizationAttack`).
        binary_search_steps: bisection steps, one model call each (default 15).
        target: where the flat image lies between the bounds, 0 to 1 (default 0.5).
    """

    binary_search_steps: int
    __init__ = keyword_constructor(distance=None, binary_search_steps=15, target=0.5)

    def _search(self, problem: Problem, direction: ep.Tensor) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        low = ep.zeros(inputs, inputs.shape[0])
        high = ep.ones(inputs, inputs.shape[0])
        factors = low
        for _ in progress.steps(self.binary_search_steps):
            candidate = blend(inputs, direction, factors)
            fooled = criterion(candidate, model(candidate))
            low = ep.where(fooled, low, factors)
            high = ep.where(fooled, factors, high)
            factors = (low + high) / 2
        return high


class LinearSearchContrastReductionAttack(_ContrastSearch):
    """The smallest adversarial blend towards the flat image among the factors
    ``0, 1/steps, 2/steps, ...`` per sample (a linear scan that stops once every sample is
    fooled).

    Args:
        steps: how many factors to try, one model call each (default 1000).
        distance, target: as for :class:`BinarySearchContrastReductionAttack` (defaults None
            and 0.5).
    """

    steps: int
    __init__ = keyword_constructor(distance=None, steps=1000, target=0.5)

    def _search(self, problem: Problem, direction: ep.Tensor) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        best = ep.ones(inputs, inputs.shape[0])
        for step in progress.steps(self.steps):
            if step % _CHECK_EVERY == 0 and step and bool((best < 1).all().item()):
                break
            factor = step / self.steps
            candidate = inputs + factor * direction
            fooled = ep.logical_and(criterion(candidate, model(candidate)), best == 1)
            best = ep.where(fooled, factor, best)
        return best
