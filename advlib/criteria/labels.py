"""Criteria defined by class labels."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import eagerpy as ep

from .base import Criterion, _Combined, bind_classes

if TYPE_CHECKING:
    from ..models.base import Model


class Misclassification(Criterion):
    """Adversarial when the top-1 prediction differs from ``labels``.

    Args:
        labels: the true class of every input, shape (N,), any integer dtype and tensor type.
    """

    def __init__(self, labels: Any) -> None:
        self.labels = labels

    def __repr__(self) -> str:
        return "Misclassification(labels)"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        adversarial: ep.Tensor = outputs.argmax(axis=-1) != self.labels
        return adversarial

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        return type(self)(bind_classes(model, self.labels, outputs, "labels", n))

    def sliced(self, start: int, stop: int) -> Criterion:
        return type(self)(self.labels[start:stop])

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        return self.labels, False


class TargetedMisclassification(Criterion):
    """Adversarial when the top-1 prediction equals ``target_classes``.

    Args:
        target_classes: the wanted class of every input, shape (N,), any integer dtype.
        labels: the true classes (optional, default None); when given, a target equal to its
            true label is refused with a ValueError.
    """

    def __init__(self, target_classes: Any, labels: Any = None) -> None:
        self.target_classes = target_classes
        self.labels = labels

    def __repr__(self) -> str:
        return "TargetedMisclassification(target_classes)"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        adversarial: ep.Tensor = outputs.argmax(axis=-1) == self.target_classes
        return adversarial

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        targets = bind_classes(model, self.target_classes, outputs, "target_classes", n)
        if self.labels is None:
            return type(self)(targets)
        labels = bind_classes(model, self.labels, outputs, "labels", n)
        same = (targets == labels).astype(outputs.dtype).sum().item()
        if same:
            raise ValueError(
                f"target_classes: must differ from the true labels, but {int(same)} of "
                f"{targets.shape[0]} samples have a target equal to their label"
            )
        return type(self)(targets, labels)

    def sliced(self, start: int, stop: int) -> Criterion:
        labels = None if self.labels is None else self.labels[start:stop]
        return type(self)(self.target_classes[start:stop], labels)

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        return self.target_classes, True


class TopKMisclassification(Criterion):
    """Adversarial only when the true label is no longer among the ``k`` largest outputs.

    Args:
        labels: the true class of every input, shape (N,).
        k: how many top classes still count as correct (default 5); ``k=1`` is
            :class:`Misclassification`.
    """

    def __init__(self, labels: Any, k: int = 5) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected an int >= 1, got {k!r}")
        self.labels = labels
        self.k = k

    def __repr__(self) -> str:
        return f"TopKMisclassification(labels, k={self.k})"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        true_logit = ep.take_along_axis(outputs, self.labels[:, None], axis=1)
        rank = (outputs > true_logit).astype(outputs.dtype).sum(axis=-1)
        adversarial: ep.Tensor = rank >= self.k
        return adversarial

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        num_classes = outputs.shape[-1]
        if self.k >= num_classes:
            raise ValueError(
                f"k: must be smaller than the model's {num_classes} classes, got k={self.k}"
            )
        return type(self)(bind_classes(model, self.labels, outputs, "labels", n), self.k)

    def sliced(self, start: int, stop: int) -> Criterion:
        return type(self)(self.labels[start:stop], self.k)

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        return self.labels, False


# ---------------------------------------------------------------------- label tensors
def map_labels(criterion: Criterion, fn: Callable[[ep.Tensor], Any]) -> Criterion | None:
    """The same criterion with ``fn`` applied to each of its per-sample label tensors (in a
    fixed order), for the label criteria above and their ``&`` / ``|`` combinations; None for
    other types (subclasses included: they may use their labels differently)."""
    kind = type(criterion)
    if kind is Misclassification:
        return Misclassification(fn(criterion.labels))  # type: ignore[attr-defined]
    if kind is TargetedMisclassification:
        targets, labels = criterion.target_classes, criterion.labels  # type: ignore[attr-defined]
        return TargetedMisclassification(fn(targets), None if labels is None else fn(labels))
    if kind is TopKMisclassification:
        return TopKMisclassification(fn(criterion.labels), criterion.k)  # type: ignore[attr-defined]
    if isinstance(criterion, _Combined) and kind is _Combined:
        a, b = map_labels(criterion.a, fn), map_labels(criterion.b, fn)
        if a is None or b is None:
            return None
        return _Combined(a, b, criterion.op)
    return None


def split_labels(
    criterion: Criterion,
) -> tuple[tuple[ep.Tensor, ...], Callable[[tuple[ep.Tensor, ...]], Criterion], Hashable] | None:
    """``(tensors, rebuild, structure)`` for a label criterion, None for other criteria.

    Compiled functions take the label ``tensors`` as arguments and call ``rebuild(tensors)``
    to get the criterion back; ``structure`` (hashable) identifies everything but the labels
    (types, ``k``, operators), so one compiled function serves every batch of labels.
    ``rebuild`` keeps no tensor alive.
    """
    found: list[ep.Tensor] = []
    template = map_labels(criterion, found.append)
    if template is None:
        return None

    def rebuild(tensors: tuple[ep.Tensor, ...]) -> Criterion:
        remaining = iter(tensors)
        rebuilt = map_labels(template, lambda _: next(remaining))
        assert rebuilt is not None  # the template's structure is known by construction
        return rebuilt

    return tuple(found), rebuild, (repr(template), len(found))
