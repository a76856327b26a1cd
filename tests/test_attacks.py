"""Properties every fixed-epsilon gradient attack must have, on every gradient backend."""

from __future__ import annotations

import eagerpy as ep
import numpy as np
import pytest
from helpers import cnn_model, native, to_numpy

import advlib
from advlib import attacks
from advlib.norms import NORMS

FAMILY = [
    attacks.L1FastGradientAttack(),
    attacks.L2FastGradientAttack(),
    attacks.LinfFastGradientAttack(),
    attacks.L1BasicIterativeAttack(steps=5),
    attacks.L2BasicIterativeAttack(steps=5),
    attacks.LinfBasicIterativeAttack(steps=5),
    attacks.L1ProjectedGradientDescentAttack(steps=5, seed=1),
    attacks.L2ProjectedGradientDescentAttack(steps=5, seed=1),
    attacks.LinfProjectedGradientDescentAttack(steps=5, seed=1),
    attacks.LinfMomentumIterativeAttack(steps=5),
]
EPSILONS = {"l1": [0.0, 2.0, 8.0], "l2": [0.0, 0.5, 2.0], "linf": [0.0, 0.05, 0.2]}


def _data(n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def models() -> dict[str, object]:
    return {}


def _model(models: dict[str, object], backend: str) -> advlib.Model:
    if backend not in models:
        models[backend] = cnn_model(backend)
    return models[backend]  # type: ignore[return-value]


@pytest.mark.parametrize("attack", FAMILY, ids=lambda a: type(a).__name__)
def test_clipped_within_epsilon_and_bounds_and_success_is_criterion(
    attack: advlib.Attack, backend: str, models: dict[str, object]
) -> None:
    model = _model(models, backend)
    x = _data()
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    inputs, labels_in = native(backend, x), native(backend, labels)
    x_copy, labels_copy = x.copy(), labels.copy()
    eps_list = EPSILONS[attack.norm.name]

    raw, clipped, success = attack(model, inputs, labels_in, epsilons=eps_list)

    assert type(clipped[0]) is type(inputs) and type(raw[0]) is type(inputs)
    assert type(success) is type(inputs)
    assert to_numpy(success).shape == (len(eps_list), len(x))
    np.testing.assert_array_equal(to_numpy(inputs), x_copy)
    np.testing.assert_array_equal(to_numpy(labels_in), labels_copy)
    norm = NORMS[attack.norm.name]
    for eps, adv, succ in zip(eps_list, clipped, to_numpy(success), strict=False):
        adv_np = to_numpy(adv)
        assert adv_np.dtype == x.dtype
        assert adv_np.min() >= 0 and adv_np.max() <= 1
        sizes = norm(ep.astensor(adv_np - x)).numpy()
        assert np.all(sizes <= eps + 1e-5), (eps, sizes.max())
        predictions = to_numpy(model(model.to_tensor(adv_np, "x", floating=True)[0])).argmax(-1)
        np.testing.assert_array_equal(succ, predictions != labels)
    assert not to_numpy(success)[0].any(), "epsilon 0 must not change any prediction"
    assert to_numpy(success)[-1].mean() > 0.2, "the largest epsilon should fool some samples"


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


def test_fgsm_accepts_targeted_criteria(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(16)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    criterion = advlib.TargetedMisclassification((labels + 1) % 10)
    _, clipped, success = attacks.FGSM()(model, x, criterion, epsilons=0.3)
    assert success.shape == (16,)
    assert np.abs(clipped - x).max() <= 0.3 + 1e-6


@pytest.mark.parametrize("kind", ["native", "numpy", "eagerpy"])
def test_results_come_back_in_the_type_passed(
    kind: str, backend: str, models: dict[str, object]
) -> None:
    model = _model(models, backend)
    x = _data(8)
    labels = np.arange(8) % 10
    inputs = {"native": native(backend, x), "numpy": x, "eagerpy": ep.astensor(native(backend, x))}[
        kind
    ]
    raw, clipped, success = attacks.FGSM()(model, inputs, labels, epsilons=0.1)
    for result in (raw, clipped, success):
        assert type(result) is type(inputs)
    if kind == "eagerpy":
        assert type(clipped.raw) is type(native(backend, x))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
def test_labels_of_any_integer_dtype(dtype: str, backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(8)
    labels = (np.arange(8) % 10).astype(dtype)
    _, _, success = attacks.FGSM()(model, x, labels, epsilons=0.1)
    _, _, reference = attacks.FGSM()(model, x, labels.astype(np.int64), epsilons=0.1)
    np.testing.assert_array_equal(success, reference)


def test_same_seed_same_result(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(16)
    labels = np.arange(16) % 10
    a = attacks.L2PGD(steps=5, seed=7)(model, x, labels, epsilons=1.0)
    b = attacks.L2PGD(steps=5, seed=7)(model, x, labels, epsilons=1.0)
    c = attacks.L2PGD(steps=5, seed=8)(model, x, labels, epsilons=1.0)
    np.testing.assert_array_equal(a.clipped, b.clipped)
    assert not np.array_equal(a.clipped, c.clipped)


def test_scalar_and_list_epsilons_agree(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(16)
    labels = np.arange(16) % 10
    single = attacks.LinfPGD(steps=5, seed=3)(model, x, labels, epsilons=0.1)
    many = attacks.LinfPGD(steps=5, seed=3)(model, x, labels, epsilons=[0.05, 0.1])
    np.testing.assert_allclose(single.clipped, many.clipped[1], atol=1e-6)
    np.testing.assert_array_equal(single.success, many.success[1])


def test_result_is_a_named_tuple(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(4)
    result = attacks.FGSM()(model, x, np.arange(4), epsilons=0.1)
    raw, clipped, success = result
    assert result.raw is raw and result.clipped is clipped and result.success is success


def test_top_k_criterion_with_pgd(backend: str, models: dict[str, object]) -> None:
    model = _model(models, backend)
    x = _data(16)
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0]).argmax(axis=-1))
    criterion = advlib.TopKMisclassification(labels, k=3)
    _, clipped, success = attacks.LinfPGD(steps=20, seed=0)(model, x, criterion, epsilons=0.3)
    logits = to_numpy(model(model.to_tensor(clipped, "x", floating=True)[0]))
    top3 = np.argsort(-logits, axis=-1)[:, :3]
    np.testing.assert_array_equal(success, ~(top3 == labels[:, None]).any(axis=-1))
