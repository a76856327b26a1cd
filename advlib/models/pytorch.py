"""PyTorch models, and the torch backend and kind of the registry. torch is imported on first
use, not with this module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from .._warnings import warn_user
from ._lazy import lazy_import
from .base import FrameworkModel, LossFn, StepFn
from .registry import Backend, Layers, register_framework

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch")
    F = lazy_import("torch.nn.functional")


class PyTorchModel(FrameworkModel):
    """Wrap a ``torch.nn.Module`` (or any callable on torch tensors) returning logits.

    ``model(x)`` takes torch tensors, NumPy arrays or EagerPy tensors and returns logits of
    the same type; autograd records the call only when ``x`` requires gradients.

    Args:
        model: the network, in eval mode. In training mode (a warning is raised) its
            forward passes run on copies of its buffers: batch-norm statistics are used as
            in training but never updated.
        bounds: ``(lower, upper)`` of valid input values, e.g. ``(0, 1)``.
        device: where NumPy inputs are placed (a ``torch.device`` or a string such as
            ``"cuda:0"``; a ValueError lists the available ones). Default: the device of the
            model's first parameter or buffer, else the CPU. Torch inputs always stay on
            their own device; the model is never moved.
        preprocessing: ``dict(mean=..., std=..., axis=-3, flip_axis=None)`` applied inside the
            forward pass. Default: none.
        compile: run attack steps through ``torch.compile`` (opt-in, default False: eager).
        output_key / output_index: pick the logits when the model returns a dict / tuple.
    """

    framework = "torch"
    data_format = "channels_first"
    _eagerpy_type = ep.PyTorchTensor

    def __init__(
        self,
        model: Any,
        bounds: Any,
        device: Any = None,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool | None = None,
        output_key: str | None = None,
        output_index: int | None = None,
    ) -> None:
        super().__init__(bounds, preprocessing, compile)
        self._keep_model(model, "a torch.nn.Module or callable", output_key, output_index)
        self._device = _checked_device(device) if device is not None else _device_of(model)
        self._dtype = _dtype_of(model)
        self._constants: dict[tuple[int, str, str], ep.Tensor] = {}
        # Modules that own buffers: in training mode they may update them (batch norm).
        self._stateful = _modules_with_buffers(model)
        if getattr(model, "training", False):
            warn_user(
                "PyTorchModel: the module is in training mode (dropout and batch-norm "
                "statistics change the outputs); call model.eval() before attacking it"
            )

    @property
    def device(self) -> torch.device:
        return self._device

    def _forward(self, raw_inputs: Any) -> Any:
        if self._stateful and any(module.training for module in self._stateful):
            # Batch-norm layers update their running statistics in place in training
            # mode: they update copies instead, and the model's buffers stay as they are.
            buffers = {name: b.clone() for name, b in self._model.named_buffers()}
            outputs = torch.func.functional_call(self._model, buffers, (raw_inputs,))
        else:
            outputs = self._model(raw_inputs)
        return self._outputs(outputs)

    def __call__(self, inputs: Any) -> Any:
        if isinstance(inputs, ep.PyTorchTensor) and not (
            torch.is_grad_enabled() and inputs.raw.requires_grad
        ):
            with torch.no_grad():
                return super().__call__(inputs)
        return super().__call__(inputs)

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        with torch.enable_grad():
            x = inputs.raw.detach().requires_grad_(True)
            loss, aux = loss_fn(ep.astensor(x))
            (grad,) = torch.autograd.grad(loss.raw, x, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(x)
        return ep.astensor(loss.raw.detach()), ep.astensor(aux.raw.detach()), ep.astensor(grad)

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        raw = t.raw
        if raw.device.type != "cpu":
            return None
        try:
            return raw.detach().numpy()  # type: ignore[no-any-return]
        except TypeError:  # bfloat16 has no NumPy dtype
            return None

    def _raw_compiler(self) -> Callable[[StepFn], StepFn]:
        return lambda fn: torch.compile(fn, dynamic=False)  # type: ignore[no-any-return]

    def _from_numpy(self, array: np.ndarray) -> Any:
        return torch.as_tensor(array, device=self._device)

    def _prepare_native(self, raw: Any) -> Any:
        return raw.detach()

    def _model_dtype(self) -> Any:
        return self._dtype

    @property
    def _float32(self) -> Any:
        return torch.float32

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self._constants = {}

    def _constant(self, like: ep.Tensor, array: np.ndarray) -> ep.Tensor:
        raw = like.raw
        key = (id(array), str(raw.device), str(raw.dtype))
        if key not in self._constants:
            self._constants[key] = ep.astensor(
                torch.as_tensor(array, dtype=raw.dtype, device=raw.device)
            )
        return self._constants[key]


def _checked_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` this machine has, else a ValueError listing them."""
    try:
        parsed = torch.device(device)
        torch.empty(0, device=parsed)
    except (RuntimeError, AssertionError, NotImplementedError, TypeError) as error:
        raise ValueError(
            f"device: {device!r} is not available here ({error}); available devices: "
            f"{', '.join(_available_devices())}"
        ) from None
    return parsed


def _available_devices() -> list[str]:
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _modules_with_buffers(model: Any) -> tuple[torch.nn.Module, ...]:
    if not isinstance(model, torch.nn.Module):
        return ()
    return tuple(m for m in model.modules() if any(True for _ in m.buffers(recurse=False)))


def _device_of(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for tensor in list(model.parameters()) + list(model.buffers()):
            return tensor.device
    return torch.device("cpu")


def _dtype_of(model: Any) -> Any:
    if isinstance(model, torch.nn.Module):
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Any:
    """The reference network (see :mod:`advlib.zoo.architectures`) as a ``torch.nn.Sequential``
    in eval mode."""
    modules: list[Any] = []
    for layer in layers:
        if layer[0] == "conv":
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
            conv.weight.data = torch.as_tensor(w, dtype=torch.float32).clone()
            conv.bias.data = torch.as_tensor(b, dtype=torch.float32).clone()  # type: ignore[union-attr]
            modules.append(conv)
        elif layer[0] == "dense":
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            dense = torch.nn.Linear(w.shape[0], w.shape[1])
            dense.weight.data = torch.as_tensor(w.T, dtype=torch.float32).clone()
            dense.bias.data = torch.as_tensor(b, dtype=torch.float32).clone()
            modules.append(dense)
        elif layer[0] == "relu":
            modules.append(torch.nn.ReLU())
        else:
            modules.append(torch.nn.Flatten())
    return torch.nn.Sequential(*modules).eval()


def _to_numpy(raw: Any) -> np.ndarray:
    return np.asarray(raw.detach().cpu().numpy())


def _l2_rows(flat: Any) -> Any:
    return torch.linalg.vector_norm(flat, dim=-1)


def _clip_between(raw: Any, lower: Any, upper: Any) -> Any:
    return torch.clamp(raw, lower, upper)


def _crossentropy_sum(logits: Any, labels: Any) -> Any:
    return F.cross_entropy(logits, labels.long(), reduction="sum")


BACKEND, KIND = register_framework(
    Backend(
        name="torch",
        modules=("torch",),
        requires="torch",
        to_numpy=_to_numpy,
        from_numpy=lambda array: torch.as_tensor(array),
        fused={
            "l2_rows": _l2_rows,
            "clip_between": _clip_between,
            "crossentropy_sum": _crossentropy_sum,
        },
    ),
    "advlib.models.pytorch:PyTorchModel",
    build_cnn,
    order=0,
)
