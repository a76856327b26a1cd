"""NumPy models: a forward function only, for gradient-free attacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import eagerpy as ep
import numpy as np

from .base import FrameworkModel, check_data_format, read_data_format
from .outputs import OutputSelector


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
        if not callable(model):
            raise TypeError(f"model: expected a function of a NumPy batch, got {type(model)}")
        super().__init__(bounds, preprocessing, compile=False)
        self._model = model
        self._data_format = check_data_format(data_format)
        self._outputs = OutputSelector(output_key, output_index)

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
