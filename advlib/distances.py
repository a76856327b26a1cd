"""Per-sample distances between batches, with Foolbox's ``foolbox.distances`` interface.

>>> advlib.distances.l2(x, x_adv)                         # shape (N,), x's type and dtype
>>> advlib.distances.linf.clip_perturbation(x, x_adv, 8 / 255)

Inputs may be PyTorch, TensorFlow, JAX or EagerPy tensors or NumPy arrays (both arguments of
one kind, shape and floating dtype); results come back as the kind, device and dtype of
``references``. The norms are those the attacks use (:mod:`advlib.norms`).
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import eagerpy as ep
import numpy as np

from . import norms
from ._tensors import atleast_kd, dtype_kind, flat_batch, framework_of

__all__ = ["Distance", "LpDistance", "l0", "l1", "l2", "linf"]

_TINY = 1e-12  # Foolbox's guard against dividing by a zero norm


class Distance(ABC):
    """A distance between two batches, measured per sample."""

    @abstractmethod
    def __call__(self, reference: Any, perturbed: Any) -> Any:
        """The distance from each sample of ``reference`` to the same sample of
        ``perturbed`` (both of shape (N, ...)), as a tensor of shape (N,)."""

    @abstractmethod
    def clip_perturbation(self, references: Any, perturbed: Any, epsilon: float) -> Any:
        """``perturbed`` moved to within ``epsilon`` of ``references``, sample by sample."""


class LpDistance(Distance):
    """The Lp norm of ``perturbed - references``, flattened per sample.

    Args:
        p: the norm's order, a number >= 0: 0 counts the values that differ, ``math.inf``
            takes the largest absolute difference.

    ``clip_perturbation`` follows Foolbox: for p = inf it clips every value of the
    perturbation to [-epsilon, epsilon]; for 0 < p < inf it scales each sample's
    perturbation by ``min(1, epsilon / norm)``, keeping its direction. For p = 2 that is the
    Euclidean projection onto the ball; for p = 1 it is not (the attacks' own ``clipped``
    results use the exact L1 projection, :meth:`advlib.norms.L1Norm.clip`, which stays
    closer to ``perturbed``). For p = 0 it returns ``perturbed`` itself when every sample is
    within ``epsilon`` and raises ``NotImplementedError`` otherwise. Results are never
    clipped to a model's bounds.
    """

    def __init__(self, p: float) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not p >= 0:
            raise ValueError(f"p: expected a number >= 0 (or math.inf), got {p!r}")
        self.p: float = p
        self._norm: Callable[[ep.Tensor], ep.Tensor] = _NORMS.get(p, self._generic_norm)

    def __repr__(self) -> str:
        return f"LpDistance({self.p})"

    def __str__(self) -> str:
        return f"L{self.p} distance"

    def __call__(self, references: Any, perturbed: Any) -> Any:
        """Per-sample Lp distances, shape (N,), in ``references``' type, dtype and device.

        Args:
            references: a batch of reference inputs, shape (N, ...).
            perturbed: a batch of perturbed inputs of the same shape, kind and dtype.
        """
        x, y, restore = _batches(references, perturbed)
        return restore(self._norm(y - x))

    def clip_perturbation(self, references: Any, perturbed: Any, epsilon: float) -> Any:
        """``perturbed`` with each sample's perturbation ``perturbed - references`` clipped
        to norm ``epsilon`` (see the class documentation for how), in ``references``' type.

        Args:
            references: a batch of reference inputs, shape (N, ...).
            perturbed: a batch of perturbed inputs of the same shape, kind and dtype.
            epsilon: the largest distance allowed, a number >= 0 (``math.inf``: no limit).
        """
        eps = _epsilon(epsilon)
        x, y, restore = _batches(references, perturbed)
        delta = y - x
        if self.p == math.inf:
            return restore(x + norms.linf.clip(delta, eps))
        lengths = self._norm(delta)
        if self.p == 0:
            return self._check_l0(lengths, eps, perturbed)
        factor = ep.minimum(eps / ep.maximum(lengths, _TINY), 1.0)
        return restore(x + delta * atleast_kd(factor, delta.ndim))

    @staticmethod
    def _check_l0(lengths: ep.Tensor, eps: float, perturbed: Any) -> Any:
        over = int((lengths > eps).sum().item())
        if over:
            raise NotImplementedError(
                f"clip_perturbation: reducing L0 distances is not supported (as in Foolbox); "
                f"{over} sample(s) change more than epsilon={eps:g} values. Use an attack that "
                "stays within the L0 budget, or keep only the samples within it"
            )
        return perturbed

    def _generic_norm(self, delta: ep.Tensor) -> ep.Tensor:
        return flat_batch(delta).abs().pow(self.p).sum(axis=-1).pow(1.0 / self.p)


_NORMS: dict[float, Callable[[ep.Tensor], ep.Tensor]] = {
    0: norms.l0,
    1: norms.l1,
    2: norms.l2,
    math.inf: norms.linf,
}


def _batches(references: Any, perturbed: Any) -> tuple[ep.Tensor, ep.Tensor, Any]:
    """Both batches as EagerPy tensors, validated, and the function that restores a result
    to the kind of ``references`` (EagerPy stays EagerPy, raw tensors come back raw)."""
    x = _as_tensor(references, "references")
    y = _as_tensor(perturbed, "perturbed")
    kinds = framework_of(x), framework_of(y)
    if kinds[0] != kinds[1]:
        raise TypeError(
            f"perturbed: expected a {kinds[0]} tensor like references, got {kinds[1]}; "
            "convert both to the same framework"
        )
    if x.ndim == 0 or x.shape != y.shape:
        raise ValueError(
            "references, perturbed: expected two batches of the same shape (N, ...), got "
            f"shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if dtype_kind(x) != "float" or x.dtype != y.dtype:
        raise TypeError(
            "references, perturbed: expected the same floating-point dtype, got "
            f"{x.dtype} and {y.dtype}; cast both to one float dtype (e.g. float32) first"
        )
    as_eagerpy = isinstance(references, ep.Tensor)
    return x, y, (lambda t: t) if as_eagerpy else (lambda t: t.raw)


def _as_tensor(value: Any, name: str) -> ep.Tensor:
    if isinstance(value, ep.Tensor):
        return value
    if framework_of(value) is None:
        if not isinstance(value, list | tuple):
            raise TypeError(
                f"{name}: expected a PyTorch, TensorFlow, JAX or EagerPy tensor or a NumPy "
                f"array, got {type(value).__name__}"
            )
        value = np.asarray(value)
    tensor: ep.Tensor = ep.astensor(value)
    return tensor


def _epsilon(epsilon: Any) -> float:
    try:
        if isinstance(epsilon, str | bytes | bool):
            raise TypeError
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon: expected a number >= 0, got {epsilon!r}") from None
    if not eps >= 0:
        raise ValueError(f"epsilon: expected a number >= 0 (or math.inf), got {epsilon!r}")
    return eps


l0 = LpDistance(0)
l1 = LpDistance(1)
l2 = LpDistance(2)
linf = LpDistance(ep.inf)
