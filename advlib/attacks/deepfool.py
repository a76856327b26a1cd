"""DeepFool (Moosavi-Dezfooli et al., 2016, arXiv:1511.04599) in L2 and Linf.

Each step linearises the model around the current point and moves to the nearest linearised
decision boundary among the ``candidates`` most likely classes; the accumulated perturbation is
scaled by ``1 + overshoot``. A sample stops moving as soon as it is adversarial.

Targeted criteria use a single boundary per step: between the target and the strongest other
class at the current point.
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd
from ..models.base import Model, StepFn
from ..norms import l2, linf
from ._losses import class_logit, margin, without_classes
from ._minimization import Minimizer, Problem, any_active, check_float, check_int, freeze
from ._optim import check_interval

_LOSSES = ("logits", "crossentropy")
# Added to every linearised distance, as in the reference, so each step crosses the boundary.
_NUDGE = 1e-4
_TINY = 1e-8


class _DeepFoolAttack(Minimizer):
    """DeepFool in ``self.norm``, with Foolbox's signature and defaults.

    Args:
        steps: maximum number of steps (default 50).
        candidates: how many of the most likely classes (the true class included) to consider;
            None means all (default 10). Small values are usually enough and much faster: each
            candidate costs one gradient per step.
        overshoot: relative overshoot of the boundary (default 0.02).
        loss: ``"logits"`` (differences of logits) or ``"crossentropy"`` (differences of
            log-probabilities); default ``"logits"``.
    """

    def __init__(
        self,
        *,
        steps: int = 50,
        candidates: int | None = 10,
        overshoot: float = 0.02,
        loss: str = "logits",
    ) -> None:
        self.steps = check_int(steps, "steps")
        self.candidates = None if candidates is None else check_int(candidates, "candidates", 2)
        self.overshoot = check_float(overshoot, "overshoot", positive=False)
        if loss not in _LOSSES:
            raise ValueError(f"loss: expected 'logits' or 'crossentropy', got {loss!r}")
        self.loss = loss

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        classes, targeted = criterion.gradient_target()
        logits = model(inputs)
        if targeted:
            others = classes[:, None]
        else:
            # The strongest classes other than the label, strongest first.
            count = logits.shape[-1] if self.candidates is None else self.candidates
            count = min(count, logits.shape[-1]) - 1
            others = without_classes(logits, classes).argsort(axis=-1).flip(axis=-1)[:, :count]
        steer = model.compiled(
            self._step_key(targeted, others.shape[-1]),
            lambda: self._make_step(model, targeted, others.shape[-1]),
        )
        advance = model.compiled(self._step_key("advance"), lambda: self._make_advance(model))

        x, total = inputs, ep.zeros_like(inputs)
        is_adv = criterion(x, logits)
        interval = check_interval(self.steps)
        for step in progress.steps(self.steps):
            if step % interval == 0 and not any_active(ep.logical_not(is_adv)):
                break
            step_logits, perturbation = steer(x, classes, others)
            is_adv = criterion(x, step_logits)
            x, total = advance(x, total, perturbation, inputs, is_adv)
        else:
            is_adv = criterion(x, model(x))
        return ep.where(atleast_kd(is_adv, x.ndim), x, inputs)

    def _make_advance(self, model: Model) -> StepFn:
        overshoot, (lower, upper) = 1.0 + self.overshoot, model.bounds

        def advance(
            x: ep.Tensor, total: ep.Tensor, perturbation: ep.Tensor, inputs: ep.Tensor,
            is_adv: ep.Tensor,
        ) -> tuple[ep.Tensor, ep.Tensor]:
            """Add the step to the total perturbation of samples not yet adversarial."""
            total = freeze(ep.logical_not(is_adv), total + perturbation, total)
            moved = (inputs + overshoot * total).clip(lower, upper)
            return freeze(ep.logical_not(is_adv), moved, x), total

        return advance

    def _make_step(self, model: Model, targeted: bool, count: int) -> StepFn:
        norm, dual_norm = self.norm, self.norm.dual
        use_logits = self.loss == "logits"

        def boundary_value(logits: ep.Tensor, classes: ep.Tensor, other: ep.Tensor) -> ep.Tensor:
            """Negative on the original side of the boundary, zero on it."""
            s = logits if use_logits else logits.log_softmax(axis=-1)
            if targeted:  # the target minus the strongest other class
                return -margin(s, classes, True)
            return class_logit(s, other) - class_logit(s, classes)

        def step(
            x: ep.Tensor, classes: ep.Tensor, others: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor]:
            """The logits at ``x`` and the step to the nearest linearised boundary."""
            distances, gradients = [], []
            for k in range(count):

                def loss_fn(x_: ep.Tensor, k: int = k) -> tuple[ep.Tensor, ep.Tensor]:
                    logits_ = model(x_)
                    return boundary_value(logits_, classes, others[:, k]).sum(), logits_

                _, logits, grad = model.value_and_grad(loss_fn, x)
                value = boundary_value(logits, classes, others[:, k])
                distances.append(value.abs() / (dual_norm(grad) + _TINY))
                gradients.append(grad)
            all_distances = ep.stack(distances, axis=1)
            nearest = all_distances.argmin(axis=1)
            chosen = gradients[0]
            for k in range(1, count):  # a per-sample choice, without gathering over the batch
                chosen = ep.where(atleast_kd(nearest == k, x.ndim), gradients[k], chosen)
            distance = class_logit(all_distances, nearest) + _NUDGE
            return logits, atleast_kd(distance, x.ndim) * norm.normalize(chosen)

        return step


class L2DeepFoolAttack(_DeepFoolAttack):
    """DeepFool in L2."""

    norm = l2


class LinfDeepFoolAttack(_DeepFoolAttack):
    """DeepFool in Linf."""

    norm = linf
