"""The Boundary attack (Brendel, Rauber & Bethge, 2018): a decision-based L2 minimization attack.

From an adversarial starting point, each step proposes a random move along the sphere around
the original input (an orthogonal step of relative size ``spherical_step``) followed by a step
towards the input (relative size ``source_step``), and keeps the proposal if it is still
adversarial and closer. Both step sizes adapt to the success rates of recent proposals: the
spherical step grows when more than half of the spherical proposals stay adversarial and
shrinks below 20%; the source step grows above 25% and shrinks below 10% success of the full
proposals. A sample has converged when its source step falls below ``source_step_convergance``
(Foolbox's spelling; ``source_step_convergence`` is accepted too).

Batched over samples, with the statistics of every sample on the device. Samples adversarial
as given are returned at once; samples without a starting point are returned unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name, flat_batch, scalar_like
from ..models.base import Model, StepFn
from ..norms import l2
from ._decision import DecisionAttack, Start, binary_search, check_tensorboard, is_adversarial
from ._minimization import Problem, check_float, check_init_attack, check_int, check_seed
from ._subsets import host_bool
from .base import MinimizationAttack

# Lengths of the windows of recent outcomes the step sizes adapt to (as in Foolbox).
_SPHERICAL_WINDOW = 100
_STEP_WINDOW = 30
_CHECK_EVERY = 100
_DEFAULT_CONVERGENCE = 1e-7


class _Steps(NamedTuple):
    """Per sample, the relative sizes of the two parts of a proposal."""

    spherical: ep.Tensor  # the orthogonal step
    source: ep.Tensor  # the step towards the input


class _Windows(NamedTuple):
    """Per sample, the outcomes of recent proposals (1 adversarial, 0 not, -1 no record), or
    the bool column of each window to write next."""

    spherical: ep.Tensor  # (N, 100): the spherical proposals
    step: ep.Tensor  # (N, 30): the full proposals


class BoundaryAttack(DecisionAttack):
    """The Boundary attack in L2, with Foolbox's signature and defaults; see the module
    documentation.

    Args:
        init_attack: a minimization attack giving the starting points, or None (default):
            uniform noise, the first adversarial of ``init_trials`` draws, moved to the
            boundary by a binary search.
        steps: proposals per sample (default 25000).
        spherical_step: initial relative size of the orthogonal step (default 0.01).
        source_step: initial relative size of the step towards the input (default 0.01).
        source_step_convergance: a sample stops once its source step is below this
            (default 1e-7; Foolbox's spelling).
        step_adaptation: factor by which the step sizes grow or shrink (default 1.5).
        tensorboard: accepted for Foolbox compatibility; advlib writes no TensorBoard logs, so
            anything but False or None (the default False) only warns.
        update_stats_every_k: the spherical proposals are checked, and step sizes adapted,
            every k steps (default 10).
        source_step_convergence: the same as ``source_step_convergance``, spelled correctly;
            default None: use ``source_step_convergance``.
        init_trials: noise draws for the default starting points (default 100).
        seed: seed of the proposals; None draws fresh randomness on every call.
    """

    norm = l2

    def __init__(
        self,
        init_attack: MinimizationAttack | None = None,
        steps: int = 25000,
        spherical_step: float = 1e-2,
        source_step: float = 1e-2,
        source_step_convergance: float = 1e-7,
        step_adaptation: float = 1.5,
        tensorboard: Any = False,
        update_stats_every_k: int = 10,
        *,
        source_step_convergence: float | None = None,
        init_trials: int = 100,
        seed: int | None = None,
    ) -> None:
        self.steps = check_int(steps, "steps")
        self.spherical_step = check_float(spherical_step, "spherical_step")
        self.source_step = check_float(source_step, "source_step")
        self.source_step_convergence = _convergence(
            source_step_convergance, source_step_convergence
        )
        self.step_adaptation = check_float(step_adaptation, "step_adaptation")
        if self.step_adaptation <= 1:
            raise ValueError(f"step_adaptation: expected a number > 1, got {step_adaptation!r}")
        check_tensorboard(tensorboard)
        self.update_stats_every_k = check_int(update_stats_every_k, "update_stats_every_k")
        self.init_attack = check_init_attack(init_attack, "another decision-based attack")
        self.init_trials = check_int(init_trials, "init_trials")
        self.seed = check_seed(seed)

    def _search(self, problem: Problem, start: Start) -> ep.Tensor:
        model, inputs, criterion, early_stop = problem
        starts, active, rng = start
        best = binary_search(model, criterion, inputs, starts, l2, 1e-3)
        best = ep.where(atleast_kd(active, best.ndim), best, starts)

        zeros = ep.zeros_like(l2(inputs))
        steps = _Steps(zeros + self.spherical_step, zeros + self.source_step)
        n = inputs.shape[0]
        history = _Windows(
            ep.zeros(inputs, (n, _SPHERICAL_WINDOW)) - 1, ep.zeros(inputs, (n, _STEP_WINDOW)) - 1
        )
        propose = model.compiled(
            ("advlib.attacks.boundary", "propose"), lambda: _make_propose(model)
        )
        adapt = model.compiled(
            ("advlib.attacks.boundary", "adapt", self.step_adaptation), self._make_adapt
        )
        convergence = scalar_like(inputs, self.source_step_convergence)
        dtype = dtype_name(inputs)
        k = self.update_stats_every_k
        for index in progress.steps(self.steps):
            step = index + 1
            noise = ep.from_numpy(inputs, rng.standard_normal(size=inputs.shape).astype(dtype))
            candidates, spherical = propose(inputs, best, noise, steps)
            is_adv = is_adversarial(model, criterion, candidates)
            closer = l2(candidates - inputs) < l2(best - inputs)
            running = ep.logical_and(active, steps.source >= convergence)
            take = ep.logical_and(ep.logical_and(is_adv, closer), running)
            best = ep.where(atleast_kd(take, best.ndim), candidates, best)
            if step % k == 0:
                spherical_adv = is_adversarial(model, criterion, spherical)
                slots = _slots(inputs, (step // k) - 1)
                steps, history = adapt(steps, history, spherical_adv, is_adv, slots)
            if step % _CHECK_EVERY == 0:  # one transfer per 100 steps
                done = ep.logical_not(running)
                if early_stop is not None:
                    done = ep.logical_or(done, l2(best - inputs) <= early_stop)
                if host_bool(done).all():
                    break
        return best

    def _make_adapt(self) -> StepFn:
        factor = self.step_adaptation

        def record(stats: ep.Tensor, slot: ep.Tensor, outcome: ep.Tensor) -> ep.Tensor:
            return ep.where(slot[None, :], outcome.astype(stats.dtype)[:, None], stats)

        def rate(stats: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            full = (stats >= 0).all(axis=-1)
            return full, ep.maximum(stats, 0.0).mean(axis=-1)

        def adapt(
            steps: _Steps,
            history: _Windows,
            spherical_adv: ep.Tensor,
            step_adv: ep.Tensor,
            slots: _Windows,
        ) -> tuple[_Steps, _Windows]:
            """Record the outcomes in the windows at ``slots`` and adapt the step sizes to the
            success rates of full windows (which then start again)."""
            spherical_stats = record(history.spherical, slots.spherical, spherical_adv)
            step_stats = record(history.step, slots.step, step_adv)
            full, success = rate(spherical_stats)
            grow = ep.logical_and(full, success > 0.5)
            shrink = ep.logical_and(full, success < 0.2)
            change = ep.where(grow, factor, ep.where(shrink, 1 / factor, 1.0))
            spherical_steps = steps.spherical * change
            source_steps = steps.source * change
            reset = ep.logical_or(grow, shrink)[:, None]
            spherical_stats = ep.where(reset, -1.0, spherical_stats)
            full, success = rate(step_stats)
            grow = ep.logical_and(full, success > 0.25)
            shrink = ep.logical_and(full, success < 0.1)
            source_steps = source_steps * ep.where(grow, factor, ep.where(shrink, 1 / factor, 1.0))
            reset = ep.logical_or(grow, shrink)[:, None]
            step_stats = ep.where(reset, -1.0, step_stats)
            return _Steps(spherical_steps, source_steps), _Windows(spherical_stats, step_stats)

        return adapt


def _convergence(misspelled: Any, spelled: Any) -> float:
    """The convergence threshold from Foolbox's ``source_step_convergance`` or advlib's
    correctly spelled ``source_step_convergence`` (which wins when only it is given)."""
    if spelled is None:
        return check_float(misspelled, "source_step_convergance")
    if misspelled != _DEFAULT_CONVERGENCE and misspelled != spelled:
        raise ValueError(
            "source_step_convergence: the same argument as source_step_convergance; got "
            f"source_step_convergance={misspelled!r} and source_step_convergence={spelled!r}, "
            "pass only one of them"
        )
    return check_float(spelled, "source_step_convergence")


def _slots(like: ep.Tensor, index: int) -> _Windows:
    """The column of each window to write the ``index``-th record to, as bool masks."""
    return _Windows(
        ep.from_numpy(like, np.arange(_SPHERICAL_WINDOW) == index % _SPHERICAL_WINDOW),
        ep.from_numpy(like, np.arange(_STEP_WINDOW) == index % _STEP_WINDOW),
    )


def _make_propose(model: Model) -> StepFn:
    lower, upper = model.bounds

    def propose(
        origin: ep.Tensor, best: ep.Tensor, noise: ep.Tensor, steps: _Steps
    ) -> tuple[ep.Tensor, ep.Tensor]:
        """(full proposal, spherical proposal) for every sample."""
        towards = origin - best
        distance = l2(towards)
        distance_kd = atleast_kd(distance, origin.ndim)
        unit = towards / (distance_kd + 1e-12)
        # a random direction orthogonal to the line to the input, of relative size
        # spherical_step, then back onto the sphere of the current distance
        orthogonal = (
            noise
            # summed over the flattened sample: one reduction order whatever the batch size
            - atleast_kd(flat_batch(noise * unit).sum(axis=-1), noise.ndim) * unit
        )
        orthogonal = orthogonal / (atleast_kd(l2(orthogonal), origin.ndim) + 1e-12)
        step = atleast_kd(steps.spherical, origin.ndim)
        shrink = 1 / (step**2 + 1).sqrt()
        spherical = origin - shrink * (towards - step * distance_kd * orthogonal)
        spherical = spherical.clip(lower, upper)
        # then a step towards the input: reduce the distance by source_step of the old one
        new_towards = origin - spherical
        new_distance = atleast_kd(l2(new_towards), origin.ndim)
        length = atleast_kd(steps.source, origin.ndim) * distance_kd + new_distance - distance_kd
        length = ep.maximum(length, 0.0) / (new_distance + 1e-12)
        candidates = (spherical + length * new_towards).clip(lower, upper)
        return candidates, spherical

    return propose
