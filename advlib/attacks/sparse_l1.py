"""Sparse L1 Descent (Tramèr & Boneh, 2019, arXiv:1904.13000): L1 PGD whose steps change only
the coordinates with the largest gradients.

Each step drops the gradient's components that push a coordinate already at a bound outwards,
keeps the signs of the components at or above the ``quantile`` of their sample's absolute
values, L1-normalises them and steps, then projects exactly onto the L1 ball and clips to the
bounds: the gradient-descent family's loop (:mod:`advlib.attacks.gradient_descent`) with its
own step.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import eagerpy as ep

from .._tensors import atleast_kd, flat_batch
from ..models.base import Model, StepFn
from ..norms import l1
from .gradient_descent import GradientDescentAttack, State, family_constructor


class SparseL1DescentAttack(GradientDescentAttack):
    """Sparse L1 Descent, with Foolbox's signature and defaults.

    Args:
        quantile: the fraction of each sample's gradient components (by absolute value)
            left out of a step, in [0, 1] (default 0.99: the top 1% move).
        rel_stepsize: step size relative to epsilon (default 0.2).
        abs_stepsize: step size in input units; overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        random_start: start from a uniform random point of the L1 ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.

    The quantile is computed on the device (NumPy's linear interpolation), not on the host
    as Foolbox does: no synchronisation per step.
    """

    norm = l1

    __init__ = family_constructor(rel_stepsize=0.2, steps=10, random_start=False, quantile=0.99)

    #: The model's bounds, set on the copy that builds a step (see :meth:`_make_step`).
    _bounds: tuple[float, float]

    def _configure(self, *, quantile: float, **arguments: Any) -> None:  # type: ignore[override]
        valid = isinstance(quantile, numbers.Real) and not isinstance(quantile, bool)
        if not (valid and 0 <= quantile <= 1):
            raise ValueError(f"quantile: expected a number in [0, 1], got {quantile!r}")
        self.quantile = float(quantile)
        super()._configure(**arguments)

    def _make_step(self, model: Model, targeted: bool, inside: bool) -> StepFn:
        # The step masks gradients at the bounds: a copy of the attack carries them into it.
        bound = copy.copy(self)
        lower, upper = model.bounds
        bound._bounds = (lower, upper)
        step: StepFn = GradientDescentAttack._make_step(bound, model, targeted, inside)
        return step

    def _move(
        self, x: ep.Tensor, grad: ep.Tensor, state: State, stepsize: ep.Tensor
    ) -> tuple[ep.Tensor, State]:
        lower, upper = self._bounds
        outwards = ep.logical_or(
            ep.logical_and(x <= lower, grad < 0), ep.logical_and(x >= upper, grad > 0)
        )
        grad = ep.where(outwards, ep.zeros_like(grad), grad)
        magnitude = grad.abs()
        threshold = _quantile(flat_batch(magnitude), self.quantile)
        keep = magnitude >= atleast_kd(threshold, grad.ndim)
        direction = ep.where(keep, grad.sign(), ep.zeros_like(grad))
        return self.norm.ascend(x, direction, stepsize), state


def _quantile(rows: ep.Tensor, q: float) -> ep.Tensor:
    """The ``q`` quantile of each row of ``rows`` (N, d), interpolated linearly between the
    two nearest order statistics (NumPy's default method)."""
    position = q * (rows.shape[-1] - 1)
    below = math.floor(position)
    above = min(below + 1, rows.shape[-1] - 1)
    ordered = rows.sort(axis=-1)
    low, high = ordered[:, below], ordered[:, above]
    return low + (position - below) * (high - low)
