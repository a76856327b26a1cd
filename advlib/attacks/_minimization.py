"""Pieces every minimization attack shares: keeping the best adversarial per sample on the
device, early-stop bookkeeping, dual norms and argument checks."""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from typing import Any

import eagerpy as ep

from .._tensors import atleast_kd
from ..models.base import Model, StepFn
from ..norms import Norm, l1, l2, linf

_DUALS: dict[str, Norm] = {"l1": linf, "l2": l2, "linf": l1}

# The keep-best step closes over nothing, so one compiled copy per model serves every attack.
_KEEP_BEST_KEY: Hashable = ("advlib.attacks._minimization", "keep_best")


def dual(norm: Norm) -> Norm:
    """The dual norm: the distance to a hyperplane with normal ``w`` in ``norm`` is
    ``|offset| / dual(norm)(w)``."""
    return _DUALS[norm.name]


def keep_best(
    best: ep.Tensor,
    best_size: ep.Tensor,
    found: ep.Tensor,
    candidate: ep.Tensor,
    size: ep.Tensor,
    is_adv: ep.Tensor,
    active: ep.Tensor,
) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
    """Replace ``best`` where ``candidate`` is adversarial and strictly smaller.

    ``found`` accumulates whether any candidate was adversarial; samples that are not
    ``active`` (stopped early) keep everything.
    """
    is_adv = ep.logical_and(is_adv, active)
    better = ep.logical_and(is_adv, size < best_size)
    best = ep.where(atleast_kd(better, best.ndim), candidate, best)
    return best, ep.where(better, size, best_size), ep.logical_or(found, is_adv)


def compiled_keep_best(model: Model) -> StepFn:
    """:func:`keep_best`, compiled once per model."""
    return model.compiled(_KEEP_BEST_KEY, lambda: keep_best)


def still_active(active: ep.Tensor, best_size: ep.Tensor, early_stop: float | None) -> ep.Tensor:
    """Samples to keep optimising: not yet adversarial within ``early_stop``."""
    if early_stop is None:
        return active
    return ep.logical_and(active, best_size > early_stop)


def bisect_constants(
    found: ep.Tensor, consts: ep.Tensor, lower: ep.Tensor, upper: ep.Tensor
) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
    """One round of the per-sample search over the loss constant of C&W and EAD.

    A constant that produced an adversarial becomes the upper bound, one that did not the lower
    bound; the next constant is their midpoint, or ten times larger while no upper bound exists.
    Returns ``(consts, lower, upper)``.
    """
    upper = ep.where(found, consts, upper)
    lower = ep.where(found, lower, consts)
    consts = ep.where(ep.isinf(upper), consts * 10, (lower + upper) / 2)
    return consts, lower, upper


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


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def check_seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"seed: expected an int or None, got {value!r}")
    return None if value is None else int(value)
