"""Model wrappers. Each framework is one module here that registers its wrapper in
:mod:`advlib.models.registry`; a wrapper's framework is imported only when it is first used.

:func:`wrap` picks the wrapper from the model's type.
"""

import typing as _typing

from . import registry
from .base import Bounds, FrameworkModel, Model, Preprocessing, Restore, TransformBoundsWrapper
from .eot import ExpectationOverTransformationWrapper
from .registry import wrap

if _typing.TYPE_CHECKING:
    from .jax import JAXModel as JAXModel
    from .numpy import NumPyModel as NumPyModel
    from .pytorch import PyTorchModel as PyTorchModel
    from .tensorflow import TensorFlowModel as TensorFlowModel

__all__ = [
    "Bounds",
    "ExpectationOverTransformationWrapper",
    "FrameworkModel",
    "Model",
    "Preprocessing",
    "Restore",
    "TransformBoundsWrapper",
    "registry",
    "wrap",
]
_BASE = tuple(__all__)


def _public() -> list[str]:
    # The wrappers of every registered kind (PyTorchModel, ..., and any added later).
    return sorted({*_BASE, *registry.wrapper_names()})


def __getattr__(name: str) -> _typing.Any:
    kind = registry.wrapper_names().get(name)
    if kind is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return kind.wrapper_class()


def __dir__() -> list[str]:
    # Completion offers the public names, the lazily imported wrappers included.
    return sorted({*_public(), *(n for n in globals() if n.startswith("__") and n.endswith("__"))})


# Last: discovering the framework modules imports them, and they import this package.
__all__ += sorted(set(registry.wrapper_names()) - set(__all__))
