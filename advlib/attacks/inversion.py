"""Minimization attacks measured in a distance the user chooses, and the inversion attack.

:class:`FlexibleDistanceMinimizationAttack` is Foolbox's base of the gradient-free corruption
attacks (inversion, contrast and blur searches): they look for their own kind of change, and
``distance`` only says how ``epsilons`` are measured. Without a distance they still run with
``epsilons=None`` (and ``run``); a numeric epsilon then raises a ValueError, as in Foolbox.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model
from ..norms import NORMS, Norm, l2
from ._minimization import Minimizer, Problem
from ._signatures import keyword_constructor
from .base import MinimizationAttack, Outcome, Piece

# Whether every sample was fooled is read every this many candidates (a host sync).
_CHECK_EVERY = 10
_NORM_NAMES = {0.0: "l0", 1.0: "l1", 2.0: "l2", math.inf: "linf"}


def norm_of_distance(distance: Any) -> Norm | None:
    """The norm of a distance (``advlib.distances.l2`` and the like; Foolbox's distances
    too), None for None, else a ValueError."""
    if distance is None:
        return None
    p = getattr(distance, "p", None)
    name = None
    if isinstance(p, numbers.Real) and not isinstance(p, bool):
        name = _NORM_NAMES.get(float(p))
    if name is None:
        raise ValueError(
            f"distance: expected advlib.distances.l0, l1, l2 or linf (or None), got {distance!r}"
        )
    return NORMS[name]


def keep_first(
    model: Model,
    criterion: Criterion,
    inputs: ep.Tensor,
    count: int,
    candidate: Callable[[int], ep.Tensor],
    found: ep.Tensor | None = None,
) -> ep.Tensor:
    """Per sample, the first of ``candidate(0)``, ..., ``candidate(count - 1)`` that is
    adversarial, else the input; stops once every sample is fooled. ``found``: samples that
    need no candidate (default None: those adversarial already)."""
    result = inputs
    found = criterion(inputs, model(inputs)) if found is None else found
    for step in progress.steps(count):
        if step % _CHECK_EVERY == 0 and bool(found.all().item()):
            break
        point = candidate(step)
        fooled = criterion(point, model(point))
        new = ep.logical_and(fooled, ep.logical_not(found))
        result = ep.where(atleast_kd(new, inputs.ndim), point, result)
        found = ep.logical_or(found, fooled)
    return result


class _FlexibleDistance(MinimizationAttack):
    """A gradient-free minimization attack whose epsilons are measured in ``distance``.

    Args:
        distance: how perturbations are measured: ``advlib.distances.l0``, ``l1``, ``l2`` or
            ``linf``. Default None: none, so only ``epsilons=None`` (and ``run``) work;
            reading :attr:`distance` or passing a numeric epsilon raises a ValueError.
    """

    requires_grad = False
    #: The norm until a distance is given (instances with a distance use its norm).
    norm = l2

    def _set_distance(self, distance: Any) -> None:
        norm = norm_of_distance(distance)
        self._distance = distance
        if norm is not None:  # per instance, as Repeated sets it: the class keeps its default
            vars(self)["norm"] = norm

    @property
    def distance(self) -> Any:
        """The distance given to the constructor; a ValueError when none was."""
        if self._distance is None:
            raise ValueError(self._no_distance())
        return self._distance

    def _no_distance(self) -> str:
        return (
            f"distance: {self._name()} was created without a distance; pass "
            f"distance=advlib.distances.l2 (or l0, l1, linf) to {self._name()}(...) to "
            "measure numeric epsilons, or call it with epsilons=None"
        )

    def _attack_all(self, piece: Piece, epsilons: list[float | None]) -> Outcome:
        if self._distance is None and any(eps is not None for eps in epsilons):
            raise ValueError(self._no_distance())
        return super()._attack_all(piece, epsilons)


#: Foolbox's name of the base (its ``foolbox.attacks.base.FlexibleDistanceMinimizationAttack``);
#: the class itself starts with "_" so that it is not registered as an attack.
FlexibleDistanceMinimizationAttack = _FlexibleDistance


class _FlexibleMinimizer(Minimizer, _FlexibleDistance):
    """A flexible-distance attack whose ``perturb`` hands the call to :meth:`_minimize` as one
    :class:`Problem` (``early_stop`` is not used)."""


class InversionAttack(_FlexibleMinimizer):
    """The "negative image": ``lower + upper - x`` for the model's bounds (Hosseini et al.,
    2017). Deterministic; one model call per judged epsilon.

    Args:
        distance: how epsilons are measured (see :class:`FlexibleDistanceMinimizationAttack`);
            default None.
    """

    __init__ = keyword_constructor(distance=None)

    def _configure(self, *, distance: Any) -> None:
        self._set_distance(distance)

    def _minimize(self, problem: Problem) -> ep.Tensor:
        lower, upper = problem.model.bounds
        inverted: ep.Tensor = (lower + upper) - problem.inputs
        return inverted.clip(lower, upper)
