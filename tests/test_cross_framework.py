"""One set of weights in PyTorch, Keras, JAX and NumPy: same logits, same attack results."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import available, cnn_model, to_numpy

from advlib import attacks

FRAMEWORKS = [f for f in ("torch", "tensorflow", "jax", "numpy") if available(f)]
pytestmark = pytest.mark.skipif(len(FRAMEWORKS) < 2, reason="needs two frameworks")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(11).uniform(0, 1, (200, 1, 8, 8)).astype(np.float32)
    model = cnn_model(FRAMEWORKS[0])
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0])).argmax(-1)
    return x, labels


@pytest.fixture(scope="module")
def models() -> dict[str, object]:
    return {name: cnn_model(name) for name in FRAMEWORKS}


def test_same_weights_same_logits(models: dict[str, object], data: tuple) -> None:
    x, _ = data
    logits = {
        name: to_numpy(m(m.to_tensor(x, "x", floating=True)[0]))  # type: ignore[attr-defined]
        for name, m in models.items()
    }
    reference = logits[FRAMEWORKS[0]]
    for name, values in logits.items():
        np.testing.assert_allclose(values, reference, atol=1e-4, err_msg=name)


@pytest.mark.parametrize(
    ("attack", "eps", "min_agreement"),
    [
        (attacks.FGSM(), 0.05, 0.99),
        (attacks.LinfPGD(steps=20, seed=5), 0.05, 0.98),
        (attacks.L2PGD(steps=20, seed=5), 0.5, 0.98),
    ],
    ids=["FGSM", "LinfPGD", "L2PGD"],
)
def test_attacks_agree_across_frameworks(
    attack: attacks.Attack, eps: float, min_agreement: float, models: dict, data: tuple
) -> None:
    x, labels = data
    gradient_frameworks = [f for f in FRAMEWORKS if f != "numpy"]
    successes = {
        name: to_numpy(attack(models[name], x, labels, epsilons=eps).success)
        for name in gradient_frameworks
    }
    reference = successes[gradient_frameworks[0]]
    assert 0.1 < reference.mean() < 0.95, "epsilon should make the comparison informative"
    for name, success in successes.items():
        agreement = (success == reference).mean()
        assert agreement >= min_agreement, (name, agreement)
