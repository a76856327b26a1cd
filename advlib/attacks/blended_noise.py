"""Blended uniform noise (Foolbox's ``LinearSearchBlendedUniformNoiseAttack``): per sample a
uniform noise input that is adversarial (the first of up to ``directions`` draws, as the
decision-based attacks find their starts: :func:`~advlib.attacks._decision.find_starts`),
then the smallest blend ``(1 - t) * x + t * noise`` on the grid ``t = 0, 1/steps, ..., 1``
that is still adversarial. Batched: one model call per grid point for the whole batch."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name
from .._warnings import warn_user
from ..criteria import Criterion
from ..models.base import Model
from ._decision import find_starts, is_adversarial
from ._minimization import check_int, check_seed
from ._subsets import host_bool
from .inversion import FlexibleDistanceMinimizationAttack

# Grid points between two checks whether every sample has its blend (one host sync each).
_CHECK_EVERY = 16


class LinearSearchBlendedUniformNoiseAttack(FlexibleDistanceMinimizationAttack):
    """Blends each input with adversarial uniform noise as little as the grid allows.

    Args:
        distance: how epsilons are measured, ``advlib.distances.l0``, ``l1``, ``l2`` or
            ``linf`` (see :class:`~advlib.attacks.FlexibleDistanceMinimizationAttack`); default
            None: only ``epsilons=None`` works. The blend found is the same in every norm.
        directions: uniform noise inputs drawn per sample at most, until one is adversarial
            (default 1000).
        steps: grid points of the blend factor beyond 0 (default 1000).
        seed: seed of the noise; None draws fresh randomness on every call.

    Samples without an adversarial noise input among ``directions`` draws are returned
    unchanged (Foolbox returns the last noise input, which is not adversarial) and warned about.
    """

    def __init__(
        self,
        *,
        distance: Any = None,
        directions: int = 1000,
        steps: int = 1000,
        seed: int | None = None,
    ) -> None:
        self._set_distance(distance)
        self.directions = check_int(directions, "directions")
        self.steps = check_int(steps, "steps")
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        """Blended adversarials; see the class documentation (``early_stop`` is not used)."""
        if inputs.shape[0] == 0:
            return inputs
        noise, active = find_starts(
            model, inputs, criterion, None, self.directions, self._generator()
        )
        if active is None:
            missing = ~host_bool(is_adversarial(model, criterion, inputs))
        else:
            missing = ~host_bool(is_adversarial(model, criterion, noise))
        if missing.any():
            warn_user(
                f"{self._name()}: no adversarial uniform noise within {self.directions} draws "
                f"for {int(missing.sum())} of {len(missing)} samples; they are returned "
                "unchanged (raise directions= to draw more)"
            )
        if active is None:
            return inputs
        return blend_search(model, criterion, inputs, noise, self.steps, active)


def blend(
    inputs: ep.Tensor, noise: ep.Tensor, factor: Any, bounds: tuple[float, float]
) -> ep.Tensor:
    """``(1 - factor) * inputs + factor * noise`` within ``bounds`` (rounding may leave them);
    ``factor`` a number or a per-sample tensor already broadcast against ``inputs``."""
    blended: ep.Tensor = (1 - factor) * inputs + factor * noise
    return blended.clip(*bounds)


def blend_search(
    model: Model,
    criterion: Criterion,
    inputs: ep.Tensor,
    noise: ep.Tensor,
    steps: int,
    active: ep.Tensor,
) -> ep.Tensor:
    """Per sample, the blend of ``inputs`` towards the adversarial ``noise`` with the smallest
    factor of ``0, 1/steps, ..., 1`` that is adversarial; ``noise`` where none is and for the
    samples not ``active`` (a bool mask)."""
    factors = np.linspace(0, 1, num=steps + 1).astype(dtype_name(inputs))
    best = ep.ones(inputs, (inputs.shape[0],))
    found = ep.logical_not(active)
    for index in progress.steps(len(factors)):
        factor = float(factors[index])
        adversarial = is_adversarial(model, criterion, blend(inputs, noise, factor, model.bounds))
        best = ep.where(ep.logical_and(adversarial, ep.logical_not(found)), factor, best)
        found = ep.logical_or(found, adversarial)
        if (index + 1) % _CHECK_EVERY == 0 and bool(found.all().item()):
            break
    return blend(inputs, noise, atleast_kd(best, inputs.ndim), model.bounds)
