"""JAX models: any pure function of a batch. Importing this module imports jax."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import eagerpy as ep
import jax
import jax.numpy as jnp
import numpy as np

from .base import FrameworkModel, LossFn, StepFn, check_data_format, read_data_format
from .outputs import OutputSelector


class JAXModel(FrameworkModel):
    """Wrap a pure JAX function ``fn(batch) -> logits``, e.g. ``partial(module.apply, params)``.

    ``model(x)`` takes JAX arrays, NumPy arrays or EagerPy tensors and returns logits of the
    same type.

    Args:
        model: the function; it must be traceable by ``jax.jit`` when ``compile`` is on.
        bounds: ``(lower, upper)`` of valid input values.
        preprocessing: ``dict(mean=..., std=..., axis=-1, flip_axis=None)`` applied inside the
            forward pass. Default: none.
        data_format: ``"channels_last"`` (default), ``"channels_first"`` or None (then reading
            ``data_format`` raises AttributeError); informative, as in Foolbox.
        device: where NumPy inputs are placed: a ``jax.Device``, a sharding, or a string
            ``"platform"`` / ``"platform:index"`` such as ``"gpu"`` or ``"cpu:0"``; a
            ValueError lists the available devices. Default: JAX's default device.
        compile: run attack steps under ``jax.jit`` (default True).
        output_key / output_index: pick the logits when the function returns a dict / tuple.
    """

    framework = "jax"
    immutable_tensors = True
    _eagerpy_type = ep.JAXTensor

    def __init__(
        self,
        model: Callable[[Any], Any],
        bounds: Any,
        preprocessing: Mapping[str, Any] | None = None,
        data_format: str | None = "channels_last",
        device: Any = None,
        compile: bool | None = None,
        output_key: str | None = None,
        output_index: int | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a function of a batch, got {type(model)}")
        super().__init__(bounds, preprocessing, compile)
        self._model = model
        self._data_format = check_data_format(data_format)
        self._device = None if device is None else _checked_device(device)
        self._outputs = OutputSelector(output_key, output_index)

    @property
    def data_format(self) -> str:
        return read_data_format(self, self._data_format)

    def _default_compile(self) -> bool:
        return True

    def _forward(self, raw_inputs: Any) -> Any:
        return self._outputs(self._model(raw_inputs))

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        def raw_loss(x: Any) -> tuple[Any, Any]:
            loss, aux = loss_fn(ep.astensor(x))
            return loss.raw, aux.raw

        (loss, aux), grad = jax.value_and_grad(raw_loss, has_aux=True)(inputs.raw)
        return ep.astensor(loss), ep.astensor(aux), ep.astensor(grad)

    def _device_key(self, raw: Any) -> Any:
        return frozenset(raw.devices())

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        raw = t.raw
        if not all(device.platform == "cpu" for device in raw.devices()):
            return None
        return np.asarray(raw)

    def _raw_compiler(self) -> Callable[[StepFn], StepFn]:
        return jax.jit  # type: ignore[no-any-return]

    def _compiles_forward(self) -> bool:
        return True

    def _is_traced(self, raw: Any) -> bool:
        return isinstance(raw, jax.core.Tracer)

    def _from_numpy(self, array: np.ndarray) -> Any:
        if self._device is not None:
            return jax.device_put(array, self._device)
        return jnp.asarray(array)

    @property
    def _float32(self) -> Any:
        return jnp.float32


def _checked_device(device: Any) -> Any:
    """A ``jax.Device`` (or sharding) as given; a string ``"platform[:index]"`` as the device
    it names. A ValueError lists the available devices when this machine has no such one."""
    if not isinstance(device, str):
        if isinstance(device, jax.Device | jax.sharding.Sharding):
            return device
        raise TypeError(
            "device: expected a jax.Device, a sharding or a string such as 'gpu' or 'cpu:0', "
            f"got {type(device).__name__}"
        )
    platform, _, index = device.partition(":")
    try:
        devices = jax.devices(platform)
        return devices[int(index or 0)]
    except (RuntimeError, ValueError, IndexError):
        raise ValueError(
            f"device: {device!r} is not a device of this machine; available devices: "
            f"{', '.join(_available_devices())}"
        ) from None


def _available_devices() -> list[str]:
    devices = {f"{d.platform}:{d.id}" for d in jax.devices() + jax.devices("cpu")}
    return sorted(devices)
