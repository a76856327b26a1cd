"""Constructors declared as data, for attack families whose classes differ only in defaults.

``__init__ = keyword_constructor(steps=10, random_start=False, seed=None)`` gives a class a
constructor that takes exactly these keyword-only arguments, with these defaults, as
``inspect.signature`` and ``help()`` show them (Foolbox's signatures are checked that way), and
hands all of them to ``self._configure(**arguments)``, written once per family, which checks
and stores them. No class repeats its family's constructor to change a default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

#: The default of an argument that has none (the caller must pass it).
REQUIRED: Any = inspect.Parameter.empty


def keyword_constructor(**defaults: Any) -> Callable[..., None]:
    """An ``__init__`` taking the names of ``defaults`` as keyword-only arguments with those
    defaults (``REQUIRED``: none), in that order, that calls ``self._configure`` with every
    argument. A call that does not fit raises TypeError naming the class and its arguments."""
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    keywords = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in defaults.items()
    ]
    signature = inspect.Signature([self_parameter, *keywords])

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as error:
            takes = ", ".join(f"{p.name}=" for p in keywords)
            raise TypeError(
                f"{type(self).__name__}(): {error}; it takes the keyword arguments {takes}"
            ) from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        self._configure(**arguments)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__
