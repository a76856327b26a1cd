"""evaluate() warns about gradient masking: probability outputs, randomized models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import LinearOracle

import advlib
from advlib.attacks import GradientMaskingWarning


@pytest.mark.torch
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
