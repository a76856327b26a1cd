"""Pieces every minimization attack shares: the perturb call as one :class:`Problem`, keeping
the best adversarial per sample on the device, early-stop bookkeeping and argument checks."""

from __future__ import annotations

import numbers
from abc import abstractmethod
from collections.abc import Hashable
from typing import Any, NamedTuple

import eagerpy as ep

from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import Norm
from .base import MinimizationAttack

# The keep-best step closes over nothing, so one compiled copy per model serves every attack.
_KEEP_BEST_KEY: Hashable = ("advlib.attacks._minimization", "keep_best")


class Problem(NamedTuple):
    """One call of a minimization attack's ``perturb``."""

    model: Model
    inputs: ep.Tensor
    criterion: Criterion
    #: A sample may stop once adversarial within this distance (None: never).
    early_stop: float | None


class Minimizer(MinimizationAttack):
    """A minimization attack whose ``perturb`` takes no further keywords: it hands the call
    to :meth:`_minimize` as one :class:`Problem`."""

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        return self._minimize(Problem(model, inputs, criterion, early_stop))

    @abstractmethod
    def _minimize(self, problem: Problem) -> ep.Tensor:
        """The smallest adversarials found (the inputs where none was)."""


class Best(NamedTuple):
    """The smallest adversarial found so far per sample, as a compiled step's state."""

    x: ep.Tensor  # the point (the input where none was found)
    size: ep.Tensor  # its size, inf where none was found
    found: ep.Tensor  # whether any candidate was adversarial (since the last reset)


def best_init(inputs: ep.Tensor) -> Best:
    """Nothing found yet: the inputs, of infinite size."""
    n = inputs.shape[0]
    return Best(inputs, ep.full(inputs, (n,), float("inf")), ep.zeros(inputs, (n,)).bool())


def dual(norm: Norm) -> Norm:
    """The dual norm: the distance to a hyperplane with normal ``w`` in ``norm`` is
    ``|offset| / dual(norm)(w)``."""
    return norm.dual


def keep_best(
    best: Best, candidate: ep.Tensor, size: ep.Tensor, is_adv: ep.Tensor, active: ep.Tensor
) -> Best:
    """Replace ``best`` where ``candidate`` is adversarial and strictly smaller.

    ``found`` accumulates whether any candidate was adversarial; samples that are not
    ``active`` (stopped early) keep everything.
    """
    is_adv = ep.logical_and(is_adv, active)
    better = ep.logical_and(is_adv, size < best.size)
    x = ep.where(atleast_kd(better, best.x.ndim), candidate, best.x)
    return Best(x, ep.where(better, size, best.size), ep.logical_or(best.found, is_adv))


def compiled_keep_best(model: Model) -> StepFn:
    """:func:`keep_best`, compiled once per model."""
    return model.compiled(_KEEP_BEST_KEY, lambda: keep_best)


def still_active(active: ep.Tensor, best_size: ep.Tensor, early_stop: float | None) -> ep.Tensor:
    """Samples to keep optimising: not yet adversarial within ``early_stop``."""
    if early_stop is None:
        return active
    return ep.logical_and(active, best_size > early_stop)


def stalled(losses: ep.Tensor, previous: ep.Tensor, active: ep.Tensor) -> bool:
    """The reference early abort of C&W and EAD: the total loss of the running samples fell by
    less than 0.01% since the last check (one device-to-host transfer)."""
    mask = active.astype(losses.dtype)
    totals = ep.stack([(losses * mask).sum(), (previous * mask).sum()]).numpy()
    return not totals[0] <= 0.9999 * totals[1]


def any_active(active: ep.Tensor) -> bool:
    """Whether any sample still runs (one device-to-host transfer: call it rarely)."""
    return bool(active.any().item())


def freeze(active: ep.Tensor, new: ep.Tensor, old: ep.Tensor) -> ep.Tensor:
    """``new`` for active samples, ``old`` for samples that stopped."""
    return ep.where(atleast_kd(active, new.ndim), new, old)


# ---------------------------------------------------------------------- argument checks
def check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_float(value: Any, name: str, *, positive: bool = True) -> float:
    valid = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if valid:
        valid = value > 0 if positive else value >= 0
    if not valid or not float(value) < float("inf"):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return float(value)


def check_fraction(value: Any, name: str) -> float:
    """A number strictly between 0 and 1."""
    checked = check_float(value, name)
    if not checked < 1:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return checked


def check_init_attack(init_attack: Any, example: str) -> MinimizationAttack | None:
    """A minimization attack giving starting points, or None; ``example`` names one in the
    message."""
    if init_attack is not None and not isinstance(init_attack, MinimizationAttack):
        raise TypeError(
            f"init_attack: expected a minimization attack (e.g. {example}) or None, got "
            f"{type(init_attack).__name__}"
        )
    return init_attack


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def check_seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"seed: expected an int or None, got {value!r}")
    return None if value is None else int(value)
