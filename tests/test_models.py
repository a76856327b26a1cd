"""Model wrappers: preprocessing, gradients w.r.t. inputs only, dtypes, devices, lazy imports."""

from __future__ import annotations

import subprocess
import sys
import warnings

import eagerpy as ep
import numpy as np
import pytest
from helpers import CNN_LAYERS, LinearOracle, cnn_model, cnn_weights, native, to_numpy, wrap_model

import advlib
from advlib import attacks
from advlib.zoo.architectures import build

X = np.random.default_rng(1).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)


def _logits(model: advlib.Model, x: np.ndarray) -> np.ndarray:
    return to_numpy(model(model.to_tensor(x, "x", floating=True)[0]))


def test_import_advlib_imports_no_framework() -> None:
    code = (
        "import sys, advlib, advlib.attacks, advlib.criteria, advlib.norms, advlib.utils;"
        "loaded = [m for m in ('torch', 'tensorflow', 'jax', 'keras') if m in sys.modules];"
        "print(','.join(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_preprocessing_is_applied_inside_the_model(any_backend: str) -> None:
    mean, std = 0.3, 0.2
    plain = cnn_model(any_backend)
    pre = cnn_model(any_backend, preprocessing=dict(mean=[mean], std=[std], axis=-3))
    np.testing.assert_allclose(_logits(pre, X), _logits(plain, (X - mean) / std), atol=1e-4)


def test_flip_axis(any_backend: str) -> None:
    plain = cnn_model(any_backend)
    flipped = cnn_model(any_backend, preprocessing=dict(flip_axis=-1))
    np.testing.assert_allclose(_logits(flipped, X), _logits(plain, X[..., ::-1]), atol=1e-5)


def test_input_gradient_matches_closed_form(backend: str) -> None:
    oracle = LinearOracle(n=8, shape=(20,), classes=4, seed=3)
    model = oracle.model(backend)
    x, _ = model.to_tensor(oracle.x, "x", floating=True)
    labels = ep.from_numpy(x, oracle.labels).astype(model(x).argmax(axis=-1).dtype)

    def loss(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
        logits = model(z)
        return ep.crossentropy(logits, labels).sum(), logits

    value, aux, grad = model.value_and_grad(loss, x)
    logits = oracle.logits
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    onehot = np.eye(4)[oracle.labels]
    expected = (probs - onehot) @ oracle.weights["fc1.w"].T
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(aux.numpy(), logits, atol=1e-5)
    assert value.shape == ()


@pytest.mark.torch
def test_torch_parameters_get_no_gradient_and_keep_state() -> None:
    pytest.importorskip("torch")
    import torch

    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8))
    flags = [p.requires_grad for p in net.parameters()]
    before = [p.detach().clone() for p in net.parameters()]
    model = advlib.PyTorchModel(net, bounds=(0, 1))
    rng_state = torch.get_rng_state()
    attacks.LinfPGD(steps=3, seed=0)(model, torch.as_tensor(X), np.arange(6), epsilons=0.1)
    assert all(p.grad is None for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=False))
    assert not net.training
    assert torch.equal(rng_state, torch.get_rng_state())


@pytest.mark.torch
def test_torch_training_mode_warns() -> None:
    pytest.importorskip("torch")
    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8)).train()
    with pytest.warns(UserWarning, match="training mode"):
        advlib.PyTorchModel(net, bounds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        advlib.PyTorchModel(net.eval(), bounds=(0, 1))


@pytest.mark.torch
def test_torch_parameterless_model_defaults_to_cpu() -> None:
    torch = pytest.importorskip("torch")
    model = advlib.PyTorchModel(lambda x: x.reshape(x.shape[0], -1)[:, :3], bounds=(0, 1))
    assert model.device == torch.device("cpu")
    _, clipped, _ = attacks.FGSM()(model, X, np.zeros(6, dtype=int), epsilons=0.1)
    assert isinstance(clipped, np.ndarray)


@pytest.mark.tensorflow
def test_keras_dropout_runs_in_inference_mode() -> None:
    pytest.importorskip("tensorflow")
    import keras

    net = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dropout(0.5), keras.layers.Dense(5)]
    )
    net.build((None, 1, 8, 8))
    model = advlib.TensorFlowModel(net, bounds=(0, 1))
    np.testing.assert_array_equal(_logits(model, X), _logits(model, X))


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_input_dtype_is_returned(dtype: str, backend: str) -> None:
    model = cnn_model(backend)
    x = X.astype(dtype)
    inputs = native(backend, x)  # JAX without x64 stores float64 as float32
    _raw, clipped, success = attacks.FGSM()(model, inputs, np.arange(6), epsilons=0.1)
    assert to_numpy(clipped).dtype == to_numpy(inputs).dtype
    assert attacks.FGSM()(model, x, np.arange(6), epsilons=0.1).clipped.dtype == np.dtype(dtype)
    assert to_numpy(success).dtype == np.bool_
    assert np.abs(to_numpy(clipped).astype(np.float32) - X).max() <= 0.1 + 2e-3


def test_accuracy(any_backend: str) -> None:
    model = cnn_model(any_backend)
    predictions = _logits(model, X).argmax(-1)
    assert advlib.utils.accuracy(model, X, predictions) == 1.0
    assert advlib.utils.accuracy(model, X, (predictions + 1) % 10) == 0.0
    assert advlib.utils.accuracy(model, native(any_backend, X), predictions) == 1.0


def test_wrappers_refuse_non_callables() -> None:
    with pytest.raises(TypeError, match="model: expected"):
        advlib.NumPyModel(3, bounds=(0, 1))  # type: ignore[arg-type]


def test_wrapper_built_from_helpers_is_the_right_type(any_backend: str) -> None:
    model = wrap_model(any_backend, build(any_backend, CNN_LAYERS, cnn_weights(), (1, 8, 8)))
    assert model.framework == any_backend
    assert model.bounds == (0.0, 1.0)
