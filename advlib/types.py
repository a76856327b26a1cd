"""Type names Foolbox users annotate with, as in ``foolbox.types``.

>>> from advlib.types import Bounds, L2
>>> bounds = Bounds(0, 1)           # a NamedTuple (lower, upper); model.bounds is one
>>> epsilon = L2(0.5)               # a float at run time, an L2 budget to a type checker
"""

from typing import Any as _Any
from typing import NewType as _NewType

from .models.base import Bounds

#: What a ``bounds=`` argument accepts: a :class:`Bounds` or any ``(lower, upper)`` pair.
BoundsInput = Bounds | tuple[float, float]

#: Epsilons tagged with their norm (plain floats at run time).
L0 = _NewType("L0", float)
L1 = _NewType("L1", float)
L2 = _NewType("L2", float)
Linf = _NewType("Linf", float)

#: What a ``preprocessing=`` argument accepts: None or ``dict(mean=, std=, axis=, flip_axis=)``.
Preprocessing = dict[str, _Any] | None

__all__ = ["L0", "L1", "L2", "Bounds", "BoundsInput", "Linf", "Preprocessing"]
