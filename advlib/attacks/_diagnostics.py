"""Signs that a robustness evaluation may be unreliable (gradient masking), as warnings.

Each check returns a message, or None when nothing looks wrong; :func:`model_checks` runs the
checks that only need the model and the data, :func:`black_box_check` compares white-box and
black-box results after an evaluation. :func:`warn` emits messages as
:class:`GradientMaskingWarning`. Used by :class:`~advlib.attacks.autoattack.AutoAttack`; an
evaluation helper can call them the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import eagerpy as ep
import numpy as np

from .._tensors import crossentropy_sum, flat_batch
from ..criteria import Criterion
from ..models.base import Model


class GradientMaskingWarning(UserWarning):
    """The evaluation may overestimate robustness; the message says why and what to do."""


def looks_like_probabilities(outputs: ep.Tensor) -> bool:
    """Whether every row is non-negative and sums to 1 (softmax outputs, not logits)."""
    if outputs.shape[0] == 0:
        return False
    rows = outputs.sum(axis=-1)
    looks = ep.logical_and((outputs >= 0).all(), ((rows - 1).abs() < 1e-3).all())
    return bool(looks.item())


def check_probabilities(outputs: ep.Tensor) -> str | None:
    if not looks_like_probabilities(outputs):
        return None
    return (
        "the model's outputs look like probabilities (non-negative rows summing to 1); "
        "gradients of a saturated softmax vanish and make gradient attacks report false "
        "robustness: evaluate a model that returns logits"
    )


def check_randomized(model: Model, inputs: ep.Tensor, tolerance: float = 1e-5) -> str | None:
    """Two forward passes on the same inputs should agree for a deterministic model."""
    if inputs.shape[0] == 0:
        return None
    first, second = model(inputs), model(inputs)
    scale = float(first.abs().max().item()) + 1.0
    difference = float((first - second).abs().max().item())
    if difference <= tolerance * scale:
        return None
    return (
        f"the model is randomized: two forward passes on the same inputs differ by up to "
        f"{difference:.3g}; single-sample gradients are unreliable, use AutoAttack(version="
        "'rand') (expectation over transformation, eot_iter=20) or put the model in eval mode"
    )


def check_zero_gradients(
    model: Model, inputs: ep.Tensor, criterion: Criterion, max_fraction: float = 0.1
) -> str | None:
    """Warn when the cross-entropy gradient is exactly zero for more than ``max_fraction`` of
    the samples (saturated or non-differentiable models)."""
    if not model.has_gradients or inputs.shape[0] == 0:
        return None
    try:
        classes, _ = criterion.gradient_target()
    except ValueError:
        return None

    def loss_fn(x: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
        logits = model(x)
        return crossentropy_sum(logits, classes), logits

    _, _, grad = model.value_and_grad(loss_fn, inputs)
    zero = host_mask(flat_batch(grad).abs().max(axis=-1) == 0)
    fraction = float(zero.mean())
    if fraction <= max_fraction:
        return None
    return (
        f"the loss gradient is exactly zero for {zero.sum()} of {len(zero)} samples "
        f"({fraction:.0%}); gradient-based attacks cannot move them, so their robustness may "
        "be overestimated (gradient masking): check for saturating or non-differentiable layers "
        "and rely on the black-box results"
    )


def model_checks(
    model: Model, inputs: ep.Tensor, criterion: Criterion, outputs: ep.Tensor | None = None
) -> list[str]:
    """The checks that need only the model and the data: probabilities, randomness, and (for
    models with gradients) zero gradients."""
    outputs = model(inputs) if outputs is None else outputs
    found = [
        check_probabilities(outputs),
        check_randomized(model, inputs),
        check_zero_gradients(model, inputs, criterion),
    ]
    return [message for message in found if message is not None]


def black_box_check(
    robust_after_white_box: np.ndarray, robust_after_black_box: np.ndarray, alpha: float = 0.002
) -> str | None:
    """Warn when a black-box attack fooled more than ``alpha`` of all samples that every
    white-box attack had failed on: the gradients are probably misleading."""
    total = len(robust_after_white_box)
    if total == 0:
        return None
    gained = np.logical_and(robust_after_white_box, ~robust_after_black_box).sum()
    if gained / total <= alpha:
        return None
    return (
        f"a black-box attack fooled {gained} of {total} samples on which every gradient-based "
        "attack failed: the gradients are probably masked and the robustness under gradient "
        "attacks is overestimated"
    )


def warn(messages: Iterable[str], source: str, stacklevel: int = 3) -> None:
    for message in messages:
        warnings.warn(f"{source}: {message}", GradientMaskingWarning, stacklevel=stacklevel)


def host_mask(t: ep.Tensor) -> np.ndarray:
    return np.array(t.numpy(), dtype=bool)
