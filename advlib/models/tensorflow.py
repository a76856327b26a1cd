"""TensorFlow / Keras models, and the tensorflow backend and kind of the registry. tensorflow
is imported on first use, not with this module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from ._lazy import lazy_import
from ._tf_functions import FlatFunction
from .base import FrameworkModel, LossFn, StepFn, check_data_format
from .registry import Backend, Layers, register_framework

if TYPE_CHECKING:
    import keras
    import tensorflow as tf
else:
    keras = lazy_import("keras")
    tf = lazy_import("tensorflow")

#: Root modules of TensorFlow's tensor and model types (Keras 2 and 3 included).
_MODULES = ("tensorflow", "keras", "tf_keras")


class TensorFlowModel(FrameworkModel):
    """Wrap a Keras model (or any callable on TF tensors) returning logits.

    ``model(x)`` takes TF tensors, NumPy arrays or EagerPy tensors and returns logits of the
    same type.

    Args:
        model: a ``keras.Model`` (called with ``training=False``) or a callable.
        bounds: ``(lower, upper)`` of valid input values.
        device: a TF device string such as ``"/GPU:0"`` (or a ``tf.DeviceSpec``) that this
            machine has; a ValueError lists the available ones. Default: TF's own placement.
        preprocessing: ``dict(mean=..., std=..., axis=-1, flip_axis=None)`` applied inside the
            forward pass. Default: none.
        compile: run attack steps under ``tf.function`` (default True).
        jit_compile: ask ``tf.function`` for XLA (default False: on CPU convolutions XLA was
            measured 2-8x slower; it helps small MLPs).
        output_key / output_index: pick the logits when the model returns a dict / tuple.
        data_format: ``"channels_first"`` or ``"channels_last"``. Default None: Keras'
            ``image_data_format()``, read when asked (Foolbox's rule).
    """

    framework = "tensorflow"
    immutable_tensors = True
    _eagerpy_type = ep.TensorFlowTensor

    def __init__(
        self,
        model: Any,
        bounds: Any,
        device: str | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool | None = None,
        jit_compile: bool = False,
        output_key: str | None = None,
        output_index: int | None = None,
        data_format: str | None = None,
    ) -> None:
        super().__init__(bounds, preprocessing, compile)
        self._keep_model(model, "a Keras model or callable", output_key, output_index)
        self._device = None if device is None else _checked_device(device)
        self._data_format = check_data_format(data_format)
        self._jit_compile = jit_compile
        self._call = _keras_inference_call(model)

    @property
    def data_format(self) -> str:
        """The given data format, else Keras' ``image_data_format()``."""
        if self._data_format is not None:
            return self._data_format
        return str(tf.keras.backend.image_data_format())

    @property
    def device(self) -> str | None:
        return self._device

    def _default_compile(self) -> bool:
        return True

    @contextlib.contextmanager
    def _placement(self) -> Iterator[None]:
        if self._device is None:
            yield
        else:
            with tf.device(self._device):
                yield

    def _forward(self, raw_inputs: Any) -> Any:
        with self._placement():
            return self._outputs(self._call(raw_inputs))

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        x = inputs.raw
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            loss, aux = loss_fn(ep.astensor(x))
        grad = tape.gradient(loss.raw, x)
        if grad is None:
            grad = tf.zeros_like(x)
        return loss, aux, ep.astensor(grad)

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        raw = t.raw
        if "CPU" not in raw.device:
            return None
        return raw.numpy()  # type: ignore[no-any-return]

    def _raw_compiler(self) -> Callable[[StepFn], StepFn]:
        return lambda fn: FlatFunction(fn, self._jit_compile)

    def _compiles_forward(self) -> bool:
        return True

    def _is_traced(self, raw: Any) -> bool:
        return not tf.executing_eagerly()

    def _from_numpy(self, array: np.ndarray) -> Any:
        with self._placement():
            return tf.convert_to_tensor(array)

    def _model_dtype(self) -> Any:
        dtype = getattr(self._model, "compute_dtype", None) or getattr(self._model, "dtype", None)
        if dtype is None:
            return None
        try:
            return tf.as_dtype(dtype)
        except TypeError:
            return None

    @property
    def _float32(self) -> Any:
        return tf.float32


def _checked_device(device: Any) -> str:
    """``device`` as a TF device string naming a device this machine has, else a ValueError
    listing them."""
    if isinstance(device, tf.DeviceSpec):
        device = device.to_string()
    if not isinstance(device, str):
        raise TypeError(
            f"device: expected a TF device string such as '/GPU:0', got {type(device).__name__}"
        )
    available = tf.config.list_logical_devices()
    try:
        spec = tf.DeviceSpec.from_string(device)
    except ValueError:
        spec = None
    if spec is not None and (
        spec.device_type is None
        or any(_matches(spec, tf.DeviceSpec.from_string(d.name)) for d in available)
    ):
        return device
    raise ValueError(
        f"device: {device!r} is not a device of this machine; available devices: "
        f"{', '.join(d.name for d in available)}"
    )


def _matches(spec: tf.DeviceSpec, device: tf.DeviceSpec) -> bool:
    return bool(
        spec.device_type.upper() == device.device_type.upper()
        and spec.device_index in (None, device.device_index)
    )


def _keras_inference_call(model: Any) -> Callable[[Any], Any]:
    """Call Keras models with ``training=False`` so dropout/batch-norm are in inference mode."""
    if hasattr(model, "trainable_variables") and hasattr(model, "layers"):
        return lambda x: model(x, training=False)
    return model  # type: ignore[no-any-return]


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Any:
    """The reference network (see :mod:`advlib.zoo.architectures`) as a Keras ``Sequential``
    on channels-first inputs (it transposes to channels last around the convolutions)."""

    def channels_last(x: Any) -> Any:
        return keras.ops.transpose(x, (0, 2, 3, 1)) if len(x.shape) == 4 else x

    def channels_first(x: Any) -> Any:
        return keras.ops.transpose(x, (0, 3, 1, 2)) if len(x.shape) == 4 else x

    keras_layers: list[Any] = []
    loaded: list[tuple[Any, list[np.ndarray]]] = []
    image = any(layer[0] == "conv" for layer in layers)
    if image:
        keras_layers.append(keras.layers.Lambda(channels_last))
    for layer in layers:
        if layer[0] in ("conv", "dense"):
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            if layer[0] == "conv":
                native = keras.layers.Conv2D(w.shape[0], w.shape[2], padding="same")
                loaded.append((native, [w.transpose(2, 3, 1, 0), b]))
            else:
                native = keras.layers.Dense(w.shape[1])
                loaded.append((native, [w, b]))
            keras_layers.append(native)
        elif layer[0] == "relu":
            keras_layers.append(keras.layers.ReLU())
        else:
            if image:
                keras_layers.append(keras.layers.Lambda(channels_first))
            keras_layers.append(keras.layers.Flatten())
    model = keras.Sequential(keras_layers)
    model.build((None, *input_shape))
    for native, values in loaded:
        native.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return model


def _to_numpy(raw: Any) -> np.ndarray:
    return np.asarray(raw.numpy() if hasattr(raw, "numpy") else raw)


def _crossentropy_sum(logits: Any, labels: Any) -> Any:
    if labels.dtype not in (tf.int32, tf.int64):
        labels = tf.cast(labels, tf.int64)
    per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return tf.reduce_sum(per_sample)


BACKEND, KIND = register_framework(
    Backend(
        name="tensorflow",
        modules=_MODULES,
        requires="tensorflow",
        to_numpy=_to_numpy,
        from_numpy=lambda array: tf.convert_to_tensor(array),
        fused={"crossentropy_sum": _crossentropy_sum},
    ),
    "advlib.models.tensorflow:TensorFlowModel",
    build_cnn,
    order=1,
    wrap_kwargs={"data_format": "channels_first"},
)
