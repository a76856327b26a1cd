"""Minimization attacks (C&W, DeepFool, DDN, EAD, FMN) against closed-form optima.

A multiclass linear model has a known minimal adversarial perturbation in every Lp norm
(``helpers.LinearOracle``); ``box_optimal`` below also accounts for the [0, 1] box, which only
matters for L1 on these inputs. Every attack runs on torch, TensorFlow and JAX.
"""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, rival_classes, to_numpy, wrap_model

import advlib
from advlib.attacks.base import MinimizationAttack
from advlib.attacks.carlini_wagner import L2CarliniWagnerAttack
from advlib.attacks.ddn import DDNAttack
from advlib.attacks.deepfool import L2DeepFoolAttack, LinfDeepFoolAttack
from advlib.attacks.ead import EADAttack
from advlib.attacks.fmn import L1FMNAttack, L2FMNAttack, LinfFMNAttack
from advlib.norms import NORMS
from advlib.zoo.architectures import build

SHAPES = {"flat": (20,), "image": (1, 8, 8)}
CLASSES = 5

# (attack, largest median ratio found / optimal, largest single ratio) with modest step counts.
ORACLE_CASES: dict[str, tuple[MinimizationAttack, float, float]] = {
    "CW": (L2CarliniWagnerAttack(binary_search_steps=4, steps=100, initial_const=0.1), 1.05, 1.25),
    "DDN": (DDNAttack(steps=100, init_epsilon=0.3, seed=0), 1.05, 1.25),
    "L2FMN": (L2FMNAttack(steps=50), 1.05, 1.25),
    "L2DeepFool": (L2DeepFoolAttack(), 1.05, 1.25),
    "LinfDeepFool": (LinfDeepFoolAttack(), 1.10, 1.25),
    "LinfFMN": (LinfFMNAttack(steps=50), 1.10, 1.25),
    "L1FMN": (L1FMNAttack(steps=50), 1.10, 1.25),
    "EAD": (
        EADAttack(binary_search_steps=5, steps=200, initial_const=0.1, decision_rule="L1"),
        1.25,
        1.25,
    ),
}


# ---------------------------------------------------------------------- oracle helpers
def box_optimal(
    oracle: LinearOracle, p: float, targets: np.ndarray | None = None
) -> np.ndarray:
    """The minimal Lp perturbation that makes class j overtake the label inside [0, 1]^d,
    minimised over j (or for j = the target). With targets this is a lower bound: other
    classes may still lead at that point.

    For one class pair the problem is: minimise ||d||_p subject to a.d >= m and the box.
    L1 spends the budget on the coordinates with the largest |a_i| first (a fractional
    knapsack); L2 and Linf saturate coordinates at the box and are solved by bisection on the
    Lagrange multiplier (L2) or the common coordinate size (Linf).
    """
    w = oracle.weights["fc1.w"].astype(np.float64)
    x = oracle.x.reshape(len(oracle.x), -1).astype(np.float64)
    logits = oracle.logits.astype(np.float64)
    best = np.full(len(x), np.inf)
    for i, gain, room, need in rival_classes(w, x, logits, oracle.labels, targets):
        if (gain * room).sum() >= need:
            best[i] = min(best[i], _pair_optimal(gain, room, need, p))
    return best


def _pair_optimal(gain: np.ndarray, room: np.ndarray, need: float, p: float) -> float:
    if p == 1:
        size, total = 0.0, 0.0
        for k in np.argsort(-gain):
            if total + gain[k] * room[k] >= need:
                return size + (need - total) / gain[k]
            total += gain[k] * room[k]
            size += room[k]
        return np.inf

    def step(t: float) -> np.ndarray:
        return np.minimum(t * gain, room) if p == 2 else np.minimum(t, room)

    low, high = 0.0, 1e6
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if (gain * step(middle)).sum() < need else (low, middle)
    return float(np.linalg.norm(step(high), ord=p))


def sizes(p: float, adversarials: Any, x: np.ndarray) -> np.ndarray:
    delta = (to_numpy(adversarials) - x).reshape(len(x), -1).astype(np.float64)
    return np.linalg.norm(delta, ord=p, axis=1)


def predictions(model: advlib.Model, x: Any) -> np.ndarray:
    return to_numpy(model(model.to_tensor(to_numpy(x), "x", floating=True)[0])).argmax(-1)


@pytest.fixture(scope="module")
def oracles() -> dict[str, LinearOracle]:
    return {
        name: LinearOracle(n=64, shape=shape, classes=CLASSES) for name, shape in SHAPES.items()
    }


@pytest.fixture(scope="module")
def optima(oracles: dict[str, LinearOracle]) -> dict[tuple[str, float], np.ndarray]:
    return {(name, p): box_optimal(o, p) for name, o in oracles.items() for p in (1, 2, np.inf)}


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], advlib.Model]:
    """One wrapped model per (backend, shape), so compiled steps are reused across tests."""
    return {}


def oracle_model(
    models: dict[tuple[str, str], advlib.Model], oracles: dict[str, LinearOracle],
    backend: str, shape: str,
) -> advlib.Model:
    if (backend, shape) not in models:
        models[backend, shape] = oracles[shape].model(backend)
    return models[backend, shape]


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ORACLE_CASES)
def test_minimal_adversarials_match_closed_form_optimum(
    name: str, shape: str, backend: str, oracles: dict[str, LinearOracle],
    optima: dict[tuple[str, float], np.ndarray], models: dict[tuple[str, str], advlib.Model],
) -> None:
    attack, median_bound, max_bound = ORACLE_CASES[name]
    oracle, model = oracles[shape], oracle_model(models, oracles, backend, shape)
    inputs, labels = native(backend, oracle.x), native(backend, oracle.labels)
    x_copy = oracle.x.copy()

    raw, clipped, success = attack(model, inputs, labels, epsilons=None)

    np.testing.assert_array_equal(to_numpy(inputs), x_copy)
    assert type(raw) is type(inputs) and type(success) is type(inputs)
    np.testing.assert_array_equal(to_numpy(raw), to_numpy(clipped))
    assert to_numpy(success).all(), f"{(~to_numpy(success)).sum()} samples not adversarial"
    assert to_numpy(raw).min() >= 0 and to_numpy(raw).max() <= 1
    np.testing.assert_array_equal(predictions(model, raw) != oracle.labels, True)
    p = attack.norm.p
    ratios = sizes(p, raw, oracle.x) / optima[shape, p]
    assert ratios.min() >= 0.999, f"below the optimum: {ratios.min()}"
    assert np.median(ratios) <= median_bound, f"median ratio {np.median(ratios):.4f}"
    assert ratios.max() <= max_bound, f"max ratio {ratios.max():.4f}"


@pytest.mark.parametrize("name", ORACLE_CASES)
def test_targeted_attacks_reach_the_requested_class(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    models: dict[tuple[str, str], advlib.Model],
) -> None:
    attack = ORACLE_CASES[name][0]
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    rng = np.random.default_rng(0)
    targets = (oracle.labels + rng.integers(1, CLASSES, len(oracle.labels))) % CLASSES
    criterion = advlib.TargetedMisclassification(native(backend, targets))

    raw, _, success = attack(model, native(backend, oracle.x), criterion, epsilons=None)

    assert to_numpy(success).all()
    np.testing.assert_array_equal(predictions(model, raw), targets)
    p = attack.norm.p
    lower_bound = box_optimal(oracle, p, targets)  # the target must at least beat the label
    assert np.all(sizes(p, raw, oracle.x) >= 0.999 * lower_bound)


@pytest.mark.parametrize("name", ORACLE_CASES)
def test_epsilon_list_clips_the_minimal_adversarial(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    optima: dict[tuple[str, float], np.ndarray], models: dict[tuple[str, str], advlib.Model],
) -> None:
    attack = ORACLE_CASES[name][0]
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    p = attack.norm.p
    optimal = optima["flat", p]
    # No adversarial exists below the optimum; every one found is below 1.25x of it.
    epsilons = [0.9 * optimal.min(), float(np.median(optimal)), 1.3 * optimal.max()]

    raw, clipped, success = attack(
        model, native(backend, oracle.x), native(backend, oracle.labels), epsilons=epsilons
    )

    success = to_numpy(success)
    assert success.shape == (3, len(oracle.x))
    for eps, adv, raw_eps, succ in zip(epsilons, clipped, raw, success):
        np.testing.assert_array_equal(to_numpy(raw_eps), to_numpy(raw[0]))
        assert np.all(sizes(p, adv, oracle.x) <= eps + 1e-5)
        assert to_numpy(adv).min() >= 0 and to_numpy(adv).max() <= 1
        np.testing.assert_array_equal(succ, predictions(model, adv) != oracle.labels)
    assert not success[0].any(), "an adversarial below the optimum is impossible"
    assert success[2].all()
    assert not success[1][optimal > epsilons[1]].any()


@pytest.mark.parametrize("name", ORACLE_CASES)
def test_compiled_steps_keep_no_data_from_earlier_calls(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    models: dict[tuple[str, str], advlib.Model],
) -> None:
    # The second call reuses the compiled steps of the first (same shapes, same settings);
    # a step that had captured the first call's inputs or labels would give other results.
    attack = ORACLE_CASES[name][0]
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    order = np.random.default_rng(1).permutation(len(oracle.x))

    first, _, _ = attack(
        model, native(backend, oracle.x), native(backend, oracle.labels), epsilons=None
    )
    second, _, _ = attack(
        model, native(backend, oracle.x[order]), native(backend, oracle.labels[order]),
        epsilons=None,
    )

    p = attack.norm.p
    np.testing.assert_allclose(
        sizes(p, second, oracle.x[order]), sizes(p, first, oracle.x)[order], rtol=1e-3
    )


@pytest.mark.parametrize("cls", [L1FMNAttack, L2FMNAttack, LinfFMNAttack])
def test_fmn_starts_at_the_boundary_towards_init_attack(
    cls: type[MinimizationAttack], backend: str, oracles: dict[str, LinearOracle],
    optima: dict[tuple[str, float], np.ndarray], models: dict[tuple[str, str], advlib.Model],
) -> None:
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    inputs, labels = native(backend, oracle.x), native(backend, oracle.labels)
    p = cls.norm.p
    # One step evaluates only the start: from the input it finds nothing, from the bisected
    # DeepFool adversarials it is already adversarial and close to the optimum.
    _, _, alone = cls(steps=1)(model, inputs, labels, epsilons=None)  # type: ignore[call-arg]
    raw, _, success = cls(  # type: ignore[call-arg]
        steps=1, init_attack=L2DeepFoolAttack(), binary_search_steps=12
    )(model, inputs, labels, epsilons=None)

    assert not to_numpy(alone).any()
    assert to_numpy(success).all()
    ratios = sizes(p, raw, oracle.x) / optima["flat", p]
    assert ratios.min() >= 0.999
    assert np.median(ratios) <= (1.01 if p == 2 else 2.0)


@pytest.mark.parametrize("cls", [L1FMNAttack, L2FMNAttack])
def test_fmn_improves_on_the_start_of_init_attack(
    cls: type[MinimizationAttack], backend: str, oracles: dict[str, LinearOracle],
    models: dict[tuple[str, str], advlib.Model],
) -> None:
    """Regression: from init_attack's start the radius began at 0, so every later step was
    projected onto the input and FMN returned the bisected start whatever its steps."""
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    inputs, labels = native(backend, oracle.x), native(backend, oracle.labels)
    start, steps = (
        cls(steps=n, init_attack=L2DeepFoolAttack(), binary_search_steps=3)(  # type: ignore[call-arg]
            model, inputs, labels, epsilons=None
        )[0]
        for n in (1, 50)
    )
    p = cls.norm.p
    before, after = sizes(p, start, oracle.x), sizes(p, steps, oracle.x)
    assert (after <= before * (1 + 1e-6)).all()
    assert np.median(after / before) <= 0.99  # 1.0 before the fix


@pytest.mark.parametrize("name", ["CW", "DDN", "L2FMN", "EAD"])
def test_early_stop_keeps_adversarials_within_epsilon(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    optima: dict[tuple[str, float], np.ndarray], models: dict[tuple[str, str], advlib.Model],
) -> None:
    attack = ORACLE_CASES[name][0]
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    p = attack.norm.p
    eps = 1.5 * float(optima["flat", p].max())
    x = model.to_tensor(oracle.x, "x", floating=True)[0]
    criterion = advlib.Misclassification(oracle.labels).bind(model, model(x))

    raw = attack.perturb(model, x, criterion, early_stop=eps)

    assert to_numpy(criterion(raw, model(raw))).all()
    assert np.all(sizes(p, raw, oracle.x) <= eps + 1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["CW", "DDN", "L2FMN", "EAD"])
def test_early_stop_saves_model_calls(
    name: str, oracles: dict[str, LinearOracle], optima: dict[tuple[str, float], np.ndarray]
) -> None:
    import torch

    oracle = oracles["flat"]
    net = build("torch", oracle.layers, oracle.weights, oracle.shape)
    calls = [0]
    net.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    model = advlib.PyTorchModel(net, bounds=(0, 1))
    attack = ORACLE_CASES[name][0]
    eps = 1.5 * float(optima["flat", attack.norm.p].max())
    x, labels = torch.as_tensor(oracle.x), torch.as_tensor(oracle.labels)

    attack(model, x, labels, epsilons=None)
    unbounded, calls[0] = calls[0], 0
    _, _, success = attack(model, x, labels, epsilons=eps)

    assert success.all()
    assert calls[0] < unbounded / 2, (calls[0], unbounded)


@pytest.mark.parametrize("name", ORACLE_CASES)
def test_samples_not_fooled_come_back_unchanged(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    models: dict[tuple[str, str], advlib.Model],
) -> None:
    oracle, model = oracles["flat"], oracle_model(models, oracles, backend, "flat")
    weak = _weakened(ORACLE_CASES[name][0])
    # Half the targets are the predicted class: those samples are adversarial from the start.
    targets = (oracle.labels + 1 + np.arange(len(oracle.labels)) % (CLASSES - 1)) % CLASSES
    targets[::2] = oracle.labels[::2]
    criterion = advlib.TargetedMisclassification(native(backend, targets))

    raw, _, success = weak(model, native(backend, oracle.x), criterion, epsilons=None)

    raw, success = to_numpy(raw), to_numpy(success)
    np.testing.assert_array_equal(raw[~success], oracle.x[~success])
    assert success[::2].all()
    assert np.all(sizes(2, raw[::2], oracle.x[::2]) <= 1e-5), "already adversarial: no change"
    assert not success[1::2].all(), "the weakened attack should fail on some samples"


def _weakened(attack: MinimizationAttack) -> MinimizationAttack:
    """The same attack with too little budget to fool every sample."""
    settings = {
        L2CarliniWagnerAttack: dict(binary_search_steps=1, steps=5, initial_const=1e-4),
        EADAttack: dict(binary_search_steps=1, steps=5, initial_const=1e-4),
        DDNAttack: dict(steps=3, init_epsilon=0.01, seed=0),
        L2DeepFoolAttack: dict(steps=1),
        LinfDeepFoolAttack: dict(steps=1),
    }.get(type(attack), dict(steps=3, max_stepsize=0.01))
    return type(attack)(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["CW", "L2FMN", "EAD", "L2DeepFool"])
def test_negative_logits_do_not_hide_the_best_other_class(
    name: str, backend: str, oracles: dict[str, LinearOracle],
    optima: dict[tuple[str, float], np.ndarray],
) -> None:
    # Shifting every logit by -100 changes no decision; a margin computed as
    # max((1 - onehot) * logits) would see 0 as the best other logit and never succeed.
    oracle = oracles["flat"]
    weights = dict(oracle.weights, **{"fc1.b": oracle.weights["fc1.b"] - 100.0})
    model = wrap_model(backend, build(backend, oracle.layers, weights, oracle.shape))
    attack, median_bound, _ = ORACLE_CASES[name]

    raw, _, success = attack(
        model, native(backend, oracle.x), native(backend, oracle.labels), epsilons=None
    )

    assert to_numpy(success).all()
    ratios = sizes(attack.norm.p, raw, oracle.x) / optima["flat", attack.norm.p]
    assert np.median(ratios) <= median_bound


def test_margin_masks_the_true_class_with_negative_logits() -> None:
    from advlib.attacks._losses import margin

    logits = ep.astensor(np.array([[-5.0, -1.0, -3.0], [-2.0, -4.0, -9.0]], dtype=np.float32))
    classes = ep.astensor(np.array([1, 0]))
    np.testing.assert_allclose(margin(logits, classes, False).numpy(), [2.0, 2.0])
    np.testing.assert_allclose(margin(logits, classes, True).numpy(), [-2.0, -2.0])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (L2CarliniWagnerAttack, dict(steps=0), "steps"),
        (L2CarliniWagnerAttack, dict(stepsize=-1.0), "stepsize"),
        (L2CarliniWagnerAttack, dict(abort_early="yes"), "abort_early"),
        (DDNAttack, dict(gamma=1.5), "gamma"),
        (L2DeepFoolAttack, dict(loss="mse"), "loss"),
        (L2DeepFoolAttack, dict(candidates=1), "candidates"),
        (EADAttack, dict(decision_rule="L2"), "decision_rule"),
        (L2FMNAttack, dict(init_attack="ddn"), "init_attack"),
        (DDNAttack, dict(seed=1.5), "seed"),
    ],
)
def test_bad_arguments_are_named(cls: type, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        cls(**kwargs)


def test_norms_registered() -> None:
    from advlib.attacks.base import ATTACKS

    expected = {
        "L2CarliniWagnerAttack": "l2", "L2DeepFoolAttack": "l2", "LinfDeepFoolAttack": "linf",
        "DDNAttack": "l2", "EADAttack": "l1", "L1FMNAttack": "l1", "L2FMNAttack": "l2",
        "LinfFMNAttack": "linf", "L0FMNAttack": "l0", "SigmaZeroAttack": "l0",
    }
    for name, norm in expected.items():
        assert ATTACKS[name].norm is NORMS[norm]
        assert ATTACKS[name].kind == "minimization"
