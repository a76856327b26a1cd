"""JAX models: any pure function of a batch; and the jax backend and kind of the registry. jax
is imported on first use, not with this module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from ._lazy import lazy_import
from .base import FrameworkModel, LossFn, StepFn, check_data_format, read_data_format
from .registry import Backend, Builder, Layers, ModelKind, register_framework, register_kind

if TYPE_CHECKING:
    import jax
    import jax.numpy as jnp
else:
    jax = lazy_import("jax")
    jnp = lazy_import("jax.numpy")

#: Root modules of JAX's array and function types.
_MODULES = ("jax", "jaxlib")


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
        super().__init__(bounds, preprocessing, compile)
        self._keep_model(model, "a function of a batch", output_key, output_index)
        self._data_format = check_data_format(data_format)
        self._device = None if device is None else _checked_device(device)

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


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Callable[[Any], Any]:
    """The reference network (see :mod:`advlib.zoo.architectures`) as a function of a batch of
    channels-first JAX arrays."""
    params = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in weights.items()}

    def forward(x: Any) -> Any:
        for layer in layers:
            if layer[0] == "conv":
                x = (
                    jax.lax.conv_general_dilated(
                        x,
                        params[f"{layer[1]}.w"],
                        (1, 1),
                        "SAME",
                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                    )
                    + params[f"{layer[1]}.b"][None, :, None, None]
                )
            elif layer[0] == "dense":
                x = x @ params[f"{layer[1]}.w"] + params[f"{layer[1]}.b"]
            elif layer[0] == "relu":
                x = jax.nn.relu(x)
            else:
                x = x.reshape((x.shape[0], -1))
        return x

    return forward


# jitted functions and JAX's own callables go to JAXModel; a plain function is ambiguous (wrap)
BACKEND, KIND = register_framework(
    Backend(name="jax", modules=_MODULES, requires="jax", from_numpy=lambda a: jnp.asarray(a)),
    "advlib.models.jax:JAXModel",
    build_cnn,
    order=2,
    wrap_kwargs={"data_format": "channels_first"},
)


def register_jax_kind(
    name: str,
    wrapper: str,
    recognizes: Callable[[Any], bool],
    build: Builder,
    package: str,
    **wrap_kwargs: Any,
) -> ModelKind:
    """Register a kind whose models compute through :class:`JAXModel` (Flax NNX, Equinox):
    it needs ``package`` and jax; its reference CNN takes channels-first inputs, and
    ``wrap_kwargs`` are further wrapper arguments for that CNN."""
    settings = {"data_format": "channels_first", **wrap_kwargs}
    return register_kind(
        ModelKind(name, wrapper, "jax", recognizes, build, (package, "jax"), settings)
    )
