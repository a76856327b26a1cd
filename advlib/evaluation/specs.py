"""Resolve the ``attacks`` and ``epsilons`` arguments of :func:`advlib.evaluate`, parse attack
specifications such as ``"L2CarliniWagnerAttack(steps=100, binary_search_steps=5)"`` (the
command line's ``--attack`` and ``--attacks-file`` use the same parser), and estimate how many
model calls an attack makes per sample (:func:`estimated_calls`).

A specification is a known attack name, optionally called with keyword arguments whose values
are literals: numbers, strings, True/False/None, lists or tuples of them, and ``inf``. It is
parsed with :mod:`ast`, never evaluated.
"""

from __future__ import annotations

import ast
import copy
import difflib
import inspect
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..attacks.base import ATTACKS, Attack, Repeated
from .counting import Calls

#: What an attack specification may look like, shown in every parsing error.
SPEC_HELP = (
    "expected an attack name, optionally with keyword arguments whose values are literals "
    "(numbers, strings, True/False/None, lists, inf), e.g. LinfPGD or "
    "L2CarliniWagnerAttack(steps=100, binary_search_steps=5)"
)


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


def suggest(name: str, choices: Sequence[str]) -> list[str]:
    """Up to three of ``choices`` that look like ``name``, ignoring case (closest first; only
    the exact match when one differs from ``name`` in case alone)."""
    by_lower: dict[str, str] = {}
    for choice in sorted(choices, key=lambda c: (len(c), c)):
        by_lower.setdefault(choice.lower(), choice)
    if name.lower() in by_lower:
        return [by_lower[name.lower()]]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[c] for c in close]


def unknown_attack(name: str, where: str) -> ValueError:
    """The error for an attack name that is not registered, with "did you mean ..."."""
    names = attack_names()
    close = suggest(name, list(names))
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        short = sorted({display_name(cls) for cls in names.values()})
        hint = f"valid names include {', '.join(short)}"
    return ValueError(f"{where}: unknown attack {name!r}; {hint} (`advlib attacks` lists them all)")


def lookup(name: str, where: str = "attacks") -> type[Attack]:
    """The attack class registered under ``name`` (a class name or an alias)."""
    cls = attack_names().get(name)
    if cls is None:
        raise unknown_attack(name, where)
    return cls


def takes_seed(attack: Attack | type[Attack]) -> bool:
    cls = attack if isinstance(attack, type) else type(attack)
    return "seed" in inspect.signature(cls.__init__).parameters


# ---------------------------------------------------------------------- specifications
@dataclass
class AttackSpec:
    """An attack by name with keyword arguments, not built yet.

    Args:
        name: a name from :func:`attack_names`.
        kwargs: the constructor's keyword arguments (default none).
        label: the attack's row in the report; default None: :attr:`text`.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def text(self) -> str:
        """``Name(key=value, ...)``, or the bare name without arguments."""
        if not self.kwargs:
            return self.name
        args = ", ".join(f"{k}={_literal_text(v)}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"

    def build(self, seed: int | None = None, where: str = "attacks") -> Attack:
        """The attack; ``seed`` is given to attacks that take one unless ``kwargs`` sets it."""
        cls = lookup(self.name, where)
        parameters = inspect.signature(cls.__init__).parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        unknown = [k for k in self.kwargs if k not in parameters or k == "self"]
        if unknown and not open_ended:
            raise TypeError(
                f"{where}: {self.text}: {cls.__name__} has no argument {unknown[0]!r}; "
                f"its signature is {signature_text(cls)}"
            )
        kwargs = dict(self.kwargs)
        if seed is not None and "seed" in parameters and "seed" not in kwargs:
            kwargs["seed"] = seed
        try:
            attack: Attack = cls(**kwargs)
        except (TypeError, ValueError) as error:
            raise type(error)(
                f"{where}: {self.text}: {error}; the signature is {signature_text(cls)}"
            ) from None
        return attack


def parse_attack(text: str, where: str = "attacks") -> AttackSpec:
    """``"Name"`` or ``"Name(key=literal, ...)"`` as an :class:`AttackSpec` (not evaluated:
    parsed with :mod:`ast`). Unknown names raise ValueError with "did you mean ...".

    Args:
        text: the specification.
        where: the argument's name for error messages (default "attacks").
    """
    if not isinstance(text, str):
        raise TypeError(f"{where}: {SPEC_HELP}; got {type(text).__name__}")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"{where}: cannot parse {text!r}: {SPEC_HELP}") from None
    if isinstance(node, ast.Name):
        lookup(node.id, where)
        return AttackSpec(node.id)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"{where}: cannot parse {text!r}: {SPEC_HELP}")
    name = node.func.id
    lookup(name, where)
    if node.args or any(k.arg is None for k in node.keywords):
        raise ValueError(
            f"{where}: {text!r}: give arguments by keyword (steps=100), not by position; "
            + SPEC_HELP
        )
    kwargs = {k.arg: _literal(k.value, text, where) for k in node.keywords if k.arg is not None}
    return AttackSpec(name, kwargs)


def read_attacks_file(path: str | Path) -> list[AttackSpec]:
    """The attacks listed in a JSON file (or YAML, when PyYAML is installed and the file ends
    in ``.yaml`` / ``.yml``): a list of ``{"attack": NAME, "label": optional, key: value, ...}``
    where the other keys are the attack's keyword arguments."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"attacks file {path}: cannot read it: {error.strerror}") from None
    entries = _load_entries(path, text)
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f"attacks file {path}: expected a non-empty list of entries such as "
            '{"attack": "LinfPGD", "steps": 100, "label": "PGD-100"}, '
            f"got {type(entries).__name__}"
        )
    return [_entry(entry, f"attacks file {path}, entry {i}") for i, entry in enumerate(entries)]


def _load_entries(path: Path, text: str) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise ValueError(
                f"attacks file {path}: YAML needs PyYAML (pip install pyyaml); "
                "or write the file as JSON"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"attacks file {path}: not valid YAML: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"attacks file {path}: not valid JSON: {error}") from None


def _entry(entry: Any, where: str) -> AttackSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("attack"), str):
        raise ValueError(
            f'{where}: expected an object with an "attack" name, e.g. '
            f'{{"attack": "LinfPGD", "steps": 100}}, got {entry!r}'
        )
    kwargs = {str(k): v for k, v in entry.items() if k not in ("attack", "label")}
    for key, value in kwargs.items():
        _check_literal(value, f"{where}: {key}")
    label = entry.get("label")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{where}: label must be a string, got {label!r}")
    lookup(entry["attack"], where)
    return AttackSpec(entry["attack"], kwargs, label)


def _literal(node: ast.expr, text: str, where: str) -> Any:
    if isinstance(node, ast.Name) and node.id == "inf":
        return math.inf
    if isinstance(node, ast.List | ast.Tuple):
        values = [_literal(e, text, where) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = _NOT_LITERAL
    if not _is_literal(value):
        raise ValueError(f"{where}: {text!r}: {ast.unparse(node)!r} is not a literal; {SPEC_HELP}")
    return value


_NOT_LITERAL = object()


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list | tuple) and all(_is_literal(v) for v in value)


def _check_literal(value: Any, where: str) -> None:
    if not _is_literal(value):
        raise ValueError(f"{where}: {value!r} is not a literal; {SPEC_HELP}")


def _literal_text(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return "[" + ", ".join(_literal_text(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal_text(v) for v in value) + ("," * (len(value) == 1)) + ")"
    return repr(value)


def signature_text(cls: type[Attack]) -> str:
    """``Name(*, steps=100, ...)``: the constructor's parameters and defaults, no annotations."""
    parameters = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
    ]
    return f"{cls.__name__}{inspect.Signature(parameters)}"


# ---------------------------------------------------------------------- evaluate's arguments
def resolve_attacks(attacks: Any, seed: int | None) -> list[tuple[str, Attack]]:
    """``(label, attack)`` pairs from an attack, a specification string (``"LinfPGD"``,
    ``"LinfPGD(steps=100)"``), an :class:`AttackSpec`, a list of them or a ``{label: ...}``
    mapping. Specifications are built with ``seed`` (unless they set one); an instance whose
    seed is None is copied with ``seed`` (the instance itself is never changed)."""
    if isinstance(attacks, str | Attack | AttackSpec):
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
        if isinstance(value, str):
            value = parse_attack(value)
        if isinstance(value, AttackSpec):
            attack = value.build(seed)
            name = label or value.label or value.text
        else:
            attack = _instance(value, seed)
            name = label or display_name(type(attack))
        taken = {n for n, _ in resolved}
        unique, count = name, 1
        while unique in taken:
            count += 1
            unique = f"{name} #{count}"
        resolved.append((unique, attack))
    return resolved


def _instance(value: Any, seed: int | None) -> Attack:
    if isinstance(value, Repeated):  # its runs' seeds derive from the repeated attack's
        return Repeated(_instance(value.attack, seed), value.times)
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


# ---------------------------------------------------------------------- cost estimates
#: Gradient calls per sample above which a run is called expensive (C&W's defaults: 90,009).
GRADIENT_BUDGET = 5_000
#: Forward passes per sample above which a run is called expensive (Boundary's defaults).
FORWARD_BUDGET = 20_000

# An iterative search's steps: the first of these settings an attack has.
_STEPS = ("steps", "max_iter", "iterations", "n_iter", "nb_iter")
# Settings that rerun the whole search.
_REPEATS = ("restarts", "n_restarts", "num_restarts", "times", "repeats")
# Upper bound on the forward passes of one binary search of a decision-based attack (its
# iterations are capped at 50) plus one step-size search (at most 25 halvings).
_SEARCH_QUERIES = 75


def estimated_calls(attack: Attack, classes: int | None = None) -> Calls | None:
    """An upper estimate of the model calls one run of ``attack`` makes per sample: one
    epsilon for fixed-epsilon attacks, the one unbounded run of minimization attacks.

    Read generically from the attack's settings: the iterations (``steps``; ``n_queries`` for
    query attacks), what reruns them (``restarts``, ``n_restarts``, ``n_target_classes``,
    ``eot_iter``, DeepFool's ``candidates``, and ``binary_search_steps`` when it searches a
    loss constant, i.e. next to ``initial_const`` as in C&W and EAD; FMN's binary search
    only makes forward passes), decision-based query schedules
    (``initial_gradient_eval_steps`` .. ``max_gradient_eval_steps``), and nested attacks
    (``init_attack``, ensembles such as AutoAttack, whose components are summed). Early stops
    (C&W's ``abort_early``, a cascade) only lower the real count.

    Args:
        attack: an attack instance.
        classes: the model's number of outputs, when known; it caps ``n_target_classes`` and
            DeepFool's candidates, and untargeted FAB needs it. Default None: not known.

    Returns:
        ``Calls(forward=..., gradient=...)`` per sample, or None when the attack's settings do
        not say (an unknown loop structure, or a count that needs ``classes``).
    """
    parts = getattr(attack, "attacks", None)
    if callable(parts):  # an ensemble: every component may run
        total = Calls()
        for _, part in parts(classes if classes is not None else 1000):
            estimate = estimated_calls(part, classes)
            if estimate is None:
                return None
            total.add(estimate)
        return total
    own = _own_calls(attack, vars(attack), classes)
    nested = [v for v in vars(attack).values() if isinstance(v, Attack)]
    if own is None and not nested:
        return None
    total = own or Calls()
    for inner in nested:
        estimate = estimated_calls(inner, classes)
        if estimate is None:
            return None
        total.add(estimate, _repeats(vars(attack)) if own is None else 1)
    return total


def _own_calls(attack: Attack, settings: dict[str, Any], classes: int | None) -> Calls | None:
    steps = next((settings[k] for k in _STEPS if isinstance(settings.get(k), int)), None)
    queries = settings.get("n_queries")
    if attack.requires_grad:
        if steps is None:
            return None
        runs = _gradient_runs(settings, classes)
        if runs is None:
            return None
        # One more gradient than steps where an iterative search starts from one (APGD).
        gradient = runs * (steps + (1 if steps > 1 else 0))
        return Calls(forward=gradient + 3, gradient=gradient)
    if isinstance(queries, int):
        return Calls(forward=queries + 3)
    if steps is None:
        return None
    return Calls(forward=_decision_queries(settings, steps) + 3)


def _gradient_runs(settings: dict[str, Any], classes: int | None) -> int | None:
    """How many times the gradient search runs: restarts x targets x EOT x candidates x
    binary search over a constant."""
    runs = _repeats(settings)
    if "n_target_classes" in settings:
        targets = settings["n_target_classes"]
        if targets is None:  # every class (untargeted FAB)
            if classes is None:
                return None
            targets = classes
        elif classes is not None:
            targets = min(targets, classes - 1)
        runs *= max(int(targets), 1)
    if "candidates" in settings:  # DeepFool: one gradient per candidate class but the label
        candidates = settings["candidates"]
        if classes is not None:
            candidates = classes if candidates is None else min(candidates, classes)
        if candidates is None:
            return None
        runs *= max(int(candidates) - 1, 1)
    eot = settings.get("eot_iter")
    if isinstance(eot, int):
        runs *= max(eot, 1)
    search = settings.get("binary_search_steps")
    if isinstance(search, int) and "initial_const" in settings:
        runs *= max(search, 1)
    return runs


def _repeats(settings: dict[str, Any]) -> int:
    runs = 1
    for key in _REPEATS:
        if isinstance(settings.get(key), int):
            runs *= max(settings[key], 1)
    return runs


def _decision_queries(settings: dict[str, Any], steps: int) -> int:
    """Forward passes per sample of a decision-based search: per step its gradient-estimate
    queries (HopSkipJump) or one proposal plus the periodic statistics (Boundary), and the
    binary searches; plus the random starting points."""
    low, high = settings.get("initial_gradient_eval_steps"), settings.get("max_gradient_eval_steps")
    if isinstance(low, int) and isinstance(high, int):
        per_steps = sum(min(int(low * math.sqrt(t)), high) for t in range(1, steps + 1))
        queries = per_steps + steps * _SEARCH_QUERIES
    else:
        every = settings.get("update_stats_every_k")
        queries = steps + (steps // every if isinstance(every, int) and every > 0 else steps)
    trials = settings.get("init_trials")
    return queries + _SEARCH_QUERIES + (trials if isinstance(trials, int) else 0)


def expensive(calls: Calls) -> bool:
    """Whether per-sample calls exceed :data:`GRADIENT_BUDGET` or :data:`FORWARD_BUDGET`."""
    return calls.gradient > GRADIENT_BUDGET or calls.forward > FORWARD_BUDGET


def cheaper(spec: AttackSpec, attack: Attack, classes: int | None = None) -> AttackSpec | None:
    """``spec`` with its iterations (``steps`` or ``n_queries``) cut to the largest of 1, 2, 5,
    10, 20, 50, ... that brings the estimate to a fifth of the budgets, or None when the
    attack has no such setting."""
    settings = vars(attack)
    key = next((k for k in (*_STEPS, "n_queries") if isinstance(settings.get(k), int)), None)
    if key is None:
        return None
    current = settings[key]
    for value in reversed(_nice_numbers(current)):
        trial = copy.copy(attack)
        setattr(trial, key, value)
        estimate = estimated_calls(trial, classes)
        if estimate is None:
            return None
        if 5 * estimate.gradient <= GRADIENT_BUDGET and 5 * estimate.forward <= FORWARD_BUDGET:
            return AttackSpec(spec.name, {**spec.kwargs, key: value}, spec.label)
    return None


def _nice_numbers(below: int) -> list[int]:
    values, scale = [], 1
    while scale < below:
        values += [v for v in (scale, 2 * scale, 5 * scale) if v < below]
        scale *= 10
    return values
