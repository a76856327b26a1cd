"""The shared drivers of the minimization attacks and the norm methods they use: compiled
steps take a small named state (at most six positional arguments), the constant search of
C&W/EAD, keeping the best adversarial, the bisection path of the decision-based attacks, dual
norms and the region projection."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import cnn_model, native

import advlib
from advlib import attacks
from advlib.attacks._constant_search import Bracket, bisect
from advlib.attacks._minimization import Best, keep_best
from advlib.criteria import TargetedMisclassification
from advlib.models.base import StepFn
from advlib.norms import NORMS, l1, l2, linf

_MAX_POSITIONAL = 6
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# Every attack built on the drivers, with few steps; the decision-based ones start from DeepFool
# so that their own steps run on the random CNN.
DRIVEN: dict[str, Callable[[], advlib.Attack]] = {
    "CW": lambda: attacks.L2CarliniWagnerAttack(steps=3, binary_search_steps=2),
    "EAD": lambda: attacks.EADAttack(steps=3, binary_search_steps=2),
    "DDN": lambda: attacks.DDNAttack(steps=3, seed=0),
    "L1FMN": lambda: attacks.L1FMNAttack(steps=3),
    "L2FMN": lambda: attacks.L2FMNAttack(steps=3),
    "LinfFMN": lambda: attacks.LinfFMNAttack(steps=3),
    "L2DeepFool": lambda: attacks.L2DeepFoolAttack(steps=3),
    "LinfDeepFool": lambda: attacks.LinfDeepFoolAttack(steps=3),
    "Boundary": lambda: attacks.BoundaryAttack(
        steps=20, update_stats_every_k=2, seed=0, init_attack=attacks.L2DeepFoolAttack()
    ),
}


def _inputs(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


def _positional(step: StepFn) -> list[str]:
    parameters = inspect.signature(step).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return ["*args"] * (_MAX_POSITIONAL + 1)
    return [p.name for p in parameters if p.kind in _POSITIONAL]


@pytest.mark.parametrize("name", list(DRIVEN))
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_compiled_steps_take_at_most_six_positional_arguments(
    backend: str, name: str, targeted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step an attack hands to ``model.compiled`` takes named states, not long
    argument lists (DDN's update took 14 tensors, FMN's 15)."""
    model = cnn_model(backend, compile=False)
    steps: dict[Hashable, list[str]] = {}
    compiled = model.compiled

    def recording(key: Hashable, factory: Callable[[], StepFn]) -> StepFn:
        def build() -> StepFn:
            step = factory()
            steps[key] = _positional(step)
            return step

        return compiled(key, build)

    monkeypatch.setattr(model, "compiled", recording)
    x = _inputs()
    labels = np.arange(len(x)) % 10
    criterion: Any = native(backend, labels)
    if targeted:
        criterion = TargetedMisclassification(native(backend, (labels + 1) % 10))
    DRIVEN[name]()(model, native(backend, x), criterion, epsilons=None)
    assert steps, f"{name} compiled no step: the check would see nothing"
    too_long = {str(key): args for key, args in steps.items() if len(args) > _MAX_POSITIONAL}
    assert not too_long, f"{name}: compiled steps with more than 6 positional arguments"


# ----------------------------------------------------------------------------- drivers
def _t(values: list[float] | list[bool]) -> ep.Tensor:
    return ep.astensor(np.asarray(values))


def test_the_constant_search_bisects_or_grows_tenfold() -> None:
    inf = np.inf
    bracket = Bracket(_t([1.0, 1.0, 4.0, 4.0]), _t([0.0, 0.0, 2.0, 2.0]), _t([inf, inf, 8.0, 8.0]))
    found = _t([True, False, True, False])
    consts, lower, upper = (t.numpy() for t in bisect(bracket, found))
    # success: the constant becomes the upper bound, the next is the midpoint with the lower;
    # failure: it becomes the lower bound, and without an upper bound the next is ten times it
    np.testing.assert_array_equal(upper, [1.0, np.inf, 4.0, 8.0])
    np.testing.assert_array_equal(lower, [0.0, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(consts, [0.5, 10.0, 3.0, 6.0])


def test_keep_best_takes_only_smaller_adversarials_of_running_samples() -> None:
    best = Best(_t([[1.0], [2.0], [3.0], [4.0]]), _t([1.0, 1.0, 1.0, np.inf]), _t([False] * 4))
    candidate = _t([[10.0], [20.0], [30.0], [40.0]])
    size = _t([0.5, 0.5, 2.0, 5.0])
    is_adv = _t([True, True, True, False])
    active = _t([True, False, True, True])
    x, kept, found = (t.numpy() for t in keep_best(best, candidate, size, is_adv, active))
    # smaller, stopped, larger, not adversarial
    np.testing.assert_array_equal(x[:, 0], [10.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(kept, [0.5, 1.0, 1.0, np.inf])
    np.testing.assert_array_equal(found, [True, False, True, False])


@pytest.mark.parametrize("make", [attacks.L2CarliniWagnerAttack, attacks.EADAttack])
def test_constant_search_attributes_follow_the_signature(make: type[advlib.Attack]) -> None:
    """The repr (shown in reports) lists the arguments in the order of the signature."""
    names = [p for p in inspect.signature(make.__init__).parameters if p != "self"]
    assert list(vars(make())) == names


# ----------------------------------------------------------------------------- norms
@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_dual_norm_gives_the_distance_to_a_hyperplane(name: str) -> None:
    """The closest point to 0 on ``w . x + b = 0`` has norm ``|b| / dual(w)`` (Hölder gives
    the lower bound; the constructed point reaches it)."""
    norm = NORMS[name]
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 12)), rng.normal(size=5)
    if name == "l2":
        x = -b[:, None] * w / (w**2).sum(axis=1, keepdims=True)
    elif name == "linf":
        x = -b[:, None] * np.sign(w) / np.abs(w).sum(axis=1, keepdims=True)
    else:  # all on the largest weight
        k = np.abs(w).argmax(axis=1)
        x = np.zeros_like(w)
        x[np.arange(5), k] = -b / w[np.arange(5), k]
    np.testing.assert_allclose((w * x).sum(axis=1), -b, rtol=1e-12)
    distance = np.abs(b) / norm.dual(ep.astensor(w)).numpy()
    np.testing.assert_allclose(norm(ep.astensor(x)).numpy(), distance, rtol=1e-12)
    duals = {n: NORMS[n].dual.name for n in ("l1", "l2", "linf")}
    assert duals == {"l1": "linf", "l2": "l2", "linf": "l1"}


@pytest.mark.parametrize("norm", [l2, linf], ids=["l2", "linf"])
def test_the_bisection_path_runs_from_the_origin_to_the_point(norm: Any) -> None:
    """Dyadic values: every operation below is exact."""
    rng = np.random.default_rng(1)
    origin = ep.astensor(rng.integers(0, 8, (4, 6)) / 8)
    x = ep.astensor(rng.integers(0, 8, (4, 6)) / 8)
    end = norm.path_length(origin, x)
    np.testing.assert_array_equal(norm.path_point(origin, x, end).numpy(), x.numpy())
    np.testing.assert_array_equal(
        norm.path_point(origin, x, ep.zeros_like(end)).numpy(), origin.numpy()
    )
    half = norm.path_point(origin, x, end / 2)
    if norm is l2:  # the midpoint of the segment
        np.testing.assert_array_equal(half.numpy(), (origin.numpy() + x.numpy()) / 2)
    else:  # x clipped into the Linf ball of half the distance
        radius = (end / 2).numpy()[:, None]
        expected = np.clip(x.numpy(), origin.numpy() - radius, origin.numpy() + radius)
        np.testing.assert_array_equal(half.numpy(), expected)


@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_project_region_with_and_without_region_constants(name: str) -> None:
    """With the constants of :meth:`region` or none (Linf used to fail without them), the
    result is the projection onto the ball, then onto the bounds."""
    norm = NORMS[name]
    rng = np.random.default_rng(2)
    origin = ep.astensor(rng.integers(0, 8, (3, 5)) / 8)
    x = ep.astensor(rng.integers(-8, 16, (3, 5)) / 8)
    eps, bounds = 0.25, (0.0, 1.0)
    expected = norm.project(x, origin, eps).clip(*bounds).numpy()
    for region in (norm.region(origin, eps, bounds), ()):
        found = norm.project_region(x, origin, eps, region, bounds).numpy()
        np.testing.assert_array_equal(found, expected)


def test_l1_and_l2_share_the_rescaling_step() -> None:
    """``ascend`` is ``x + stepsize * normalize(direction)`` with a per-sample step size."""
    rng = np.random.default_rng(3)
    x, direction = ep.astensor(rng.normal(size=(3, 4))), ep.astensor(rng.normal(size=(3, 4)))
    stepsize = ep.astensor(np.asarray([0.5, 1.0, 2.0]))
    for norm in (l1, l2, linf):
        moved = norm.ascend(x, direction, stepsize).numpy()
        expected = x.numpy() + stepsize.numpy()[:, None] * norm.normalize(direction).numpy()
        np.testing.assert_allclose(moved, expected, rtol=1e-12)
        np.testing.assert_allclose(norm(norm.normalize(direction)).numpy(), 1.0, rtol=1e-9)


def test_a_subclass_with_its_own_signature_keeps_every_setting() -> None:
    class Tuned(attacks.L2CarliniWagnerAttack):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{"steps": 5, **kwargs})

    tuned = Tuned(stepsize=0.5)
    assert (tuned.steps, tuned.stepsize, tuned.binary_search_steps) == (5, 0.5, 9)
