"""Foolbox's helper modules in advlib: distances, plot, samples, types, and the public surface."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import cnn_model, native, to_numpy

import advlib
from advlib import distances
from advlib._tensors import framework_of

# ---------------------------------------------------------------- distances

_P = {"l0": 0, "l1": 1, "l2": 2, "linf": math.inf}


def _pair(seed: int = 0, shape: tuple[int, ...] = (4, 2, 3, 3)) -> tuple[np.ndarray, np.ndarray]:
    """Float32 batches whose difference has exact zeros (for L0) and varied sizes."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, shape).astype(np.float32)
    delta = rng.normal(0, 0.3, shape) * (rng.uniform(0, 1, shape) < 0.6)
    delta[1] = 0  # one sample unperturbed
    return x, (x + delta).astype(np.float32)


def _reference_norms(delta: np.ndarray, p: float) -> np.ndarray:
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    if p == 0:
        return np.asarray((flat != 0).sum(axis=1), dtype=np.float64)
    return np.asarray(np.linalg.norm(flat, ord=p, axis=1))


@pytest.mark.parametrize("name", list(_P))
def test_distance_is_the_per_sample_norm_in_the_native_type(any_backend: str, name: str) -> None:
    x, y = _pair()
    distance = getattr(distances, name)
    result = distance(native(any_backend, x), native(any_backend, y))
    assert framework_of(result) == any_backend and tuple(result.shape) == (4,)
    assert "float32" in str(result.dtype)
    expected = _reference_norms(y - x, _P[name])
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-6)
    assert to_numpy(result)[1] == 0


@pytest.mark.numpy
def test_distance_of_eagerpy_tensors_is_an_eagerpy_tensor_and_general_p_works() -> None:
    x, y = _pair()
    result = distances.LpDistance(3)(ep.astensor(x), ep.astensor(y))
    assert isinstance(result, ep.Tensor)
    np.testing.assert_allclose(result.numpy(), _reference_norms(y - x, 3), rtol=1e-6)


@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_clip_perturbation_matches_foolbox(any_backend: str, name: str) -> None:
    foolbox = pytest.importorskip("foolbox")
    x, y = _pair(1)
    epsilon = 0.4
    x_before, y_before = x.copy(), y.copy()
    clipped = getattr(distances, name).clip_perturbation(
        native(any_backend, x), native(any_backend, y), epsilon
    )
    expected = getattr(foolbox.distances, name).clip_perturbation(x, y, epsilon)
    assert framework_of(clipped) == any_backend and "float32" in str(clipped.dtype)
    np.testing.assert_allclose(to_numpy(clipped), expected, rtol=1e-6, atol=1e-7)
    sizes = _reference_norms(to_numpy(clipped) - x, _P[name])
    assert np.all(sizes <= epsilon * (1 + 1e-6))
    np.testing.assert_array_equal(x, x_before)  # inputs untouched
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.numpy
def test_l1_clip_rescales_as_foolbox_does_not_the_exact_projection() -> None:
    x = np.zeros((1, 2), np.float32)
    y = np.array([[3.0, 1.0]], np.float32)
    clipped = distances.l1.clip_perturbation(x, y, 2.0)
    # Scaled by 2/4 (Foolbox); the exact L1 projection would give (2, 0).
    np.testing.assert_allclose(clipped, [[1.5, 0.5]])
    projected = advlib.norms.l1.clip(ep.astensor(y - x), 2.0).numpy()
    np.testing.assert_allclose(projected, [[2.0, 0.0]])


@pytest.mark.numpy
@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_clip_perturbation_leaves_samples_inside_the_ball_and_infinity_clips_nothing(
    name: str,
) -> None:
    x, y = _pair(2)
    distance = getattr(distances, name)
    unchanged = x + (y - x)  # y up to float rounding, as Foolbox returns it
    np.testing.assert_array_equal(distance.clip_perturbation(x, y, math.inf), unchanged)
    large = float(_reference_norms(y - x, _P[name]).max()) * 2
    np.testing.assert_array_equal(distance.clip_perturbation(x, y, large), unchanged)


@pytest.mark.numpy
def test_l0_clip_returns_perturbed_within_epsilon_else_not_implemented() -> None:
    x, y = _pair(3)
    counts = _reference_norms(y - x, 0)
    assert distances.l0.clip_perturbation(x, y, counts.max()) is y
    same = x.copy()
    assert distances.l0.clip_perturbation(x, same, 0) is same  # Foolbox raises here
    with pytest.raises(NotImplementedError, match="L0"):
        distances.l0.clip_perturbation(x, y, counts.max() - 1)


@pytest.mark.numpy
def test_distance_names_as_in_foolbox() -> None:
    assert [repr(d) for d in (distances.l0, distances.l1, distances.l2, distances.linf)] == [
        "LpDistance(0)",
        "LpDistance(1)",
        "LpDistance(2)",
        "LpDistance(inf)",
    ]
    assert str(distances.l2) == "L2 distance" and str(distances.linf) == "Linf distance"
    assert isinstance(distances.l2, advlib.Distance)


@pytest.mark.numpy
def test_distance_rejects_bad_input_with_the_argument_named() -> None:
    x, y = _pair()
    with pytest.raises(ValueError, match="shape"):
        distances.l2(x, y[:2])
    with pytest.raises(TypeError, match="perturbed"):
        distances.l2(x, object())
    with pytest.raises(TypeError, match="float"):
        distances.l2(x.astype(np.int32), y.astype(np.int32))
    with pytest.raises(TypeError, match="float"):
        distances.l2(x, y.astype(np.float64))
    with pytest.raises(ValueError, match="epsilon"):
        distances.l2.clip_perturbation(x, y, -1.0)
    with pytest.raises(TypeError, match="epsilon"):
        distances.l2.clip_perturbation(x, y, "0.1")
    with pytest.raises(ValueError, match="p:"):
        distances.LpDistance(-1)


@pytest.mark.torch
def test_distance_rejects_mixed_frameworks() -> None:
    pytest.importorskip("torch")
    x, y = _pair()
    with pytest.raises(TypeError, match="perturbed: expected a numpy tensor"):
        distances.l2(x, native("torch", y))


# ---------------------------------------------------------------- plot


@pytest.fixture
def pyplot() -> Iterator[Any]:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _shown(ax: Any) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def test_images_grid_from_native_channels_first_tensors(pyplot: Any, any_backend: str) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 8, 8)).astype(np.float32)
    figure = advlib.plot.images(native(any_backend, x), bounds=(-1, 1), n=4, scale=2)
    assert len(figure.axes) == 4 and tuple(figure.get_size_inches()) == (8, 2)
    for i, ax in enumerate(figure.axes):
        np.testing.assert_allclose(_shown(ax), (x[i, 0] + 1) / 2, rtol=1e-6)
        assert ax.images[0].get_clim() == (0, 1)  # greys on the bounds' scale, not per image


@pytest.mark.numpy
def test_images_channels_last_rgb_and_grid_shape(pyplot: Any) -> None:
    x = np.random.default_rng(1).integers(0, 256, (7, 4, 5, 3)).astype(np.uint8)
    figure = advlib.plot.images(x, bounds=(0, 255), ncols=3, dpi=50)
    assert len(figure.axes) == 9 and figure.dpi == 50
    assert [len(ax.images) for ax in figure.axes] == [1] * 7 + [0] * 2
    np.testing.assert_allclose(_shown(figure.axes[6]), x[6] / 255, rtol=1e-6)
    assert tuple(figure.get_size_inches()) == (3, 3)
    assert len(advlib.plot.images(x, nrows=2).axes) == 8


@pytest.mark.torch
def test_images_of_bfloat16_tensors(pyplot: Any) -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand(2, 1, 4, 4).bfloat16()  # NumPy has no bfloat16
    figure = advlib.plot.images(x)
    np.testing.assert_array_equal(_shown(figure.axes[1]), x[1, 0].float().numpy())


@pytest.mark.numpy
def test_images_data_format_inference_and_errors(pyplot: Any) -> None:
    ambiguous = np.zeros((2, 3, 4, 3), np.float32)
    with pytest.raises(ValueError, match="data_format"):
        advlib.plot.images(ambiguous)
    figure = advlib.plot.images(ambiguous, data_format="channels_first")
    assert _shown(figure.axes[0]).shape == (4, 3, 3)
    with pytest.raises(ValueError, match="data_format"):
        advlib.plot.images(ambiguous, data_format="NCHW")
    with pytest.raises(ValueError, match="shape"):
        advlib.plot.images(np.zeros((2, 8, 8)))
    with pytest.raises(TypeError, match="clipped"):
        advlib.plot.images([np.zeros((2, 1, 8, 8))] * 2)
    with pytest.raises(ValueError, match="n:"):
        advlib.plot.images(ambiguous, data_format="channels_last", n=0)


@pytest.mark.numpy
def test_adversarials_rows_and_visible_perturbation(pyplot: Any) -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0.2, 0.8, (5, 1, 8, 8)).astype(np.float32)
    delta = rng.uniform(-0.05, 0.05, x.shape).astype(np.float32)
    figure = advlib.plot.adversarials(x, x + delta, n=3)
    assert len(figure.axes) == 9
    rows = [figure.axes[3 * r : 3 * r + 3] for r in range(3)]
    shown_delta = (x + delta)[:3] - x[:3]
    largest = np.abs(shown_delta).max()
    for i in range(3):
        np.testing.assert_allclose(_shown(rows[0][i]), x[i, 0], rtol=1e-6)
        np.testing.assert_allclose(_shown(rows[1][i]), (x + delta)[i, 0], rtol=1e-6)
        expected = 0.5 + shown_delta[i, 0] / (2 * largest)
        np.testing.assert_allclose(_shown(rows[2][i]), expected, rtol=1e-5, atol=1e-6)
    assert f"±{largest:.3g}" in rows[2][0].get_title(loc="left")
    assert np.abs(np.stack([_shown(ax) for ax in rows[2]]) - 0.5).max() == pytest.approx(0.5)


@pytest.mark.numpy
def test_adversarials_without_perturbation_and_errors(pyplot: Any) -> None:
    x = np.full((2, 8, 8, 1), 0.3, np.float32)
    figure = advlib.plot.adversarials(x, x)
    assert len(figure.axes) == 6
    np.testing.assert_array_equal(_shown(figure.axes[5]), np.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="adversarial"):
        advlib.plot.adversarials(x, x[:1])


# ---------------------------------------------------------------- samples and accuracy


def _expected_samples(index: int, batchsize: int, bounds: tuple[float, float]) -> Any:
    images, labels = advlib.zoo.digits("test")
    rows = np.arange(index, index + batchsize) % len(images)
    lower, upper = bounds
    return images[rows] * (upper - lower) + lower, labels[rows]


def test_samples_are_native_tensors_in_the_models_bounds(any_backend: str) -> None:
    model = cnn_model(any_backend, bounds=(-1, 2))
    layout = getattr(model, "data_format", None)
    images, labels = advlib.samples(
        model, index=357, batchsize=4, data_format=None if layout else "channels_first"
    )
    layout = layout or "channels_first"
    assert framework_of(images) == any_backend and framework_of(labels) == any_backend
    assert "float32" in str(images.dtype) and "int" in str(labels.dtype)
    expected_x, expected_y = _expected_samples(357, 4, (-1, 2))  # wraps: 357, 358, 0, 1
    if layout == "channels_last":
        expected_x = expected_x.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(to_numpy(images), expected_x, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(labels), expected_y)


@pytest.mark.numpy
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_samples_follow_the_models_data_format(data_format: str) -> None:
    model = advlib.NumPyModel(lambda x: x, bounds=(0, 255), data_format=data_format)
    images, labels = advlib.samples(model, "digits", 2, 3, bounds=(0, 1))
    expected_x, expected_y = _expected_samples(2, 3, (0, 1))
    if data_format == "channels_last":
        expected_x = expected_x.transpose(0, 2, 3, 1)
    assert images.shape == expected_x.shape
    np.testing.assert_array_equal(images, expected_x)
    np.testing.assert_array_equal(labels, expected_y)
    other = "channels_last" if data_format == "channels_first" else "channels_first"
    with pytest.raises(ValueError, match="data_format"):
        advlib.samples(model, data_format=other)


@pytest.mark.numpy
def test_samples_errors_name_the_argument_and_the_fix() -> None:
    unknown = advlib.NumPyModel(lambda x: x, bounds=(0, 1))
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        advlib.samples(unknown)
    assert advlib.samples(unknown, data_format="channels_last")[0].shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match=r"only 'digits'.*cannot download"):
        advlib.samples(unknown, "imagenet", data_format="channels_first")
    with pytest.raises(ValueError, match="shape"):
        advlib.samples(unknown, shape=(224, 224), data_format="channels_first")
    with pytest.raises(ValueError, match="batchsize"):
        advlib.samples(unknown, batchsize=0, data_format="channels_first")
    with pytest.raises(TypeError, match="index"):
        advlib.samples(unknown, index=1.5, data_format="channels_first")
    with pytest.raises(TypeError, match="model"):
        advlib.samples(lambda x: x)
    with pytest.warns(UserWarning, match="repeats"):
        images, _ = advlib.samples(unknown, batchsize=360, data_format="channels_first")
    np.testing.assert_array_equal(images[359], images[0])


def test_accuracy_on_samples_of_the_zoo_models(any_backend: str) -> None:
    model = advlib.zoo.digits_cnn(any_backend)
    assert model.data_format == "channels_first"  # what the zoo's networks take
    images, labels = advlib.samples(model, batchsize=64)
    assert tuple(images.shape) == (64, 1, 8, 8)
    logits = to_numpy(model(model.to_tensor(images, "x", floating=True)[0]).raw)
    expected = float(np.mean(logits.argmax(axis=-1) == to_numpy(labels)))
    assert expected > 0.8  # the trained network recognises the digits samples() returns
    assert advlib.accuracy(model, images, labels) == pytest.approx(expected, abs=1e-7)


# ---------------------------------------------------------------- types and public surface


@pytest.mark.numpy
def test_types_as_in_foolbox() -> None:
    from advlib import types

    assert types.Bounds is advlib.models.Bounds
    assert types.Bounds(0, 1).upper == 1 and types.L2(0.5) == 0.5
    assert {"Bounds", "BoundsInput", "L0", "L1", "L2", "Linf", "Preprocessing"} <= set(
        types.__all__
    )


_FOOLBOX_TOP_LEVEL = [
    "__version__", "Distance", "distances", "Criterion", "Misclassification",
    "TargetedMisclassification", "plot", "Model", "PyTorchModel", "TensorFlowModel", "JAXModel",
    "NumPyModel", "accuracy", "samples", "Attack", "attacks", "zoo", "types",
]  # fmt: skip
_ALL_BEFORE = [
    "Attack", "AttackResult", "Criterion", "JAXModel", "Misclassification", "Model",
    "NumPyModel", "PyTorchModel", "RobustnessReport", "TargetedMisclassification",
    "TensorFlowModel", "TopKMisclassification", "__version__", "attacks", "criteria",
    "evaluate", "norms", "utils", "zoo",
]  # fmt: skip


@pytest.mark.numpy
def test_dir_lists_the_public_names_and_no_helpers() -> None:
    names = dir(advlib)
    assert set(_FOOLBOX_TOP_LEVEL) <= set(names) and set(_ALL_BEFORE) <= set(advlib.__all__)
    assert set(advlib.__all__) <= set(names)
    for leaked in ("Any", "TYPE_CHECKING", "annotations", "_typing", "_MODELS", "_tensors"):
        assert leaked not in names
    assert not hasattr(advlib, "Any") and not hasattr(advlib, "annotations")
    lazy = {"PyTorchModel", "TensorFlowModel", "JAXModel", "NumPyModel"}
    assert all(hasattr(advlib, name) for name in set(_FOOLBOX_TOP_LEVEL) - lazy)
    models = dir(advlib.models)
    assert lazy | {"Model", "TransformBoundsWrapper"} <= set(models)
    assert not {"Any", "TYPE_CHECKING", "annotations", "importlib"} & set(models)


@pytest.mark.numpy
def test_importing_advlib_imports_no_framework_and_no_matplotlib() -> None:
    code = (
        "import sys, advlib, advlib.plot, advlib.distances, advlib.types\n"
        "advlib.samples; advlib.accuracy; dir(advlib)\n"
        "print(sorted({'torch', 'tensorflow', 'jax', 'matplotlib'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
