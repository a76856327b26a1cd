"""The elastic-net attack EAD (Chen et al., 2018, arXiv:1709.04114), measured in L1.

Minimises ``c * max(margin(x') + confidence, 0) + ||x' - x||_2^2 + beta * ||x' - x||_1`` with
FISTA: a gradient step on the smooth part, then element-wise shrinkage-thresholding of the
perturbation by ``beta`` and clipping to the bounds, with Nesterov momentum. The constant ``c`` is
binary-searched per sample as in C&W.
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l1
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
)
from ._optim import check_interval
from .base import MinimizationAttack

_DECISION_RULES = ("EN", "L1")


class EADAttack(MinimizationAttack):
    """EAD with the elastic-net decision rule, with Foolbox's signature and defaults.

    Args:
        binary_search_steps: rounds of the per-sample search over the constant ``c``
            (default 9). With 10 or more, the last round uses the smallest successful constant.
        steps: FISTA steps per round (default 10000).
        initial_stepsize: the first step size, decayed as ``sqrt(1 - step / steps)``
            (default 1e-2).
        confidence: logit margin an adversarial must reach beyond the decision boundary
            (default 0).
        initial_const: the constant ``c`` of the first round (default 1e-3).
        regularization: ``beta``, the weight of the L1 term and the shrinkage threshold
            (default 1e-2).
        decision_rule: which adversarial to keep: the smallest in ``beta * L1 + L2^2``
            (``"EN"``, the default) or in L1 (``"L1"``).
        abort_early: end a round once the total loss stops decreasing, checked every tenth of
            ``steps`` (default True).

    A sample that never becomes adversarial is returned unchanged (its ``success`` is False).
    """

    norm = l1

    def __init__(
        self,
        binary_search_steps: int = 9,
        steps: int = 10000,
        initial_stepsize: float = 1e-2,
        confidence: float = 0.0,
        initial_const: float = 1e-3,
        regularization: float = 1e-2,
        decision_rule: str = "EN",
        abort_early: bool = True,
    ) -> None:
        self.binary_search_steps = check_int(binary_search_steps, "binary_search_steps")
        self.steps = check_int(steps, "steps")
        self.initial_stepsize = check_float(initial_stepsize, "initial_stepsize")
        self.confidence = check_float(confidence, "confidence", positive=False)
        self.initial_const = check_float(initial_const, "initial_const")
        self.regularization = check_float(regularization, "regularization", positive=False)
        if decision_rule not in _DECISION_RULES:
            raise ValueError(f"decision_rule: expected 'EN' or 'L1', got {decision_rule!r}")
        self.decision_rule = decision_rule
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

        consts = ep.full(inputs, (n,), self.initial_const)
        lower = ep.zeros(inputs, (n,))
        upper = ep.full(inputs, (n,), float("inf"))
        best, best_score = inputs, ep.full(inputs, (n,), float("inf"))
        active = ep.ones(inputs, (n,)).bool()
        interval = check_interval(self.steps)

        for round_ in progress.steps(self.binary_search_steps):
            if round_ == self.binary_search_steps - 1 and self.binary_search_steps >= 10:
                consts = ep.minimum(upper, 1e10)
            x, y = inputs, inputs
            step_index = ep.zeros(inputs, ())
            found = ep.zeros(inputs, (n,)).bool()
            previous_losses = None
            for step in progress.steps(self.steps):
                x, y, step_index, losses, logits, score = optimize(
                    x, y, step_index, inputs, classes, consts, active
                )
                if step % interval == 0:
                    active = self._still_active(active, best, best_score, inputs, early_stop)
                    if not any_active(active):
                        break
                    if self.abort_early:
                        if previous_losses is not None and stalled(losses, previous_losses, active):
                            break
                        previous_losses = losses
                best, best_score, found = keep_best(
                    best, best_score, found, x, score, criterion(x, logits), active
                )
            active = self._still_active(active, best, best_score, inputs, early_stop)
            if not any_active(active):
                break
            consts, lower, upper = bisect_constants(found, consts, lower, upper)
        return best

    @staticmethod
    def _still_active(
        active: ep.Tensor,
        best: ep.Tensor,
        best_score: ep.Tensor,
        inputs: ep.Tensor,
        early_stop: float | None,
    ) -> ep.Tensor:
        """Running samples that have no adversarial within ``early_stop`` in L1 yet (the
        decision rule's score need not be the L1 norm)."""
        if early_stop is None:
            return active
        done = ep.logical_and(best_score < float("inf"), l1(best - inputs) <= early_stop)
        return ep.logical_and(active, ep.logical_not(done))

    def _make_step(self, model: Model, targeted: bool) -> StepFn:
        confidence, beta, steps = self.confidence, self.regularization, self.steps
        initial_stepsize, by_l1 = self.initial_stepsize, self.decision_rule == "L1"
        lower, upper = model.bounds

        def step(
            x: ep.Tensor,
            y: ep.Tensor,
            step_index: ep.Tensor,
            inputs: ep.Tensor,
            classes: ep.Tensor,
            consts: ep.Tensor,
            active: ep.Tensor,
        ) -> tuple[ep.Tensor, ...]:
            """One FISTA step from the momentum point ``y``. Returns the new iterate and
            momentum point, the per-sample loss at ``y``, and the new iterate's criterion logits
            and decision-rule score."""

            def loss_fn(y_: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits_ = model(y_)
                return losses_of(y_, logits_).sum(), logits_

            def losses_of(y_: ep.Tensor, logits_: ep.Tensor) -> ep.Tensor:
                adversarial = ep.maximum(margin(logits_, classes, targeted) + confidence, 0)
                return consts * adversarial + squared_l2(y_ - inputs)

            _, y_logits, grad = model.value_and_grad(loss_fn, y)
            losses = losses_of(y, y_logits)
            stepsize = initial_stepsize * ep.sqrt(1.0 - step_index / steps)
            x_next = _shrink(y - stepsize * grad, inputs, beta, lower, upper)
            momentum = step_index / (step_index + 3.0)
            y_next = x_next + momentum * (x_next - x)
            x_next, y_next = freeze(active, x_next, x), freeze(active, y_next, y)

            logits = with_confidence(model(x_next), classes, targeted, confidence)
            delta = x_next - inputs
            score = l1(delta) if by_l1 else beta * l1(delta) + squared_l2(delta)
            return x_next, y_next, step_index + 1, losses, logits, score

        return step


def _shrink(z: ep.Tensor, inputs: ep.Tensor, beta: float, lower: float, upper: float) -> ep.Tensor:
    """Projected shrinkage-thresholding: perturbations within ``beta`` become zero, larger ones
    shrink by ``beta``; the result is clipped to the bounds."""
    delta = z - inputs
    shrunk = inputs + ep.maximum(delta.abs() - beta, 0.0) * delta.sign()
    return shrunk.clip(lower, upper)
