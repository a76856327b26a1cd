"""Resolve the ``attacks`` and ``epsilons`` arguments of :func:`advlib.evaluate`."""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ..attacks.base import ATTACKS, Attack


def attack_names() -> dict[str, type[Attack]]:
    """Every name an attack can be given by: the registry's class names and the short aliases
    exported by :mod:`advlib.attacks` (``FGSM``, ``LinfPGD``, ...)."""
    from .. import attacks as module

    names: dict[str, type[Attack]] = dict(ATTACKS)
    registered = set(ATTACKS.values())
    for name, value in vars(module).items():
        if isinstance(value, type) and value in registered and name not in names:
            names[name] = value
    return names


def display_name(cls: type[Attack]) -> str:
    """The shortest name :mod:`advlib.attacks` exports the class under (``LinfPGD`` -> ``PGD``,
    ``LinfFastGradientAttack`` -> ``FGSM``), for readable tables."""
    names = [name for name, value in attack_names().items() if value is cls]
    return min(names, key=lambda name: (len(name), name)) if names else cls.__name__


def takes_seed(attack: Attack | type[Attack]) -> bool:
    cls = attack if isinstance(attack, type) else type(attack)
    return "seed" in inspect.signature(cls.__init__).parameters


def resolve_attacks(attacks: Any, seed: int | None) -> list[tuple[str, Attack]]:
    """``(label, attack)`` pairs from a name, an instance, a list of them or a ``{label: ...}``
    mapping. Named attacks are built with their defaults and ``seed``; an instance whose seed is
    None is copied with ``seed`` (the instance itself is never changed)."""
    if isinstance(attacks, str | Attack):
        items: list[tuple[str | None, Any]] = [(None, attacks)]
    elif isinstance(attacks, Mapping):
        items = [(str(label), value) for label, value in attacks.items()]
    elif isinstance(attacks, Sequence):
        items = [(None, value) for value in attacks]
    else:
        raise TypeError(
            "attacks: expected an attack, an attack name, a list of them or a {label: attack} "
            f"dict, got {type(attacks).__name__}"
        )
    if not items:
        raise ValueError("attacks: expected at least one attack, got none")
    resolved: list[tuple[str, Attack]] = []
    for label, value in items:
        attack = _attack(value, seed)
        name = label or (value if isinstance(value, str) else display_name(type(attack)))
        taken = {n for n, _ in resolved}
        unique, count = name, 1
        while unique in taken:
            count += 1
            unique = f"{name} #{count}"
        resolved.append((unique, attack))
    return resolved


def _attack(value: Any, seed: int | None) -> Attack:
    if isinstance(value, str):
        names = attack_names()
        if value not in names:
            raise ValueError(
                f"attacks: unknown attack {value!r}; valid names: {', '.join(sorted(names))}"
            )
        cls = names[value]
        kwargs = {"seed": seed} if seed is not None and takes_seed(cls) else {}
        attack: Attack = cls(**kwargs)
        return attack
    if isinstance(value, Attack):
        instance: Attack = value
        if seed is not None and instance.seed is None and takes_seed(instance):
            instance = copy.copy(instance)
            instance.seed = seed
        return instance
    if isinstance(value, type) and issubclass(value, Attack):
        raise TypeError(
            f"attacks: got the class {value.__name__}; pass an instance, e.g. {value.__name__}()"
        )
    raise TypeError(f"attacks: expected an Attack or an attack name, got {type(value).__name__}")


def resolve_epsilons(epsilons: Any, attacks: list[tuple[str, Attack]]) -> dict[str, list[float]]:
    """The sorted epsilon grid of each norm the attacks use.

    ``epsilons`` is one number or a list (shared by all attacks, which must then all use one
    norm), or a ``{norm: list}`` dict such as ``{"linf": [0, 0.03], "l2": [0, 0.5]}``.
    """
    norms = list(dict.fromkeys(attack.norm.name for _, attack in attacks))
    if isinstance(epsilons, Mapping):
        unknown = set(epsilons) - set(norms)
        missing = [n for n in norms if n not in epsilons]
        if unknown or missing:
            raise ValueError(
                f"epsilons: expected one grid per norm of the attacks ({', '.join(norms)}); "
                + (f"missing {missing}" if missing else f"unused {sorted(unknown)}")
            )
        return {norm: _grid(epsilons[norm], f"epsilons[{norm!r}]") for norm in norms}
    if len(norms) > 1:
        raise ValueError(
            f"epsilons: the attacks use different norms ({', '.join(norms)}), so one list of "
            "epsilons cannot fit all; pass a dict with one list per norm, e.g. "
            + "{"
            + ", ".join(f"{n!r}: [...]" for n in norms)
            + "}"
        )
    return {norms[0]: _grid(epsilons, "epsilons")}


def _grid(values: Any, name: str) -> list[float]:
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str | bytes):
        raise TypeError(f"{name}: expected a number or a list of numbers, got {values!r}")
    if not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise TypeError(
                f"{name}: expected a number or a list of numbers, got {values!r}"
            ) from None
    if len(values) == 0:
        raise ValueError(f"{name}: expected at least one epsilon, got an empty list")
    grid = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected numbers, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{name}: expected finite numbers >= 0, got {number}")
        grid.append(number)
    return sorted(set(grid))
