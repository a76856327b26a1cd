"""Running an attack on some rows of a batch only (the samples still robust), then writing the
results back. Rows are chosen on the host between attacks, never inside a loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import eagerpy as ep
import numpy as np

from .._tensors import atleast_kd
from ..criteria import Criterion

if TYPE_CHECKING:
    from ..models.base import Model


class Subset:
    """The rows of a batch of ``len(mask)`` samples where the host-side bool ``mask`` is True."""

    def __init__(self, like: ep.Tensor, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask)
        inverse = np.zeros(len(mask), dtype=np.int64)
        inverse[rows] = np.arange(len(rows))
        self.size = len(mask)
        self.count = len(rows)
        self.rows_np = rows
        self.everything = self.count == self.size
        self._rows = ep.from_numpy(like, rows)
        self._inverse = ep.from_numpy(like, inverse)
        self._mask = ep.from_numpy(like, mask)

    def take(self, t: ep.Tensor) -> ep.Tensor:
        """The selected rows of a full-batch tensor."""
        return t if self.everything else t[self._rows]

    def put(self, full: ep.Tensor, part: ep.Tensor) -> ep.Tensor:
        """``full`` with the selected rows replaced by ``part`` (a new tensor)."""
        if self.everything:
            return part
        if self.count == 0:
            return full
        return ep.where(atleast_kd(self._mask, full.ndim), part[self._inverse], full)

    def criterion(self, parent: Criterion, inputs: ep.Tensor, outputs: ep.Tensor) -> Criterion:
        """``parent`` restricted to the selected rows; ``inputs``/``outputs`` fill the others."""
        if self.everything:
            return parent
        return _SubsetCriterion(parent, self, inputs, outputs)


class _SubsetCriterion(Criterion):
    """Evaluates any criterion on a subset by padding the other rows with fixed values."""

    def __init__(
        self, parent: Criterion, subset: Subset, inputs: ep.Tensor, outputs: ep.Tensor
    ) -> None:
        self.parent, self.subset = parent, subset
        self.inputs, self.outputs = inputs, outputs

    def __repr__(self) -> str:
        return f"{self.parent!r}[{self.subset.count} of {self.subset.size} rows]"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> ep.Tensor:
        full_inputs = self.subset.put(self.inputs, perturbed)
        full_outputs = self.subset.put(self.outputs, outputs)
        return self.subset.take(self.parent(full_inputs, full_outputs))

    def bind(self, model: Model, outputs: ep.Tensor) -> Criterion:
        return self

    def gradient_target(self) -> tuple[ep.Tensor, bool]:
        classes, targeted = self.parent.gradient_target()
        return self.subset.take(classes), targeted


def host_bool(t: ep.Tensor) -> np.ndarray:
    """A bool tensor as a NumPy array (one device-to-host transfer)."""
    return np.asarray(t.numpy(), dtype=bool)
