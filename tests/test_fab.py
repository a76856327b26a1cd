"""FAB: closed-form linear oracle (within 1.1x of the optimum), the box-constrained hyperplane
projection against its exact minimum (bisection), targeted criteria, and epsilon semantics."""

from __future__ import annotations

import functools
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

import advlib
from advlib.attacks._box_projections import hyperplane_projection
from advlib.attacks.fab import L1FAB, L2FAB, LinfFAB, l1_hyperplane_projection
from advlib.norms import NORMS, l2, linf

ORACLE = LinearOracle(n=32, classes=5, seed=3, scale=5.0)


@functools.cache
def oracle_model(backend: str) -> advlib.Model:
    model: advlib.Model = ORACLE.model(backend)
    return model


def _logits(x: np.ndarray) -> np.ndarray:
    flat = np.asarray(x).reshape(len(x), -1)
    logits: np.ndarray = flat @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
    return logits


@pytest.mark.parametrize("targets", [None, 4], ids=["untargeted", "fab-t"])
@pytest.mark.parametrize(
    ("attack_class", "p"), [(LinfFAB, np.inf), (L2FAB, 2.0), (L1FAB, 1.0)], ids=["linf", "l2", "l1"]
)
def test_within_ten_percent_of_the_optimum(
    attack_class: type[LinfFAB], p: float, targets: int | None, backend: str
) -> None:
    model = oracle_model(backend)
    attack = attack_class(steps=20, n_target_classes=targets, seed=0)
    raw, _, success = attack(
        model, native(backend, ORACLE.x), native(backend, ORACLE.labels), epsilons=None
    )
    raw, success = to_numpy(raw), to_numpy(success)
    assert success.all()
    np.testing.assert_array_equal(_logits(raw).argmax(-1) != ORACLE.labels, success)
    sizes = NORMS[attack.norm.name](ep.astensor(raw - ORACLE.x)).numpy()
    ratio = sizes / ORACLE.optimal(p)
    assert ratio.max() <= 1.1, ratio.max()
    assert ratio.min() >= 1 - 1e-4, "smaller than the closed-form optimum: impossible"


def test_epsilons_clip_and_success_follows_the_criterion(backend: str) -> None:
    model = oracle_model(backend)
    optimal = ORACLE.optimal(2.0)
    eps = [float(np.quantile(optimal, 0.3)), float(np.quantile(optimal, 0.7))]
    raw, clipped, success = L2FAB(steps=20, seed=0)(model, ORACLE.x, ORACLE.labels, epsilons=eps)
    assert np.array_equal(raw[0], raw[1]), "one run serves every epsilon"
    for e, adv, succ in zip(eps, clipped, success, strict=True):
        sizes = l2(ep.astensor(adv - ORACLE.x)).numpy()
        assert sizes.max() <= e * (1 + 1e-5) and adv.min() >= 0 and adv.max() <= 1
        np.testing.assert_array_equal(succ, _logits(adv).argmax(-1) != ORACLE.labels)
        assert succ[optimal <= e / 1.1].all() and not succ[optimal > e].any()


def test_targeted_criterion(backend: str) -> None:
    model = oracle_model(backend)
    targets = (ORACLE.labels + 1) % 5
    criterion = advlib.TargetedMisclassification(targets)
    raw, _, success = LinfFAB(steps=30, seed=0)(model, ORACLE.x, criterion, epsilons=None)
    np.testing.assert_array_equal(success, _logits(raw).argmax(-1) == targets)
    assert success.mean() > 0.9
    sizes = linf(ep.astensor(raw - ORACLE.x)).numpy()
    # the distance to the plane z_y = z_t is a lower bound on reaching the target
    assert np.all(sizes[success] >= ORACLE.optimal(np.inf, targets)[success] * (1 - 1e-4))


def test_already_adversarial_samples_are_returned_unchanged() -> None:
    model = oracle_model("torch")
    labels = ORACLE.labels.copy()
    labels[:4] = (labels[:4] + 1) % 5  # wrong labels: adversarial as given
    raw, _, success = LinfFAB(steps=5, seed=0)(model, ORACLE.x, labels, epsilons=None)
    raw = to_numpy(raw)
    np.testing.assert_array_equal(raw[:4], ORACLE.x[:4])
    assert to_numpy(success).all()


def test_restarts_are_reproducible_with_a_seed() -> None:
    model = oracle_model("torch")
    a = L2FAB(steps=5, restarts=3, seed=1)(model, ORACLE.x, ORACLE.labels, epsilons=None)
    b = L2FAB(steps=5, restarts=3, seed=1)(model, ORACLE.x, ORACLE.labels, epsilons=None)
    np.testing.assert_array_equal(to_numpy(a.raw), to_numpy(b.raw))


def _bisect(f: Any, target: float, low: float, high: float) -> float:
    """The smallest t in [low, high] with f(t) >= target, for a nondecreasing f, to float64
    rounding."""
    for _ in range(300):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if f(mid) < target else (low, mid)
    return high


def _min_l2_on_hyperplane(w: np.ndarray, c: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """argmin |z|_2 subject to w.z = c and lo <= z <= hi: by the KKT conditions
    z = clip(mu * w, lo, hi), and w.z is nondecreasing in mu."""
    limit = 1e12
    mu = _bisect(lambda m: w @ np.clip(m * w, lo, hi), c, -limit, limit)
    return np.clip(mu * w, lo, hi)


def _min_linf_on_hyperplane(w: np.ndarray, c: float, lo: np.ndarray, hi: np.ndarray) -> float:
    """min |z|_inf subject to w.z = c and lo <= z <= hi: at level t the largest reachable
    |w.z| is sum |w_i| min(t, room_i), nondecreasing in t, where room_i is how far the box
    lets z_i move in the direction that helps."""
    helps_up = (w > 0) == (c > 0)
    room = np.where(helps_up, hi, -lo)
    return _bisect(lambda t: np.abs(w) @ np.minimum(t, room), abs(c), 0.0, 1e6)


@pytest.mark.parametrize("norm", [l2, linf], ids=["l2", "linf"])
def test_hyperplane_projection_is_the_exact_minimum(norm: advlib.norms.Norm) -> None:
    rng = np.random.default_rng(0)
    n, d = 8, 7
    w, c = rng.normal(size=(n, d)), rng.normal(size=n)
    x = rng.uniform(0, 1, (n, d))
    lo, hi = -x, 1 - x
    c[0] = 50.0  # beyond the box: the best effort is the box corner along w
    w[1, :3] = 0.0  # coordinates that cannot help
    ours = hyperplane_projection(
        norm, ep.astensor(w), ep.astensor(c), ep.astensor(lo), ep.astensor(hi)
    ).numpy()
    assert np.all(ours >= lo - 1e-12) and np.all(ours <= hi + 1e-12)
    corner = np.where(w > 0, hi, lo)
    np.testing.assert_allclose(ours[0], np.where(w[0] == 0, 0, corner[0]), atol=1e-12)
    for i in range(1, n):
        np.testing.assert_allclose(w[i] @ ours[i], c[i], atol=1e-9)
        if norm is l2:  # the minimum is unique
            reference = _min_l2_on_hyperplane(w[i], c[i], lo[i], hi[i])
            np.testing.assert_allclose(ours[i], reference, rtol=0, atol=1e-9)
        else:  # the minimiser need not be unique, its size is
            optimum = _min_linf_on_hyperplane(w[i], c[i], lo[i], hi[i])
            assert np.abs(ours[i]).max() <= optimum + 1e-9


def _min_l1_on_hyperplane(w: np.ndarray, c: float, lo: np.ndarray, hi: np.ndarray) -> float:
    """min |z|_1 subject to w.z = c and lo <= z <= hi, exactly: a fractional knapsack. Each
    coordinate buys |w_i| of w.z per unit of |z_i| (in the direction of sign(c) sign(w_i), up
    to its limit), so the optimum fills coordinates in order of |w_i|, the last partly."""
    direction = np.sign(c) * np.sign(w)
    room = np.where(direction > 0, hi, -lo) * (w != 0)
    need, total = abs(c), 0.0
    for i in np.argsort(-np.abs(w), kind="stable"):
        if need <= 0:
            break
        amount = min(room[i], need / abs(w[i])) if w[i] != 0 else 0.0
        total, need = total + amount, need - amount * abs(w[i])
    assert need <= 1e-12 * abs(c), "the hyperplane lies beyond the box"
    return float(total)


def test_l1_hyperplane_projection_is_the_exact_minimum() -> None:
    rng = np.random.default_rng(1)
    n, d = 8, 9
    w, c = rng.normal(size=(n, d)), rng.normal(size=n)
    x = rng.uniform(0, 1, (n, d))
    lo, hi = -x, 1 - x
    c[0] = -50.0  # beyond the box: every useful coordinate goes to its limit
    w[1, :3] = 0.0  # coordinates that cannot help
    ours = l1_hyperplane_projection(
        ep.astensor(w), ep.astensor(c), ep.astensor(lo), ep.astensor(hi)
    ).numpy()
    assert np.all(ours >= lo - 1e-12) and np.all(ours <= hi + 1e-12)
    np.testing.assert_allclose(ours[0], np.where(w[0] < 0, hi[0], lo[0]), atol=1e-12)
    for i in range(1, n):
        np.testing.assert_allclose(w[i] @ ours[i], c[i], atol=1e-9)
        optimum = _min_l1_on_hyperplane(w[i], c[i], lo[i], hi[i])
        np.testing.assert_allclose(np.abs(ours[i]).sum(), optimum, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("attack_class", [L1FAB], ids=["l1"])
def test_l1_fab_within_ball_and_bounds(attack_class: type[L1FAB], backend: str) -> None:
    model = oracle_model(backend)
    eps = float(np.median(ORACLE.optimal(1.0)))
    attack = attack_class(steps=20, n_target_classes=2, restarts=2, seed=0)
    _, clipped, success = attack(
        model, native(backend, ORACLE.x), native(backend, ORACLE.labels), epsilons=eps
    )
    clipped, success = to_numpy(clipped), to_numpy(success)
    sizes = np.abs(clipped - ORACLE.x).reshape(len(clipped), -1).sum(-1)
    assert sizes.max() <= eps * (1 + 1e-5) and clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_array_equal(success, _logits(clipped).argmax(-1) != ORACLE.labels)
    assert success[ORACLE.optimal(1.0) <= 0.8 * eps].all()


def test_invalid_arguments() -> None:
    for kwargs in ({"steps": 0}, {"alpha_max": 2.0}, {"beta": 0.0}, {"n_target_classes": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            LinfFAB(**kwargs)  # type: ignore[arg-type]
