"""The transfer-attack family: MI-FGSM variants whose adversarials fool other models too.

All six classes are the momentum attack of :class:`~advlib.attacks.LinfMomentumIterativeAttack`
(sign steps along ``decay * momentum + g / mean|g|``, projected into the Linf ball and the
bounds), with torchattacks 3.5.1's names and defaults, and differ in how the gradient ``g`` is
estimated:

- :class:`DIFGSM` (Xie et al., 2019): input diversity. With probability ``diversity_prob`` an
  input is resized to a random size in ``[int(W * resize_rate), W)`` and zero-padded back at a
  random offset before the forward pass; the gradient flows through the transform.
- :class:`TIFGSM` (Dong et al., 2019): DI plus translation invariance: ``g`` is smoothed by a
  ``len_kernel`` x ``len_kernel`` kernel (``kernel_name``), per channel.
- :class:`NIFGSM` (Lin et al., 2020): Nesterov look-ahead, ``g`` at
  ``x + decay * stepsize * momentum``.
- :class:`SINIFGSM`: NI plus scale invariance, ``g`` averaged over ``x / 2**i``, ``i < m``.
- :class:`VMIFGSM` (Wang & He, 2021): variance tuning: the step uses ``g + v``, where ``v`` is
  the mean gradient at ``N`` uniform neighbours within ``beta * epsilon`` of the previous
  iterate minus the previous ``g``. :class:`VNIFGSM` adds the Nesterov look-ahead.

Differences from torchattacks, all for the user: random numbers are drawn per sample from the
seed (a sample's result does not depend on its batch), so DI resizes and pads each image
on its own instead of the whole batch alike, and ``resize_rate`` must be below 1 (an enlarged
image would give a batch of mixed shapes); smoothing works for any number of channels
(torchattacks' is fixed to 3); the step size is ``rel_stepsize * epsilon`` (default 0.25:
torchattacks' 2/255 at its 8/255) or ``abs_stepsize`` (torchattacks' ``alpha``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import eagerpy as ep

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import crossentropy_sum, dtype_name
from ..models.base import Model, StepFn
from ._signatures import keyword_constructor
from ._transfer_ops import (
    KERNELS,
    as_maps,
    check_channel_axis,
    check_resize_lengths,
    diversity_maps,
    kernel_1d,
    separable_map,
    smoothing_matrix,
    spatial_axes,
)
from .gradient_descent import Constants, Iterate, State
from .mifgsm import LinfMomentumIterativeAttack

Maps = tuple[ep.Tensor, ep.Tensor]


class Extras(NamedTuple):
    """What the step takes besides the iterate: fixed per call, or drawn per step."""

    smoothing: Maps | tuple[()]  # TI: the kernel's (1, L, L) matrices
    diversity: Maps | tuple[()]  # DI: this step's (N, L, L) matrices
    neighbours: ep.Tensor | None  # VMI: this step's uniform noise in [-1, 1), (N, k, ...)


class _TransferAttack(LinfMomentumIterativeAttack):
    """The momentum attack with the gradient estimates of the transfer family; each public
    class sets its arguments, the neutral values below stand for the ones it lacks."""

    _nesterov: ClassVar[bool] = False
    diversity_prob: float = 0.0
    resize_rate: float = 0.9
    kernel_name: str | None = None
    len_kernel: int = 1
    nsig: float = 3.0
    m: int = 1
    N: int = 0
    beta: float = 1.5
    channel_axis: int | None = None

    def _configure(self, **arguments: Any) -> None:
        own = {k: arguments.pop(k) for k in _OWN if k in arguments}
        super()._configure(**arguments)
        for name, value in own.items():
            setattr(self, name, _CHECKS[name](value, name))

    # ------------------------------------------------------------------ the attack
    def _ascend(
        self, model: Model, inputs: ep.Tensor, classes: ep.Tensor, targeted: bool, epsilon: float
    ) -> ep.Tensor:
        axes = self._axes(model, inputs)
        stepsize = self._stepsize(epsilon)
        step = model.compiled(
            self._step_key("transfer", targeted, axes),
            lambda: self._make_transfer_step(model, targeted, axes),
        )
        eps, size = model.scalars(inputs, epsilon, stepsize)
        constants = Constants(
            inputs, classes, eps, size, self.norm.region(inputs, eps, model.bounds)
        )
        rng = self._generator()
        iterate = Iterate(self._first(model, inputs, epsilon, rng), self._initial_state(inputs))
        smoothing = self._smoothing(inputs, axes)
        for _ in progress.steps(self.steps):
            extras = Extras(smoothing, *self._draws(rng, inputs, axes))
            iterate = step(iterate, constants, extras)
        return iterate.x

    def _axes(self, model: Model, inputs: ep.Tensor) -> tuple[int, int] | None:
        """The spatial axes, for the attacks that transform images (None for the others)."""
        if self.diversity_prob == 0 and self.kernel_name is None:
            return None
        axes = spatial_axes(model, inputs, self.channel_axis)
        if self.diversity_prob > 0:
            check_resize_lengths(_lengths(inputs, axes), self.resize_rate)
        return axes

    def _first(
        self, model: Model, inputs: ep.Tensor, epsilon: float, rng: SampleRandom
    ) -> ep.Tensor:
        if not self.random_start:
            return inputs
        noise = self.norm.sample_unit_ball(rng, tuple(inputs.shape)) * epsilon
        return (inputs + ep.from_numpy(inputs, noise.astype(dtype_name(inputs)))).clip(
            *model.bounds
        )

    def _initial_state(self, inputs: ep.Tensor) -> State:
        zeros = ep.zeros_like(inputs)
        return (zeros, zeros) if self.N else (zeros,)

    def _smoothing(self, inputs: ep.Tensor, axes: tuple[int, int] | None) -> Maps | tuple[()]:
        if self.kernel_name is None or axes is None:
            return ()
        kernel = kernel_1d(self.kernel_name, self.len_kernel, self.nsig)
        return as_maps(inputs, [smoothing_matrix(kernel, n) for n in _lengths(inputs, axes)])

    def _draws(
        self, rng: SampleRandom, inputs: ep.Tensor, axes: tuple[int, int] | None
    ) -> tuple[Maps | tuple[()], ep.Tensor | None]:
        """This step's random numbers, drawn on the host in the same sequence whatever the
        data: DI's transforms and VMI's neighbours."""
        n = inputs.shape[0]
        diversity: Maps | tuple[()] = ()
        if self.diversity_prob > 0 and axes is not None:
            lengths = _lengths(inputs, axes)
            maps = diversity_maps(rng, n, lengths, self.resize_rate, self.diversity_prob)
            diversity = as_maps(inputs, maps)
        neighbours = None
        if self.N:
            noise = rng.uniform(-1.0, 1.0, size=(n, self.N, *inputs.shape[1:]))
            neighbours = ep.from_numpy(inputs, noise.astype(dtype_name(inputs)))
        return diversity, neighbours

    # ------------------------------------------------------------------ the step
    def _make_transfer_step(
        self, model: Model, targeted: bool, axes: tuple[int, int] | None
    ) -> StepFn:
        norm, bounds, decay, nesterov = self.norm, model.bounds, self.decay, self._nesterov
        scales = [2.0**-i for i in range(self.m)]
        spatial = axes or (2, 3)  # read only by the image transforms, which resolve axes

        def mean_gradient(point: ep.Tensor, classes: ep.Tensor, views: list[Any]) -> ep.Tensor:
            """The gradient at ``point`` of the loss averaged over the views of the input."""

            def loss(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                first, *others = views
                logits = model(first(z))
                total = crossentropy_sum(logits, classes)
                for view in others:
                    total = total + crossentropy_sum(model(view(z)), classes)
                return (-total if targeted else total) / len(views), logits

            return model.value_and_grad(loss, point)[2]

        def step(iterate: Iterate, constants: Constants, extras: Extras) -> Iterate:
            x, momentum = iterate.x, iterate.state[0]
            classes, stepsize = constants.classes, constants.stepsize
            point = x + (decay * stepsize) * momentum if nesterov else x

            def transformed(scale: float) -> Any:
                if extras.diversity:
                    return lambda z: separable_map(z, extras.diversity, spatial) * scale
                return lambda z: z * scale

            grad = mean_gradient(point, classes, [transformed(s) for s in scales])
            if extras.smoothing:
                grad = separable_map(grad, extras.smoothing, spatial)
            state: State = ()
            if extras.neighbours is not None:
                radius = constants.eps * self.beta
                noise = extras.neighbours
                shifts = [_shift(noise[:, j] * radius) for j in range(self.N)]
                variance = mean_gradient(x, classes, shifts) - grad
                grad = grad + iterate.state[1]
                state = (variance,)
            direction, accumulated = self._direction(grad, (momentum,))
            x = norm.ascend(x, direction, stepsize)
            x = norm.project_region(x, constants.origin, constants.eps, constants.region, bounds)
            return Iterate(x, accumulated + state)

        return step


def _shift(offset: ep.Tensor) -> Any:
    return lambda z: z + offset


def _lengths(inputs: ep.Tensor, axes: tuple[int, int]) -> tuple[int, int]:
    return inputs.shape[axes[0]], inputs.shape[axes[1]]


# ---------------------------------------------------------------------- argument checks
def _probability(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")
    return float(value)


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(
            f"{name}: expected a number in (0, 1), the smallest size relative to the image, got "
            f"{value!r}; enlarging (a rate above 1) is not supported, as each image is "
            "transformed on its own and a batch has one shape"
        )
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)


def _kernel(value: Any, name: str) -> str:
    if value not in KERNELS:
        raise ValueError(f"{name}: expected one of {list(KERNELS)}, got {value!r}")
    return str(value)


_CHECKS: dict[str, Any] = {
    "diversity_prob": _probability,
    "resize_rate": _rate,
    "kernel_name": _kernel,
    "len_kernel": _count,
    "nsig": _positive,
    "m": _count,
    "N": _count,
    "beta": _positive,
    "channel_axis": lambda value, name: check_channel_axis(value),
}
_OWN = tuple(_CHECKS)
_STEPS = dict(rel_stepsize=0.25, abs_stepsize=None, steps=10)
_DIVERSITY = dict(resize_rate=0.9, diversity_prob=0.5, random_start=False, seed=None)


class DIFGSM(_TransferAttack):
    """DI-FGSM: momentum steps on the gradient through a random resize and pad of the input.

    Args:
        rel_stepsize: step size relative to epsilon (default 0.25: torchattacks' alpha 2/255
            at eps 8/255).
        abs_stepsize: step size in input units (torchattacks' ``alpha``); overrides
            ``rel_stepsize``. Default None.
        steps: number of steps (default 10).
        decay: momentum factor (default 0.0: no momentum, as torchattacks).
        resize_rate: the smallest resized size relative to the image, in (0, 1) (default 0.9).
        diversity_prob: the probability that an input is transformed at a step (default 0.5).
        random_start: start from a uniform random point of the ball (default False).
        channel_axis: 1 (channels first) or 3 (channels last); default None: the model's
            ``data_format``.
        seed: seed of the transforms and the random start; None draws fresh randomness.
    """

    __init__ = keyword_constructor(**_STEPS, decay=0.0, **_DIVERSITY, channel_axis=None)


class TIFGSM(_TransferAttack):
    """TI-FGSM: DI-FGSM whose gradients are smoothed by a kernel, per channel.

    Args:
        rel_stepsize, abs_stepsize, steps, decay, resize_rate, diversity_prob, random_start,
            channel_axis, seed: as for :class:`DIFGSM` (same defaults).
        kernel_name: ``"gaussian"`` (default), ``"linear"`` or ``"uniform"``.
        len_kernel: the kernel's side in pixels (default 15).
        nsig: the Gaussian kernel spans ``[-nsig, nsig]`` standard deviations (default 3).
    """

    __init__ = keyword_constructor(
        **_STEPS,
        decay=0.0,
        kernel_name="gaussian",
        len_kernel=15,
        nsig=3,
        **_DIVERSITY,
        channel_axis=None,
    )


class NIFGSM(_TransferAttack):
    """NI-FGSM: momentum steps on the gradient at the Nesterov look-ahead point
    ``x + decay * stepsize * momentum``.

    Args:
        rel_stepsize, abs_stepsize, steps: as for :class:`DIFGSM` (same defaults).
        decay: momentum factor (default 1.0).
        random_start: start from a uniform random point of the ball (default False; torchattacks
            has none).
        seed: seed of the random start; None draws fresh randomness.
    """

    _nesterov = True
    __init__ = keyword_constructor(**_STEPS, decay=1.0, random_start=False, seed=None)


class SINIFGSM(_TransferAttack):
    """SI-NI-FGSM: NI-FGSM with the gradient averaged over the scaled inputs ``x / 2**i``.

    Args:
        rel_stepsize, abs_stepsize, steps, decay, random_start, seed: as for :class:`NIFGSM`.
        m: the number of scale copies (default 5).
    """

    _nesterov = True
    __init__ = keyword_constructor(**_STEPS, decay=1.0, m=5, random_start=False, seed=None)


class VMIFGSM(_TransferAttack):
    """VMI-FGSM: momentum steps on the gradient tuned by its variance in a neighbourhood.

    Args:
        rel_stepsize, abs_stepsize, steps, decay, random_start: as for :class:`NIFGSM`.
        N: the number of neighbours sampled per step (default 5).
        beta: the neighbourhood's radius relative to epsilon (default 1.5).
        seed: seed of the neighbours and the random start; None draws fresh randomness.
    """

    __init__ = keyword_constructor(
        **_STEPS, decay=1.0, N=5, beta=1.5, random_start=False, seed=None
    )


class VNIFGSM(VMIFGSM):
    """VNI-FGSM: VMI-FGSM with the Nesterov look-ahead of :class:`NIFGSM`. Arguments and
    defaults as for :class:`VMIFGSM`."""

    _nesterov = True


__all__ = ["DIFGSM", "NIFGSM", "SINIFGSM", "TIFGSM", "VMIFGSM", "VNIFGSM"]
