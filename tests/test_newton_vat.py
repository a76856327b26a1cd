"""NewtonFool and the virtual adversarial attack: their defining properties on linear models,
where the decision boundary is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

import advlib
from advlib import attacks


def _binary() -> LinearOracle:
    """Two classes: the boundary is the hyperplane with normal w_1 - w_0."""
    return LinearOracle(n=16, shape=(20,), classes=2, seed=3)


def _cosines(delta: np.ndarray, normal: np.ndarray) -> np.ndarray:
    flat = delta.reshape(len(delta), -1)
    return flat @ normal / (np.linalg.norm(flat, axis=1) * np.linalg.norm(normal))


def test_newton_fool_reaches_a_linear_boundary_along_its_normal(backend: str) -> None:
    """Each Newton step lowers the label's probability by at most its excess over 1/C, so on
    a binary linear model the attack walks along the boundary's normal and stops on it: the
    minimal L2 perturbation, in closed form."""
    oracle = _binary()
    raw = attacks.NewtonFoolAttack(steps=50, stepsize=0.01).run(
        oracle.model(backend), native(backend, oracle.x), oracle.labels
    )
    delta = to_numpy(raw) - oracle.x
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), oracle.optimal(2), rtol=1e-3)
    w = oracle.weights["fc1.w"]
    # Towards the other class: along +-(w_1 - w_0), whichever lowers the label's logit.
    towards = np.where(oracle.labels == 0, 1.0, -1.0)[:, None] * (w[:, 1] - w[:, 0])
    cosines = (delta * towards).sum(-1) / (
        np.linalg.norm(delta, axis=1) * np.linalg.norm(towards, axis=1)
    )
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


def test_newton_fool_leaves_misclassified_samples(backend: str) -> None:
    oracle = _binary()
    wrong = 1 - oracle.labels  # every sample already "misclassified"
    raw = attacks.NewtonFoolAttack(steps=5).run(
        oracle.model(backend), native(backend, oracle.x), wrong
    )
    np.testing.assert_array_equal(to_numpy(raw), oracle.x)


def test_newton_fool_and_vat_refuse_targeted_criteria_and_bad_arguments(backend: str) -> None:
    oracle = _binary()
    model, x = oracle.model(backend), native(backend, oracle.x)
    targeted = advlib.criteria.TargetedMisclassification(1 - oracle.labels)
    for attack in (attacks.NewtonFoolAttack(steps=1), attacks.VirtualAdversarialAttack(1)):
        with pytest.raises(ValueError, match="targeted"):
            attack(model, x, targeted, epsilons=0.1)
    with pytest.raises(ValueError, match="steps"):
        attacks.NewtonFoolAttack(steps=0)
    with pytest.raises(ValueError, match="xi"):
        attacks.VirtualAdversarialAttack(1, xi=0.0)


def test_vat_moves_exactly_epsilon_along_the_boundary_normal(backend: str) -> None:
    oracle = _binary()
    eps = 0.05  # inputs lie in [0.4, 0.6]: no clipping
    _, clipped, _ = attacks.VirtualAdversarialAttack(1, xi=1e-2, seed=0)(
        oracle.model(backend), native(backend, oracle.x), oracle.labels, epsilons=eps
    )
    delta = to_numpy(clipped) - oracle.x
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), eps, rtol=1e-4)
    # The KL divergence of a binary linear model only changes along w_1 - w_0: one power
    # iteration from any random direction lands on that axis (either sign).
    w = oracle.weights["fc1.w"]
    np.testing.assert_allclose(np.abs(_cosines(delta, w[:, 1] - w[:, 0])), 1.0, atol=1e-3)


def test_vat_draws_per_sample(backend: str) -> None:
    """A sample's random direction depends on the seed and its id, not on its batch."""
    oracle = LinearOracle(n=8, shape=(20,), classes=5, seed=2)
    model, x = oracle.model(backend), native(backend, oracle.x)
    attack = attacks.VirtualAdversarialAttack(1, xi=1e-2, seed=4)
    whole = to_numpy(attack(model, x, oracle.labels, epsilons=0.1).clipped)
    part = to_numpy(
        attack(model, x[3:5], oracle.labels[3:5], epsilons=0.1, indices=np.array([3, 4])).clipped
    )
    np.testing.assert_allclose(part, whole[3:5], atol=1e-4)  # another draw: ~0.1 apart


def test_vat_vanishing_gradient_raises(backend: str) -> None:
    oracle = _binary()
    oracle.weights = {k: np.zeros_like(v) for k, v in oracle.weights.items()}
    model = oracle.model(backend)
    with pytest.raises(RuntimeError, match="vanished"):
        attacks.VirtualAdversarialAttack(1, seed=0)(
            model, native(backend, oracle.x), np.zeros(16, dtype=np.int64), epsilons=0.1
        )


def test_registered() -> None:
    assert advlib.attacks.NewtonFoolAttack.kind == "minimization"
    assert advlib.attacks.VirtualAdversarialAttack.kind == "fixed-epsilon"
