"""The ``norm=`` argument of attacks that exist in several norms.

Users bring the spellings of AutoAttack, torchattacks and RobustBench (``"Linf"``, ``"L2"``,
``ThreatModel.Linf``), of NumPy (``np.inf``, ``2``, ``1``) and of Foolbox (``"linf"``, ``"l2"``);
:func:`parse_norm` reads them all. An attack family declared with :func:`norm_family` is built
for the norm given: ``APGD(norm="L2")`` is an ``L2AutoPGD``, ``HopSkipJumpAttack(constraint=
"linf")`` a ``LinfHopSkipJumpAttack``, and every instance reports its own ``norm``.
"""

from __future__ import annotations

import enum
import inspect
import math
import numbers
from typing import Any, ClassVar

from .base import Attack

_WORDS = {
    "linf": "linf",
    "l_inf": "linf",
    "inf": "linf",
    "l2": "l2",
    "2": "l2",
    "l1": "l1",
    "1": "l1",
}
_SPELLINGS = {
    "linf": "'linf' ('Linf', 'inf', np.inf)",
    "l2": "'l2' ('L2', 2)",
    "l1": "'l1' ('L1', 1)",
}


def parse_norm(
    value: Any, name: str = "norm", accepted: tuple[str, ...] = ("linf", "l2", "l1")
) -> str:
    """The canonical name (``"l1"``, ``"l2"`` or ``"linf"``) of a norm given as a string in any
    case (``"Linf"``, ``"L2"``, ``"inf"``, ``"2"``), a number (``np.inf``, ``float("inf")``,
    ``2``, ``1``), an advlib norm (``advlib.norms.l2``) or an enum whose value is one of these
    (RobustBench's ``ThreatModel``).

    Args:
        value: the norm as the user wrote it.
        name: the argument's name, for the error message (default ``"norm"``).
        accepted: the canonical names allowed here (default all three).

    Raises:
        ValueError: naming the argument and listing the accepted spellings.
    """
    canonical = _canonical(value)
    if canonical is None or canonical not in accepted:
        choices = ", ".join(_SPELLINGS[norm] for norm in accepted)
        raise ValueError(f"{name}: expected one of {choices}, strings in any case; got {value!r}")
    return canonical


def _canonical(value: Any) -> str | None:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return _WORDS.get(value.strip().lower())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        p = float(value)
        if math.isinf(p) and p > 0:
            return "linf"
        return {1.0: "l1", 2.0: "l2"}.get(p)
    name = getattr(value, "name", None)  # an advlib Norm
    return name if isinstance(name, str) and name in _SPELLINGS else None


class NormFamily(Attack):
    """Base of attack classes that form a family, one class per norm, chosen by a constructor
    argument (``_norm_argument``). The family's dispatcher, called with that argument, builds
    the family's class for the norm given; any other member refuses a norm other than its own.
    Declare a family with :func:`norm_family`."""

    #: The constructor argument that names the norm.
    _norm_argument: ClassVar[str] = "norm"
    #: The family, by canonical norm name (set by :func:`norm_family`).
    _family: ClassVar[dict[str, type[NormFamily]]] = {}
    #: The class that chooses the member (set by :func:`norm_family`).
    _dispatcher: ClassVar[type[NormFamily] | None] = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        target: type[NormFamily] = cls
        value = _given(cls, args, kwargs)
        if value is not None and cls._family:
            argument = cls._norm_argument
            name = parse_norm(value, argument, tuple(cls._family))
            if cls is cls._dispatcher:
                target = cls._family[name]
            elif name != cls.norm.name:
                dispatcher = cls._dispatcher.__name__ if cls._dispatcher else cls.__name__
                raise ValueError(
                    f"{argument}: {cls.__name__} attacks in {cls.norm.name}, got "
                    f"{argument}={value!r}; use {dispatcher}({argument}=...) to choose the norm"
                )
        instance = super().__new__(target)
        if not isinstance(instance, cls):  # Python initialises only instances of ``cls``
            target.__init__(instance, *args, **kwargs)
        return instance


def _given(cls: type[NormFamily], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The norm argument if the call passes it explicitly, else None (also for a call that
    does not fit the signature: ``__init__`` then reports it)."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    return bound.arguments.get(cls._norm_argument)


def norm_family(dispatcher: type[NormFamily], *members: type[NormFamily]) -> None:
    """Declare ``dispatcher`` and ``members`` (one class per norm) a family: ``dispatcher``
    called with a norm builds that norm's class."""
    family = {cls.norm.name: cls for cls in (dispatcher, *members)}
    for cls in family.values():
        cls._family = family
        cls._dispatcher = dispatcher
