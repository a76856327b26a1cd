"""Every bad input is answered, before any work, by a clear ValueError or TypeError."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import available, cnn_model, native

import advlib
from advlib import attacks

X = np.random.default_rng(0).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32)
Y = np.array([0, 1, 2, 3])


@pytest.fixture(scope="module")
def cache() -> dict[str, advlib.Model]:
    return {}


@pytest.fixture
def model(backend: str, cache: dict[str, advlib.Model]) -> advlib.Model:
    if backend not in cache:
        cache[backend] = cnn_model(backend)
    return cache[backend]


def _call(model: advlib.Model, inputs=X, labels=Y, epsilons=0.1, attack=None):
    return (attack or attacks.FGSM())(model, inputs, labels, epsilons=epsilons)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (np.full((4, 1, 8, 8), 1.5, np.float32), r"bounds \[0.0, 1.0\].*from 1.5 to 1.5"),
        (np.full((4, 1, 8, 8), -0.2, np.float32), r"from -0.2 to -0.2"),
        (np.where(np.eye(8, dtype=bool), np.nan, X).astype(np.float32), "NaN or infinite"),
        (np.where(np.eye(8, dtype=bool), np.inf, X).astype(np.float32), "NaN or infinite"),
        (X[0, 0, 0], r"at least 2 dimensions"),
    ],
    ids=["above", "below", "nan", "inf", "rank"],
)
def test_bad_inputs(model: advlib.Model, inputs: np.ndarray, message: str) -> None:
    original = inputs.copy()
    with pytest.raises(ValueError, match=message):
        _call(model, inputs=inputs)
    np.testing.assert_array_equal(inputs, original)


def test_inputs_within_tolerance_are_accepted_and_clipped(model: advlib.Model) -> None:
    inputs = np.clip(X, 0, 1) + 5e-7
    _, clipped, _ = _call(model, inputs=inputs, epsilons=0.0)
    assert clipped.max() <= 1.0


@pytest.mark.parametrize(
    ("epsilons", "error", "message"),
    [
        (-0.1, ValueError, r"finite numbers >= 0, got -0.1"),
        (float("nan"), ValueError, "finite numbers"),
        (float("inf"), ValueError, "finite numbers"),
        ([0.1, -1.0], ValueError, "got -1.0"),
        (None, ValueError, "fixed-epsilon attack and needs a budget"),
        ("0.1", TypeError, "epsilons"),
        ([], ValueError, "at least one epsilon"),
    ],
)
def test_bad_epsilons(model: advlib.Model, epsilons: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _call(model, epsilons=epsilons)


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.array([0, 1, 2]), ValueError, r"shape \(4,\).*got shape \(3,\)"),
        (np.array([[0, 1, 2, 3]]), ValueError, r"shape \(4,\)"),
        (np.array([0, 1, 2, 10]), ValueError, r"\[0, 9\].*from 0 to 10"),
        (np.array([-1, 1, 2, 3]), ValueError, r"from -1 to 3"),
        (np.array([0.0, 1.0, 2.0, 3.0]), TypeError, "integer class indices"),
        (np.array([True, False, True, False]), TypeError, "integer class indices"),
        ("cat", TypeError, "criterion"),
        (None, TypeError, "criterion"),
    ],
)
def test_bad_labels(model: advlib.Model, labels: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _call(model, labels=labels)


def test_bad_target_classes(model: advlib.Model) -> None:
    with pytest.raises(ValueError, match=r"target_classes.*\[0, 9\]"):
        _call(model, labels=advlib.TargetedMisclassification(np.array([0, 1, 2, 12])))


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda flat: flat[:, :1], "one output per sample"),
        (lambda flat: flat[:2], r"shape \(4, classes\)"),
        (lambda flat: flat[:, 0], r"shape \(4, classes\)"),
    ],
    ids=["one-logit", "wrong-batch", "rank-1"],
)
def test_bad_model_outputs(backend: str, output: object, message: str) -> None:
    from helpers import wrap_model

    if backend == "tensorflow":
        import tensorflow as tf

        flatten = lambda x: tf.reshape(x, (x.shape[0], -1))  # noqa: E731
    else:
        flatten = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731

    def net(x):
        return output(flatten(x))  # type: ignore[operator]

    model = wrap_model(backend, net)
    with pytest.raises(ValueError, match=message):
        _call(model)


def test_tuple_and_dict_outputs_are_explained(backend: str) -> None:
    from helpers import wrap_model

    inner = cnn_model(backend)

    def as_tuple(x):
        return (inner._forward(x), x)

    def as_dict(x):
        return {"logits": inner._forward(x)}

    with pytest.raises(TypeError, match="output_index"):
        _call(wrap_model(backend, as_tuple))
    with pytest.raises(TypeError, match="output_key"):
        _call(wrap_model(backend, as_dict))
    _, _, a = _call(wrap_model(backend, as_tuple, output_index=0))
    _, _, b = _call(wrap_model(backend, as_dict, output_key="logits"))
    np.testing.assert_array_equal(a, b)


def test_gradient_attack_on_numpy_model_names_alternatives() -> None:
    model = cnn_model("numpy")
    with pytest.raises(TypeError, match=r"needs gradients.*gradient-free"):
        _call(model)


@pytest.mark.parametrize(
    ("bounds", "error"),
    [
        ((1, 0), ValueError),
        ((0, 0), ValueError),
        ((0, float("inf")), ValueError),
        ("01", TypeError),
        (None, TypeError),
        ((0,), TypeError),
    ],
)
def test_bad_bounds(bounds: object, error: type) -> None:
    with pytest.raises(error, match="bounds"):
        advlib.NumPyModel(lambda x: x, bounds=bounds)


def test_not_a_model() -> None:
    with pytest.raises(TypeError, match="model: expected an advlib model wrapper"):
        attacks.FGSM()(lambda x: x, X, Y, epsilons=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: attacks.LinfPGD(steps=0), "steps: expected an int >= 1, got 0"),
        (lambda: attacks.LinfPGD(rel_stepsize=-1), "rel_stepsize"),
        (lambda: attacks.LinfPGD(abs_stepsize=0), "abs_stepsize"),
        (lambda: attacks.LinfPGD(seed="a"), "seed"),  # type: ignore[arg-type]
        (lambda: attacks.MIFGSM(decay=-1), "decay"),
        (lambda: advlib.TopKMisclassification(Y, k=0), "k: expected an int >= 1"),
    ],
)
def test_bad_attack_arguments(factory: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        factory()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("preprocessing", "message"),
    [
        ({"mean": 0.5, "axis": 1}, "negative int"),
        ({"std": 0.0}, "zeros"),
        ({"scale": 1.0}, "unknown keys"),
        ([0.5], "expected a dict"),
    ],
)
def test_bad_preprocessing(preprocessing: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        advlib.NumPyModel(lambda x: x, bounds=(0, 1), preprocessing=preprocessing)  # type: ignore[arg-type]


def test_top_k_larger_than_classes(model: advlib.Model) -> None:
    with pytest.raises(ValueError, match="k: must be smaller than the model's 10 classes"):
        _call(model, labels=advlib.TopKMisclassification(Y, k=10))


@pytest.mark.parametrize(
    ("model_framework", "tensor_framework"),
    [
        (m, t)
        for m in ("torch", "tensorflow", "jax")
        for t in ("torch", "tensorflow", "jax")
        if m != t
    ],
)
def test_tensors_of_another_framework_are_refused(
    model_framework: str, tensor_framework: str, cache: dict[str, advlib.Model]
) -> None:
    if not (available(model_framework) and available(tensor_framework)):
        pytest.skip("needs both frameworks")
    if model_framework not in cache:
        cache[model_framework] = cnn_model(model_framework)
    model = cache[model_framework]
    wrapper = type(model).__name__
    with pytest.raises(TypeError, match=rf"inputs: {wrapper} takes {model_framework} tensors"):
        _call(model, inputs=native(tensor_framework, X))
    with pytest.raises(TypeError, match=f"labels: {wrapper}.*got {tensor_framework}"):
        _call(model, labels=native(tensor_framework, Y))


@pytest.mark.parametrize(
    "one_hot",
    [np.eye(10, dtype=np.float32)[Y], np.eye(10, dtype=np.int64)[Y]],
    ids=["float-to_categorical", "int"],
)
def test_one_hot_labels_are_explained_on_every_path(model: advlib.Model, one_hot: object) -> None:
    fix = r"labels: the values look one-hot encoded \(shape \(4, 10\)\); pass class indices"
    for labels in (
        one_hot,
        advlib.Misclassification(one_hot),
        advlib.TopKMisclassification(one_hot),
    ):
        with pytest.raises(ValueError, match=fix + r".*labels\.argmax\(-1\)"):
            _call(model, labels=labels)
    with pytest.raises(ValueError, match=r"target_classes: the values look one-hot.*argmax\(-1\)"):
        _call(model, labels=advlib.TargetedMisclassification(one_hot))
    with pytest.raises(ValueError, match=fix):
        advlib.utils.accuracy(model, X, one_hot)


def test_8_bit_inputs_suggest_scaling(model: advlib.Model) -> None:
    pixels = np.round(X * 255)
    with pytest.raises(
        ValueError, match=r"bounds \[0.0, 1.0\].*8-bit.*inputs / 255.*bounds=\(0, 255\)"
    ):
        _call(model, inputs=pixels)
    with pytest.raises(ValueError, match=r"from 0 to 1.5$"):  # not pixels: no such hint
        _call(model, inputs=np.where(X > 0.5, 1.5, 0.0).astype(np.float32))
