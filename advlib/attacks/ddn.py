"""Decoupled Direction and Norm (Rony et al., 2019, arXiv:1811.09600), an L2 attack.

Each step moves along the normalised cross-entropy gradient, then rescales the perturbation to
a norm ``epsilon`` that shrinks by ``gamma`` while the sample is adversarial and grows by
``gamma`` while it is not. The step size is annealed from 1 to 0.01 along a cosine.
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd, crossentropy_sum, dtype_name
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l2
from ._minimization import (
    any_active,
    check_float,
    check_int,
    check_seed,
    freeze,
    keep_best,
    still_active,
)
from ._optim import at_step, check_interval, cosine_schedule, schedule_tensor
from .base import MinimizationAttack

_MAX_STEPSIZE, _MIN_STEPSIZE = 1.0, 0.01
_TINY = 1e-12


class DDNAttack(MinimizationAttack):
    """The Decoupled Direction and Norm L2 attack, with Foolbox's signature and defaults.

    Args:
        init_epsilon: the starting norm of the perturbation (default 1.0).
        steps: number of steps (default 100).
        gamma: relative change of the norm per step (default 0.05).
        seed: seed of the random direction used where the gradient is exactly zero; None
            draws fresh randomness on every call.
    """

    norm = l2

    def __init__(
        self,
        *,
        init_epsilon: float = 1.0,
        steps: int = 100,
        gamma: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.init_epsilon = check_float(init_epsilon, "init_epsilon")
        self.steps = check_int(steps, "steps")
        self.gamma = check_float(gamma, "gamma")
        if not self.gamma < 1:
            raise ValueError(f"gamma: expected a number in (0, 1), got {gamma!r}")
        self.seed = check_seed(seed)

    def perturb(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        early_stop: float | None = None,
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        n = inputs.shape[0]
        gradient = model.compiled(
            self._step_key("gradient", targeted), lambda: _make_gradient(model, targeted)
        )
        update = model.compiled(self._step_key("update"), lambda: self._make_update(model))
        lower, upper = model.bounds
        fallback = self.norm.sample_unit_ball(self._generator(), tuple(inputs.shape))
        fallback_t = l2.normalize(ep.from_numpy(inputs, fallback.astype(dtype_name(inputs))))
        worst_norm = l2(ep.maximum(inputs - lower, upper - inputs))

        delta = ep.zeros_like(inputs)
        epsilon = ep.full(inputs, (n,), self.init_epsilon)
        best, best_size = inputs, ep.full(inputs, (n,), float("inf"))
        found = ep.zeros(inputs, (n,)).bool()
        active = ep.ones(inputs, (n,)).bool()
        step_index = ep.zeros(inputs, ())
        stepsizes = schedule_tensor(
            inputs, cosine_schedule(_MAX_STEPSIZE, _MIN_STEPSIZE, self.steps)
        )
        interval = check_interval(self.steps)
        for step in progress.steps(self.steps):
            if step % interval == 0:
                active = still_active(active, best_size, early_stop)
                if not any_active(active):
                    break
            candidate, logits, grad = gradient(delta, inputs, classes)
            is_adv = criterion(candidate, logits)
            delta, epsilon, best, best_size, found, step_index = update(
                delta,
                epsilon,
                grad,
                is_adv,
                candidate,
                best,
                best_size,
                found,
                inputs,
                worst_norm,
                fallback_t,
                active,
                step_index,
                stepsizes,
            )
        return best

    def _make_update(self, model: Model) -> StepFn:
        lower, upper = model.bounds
        gamma = self.gamma

        def update(
            delta: ep.Tensor,
            epsilon: ep.Tensor,
            grad: ep.Tensor,
            is_adv: ep.Tensor,
            candidate: ep.Tensor,
            best: ep.Tensor,
            best_size: ep.Tensor,
            found: ep.Tensor,
            inputs: ep.Tensor,
            worst_norm: ep.Tensor,
            fallback: ep.Tensor,
            active: ep.Tensor,
            step_index: ep.Tensor,
            stepsizes: ep.Tensor,
        ) -> tuple[ep.Tensor, ...]:
            best, best_size, found = keep_best(
                best, best_size, found, candidate, l2(delta), is_adv, active
            )
            stepsize = at_step(stepsizes, step_index)
            grad_norm = l2(grad)
            direction = ep.where(
                atleast_kd(grad_norm < _TINY, grad.ndim),
                fallback,
                grad / atleast_kd(ep.maximum(grad_norm, _TINY), grad.ndim),
            )
            moved = delta + stepsize * direction
            new_epsilon = ep.minimum(
                epsilon * ep.where(is_adv, 1.0 - gamma, 1.0 + gamma), worst_norm
            )
            scale = new_epsilon / ep.maximum(l2(moved), _TINY)
            moved = (inputs + moved * atleast_kd(scale, moved.ndim)).clip(lower, upper) - inputs
            return (
                freeze(active, moved, delta),
                ep.where(active, new_epsilon, epsilon),
                best,
                best_size,
                found,
                step_index + 1,
            )

        return update


def _make_gradient(model: Model, targeted: bool) -> StepFn:
    """``(delta, inputs, classes) -> (inputs + delta, logits, gradient)`` of the cross-entropy,
    ascended away from the labels or descended towards the targets."""
    lower, upper = model.bounds
    sign = -1.0 if targeted else 1.0

    def gradient(
        delta: ep.Tensor, inputs: ep.Tensor, classes: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        def loss_fn(x: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            logits = model(x)
            return sign * crossentropy_sum(logits, classes), logits

        x = (inputs + delta).clip(lower, upper)
        _, logits, grad = model.value_and_grad(loss_fn, x)
        return x, logits, grad

    return gradient
