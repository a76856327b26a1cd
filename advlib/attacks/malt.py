"""MALT, Mesoscopic Almost Linearity Targeting (Melamed, Yehudai & Shamir, NeurIPS 2024,
arXiv 2407.02240).

APGD-T attacks the classes with the largest logits in turn. MALT ranks them instead by the
distance to each class's decision boundary under the model's linearisation at the input,
``(z_y - z_t) / ||grad z_t - grad z_y||_*`` (``||.||_*`` the dual of the attack's norm), which
is exact for a linear model, and runs targeted APGD on the closest few. Scoring costs one
gradient per candidate class (the ``n_candidates`` most likely), once per sample.
"""

from __future__ import annotations

from typing import Any

import eagerpy as ep

from ..models.base import Model, StepFn
from ..norms import l1, l2, linf
from ._dlr import ranked_other_classes
from ._losses import class_logit
from ._minimization import check_int
from ._norm_arg import norm_family
from ._restarts import copies_that_fit
from ._signatures import keyword_constructor
from ._subsets import tile
from .apgd import L1AutoPGD, _AutoPGDTargeted

# Keeps the distance finite where the two classes' gradients coincide.
_TINY = 1e-12


class _MALT(_AutoPGDTargeted):
    """MALT in the norm ``self.norm``; ``MALTAttack(norm="l2")`` gives an :class:`L2MALTAttack`.

    With an untargeted criterion it ranks the ``n_candidates`` most likely other classes by
    their linearised boundary distance and runs targeted APGD (targeted DLR loss, the true label
    as the competitor) towards the ``n_target_classes`` closest, in that order, each only on the
    samples still robust; success is any misclassification. With a targeted criterion it is
    APGD-T on the given targets.

    Args:
        steps: gradient steps per target and restart (default 100).
        restarts: restarts per target class (default 1).
        n_target_classes: how many of the best-ranked classes to attack (default 5), capped at
            the number of classes minus one.
        n_candidates: how many of the most likely other classes to rank (default 100, the
            paper's choice for ImageNet; every class of smaller models), at least
            ``n_target_classes``.
        loss: ``"dlr"`` (targeted DLR, default), ``"ce"``, ``"margin"`` or ``"pma"``.
        rho: APGD's step-size threshold (default 0.75; unused in L1).
        eot_iter: passes each gradient is averaged over (AutoAttack's name, multiplies
            ``eot_samples``; default 1).
        seed: seed of the random starts; None draws fresh randomness on every call.
        norm: ``"linf"`` (default), ``"l2"`` or ``"l1"`` (L1-APGD steps), spelled as for APGD.
    """

    __init__ = keyword_constructor(
        steps=100,
        restarts=1,
        n_target_classes=5,
        n_candidates=100,
        loss="dlr",
        rho=0.75,
        eot_iter=1,
        seed=None,
        norm=None,
    )

    def _configure(self, **arguments: Any) -> None:
        n_candidates = arguments.pop("n_candidates")
        super()._configure(**arguments)
        self.n_candidates = check_int(n_candidates, "n_candidates")
        if self.n_candidates < self.n_target_classes:
            raise ValueError(
                f"n_candidates: expected at least n_target_classes ({self.n_target_classes}), "
                f"got {n_candidates}; rank at least as many classes as are attacked"
            )

    def _ranked_targets(
        self, model: Model, inputs: ep.Tensor, outputs: ep.Tensor, labels: ep.Tensor, count: int
    ) -> list[ep.Tensor]:
        """The ``count`` candidates closest to their boundary under the linearisation."""
        candidates = ranked_other_classes(
            outputs, labels, min(self.n_candidates, outputs.shape[-1] - 1)
        )
        distance = model.compiled(
            self._step_key("malt-distance", family=_MALT, settings=()),
            lambda: self._make_distance(model),
        )
        distances = ep.stack(_per_candidate(distance, model, inputs, labels, candidates), axis=1)
        order = distances.argsort(axis=-1)[:, :count]
        ranked = ep.take_along_axis(ep.stack(candidates, axis=1), order, axis=-1)
        return [ranked[:, rank] for rank in range(count)]

    def _make_distance(self, model: Model) -> StepFn:
        """``distance(x, labels, targets)``: per sample, the linearised distance from ``x``
        to the boundary between its label and its target, in the attack's norm."""
        dual = self.norm.dual

        def distance(x: ep.Tensor, labels: ep.Tensor, targets: ep.Tensor) -> ep.Tensor:
            def gap(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits = model(z)
                values = class_logit(logits, labels) - class_logit(logits, targets)
                return values.sum(), values

            _, values, grad = model.value_and_grad(gap, x)
            return values / (dual(grad) + _TINY)

        return distance


class LinfMALTAttack(_MALT):
    """MALT in Linf; see :class:`_MALT` (defaults: 100 steps, 5 of 100 candidate targets)."""

    norm = linf


class L2MALTAttack(_MALT):
    """MALT in L2; see :class:`_MALT`."""

    norm = l2


class L1MALTAttack(_MALT, L1AutoPGD):
    """MALT in L1 (L1-APGD steps); see :class:`_MALT`."""

    norm = l1


MALTAttack = LinfMALTAttack
LinfMALT = LinfMALTAttack
L2MALT = L2MALTAttack
L1MALT = L1MALTAttack
norm_family(LinfMALTAttack, L2MALTAttack, L1MALTAttack)


def _per_candidate(
    distance: StepFn,
    model: Model,
    inputs: ep.Tensor,
    labels: ep.Tensor,
    candidates: list[ep.Tensor],
) -> list[ep.Tensor]:
    """``distance(inputs, labels, t)`` for each candidate ``t``; on eager frameworks several
    candidates per call (stacked copies of the batch, within the caller's chunk), so that few
    remaining samples cost few calls."""
    n = inputs.shape[0]
    per_call = copies_that_fit(model, inputs, n, len(candidates))
    results: list[ep.Tensor] = []
    for start in range(0, len(candidates), per_call):
        group = candidates[start : start + per_call]
        k = len(group)
        both = distance(tile(inputs, k), tile(labels, k), ep.concatenate(group, axis=0))
        results += [both[j * n : (j + 1) * n] for j in range(k)] if k > 1 else [both]
    return results
