"""Targeted criteria whose targets are chosen for the user (torchattacks'
``set_mode_targeted_random`` and ``set_mode_targeted_least_likely``).

Both bind to a :class:`TargetedMisclassification` with the chosen targets and the true
labels, so they work with every attack that takes targeted criteria.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from .._random import SampleRandom
from .base import Criterion, bind_classes
from .labels import TargetedMisclassification

if TYPE_CHECKING:
    from ..models.base import Model


class _ChosenTargets(Criterion):
    """A targeted criterion whose targets are chosen when it is bound to a model."""

    labels: Any

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        raise TypeError(
            f"criterion: {self!r} chooses its targets when an attack binds it to a model; "
            "pass it to an attack, or call bind(model, outputs) first"
        )

    def bind(self, model: Model, outputs: ep.Tensor, n: int | None = None) -> Criterion:
        labels = bind_classes(model, self.labels, outputs, "labels", n)
        targets = self._targets(model, labels, outputs.shape[-1])
        return TargetedMisclassification(targets.astype(labels.dtype), labels)

    def _targets(self, model: Model, labels: ep.Tensor, classes: int) -> ep.Tensor:
        raise NotImplementedError  # each criterion's choice


class RandomTargetedMisclassification(_ChosenTargets):
    """Adversarial when the top-1 prediction is a target drawn uniformly at random among the
    classes other than the true label.

    Args:
        labels: the true class of every input, shape (N,), any integer dtype.
        num_classes: draw targets among the first ``num_classes`` classes; default None: all
            of the model's outputs.
        seed: the targets' seed (default 0): sample ``i`` (its position in ``labels``) gets the
            same target for the same seed, label and number of classes.
    """

    def __init__(self, labels: Any, num_classes: int | None = None, seed: int = 0) -> None:
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
        ):
            raise ValueError(f"num_classes: expected None or an int >= 2, got {num_classes!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed: expected an int, got {seed!r}")
        self.labels, self.num_classes, self.seed = labels, num_classes, seed

    def __repr__(self) -> str:
        return f"RandomTargetedMisclassification(labels, num_classes={self.num_classes})"

    def _targets(self, model: Model, labels: ep.Tensor, classes: int) -> ep.Tensor:
        k = classes if self.num_classes is None else self.num_classes
        if k > classes:
            raise ValueError(
                f"num_classes: the model has {classes} outputs, got num_classes={k}"
            )
        known = labels.numpy()
        if known.size and known.max() >= k:
            raise ValueError(
                f"labels: with num_classes={k}, labels must lie in [0, {k - 1}], got "
                f"{int(known.max())}"
            )
        # One of the k - 1 other classes: skip the label by shifting past it.
        rng = SampleRandom(self.seed, np.arange(len(known)))
        offsets = rng.integers(1, k, size=(len(known),))
        return ep.from_numpy(labels, (known + offsets) % k)


class LeastLikelyTargetedMisclassification(_ChosenTargets):
    """Adversarial when the top-1 prediction is the class the model finds least likely on the
    clean inputs (the ``rank``-th least likely; the true label is never a target).

    Args:
        labels: the true class of every input, shape (N,), any integer dtype.
        inputs: the clean inputs, shape (N, ...), the same the attack gets; the model's
            logits on them rank the classes when the criterion is bound.
        rank: 1 (default) for the least likely class, 2 for the second least likely, ...
    """

    def __init__(self, labels: Any, inputs: Any, rank: int = 1) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank: expected an int >= 1, got {rank!r}")
        self.labels, self.inputs, self.rank = labels, inputs, rank

    def __repr__(self) -> str:
        return f"LeastLikelyTargetedMisclassification(labels, inputs, rank={self.rank})"

    def _targets(self, model: Model, labels: ep.Tensor, classes: int) -> ep.Tensor:
        if self.rank > classes - 1:
            raise ValueError(
                f"rank: a model with {classes} outputs has {classes - 1} classes besides the "
                f"label, got rank={self.rank}"
            )
        x, _ = model.to_tensor(self.inputs, "inputs", floating=True)
        if x.ndim == 0 or x.shape[0] != labels.shape[0]:
            raise ValueError(
                f"inputs: expected one input per label, shape ({labels.shape[0]}, ...), got "
                f"shape {tuple(x.shape)}"
            )
        logits = model(x)
        hot = ep.onehot_like(logits, labels) > 0
        # The label ranks last: it is never among the least likely.
        order = ep.where(hot, ep.inf, logits).argsort(axis=-1)
        return order[:, self.rank - 1]
