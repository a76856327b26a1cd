"""Framework modules imported on first use.

Every module of :mod:`advlib.models` is imported by :func:`advlib.models.registry.discover`,
so none may import its framework at import time: ``torch = lazy_import("torch")`` binds a proxy
that imports the real module on its first attribute access. Modules keep
``if TYPE_CHECKING: import torch`` so mypy sees the real module.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module ``name`` and imports it on the first attribute access.

    The proxy is never put in ``sys.modules`` (so ``"torch" in sys.modules`` still says
    whether torch was imported). Attributes read through it are kept on the proxy, so later
    reads are plain attribute lookups: these run in every attack step.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name, f"{name}, imported on first use")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # copy, pickle and inspect probe dunders
            raise AttributeError(attribute)
        value = getattr(importlib.import_module(self.__name__), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<lazily imported module {self.__name__!r}>"


def lazy_import(name: str) -> Any:
    """A proxy for the module ``name`` (``"torch"``, ``"jax.numpy"``) that imports it when one
    of its attributes is first read."""
    return LazyModule(name)
