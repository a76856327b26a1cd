"""Criteria: when is a perturbed input adversarial?"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from .._tensors import dtype_kind, dtype_name, framework_of

if TYPE_CHECKING:
    from ..models.base import Model


class Criterion(ABC):
    """Decides per sample whether perturbed inputs are adversarial.

    Users build criteria with labels of any type; attacks call :meth:`bind` once to move the
    labels onto the model's backend and validate them, then call the bound criterion as
    ``criterion(perturbed, logits) -> bool tensor of shape (N,)``.

    A criterion of your own (as in Foolbox) subclasses this and defines ``__call__`` (and maybe
    ``__repr__``): it receives EagerPy tensors and returns a bool tensor of shape (N,), EagerPy
    or native. Attacks that only need the verdict take it (BoundaryAttack,
    HopSkipJumpAttack); loss-based attacks (gradient attacks, Square) need classes and refuse
    it with a clear error. A criterion that keeps per-sample data (one value per input) must
    also define :meth:`sliced` to be used with ``batch_size``.
    """

    @abstractmethod
    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        """A bool tensor of shape (N,): True where ``perturbed`` is adversarial."""

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        """A copy whose labels live on ``model``'s backend, validated against the model's
        ``outputs`` (for the number of classes) and the batch size ``n`` (default: the
        number of rows of ``outputs``).

        By default (a criterion holding no tensors) this criterion itself, with checks of
        what its ``__call__`` returns (a bool tensor, one value per input; native results
        become EagerPy)."""
        return _Checked(self, outputs.shape[0] if n is None else n)

    def sliced(self, start: int, stop: int) -> Criterion:
        """The criterion for inputs ``start:stop`` of a bound criterion (attacks with
        ``batch_size`` run on slices of the batch).

        By default this criterion itself: right for criteria without per-sample data. One
        that keeps a value per input must return a criterion for those inputs only."""
        return self

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        """``(classes, targeted)`` for loss-based attacks: classes to move away from (untargeted)
        or towards (targeted)."""
        raise ValueError(
            f"criterion: {self!r} gives loss-based attacks (gradient attacks, Square) no class "
            "to move away from or towards; use Misclassification, TargetedMisclassification or "
            "TopKMisclassification (alone or combined with & and |), or an attack that needs "
            "only the criterion's verdict: BoundaryAttack or HopSkipJumpAttack"
        )

    def __and__(self, other: Criterion) -> Criterion:
        return _Combined(self, _check_criterion(other), "and")

    def __or__(self, other: Criterion) -> Criterion:
        return _Combined(self, _check_criterion(other), "or")


def is_foolbox(value: Any) -> bool:
    """Whether ``value`` is a Foolbox object (found by its type's module; Foolbox is never
    imported)."""
    return type(value).__module__.split(".")[0] == "foolbox"


def foolbox_criterion_error(value: Any, name: str = "criterion") -> TypeError:
    """The error for a Foolbox criterion handed to advlib, naming advlib's equivalent."""
    kind = type(value).__name__
    equivalents = {
        "Misclassification": "advlib.Misclassification(labels)",
        "TargetedMisclassification": "advlib.TargetedMisclassification(target_classes)",
    }
    equivalent = equivalents.get(kind, "an advlib criterion, or a subclass of advlib.Criterion")
    return TypeError(
        f"{name}: got a Foolbox criterion ({type(value).__module__}.{kind}); advlib attacks "
        f"take advlib criteria: use {equivalent}"
    )


def _check_criterion(value: Any) -> Criterion:
    if is_foolbox(value):
        raise foolbox_criterion_error(value)
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


class _Checked(Criterion):
    """A user's criterion, bound: its verdicts are checked (a bool tensor with one value per
    input) and native ones become EagerPy tensors."""

    def __init__(self, criterion: Criterion, n: int) -> None:
        self.criterion, self.n = criterion, n

    def __repr__(self) -> str:
        return repr(self.criterion)

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        verdict = _as_tensor(self.criterion(perturbed, outputs), outputs, self.criterion)
        rows, got = perturbed.shape[0], tuple(verdict.shape)
        if len(got) != 1 or (isinstance(rows, int) and isinstance(got[0], int) and got[0] != rows):
            raise ValueError(
                f"criterion: {self.criterion!r} returned shape {got} for {rows} inputs; expected "
                f"one value per input, shape ({rows},). A criterion that keeps one value per "
                "input must define sliced(start, stop) to be used with batch_size"
            )
        if dtype_name(verdict) != "bool":
            raise TypeError(
                f"criterion: {self.criterion!r} returned dtype {verdict.dtype}; expected a bool "
                "tensor (True where the input is adversarial)"
            )
        return verdict

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        return self

    def sliced(self, start: int, stop: int) -> Criterion:
        if type(self.criterion).sliced is not Criterion.sliced:
            return _Checked(self.criterion.sliced(start, stop), stop - start)
        per_sample = _per_sample_attributes(self.criterion, self.n)
        if per_sample:
            raise ValueError(
                f"criterion: {self.criterion!r} keeps one value per input "
                f"({', '.join(per_sample)}) but defines no sliced(start, stop), so it cannot "
                "be split into batches; define sliced() to return the criterion for inputs "
                "start:stop, or call the attack without batch_size"
            )
        return self

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        return self.criterion.gradient_target()


def _as_tensor(verdict: Any, outputs: ep.Tensor, criterion: Criterion) -> ep.Tensor:
    """A criterion's verdict as an EagerPy tensor of the outputs' backend."""
    if isinstance(verdict, ep.Tensor):
        return verdict
    source = framework_of(verdict)
    if source is None:
        raise TypeError(
            f"criterion: {criterion!r} returned {type(verdict).__name__}; expected a bool tensor "
            "of shape (N,) (EagerPy, or the model's framework)"
        )
    if source == "numpy" and framework_of(outputs) != "numpy":
        return ep.from_numpy(outputs, np.asarray(verdict))
    tensor: ep.Tensor = ep.astensor(verdict)
    return tensor


def _per_sample_attributes(criterion: Criterion, n: int) -> list[str]:
    """Names of ``criterion``'s attributes that look like one value per input (an array or
    tensor whose first dimension is ``n``), for batches of more than one input."""
    if n < 2:
        return []
    found = []
    for name, value in vars(criterion).items():
        shape = tuple(value.shape) if framework_of(value) is not None else ()
        if shape and shape[0] == n:
            found.append(f"{name} of shape {shape}")
    return found


def bind_classes(
    model: Model, value: Any, outputs: ep.Tensor, name: str, n: int | None = None
) -> ep.Tensor:
    """Validate class indices (shape (n,), integers in [0, classes)) and move them to the
    model's backend with the dtype ``argmax`` returns there."""
    if value is None:
        raise TypeError(f"{name}: expected class indices, got None")
    if is_foolbox(value):
        raise foolbox_criterion_error(value, name)
    classes, _ = model.to_tensor(value, name, floating=False)
    num_classes = outputs.shape[-1]
    n = outputs.shape[0] if n is None else n
    if _looks_one_hot(classes):
        raise ValueError(
            f"{name}: the values look one-hot encoded (shape {tuple(classes.shape)}); pass "
            f"class indices of shape ({n},), e.g. {name}.argmax(-1)"
        )
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


def _looks_one_hot(classes: ep.Tensor) -> bool:
    """A matrix (N, C) of zeros and ones, integer or float (Keras' ``to_categorical``). Only
    read on the way to an error: class indices are never 2-d."""
    if classes.ndim != 2 or classes.shape[1] < 2:
        return False
    values = classes.numpy()
    return bool(np.isin(values, (0, 1)).all())


_argmax_dtypes: dict[tuple[type, str], Any] = {}


def _argmax_dtype(outputs: ep.Tensor) -> Any:
    """The dtype ``argmax`` returns for tensors like ``outputs`` (cached: one dispatch saved
    per call)."""
    key = (type(outputs.raw), str(outputs.dtype))
    if key not in _argmax_dtypes:
        _argmax_dtypes[key] = outputs[:1].argmax(axis=-1).dtype
    return _argmax_dtypes[key]
