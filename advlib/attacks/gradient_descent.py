"""The FGM / BIM / PGD / MI-FGSM family: one loop, with the norm's hooks.

Each step ascends the cross-entropy (or descends it towards a target class) along the norm's
steepest direction, then projects back into the epsilon ball and the bounds. The step is a pure
function compiled by the model wrapper; random starts are drawn from the seed outside it.

The family's classes differ in their defaults only: each declares its constructor with
:func:`family_constructor` (FGM: ``keyword_constructor``), and :meth:`GradientDescentAttack.
_configure` checks and stores the arguments of all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import eagerpy as ep

from .. import _progress as progress
from .._tensors import crossentropy_sum, dtype_name
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ._minimization import check_seed
from ._optim import AdamState, adam_init, adam_step
from ._signatures import REQUIRED, keyword_constructor
from .base import FixedEpsilonAttack

#: What the ascent direction keeps between steps (momentum variants: the accumulator).
State = tuple[ep.Tensor, ...]


class Constants(NamedTuple):
    """What stays fixed during one attack."""

    origin: ep.Tensor  # the inputs
    classes: ep.Tensor  # the labels, or the targets of a targeted criterion
    eps: ep.Tensor  # the budget, 0-d
    stepsize: ep.Tensor  # the step size, 0-d
    region: tuple[ep.Tensor, ...]  # the norm's region constants (see Norm.region)


class Iterate(NamedTuple):
    """What every step changes."""

    x: ep.Tensor
    state: State  # the direction's state


class GradientDescentAttack(FixedEpsilonAttack):
    """Iterated gradient steps in the norm ``self.norm``.

    Args:
        rel_stepsize: step size relative to epsilon (used when ``abs_stepsize`` is None).
        abs_stepsize: step size in input units; overrides ``rel_stepsize``. Default None.
        steps: number of gradient steps.
        random_start: start from a uniform random point of the epsilon ball.
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    returns_projected = True
    #: Whether every step moves at most the step size in the norm (a normalized direction),
    #: so that one step of at most epsilon from the inputs cannot leave the ball.
    unit_steps: ClassVar[bool] = True

    __init__ = keyword_constructor(
        rel_stepsize=REQUIRED, abs_stepsize=None, steps=REQUIRED, random_start=REQUIRED, seed=None
    )

    def _configure(
        self,
        *,
        rel_stepsize: float,
        abs_stepsize: float | None,
        steps: int,
        random_start: bool,
        seed: int | None,
    ) -> None:
        """Check and store the constructor's arguments (every class of the family)."""
        self.rel_stepsize = _positive(rel_stepsize, "rel_stepsize")
        self.abs_stepsize = (
            None if abs_stepsize is None else _positive(abs_stepsize, "abs_stepsize")
        )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        self.steps = steps
        self.random_start = bool(random_start)
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        if epsilon == 0:
            return inputs
        return self._ascend(model, inputs, classes, targeted, epsilon)

    def _stepsize(self, epsilon: float) -> float:
        """The step size in input units for a budget ``epsilon``."""
        return self.abs_stepsize if self.abs_stepsize is not None else self.rel_stepsize * epsilon

    def _ascend(
        self, model: Model, inputs: ep.Tensor, classes: ep.Tensor, targeted: bool, epsilon: float
    ) -> ep.Tensor:
        """The attack for a budget ``epsilon > 0``; ``classes`` are the labels, or the targets
        where ``targeted``."""
        stepsize = self._stepsize(epsilon)
        # One step of at most epsilon from the inputs cannot leave the ball (the norm's
        # normalized directions have norm <= 1): FGSM and FGM then only clip to the bounds.
        inside = (
            self.unit_steps and self.steps == 1 and not self.random_start and stepsize <= epsilon
        )
        step = model.compiled(
            self._step_key("step", targeted, inside),
            lambda: self._make_step(model, targeted, inside),
        )
        eps, size = model.scalars(inputs, epsilon, stepsize)
        x, region = self._start(model, inputs, epsilon, eps, with_region=not inside)
        constants = Constants(inputs, classes, eps, size, region)
        iterate = Iterate(x, self._initial_state(inputs))
        for _ in progress.steps(self.steps):
            iterate = step(iterate, constants)
        return iterate.x

    def _start(
        self,
        model: Model,
        inputs: ep.Tensor,
        epsilon: float,
        eps_tensor: ep.Tensor,
        with_region: bool,
    ) -> tuple[ep.Tensor, tuple[ep.Tensor, ...]]:
        """The first point (random in the ball, drawn on the host from the seed, or the
        inputs) and, when ``with_region``, the norm's region constants; one compiled call.
        ``eps_tensor`` is ``epsilon`` as a cached 0-d tensor."""
        if not (self.random_start or with_region):
            return inputs, ()
        noise = None
        if self.random_start:
            sample = self.norm.sample_unit_ball(self._generator(), tuple(inputs.shape)) * epsilon
            noise = ep.from_numpy(inputs, sample.astype(dtype_name(inputs)))
        norm, bounds = self.norm, model.bounds

        def start(
            origin: ep.Tensor, noise: ep.Tensor | None, eps: ep.Tensor
        ) -> tuple[ep.Tensor | None, tuple[ep.Tensor, ...]]:
            # None rather than the unchanged origin, which compiled code would copy.
            x = None if noise is None else (origin + noise).clip(*bounds)
            return x, norm.region(origin, eps, bounds) if with_region else ()

        key = self._step_key(
            "start", with_region, family=GradientDescentAttack, settings=("random_start",)
        )
        x, region = model.compiled(key, lambda: start)(inputs, noise, eps_tensor)
        return (inputs if x is None else x), region

    def _make_step(self, model: Model, targeted: bool, inside: bool) -> StepFn:
        """``step(iterate, constants) -> iterate``, pure; ``inside``: the step stays in the
        ball, so only clip to the bounds."""
        norm, bounds = self.norm, model.bounds

        def step(iterate: Iterate, constants: Constants) -> Iterate:
            classes = constants.classes

            def loss(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits = model(z)
                entropy = crossentropy_sum(logits, classes)
                return (-entropy if targeted else entropy), logits

            _, _, grad = model.value_and_grad(loss, iterate.x)
            x, state = self._move(iterate.x, grad, iterate.state, constants.stepsize)
            if inside:
                return Iterate(x.clip(*bounds), state)
            origin, eps, region = constants.origin, constants.eps, constants.region
            return Iterate(norm.project_region(x, origin, eps, region, bounds), state)

        return step

    def _initial_state(self, inputs: ep.Tensor) -> State:
        return ()

    def _move(
        self, x: ep.Tensor, grad: ep.Tensor, state: State, stepsize: ep.Tensor
    ) -> tuple[ep.Tensor, State]:
        """One step up the loss from ``x`` along its gradient ``grad``, before projecting:
        the norm's steepest step of size ``stepsize`` along :meth:`_direction`."""
        direction, state = self._direction(grad, state)
        return self.norm.ascend(x, direction, stepsize), state

    def _direction(self, grad: ep.Tensor, state: State) -> tuple[ep.Tensor, State]:
        """The ascent direction for this step, before the norm normalizes it; momentum
        variants keep state here."""
        return grad, state


def family_constructor(
    rel_stepsize: float, steps: int, random_start: bool, **extra: Any
) -> Callable[..., None]:
    """The keyword-only constructor of a class of the family with these defaults: the
    arguments of :class:`GradientDescentAttack` (``abs_stepsize`` and ``seed`` default None)
    and, before ``seed``, the class's ``extra`` ones."""
    return keyword_constructor(
        rel_stepsize=rel_stepsize,
        abs_stepsize=None,
        steps=steps,
        random_start=random_start,
        **extra,
        seed=None,
    )


#: The Adam arguments of the Adam variants, with Foolbox's defaults.
ADAM_DEFAULTS: dict[str, float] = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}


class AdamGradientDescentAttack(GradientDescentAttack):
    """Foolbox's Adam variants of the family: the norm's normalized gradient (its sign for
    Linf) goes through bias-corrected Adam, and the step is Adam's update times the step
    size, unnormalized (it may exceed the step size in the norm), then projected.

    Args: those of :class:`GradientDescentAttack`, and
        adam_beta1: decay of the first moment estimate, in [0, 1) (default 0.9).
        adam_beta2: decay of the second moment estimate, in [0, 1) (default 0.999).
        adam_epsilon: added to the root of the second moment, > 0 (default 1e-8).
    """

    #: False where Foolbox takes the Adam arguments but never uses Adam (its L1 and L2 BIM).
    uses_adam: ClassVar[bool] = True
    unit_steps = False  # Adam's steps are not normalized (set per subclass below)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.unit_steps = not cls.uses_adam

    def _configure(  # type: ignore[override]
        self, *, adam_beta1: float, adam_beta2: float, adam_epsilon: float, **arguments: Any
    ) -> None:
        super()._configure(**arguments)
        self.adam_beta1 = _decay(adam_beta1, "adam_beta1")
        self.adam_beta2 = _decay(adam_beta2, "adam_beta2")
        self.adam_epsilon = _positive(adam_epsilon, "adam_epsilon")

    def _initial_state(self, inputs: ep.Tensor) -> State:
        return adam_init(inputs) if self.uses_adam else ()

    def _move(
        self, x: ep.Tensor, grad: ep.Tensor, state: State, stepsize: ep.Tensor
    ) -> tuple[ep.Tensor, State]:
        if not self.uses_adam:
            return super()._move(x, grad, state, stepsize)
        # Adam is odd in the gradient: adding its update for the gradient ascends.
        update, adam = adam_step(
            self.norm.normalize(grad),
            AdamState(*state),
            stepsize,
            self.adam_beta1,
            self.adam_beta2,
            self.adam_epsilon,
        )
        return x + update, adam


def _decay(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)
