"""evaluate() warns about gradient masking: probability outputs, randomized models, and
black-box attacks that significantly beat every gradient attack; the warnings point at the
caller's line."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from helpers import LinearOracle

import advlib
from advlib.attacks import GradientMaskingWarning
from advlib.attacks._diagnostics import (
    BACKGROUND_RATE,
    MIN_SAMPLES,
    SIGNIFICANCE,
    binomial_tail,
    black_box_check,
    black_box_significance,
)


@pytest.mark.torch
@pytest.mark.filterwarnings(
    "ignore:LinfFastGradientAttack. the model's outputs look like:UserWarning"
)
def test_evaluate_warns_on_probabilities_and_randomness() -> None:
    torch = pytest.importorskip("torch")
    oracle = LinearOracle(n=32, shape=(20,), classes=4, seed=4)
    w, b = torch.as_tensor(oracle.weights["fc1.w"]), torch.as_tensor(oracle.weights["fc1.b"])
    softmax = advlib.PyTorchModel(lambda x: torch.softmax(x @ w + b, -1), bounds=(0, 1))
    with pytest.warns(GradientMaskingWarning, match="look like probabilities"):
        advlib.evaluate(softmax, (oracle.x, oracle.labels), "FGSM", [0.01], progress=False)

    generator = torch.Generator().manual_seed(0)

    def noisy(x):
        return x @ w + b + torch.randn(x.shape[0], 4, generator=generator)

    randomized = advlib.PyTorchModel(noisy, bounds=(0, 1))
    with pytest.warns(GradientMaskingWarning, match="randomized"):
        advlib.evaluate(randomized, (oracle.x, oracle.labels), "FGSM", [0.01], progress=False)

    logits = advlib.PyTorchModel(lambda x: x @ w + b, bounds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        report = advlib.evaluate(logits, (oracle.x, oracle.labels), "FGSM", [0.01], progress=False)
    assert np.isfinite(report.to_dict()["n"])


# ------------------------------------------------------------------ black-box significance
def test_binomial_tail_is_exact() -> None:
    for k, n, p in [(3, 10, 0.01), (1, 200, 0.01), (6, 100, 0.01), (0, 5, 0.3), (7, 7, 0.5)]:
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert binomial_tail(k, n, p) == pytest.approx(exact, rel=1e-12, abs=1e-300)
    assert binomial_tail(11, 10, 0.5) == 0.0


@pytest.mark.parametrize(
    ("robust", "fooled", "warns"),
    [
        (200, 1, False),  # the plain CNN that used to warn: one sample is an anecdote
        (2, 2, False),  # fewer than MIN_SAMPLES never warn
        (10, 3, True),
        (100, 5, False),
        (100, 6, True),
        (1000, 21, False),
        (1000, 22, True),
        (0, 0, False),
    ],
)
def test_black_box_rule_is_a_significance_test(robust: int, fooled: int, warns: bool) -> None:
    message = black_box_significance(robust, fooled, epsilon=0.03, norm="linf")
    assert (message is not None) == warns
    p_value = binomial_tail(fooled, robust, BACKGROUND_RATE) if robust else 1.0
    assert warns == (fooled >= MIN_SAMPLES and p_value < SIGNIFICANCE)
    if message is not None:
        assert message.startswith("at epsilon 0.03 (linf), a black-box attack fooled")
        assert f"{fooled} of the {robust} samples" in message


def _warning_rate(robust: int, rate: float) -> float:
    """Exactly, the chance that the rule warns when each of ``robust`` samples falls to the
    black-box attack independently with probability ``rate``."""
    return sum(
        math.comb(robust, k) * rate**k * (1 - rate) ** (robust - k)
        for k in range(robust + 1)
        if black_box_significance(robust, k) is not None
    )


@pytest.mark.parametrize("robust", [3, 10, 50, 100, 200, 500, 1000])
def test_black_box_false_alarm_rate_is_as_stated(robust: int) -> None:
    """On the null model (honest gradients: black-box-only successes at the background rate),
    the rule warns in at most SIGNIFICANCE (0.1%) of the evaluations; on masked gradients (a
    tenth of the samples left to the black-box attack) it warns almost surely from 200
    samples on."""
    assert _warning_rate(robust, BACKGROUND_RATE) <= SIGNIFICANCE
    if robust >= 200:
        assert _warning_rate(robust, 0.1) >= 0.99


def test_black_box_false_alarm_rate_by_simulation() -> None:
    """The same on simulated evaluations of 200 samples: 20000 null-model evaluations (about
    20 false alarms allowed at 0.1%) and 2000 masked ones."""
    rng = np.random.default_rng(0)
    null = rng.binomial(200, BACKGROUND_RATE, size=20000)
    alarms = sum(black_box_significance(200, int(k)) is not None for k in null)
    assert alarms <= 20 * 2, alarms  # twice the allowed rate: a clear margin over noise
    masked = rng.binomial(200, 0.1, size=2000)
    caught = sum(black_box_significance(200, int(k)) is not None for k in masked)
    assert caught >= 0.99 * len(masked), caught


def test_black_box_check_on_masks() -> None:
    white = np.zeros(200, dtype=bool)
    white[:150] = True  # 150 samples survived every gradient attack
    black = white.copy()
    black[0] = False  # the black-box attack fooled one of them
    assert black_box_check(white, black) is None
    black[:8] = False
    message = black_box_check(white, black, epsilon=0.5, norm="l2")
    assert message is not None and "at epsilon 0.5 (l2)" in message and "8 of the 150" in message


class _Quantized:
    """Logits of inputs rounded to quarters: zero gradients everywhere (masked), while a
    black-box search still finds adversarials."""

    def __init__(self, oracle: LinearOracle) -> None:
        import torch

        self.w = torch.as_tensor(oracle.weights["fc1.w"])
        self.b = torch.as_tensor(oracle.weights["fc1.b"])

    def __call__(self, x: Any) -> Any:
        import torch

        return torch.round(x.reshape(len(x), -1) * 4) / 4 @ self.w + self.b


@pytest.mark.torch
def test_evaluate_names_the_epsilon_and_points_at_the_caller() -> None:
    pytest.importorskip("torch")
    oracle = LinearOracle(n=32, classes=5, seed=6, scale=5.0)
    masked = advlib.PyTorchModel(_Quantized(oracle), bounds=(0, 1))
    square = advlib.attacks.LinfSquareAttack(n_queries=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        advlib.evaluate(
            masked, (oracle.x, oracle.labels), ["FGSM", square], [0.0, 0.3], progress=False
        )
    masking = [w for w in caught if issubclass(w.category, GradientMaskingWarning)]
    messages = [str(w.message) for w in masking]
    assert any("at epsilon 0.3 (linf), a black-box attack fooled" in m for m in messages), messages
    assert not any("at epsilon 0 " in m for m in messages)
    assert {w.filename for w in masking} == {__file__}


@pytest.mark.torch
def test_autoattack_warnings_point_at_the_caller() -> None:
    pytest.importorskip("torch")
    oracle = LinearOracle(n=16, classes=5, seed=6, scale=5.0)
    masked = advlib.PyTorchModel(_Quantized(oracle), bounds=(0, 1))
    attack = advlib.attacks.AutoAttack(eps=0.3, seed=0, steps=5, n_queries=200, n_target_classes=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attack(masked, oracle.x, oracle.labels)
    masking = [w for w in caught if issubclass(w.category, GradientMaskingWarning)]
    expected = "at epsilon 0.3 (linf), a black-box attack fooled"
    assert any(expected in str(w.message) for w in masking)
    assert {w.filename for w in masking} == {__file__}
