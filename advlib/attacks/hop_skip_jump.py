"""HopSkipJump (Chen, Jordan & Wainwright, 2020): a decision-based minimization attack.

Needs only the model's decisions. From an adversarial starting point it repeats: a binary search
to the decision boundary; a Monte-Carlo estimate of the boundary's normal from the decisions at
random points around the boundary point (``initial_gradient_eval_steps * sqrt(t)`` of them at
iteration ``t``, at most ``max_gradient_eval_steps``); a step along that estimate of a size that
shrinks geometrically until the result is adversarial again.

``stepsize_search="grid_search"`` replaces the geometric step search by Foolbox's grid: 20 step
sizes from 1e-4 to 1 times the current distance, each followed by a binary search, keeping the
closest adversarial.

``HopSkipJumpAttack(constraint="linf")`` is a :class:`LinfHopSkipJumpAttack`, as in Foolbox.

Batched over samples. Samples adversarial as given are returned at once (distance 0); samples
without an adversarial starting point are returned unchanged (and fail): no NaN, no endless
loop (Foolbox #670).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name
from ..criteria import Criterion
from ..models.base import Model
from ..norms import Norm, l2, linf
from ._decision import DecisionAttack, Start, binary_search, check_tensorboard, is_adversarial
from ._minimization import Problem, check_float, check_init_attack, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._subsets import host_bool, repeated, tile
from .base import MinimizationAttack

# Noise points per sample evaluated in one forward pass, times the batch size: bounds memory.
_EVALS_PER_PASS = 4096
# Step-size halvings tried per iteration before a sample keeps its current point.
_MAX_HALVINGS = 25
_STEPSIZE_SEARCHES = ("geometric_progression", "grid_search")
# Foolbox's grid: step sizes relative to the current distance.
_GRID = tuple(float(v) for v in np.logspace(-4, 0, num=20))


class _Iterate(NamedTuple):
    """One iteration's point and step."""

    x: ep.Tensor  # the current point, on the boundary
    update: ep.Tensor  # the step direction
    distance: ep.Tensor  # per sample, the distance from the inputs to ``x``
    theta: float  # the binary search tolerance


class HopSkipJumpAttack(NormFamily, DecisionAttack):
    """HopSkipJump with Foolbox's signature and defaults, minimising the L2 norm, or the Linf
    norm with ``constraint="linf"`` (then a :class:`LinfHopSkipJumpAttack`); see the module
    documentation.

    Args:
        init_attack: a minimization attack giving the starting points, or None (default):
            uniform noise, the first adversarial of ``init_trials`` draws per sample.
        steps: iterations (default 64).
        initial_gradient_eval_steps: decisions for the first gradient estimate (default 100).
        max_gradient_eval_steps: largest number of decisions per estimate (default 10000).
        stepsize_search: ``"geometric_progression"`` (default: start at the distance over
            the square root of the iteration, halve until adversarial) or ``"grid_search"``.
        gamma: sets the binary search tolerance and the probing radius (default 1.0).
        tensorboard: accepted for Foolbox compatibility; advlib writes no TensorBoard logs, so
            anything but False or None (the default False) only warns.
        constraint: the norm minimised, ``"l2"`` (default) or ``"linf"``, also spelled
            ``"L2"``, ``2``, ``"Linf"``, ``np.inf``.
        init_trials: noise draws for the default starting points (default 100).
        seed: seed of the noise; None draws fresh randomness on every call.
    """

    norm: ClassVar[Norm] = l2
    _norm_argument = "constraint"

    def __init__(
        self,
        init_attack: MinimizationAttack | None = None,
        steps: int = 64,
        initial_gradient_eval_steps: int = 100,
        max_gradient_eval_steps: int = 10000,
        stepsize_search: str = "geometric_progression",
        gamma: float = 1.0,
        tensorboard: Any = False,
        constraint: Any = "l2",
        *,
        init_trials: int = 100,
        seed: int | None = None,
    ) -> None:
        self.init_attack = check_init_attack(init_attack, "another decision-based attack")
        self.steps = check_int(steps, "steps")
        self.initial_gradient_eval_steps = check_int(
            initial_gradient_eval_steps, "initial_gradient_eval_steps"
        )
        self.max_gradient_eval_steps = check_int(max_gradient_eval_steps, "max_gradient_eval_steps")
        if stepsize_search not in _STEPSIZE_SEARCHES:
            raise ValueError(
                f"stepsize_search: expected one of {list(_STEPSIZE_SEARCHES)}, "
                f"got {stepsize_search!r}"
            )
        self.stepsize_search = stepsize_search
        self.gamma = check_float(gamma, "gamma")
        check_tensorboard(tensorboard)
        self.constraint = self.norm.name  # ``constraint`` chose the class: NormFamily.__new__
        self.init_trials = check_int(init_trials, "init_trials")
        self.seed = check_seed(seed)

    def _search(self, problem: Problem, start: Start) -> ep.Tensor:
        model, inputs, criterion, early_stop = problem
        features = int(np.prod(inputs.shape[1:]))
        theta = self._theta(features)
        x = binary_search(model, criterion, inputs, start.points, self.norm, theta)
        distance = self.norm(x - inputs)
        lower, upper = model.bounds
        for index in progress.steps(self.steps):
            t = index + 1
            if t == 1:
                probe = ep.zeros_like(distance) + 0.1 * (upper - lower)
            else:
                probe = self._probe_scale(features) * theta * distance
            evals = int(
                min(self.initial_gradient_eval_steps * math.sqrt(t), self.max_gradient_eval_steps)
            )
            update = self.norm.normalize(
                self._estimate_gradient(model, criterion, x, probe, evals, start.rng)
            )
            here = _Iterate(x, update, distance, theta)
            if self.stepsize_search == "grid_search":
                x = self._grid_step(problem, here)
            else:
                x = self._geometric_step(problem, here, distance / math.sqrt(t), start.active)
            x = ep.where(atleast_kd(start.active, x.ndim), x, start.points)
            distance = self.norm(x - inputs)
            if early_stop is not None:
                done = ep.logical_or(distance <= early_stop, ep.logical_not(start.active))
                if host_bool(done).all():
                    break
        return x

    def _geometric_step(
        self, problem: Problem, here: _Iterate, size: ep.Tensor, active: ep.Tensor
    ) -> ep.Tensor:
        """A step along ``here.update`` of ``size``, halved until adversarial, then a binary
        search back to the boundary; samples without an adversarial step keep ``here.x``."""
        model, inputs, criterion, _ = problem
        x, update = here.x, here.update
        lower, upper = model.bounds
        proposal, accepted = x, ep.zeros_like(size) > 0
        for _ in range(_MAX_HALVINGS):
            candidate = (x + atleast_kd(size, x.ndim) * update).clip(lower, upper)
            now = is_adversarial(model, criterion, candidate)
            take = ep.logical_and(now, ep.logical_not(accepted))
            proposal = ep.where(atleast_kd(take, x.ndim), candidate, proposal)
            accepted = ep.logical_or(accepted, now)
            size = ep.where(accepted, size, size / 2)
            if host_bool(ep.logical_or(accepted, ep.logical_not(active))).all():
                break
        proposal = ep.where(atleast_kd(ep.logical_and(accepted, active), x.ndim), proposal, x)
        return binary_search(model, criterion, inputs, proposal, self.norm, here.theta)

    def _grid_step(self, problem: Problem, here: _Iterate) -> ep.Tensor:
        """Foolbox's grid search: steps of each size in ``_GRID`` times ``here.distance`` that
        are adversarial, moved back to the boundary; the closest to the inputs wins (or
        ``here.x``). The step sizes are tried together, as copies of the batch, up to
        ``_EVALS_PER_PASS`` points at a time."""
        model, inputs, criterion, _ = problem
        x, update, distance, theta = here
        n = x.shape[0]
        k = max(1, min(len(_GRID), _EVALS_PER_PASS // max(n, 1)))
        judge = repeated(criterion, k)
        if judge is None:  # a criterion type without a stacked form: one size at a time
            k, judge = 1, criterion
        best, best_distance = x, distance
        origins, starts = tile(inputs, k), tile(x, k)
        moves = tile(update, k) * atleast_kd(tile(distance, k), x.ndim)
        for first in range(0, len(_GRID), k):
            factors = list(_GRID[first : first + k])
            factors += factors[-1:] * (k - len(factors))  # the same shapes in every pass
            scale = np.repeat(np.asarray(factors, dtype=dtype_name(x)), n)
            candidates = starts + atleast_kd(ep.from_numpy(x, scale), x.ndim) * moves
            candidates = candidates.clip(*model.bounds)
            adversarial = is_adversarial(model, judge, candidates)
            candidates = binary_search(model, judge, origins, candidates, self.norm, theta)
            sizes = self.norm(candidates - origins)
            for j in range(k):
                rows = slice(j * n, (j + 1) * n)
                better = ep.logical_and(adversarial[rows], sizes[rows] < best_distance)
                best = ep.where(atleast_kd(better, x.ndim), candidates[rows], best)
                best_distance = ep.where(better, sizes[rows], best_distance)
        return best

    def _theta(self, features: int) -> float:
        """Binary-search tolerance, relative to the distance searched."""
        return self.gamma / (features * math.sqrt(features))

    def _probe_scale(self, features: int) -> float:
        """Probing radius per unit of ``theta * distance``."""
        return math.sqrt(features)

    def _estimate_gradient(
        self,
        model: Model,
        criterion: Criterion,
        x: ep.Tensor,
        probe: ep.Tensor,
        evals: int,
        rng: SampleRandom,
    ) -> ep.Tensor:
        """An estimate of the boundary normal at ``x`` (pointing into the adversarial region,
        of any length) from ``evals`` decisions per sample at distance ``probe`` around ``x``."""
        n, shape = x.shape[0], tuple(x.shape[1:])
        lower, upper = model.bounds
        # A fixed number of noise points per pass, so every pass has the same shapes (JAX
        # compiles each new shape); the last pass ignores the points beyond ``evals``.
        per_pass = _power_of_two_below(
            min(_EVALS_PER_PASS // max(n, 1), 2 * self.initial_gradient_eval_steps)
        )
        weighted = ep.zeros_like(x)  # sum of decision * direction
        directions = ep.zeros_like(x)  # sum of directions
        decisions = ep.zeros_like(probe)  # sum of decisions (+1 / -1)
        scale = probe.reshape((1, n) + (1,) * len(shape))
        judges: dict[int, Criterion | None] = {}
        done = 0
        k = per_pass
        stream = rng.fork()  # a sample's noise is the same however the passes split it
        size = int(np.prod(shape))
        while done < evals:
            noise = np.moveaxis(self._noise(stream, (n, k, *shape), done * size), 0, 1)
            noise /= (
                np.sqrt((noise.reshape(k, n, -1) ** 2).sum(-1)).reshape((k, n) + (1,) * len(shape))
                + 1e-12
            )
            points = x[None] + scale * ep.from_numpy(x, noise.astype(dtype_name(x)))
            points = points.clip(lower, upper)
            effective = (points - x[None]) / (scale + 1e-12)
            stacked = points.reshape((k * n, *shape))
            if k not in judges:
                judges[k] = repeated(criterion, k)
            judge = judges[k]
            if judge is not None:
                adversarial = judge(stacked, model(stacked)).reshape((k, n))
            else:  # a criterion type without a stacked form: one call per copy
                logits = model(stacked)
                adversarial = ep.stack(
                    [criterion(points[i], logits[i * n : (i + 1) * n]) for i in range(k)]
                )
            value = adversarial.astype(x.dtype) * 2 - 1
            if done + k > evals:
                used = (np.arange(k) < evals - done).astype(dtype_name(x))
                value = value * ep.from_numpy(x, used)[:, None]
                effective = effective * atleast_kd(ep.from_numpy(x, used), effective.ndim)
            weighted = _running_sum(weighted, atleast_kd(value, effective.ndim) * effective)
            directions = _running_sum(directions, effective)
            decisions = _running_sum(decisions, value)
            done += k
        mean = decisions / evals
        unanimous = atleast_kd(mean.abs() == 1, x.ndim)
        centred = weighted / evals - atleast_kd(mean, x.ndim) * directions / evals
        return ep.where(unanimous, weighted / evals, centred)

    def _noise(self, rng: SampleRandom, shape: tuple[int, ...], at: int) -> np.ndarray:
        """Random probing directions (any scale: they are normalised)."""
        return rng.standard_normal(size=shape, at=at)


def _power_of_two_below(value: int) -> int:
    return 1 << (max(value, 1).bit_length() - 1)


class LinfHopSkipJumpAttack(HopSkipJumpAttack):
    """HopSkipJump minimising the Linf norm: sign steps, Linf binary search; the arguments as
    for :class:`HopSkipJumpAttack` (``constraint``, if given, must be ``"linf"``)."""

    norm = linf

    def _theta(self, features: int) -> float:
        return self.gamma / (features * features)

    def _probe_scale(self, features: int) -> float:
        return float(features)

    def _noise(self, rng: SampleRandom, shape: tuple[int, ...], at: int) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=shape, at=at)


def _running_sum(total: ep.Tensor, terms: ep.Tensor) -> ep.Tensor:
    """``total`` plus the terms along axis 0, added one after the other: the rounding is then
    the same however the terms are split into passes (and so whatever the batch size)."""
    return ep.concatenate([total[None], terms], axis=0).cumsum(axis=0)[-1]


L2HopSkipJumpAttack = HopSkipJumpAttack
HSJA = HopSkipJumpAttack
norm_family(HopSkipJumpAttack, LinfHopSkipJumpAttack)
