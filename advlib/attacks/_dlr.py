"""Per-sample losses of the AutoAttack family (APGD, APGD-T, Square) and target selection.

All losses here are *maximised* by the attacks. The difference-of-logits-ratio (DLR) loss of
Croce & Hein (2020) is invariant to shifting and rescaling the logits, which makes it robust to
the gradient masking that an over-confident softmax causes with cross-entropy.
"""

from __future__ import annotations

import eagerpy as ep

from ._losses import best_other_logit, class_logit, without_classes

# Keeps the DLR denominator away from zero when the top logits coincide.
_DLR_TINY = 1e-12

#: Names of the losses APGD and ACG accept.
LOSSES = ("ce", "dlr", "margin", "pma")


def _sorted_descending(logits: ep.Tensor) -> ep.Tensor:
    return logits.sort(axis=-1).flip(axis=-1)


def _column(values: ep.Tensor, index: int) -> ep.Tensor:
    """Column ``index`` of (N, C) values, the last one when ``index`` is past the end (models
    with very few classes)."""
    return values[:, min(index, values.shape[-1] - 1)]


def cross_entropy(logits: ep.Tensor, classes: ep.Tensor, targeted: bool) -> ep.Tensor:
    """Cross-entropy to ``classes`` (untargeted), or its negative (targeted), per sample."""
    ce = ep.crossentropy(logits, classes)
    return -ce if targeted else ce


def dlr(logits: ep.Tensor, labels: ep.Tensor) -> ep.Tensor:
    """Untargeted DLR: ``-(z_y - max_{j != y} z_j) / (z_(1) - z_(3))`` per sample, with
    ``z_(k)`` the k-th largest logit. Positive once the sample is misclassified."""
    ordered = _sorted_descending(logits)
    scale = _column(ordered, 0) - _column(ordered, 2) + _DLR_TINY
    return -(class_logit(logits, labels) - best_other_logit(logits, labels)) / scale


def targeted_dlr(logits: ep.Tensor, targets: ep.Tensor, labels: ep.Tensor | None) -> ep.Tensor:
    """Targeted DLR: ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)`` per sample.

    ``labels`` are the true classes ``y``. Without them (a criterion that only names targets),
    ``z_y`` is the largest logit among the classes other than the target, so the loss is
    positive exactly when the target class wins.
    """
    ordered = _sorted_descending(logits)
    scale = _column(ordered, 0) - 0.5 * (_column(ordered, 2) + _column(ordered, 3)) + _DLR_TINY
    competitor = (
        best_other_logit(logits, targets) if labels is None else class_logit(logits, labels)
    )
    return -(competitor - class_logit(logits, targets)) / scale


def margin_loss(
    values: ep.Tensor, targets: ep.Tensor, labels: ep.Tensor | None, targeted: bool
) -> ep.Tensor:
    """The margin to maximise on ``values`` (logits, or probabilities for PMA), per sample.

    Untargeted (``targets`` are the labels ``y``): ``max_{j != y} v_j - v_y``. Targeted:
    ``v_t - v_y`` with the true ``labels``, or ``v_t - max_{j != t} v_j`` without them.
    Positive exactly when the sample is adversarial (as a prediction).
    """
    if not targeted:
        return best_other_logit(values, targets) - class_logit(values, targets)
    competitor = (
        best_other_logit(values, targets) if labels is None else class_logit(values, labels)
    )
    return class_logit(values, targets) - competitor


def ranked_other_classes(logits: ep.Tensor, labels: ep.Tensor, count: int) -> list[ep.Tensor]:
    """Per sample, the classes with the largest ``count`` logits among the classes other than
    ``labels``, most likely first (one tensor of shape (N,) per rank). APGD-T and FAB-T attack
    these classes in turn."""
    order = without_classes(logits, labels).argsort(axis=-1).flip(axis=-1)
    return [order[:, rank].astype(labels.dtype) for rank in range(count)]
