"""Criteria: when is a perturbed input adversarial?"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import eagerpy as ep

from .._tensors import dtype_kind

if TYPE_CHECKING:
    from ..models.base import Model


class Criterion(ABC):
    """Decides per sample whether perturbed inputs are adversarial.

    Users build criteria with labels of any type; attacks call :meth:`bind` once to move the
    labels onto the model's backend and validate them, then call the bound criterion as
    ``criterion(perturbed, logits) -> bool tensor of shape (N,)``.
    """

    @abstractmethod
    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        """A bool tensor of shape (N,): True where ``perturbed`` is adversarial."""

    @abstractmethod
    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        """A copy whose labels live on ``model``'s backend, validated against the model's
        ``outputs`` (for the number of classes) and the batch size ``n`` (default: the
        number of rows of ``outputs``)."""

    @abstractmethod
    def sliced(self, start: int, stop: int) -> Criterion:
        """The criterion for inputs ``start:stop`` of a bound criterion."""

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        """``(classes, targeted)`` for loss-based attacks: classes to move away from (untargeted)
        or towards (targeted)."""
        raise ValueError(
            f"criterion: {self!r} gives gradient attacks no class to move away from or towards; "
            "use Misclassification, TargetedMisclassification or TopKMisclassification"
        )

    def __and__(self, other: Criterion) -> Criterion:
        return _Combined(self, _check_criterion(other), "and")

    def __or__(self, other: Criterion) -> Criterion:
        return _Combined(self, _check_criterion(other), "or")


def _check_criterion(value: Any) -> Criterion:
    if not isinstance(value, Criterion):
        raise TypeError(f"criteria combine only with criteria, got {type(value).__name__}")
    return value


class _Combined(Criterion):
    def __init__(self, a: Criterion, b: Criterion, op: str) -> None:
        self.a, self.b, self.op = a, b, op

    def __repr__(self) -> str:
        return f"({self.a!r} {'&' if self.op == 'and' else '|'} {self.b!r})"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        a, b = self.a(perturbed, outputs), self.b(perturbed, outputs)
        return ep.logical_and(a, b) if self.op == "and" else ep.logical_or(a, b)

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        return _Combined(self.a.bind(model, outputs, n), self.b.bind(model, outputs, n), self.op)

    def sliced(self, start: int, stop: int) -> Criterion:
        return _Combined(self.a.sliced(start, stop), self.b.sliced(start, stop), self.op)

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        """The first component's classes: losses follow the left-most labelled criterion."""
        try:
            return self.a.gradient_target()
        except ValueError:
            return self.b.gradient_target()


def bind_classes(
    model: Model, value: Any, outputs: ep.Tensor, name: str, n: int | None = None
) -> ep.Tensor:
    """Validate class indices (shape (n,), integers in [0, classes)) and move them to the
    model's backend with the dtype ``argmax`` returns there."""
    if value is None:
        raise TypeError(f"{name}: expected class indices, got None")
    classes, _ = model.to_tensor(value, name, floating=False)
    num_classes = outputs.shape[-1]
    n = outputs.shape[0] if n is None else n
    if dtype_kind(classes) != "int":
        raise TypeError(f"{name}: expected integer class indices, got dtype {classes.dtype}")
    if classes.shape != (n,):
        raise ValueError(
            f"{name}: expected shape ({n},), one class per input, got shape {tuple(classes.shape)}"
        )
    target = _argmax_dtype(outputs)
    if n > 0:
        low, high = (int(v) for v in model.value_range(classes))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{name}: class indices must lie in [0, {num_classes - 1}] for a model with "
                f"{num_classes} outputs, got values from {low} to {high}"
            )
    return classes if classes.dtype == target else classes.astype(target)


_argmax_dtypes: dict[tuple[type, str], Any] = {}


def _argmax_dtype(outputs: ep.Tensor) -> Any:
    """The dtype ``argmax`` returns for tensors like ``outputs`` (cached: one dispatch saved
    per call)."""
    key = (type(outputs.raw), str(outputs.dtype))
    if key not in _argmax_dtypes:
        _argmax_dtypes[key] = outputs[:1].argmax(axis=-1).dtype
    return _argmax_dtypes[key]
