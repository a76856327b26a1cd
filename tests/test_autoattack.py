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
from advlib.attacks.autoattack import AutoAttack, L2AutoAttack, robust_accuracy_table
from advlib.attacks.fab import LinfFAB
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
    with pytest.raises(ValueError, match="norm"):
        AutoAttack(norm="l1")
    with pytest.raises(ValueError, match="version"):
        AutoAttack(version="fast")
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
