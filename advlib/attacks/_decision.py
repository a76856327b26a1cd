"""Pieces the decision-based attacks (HopSkipJump, Boundary) share: the adversarial test,
starting points, and the binary search towards the decision boundary. All batched."""

from __future__ import annotations

import math
from typing import Any

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name
from .._warnings import warn_user
from ..criteria import Criterion
from ..models.base import Model
from ..norms import Norm, linf
from ._subsets import host_bool
from .base import MinimizationAttack


def is_adversarial(model: Model, criterion: Criterion, x: ep.Tensor) -> ep.Tensor:
    return criterion(x, model(x))


def check_init_attack(init_attack: Any) -> MinimizationAttack | None:
    if init_attack is not None and not isinstance(init_attack, MinimizationAttack):
        raise TypeError(
            "init_attack: expected a minimization attack (e.g. another decision-based attack) "
            f"or None, got {type(init_attack).__name__}"
        )
    return init_attack


def check_tensorboard(value: Any) -> None:
    """Foolbox's ``tensorboard`` argument (False: no logs, None or a folder: logs there).
    advlib writes no TensorBoard logs: False and None pass silently, anything else warns."""
    if value is not None and value is not False:
        warn_user(
            f"tensorboard: advlib writes no TensorBoard logs; tensorboard={value!r} is ignored"
        )


def find_starts(
    model: Model,
    inputs: ep.Tensor,
    criterion: Criterion,
    init_attack: MinimizationAttack | None,
    trials: int,
    rng: np.random.Generator,
    given: ep.Tensor | None = None,
) -> tuple[ep.Tensor, ep.Tensor | None]:
    """``(starts, active)``: an adversarial start per sample (the input itself where it is
    adversarial already or no start was found) and the bool mask of the samples to attack,
    those with a start that are not adversarial yet; ``active`` is None when there is none.

    The starts are ``given`` (where adversarial), else the results of ``init_attack``, else
    for each sample the first of up to ``trials`` uniform noise inputs that is adversarial.
    """
    already = host_bool(is_adversarial(model, criterion, inputs))
    if given is not None:
        if tuple(given.shape) != tuple(inputs.shape):
            raise ValueError(
                f"starting_points: expected the shape of the inputs {tuple(inputs.shape)}, "
                f"got {tuple(given.shape)}"
            )
        starts = given.clip(*model.bounds)
        found = host_bool(is_adversarial(model, criterion, starts))
    elif init_attack is not None:
        with progress.quiet():  # the bar counts the attack's own steps, not its init's
            starts = init_attack.perturb(model, inputs, criterion)
        found = host_bool(is_adversarial(model, criterion, starts))
    else:
        lower, upper = model.bounds
        starts, found = inputs, already.copy()
        for _ in range(trials):
            if found.all():
                break
            noise = rng.uniform(lower, upper, size=inputs.shape).astype(dtype_name(inputs))
            candidate = ep.from_numpy(inputs, noise)
            now = host_bool(is_adversarial(model, criterion, candidate))
            new = np.logical_and(now, ~found)
            starts = ep.where(
                atleast_kd(ep.from_numpy(inputs, new), inputs.ndim), candidate, starts
            )
            found |= now
    active_np = np.logical_and(found, ~already)
    active = ep.from_numpy(inputs, active_np)
    starts = ep.where(atleast_kd(active, inputs.ndim), starts, inputs)
    return starts, (active if active_np.any() else None)


def blend(origin: ep.Tensor, perturbed: ep.Tensor, weight: ep.Tensor) -> ep.Tensor:
    """``(1 - weight) * origin + weight * perturbed`` with a per-sample ``weight``."""
    w = atleast_kd(weight, origin.ndim)
    return (1 - w) * origin + w * perturbed


def linf_shrink(origin: ep.Tensor, perturbed: ep.Tensor, radius: ep.Tensor) -> ep.Tensor:
    """``perturbed`` clipped into the Linf ball of per-sample ``radius`` around ``origin``."""
    return linf.project(perturbed, origin, radius)


def binary_search(
    model: Model,
    criterion: Criterion,
    origin: ep.Tensor,
    perturbed: ep.Tensor,
    norm: Norm,
    tolerance: float,
) -> ep.Tensor:
    """The point between ``origin`` and the adversarial ``perturbed`` closest to ``origin`` that
    is still adversarial, to a relative ``tolerance``. L2 searches along the line (blend
    factor in [0, 1]); Linf shrinks the Linf ball around ``origin`` (radius from 0 to the
    current Linf distance). Samples whose ``perturbed`` is not adversarial are returned as is."""
    if norm is linf:
        high = linf(perturbed - origin)

        def point(t: ep.Tensor) -> ep.Tensor:
            return linf_shrink(origin, perturbed, t)

    else:
        high = ep.ones(origin, (origin.shape[0],))

        def point(t: ep.Tensor) -> ep.Tensor:
            return blend(origin, perturbed, t)

    low = ep.zeros_like(high)
    iterations = min(max(math.ceil(math.log2(1.0 / tolerance)), 1), 50)
    for _ in range(iterations):
        middle = (low + high) / 2
        adversarial = is_adversarial(model, criterion, point(middle))
        high = ep.where(adversarial, middle, high)
        low = ep.where(adversarial, low, middle)
    return point(high)
