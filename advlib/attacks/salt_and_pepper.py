"""Salt-and-pepper noise (Foolbox's ``SaltAndPepperNoiseAttack``): each step sets a random
fraction ``p`` of the input's values to the upper bound (salt) or the lower bound (pepper) and
keeps the smallest adversarial in L2. ``p`` grows by ``1/steps`` per step; after each new
best, the search restarts from half its ``p`` and stops at 1.2 times it (both per sample), so
the steps concentrate on noise levels near the smallest adversarial one.

Batched: one model call per step for the whole batch; the search state stays on the device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l2
from ._decision import is_adversarial
from ._flexible import channel_axis_of, check_channel_axis
from ._minimization import check_bool, check_int, check_seed
from .base import MinimizationAttack


class _Search(NamedTuple):
    """Per sample: the best adversarial, its size, and the noise levels searched."""

    best: ep.Tensor  # the smallest adversarial found (the input where none was)
    size: ep.Tensor  # its L2 size (inf where none was found)
    low: ep.Tensor  # the noise level the search restarts from
    high: ep.Tensor  # the highest noise level searched
    stepsize: ep.Tensor  # the increment of the noise level per step
    p: ep.Tensor  # the noise level of the next step


class SaltAndPepperNoiseAttack(MinimizationAttack):
    """Increases salt-and-pepper noise until the input is misclassified, keeping the smallest
    adversarial in L2 (Foolbox's signature and defaults).

    Args:
        steps: noise draws per sample (default 1000).
        across_channels: draw one noise value per location, shared by its channels (default
            True), rather than one per value.
        channel_axis: the channel axis for ``across_channels``; default None: for 4-d inputs
            the smaller of axes 1 and 3, for other ranks no channels (Foolbox reads the model's
            ``data_format``, which does not always describe the inputs).
        seed: seed of the noise; None draws fresh randomness on every call.

    Samples adversarial as given, and samples no step made adversarial, are returned unchanged.
    """

    requires_grad = False
    norm = l2

    def __init__(
        self,
        steps: int = 1000,
        across_channels: bool = True,
        channel_axis: int | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.steps = check_int(steps, "steps")
        self.across_channels = check_bool(across_channels, "across_channels")
        self.channel_axis = check_channel_axis(channel_axis)
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        """The smallest salt-and-pepper adversarials found (``early_stop`` is not used)."""
        n = inputs.shape[0]
        if n == 0:
            return inputs
        rng = self._generator()
        noise_shape = self._noise_shape(tuple(inputs.shape))
        already = is_adversarial(model, criterion, inputs)
        ones = ep.ones(inputs, (n,))
        first = ones / self.steps
        size = ep.where(already, 0 * ones, ones * float("inf"))
        search = _Search(inputs, size, 0 * ones, ones, first, first)
        propose = model.compiled(
            self._step_key("propose", settings=()), lambda: _make_propose(model)
        )
        update = model.compiled(self._step_key("update", settings=()), lambda: _update)
        dtype = dtype_name(inputs)
        remaining = ep.from_numpy(inputs, np.arange(self.steps, 0, -1).astype(dtype))
        for step in progress.steps(self.steps):
            u = ep.from_numpy(inputs, rng.random(size=noise_shape).astype(dtype))
            candidate, logits, size = propose(inputs, u, search.p)
            now = criterion(candidate, logits)
            search = update(search, candidate, size, now, remaining[step])
        return search.best

    def _noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one step's uniform draws: the inputs' with the channel axis 1 when
        the noise is shared across channels."""
        axis = channel_axis_of(shape, self.channel_axis) if self.across_channels else None
        if axis is None:
            return shape
        return tuple(1 if i == axis else s for i, s in enumerate(shape))


def _make_propose(model: Model) -> StepFn:
    """``propose(inputs, u, p) -> (candidate, logits, L2 size)``: the values whose uniform
    draw ``u`` lies in the top ``p / 2`` become salt, those in the bottom ``p / 2`` pepper."""
    lower, upper = model.bounds
    width = upper - lower

    def propose(inputs: ep.Tensor, u: ep.Tensor, p: ep.Tensor) -> tuple[ep.Tensor, ...]:
        half = atleast_kd(p, inputs.ndim) / 2
        salt = (u >= 1 - half).astype(inputs.dtype) * width
        pepper = (u < half).astype(inputs.dtype) * width
        candidate = (inputs + salt - pepper).clip(lower, upper)
        return candidate, model(candidate), l2(candidate - inputs)

    return propose


def _update(
    search: _Search, candidate: ep.Tensor, size: ep.Tensor, adversarial: ep.Tensor, remaining: Any
) -> _Search:
    """Keep a closer adversarial and narrow the noise levels around it (Foolbox's rule: from
    half its level to 1.2 times it, over the remaining steps); restart at the low level once
    the high one was tried."""
    take = ep.logical_and(adversarial, size < search.size)
    low = ep.where(take, 0.5 * search.p, search.low)
    high = ep.where(take, ep.minimum(search.p * 1.2, 1.0), search.high)
    stepsize = ep.where(take, (high - low) / remaining, search.stepsize)
    restart = ep.logical_or(take, search.p == high)
    p = ep.minimum(ep.where(restart, low, search.p) + stepsize, high)
    return _Search(
        ep.where(atleast_kd(take, candidate.ndim), candidate, search.best),
        ep.where(take, size, search.size),
        low,
        high,
        stepsize,
        p,
    )
