"""APGD / APGD-T: closed-form linear oracle, step-size schedule, targeted success, and strength
against PGD on the adversarially trained zoo model."""

from __future__ import annotations

import functools
import math

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy, wrap_model

import advlib
import advlib.zoo
from advlib.attacks import LinfPGD
from advlib.attacks._box_projections import l1_box_projection
from advlib.attacks.acg import L2ACGAttack, LinfACGAttack, hestenes_stiefel
from advlib.attacks.apgd import (
    L1APGD,
    L2APGD,
    LinfAPGD,
    LinfAPGDT,
    l1_checkpoints,
    linf_l2_checkpoints,
)
from advlib.attacks.malt import L1MALTAttack, L2MALTAttack, LinfMALTAttack
from advlib.norms import NORMS
from advlib.zoo.architectures import build

ORACLE_ATTACKS = [
    (LinfAPGD(steps=30, seed=0), np.inf),
    (L2APGD(steps=30, loss="dlr", seed=0), 2.0),
    (L1APGD(steps=30, seed=0), 1.0),
    (LinfAPGDT(steps=30, n_target_classes=4, seed=0), np.inf),
    (LinfAPGD(steps=30, loss="margin", seed=0), np.inf),
    (L2APGD(steps=30, loss="pma", seed=0), 2.0),
    (LinfACGAttack(steps=30, seed=0), np.inf),
    (L2ACGAttack(steps=30, loss="margin", seed=0), 2.0),
    (LinfMALTAttack(steps=30, n_target_classes=2, seed=0), np.inf),
    (L2MALTAttack(steps=30, n_target_classes=2, seed=0), 2.0),
    (L1MALTAttack(steps=30, n_target_classes=2, seed=0), 1.0),
]


ORACLE = LinearOracle(n=32, classes=5, seed=1, scale=5.0)


@functools.cache
def oracle_model(backend: str) -> advlib.Model:
    model: advlib.Model = ORACLE.model(backend)
    return model


@pytest.mark.parametrize(
    ("attack", "p"),
    ORACLE_ATTACKS,
    ids=[f"{type(a).__name__}-{a.loss}" for a, _ in ORACLE_ATTACKS],  # type: ignore[attr-defined]
)
def test_linear_oracle_success_band(attack: advlib.Attack, p: float, backend: str) -> None:
    oracle = ORACLE
    model = oracle_model(backend)
    optimal = oracle.optimal(p)
    eps = float(np.quantile(optimal, 0.4)) / 0.8
    x, labels = oracle.x.copy(), oracle.labels.copy()

    _, clipped, success = attack(model, native(backend, x), native(backend, labels), epsilons=eps)

    np.testing.assert_array_equal(x, oracle.x)
    clipped, success = to_numpy(clipped), to_numpy(success)
    easy, impossible = optimal <= 0.8 * eps, optimal > eps
    assert easy.sum() >= 8 and impossible.sum() >= 8
    assert success[easy].all(), f"missed {(~success[easy]).sum()} of {easy.sum()} easy samples"
    assert not success[impossible].any()
    sizes = NORMS[attack.norm.name](ep.astensor(clipped - oracle.x)).numpy()
    assert sizes.max() <= eps * (1 + 1e-5) and clipped.min() >= 0 and clipped.max() <= 1
    logits = clipped.reshape(len(x), -1) @ oracle.weights["fc1.w"] + oracle.weights["fc1.b"]
    predictions = logits.argmax(-1)
    np.testing.assert_array_equal(success, predictions != labels)


def test_checkpoints_follow_the_paper() -> None:
    # p_0 = 0, p_1 = 0.22, p_(j+1) = p_j + max(p_j - p_(j-1) - 0.03, 0.06); checkpoint j after
    # ceil(p_j * steps) iterations (up to rounding: windows are whole iterations)
    for steps in (100, 1000):
        p, paper = [0.0, 0.22], []
        while p[-1] <= 1:
            paper.append(math.ceil(p[-1] * steps))
            p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
        ours = [i + 1 for i, _ in linf_l2_checkpoints(steps)]
        assert len(ours) == len(paper)
        assert max(abs(a - b) for a, b in zip(ours, paper, strict=True)) <= 1, (ours, paper)
    for steps in (1, 5, 10, 40):
        ours = [i + 1 for i, _ in linf_l2_checkpoints(steps)]
        assert ours == sorted(set(ours)) and ours[0] >= 1 and ours[-1] <= steps
    assert [i for i, _ in l1_checkpoints(100)] == list(range(3, 100, 4))


def _l1_box_projection_by_bisection(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The Euclidean projection of ``v`` onto {|z|_1 <= 1, lo <= z <= hi} (lo <= 0 <= hi),
    exact to float64 rounding: z(t) = clip(soft_threshold(v, t), lo, hi), with the smallest
    multiplier t >= 0 for which |z(t)|_1 <= 1, found by bisection (|z(t)|_1 is monotone)."""

    def z(t: float) -> np.ndarray:
        return np.clip(np.sign(v) * np.maximum(np.abs(v) - t, 0.0), lo, hi)

    if np.abs(z(0.0)).sum() <= 1.0:
        return z(0.0)
    low, high = 0.0, float(np.abs(v).max())
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if np.abs(z(mid)).sum() > 1.0 else (low, mid)
    return z(high)


def test_l1_box_projection_is_the_euclidean_projection() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 7))
    x = rng.uniform(0, 1, (6, 7))
    lo, hi = -x, 1 - x
    ours = l1_box_projection(
        ep.astensor(v), ep.astensor(np.ones(6)), ep.astensor(lo), ep.astensor(hi)
    ).numpy()
    for i in range(6):
        reference = _l1_box_projection_by_bisection(v[i], lo[i], hi[i])
        assert np.abs(reference).sum() <= 1 + 1e-12
        assert np.abs(ours[i]).sum() <= 1 + 1e-9
        assert np.all(ours[i] >= lo[i] - 1e-12) and np.all(ours[i] <= hi[i] + 1e-12)
        np.testing.assert_allclose(ours[i], reference, rtol=0, atol=1e-9)


def test_same_seed_same_result(backend: str) -> None:
    model, x, y = oracle_model(backend), ORACLE.x, ORACLE.labels
    a = L2APGD(steps=10, seed=5)(model, x, y, epsilons=0.05)
    b = L2APGD(steps=10, seed=5)(model, x, y, epsilons=0.05)
    c = L2APGD(steps=10, seed=6)(model, x, y, epsilons=0.05)
    np.testing.assert_array_equal(a.raw, b.raw)
    assert not np.array_equal(a.raw, c.raw)


@pytest.mark.parametrize("loss", ["ce", "dlr", "margin", "pma"])
def test_targeted_criterion_uses_targeted_success(loss: str, backend: str) -> None:
    model, x = oracle_model(backend), ORACLE.x
    targets = (ORACLE.labels + 2) % 5
    criterion = advlib.TargetedMisclassification(targets)
    optimal = ORACLE.optimal(np.inf, targets)  # a lower bound: z_t must beat every class
    eps = 1.5 * float(np.quantile(optimal, 0.5))
    attacks = (
        LinfAPGD(steps=20, loss=loss, seed=0),
        LinfAPGDT(steps=20, seed=0),
        LinfACGAttack(steps=20, loss=loss, seed=0),
    )
    for attack in attacks:
        _, clipped, success = attack(model, x, criterion, epsilons=eps)
        logits = clipped.reshape(len(x), -1) @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
        np.testing.assert_array_equal(success, logits.argmax(-1) == targets)
        assert success.mean() > 0.4
        assert not success[optimal > eps].any()


@functools.cache
def robust_model(backend: str) -> advlib.Model:
    model: advlib.Model = advlib.zoo.digits_cnn(backend, robust=True)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.jax)])
def test_apgd_not_weaker_than_pgd40(backend: str) -> None:
    model = robust_model(backend)
    x, y = advlib.zoo.digits("test")
    x, y = x[:96], y[:96]
    eps = [0.15, 0.2]
    _, _, pgd = LinfPGD(steps=40, seed=0)(model, x, y, epsilons=eps)
    _, _, apgd = LinfAPGD(steps=40, seed=0)(model, x, y, epsilons=eps)
    robust_pgd = 1 - to_numpy(pgd).mean(axis=-1)
    robust_apgd = 1 - to_numpy(apgd).mean(axis=-1)
    assert np.all(robust_apgd <= robust_pgd), (robust_apgd, robust_pgd)
    assert robust_apgd[-1] < robust_pgd[-1], "APGD should be clearly stronger at eps 0.2"


def test_invalid_arguments_and_binary_models() -> None:
    for kwargs in ({"steps": 0}, {"restarts": 0}, {"loss": "hinge"}, {"rho": 1.5}, {"eot_iter": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            LinfAPGD(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_target_classes"):
        LinfAPGDT(n_target_classes=0)
    with pytest.raises(TypeError, match="seed"):
        LinfAPGD(seed=1.5)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    weights = {"fc1.w": rng.normal(size=(4, 2)), "fc1.b": np.zeros(2)}
    torch_model = wrap_model("torch", build("torch", [("dense", "fc1")], weights, (4,)))
    x = rng.uniform(0.3, 0.7, (4, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="DLR loss needs a model with at least 3 classes"):
        LinfAPGD(loss="dlr")(torch_model, x, np.zeros(4, dtype=np.int64), epsilons=0.1)
    # cross-entropy works on binary models
    LinfAPGD(steps=2)(torch_model, x, np.zeros(4, dtype=np.int64), epsilons=0.1)


def test_hestenes_stiefel_coefficient() -> None:
    g = np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 1.0]])
    g_prev = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    s_prev = np.array([[1.0, -1.0], [2.0, 2.0], [-1.0, 0.0]])
    beta = hestenes_stiefel(ep.astensor(g), ep.astensor(g_prev), ep.astensor(s_prev)).numpy()
    # row 0: <g, g - g_prev> = 3, <s_prev, g_prev - g> = 0 -> undefined: 0
    # row 1: g == g_prev -> undefined: 0
    # row 2: <g, g - g_prev> = 6, <s_prev, g_prev - g> = 2 -> 3
    np.testing.assert_allclose(beta, [0.0, 0.0, 3.0])
    s_prev[0] = [1.0, 0.0]  # <s_prev, g_prev - g> = -1: negative, restart along the gradient
    beta = hestenes_stiefel(ep.astensor(g), ep.astensor(g_prev), ep.astensor(s_prev)).numpy()
    assert beta[0] == 0.0


def test_acg_differs_from_apgd_and_has_no_l1() -> None:
    # on a linear model the conjugate direction keeps the gradient's signs: use the CNN
    x, y = advlib.zoo.digits("test")
    model = robust_model("torch")
    acg = LinfACGAttack(steps=10, seed=0)(model, x[:16], y[:16], epsilons=0.1)
    apgd = LinfAPGD(steps=10, seed=0)(model, x[:16], y[:16], epsilons=0.1)
    assert not np.array_equal(acg.raw, apgd.raw)
    with pytest.raises(ValueError, match="norm"):
        LinfACGAttack(norm="l1")
    with pytest.raises(ValueError, match="loss"):
        LinfACGAttack(loss="hinge")
