"""Pieces several attacks share: the perturb call with ``starting_points`` (Brendel-Bethge,
binarization refinement) and the channel axis of the sparse decision-based attacks
(salt-and-pepper noise, Sparse-RS)."""

from __future__ import annotations

import numbers
from abc import abstractmethod
from typing import Any

import eagerpy as ep

from ..criteria import Criterion
from ..models.base import Model
from ._minimization import Minimizer, Problem


class StartsMinimizer(Minimizer):
    """A minimization attack whose ``perturb`` also takes ``starting_points``: it hands the
    call to :meth:`_refine` as one :class:`Problem` and the starting points."""

    def perturb(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        early_stop: float | None = None,
        *,
        starting_points: ep.Tensor | None = None,
    ) -> ep.Tensor:
        """See :meth:`MinimizationAttack.perturb`; ``starting_points`` (shaped like ``inputs``,
        default None) are adversarial points to start from (see the attack's documentation)."""
        return self._refine(Problem(model, inputs, criterion, early_stop), starting_points)

    def _minimize(self, problem: Problem) -> ep.Tensor:
        return self._refine(problem, None)

    @abstractmethod
    def _refine(self, problem: Problem, starting_points: ep.Tensor | None) -> ep.Tensor:
        """The smallest adversarials found from ``starting_points`` (None: the attack's own)."""


def channel_axis_of(shape: tuple[int, ...], given: int | None) -> int | None:
    """The channel axis (positive) of inputs of ``shape``: ``given`` if not None (checked);
    else for 4-d inputs the smaller of axes 1 and 3 (axis 1 on a tie), for other ranks none.
    The models' ``data_format`` is not trusted here: the bundled TensorFlow and JAX models
    report channels-last for channels-first inputs."""
    if given is None:
        if len(shape) != 4:
            return None
        return 1 if shape[1] <= shape[3] else 3
    axis = given + len(shape) if given < 0 else given
    if not 1 <= axis < len(shape):
        raise ValueError(
            f"channel_axis: {given} is not an axis other than the batch axis of inputs of "
            f"shape {shape}; pass 1 (channels first), -1 (channels last) or None"
        )
    return axis


def check_channel_axis(value: Any) -> int | None:
    """None or a nonzero int (the batch axis 0 cannot hold the channels)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value == 0:
        raise ValueError(
            f"channel_axis: expected None or a nonzero int (1: channels first, -1: channels "
            f"last), got {value!r}"
        )
    return int(value)
