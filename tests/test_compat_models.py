"""Foolbox 3 drop-in behaviour of the model wrappers: native calls, data_format,
transform_bounds, preprocessing tensors and broadcasting, device checks, model state in
training mode, output selection errors, and user subclasses of ``advlib.Model``."""

from __future__ import annotations

import copy
import functools
import warnings
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import CNN_LAYERS, LinearOracle, cnn_model, cnn_weights, native, to_numpy, wrap_model

import advlib
from advlib import attacks
from advlib.models import TransformBoundsWrapper
from advlib.zoo.architectures import build

X = np.random.default_rng(1).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
X3 = np.random.default_rng(2).uniform(0, 1, (4, 3, 8, 8)).astype(np.float32)
MEAN3 = np.array([0.2, 0.5, 0.7], dtype=np.float32)
STD3 = np.array([0.3, 0.2, 0.4], dtype=np.float32)


@functools.cache
def _shared(backend: str) -> advlib.Model:
    """The test CNN, shared by tests that do not change it (its compiled steps are reused)."""
    return cnn_model(backend)


def _eager_logits(model: advlib.Model, x: np.ndarray) -> np.ndarray:
    """Logits through the path attacks take: to_tensor, then an EagerPy call."""
    return to_numpy(model(model.to_tensor(x, "x", floating=True)[0]))


def _labels(model: advlib.Model, x: np.ndarray) -> np.ndarray:
    return _eager_logits(model, x).argmax(-1)


# ------------------------------------------------------------------ 1. native calls
def test_call_returns_the_type_it_is_given(any_backend: str) -> None:
    model = _shared(any_backend)
    expected = _eager_logits(model, X)
    given = {
        "numpy": X,
        "native": native(any_backend, X),
        "eagerpy": ep.astensor(native(any_backend, X)),
        "eagerpy numpy": ep.astensor(X),
        "list": X.tolist(),
    }
    for kind, inputs in given.items():
        logits = model(inputs)
        wanted = np.ndarray if kind == "list" else type(inputs)
        assert type(logits) is wanted, kind
        np.testing.assert_allclose(to_numpy(logits), expected, rtol=0, atol=1e-6, err_msg=kind)
    assert to_numpy(model(X)).argmax(-1).tolist() == expected.argmax(-1).tolist()


def test_call_keeps_the_float_dtype_and_gives_float_logits_for_integers(
    any_backend: str,
) -> None:
    model = cnn_model(any_backend, bounds=(0, 255))
    images = (X * 255).astype(np.uint8)
    wide = model(native(any_backend, X.astype(np.float64) * 255))
    assert to_numpy(wide).dtype == to_numpy(native(any_backend, X.astype(np.float64))).dtype
    logits = to_numpy(model(native(any_backend, images)))
    assert logits.dtype.kind == "f"  # integer inputs: logits are not cast to the input dtype
    np.testing.assert_allclose(logits, _eager_logits(model, images.astype(np.float32)), atol=1e-5)


def test_attack_on_integer_inputs_returns_floats(backend: str) -> None:
    model = cnn_model(backend, bounds=(0, 255), compile=False)  # one step: nothing to compile
    images = native(backend, (X * 255).astype(np.uint8))
    _, clipped, _ = attacks.FGSM()(model, images, _labels(model, X * 255), epsilons=3.0)
    assert to_numpy(clipped).dtype == np.float32
    assert np.abs(to_numpy(clipped) - to_numpy(images)).max() > 1  # not truncated away


def test_eagerpy_calls_skip_conversion(any_backend: str) -> None:
    model = cnn_model(any_backend)
    x, _ = model.to_tensor(X, "x", floating=True)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an EagerPy call of the model's framework must not convert")

    model._convert = refuse  # type: ignore[method-assign]
    assert isinstance(model(x), type(x))


def _native_gradient(backend: str, model: advlib.Model, x: np.ndarray) -> np.ndarray:
    """d sum(model(x)) / dx through a direct call on a native tensor, by the framework."""
    if backend == "torch":
        t = native("torch", x).requires_grad_(True)
        model(t).sum().backward()
        return t.grad.numpy()  # type: ignore[no-any-return]
    if backend == "tensorflow":
        import tensorflow as tf

        t = native("tensorflow", x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            total = tf.reduce_sum(model(t))
        return tape.gradient(total, t).numpy()  # type: ignore[no-any-return]
    import jax

    return np.asarray(jax.grad(lambda z: model(z).sum())(native("jax", x)))


def test_native_calls_are_differentiable(backend: str) -> None:
    model = _shared(backend)
    x, _ = model.to_tensor(X, "x", floating=True)
    _, _, reference = model.value_and_grad(lambda z: (model(z).sum(), z), x)
    np.testing.assert_allclose(_native_gradient(backend, model, X), reference.numpy(), atol=1e-5)


@pytest.mark.torch
def test_torch_call_records_autograd_only_for_inputs_that_require_it() -> None:
    torch = pytest.importorskip("torch")
    model = _shared("torch")
    assert not model(torch.as_tensor(X)).requires_grad
    assert model(torch.as_tensor(X).requires_grad_(True)).requires_grad


@pytest.mark.torch
def test_numpy_model_takes_other_frameworks_tensors() -> None:
    torch = pytest.importorskip("torch")
    model = _shared("numpy")
    x = torch.as_tensor(X)
    logits = model(x)
    assert isinstance(logits, torch.Tensor)
    np.testing.assert_array_equal(logits.numpy(), _eager_logits(model, X))
    attack = attacks.LinfSquareAttack(n_queries=20, seed=0)
    clipped = attack(model, x, _labels(model, X), epsilons=0.1).clipped
    expected = attack(model, X, _labels(model, X), epsilons=0.1).clipped
    assert isinstance(clipped, torch.Tensor)
    np.testing.assert_array_equal(clipped.numpy(), expected)


def test_other_frameworks_are_refused_with_the_accepted_types(backend: str) -> None:
    model = _shared(backend)
    other = native("jax" if backend != "jax" else "torch", X)
    with pytest.raises(TypeError, match=r"inputs: .* takes .* NumPy arrays"):
        model(other)


# ------------------------------------------------------------------ 2. data_format
def test_data_format_follows_foolbox(any_backend: str) -> None:
    model = _shared(any_backend)
    expected = {"torch": "channels_first", "jax": "channels_last"}
    if any_backend == "tensorflow":
        import keras

        assert model.data_format == keras.config.image_data_format()
        given = cnn_model(any_backend, data_format="channels_first")
        assert given.data_format == "channels_first"
    elif any_backend == "numpy":
        assert not hasattr(model, "data_format")
    else:
        assert model.data_format == expected[any_backend]
    if any_backend in ("jax", "numpy", "tensorflow"):
        assert cnn_model(any_backend, data_format="channels_first").data_format == "channels_first"
        with pytest.raises(ValueError, match=r"data_format: expected .* got 'NCHW'"):
            cnn_model(any_backend, data_format="NCHW")


@pytest.mark.jax
def test_jax_model_without_data_format_has_none() -> None:
    pytest.importorskip("jax")
    model = cnn_model("jax", data_format=None)
    assert not hasattr(model, "data_format")
    with pytest.raises(AttributeError, match="data_format"):
        _ = model.data_format


# ------------------------------------------------------------------ 3. transform_bounds
def test_transform_bounds_folds_the_map_into_the_model(any_backend: str) -> None:
    model = cnn_model(any_backend, preprocessing=dict(mean=0.1, std=0.9))
    big = model.transform_bounds((0, 255))
    assert type(big) is type(model) and big.bounds == (0, 255)
    assert model.bounds == (0, 1)
    np.testing.assert_allclose(to_numpy(big(X * 255)), to_numpy(model(X)), atol=1e-5)
    np.testing.assert_array_equal(to_numpy(model(X)), _eager_logits(model, X))  # unchanged
    back = big.transform_bounds((0, 1))
    np.testing.assert_allclose(to_numpy(back(X)), to_numpy(model(X)), atol=1e-5)
    assert model.transform_bounds((0, 1)) is not model
    assert model.transform_bounds((0, 1), inplace=True) is model


def test_transform_bounds_inplace_and_wrapper(any_backend: str) -> None:
    model = cnn_model(any_backend)
    expected = to_numpy(model(X))
    wrapped = model.transform_bounds((-1, 1), wrapper=True)
    assert isinstance(wrapped, TransformBoundsWrapper) and wrapped.bounds == (-1, 1)
    np.testing.assert_allclose(to_numpy(wrapped(X * 2 - 1)), expected, atol=1e-5)
    with pytest.raises(ValueError, match="inplace and wrapper"):
        model.transform_bounds((-1, 1), inplace=True, wrapper=True)
    assert model.transform_bounds((-1, 1), inplace=True) is model
    assert model.bounds == (-1, 1)
    np.testing.assert_allclose(to_numpy(model(X * 2 - 1)), expected, atol=1e-5)


def test_transform_bounds_wrapper(any_backend: str) -> None:
    model = _shared(any_backend)
    wrapper = TransformBoundsWrapper(model, (0, 255))
    assert isinstance(wrapper, advlib.Model) and wrapper.framework == model.framework
    for inputs in (
        X * 255,
        native(any_backend, X * 255),
        ep.astensor(native(any_backend, X * 255)),
    ):
        logits = wrapper(inputs)
        assert type(logits) is type(inputs)
        np.testing.assert_allclose(to_numpy(logits), to_numpy(model(X)), atol=1e-5)
    again = wrapper.transform_bounds((0, 2))
    assert isinstance(again, TransformBoundsWrapper) and again._model is model  # not nested
    assert wrapper.transform_bounds((0, 2), inplace=True) is wrapper and wrapper.bounds == (0, 2)
    same = TransformBoundsWrapper(model, (0, 1))
    np.testing.assert_array_equal(to_numpy(same(X)), to_numpy(model(X)))
    if any_backend == "torch":
        assert wrapper.data_format == "channels_first"
    with pytest.raises(TypeError, match="model: expected an advlib model"):
        TransformBoundsWrapper(lambda x: x, (0, 1))  # type: ignore[arg-type]


ATTACKS_FOR_BOUNDS = ((attacks.FGSM(), 0.1), (attacks.LinfPGD(steps=3, seed=0), 0.05))


@functools.cache
def _results_on_unit_bounds(backend: str) -> list[advlib.AttackResult]:
    model = _shared(backend)
    return [attack(model, X, _labels(model, X), epsilons=eps) for attack, eps in ATTACKS_FOR_BOUNDS]


@pytest.mark.parametrize("how", ["wrapper", "folded"])
def test_attacks_on_new_bounds_are_the_affine_image(backend: str, how: str) -> None:
    model = _shared(backend)
    if how == "wrapper":
        big: advlib.Model = TransformBoundsWrapper(model, (0, 255))
    else:
        big = model.transform_bounds((0, 255))
    labels = _labels(model, X)
    for (attack, eps), small in zip(ATTACKS_FOR_BOUNDS, _results_on_unit_bounds(backend)):
        large = attack(big, X * 255, labels, epsilons=eps * 255)
        assert large.clipped.min() >= 0 and large.clipped.max() <= 255
        np.testing.assert_allclose(large.clipped / 255, small.clipped, atol=1e-5)
        np.testing.assert_array_equal(large.success, small.success)


# ------------------------------------------------------------------ 4. preprocessing
def _cnn3(backend: str, **kw: Any) -> advlib.Model:
    net = build(backend, CNN_LAYERS, cnn_weights(channels=3), (3, 8, 8))
    return wrap_model(backend, net, **kw)


def test_preprocessing_accepts_tensors_and_broadcasts_without_axis(any_backend: str) -> None:
    plain = _cnn3(any_backend)
    expected = _eager_logits(plain, (X3 - MEAN3[:, None, None]) / STD3[:, None, None])
    specs = {
        "numbers with axis": dict(mean=MEAN3.tolist(), std=STD3.tolist(), axis=-3),
        "native with axis": dict(
            mean=native(any_backend, MEAN3), std=native(any_backend, STD3), axis=-3
        ),
        "eagerpy with axis": dict(
            mean=ep.astensor(native(any_backend, MEAN3)), std=ep.astensor(native(any_backend, STD3))
        )
        | {"axis": -3},
        "(3, 1, 1) without axis": dict(
            mean=native(any_backend, MEAN3[:, None, None]), std=STD3[:, None, None]
        ),
    }
    for kind, spec in specs.items():
        logits = _eager_logits(_cnn3(any_backend, preprocessing=spec), X3)
        np.testing.assert_allclose(logits, expected, atol=1e-5, err_msg=kind)


def test_preprocessing_vector_without_axis_aligns_with_the_last_axis(any_backend: str) -> None:
    plain = _shared(any_backend)
    mean = np.linspace(0.1, 0.8, 8).astype(np.float32)
    model = cnn_model(any_backend, preprocessing=dict(mean=mean))
    np.testing.assert_allclose(_eager_logits(model, X), _eager_logits(plain, X - mean), atol=1e-5)


def test_preprocessing_that_cannot_broadcast_fails_at_the_first_call(any_backend: str) -> None:
    model = _cnn3(any_backend, preprocessing=dict(mean=MEAN3, std=STD3))  # accepted, as Foolbox
    message = r"preprocessing\['mean'\]: shape \(3,\) does not broadcast .* \(4, 3, 8, 8\).*axis"
    with pytest.raises(ValueError, match=message):
        model(X3)
    with pytest.raises(ValueError, match=r"preprocessing\['mean'\]: with 'axis'"):
        _cnn3(any_backend, preprocessing=dict(mean=np.zeros((3, 1)), axis=-3))
    with pytest.raises(TypeError, match=r"preprocessing\['std'\]: expected a number"):
        _cnn3(any_backend, preprocessing=dict(std=object()))


# ------------------------------------------------------------------ 5. devices
@pytest.mark.torch
def test_torch_device_is_checked_at_construction() -> None:
    torch = pytest.importorskip("torch")
    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8))
    for device in ("cuda:99", "gpu"):
        with pytest.raises(ValueError, match=rf"device: '{device}' .*available devices: cpu"):
            advlib.PyTorchModel(net, (0, 1), device=device)
    model = advlib.PyTorchModel(net, (0, 1), device="cpu")
    assert model.device == torch.device("cpu")


@pytest.mark.tensorflow
def test_tensorflow_device_is_checked_at_construction() -> None:
    pytest.importorskip("tensorflow")
    net = build("tensorflow", CNN_LAYERS, cnn_weights(), (1, 8, 8))
    with pytest.raises(ValueError, match=r"device: '/GPU:99' .*available devices: .*CPU:0"):
        advlib.TensorFlowModel(net, (0, 1), device="/GPU:99")
    with pytest.raises(ValueError, match=r"device: 'cuda' .*available devices"):
        advlib.TensorFlowModel(net, (0, 1), device="cuda")
    with pytest.raises(TypeError, match="device: expected a TF device string"):
        advlib.TensorFlowModel(net, (0, 1), device=0)
    model = advlib.TensorFlowModel(net, (0, 1), device="/CPU:0")
    assert "CPU" in model(native("tensorflow", X)).device


@pytest.mark.jax
def test_jax_device_is_checked_at_construction() -> None:
    jax = pytest.importorskip("jax")
    net = build("jax", CNN_LAYERS, cnn_weights(), (1, 8, 8))
    for device in ("gpu:99", "cpu:99", "nonsense"):
        with pytest.raises(ValueError, match=rf"device: '{device}' .*available devices: .*cpu:0"):
            advlib.JAXModel(net, (0, 1), device=device)
    with pytest.raises(TypeError, match=r"device: expected a jax\.Device"):
        advlib.JAXModel(net, (0, 1), device=0)
    model = advlib.JAXModel(net, (0, 1), device="cpu")
    x, _ = model.to_tensor(X, "x", floating=True)
    assert x.raw.devices() == {jax.devices("cpu")[0]}


# ------------------------------------------------------------------ 6. training mode
def _bn_dropout_net() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(256, 10),
        nn.BatchNorm1d(10),
    )


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["train", "one submodule training"])
def test_attacks_leave_parameters_and_buffers_bit_identical(mode: str) -> None:
    torch = pytest.importorskip("torch")
    net = _bn_dropout_net()
    if mode == "train":
        net.train()
    else:
        net.eval()
        net[1].train()
    before = {name: t.clone() for name, t in net.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training-mode warning
        model = advlib.PyTorchModel(net, bounds=(0, 1))
    labels = np.arange(6) % 10
    attacks.FGSM()(model, torch.as_tensor(X), labels, epsilons=0.1)
    attacks.LinfPGD(steps=3, seed=0)(model, X, labels, epsilons=0.1)
    model(X)
    after = net.state_dict()
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name].dtype == value.dtype and torch.equal(after[name], value), name
    assert net.training == (mode == "train") and net[1].training


@pytest.mark.torch
def test_training_mode_still_uses_batch_statistics_and_warns() -> None:
    torch = pytest.importorskip("torch")
    net = _bn_dropout_net()
    net[3].p = 0.0  # no dropout: deterministic outputs
    net.train()
    with pytest.warns(UserWarning, match="training mode"):
        model = advlib.PyTorchModel(net, bounds=(0, 1))
    with torch.no_grad():
        expected = copy.deepcopy(net)(torch.as_tensor(X)).numpy()  # batch statistics
    np.testing.assert_allclose(to_numpy(model(X)), expected, rtol=0, atol=1e-6)
    assert int(net[1].num_batches_tracked) == 0


# ------------------------------------------------------------------ 7. output selection
def _dict_model(backend: str, **kw: Any) -> advlib.Model:
    inner = _shared(backend)

    def as_dict(x: Any) -> dict[str, Any]:
        return {"logits": inner._forward(x), "features": x}

    return wrap_model(backend, as_dict, **kw)


def _tuple_model(backend: str, **kw: Any) -> advlib.Model:
    inner = _shared(backend)
    return wrap_model(backend, lambda x: (inner._forward(x), x), **kw)


def test_a_misspelled_output_key_lists_the_keys(any_backend: str) -> None:
    model = _dict_model(any_backend, output_key="logit")
    message = (
        r"output_key: 'logit' is not a key .* \['features', 'logits'\]; "
        r"did you mean output_key='logits'"
    )
    with pytest.raises(ValueError, match=message):
        model(native(any_backend, X))
    with pytest.raises(ValueError, match=message):
        advlib.utils.accuracy(model, X, np.zeros(6, dtype=int))
    assert getattr(model, "_compiled_forward", None) is None  # raised before any tracing
    if any_backend != "numpy":
        with pytest.raises(ValueError, match=message):
            attacks.FGSM()(
                _dict_model(any_backend, output_key="logit"), X, np.zeros(6, int), epsilons=0.1
            )
    good = _dict_model(any_backend, output_key="logits")
    np.testing.assert_array_equal(to_numpy(good(X)), to_numpy(_shared(any_backend)(X)))


def test_output_index_out_of_range_says_how_many_outputs(any_backend: str) -> None:
    with pytest.raises(ValueError, match=r"output_index: 5 is out of range, .* tuple of 2 outputs"):
        _tuple_model(any_backend, output_index=5)(X)
    model = _shared(any_backend)
    with pytest.raises(ValueError, match="output_index: the model returned a single"):
        wrap_model(any_backend, model._forward, output_index=0)(X)
    with pytest.raises(ValueError, match="output_key: the model returned a"):
        wrap_model(any_backend, model._forward, output_key="logits")(X)
    np.testing.assert_array_equal(
        to_numpy(_tuple_model(any_backend, output_index=-2)(X)), to_numpy(model(X))
    )


# ------------------------------------------------------------------ 8. user subclasses
ORACLE = LinearOracle(n=8, shape=(20,), classes=5, seed=4)


class UserModel(advlib.Model):
    """Foolbox's minimal contract: a bounds property and __call__, nothing else."""

    def __init__(self, native_results: bool) -> None:
        self.native_results = native_results
        self.seen: set[type] = set()

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def __call__(self, inputs: Any) -> Any:
        x, restore = ep.astensor_(inputs)
        self.seen.add(type(inputs))
        w = ep.from_numpy(x, ORACLE.weights["fc1.w"])
        logits = x.reshape((x.shape[0], -1)).matmul(w) + ep.from_numpy(x, ORACLE.weights["fc1.b"])
        return logits.raw if self.native_results else restore(logits)


def _linear(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(len(batch), -1) @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]


GRADIENT_FREE = [
    attacks.BoundaryAttack(steps=30, seed=0),
    attacks.HopSkipJumpAttack(steps=3, initial_gradient_eval_steps=20, seed=0),
    attacks.LinfSquareAttack(n_queries=40, seed=0),
]


@pytest.mark.numpy
@pytest.mark.parametrize("native_results", [True, False], ids=["native", "eagerpy"])
@pytest.mark.parametrize("attack", GRADIENT_FREE, ids=lambda a: type(a).__name__)
def test_user_model_runs_gradient_free_attacks(attack: advlib.Attack, native_results: bool) -> None:
    model = UserModel(native_results)
    assert isinstance(model, advlib.Model) and isinstance(model, advlib.models.Model)
    eps = 0.3 if attack.norm.name == "linf" else 2.0
    result = attack(model, ORACLE.x, ORACLE.labels, epsilons=eps)
    reference = attack(advlib.NumPyModel(_linear, (0, 1)), ORACLE.x, ORACLE.labels, epsilons=eps)
    assert model.seen == {ep.NumPyTensor}  # attacks call it with EagerPy tensors
    for got, want in zip(result, reference):
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, want)
    assert result.success.any()


@pytest.mark.numpy
def test_user_model_gradient_attacks_and_contract_errors() -> None:
    model = UserModel(native_results=True)
    with pytest.raises(TypeError, match=r"needs gradients.*gradient-free attack"):
        attacks.FGSM()(model, ORACLE.x, ORACLE.labels, epsilons=0.1)
    logits = model(ORACLE.x)  # a native call stays the user's own
    assert type(logits) is np.ndarray
    np.testing.assert_allclose(logits, ORACLE.logits, atol=1e-5)

    class NoCall(advlib.Model):
        bounds = (0.0, 1.0)

    with pytest.raises(TypeError, match="abstract"):
        NoCall()  # type: ignore[abstract]

    class NoBounds(advlib.Model):
        def __call__(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(TypeError, match="NoBounds: define a bounds property"):
        attacks.LinfSquareAttack(n_queries=5)(NoBounds(), ORACLE.x, ORACLE.labels, epsilons=0.1)


@pytest.mark.numpy
def test_user_model_transform_bounds_is_a_wrapper() -> None:
    model = UserModel(native_results=True)
    big = model.transform_bounds((0, 255))
    assert isinstance(big, TransformBoundsWrapper) and big.bounds == (0, 255)
    np.testing.assert_allclose(big(ORACLE.x * 255), ORACLE.logits, atol=1e-4)
    attack = attacks.LinfSquareAttack(n_queries=40, seed=0)
    small = attack(model, ORACLE.x, ORACLE.labels, epsilons=0.3)
    large = attack(big, ORACLE.x * 255, ORACLE.labels, epsilons=0.3 * 255)
    np.testing.assert_allclose(large.clipped / 255, small.clipped, atol=1e-5)


@pytest.mark.torch
def test_user_model_with_torch_inputs_and_numpy_labels() -> None:
    torch = pytest.importorskip("torch")
    model = UserModel(native_results=True)
    x = torch.as_tensor(ORACLE.x)
    _, clipped, success = attacks.LinfSquareAttack(n_queries=40, seed=0)(
        model, x, ORACLE.labels, epsilons=0.3
    )
    assert model.seen == {ep.PyTorchTensor}
    assert isinstance(clipped, torch.Tensor) and isinstance(success, torch.Tensor)
    assert float((clipped - x).abs().max()) <= 0.3 + 1e-6
    predicted = model(clipped).argmax(-1).numpy()
    np.testing.assert_array_equal(success.numpy(), predicted != ORACLE.labels)
