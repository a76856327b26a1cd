"""NewtonFool (Jang et al., 2017), an L2 minimization attack, as Foolbox 3.3.4 runs it.

Each step lowers the softmax probability ``p`` of the label by a Newton step along its
gradient ``g``: ``delta = min(stepsize * s(x0) * s(g), p - 1/C)`` and ``x <- clip(x - delta *
g / s(g)**2)``, where ``s`` is the squared L2 norm (Foolbox's formula, which squares the norms
of the paper) and ``C`` the number of classes. Samples no longer classified as their label
stop moving; the result is the last iterate.
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd, flat_batch
from ..models.base import Model, StepFn
from ..norms import l2
from ._losses import class_logit
from ._minimization import Minimizer, Problem, any_active, check_float, check_int
from ._optim import check_interval


class NewtonFoolAttack(Minimizer):
    """NewtonFool with Foolbox's signature, defaults and update (untargeted only).

    Args:
        steps: number of update steps (default 100).
        stepsize: the Newton step's size relative to the input's and gradient's squared
            norms (default 0.01).
    """

    norm = l2
    supports_targeted = False

    def __init__(self, steps: int = 100, stepsize: float = 0.01) -> None:
        self.steps = check_int(steps, "steps")
        self.stepsize = check_float(stepsize, "stepsize")

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs = problem.model, problem.inputs
        classes, _ = problem.criterion.gradient_target()
        step = model.compiled(self._step_key("step"), lambda: _make_step(model))
        (stepsize,) = model.scalars(inputs, self.stepsize)
        scale = stepsize * flat_batch(inputs).square().sum(axis=-1)
        x, every = inputs, check_interval(self.steps)
        for i in progress.steps(self.steps):
            x, active = step(x, classes, scale)
            # Stopped samples do not move: leaving once all stopped changes nothing.
            if (i + 1) % every == 0 and not any_active(active):
                break
        return x


def _make_step(model: Model) -> StepFn:
    """``step(x, classes, scale) -> (x, active)``: one Newton step for the samples still
    classified as their label (``active``); ``scale`` is ``stepsize * s(x0)`` per sample."""
    bounds = model.bounds

    def step(x: ep.Tensor, classes: ep.Tensor, scale: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
        def loss(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            probabilities = model(z).softmax(axis=-1)
            return class_logit(probabilities, classes).sum(), probabilities

        _, probabilities, grad = model.value_and_grad(loss, x)
        squared = flat_batch(grad).square().sum(axis=-1)
        gap = class_logit(probabilities, classes) - 1.0 / probabilities.shape[-1]
        delta = ep.minimum(scale * squared, gap)
        active = probabilities.argmax(axis=-1) == classes
        # A vanishing gradient (its fourth power underflows) cannot give a Newton step.
        movable = ep.logical_and(active, squared.square() > 0)
        factor = ep.where(movable, delta / ep.where(movable, squared.square(), 1.0), 0.0)
        return (x - atleast_kd(factor, x.ndim) * grad).clip(*bounds), active

    return step
