"""Behaviour of the PGD family beyond the contract every attack has (tests/test_contract.py):
robust accuracy over epsilons, targeted strength, label dtypes, top-k criteria."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import LinearOracle, cnn_model, native, to_numpy

import advlib
from advlib import attacks


def _data(n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def models() -> dict[str, object]:
    return {}


def _model(models: dict[str, object], backend: str) -> advlib.Model:
    if backend not in models:
        models[backend] = cnn_model(backend)
    return models[backend]  # type: ignore[return-value]


def test_pgd_robust_accuracy_does_not_increase_with_epsilon(
    backend: str, models: dict[str, object]
) -> None:
    model = _model(models, backend)
    x = _data(64, seed=3)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    eps_list = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
    _, _, success = attacks.LinfPGD(steps=20, seed=0)(model, x, labels, epsilons=eps_list)
    robust = 1 - success.astype(np.float64).mean(axis=-1)
    assert np.all(np.diff(robust) <= 0), robust
    assert robust[0] == 1.0 and robust[-1] < 0.5


def test_targeted_attack_reaches_target(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(32, seed=4)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    targets = (labels + 1) % 10
    criterion = advlib.TargetedMisclassification(native(backend, targets))
    _, clipped, success = attacks.LinfPGD(steps=40, seed=0)(
        model, native(backend, x), criterion, epsilons=0.5
    )
    predictions = to_numpy(model(model.to_tensor(clipped, "x", floating=True)[0])).argmax(-1)
    np.testing.assert_array_equal(to_numpy(success), predictions == targets)
    assert to_numpy(success).mean() > 0.9


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
def test_labels_of_any_integer_dtype(dtype: str, backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(8)
    labels = (np.arange(8) % 10).astype(dtype)
    _, _, success = attacks.FGSM()(model, x, labels, epsilons=0.1)
    _, _, reference = attacks.FGSM()(model, x, labels.astype(np.int64), epsilons=0.1)
    np.testing.assert_array_equal(success, reference)


def test_top_k_criterion_with_pgd(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(16)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    criterion = advlib.TopKMisclassification(labels, k=3)
    _, clipped, success = attacks.LinfPGD(steps=20, seed=0)(model, x, criterion, epsilons=0.3)
    logits = to_numpy(model(model.to_tensor(clipped, "x", floating=True)[0]))
    top3 = np.argsort(-logits, axis=-1)[:, :3]
    np.testing.assert_array_equal(success, ~(top3 == labels[:, None]).any(axis=-1))


def _adam_reference(
    oracle: LinearOracle, eps: float, stepsize: float, steps: int, p: float
) -> np.ndarray:
    """Foolbox's Adam PGD/BIM on the linear model, in float64 NumPy, without a random start:
    the normalized gradient of the summed cross-entropy through bias-corrected Adam, then the
    projection onto the ball and the bounds."""
    x0 = oracle.x.reshape(len(oracle.x), -1).astype(np.float64)
    w, b = oracle.weights["fc1.w"].astype(np.float64), oracle.weights["fc1.b"]
    onehot = np.eye(w.shape[1])[oracle.labels]
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    for t in range(1, steps + 1):
        z = x @ w + b
        soft = np.exp(z - z.max(-1, keepdims=True))
        grad = (soft / soft.sum(-1, keepdims=True) - onehot) @ w.T
        g = np.sign(grad) if p == np.inf else grad / np.linalg.norm(grad, axis=-1, keepdims=True)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        x = x + stepsize * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        if p == np.inf:
            x = np.clip(x, x0 - eps, x0 + eps)
        else:
            delta = x - x0
            norms = np.linalg.norm(delta, axis=-1, keepdims=True)
            x = x0 + delta * np.minimum(1, eps / np.maximum(norms, 1e-12))
        x = np.clip(x, 0, 1)
    return x.reshape(oracle.x.shape)


@pytest.mark.parametrize(
    ("name", "eps", "p"),
    [("LinfAdamBasicIterativeAttack", 0.05, np.inf), ("L2AdamPGD", 0.5, 2.0)],
)
def test_adam_variants_follow_foolbox_update(name: str, eps: float, p: float, backend: str) -> None:
    oracle = LinearOracle(n=16, shape=(20,), classes=5, seed=1)
    attack = getattr(attacks, name)(steps=6, random_start=False)
    stepsize = attack.rel_stepsize * eps
    _, clipped, _ = attack(
        oracle.model(backend), native(backend, oracle.x), oracle.labels, epsilons=eps
    )
    expected = _adam_reference(oracle, eps, stepsize, 6, p)
    np.testing.assert_allclose(to_numpy(clipped), expected, atol=2e-5)
    # Adam's steps are not normalized: after the first one every coordinate moved by about
    # the step size, unlike plain BIM/PGD in L2.
    assert attack.unit_steps is False


def test_l1_l2_adam_bim_run_plain_bim_as_foolbox(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(8)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    for adam, plain, eps in [
        (attacks.L2AdamBasicIterativeAttack, attacks.L2BasicIterativeAttack, 0.5),
        (attacks.L1AdamBasicIterativeAttack, attacks.L1BasicIterativeAttack, 4.0),
    ]:
        ours = adam(steps=3, adam_beta1=0.5)(model, x, labels, epsilons=eps).clipped
        np.testing.assert_array_equal(ours, plain(steps=3)(model, x, labels, epsilons=eps).clipped)


def test_adam_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="adam_beta1"):
        attacks.LinfAdamPGD(adam_beta1=1.0)
    with pytest.raises(ValueError, match="adam_epsilon"):
        attacks.L2AdamBasicIterativeAttack(adam_epsilon=0)
    assert attacks.AdamPGD is attacks.LinfAdamProjectedGradientDescentAttack
