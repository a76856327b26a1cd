"""Logit margins shared by the minimization attacks.

Classes are excluded from a maximum by replacing their logits with a large negative constant,
never by multiplying with ``1 - onehot``: the product leaves a 0 in place of the excluded logit,
which wins the maximum whenever every other logit is negative (torchattacks #184).
"""

from __future__ import annotations

import eagerpy as ep

from .._tensors import flat_batch

# Far below any logit, yet finite: no inf - inf = NaN in the forward pass or the gradient.
_EXCLUDED = -1e9


def class_mask(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    """A bool (N, C) mask, True at ``classes[i]`` in row i."""
    return ep.arange(logits, logits.shape[-1]).astype(classes.dtype)[None, :] == classes[:, None]


def class_logit(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    """``logits[i, classes[i]]``, shape (N,)."""
    return ep.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]


def without_classes(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    """``logits`` with ``classes[i]`` of row i pushed far below every other logit."""
    return ep.where(class_mask(logits, classes), _EXCLUDED, logits)


def best_other_logit(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    """The largest logit of each row among all classes except ``classes[i]``, shape (N,)."""
    return without_classes(logits, classes).max(axis=-1)


def margin(logits: ep.Tensor, classes: ep.Tensor, targeted: bool) -> ep.Tensor:
    """How far each sample is from being adversarial in logit space, shape (N,).

    Untargeted: ``z_y - max_{j != y} z_j`` (labels ``y``); targeted: ``max_{j != t} z_j - z_t``
    (targets ``t``). Positive while the sample is not adversarial, negative once it is.
    """
    chosen, other = class_logit(logits, classes), best_other_logit(logits, classes)
    return other - chosen if targeted else chosen - other


def masked_margin(logits: ep.Tensor, mask: ep.Tensor, targeted: bool) -> ep.Tensor:
    """:func:`margin` with the classes given as their :func:`class_mask`: an attack whose
    classes stay fixed builds the mask once, and each call is then four operations."""
    chosen = ep.where(mask, logits, 0.0).sum(axis=-1)
    other = ep.where(mask, _EXCLUDED, logits).max(axis=-1)
    return other - chosen if targeted else chosen - other


def with_confidence(
    logits: ep.Tensor, classes: ep.Tensor, targeted: bool, confidence: float
) -> ep.Tensor:
    """Logits that make a criterion demand a margin of ``confidence``: the true class is raised
    (untargeted) or the target class lowered (targeted) by ``confidence``."""
    if confidence == 0:
        return logits
    shift = -confidence if targeted else confidence
    return logits + shift * class_mask(logits, classes).astype(logits.dtype)


def squared_l2(delta: ep.Tensor) -> ep.Tensor:
    """``||delta||_2^2`` per sample; unlike the norm itself, differentiable at 0."""
    return flat_batch(delta).square().sum(axis=-1)
