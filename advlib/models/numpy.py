"""NumPy models: a forward function only, for gradient-free attacks; and the numpy backend and
kind of the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import eagerpy as ep
import numpy as np

from .base import FrameworkModel, check_data_format, read_data_format
from .registry import Backend, Layers, register_framework


class NumPyModel(FrameworkModel):
    """Wrap ``fn(np.ndarray) -> np.ndarray`` of logits. Provides no gradients.

    ``model(x)`` takes NumPy arrays, tensors of any framework (copied to NumPy, as in
    Foolbox) or EagerPy tensors and returns logits of the same type; so do attacks.

    Args:
        model: the function, called on a float batch.
        bounds: ``(lower, upper)`` of valid input values.
        data_format: ``"channels_first"``, ``"channels_last"`` or None (default: then reading
            ``data_format`` raises AttributeError); informative.
        preprocessing: ``dict(mean=..., std=..., axis=..., flip_axis=None)``. Default: none.
        output_key / output_index: pick the logits when the function returns a dict / tuple.
    """

    framework = "numpy"
    has_gradients = False
    _eagerpy_type = ep.NumPyTensor
    _converts_foreign = True

    def __init__(
        self,
        model: Callable[[np.ndarray], Any],
        bounds: Any,
        data_format: str | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        output_key: str | None = None,
        output_index: int | None = None,
    ) -> None:
        super().__init__(bounds, preprocessing, compile=False)
        self._keep_model(model, "a function of a NumPy batch", output_key, output_index)
        self._data_format = check_data_format(data_format)

    @property
    def data_format(self) -> str:
        return read_data_format(self, self._data_format)

    def _forward(self, raw_inputs: Any) -> Any:
        return np.asarray(self._outputs(self._model(raw_inputs)))

    def _from_numpy(self, array: np.ndarray) -> Any:
        return array

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        return np.asarray(t.raw)

    @property
    def _float32(self) -> Any:
        return np.float32


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Callable[[np.ndarray], np.ndarray]:
    """The reference network (see :mod:`advlib.zoo.architectures`) as a function of a
    channels-first NumPy batch: the reference every other kind's builder is tested against."""
    params = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    def forward(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        for layer in layers:
            if layer[0] == "conv":
                x = (
                    _conv2d_same(x, params[f"{layer[1]}.w"])
                    + params[f"{layer[1]}.b"][None, :, None, None]
                )
            elif layer[0] == "dense":
                x = x @ params[f"{layer[1]}.w"] + params[f"{layer[1]}.b"]
            elif layer[0] == "relu":
                x = np.maximum(x, 0)
            else:
                x = x.reshape(x.shape[0], -1)
        return x

    return forward


def _conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero padding, NCHW inputs and OIHW weights."""
    k = w.shape[2]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, width = x.shape[2], x.shape[3]
    out = np.zeros((x.shape[0], w.shape[0], h, width), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            patch = padded[:, :, i : i + h, j : j + width]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j], optimize=True)
    return out


BACKEND, KIND = register_framework(
    Backend(name="numpy", modules=("numpy",), requires="numpy", gradients=False),
    "advlib.models.numpy:NumPyModel",
    build_cnn,
    order=3,
    # a NumPy model is a plain function, which advlib.wrap cannot tell from others
    recognizes=lambda model: False,
    wrap_kwargs={"data_format": "channels_first"},
)
