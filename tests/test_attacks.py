"""Behaviour of the PGD family beyond the contract every attack has (tests/test_contract.py):
robust accuracy over epsilons, targeted strength, label dtypes, top-k criteria."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cnn_model, native, to_numpy

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
