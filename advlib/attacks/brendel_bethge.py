"""The Brendel-Bethge attack (Brendel et al., NeurIPS 2019, arXiv:1907.01003) in L0, L1, L2
and Linf, with Foolbox's signatures and defaults.

From an adversarial starting point, a bisection towards the original finds the decision
boundary; then every step estimates the boundary's normal (the gradient of the logit
difference, averaged with ``momentum``) and takes the step that minimises the distance to the
original while landing on the linearised boundary (overshooting it by ``overshoot``), within
an L2 trust region and the bounds. The trust region shrinks by ``lr_decay`` ``lr_num_decay``
times over the run. The smallest adversarial seen is returned.

The per-step subproblems of the whole batch are solved at once in vectorised NumPy (see
:mod:`advlib.attacks._bb_solvers`); the gradients come from the model on its device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name
from ..criteria import Criterion
from ..models.base import Model
from ..norms import l0, l1, l2, linf
from . import _bb_solvers as solvers
from ._decision import check_tensorboard, find_starts, is_adversarial
from ._epsilon_search import Probe, make_gradient
from ._flexible import StartsMinimizer
from ._losses import class_mask, masked_margin
from ._minimization import (
    Best,
    Problem,
    check_float,
    check_init_attack,
    check_int,
    check_seed,
    keep_best,
)
from ._subsets import host_bool
from .base import MinimizationAttack


class _BrendelBethgeAttack(StartsMinimizer):
    """The Brendel-Bethge attack in ``self.norm``; see the module documentation.

    Args:
        init_attack: a minimization attack giving the starting points, or None (default):
            for each sample the first of ``init_trials`` uniform noise inputs that is
            adversarial. Ignored where ``starting_points`` are given.
        overshoot: how far past the linearised boundary each step aims, relative to the logit
            difference (default 1.1; 1 aims exactly at it).
        steps: number of steps (default 1000).
        lr: the trust-region radius relative to one sample's size times the bounds' width
            (default 1e-3), the authors' normalisation (Foolbox 2). Foolbox 3 also multiplies
            by the batch size, so its results depend on the batch: ``lr=1e-3 * N`` gives
            Foolbox 3's radius for a batch of N. Small inputs with few ``steps`` need a larger
            ``lr``.
        lr_decay: factor of the trust region at each decay (default 0.5).
        lr_num_decay: number of decays over ``steps`` (default 20).
        momentum: weight of the previous boundary estimate in the average (default 0.8).
        tensorboard: accepted for Foolbox compatibility; advlib writes no TensorBoard logs, so
            anything but False or None (the default False) only warns.
        binary_search_steps: bisection steps from the start towards the original (default 10).
        init_trials: noise draws for the default starting points (default 100).
        seed: seed of the default starting points; None draws fresh randomness on every call.
    """

    def __init__(
        self,
        init_attack: MinimizationAttack | None = None,
        overshoot: float = 1.1,
        steps: int = 1000,
        lr: float = 1e-3,
        lr_decay: float = 0.5,
        lr_num_decay: int = 20,
        momentum: float = 0.8,
        tensorboard: Any = False,
        binary_search_steps: int = 10,
        *,
        init_trials: int = 100,
        seed: int | None = None,
    ) -> None:
        self.init_attack = check_init_attack(init_attack, "L2DeepFoolAttack()")
        self.overshoot = check_float(overshoot, "overshoot")
        if not 1 <= self.overshoot < 2:
            raise ValueError(f"overshoot: expected a number in [1, 2), got {overshoot!r}")
        self.steps = check_int(steps, "steps")
        self.lr = check_float(lr, "lr")
        self.lr_decay = check_float(lr_decay, "lr_decay")
        self.lr_num_decay = check_int(lr_num_decay, "lr_num_decay")
        self.momentum = check_float(momentum, "momentum", positive=False)
        if not self.momentum < 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        check_tensorboard(tensorboard)
        self.binary_search_steps = check_int(binary_search_steps, "binary_search_steps", 0)
        self.init_trials = check_int(init_trials, "init_trials")
        self.seed = check_seed(seed)

    def _refine(self, problem: Problem, starting_points: ep.Tensor | None) -> ep.Tensor:
        """``starting_points`` take precedence over ``init_attack``."""
        model, inputs, criterion, _ = problem
        if inputs.shape[0] == 0:
            return inputs
        starts, active = find_starts(
            model,
            inputs,
            criterion,
            self.init_attack,
            self.init_trials,
            self._generator(),
            starting_points,
        )
        self._check_starts(model, criterion, starts, starting_points)
        if active is None:
            return starts
        return self._descend(problem, self._bisect(problem, starts), starts, active)

    def _check_starts(
        self, model: Model, criterion: Criterion, starts: ep.Tensor, given: ep.Tensor | None
    ) -> None:
        """Given starting points, or those of a given ``init_attack``, must be adversarial (the
        noise fallback may fail for some samples: those stay unperturbed)."""
        name = "starting_points" if given is not None else "init_attack"
        if given is None and self.init_attack is None:
            return
        missing = ~host_bool(is_adversarial(model, criterion, starts))
        if missing.any():
            fix = (
                "pass adversarial starting points (or None to use init_attack)"
                if given is not None
                else "use a stronger init_attack, or None for uniform noise starts"
            )
            raise ValueError(
                f"{name}: {self._name()} starts from adversarial points, but {int(missing.sum())}"
                f" of {len(missing)} starts are not adversarial (rows "
                f"{np.flatnonzero(missing)[:10].tolist()}); {fix}"
            )

    def _bisect(self, problem: Problem, starts: ep.Tensor) -> ep.Tensor:
        """The boundary between each input and its start, along the norm's mid points."""
        model, inputs, criterion, _ = problem
        mid_points = _NORM_STEPS[self.norm.name][1]
        lower = ep.zeros(inputs, (inputs.shape[0],))
        upper = lower + 1
        width = model.bounds[1] - model.bounds[0]
        for _ in range(self.binary_search_steps):
            middle = (lower + upper) / 2
            adversarial = is_adversarial(
                model, criterion, mid_points(inputs, starts, middle, width)
            )
            lower = ep.where(adversarial, lower, middle)
            upper = ep.where(adversarial, middle, upper)
        return mid_points(inputs, starts, upper, width)

    def _descend(
        self, problem: Problem, x: ep.Tensor, starts: ep.Tensor, active: ep.Tensor
    ) -> ep.Tensor:
        """Follow the boundary from ``x``; the smallest adversarial seen (or the start)."""
        probe_at = self._prober(problem)
        best = Best(starts, ep.where(active, self.norm(starts - problem.inputs), np.inf), active)
        walk = self._start_walk(problem, x, active)
        for index in progress.steps(self.steps):
            probe, gap = probe_at(x)
            best = self._keep(problem, best, probe, active)
            if problem.early_stop is not None:
                walk.running &= host_bool(best.size > problem.early_stop)
            if not walk.running.any():
                break
            x = self._step(problem, walk, index + 1, probe, gap)
        return self._keep(problem, best, probe_at(x)[0], active).x

    def _prober(self, problem: Problem) -> Callable[[ep.Tensor], tuple[Probe, np.ndarray]]:
        """At a point: the logits and the gradient of the logit difference (one compiled
        model call), and the difference itself on the host, float64."""
        model, inputs, criterion, _ = problem
        classes, targeted = criterion.gradient_target()
        gradient = model.compiled(
            self._step_key("gradient", targeted, settings=()),
            lambda: make_gradient(model, lambda z, mask: masked_margin(z, mask, targeted).sum()),
        )
        # The classes' mask, built once (one forward pass for the number of classes), and the
        # difference again on the host: cheaper than a second margin on the device.
        mask = class_mask(model(inputs[:1]), classes)
        host_mask = ep.astensor(mask.numpy())

        def probe_at(x: ep.Tensor) -> tuple[Probe, np.ndarray]:
            probe: Probe = gradient(x - inputs, inputs, mask)
            logits = ep.astensor(probe.logits.numpy())
            gap = masked_margin(logits, host_mask, targeted).numpy().astype(np.float64)
            return probe, gap

        return probe_at

    def _keep(self, problem: Problem, best: Best, probe: Probe, active: ep.Tensor) -> Best:
        """``best`` with the probed point where it is adversarial and smaller."""
        is_adv = problem.criterion(probe.x, probe.logits)
        return keep_best(best, probe.x, self.norm(probe.x - problem.inputs), is_adv, active)

    def _start_walk(self, problem: Problem, x: ep.Tensor, active: ep.Tensor) -> _Walk:
        """The walk's start at ``x``, with the full trust region."""
        low, high = problem.model.bounds
        inputs = problem.inputs
        # The size of one sample times the bounds' width, as the authors' implementation
        # (Foolbox 2, one sample at a time); Foolbox 3 multiplies by the batch size too, which
        # makes a sample's result depend on the batch it is in.
        region = self.lr * float(np.prod(inputs.shape[1:])) * (high - low)
        x0 = _host(inputs)
        return _Walk(x0, _host(x), host_bool(active), region, np.zeros_like(x0))

    def _step(
        self, problem: Problem, walk: _Walk, step: int, probe: Probe, gap: np.ndarray
    ) -> ep.Tensor:
        """Step ``step`` (from 1) of the running samples: update the boundary's estimate and
        the trust region, solve the subproblems, move there; the new points."""
        momentum = 0.0 if step == 1 else self.momentum
        walk.boundary = (1 - momentum) * _host(probe.grad) + momentum * walk.boundary
        if (step + 1) % max(1, int(self.steps / self.lr_num_decay)) == 0:
            walk.region *= self.lr_decay
        target = -np.where(gap > 0, self.overshoot, 2 - self.overshoot) * gap
        low, high = problem.model.bounds
        radii = np.full(len(gap), walk.region)
        rows = np.flatnonzero(walk.running)
        subproblem = solvers.Subproblem(walk.x0, walk.x, walk.boundary, low, high, target, radii)
        subproblem = subproblem.take(rows)
        delta = solvers.solve(_NORM_STEPS[self.norm.name][0], subproblem)
        inputs = problem.inputs
        dtype = dtype_name(inputs)
        walk.x[rows] = np.clip(subproblem.x + delta, low, high).astype(dtype)
        return ep.from_numpy(inputs, walk.x.reshape(inputs.shape).astype(dtype))


@dataclass
class _Walk:
    """The host state of the walk along the boundary (float64 rows, one per sample)."""

    x0: np.ndarray  # the originals
    x: np.ndarray  # the current points
    running: np.ndarray  # the samples still walking
    region: float  # the trust region's radius
    boundary: np.ndarray  # the running average of the boundary's normal


def _host(t: ep.Tensor) -> np.ndarray:
    """A batch as float64 rows on the host (one device-to-host transfer)."""
    values: np.ndarray = t.numpy().astype(np.float64).reshape(t.shape[0], -1)
    return values


# ---------------------------------------------------------------------- per norm
# The point ``t`` of the way from ``origin`` (0) to ``start`` (1) that the first bisection
# tries (Foolbox's, per norm), ``width`` the width of the bounds.
def _on_segment(origin: ep.Tensor, start: ep.Tensor, t: ep.Tensor, width: float) -> ep.Tensor:
    w = atleast_kd(t, origin.ndim)
    return w * start + (1 - w) * origin


def _into_linf_ball(origin: ep.Tensor, start: ep.Tensor, t: ep.Tensor, width: float) -> ep.Tensor:
    # The start clipped to the Linf ball of radius t times the bounds' width.
    radius = atleast_kd(t, origin.ndim) * width
    return origin + ep.minimum(ep.maximum(start - origin, -radius), radius)


def _soft_threshold(origin: ep.Tensor, start: ep.Tensor, t: ep.Tensor, width: float) -> ep.Tensor:
    # Every change shrunk by (1 - t) times the bounds' width.
    threshold = (1 - atleast_kd(t, origin.ndim)) * width
    change = start - origin
    shrunk = origin + change.sign() * (change.abs() - threshold)
    return ep.where(change.abs() > threshold, shrunk, origin)


def _small_changes(origin: ep.Tensor, start: ep.Tensor, t: ep.Tensor, width: float) -> ep.Tensor:
    # Only the changes smaller than t times the bounds' width are kept.
    threshold = atleast_kd(t, origin.ndim) * width
    return ep.where((start - origin).abs() < threshold, start, origin)


MidPoints = Callable[[ep.Tensor, ep.Tensor, ep.Tensor, float], ep.Tensor]

#: Per norm (by name): the subproblem solver (:mod:`._bb_solvers`) and the bisection's points.
_NORM_STEPS: dict[str, tuple[solvers.Step, MidPoints]] = {
    "l0": (solvers.l0_step, _small_changes),
    "l1": (solvers.l1_step, _soft_threshold),
    "l2": (solvers.l2_step, _on_segment),
    "linf": (solvers.linf_step, _into_linf_ball),
}


class L2BrendelBethgeAttack(_BrendelBethgeAttack):
    """The Brendel-Bethge attack in L2 (Foolbox's ``L2BrendelBethgeAttack``)."""

    norm = l2


class LinfinityBrendelBethgeAttack(_BrendelBethgeAttack):
    """The Brendel-Bethge attack in Linf (Foolbox's ``LinfinityBrendelBethgeAttack``)."""

    norm = linf


class L1BrendelBethgeAttack(_BrendelBethgeAttack):
    """The Brendel-Bethge attack in L1 (Foolbox's ``L1BrendelBethgeAttack``)."""

    norm = l1


class L0BrendelBethgeAttack(_BrendelBethgeAttack):
    """The Brendel-Bethge attack in L0 (Foolbox's ``L0BrendelBethgeAttack``)."""

    norm = l0


LinfBrendelBethgeAttack = LinfinityBrendelBethgeAttack
