"""Foolbox's ``DatasetAttack``: adversarials taken from a data set. Inputs fed to the attack
(:meth:`DatasetAttack.feed`, or ``data=``) are candidates; each sample gets the candidate
closest to it in the attack's distance among those the criterion calls adversarial for it."""

from __future__ import annotations

from typing import Any

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model
from ._decision import is_adversarial
from .base import check_inputs, check_model
from .inversion import FlexibleDistanceMinimizationAttack


class DatasetAttack(FlexibleDistanceMinimizationAttack):
    """The closest adversarial among fed inputs (Foolbox's name and ``feed``).

    Args:
        distance: the distance "closest" is measured in and epsilons are, e.g.
            ``advlib.distances.l2``; default None: L2 for choosing, and only ``epsilons=None``
            works (see :class:`~advlib.attacks.FlexibleDistanceMinimizationAttack`).
        data: candidate inputs (shape (M, ...) like the inputs, any array type), judged with
            the model of each call; default None: only what :meth:`feed` provides.

    Foolbox tries the fed inputs in random order and keeps the first adversarial one (and
    only considers the first ``len(inputs)`` of them); advlib considers every candidate and
    keeps the closest, deterministically. Samples without an adversarial candidate are
    returned unchanged.
    """

    def __init__(self, *, distance: Any = None, data: Any = None) -> None:
        self._set_distance(distance)
        self._data = data
        self._fed: list[tuple[ep.Tensor, ep.Tensor]] = []

    def feed(self, model: Model, inputs: Any) -> None:
        """Add ``inputs`` (shape (M, ...), within the model's bounds) and the model's outputs
        for them to the candidates; call it as often as needed, with batches the model can
        take at once."""
        check_model(model)
        x, _ = model.to_tensor(inputs, "inputs", floating=True)
        x = check_inputs(x, model)
        self._fed.append((x, model(x)))

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        """The closest adversarial candidates (``early_stop`` is not used)."""
        candidates = self._candidates(model, inputs)
        n = inputs.shape[0]
        already = is_adversarial(model, criterion, inputs)
        best, size = (
            inputs,
            ep.where(already, ep.zeros(inputs, (n,)), ep.full(inputs, (n,), float("inf"))),
        )
        zeros = ep.zeros_like(inputs)
        for x, outputs in candidates:
            for j in progress.steps(x.shape[0]):
                candidate = zeros + x[j : j + 1]
                adversarial = criterion(candidate, ep.zeros(outputs, (n, 1)) + outputs[j : j + 1])
                distance = self.norm(candidate - inputs)
                take = ep.logical_and(adversarial, distance < size)
                best = ep.where(atleast_kd(take, inputs.ndim), candidate, best)
                size = ep.where(take, distance, size)
        return best

    def _candidates(self, model: Model, inputs: ep.Tensor) -> list[tuple[ep.Tensor, ep.Tensor]]:
        """The fed inputs and outputs, and ``data`` with this model's outputs, in the inputs'
        dtype; ValueError when there are none or their shape does not fit."""
        pairs = list(self._fed)
        if self._data is not None:
            x, _ = model.to_tensor(self._data, "data", floating=True)
            x = check_inputs(x, model)
            pairs.append((x, model(x)))
        if not pairs:
            raise ValueError(
                "DatasetAttack: no candidates; call attack.feed(model, inputs) with data first "
                "(or pass data=... to DatasetAttack)"
            )
        for x, _ in pairs:
            if tuple(x.shape[1:]) != tuple(inputs.shape[1:]):
                raise ValueError(
                    f"data: the fed inputs have shape {tuple(x.shape)}, which does not fit "
                    f"inputs of shape {tuple(inputs.shape)}; feed samples of the same shape"
                )
        return [(x.astype(inputs.dtype), outputs) for x, outputs in pairs]
