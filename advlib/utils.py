"""Small user-facing helpers."""

from __future__ import annotations

from typing import Any

from .attacks.base import check_inputs, check_outputs
from .criteria.base import bind_classes
from .models.base import Model


def accuracy(model: Model, inputs: Any, labels: Any) -> float:
    """Top-1 accuracy of ``model`` on ``inputs`` (shape (N, ...)) against ``labels`` (N,)."""
    if not isinstance(model, Model):
        raise TypeError(f"model: expected an advlib model wrapper, got {type(model).__name__}")
    x, _ = model.to_tensor(inputs, "inputs", floating=True)
    check_inputs(x, model)
    if x.shape[0] == 0:
        raise ValueError("inputs: accuracy of an empty batch is undefined")
    outputs = model(x)
    check_outputs(outputs, x.shape[0])
    classes = bind_classes(model, labels, outputs, "labels")
    return float((outputs.argmax(axis=-1) == classes).float32().mean().item())
