"""Model wrappers. Each framework's wrapper is imported only when it is first used."""

import importlib as _importlib
import typing as _typing

from .base import Bounds, FrameworkModel, Model, Preprocessing, Restore, TransformBoundsWrapper

if _typing.TYPE_CHECKING:
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


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # Completion offers the public names, the lazily imported wrappers included.
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})
