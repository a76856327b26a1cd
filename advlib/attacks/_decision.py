"""Pieces the decision-based attacks (HopSkipJump, Boundary) share: the perturb call with its
starting points, the adversarial test, and the binary search towards the decision boundary.
All batched."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name
from .._warnings import warn_user
from ..criteria import Criterion
from ..models.base import Model
from ..norms import Norm
from ._minimization import Problem
from ._subsets import host_bool
from .base import MinimizationAttack


class Start(NamedTuple):
    """Where a decision-based search starts."""

    points: ep.Tensor  # adversarial where ``active``, the inputs elsewhere
    active: ep.Tensor  # the samples to attack
    rng: SampleRandom  # the call's random numbers (the starts drew theirs)


class DecisionAttack(MinimizationAttack):
    """A decision-based minimization attack: it starts from adversarial points (given, from
    ``init_attack`` or from noise, see :func:`find_starts`) and searches from there in
    :meth:`_search`."""

    requires_grad = False
    init_attack: MinimizationAttack | None
    init_trials: int

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion,
        early_stop: float | None = None, *, starting_points: ep.Tensor | None = None,
    ) -> ep.Tensor:
        """See :meth:`MinimizationAttack.perturb`; ``starting_points`` (EagerPy tensor shaped like
        ``inputs``, default None) are adversarial starts that take precedence over
        ``init_attack`` where they are adversarial."""
        if inputs.shape[0] == 0:
            return inputs
        rng = self._generator()
        starts, active = find_starts(
            model, inputs, criterion, self.init_attack, self.init_trials, rng, starting_points
        )
        if active is None:
            return starts
        problem = Problem(model, inputs, criterion, early_stop)
        return self._search(problem, Start(starts, active, rng))

    @abstractmethod
    def _search(self, problem: Problem, start: Start) -> ep.Tensor:
        """The smallest adversarials found from ``start``."""


def is_adversarial(model: Model, criterion: Criterion, x: ep.Tensor) -> ep.Tensor:
    return criterion(x, model(x))


def check_tensorboard(value: Any) -> None:
    """Foolbox's ``tensorboard`` argument (False: no logs, None or a folder: logs there).
    advlib writes no TensorBoard logs: False and None pass silently, anything else warns."""
    if value is not None and value is not False:
        warn_user(
            f"tensorboard: advlib writes no TensorBoard logs; tensorboard={value!r} is ignored"
        )


def find_starts(
    model: Model,
    inputs: ep.Tensor,
    criterion: Criterion,
    init_attack: MinimizationAttack | None,
    trials: int,
    rng: SampleRandom,
    given: ep.Tensor | None = None,
) -> tuple[ep.Tensor, ep.Tensor | None]:
    """``(starts, active)``: an adversarial start per sample (the input itself where it is
    adversarial already or no start was found) and the bool mask of the samples to attack,
    those with a start that are not adversarial yet; ``active`` is None when there is none.

    The starts are ``given`` (where adversarial), else the results of ``init_attack``, else
    for each sample the first of up to ``trials`` uniform noise inputs that is adversarial.
    """
    already = host_bool(is_adversarial(model, criterion, inputs))
    if given is not None:
        if tuple(given.shape) != tuple(inputs.shape):
            raise ValueError(
                f"starting_points: expected the shape of the inputs {tuple(inputs.shape)}, "
                f"got {tuple(given.shape)}"
            )
        starts = given.clip(*model.bounds)
        found = host_bool(is_adversarial(model, criterion, starts))
    elif init_attack is not None:
        with progress.quiet():  # the bar counts the attack's own steps, not its init's
            starts = init_attack.perturb(model, inputs, criterion)
        found = host_bool(is_adversarial(model, criterion, starts))
    else:
        lower, upper = model.bounds
        starts, found = inputs, already.copy()
        # One stream per sample, read a trial at a time: the draws that follow the starts do
        # not depend on how many trials the batch needed.
        stream, size = rng.fork(), int(np.prod(inputs.shape[1:]))
        for trial in range(trials):
            if found.all():
                break
            noise = stream.uniform(lower, upper, inputs.shape, at=trial * size)
            noise = noise.astype(dtype_name(inputs))
            candidate = ep.from_numpy(inputs, noise)
            now = host_bool(is_adversarial(model, criterion, candidate))
            new = np.logical_and(now, ~found)
            starts = ep.where(
                atleast_kd(ep.from_numpy(inputs, new), inputs.ndim), candidate, starts
            )
            found |= now
    active_np = np.logical_and(found, ~already)
    active = ep.from_numpy(inputs, active_np)
    starts = ep.where(atleast_kd(active, inputs.ndim), starts, inputs)
    return starts, (active if active_np.any() else None)


def binary_search(
    model: Model,
    criterion: Criterion,
    origin: ep.Tensor,
    perturbed: ep.Tensor,
    norm: Norm,
    tolerance: float,
) -> ep.Tensor:
    """The point between ``origin`` and the adversarial ``perturbed`` closest to ``origin`` that
    is still adversarial, to a relative ``tolerance``, along ``norm``'s path
    (:meth:`~advlib.norms.Norm.path_point`: the segment in L2, shrinking Linf balls in Linf).
    Samples whose ``perturbed`` is not adversarial are returned as is."""
    high = norm.path_length(origin, perturbed)
    low = ep.zeros_like(high)
    iterations = min(max(math.ceil(math.log2(1.0 / tolerance)), 1), 50)
    for _ in range(iterations):
        middle = (low + high) / 2
        adversarial = is_adversarial(model, criterion, norm.path_point(origin, perturbed, middle))
        high = ep.where(adversarial, middle, high)
        low = ep.where(adversarial, low, middle)
    return norm.path_point(origin, perturbed, high)
