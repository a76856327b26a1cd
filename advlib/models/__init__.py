"""Model wrappers. Each framework's wrapper is imported only when it is first used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Bounds, FrameworkModel, Model, Preprocessing, Restore, TransformBoundsWrapper

if TYPE_CHECKING:
    from .jax import JAXModel
    from .numpy import NumPyModel
    from .pytorch import PyTorchModel
    from .tensorflow import TensorFlowModel

_LAZY = {
    "PyTorchModel": ".pytorch",
    "TensorFlowModel": ".tensorflow",
    "JAXModel": ".jax",
    "NumPyModel": ".numpy",
}

__all__ = [
    "Bounds",
    "FrameworkModel",
    "JAXModel",
    "Model",
    "NumPyModel",
    "Preprocessing",
    "PyTorchModel",
    "Restore",
    "TensorFlowModel",
    "TransformBoundsWrapper",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
