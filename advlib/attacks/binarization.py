"""Foolbox's ``BinarizationRefinementAttack``: for models that binarize their inputs at a
threshold, move each value of an adversarial as close to the input as the binarization
allows (the input's own value where both lie on the same side of the threshold, else the
nearest value across it). The model sees the same binary input, so the result stays
adversarial while its distance shrinks."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name
from .._warnings import warn_user
from ..criteria import Criterion
from ..models.base import Model
from ._decision import is_adversarial
from ._flexible import StartsMinimizer
from ._minimization import Problem, check_init_attack
from ._subsets import host_bool
from .base import MinimizationAttack
from .inversion import FlexibleDistanceMinimizationAttack


class BinarizationRefinementAttack(StartsMinimizer, FlexibleDistanceMinimizationAttack):
    """Refines adversarials of a model that binarizes its inputs (Foolbox's signature and
    defaults; ``init_attack`` is an advlib addition).

    Args:
        distance: how epsilons are measured, e.g. ``advlib.distances.l2``; default None:
            only ``epsilons=None`` works (see
            :class:`~advlib.attacks.FlexibleDistanceMinimizationAttack`).
        threshold: the model's binarization threshold; default None: the middle of the
            model's bounds.
        included_in: whether the threshold itself counts as ``"lower"`` or ``"upper"``
            (default ``"upper"``).
        init_attack: a minimization attack giving the adversarials to refine when the call
            passes no ``starting_points=``; default None: ``starting_points`` are required.

    Where a refined point is not adversarial although its start was (the threshold does not
    describe the model), the start is returned and a warning says so (Foolbox raises
    ValueError for the whole batch); samples without an adversarial start are returned
    unchanged.
    """

    def __init__(
        self,
        *,
        distance: Any = None,
        threshold: float | None = None,
        included_in: str = "upper",
        init_attack: MinimizationAttack | None = None,
    ) -> None:
        self._set_distance(distance)
        if threshold is not None and (isinstance(threshold, bool) or not np.isfinite(threshold)):
            raise ValueError(f"threshold: expected a finite number or None, got {threshold!r}")
        self.threshold = None if threshold is None else float(threshold)
        if included_in not in ("lower", "upper"):
            raise ValueError(f"included_in: expected 'lower' or 'upper', got {included_in!r}")
        self.included_in = included_in
        self.init_attack = check_init_attack(init_attack, "SaltAndPepperNoiseAttack()")

    def _refine(self, problem: Problem, starting_points: ep.Tensor | None) -> ep.Tensor:
        """The refined adversarials of ``starting_points`` (``early_stop`` is not used)."""
        model, inputs, criterion, _ = problem
        starts = self._starts(model, inputs, criterion, starting_points)
        lower, upper = self._sides(model, inputs)
        below, start_below = inputs <= lower, starts <= lower
        across = ep.where(start_below, ep.full_like(inputs, lower), ep.full_like(inputs, upper))
        refined = ep.where(below == start_below, inputs, across)
        start_adv = is_adversarial(model, criterion, starts)
        refined_adv = is_adversarial(model, criterion, refined)
        mismatch = ep.logical_and(start_adv, ep.logical_not(refined_adv))
        if host_bool(mismatch).any():
            warn_user(
                f"{self._name()}: the threshold {self._threshold(model)} does not match what the "
                "model does for some samples (their refined points are not adversarial); their "
                "starting points are returned"
            )
        kept = ep.where(atleast_kd(refined_adv, inputs.ndim), refined, starts)
        return ep.where(atleast_kd(start_adv, inputs.ndim), kept, inputs)

    def _starts(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, given: ep.Tensor | None
    ) -> ep.Tensor:
        if given is None:
            if self.init_attack is None:
                raise ValueError(
                    "starting_points: BinarizationRefinementAttack refines adversarials; pass "
                    "starting_points=... (shaped like the inputs) or init_attack=... to the "
                    "attack"
                )
            with progress.quiet():
                return self.init_attack.perturb(model, inputs, criterion)
        if tuple(given.shape) != tuple(inputs.shape):
            raise ValueError(
                f"starting_points: expected the shape of the inputs {tuple(inputs.shape)}, "
                f"got {tuple(given.shape)}"
            )
        return given.clip(*model.bounds)

    def _threshold(self, model: Model) -> float:
        lower, upper = model.bounds
        return (lower + upper) / 2 if self.threshold is None else self.threshold

    def _sides(self, model: Model, inputs: ep.Tensor) -> tuple[float, float]:
        """The largest value below and the smallest value above the threshold in the inputs'
        dtype: adjacent numbers, one of them the threshold itself."""
        kind = np.dtype(dtype_name(inputs)).type
        threshold = kind(self._threshold(model))
        if self.included_in == "lower":
            return float(threshold), float(np.nextafter(threshold, kind(np.inf)))
        return float(np.nextafter(threshold, kind(-np.inf))), float(threshold)
