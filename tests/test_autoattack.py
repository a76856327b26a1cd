"""AutoAttack: the ensemble is at least as strong as each component, agrees with torchattacks'
AutoAttack, caps its target classes, and warns about gradient masking."""

from __future__ import annotations

import functools
import warnings

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, to_numpy

import advlib
import advlib.zoo
from advlib.attacks import ATTACKS
from advlib.attacks._diagnostics import (
    GradientMaskingWarning,
    black_box_check,
    looks_like_probabilities,
)
from advlib.attacks.apgd import LinfAPGD, LinfAPGDT
from advlib.attacks.autoattack import (
    FAST_QUERIES,
    AutoAttack,
    L1AutoAttack,
    L2AutoAttack,
    describe,
    large_eps_stages,
    robust_accuracy_table,
)
from advlib.attacks.fab import LinfFAB
from advlib.attacks.malt import L1MALTAttack, L2MALTAttack, LinfMALTAttack
from advlib.attacks.square import LinfSquareAttack
from advlib.norms import linf

# A reduced budget keeps the suite fast; the full defaults are 100 steps and 5000 queries.
BUDGET = {"steps": 20, "n_queries": 300, "n_target_classes": 3}
EPS = 0.15


@functools.cache
def robust_model(backend: str) -> advlib.Model:
    model: advlib.Model = advlib.zoo.digits_cnn(backend, robust=True)
    return model


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = advlib.zoo.digits("test")
    return x[:n], y[:n]


ORACLE = LinearOracle(n=32, classes=5, seed=7, scale=5.0)


@functools.cache
def oracle_model(backend: str) -> advlib.Model:
    model: advlib.Model = ORACLE.model(backend)
    return model


def _check_not_weaker(model: advlib.Model, x: np.ndarray, y: np.ndarray, eps: float) -> None:
    attack = AutoAttack(eps=eps, seed=0, **BUDGET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        _, clipped, success = attack(model, x, y)  # epsilons default to eps
    clipped, success = to_numpy(clipped), to_numpy(success)
    assert linf(ep.astensor(clipped - x)).numpy().max() <= eps * (1 + 1e-6)
    assert clipped.min() >= 0 and clipped.max() <= 1
    predictions = to_numpy(model(model.to_tensor(clipped, "x", floating=True)[0])).argmax(-1)
    np.testing.assert_array_equal(success, predictions != y)
    components = [
        LinfAPGD(steps=20, seed=0),
        LinfAPGDT(steps=20, n_target_classes=3, seed=0),
        LinfFAB(steps=20, n_target_classes=3, seed=0),
        LinfSquareAttack(n_queries=300, seed=0),
    ]
    robust = 1 - success.mean()
    for component in components:
        single = 1 - to_numpy(component(model, x, y, epsilons=eps).success).mean()
        assert robust <= single, (type(component).__name__, robust, single)


def test_not_weaker_than_any_component_on_the_oracle(backend: str) -> None:
    eps = float(np.median(ORACLE.optimal(np.inf)))
    _check_not_weaker(oracle_model(backend), ORACLE.x, ORACLE.labels, eps)


@pytest.mark.slow
@pytest.mark.torch
def test_not_weaker_than_any_component_on_the_robust_cnn() -> None:
    _check_not_weaker(robust_model("torch"), *_data(48), EPS)


def test_report_and_reproducibility() -> None:
    model = robust_model("torch")
    x, y = _data(32)
    attack = AutoAttack(eps=EPS, seed=0, **BUDGET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        (report,) = attack.evaluate(model, x, y)
        first = attack(model, x, y)
        second = attack(model, x, y)
    np.testing.assert_array_equal(first.clipped, second.clipped)
    accuracies = list(report.robust_accuracy.values())
    assert list(report.robust_accuracy) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert accuracies == sorted(accuracies, reverse=True)
    assert accuracies[-1] == pytest.approx(1 - first.success.mean())
    fooled = sum(report.fooled_by.values())
    assert fooled == round((accuracies[0] - accuracies[-1]) * len(x))
    assert "apgd-ce" in robust_accuracy_table([report])


@pytest.mark.slow
@pytest.mark.torch
def test_agrees_with_torchattacks_autoattack() -> None:
    torch = pytest.importorskip("torch")
    torchattacks = pytest.importorskip("torchattacks")
    model = robust_model("torch")
    x, y = _data(96)
    steps, queries = 20, 500
    ours = AutoAttack(eps=EPS, seed=0, steps=steps, n_queries=queries)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        robust = 1 - ours(model, x, y).success.mean()
    net = advlib.zoo.digits_cnn("torch", robust=True)._model
    theirs = torchattacks.AutoAttack(net, norm="Linf", eps=EPS, n_classes=10, seed=0)
    for component in theirs._autoattack.attacks:  # the same budget for every component
        if hasattr(component, "n_queries"):
            component.n_queries = queries
        else:
            component.steps = steps
    adversarials = theirs(torch.tensor(x), torch.tensor(y))
    reference = (net(adversarials).argmax(-1).numpy() == y).mean()
    assert abs(robust - reference) <= 0.02, (robust, reference)


def test_norm_dispatch_defaults_and_errors() -> None:
    attack = AutoAttack(norm="l2", eps=0.5)
    assert isinstance(attack, L2AutoAttack) and attack.norm.name == "l2"
    assert type(AutoAttack()) is AutoAttack and AutoAttack.norm.name == "linf"
    assert "AutoAttack" in ATTACKS and "L2AutoAttack" in ATTACKS
    assert isinstance(AutoAttack(norm="L1"), L1AutoAttack)
    with pytest.raises(ValueError, match="norm"):
        AutoAttack(norm="l0")
    with pytest.raises(ValueError, match="version"):
        AutoAttack(version="turbo")
    with pytest.raises(ValueError, match="norm"):
        L2AutoAttack(norm="linf")
    with pytest.raises(ValueError, match="epsilons"):
        AutoAttack()(robust_model("torch"), *_data(2))


@pytest.mark.parametrize("classes", [2, 3])
def test_target_classes_capped_by_the_model(classes: int) -> None:
    oracle = LinearOracle(n=16, classes=classes, seed=5, scale=5.0)
    model = oracle.model("torch")
    attack = AutoAttack(eps=0.05, seed=0, steps=5, n_queries=20)
    names = [name for name, _ in attack.attacks(classes)]
    assert ("apgd-t" in names) == (classes >= 3)  # DLR needs 3 classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        (report,) = attack.evaluate(model, oracle.x, oracle.labels)
    assert report.robust_accuracy["square"] <= report.robust_accuracy["clean"]


class _Quantized:
    """Logits of a linear model on inputs rounded to 1/4: gradients are exactly zero."""

    def __init__(self, oracle: LinearOracle) -> None:
        import torch

        self.w = torch.tensor(oracle.weights["fc1.w"])
        self.b = torch.tensor(oracle.weights["fc1.b"])

    def __call__(self, x: object) -> object:
        import torch

        assert isinstance(x, torch.Tensor)
        return torch.round(x.reshape(len(x), -1) * 4) / 4 @ self.w + self.b


@pytest.mark.torch
def test_gradient_masking_warnings() -> None:
    torch = pytest.importorskip("torch")
    oracle = LinearOracle(n=16, classes=5, seed=6, scale=5.0)
    attack = AutoAttack(eps=0.3, seed=0, steps=5, n_queries=200, n_target_classes=2)

    masked = advlib.PyTorchModel(_Quantized(oracle), bounds=(0, 1))
    with pytest.warns(GradientMaskingWarning) as caught:
        attack(masked, oracle.x, oracle.labels)
    messages = " ".join(str(w.message) for w in caught)
    assert "gradient is exactly zero" in messages
    assert "black-box attack fooled" in messages

    net = oracle.model("torch")._model
    softmax = advlib.PyTorchModel(lambda x: torch.softmax(net(x), -1), bounds=(0, 1))
    with pytest.warns(GradientMaskingWarning, match="probabilities"):
        AutoAttack(eps=0.01, steps=2, n_queries=5, n_target_classes=2).evaluate(
            softmax, oracle.x, oracle.labels
        )

    # "fast" runs the full Square where the checks suspect masking
    with pytest.warns(GradientMaskingWarning, match="probabilities"):
        (report,) = AutoAttack(eps=0.01, version="fast", steps=2, n_queries=5).evaluate(
            softmax, oracle.x, oracle.labels
        )
    assert list(report.components) == ["apgd-ce", "malt", "square"]

    noisy = advlib.PyTorchModel(lambda x: net(x) + 0.1 * torch.randn(len(x), 5), bounds=(0, 1))
    with pytest.warns(GradientMaskingWarning, match="randomized"):
        AutoAttack(eps=0.01, steps=2, n_queries=5, n_target_classes=2).evaluate(
            noisy, oracle.x, oracle.labels
        )


def test_diagnostics_helpers() -> None:
    probabilities = np.full((3, 4), 0.25, dtype=np.float32)
    assert looks_like_probabilities(ep.astensor(probabilities))
    assert not looks_like_probabilities(ep.astensor(probabilities * 2))
    white = np.array([True] * 10 + [False] * 990)
    assert black_box_check(white, white.copy()) is None
    black = white.copy()
    black[:3] = False  # 3 of 1000 samples only the black-box attack fooled
    assert black_box_check(white, black) is not None


@pytest.mark.parametrize("version", ["plus", "rand"])
def test_other_versions_and_targeted_criteria(version: str) -> None:
    model = oracle_model("torch")
    eps = float(np.median(ORACLE.optimal(np.inf)))
    attack = AutoAttack(eps=eps, version=version, seed=0, steps=5, n_queries=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        (report,) = attack.evaluate(model, ORACLE.x, ORACLE.labels)
        expected = {
            "plus": ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"],
            "rand": ["apgd-ce", "apgd-dlr"],
        }[version]
        assert list(report.robust_accuracy) == ["clean", *expected]
        targets = (ORACLE.labels + 1) % 5
        criterion = advlib.TargetedMisclassification(targets)
        _, clipped, success = attack(model, ORACLE.x, criterion)
    logits = clipped.reshape(len(clipped), -1) @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
    np.testing.assert_array_equal(success, logits.argmax(-1) == targets)


# Ten classes whose runner-up by logit is often not the nearest boundary, in every norm.
MALT_ORACLE = LinearOracle(n=48, classes=10, seed=4, scale=5.0)


@functools.cache
def malt_model(backend: str) -> advlib.Model:
    model: advlib.Model = MALT_ORACLE.model(backend)
    return model


def _logits(x: np.ndarray) -> np.ndarray:
    flat = np.asarray(x).reshape(len(x), -1)
    logits: np.ndarray = flat @ MALT_ORACLE.weights["fc1.w"] + MALT_ORACLE.weights["fc1.b"]
    return logits


@pytest.mark.parametrize(
    ("attack", "p"),
    [
        (L1AutoAttack(steps=20, n_queries=100, n_target_classes=3), 1.0),
        (LinfMALTAttack(steps=20, n_target_classes=2, seed=0), np.inf),
        (L2MALTAttack(steps=20, n_target_classes=2, seed=0), 2.0),
        (L1MALTAttack(steps=50, n_target_classes=2, seed=0), 1.0),  # L1-APGD converges slower
        (AutoAttack(version="fast", steps=20, n_queries=100), np.inf),
    ],
    ids=["l1-autoattack", "malt-linf", "malt-l2", "malt-l1", "fast"],
)
def test_linear_oracle_success_band(attack: advlib.Attack, p: float, backend: str) -> None:
    model = malt_model(backend)
    optimal = MALT_ORACLE.optimal(p)
    eps = float(np.quantile(optimal, 0.4)) / 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        _, clipped, success = attack(model, MALT_ORACLE.x, MALT_ORACLE.labels, epsilons=eps)
    clipped, success = to_numpy(clipped), to_numpy(success)
    easy, impossible = optimal <= 0.8 * eps, optimal > eps
    assert easy.sum() >= 8 and impossible.sum() >= 8
    assert success[easy].all(), f"missed {(~success[easy]).sum()} of {easy.sum()} easy samples"
    assert not success[impossible].any()
    sizes = advlib.norms.NORMS[attack.norm.name](ep.astensor(clipped - MALT_ORACLE.x)).numpy()
    assert sizes.max() <= eps * (1 + 1e-5) and clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_array_equal(success, _logits(clipped).argmax(-1) != MALT_ORACLE.labels)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_malt_ranks_the_closest_boundary_first(norm: str, backend: str) -> None:
    """On a linear model the linearised distance is exact: MALT's first target is the class
    whose boundary is nearest in the attack's norm, which need not be the second-largest
    logit."""
    model = malt_model(backend)
    attack = LinfMALTAttack(norm=norm, n_target_classes=4)
    x, _ = model.to_tensor(MALT_ORACLE.x, "x", floating=True)
    labels, _ = model.to_tensor(MALT_ORACLE.labels, "y", floating=False)
    ranked = attack._ranked_targets(model, x, model(x), labels, 4)
    first = to_numpy(ranked[0].raw)
    w = MALT_ORACLE.weights["fc1.w"]
    z = _logits(MALT_ORACLE.x)
    dual = {"linf": 1.0, "l2": 2.0, "l1": np.inf}[norm]
    rows = np.arange(len(z))
    normals = w[:, MALT_ORACLE.labels].T[:, None, :] - w.T[None, :, :]  # (N, C, D)
    gaps = z[rows, MALT_ORACLE.labels][:, None] - z
    distance = gaps / np.linalg.norm(normals, ord=dual, axis=-1).clip(1e-12)
    distance[rows, MALT_ORACLE.labels] = np.inf
    np.testing.assert_array_equal(first, distance.argmin(-1))
    by_logit = np.where(np.eye(10, dtype=bool)[MALT_ORACLE.labels], -np.inf, z).argmax(-1)
    assert (first != by_logit).any(), "the oracle should tell the two rankings apart"


def test_versions_components_and_order() -> None:
    names = {
        version: [name for name, _ in AutoAttack(version=version).attacks(10)]
        for version in ("standard", "fast", "strong")
    }
    assert names["standard"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert names["fast"] == ["apgd-ce", "malt", "square-short", "square"]
    assert names["strong"] == ["apgd-ce", "apgd-t", "fab-t", "square", "apgd-pma", "acg", "malt"]
    l1 = dict(L1AutoAttack().attacks(10))
    assert l1["apgd-ce"].restarts == 5 and l1["apgd-t"].n_target_classes == 5  # type: ignore[attr-defined]
    # AutoAttack's L1 APGD runs use_largereps: 3 and 2 epsilon before epsilon
    assert describe(l1["apgd-ce"]) == (
        "L1AutoPGD(steps=100, restarts=5, loss='ce', eps_schedule=(3.0, 2.0, 1.0))"
    )
    assert describe(l1["apgd-t"]).startswith("L1AutoPGDTargeted(steps=100, restarts=1, n_")
    assert "eps_schedule=(3.0, 2.0, 1.0)" in describe(l1["apgd-t"])
    assert "acg" not in dict(L1AutoAttack(version="strong").attacks(10))
    assert "malt" not in dict(AutoAttack(version="fast").attacks(2))


def test_fast_shortens_square_without_masking_and_strong_is_not_weaker() -> None:
    model = robust_model("torch")
    x, y = _data(32)
    budget = dict(steps=10, n_queries=100, n_target_classes=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        (fast,) = AutoAttack(eps=EPS, version="fast", **budget).evaluate(model, x, y)
        (standard,) = AutoAttack(eps=EPS, **budget).evaluate(model, x, y)
        (strong,) = AutoAttack(eps=EPS, version="strong", **budget).evaluate(model, x, y)
    # honest gradients: the short Square only
    assert list(fast.components) == ["apgd-ce", "malt", "square-short"]
    assert fast.components["malt"].startswith("LinfMALTAttack(steps=10")
    assert fast.components["square-short"].startswith("LinfSquareAttack(n_queries=100")
    long = AutoAttack(version="fast", n_queries=5000).attacks(10)
    assert dict(long)["square-short"].n_queries == FAST_QUERIES  # type: ignore[attr-defined]
    standard_robust = list(standard.robust_accuracy.values())[-1]
    assert list(strong.robust_accuracy.values())[-1] <= standard_robust
    table = robust_accuracy_table([strong])
    assert "acg: LinfACGAttack(steps=10" in table and "malt" in table


def test_large_eps_schedule_splits_the_steps_as_autoattack() -> None:
    assert large_eps_stages(100) == [(3.0, 30), (2.0, 30), (1.0, 40)]
    assert large_eps_stages(20) == [(3.0, 6), (2.0, 6), (1.0, 8)]
    assert large_eps_stages(7) == [(3.0, 3), (2.0, 3), (1.0, 1)]
    assert large_eps_stages(1) == [(3.0, 1), (2.0, 1), (1.0, 1)]  # never an empty last stage


class _Recorder:
    """A torch linear model that records the largest L1 distance from ``origin`` of every batch
    it sees (the stages' budgets), for inputs of ``origin``'s batch size."""

    def __init__(self, oracle: LinearOracle) -> None:
        import torch

        self.w = torch.tensor(oracle.weights["fc1.w"])
        self.b = torch.tensor(oracle.weights["fc1.b"])
        self.origin = torch.tensor(oracle.x).reshape(len(oracle.x), -1)
        self.seen: list[float] = []

    def __call__(self, x: object) -> object:
        import torch

        assert isinstance(x, torch.Tensor)
        flat = x.reshape(len(x), -1)
        if len(flat) == len(self.origin):
            self.seen.append(float((flat - self.origin).abs().sum(-1).max().detach()))
        return flat @ self.w + self.b


@pytest.mark.torch
def test_l1_apgd_runs_at_three_then_two_epsilon_then_epsilon() -> None:
    """The L1 APGD components search the 3 and 2 epsilon balls first (use_largereps); their
    result and success are at epsilon, and the attack's own settings are left unchanged."""
    pytest.importorskip("torch")
    oracle = LinearOracle(n=8, classes=5, seed=3, scale=5.0)
    recorder = _Recorder(oracle)
    model = advlib.PyTorchModel(recorder, bounds=(0, 1))
    apgd = dict(L1AutoAttack(steps=10).attacks(5))["apgd-ce"]
    apgd.restarts = 1  # type: ignore[attr-defined]
    eps = 0.3 * float(oracle.optimal(1.0).min())  # no sample is adversarial even at 3 eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        _, clipped, success = apgd(model, oracle.x, oracle.labels, epsilons=eps)
    assert not to_numpy(success).any() and apgd.steps == 10  # type: ignore[attr-defined]
    sizes = np.abs(to_numpy(clipped) - oracle.x).reshape(len(oracle.x), -1).sum(-1)
    assert sizes.max() <= eps * (1 + 1e-5)
    seen = np.array(recorder.seen)
    stages = [(3, 3), (2, 3), (1, 4)]  # large_eps_stages(10), one extra pass per stage start
    assert len(seen) >= sum(steps + 1 for _, steps in stages)
    assert seen.max() > 2 * eps * 1.2 and seen.max() <= 3 * eps * (1 + 1e-5)
    assert seen[-1] <= eps * (1 + 1e-5)
