"""HopSkipJump and Boundary: decision-based, batched, on every backend including NumPy.

The binary linear oracle has one decision boundary, so the closed-form distance is the optimum a
decision-based attack can converge to. Budgets: HopSkipJump runs its default 64 steps on NumPy
and PyTorch and 16 steps on TensorFlow and JAX (its eager per-step overhead there is ~10x; at 8
steps it already reaches 1.13x); Boundary runs 2000 of its 25000 default steps.
"""

from __future__ import annotations

import functools

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

import advlib
from advlib.attacks import FGSM
from advlib.attacks.boundary import BoundaryAttack
from advlib.attacks.hop_skip_jump import HopSkipJumpAttack, LinfHopSkipJumpAttack
from advlib.norms import NORMS, l2

BINARY = LinearOracle(n=16, classes=2, seed=1)  # both classes present, one boundary
MULTI = LinearOracle(n=16, classes=5, seed=0)
UNREACHABLE = LinearOracle(n=8, classes=2, seed=0)  # no uniform noise input changes the class

ORACLES = {"binary": BINARY, "multi": MULTI, "unreachable": UNREACHABLE}


@functools.cache
def oracle_model(name: str, backend: str) -> advlib.Model:
    model: advlib.Model = ORACLES[name].model(backend)
    return model


def _predict(oracle: LinearOracle, x: np.ndarray) -> np.ndarray:
    flat = np.asarray(x).reshape(len(x), -1)
    predictions: np.ndarray = (flat @ oracle.weights["fc1.w"] + oracle.weights["fc1.b"]).argmax(-1)
    return predictions


@pytest.mark.parametrize(
    ("attack_class", "p"), [(HopSkipJumpAttack, 2.0), (LinfHopSkipJumpAttack, np.inf)]
)
def test_hop_skip_jump_within_1_5x_of_the_optimum(
    attack_class: type[HopSkipJumpAttack], p: float, any_backend: str
) -> None:
    model = oracle_model("binary", any_backend)
    steps = 64 if any_backend in ("numpy", "torch") else 16
    x = BINARY.x.copy()
    raw, _, success = attack_class(steps=steps, seed=0)(
        model, native(any_backend, x), native(any_backend, BINARY.labels), epsilons=None
    )
    np.testing.assert_array_equal(x, BINARY.x)
    raw, success = to_numpy(raw), to_numpy(success)
    assert success.all()
    np.testing.assert_array_equal(_predict(BINARY, raw) != BINARY.labels, success)
    ratio = NORMS[attack_class.norm.name](ep.astensor(raw - BINARY.x)).numpy() / BINARY.optimal(p)
    assert ratio.max() <= 1.5, ratio
    assert ratio.min() >= 1 - 1e-4


def test_hop_skip_jump_reaches_a_local_optimum_with_many_classes() -> None:
    raw, _, success = HopSkipJumpAttack(seed=0)(
        oracle_model("multi", "numpy"), MULTI.x, MULTI.labels, epsilons=None
    )
    assert success.all()
    reached = _predict(MULTI, raw)
    w = MULTI.weights["fc1.w"]
    rows = np.arange(len(raw))
    # distance to the plane between the label and the class reached: a lower bound for that
    # class, attained on its boundary
    gap = MULTI.logits[rows, MULTI.labels] - MULTI.logits[rows, reached]
    plane = gap / np.linalg.norm(w[:, MULTI.labels] - w[:, reached], axis=0)
    sizes = l2(ep.astensor(raw - MULTI.x)).numpy()
    assert np.all(sizes <= 1.5 * plane) and np.all(sizes >= plane * (1 - 1e-4))
    assert np.median(sizes / MULTI.optimal(2.0)) <= 1.1


@pytest.mark.parametrize(
    "attack",
    [HopSkipJumpAttack(steps=3, seed=0), BoundaryAttack(steps=50, seed=0)],
    ids=["hsja", "boundary"],
)
def test_adversarial_inputs_return_at_once_and_missing_starts_fail_cleanly(
    attack: advlib.Attack, any_backend: str
) -> None:
    labels = MULTI.labels.copy()
    labels[:5] = (labels[:5] + 1) % 5  # wrong labels: adversarial as given
    raw, _, success = attack(oracle_model("multi", any_backend), MULTI.x, labels, epsilons=None)
    raw, success = to_numpy(raw), to_numpy(success)
    np.testing.assert_array_equal(raw[:5], MULTI.x[:5])
    assert success.all() and np.isfinite(raw).all()

    model = oracle_model("unreachable", any_backend)
    raw, _, success = attack(model, UNREACHABLE.x, UNREACHABLE.labels, epsilons=None)
    np.testing.assert_array_equal(to_numpy(raw), UNREACHABLE.x)
    assert not to_numpy(success).any()


@pytest.mark.parametrize("backend_name", ["numpy", pytest.param("torch", marks=pytest.mark.torch)])
def test_boundary_attack_within_1_5x_of_the_optimum(backend_name: str) -> None:
    raw, _, success = BoundaryAttack(steps=2000, seed=0)(
        oracle_model("binary", backend_name), BINARY.x, BINARY.labels, epsilons=None
    )
    raw, success = to_numpy(raw), to_numpy(success)
    assert success.all()
    # The float32 model and the float64 oracle may disagree within float32 rounding of the
    # boundary, where the attack ends: compare where the oracle's margin is clear.
    logits = raw.reshape(len(raw), -1) @ BINARY.weights["fc1.w"] + BINARY.weights["fc1.b"]
    clear = np.abs(logits[:, 1] - logits[:, 0]) > 1e-5 * np.abs(logits).max()
    agree = (_predict(BINARY, raw) != BINARY.labels) == success
    assert agree[clear].all() and clear.sum() >= len(raw) // 2
    ratio = l2(ep.astensor(raw - BINARY.x)).numpy() / BINARY.optimal(2.0)
    assert ratio.max() <= 1.5 and ratio.min() >= 1 - 1e-4, ratio


def test_boundary_attack_makes_progress(backend: str) -> None:
    model = oracle_model("binary", backend)
    start = BoundaryAttack(steps=1, seed=2)(model, BINARY.x, BINARY.labels, epsilons=None)
    later = BoundaryAttack(steps=300, seed=2)(model, BINARY.x, BINARY.labels, epsilons=None)
    assert to_numpy(later.success).all()
    before = l2(ep.astensor(to_numpy(start.raw) - BINARY.x)).numpy()
    after = l2(ep.astensor(to_numpy(later.raw) - BINARY.x)).numpy()
    assert np.all(after <= before * (1 + 1e-6)) and np.median(after / before) < 0.9


@pytest.mark.parametrize("attack_class", [HopSkipJumpAttack, LinfHopSkipJumpAttack, BoundaryAttack])
def test_seeds_batches_and_init_attack(attack_class: type[advlib.Attack]) -> None:
    sizes_seen: list[int] = []
    reference = oracle_model("binary", "numpy")

    def forward(x: np.ndarray) -> np.ndarray:
        sizes_seen.append(len(x))
        return np.asarray(reference(ep.astensor(x)).raw)

    model = advlib.NumPyModel(forward, bounds=(0, 1))
    kwargs = {"steps": 20} if attack_class is BoundaryAttack else {"steps": 4}
    a = attack_class(seed=1, **kwargs)(model, BINARY.x, BINARY.labels, epsilons=None)
    b = attack_class(seed=1, **kwargs)(model, BINARY.x, BINARY.labels, epsilons=None)
    c = attack_class(seed=2, **kwargs)(model, BINARY.x, BINARY.labels, epsilons=None)
    np.testing.assert_array_equal(a.raw, b.raw)
    assert not np.array_equal(a.raw, c.raw)
    assert min(sizes_seen) == len(BINARY.x), "every model call takes the whole batch"

    init = HopSkipJumpAttack(steps=3, seed=0)
    start = init(model, BINARY.x, BINARY.labels, epsilons=None)
    refined = attack_class(seed=1, init_attack=init, **kwargs)(
        model, BINARY.x, BINARY.labels, epsilons=None
    )
    norm = attack_class.norm
    assert refined.success.all()
    # the init attack's result is the starting point: Boundary only accepts closer points,
    # HopSkipJump may overshoot a little in one step but not drift away
    slack = 1e-3 if attack_class is BoundaryAttack else 0.1
    before = norm(ep.astensor(start.raw - BINARY.x)).numpy()
    after = norm(ep.astensor(refined.raw - BINARY.x)).numpy()
    assert np.all(after <= before * (1 + slack))


def test_invalid_arguments() -> None:
    with pytest.raises(TypeError, match="init_attack"):
        HopSkipJumpAttack(init_attack=FGSM())
    with pytest.raises(ValueError, match="steps"):
        BoundaryAttack(steps=0)
    with pytest.raises(ValueError, match="step_adaptation"):
        BoundaryAttack(step_adaptation=1.0)
    with pytest.raises(ValueError, match="gamma"):
        HopSkipJumpAttack(gamma=0)
    assert not HopSkipJumpAttack.requires_grad and not BoundaryAttack.requires_grad


def test_starting_points_take_precedence() -> None:
    model = oracle_model("binary", "numpy")
    x = ep.astensor(BINARY.x)
    criterion = advlib.Misclassification(BINARY.labels).bind(model, model(x))
    starts = HopSkipJumpAttack(steps=2, seed=0).perturb(model, x, criterion)
    refined = BoundaryAttack(steps=50, seed=0).perturb(model, x, criterion, starting_points=starts)
    before, after = l2(starts - x).numpy(), l2(refined - x).numpy()
    assert criterion(refined, model(refined)).numpy().all()
    assert np.all(after <= before * (1 + 1e-6))
    with pytest.raises(ValueError, match="starting_points"):
        BoundaryAttack(steps=1).perturb(model, x, criterion, starting_points=starts[:3])
