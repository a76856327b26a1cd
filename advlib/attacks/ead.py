"""The elastic-net attack EAD (Chen et al., 2018, arXiv:1709.04114), measured in L1.

Minimises ``c * max(margin(x') + confidence, 0) + ||x' - x||_2^2 + beta * ||x' - x||_1`` with
FISTA: a gradient step on the smooth part, then element-wise shrinkage-thresholding of the
perturbation by ``beta`` and clipping to the bounds, with Nesterov momentum. The constant ``c`` is
binary-searched per sample as in C&W.
"""

from __future__ import annotations

from typing import NamedTuple

import eagerpy as ep

from ..models.base import Model, StepFn
from ..norms import l1
from ._constant_search import Constants, ConstantSearchAttack, Report
from ._losses import squared_l2, with_confidence
from ._minimization import Best, Problem, check_float, freeze


class _State(NamedTuple):
    """FISTA's state: the iterate, the momentum point and the step counter (0-d)."""

    x: ep.Tensor
    y: ep.Tensor
    step_index: ep.Tensor


_DECISION_RULES = ("EN", "L1")


class EADAttack(ConstantSearchAttack):
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
    initial_stepsize: float
    regularization: float
    decision_rule: str

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
        own = {
            "initial_stepsize": check_float(initial_stepsize, "initial_stepsize"),
            "regularization": check_float(regularization, "regularization", positive=False),
            "decision_rule": _checked_rule(decision_rule),
        }
        self._check_search(binary_search_steps, steps, confidence, initial_const, abort_early, own)

    def _still_active(self, active: ep.Tensor, best: Best, problem: Problem) -> ep.Tensor:
        """Running samples that have no adversarial within ``early_stop`` in L1 yet (the
        decision rule's score need not be the L1 norm)."""
        if problem.early_stop is None:
            return active
        within = l1(best.x - problem.inputs) <= problem.early_stop
        done = ep.logical_and(best.size < float("inf"), within)
        return ep.logical_and(active, ep.logical_not(done))

    def _start(self, constants: Constants) -> _State:
        inputs = constants.inputs
        return _State(inputs, inputs, ep.zeros(inputs, ()))

    def _make_step(self, model: Model, targeted: bool) -> StepFn:
        confidence, beta, steps = self.confidence, self.regularization, self.steps
        initial_stepsize, by_l1 = self.initial_stepsize, self.decision_rule == "L1"
        lower, upper = model.bounds
        losses_of = self._make_losses(targeted)

        def step(state: _State, c: Constants, active: ep.Tensor) -> tuple[_State, Report]:
            """One FISTA step from the momentum point ``y``. Reports the new iterate, its
            criterion logits and decision-rule score, and the per-sample loss at ``y``."""
            x, y, step_index = state

            def loss_fn(y_: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits_ = model(y_)
                return losses_of(y_, logits_, c.inputs, c).sum(), logits_

            _, y_logits, grad = model.value_and_grad(loss_fn, y)
            losses = losses_of(y, y_logits, c.inputs, c)
            stepsize = initial_stepsize * ep.sqrt(1.0 - step_index / steps)
            x_next = _shrink(y - stepsize * grad, c.inputs, beta, lower, upper)
            momentum = step_index / (step_index + 3.0)
            y_next = x_next + momentum * (x_next - x)
            x_next, y_next = freeze(active, x_next, x), freeze(active, y_next, y)

            logits = with_confidence(model(x_next), c.classes, targeted, confidence)
            delta = x_next - c.inputs
            score = l1(delta) if by_l1 else beta * l1(delta) + squared_l2(delta)
            return _State(x_next, y_next, step_index + 1), Report(x_next, logits, losses, score)

        return step


def _checked_rule(decision_rule: str) -> str:
    if decision_rule not in _DECISION_RULES:
        raise ValueError(f"decision_rule: expected 'EN' or 'L1', got {decision_rule!r}")
    return decision_rule


def _shrink(z: ep.Tensor, inputs: ep.Tensor, beta: float, lower: float, upper: float) -> ep.Tensor:
    """Projected shrinkage-thresholding: perturbations within ``beta`` become zero, larger ones
    shrink by ``beta``; the result is clipped to the bounds."""
    delta = z - inputs
    shrunk = inputs + ep.maximum(delta.abs() - beta, 0.0) * delta.sign()
    return shrunk.clip(lower, upper)
