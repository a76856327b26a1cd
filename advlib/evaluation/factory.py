"""Models given as something that builds them: a function, or ``"module:function"``.

Worker processes (``advlib.evaluate(..., engine="ray")``) build their own model once each
from a picklable :class:`ModelFactory`, instead of receiving a model through pickling.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.base import Model


def load_target(target: str) -> Callable[..., Any]:
    """The function named by ``"module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ValueError: for text of another form, a module that cannot be imported (with the
            error its import raised) or a name that is no function of it.
    """
    module_name, sep, function_name = target.rpartition(":")
    if not sep or not module_name or not function_name:
        raise ValueError(f"expected MODULE:FUNCTION (e.g. mymodels:load), got {target!r}")
    try:
        module = _import(module_name, target)
    except ValueError:
        raise
    except Exception as error:  # importing runs the user's code: report any failure
        raise ValueError(
            f"cannot import {module_name!r} from {target!r}: {type(error).__name__}: {error}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"cannot load {target!r}: {module_name} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


def _import(module_name: str, target: str) -> Any:
    if not (module_name.endswith(".py") or os.sep in module_name or "/" in module_name):
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to you load
        return importlib.import_module(module_name)
    path = Path(module_name)
    if not path.is_file():
        raise ValueError(f"cannot load {target!r}: no file {module_name}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {target!r}: {module_name} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    spec.loader.exec_module(module)
    return module


def absolute_target(target: str) -> str:
    """``target`` with a file path made absolute, so other processes find the file."""
    module_name, _, function_name = target.rpartition(":")
    if module_name.endswith(".py") and Path(module_name).is_file():
        return f"{Path(module_name).resolve()}:{function_name}"
    return target


class ModelFactory:
    """Builds the model of an evaluation, in whichever process needs it.

    Args:
        source: an advlib :class:`~advlib.models.Model` (used as it is), a function of no
            arguments returning one, or ``"module:function"`` / ``"file.py:function"`` naming
            such a function. The function may also return ``(model, data)``, as the targets
            of ``advlib evaluate`` do; the data is then ignored.
    """

    def __init__(self, source: Any) -> None:
        if isinstance(source, str):
            load_target(source)  # fail early, in the caller's process
            source = absolute_target(source)
        elif not (isinstance(source, Model) or callable(source)):
            raise TypeError(
                "model: expected an advlib model wrapper, a function returning one or "
                f"'module:function', got {type(source).__name__}"
            )
        self.source = source

    @property
    def name(self) -> str:
        """How reports and results directories name the model: the wrapper's class, or the
        factory's ``module:function``."""
        if isinstance(self.source, str):
            return self.source
        if isinstance(self.source, Model):
            return type(self.source).__name__
        module = getattr(self.source, "__module__", "?")
        return f"{module}:{getattr(self.source, '__qualname__', type(self.source).__name__)}"

    def build(self) -> Model:
        """The model (built now, unless the source is one)."""
        if isinstance(self.source, Model):
            return self.source
        function = load_target(self.source) if isinstance(self.source, str) else self.source
        built = function()
        if isinstance(built, tuple | list) and len(built) == 2:
            built = built[0]
        if not isinstance(built, Model):
            raise TypeError(
                f"model: {self.name} returned a {type(built).__name__}, not an advlib model "
                "wrapper; wrap it, e.g. advlib.PyTorchModel(net.eval(), bounds=(0, 1))"
            )
        return built
