"""The Carlini & Wagner L2 attack (Carlini & Wagner, 2017, arXiv:1608.04644).

Minimises ``||x' - x||_2^2 + c * max(margin(x') + confidence, 0)`` with Adam over a tanh
reparametrisation that keeps ``x'`` inside the bounds, and binary-searches the constant ``c``
per sample. Per-sample constants and the best adversarial found so far stay on the device.
"""

from __future__ import annotations

from typing import NamedTuple

import eagerpy as ep

from .._tensors import scalar_like
from ..models.base import Bounds, Model, StepFn
from ..norms import l2
from ._constant_search import Constants, ConstantSearchAttack, Report
from ._losses import with_confidence
from ._minimization import check_float, freeze
from ._optim import AdamState, adam_init, adam_step

# Maps the bounds into the open interval (-1, 1) so arctanh stays finite at the bounds.
_TANH_SHRINK = 0.999999


class _TanhSpace(NamedTuple):
    """C&W's constants of one call."""

    w_start: ep.Tensor  # the inputs in tanh space, where every round starts
    origin: ep.Tensor  # the inputs after the round trip through tanh space
    stepsize: ep.Tensor  # Adam's step size (0-d)


class _State(NamedTuple):
    """The optimiser's state: the variable in tanh space and Adam's state."""

    w: ep.Tensor
    adam: AdamState


class L2CarliniWagnerAttack(ConstantSearchAttack):
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
    stepsize: float

    def __init__(
        self,
        binary_search_steps: int = 9,
        steps: int = 10000,
        stepsize: float = 1e-2,
        confidence: float = 0,
        initial_const: float = 1e-3,
        abort_early: bool = True,
    ) -> None:
        own = {"stepsize": check_float(stepsize, "stepsize")}
        self._check_search(binary_search_steps, steps, confidence, initial_const, abort_early, own)

    def _extra(self, model: Model, inputs: ep.Tensor) -> _TanhSpace:
        w_start = _to_tanh_space(inputs, model.bounds)
        origin = _from_tanh_space(w_start, model.bounds)
        return _TanhSpace(w_start, origin, scalar_like(inputs, self.stepsize))

    def _start(self, constants: Constants) -> _State:
        w_start = constants.extra.w_start
        return _State(w_start, adam_init(w_start))

    def _make_step(self, model: Model, targeted: bool) -> StepFn:
        confidence, bounds = self.confidence, model.bounds
        losses_of = self._make_losses(targeted)

        def step(state: _State, c: Constants, active: ep.Tensor) -> tuple[_State, Report]:
            """One Adam step on the running samples. Reports the point the step started from,
            its logits as the criterion should see them, its per-sample loss and its L2
            distance to the inputs."""
            origin = c.extra.origin

            def loss_fn(w_: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                x_ = _from_tanh_space(w_, bounds)
                logits_ = model(x_)
                return losses_of(x_, logits_, origin, c).sum(), logits_

            _, logits, grad = model.value_and_grad(loss_fn, state.w)
            x = _from_tanh_space(state.w, bounds)
            losses = losses_of(x, logits, origin, c)
            update, adam = adam_step(grad, state.adam, c.extra.stepsize)
            w_next = freeze(active, state.w - update, state.w)
            criterion_logits = with_confidence(logits, c.classes, targeted, confidence)
            return _State(w_next, adam), Report(x, criterion_logits, losses, l2(x - c.inputs))

        return step


def _to_tanh_space(x: ep.Tensor, bounds: Bounds) -> ep.Tensor:
    center, half_range = (bounds.upper + bounds.lower) / 2, (bounds.upper - bounds.lower) / 2
    return (((x - center) / half_range) * _TANH_SHRINK).arctanh()


def _from_tanh_space(w: ep.Tensor, bounds: Bounds) -> ep.Tensor:
    center, half_range = (bounds.upper + bounds.lower) / 2, (bounds.upper - bounds.lower) / 2
    return w.tanh() * half_range + center
