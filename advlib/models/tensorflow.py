"""TensorFlow / Keras models. Importing this module imports tensorflow."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import eagerpy as ep
import numpy as np
import tensorflow as tf

from ._tf_functions import FlatFunction
from .base import FrameworkModel, LossFn, StepFn, check_data_format
from .outputs import OutputSelector


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
        if not callable(model):
            raise TypeError(f"model: expected a Keras model or callable, got {type(model)}")
        super().__init__(bounds, preprocessing, compile)
        self._model = model
        self._device = None if device is None else _checked_device(device)
        self._data_format = check_data_format(data_format)
        self._jit_compile = jit_compile
        self._outputs = OutputSelector(output_key, output_index)
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
