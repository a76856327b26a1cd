"""sigma-zero (Cinà et al., 2024, arXiv:2402.01879): gradient-based minimization of the number
of changed input elements (L0).

Each step descends, with Adam, the logit margin clipped at 0 plus a smooth approximation of
the L0 norm, ``mean(delta**2 / (delta**2 + sigma))``, along the gradient normalised by its
Linf norm; clips to the bounds; then zeroes every change smaller than a per-sample threshold.
The threshold grows while the sample is adversarial and shrinks while it is not, by
``threshold_factor`` times the step size, which follows a cosine from ``lr`` to ``lr / 10``.
The smallest adversarial (in L0) seen is returned.

The threshold and its changes are in units of the width of the bounds (the paper's values
are for inputs in [0, 1]).
"""

from __future__ import annotations

from typing import NamedTuple

import eagerpy as ep

from .._tensors import atleast_kd, flat_batch
from ..models.base import Model, StepFn
from ..norms import l0, linf
from ._epsilon_search import Loss, Probe, make_gradient, run_steps
from ._losses import margin
from ._minimization import (
    Best,
    Minimizer,
    Problem,
    best_init,
    check_float,
    check_int,
    freeze,
    keep_best,
)
from ._optim import (
    AdamState,
    adam_init,
    adam_step,
    at_step,
    cosine_schedule,
    schedule_tensor,
)

_TINY = 1e-12


class _Constants(NamedTuple):
    inputs: ep.Tensor
    stepsizes: ep.Tensor  # the cosine schedule of the step size
    threshold_steps: ep.Tensor  # the threshold's change per step, in input units


class _State(NamedTuple):
    delta: ep.Tensor
    adam: AdamState
    threshold: ep.Tensor  # per sample, in input units
    best: Best
    step_index: ep.Tensor  # 0-d


class SigmaZeroAttack(Minimizer):
    """The sigma-zero L0 minimization attack, with the paper's defaults.

    Args:
        steps: number of steps, one gradient each (default 1000).
        lr: the first step size of Adam, annealed along a cosine to ``lr / 10`` (default 1.0).
        sigma: the smoothness of the L0 approximation ``delta**2 / (delta**2 + sigma)``:
            smaller is sharper (default 1e-3).
        threshold: the first threshold below which changes are zeroed, relative to the width
            of the bounds (default 0.3).
        threshold_factor: the threshold's change per step relative to the step size: it
            grows by ``threshold_factor * stepsize`` while the sample is adversarial and
            shrinks by as much while it is not, within [0, 1] (default 0.01).

    Targeted criteria are supported (the margin to the target class); the paper's attack is
    untargeted.
    """

    norm = l0

    def __init__(
        self,
        *,
        steps: int = 1000,
        lr: float = 1.0,
        sigma: float = 1e-3,
        threshold: float = 0.3,
        threshold_factor: float = 0.01,
    ) -> None:
        self.steps = check_int(steps, "steps")
        self.lr = check_float(lr, "lr")
        self.sigma = check_float(sigma, "sigma")
        self.threshold = _unit(threshold, "threshold")
        self.threshold_factor = check_float(threshold_factor, "threshold_factor", positive=False)

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        classes, targeted = criterion.gradient_target()
        gradient = model.compiled(
            self._step_key("gradient", targeted), lambda: make_gradient(model, _loss(targeted))
        )
        update = model.compiled(self._step_key("update"), lambda: self._make_update(model))
        lower, upper = model.bounds
        width = upper - lower
        schedule = cosine_schedule(self.lr, self.lr / 10, self.steps)
        constants = _Constants(
            inputs,
            schedule_tensor(inputs, schedule),
            schedule_tensor(inputs, [self.threshold_factor * width * s for s in schedule]),
        )
        n = inputs.shape[0]
        state = _State(
            ep.zeros_like(inputs),
            adam_init(inputs),
            ep.full(inputs, (n,), self.threshold * width),
            best_init(inputs),
            ep.zeros(inputs, ()),
        )
        return run_steps(problem, self.steps, classes, (gradient, update), state, constants)

    def _make_update(self, model: Model) -> StepFn:
        lower, upper = model.bounds
        sigma, width = self.sigma, upper - lower

        def update(
            state: _State, probe: Probe, is_adv: ep.Tensor, active: ep.Tensor, c: _Constants
        ) -> _State:
            delta = state.delta
            best = keep_best(state.best, probe.x, l0(delta), is_adv, active)
            # The gradient of the L0 approximation's mean over the d elements, in closed form.
            d = flat_batch(delta).shape[-1]
            smooth = 2 * sigma * delta / ((delta.square() + sigma).square() * d)
            grad = probe.grad + smooth
            grad = grad / atleast_kd(ep.maximum(linf(grad), _TINY), grad.ndim)
            stepsize = at_step(c.stepsizes, state.step_index)
            step, adam = adam_step(grad, state.adam, stepsize)
            moved = (c.inputs + delta - step).clip(lower, upper) - c.inputs
            change = at_step(c.threshold_steps, state.step_index)
            threshold = (state.threshold + ep.where(is_adv, change, -change)).clip(0, width)
            moved = ep.where(moved.abs() < atleast_kd(threshold, moved.ndim), 0.0, moved)
            rows = atleast_kd(active, delta.ndim)
            return _State(
                freeze(active, moved, delta),
                AdamState(
                    ep.where(rows, adam.m, state.adam.m),
                    ep.where(rows, adam.v, state.adam.v),
                    adam.beta1_power,
                    adam.beta2_power,
                ),
                ep.where(active, threshold, state.threshold),
                best,
                state.step_index + 1,
            )

        return update


def _loss(targeted: bool) -> Loss:
    """The margin clipped at 0, summed (the update descends its gradient)."""

    def loss(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
        return ep.maximum(margin(logits, classes, targeted), 0.0).sum()

    return loss


def _unit(value: float, name: str) -> float:
    checked = check_float(value, name, positive=False)
    if not checked <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return checked
