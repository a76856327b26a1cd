"""Signs that a robustness evaluation may be unreliable (gradient masking), as warnings.

Each check returns a message, or None when nothing looks wrong; :func:`model_checks` runs the
checks that only need the model and the data, :func:`black_box_check` compares white-box and
black-box results after an evaluation. :func:`warn` emits messages as
:class:`GradientMaskingWarning`. Used by :class:`~advlib.attacks.autoattack.AutoAttack`; an
evaluation helper can call them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import eagerpy as ep
import numpy as np

from .._tensors import crossentropy_sum, flat_batch
from .._warnings import warn_user
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


#: The fraction of the samples every gradient attack failed on that a black-box attack may
#: still fool on a model with honest gradients: samples near the boundary, where a different
#: search wins by chance. AutoAttack's black-box Square adds well under this on standard and
#: adversarially trained models (Croce & Hein, 2020).
BACKGROUND_RATE = 0.01
#: The chance of a false warning allowed per check, on a model at that background rate.
SIGNIFICANCE = 0.001
#: Fewer black-box-only successes than this never warn: one or two samples are an anecdote.
MIN_SAMPLES = 3


def black_box_check(
    robust_after_white_box: np.ndarray,
    robust_after_black_box: np.ndarray,
    *,
    epsilon: float | None = None,
    norm: str | None = None,
) -> str | None:
    """Warn when a black-box attack fooled significantly many of the samples on which every
    white-box (gradient) attack failed: the gradients are probably misleading.

    Args:
        robust_after_white_box: per sample, whether it survived every white-box attack.
        robust_after_black_box: per sample, whether it also survived the black-box attacks.
        epsilon: the budget both were run at, named in the message (default None: not named).
        norm: the budget's norm, named in the message (default None).

    See :func:`black_box_significance` for the rule.
    """
    white = np.asarray(robust_after_white_box, dtype=bool)
    black = np.asarray(robust_after_black_box, dtype=bool)
    fooled = int(np.logical_and(white, ~black).sum())
    return black_box_significance(int(white.sum()), fooled, epsilon=epsilon, norm=norm)


def black_box_significance(
    robust: int, fooled: int, *, epsilon: float | None = None, norm: str | None = None
) -> str | None:
    """The warning when ``fooled`` of the ``robust`` samples that survived every white-box
    attack fell to a black-box attack, or None.

    The rule: a one-sided exact binomial test. With honest gradients a black-box attack still
    fools a few such samples (near the decision boundary), at a rate up to
    :data:`BACKGROUND_RATE` (1%). Warn when ``fooled >= MIN_SAMPLES`` (3) and
    ``P(X >= fooled)`` for ``X ~ Binomial(robust, BACKGROUND_RATE)`` is below
    :data:`SIGNIFICANCE` (0.001): so a well-behaved model warns in at most 1 of 1000 checks,
    while masked gradients, which leave many samples to the black-box attack, warn even on
    small evaluations: it takes 3 of 10 samples, 6 of 100, 22 of 1000 (1 of 200 never warns).
    """
    if fooled < MIN_SAMPLES or robust <= 0:
        return None
    p_value = binomial_tail(fooled, robust, BACKGROUND_RATE)
    if p_value >= SIGNIFICANCE:
        return None
    where = ""
    if epsilon is not None:
        where = f"at epsilon {epsilon:g}" + (f" ({norm})" if norm else "") + ", "
    return (
        f"{where}a black-box attack fooled {fooled} of the {robust} samples on which every "
        f"gradient-based attack failed ({fooled / robust:.0%}; p = {p_value:.1g} against a "
        f"{BACKGROUND_RATE:.0%} background rate): the gradients are probably masked and the "
        "robustness under gradient attacks is overestimated"
    )


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, exactly (terms summed in log space)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)

    def log_term(i: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )

    # The terms fall geometrically beyond the mean; stop once they no longer matter.
    total, i = 0.0, k
    while i <= n:
        term = math.exp(log_term(i))
        total += term
        if i > n * p and term < total * 1e-17:
            break
        i += 1
    return min(total, 1.0)


def warn(messages: Iterable[str], source: str) -> None:
    """Emit ``messages`` as :class:`GradientMaskingWarning`, attributed to the first caller
    outside advlib (the user's line)."""
    for message in messages:
        warn_user(f"{source}: {message}", GradientMaskingWarning)


def host_mask(t: ep.Tensor) -> np.ndarray:
    return np.array(t.numpy(), dtype=bool)
