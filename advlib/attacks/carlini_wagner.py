"""The Carlini & Wagner L2 attack (Carlini & Wagner, 2017, arXiv:1608.04644).

Minimises ``||x' - x||_2^2 + c * max(margin(x') + confidence, 0)`` with Adam over a tanh
reparametrisation that keeps ``x'`` inside the bounds, and binary-searches the constant ``c``
per sample. Per-sample constants and the best adversarial found so far stay on the device.
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import scalar_like
from ..criteria import Criterion
from ..models.base import Bounds, Model, StepFn
from ..norms import l2
from ._losses import margin, squared_l2, with_confidence
from ._minimization import (
    any_active,
    bisect_constants,
    check_bool,
    check_float,
    check_int,
    compiled_keep_best,
    freeze,
    stalled,
    still_active,
)
from ._optim import AdamState, adam_init, adam_step, check_interval
from .base import MinimizationAttack

# Maps the bounds into the open interval (-1, 1) so arctanh stays finite at the bounds.
_TANH_SHRINK = 0.999999


class L2CarliniWagnerAttack(MinimizationAttack):
    """Carlini & Wagner's L2 attack, with Foolbox's signature and defaults.

    Args:
        binary_search_steps: rounds of the per-sample search over the constant ``c`` that
            weighs the adversarial loss against the distance (default 9). With 10 or more, the
            last round uses the smallest successful constant found so far.
        steps: Adam steps per round (default 10000).
        stepsize: Adam's step size in tanh space (default 1e-2).
        confidence: logit margin an adversarial must reach beyond the decision boundary
            (default 0).
        initial_const: the constant ``c`` of the first round (default 1e-3); multiplied by 10
            each round until a sample succeeds, then bisected.
        abort_early: end a round once the total loss stops decreasing, checked every tenth of
            ``steps`` (default True).

    A sample that never becomes adversarial is returned unchanged (its ``success`` is False).
    """

    norm = l2

    def __init__(
        self,
        binary_search_steps: int = 9,
        steps: int = 10000,
        stepsize: float = 1e-2,
        confidence: float = 0,
        initial_const: float = 1e-3,
        abort_early: bool = True,
    ) -> None:
        self.binary_search_steps = check_int(binary_search_steps, "binary_search_steps")
        self.steps = check_int(steps, "steps")
        self.stepsize = check_float(stepsize, "stepsize")
        self.confidence = check_float(confidence, "confidence", positive=False)
        self.initial_const = check_float(initial_const, "initial_const")
        self.abort_early = check_bool(abort_early, "abort_early")

    def perturb(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        early_stop: float | None = None,
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        n = inputs.shape[0]
        optimize = model.compiled(
            self._step_key(targeted), lambda: self._make_step(model, targeted)
        )
        keep_best = compiled_keep_best(model)
        w_start = _to_tanh_space(inputs, model.bounds)
        origin = _from_tanh_space(w_start, model.bounds)  # the inputs after a round trip
        stepsize = scalar_like(inputs, self.stepsize)

        consts = ep.full(inputs, (n,), self.initial_const)
        lower = ep.zeros(inputs, (n,))
        upper = ep.full(inputs, (n,), float("inf"))
        best, best_size = inputs, ep.full(inputs, (n,), float("inf"))
        active = ep.ones(inputs, (n,)).bool()
        interval = check_interval(self.steps)

        for round_ in progress.steps(self.binary_search_steps):
            if round_ == self.binary_search_steps - 1 and self.binary_search_steps >= 10:
                consts = ep.minimum(upper, 1e10)
            w, adam = w_start, adam_init(w_start)
            found = ep.zeros(inputs, (n,)).bool()
            previous_losses = None
            for step in progress.steps(self.steps):
                w, adam, candidate, logits, losses, size = optimize(
                    w, adam, inputs, origin, classes, consts, stepsize, active
                )
                if step % interval == 0:
                    active = still_active(active, best_size, early_stop)
                    if not any_active(active):
                        break
                    if self.abort_early:
                        if previous_losses is not None and stalled(losses, previous_losses, active):
                            break
                        previous_losses = losses
                best, best_size, found = keep_best(
                    best, best_size, found, candidate, size, criterion(candidate, logits), active
                )
            active = still_active(active, best_size, early_stop)
            if not any_active(active):
                break
            consts, lower, upper = bisect_constants(found, consts, lower, upper)
        return best

    def _make_step(self, model: Model, targeted: bool) -> StepFn:
        confidence, bounds = self.confidence, model.bounds

        def losses_of(
            x: ep.Tensor,
            logits: ep.Tensor,
            origin: ep.Tensor,
            classes: ep.Tensor,
            consts: ep.Tensor,
        ) -> ep.Tensor:
            adversarial = ep.maximum(margin(logits, classes, targeted) + confidence, 0)
            return consts * adversarial + squared_l2(x - origin)

        def step(
            w: ep.Tensor,
            adam: AdamState,
            inputs: ep.Tensor,
            origin: ep.Tensor,
            classes: ep.Tensor,
            consts: ep.Tensor,
            stepsize: ep.Tensor,
            active: ep.Tensor,
        ) -> tuple[ep.Tensor, AdamState, ep.Tensor, ep.Tensor, ep.Tensor, ep.Tensor]:
            """One Adam step on the running samples. Also returns the point the step started
            from, its logits as the criterion should see them, its per-sample loss and its L2
            distance to the inputs."""

            def loss_fn(w_: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                x_ = _from_tanh_space(w_, bounds)
                logits_ = model(x_)
                return losses_of(x_, logits_, origin, classes, consts).sum(), logits_

            _, logits, grad = model.value_and_grad(loss_fn, w)
            x = _from_tanh_space(w, bounds)
            losses = losses_of(x, logits, origin, classes, consts)
            update, adam = adam_step(grad, adam, stepsize)
            w_next = freeze(active, w - update, w)
            criterion_logits = with_confidence(logits, classes, targeted, confidence)
            return w_next, adam, x, criterion_logits, losses, l2(x - inputs)

        return step


def _to_tanh_space(x: ep.Tensor, bounds: Bounds) -> ep.Tensor:
    center, half_range = (bounds.upper + bounds.lower) / 2, (bounds.upper - bounds.lower) / 2
    return (((x - center) / half_range) * _TANH_SHRINK).arctanh()


def _from_tanh_space(w: ep.Tensor, bounds: Bounds) -> ep.Tensor:
    center, half_range = (bounds.upper + bounds.lower) / 2, (bounds.upper - bounds.lower) / 2
    return w.tanh() * half_range + center
