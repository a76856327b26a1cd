"""Square attack: score-based, on every backend including NumPy; the closed-form linear oracle,
image layouts, reproducibility, and its schedule and update pattern."""

from __future__ import annotations

import functools

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

import advlib
import advlib.zoo
from advlib.attacks.square import L2SquareAttack, LinfSquareAttack, _pattern, p_schedule
from advlib.norms import NORMS

ORACLE = LinearOracle(n=32, classes=5, seed=4, scale=5.0)


@functools.cache
def oracle_model(backend: str) -> advlib.Model:
    model: advlib.Model = ORACLE.model(backend)
    return model


@functools.cache
def digits_model(backend: str) -> advlib.Model:
    model: advlib.Model = advlib.zoo.digits_cnn(backend, robust=True)
    return model


def _logits(x: np.ndarray) -> np.ndarray:
    flat = np.asarray(x).reshape(len(x), -1)
    logits: np.ndarray = flat @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
    return logits


@pytest.mark.parametrize(
    ("attack", "p"),
    [
        (LinfSquareAttack(n_queries=400, seed=0), np.inf),
        (L2SquareAttack(n_queries=400, seed=0), 2.0),
    ],
    ids=["linf", "l2"],
)
def test_linear_oracle_success_band(attack: advlib.Attack, p: float, any_backend: str) -> None:
    model = oracle_model(any_backend)
    optimal = ORACLE.optimal(p)
    eps = float(np.quantile(optimal, 0.4)) / 0.8
    x = ORACLE.x.copy()
    _, clipped, success = attack(
        model, native(any_backend, x), native(any_backend, ORACLE.labels), epsilons=eps
    )
    np.testing.assert_array_equal(x, ORACLE.x)
    clipped, success = to_numpy(clipped), to_numpy(success)
    easy, impossible = optimal <= 0.8 * eps, optimal > eps
    assert easy.sum() >= 8 and impossible.sum() >= 8
    assert success[easy].all(), f"missed {(~success[easy]).sum()} of {easy.sum()} easy samples"
    assert not success[impossible].any()
    sizes = NORMS[attack.norm.name](ep.astensor(clipped - ORACLE.x)).numpy()
    assert sizes.max() <= eps * (1 + 1e-5) and clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_array_equal(success, _logits(clipped).argmax(-1) != ORACLE.labels)


@pytest.mark.parametrize("attack_class", [LinfSquareAttack, L2SquareAttack], ids=["linf", "l2"])
def test_images_reproducible_within_budget(
    attack_class: type[LinfSquareAttack], backend: str
) -> None:
    # NumPy runs images in test_channels_last_images_on_numpy (its convolutions are slow)
    model = digits_model(backend)
    x, y = advlib.zoo.digits("test")
    x, y = x[:32], y[:32]
    eps = 0.2 if attack_class is LinfSquareAttack else 1.5
    a = attack_class(n_queries=150, seed=3)(model, x, y, epsilons=eps)
    b = attack_class(n_queries=150, seed=3)(model, x, y, epsilons=eps)
    c = attack_class(n_queries=150, seed=4)(model, x, y, epsilons=eps)
    np.testing.assert_array_equal(a.clipped, b.clipped)
    assert not np.array_equal(a.clipped, c.clipped)
    sizes = NORMS[attack_class.norm.name](ep.astensor(a.clipped - x)).numpy()
    assert sizes.max() <= eps * (1 + 1e-5) and a.clipped.min() >= 0 and a.clipped.max() <= 1
    logits = to_numpy(model(model.to_tensor(a.clipped, "x", floating=True)[0]))
    np.testing.assert_array_equal(a.success, logits.argmax(-1) != y)
    clean = to_numpy(model(model.to_tensor(x, "x", floating=True)[0])).argmax(-1) != y
    assert a.success.mean() > clean.mean(), "the attack should fool some robust samples"


def test_channels_last_images_on_numpy() -> None:
    model = digits_model("numpy")
    x, y = advlib.zoo.digits("test")
    x, y = x[:16], y[:16]

    def channels_last(batch: np.ndarray) -> np.ndarray:
        first = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return np.asarray(model(ep.astensor(first)).raw)

    wrapped = advlib.NumPyModel(channels_last, bounds=(0, 1))
    x_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    attack = LinfSquareAttack(n_queries=80, seed=3, channel_axis=-1)
    result = attack(wrapped, x_last, y, epsilons=0.2)
    reference = LinfSquareAttack(n_queries=80, seed=3)(model, x, y, epsilons=0.2)
    # same random draws in either layout: the same adversarials, transposed
    np.testing.assert_allclose(result.clipped.transpose(0, 3, 1, 2), reference.clipped)
    np.testing.assert_array_equal(result.success, reference.success)


def test_schedule_and_pattern() -> None:
    assert p_schedule(0.8, 0, 10000) == 0.8
    assert p_schedule(0.8, 11, 10000) == 0.4
    assert p_schedule(0.8, 9000, 10000) == 0.8 / 512
    assert p_schedule(0.8, 50, 500) == p_schedule(0.8, 1000, 10000)  # rescaled to the budget
    values = [p_schedule(0.8, q, 5000) for q in range(5000)]
    assert values == sorted(values, reverse=True)
    rng = np.random.default_rng(0)
    for shape in ((5, 5), (1, 6), (4, 7)):
        pattern = _pattern(*shape, rng)
        assert pattern.shape == shape
        np.testing.assert_allclose((pattern**2).sum(), 1.0)
        assert pattern.max() > 0 > pattern.min()  # two bumps of opposite signs


def test_invalid_arguments() -> None:
    for kwargs in ({"n_queries": 0}, {"p_init": 1.5}, {"channel_axis": 2}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            LinfSquareAttack(**kwargs)  # type: ignore[arg-type]
    assert not LinfSquareAttack.requires_grad and not L2SquareAttack.requires_grad
