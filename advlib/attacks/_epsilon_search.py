"""The driver DDN and FMN share: gradient steps whose size follows a cosine schedule, each
followed by a projection onto an epsilon ball whose radius adapts per sample.

Every step is two compiled calls: the gradient of the attack's loss at the current point
(:func:`make_gradient`), then the update (:meth:`EpsilonSearchAttack._make_update`), which keeps
the smallest adversarial, moves along the attack's direction, sets the new radius and fits the
perturbation to it. The attacks differ in the loss, the direction, the radius rule and the fit.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import eagerpy as ep

from .. import _progress as progress
from ..models.base import Model, StepFn
from ._minimization import (
    Best,
    Minimizer,
    Problem,
    any_active,
    best_init,
    freeze,
    keep_best,
    still_active,
)
from ._optim import at_step, check_interval, cosine_schedule, schedule_tensor

# The loss of a gradient step: (logits, classes) -> a 0-d total to ascend.
Loss = Callable[[ep.Tensor, ep.Tensor], ep.Tensor]


class Constants(NamedTuple):
    """What the update reads and never changes within a call."""

    inputs: ep.Tensor
    classes: ep.Tensor  # the labels (untargeted) or the targets
    worst_norm: ep.Tensor  # per sample, the largest perturbation within the bounds
    stepsizes: ep.Tensor  # the step size of every step (the cosine schedule)
    extra: Any  # the attack's own constants (a tensor or a tuple of them)


class Probe(NamedTuple):
    """The gradient step's result."""

    x: ep.Tensor  # the current point: the inputs plus the perturbation, within the bounds
    logits: ep.Tensor  # the logits at ``x``
    grad: ep.Tensor  # the gradient of the loss at ``x``


class State(NamedTuple):
    """The update's state."""

    delta: ep.Tensor  # the current perturbation
    epsilon: ep.Tensor  # per sample, the radius of the ball the next step is fitted to
    best: Best
    step_index: ep.Tensor  # 0-d


class Observation(NamedTuple):
    """What the radius rule sees inside the compiled update (never crosses a compile
    boundary: ``targeted`` is a Python bool)."""

    state: State  # the best adversarials already updated with this step's point
    probe: Probe
    is_adv: ep.Tensor  # whether ``probe.x`` is adversarial
    size: ep.Tensor  # the norm of the current perturbation
    constants: Constants
    targeted: bool


def make_gradient(model: Model, loss: Loss) -> StepFn:
    """The pure step ``(delta, inputs, classes) -> Probe`` at ``inputs + delta`` clipped to the
    bounds; the gradient ascends ``loss``."""
    lower, upper = model.bounds

    def gradient(delta: ep.Tensor, inputs: ep.Tensor, classes: ep.Tensor) -> Probe:
        def loss_fn(x_: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            logits_ = model(x_)
            return loss(logits_, classes), logits_

        x = (inputs + delta).clip(lower, upper)
        _, logits, grad = model.value_and_grad(loss_fn, x)
        return Probe(x, logits, grad)

    return gradient


def run_steps(
    problem: Problem,
    steps: int,
    classes: ep.Tensor,
    step_fns: tuple[StepFn, StepFn],
    state: Any,
    constants: Any,
) -> ep.Tensor:
    """The loop of the gradient minimizers: ``steps`` times a compiled ``gradient`` at
    ``inputs + state.delta`` then ``state = update(state, probe, is_adv, active, constants)``
    (``step_fns`` is ``(gradient, update)``); the samples adversarial within ``early_stop``
    stop (read every :func:`check_interval` steps, a host sync). ``state.best.x``."""
    _, inputs, criterion, early_stop = problem
    gradient, update = step_fns
    active = ep.ones(inputs, (inputs.shape[0],)).bool()
    interval = check_interval(steps)
    for step in progress.steps(steps):
        if step % interval == 0:
            active = still_active(active, state.best.size, early_stop)
            if not any_active(active):
                break
        probe = gradient(state.delta, inputs, classes)
        state = update(state, probe, criterion(probe.x, probe.logits), active, constants)
    best: ep.Tensor = state.best.x
    return best


class EpsilonSearchAttack(Minimizer):
    """A minimization attack driven by the epsilon search. Subclasses give the loss, the start,
    the radius rule, the direction and the fit (the abstract methods below)."""

    steps: int

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        classes, targeted = criterion.gradient_target()
        gradient = model.compiled(
            self._step_key("gradient", targeted), lambda: make_gradient(model, self._loss(targeted))
        )
        update = model.compiled(
            self._step_key("update", targeted), lambda: self._make_update(model, targeted)
        )
        constants = self._constants(model, inputs, classes)
        delta, epsilon = self._start(problem)
        state = State(delta, epsilon, best_init(inputs), ep.zeros(inputs, ()))
        return run_steps(problem, self.steps, classes, (gradient, update), state, constants)

    def _constants(self, model: Model, inputs: ep.Tensor, classes: ep.Tensor) -> Constants:
        lower, upper = model.bounds
        worst_norm = self.norm(ep.maximum(inputs - lower, upper - inputs))
        stepsizes = schedule_tensor(inputs, cosine_schedule(*self._stepsizes(), self.steps))
        return Constants(inputs, classes, worst_norm, stepsizes, self._extra(inputs))

    def _make_update(self, model: Model, targeted: bool) -> StepFn:
        lower, upper = model.bounds
        norm = self.norm

        def update(
            state: State, probe: Probe, is_adv: ep.Tensor, active: ep.Tensor, c: Constants
        ) -> State:
            size = norm(state.delta)
            best = keep_best(state.best, probe.x, size, is_adv, active)
            seen = Observation(state._replace(best=best), probe, is_adv, size, c, targeted)
            epsilon = ep.minimum(self._radius(seen), c.worst_norm)
            stepsize = at_step(c.stepsizes, state.step_index)
            moved = state.delta + stepsize * self._direction(probe.grad, c)
            moved = (c.inputs + self._fit(moved, epsilon)).clip(lower, upper) - c.inputs
            return State(
                freeze(active, moved, state.delta),
                ep.where(active, epsilon, state.epsilon),
                best,
                state.step_index + 1,
            )

        return update

    def _extra(self, inputs: ep.Tensor) -> Any:
        """The attack's own constants of one call (:attr:`Constants.extra`); none by
        default."""
        return ()

    @abstractmethod
    def _loss(self, targeted: bool) -> Loss:
        """The loss the gradient ascends."""

    @abstractmethod
    def _stepsizes(self) -> tuple[float, float]:
        """The first and the last step size of the cosine schedule."""

    @abstractmethod
    def _start(self, problem: Problem) -> tuple[ep.Tensor, ep.Tensor]:
        """The first perturbation and the first radius."""

    @abstractmethod
    def _radius(self, seen: Observation) -> ep.Tensor:
        """The next radius per sample (before the cap at ``worst_norm``)."""

    @abstractmethod
    def _direction(self, grad: ep.Tensor, c: Constants) -> ep.Tensor:
        """The direction of the step (multiplied by the step size)."""

    @abstractmethod
    def _fit(self, moved: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        """The moved perturbation fitted to the radius ``epsilon``."""
