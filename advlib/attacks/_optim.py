"""Optimizer updates and step-size schedules shared by the minimization attacks.

Everything here is pure (state in, state out) so it can run inside a compiled step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import eagerpy as ep
import numpy as np

from .._tensors import dtype_name


class AdamState(NamedTuple):
    """Adam's state: the moment estimates and the bias-correction powers (0-d)."""

    m: ep.Tensor
    v: ep.Tensor
    beta1_power: ep.Tensor  # beta1 ** t
    beta2_power: ep.Tensor  # beta2 ** t


def adam_init(like: ep.Tensor) -> AdamState:
    """A fresh Adam state for a variable shaped like ``like``."""
    one = ep.ones(like, ())
    return AdamState(ep.zeros_like(like), ep.zeros_like(like), one, one)


def adam_step(
    grad: ep.Tensor,
    state: AdamState,
    stepsize: ep.Tensor | float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[ep.Tensor, AdamState]:
    """The bias-corrected Adam update (Kingma & Ba, 2015) to *subtract* from the variable."""
    m, v, beta1_power, beta2_power = state
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad.square()
    beta1_power, beta2_power = beta1_power * beta1, beta2_power * beta2
    m_hat = m / (1 - beta1_power)
    v_hat = v / (1 - beta2_power)
    update = stepsize * m_hat / (v_hat.sqrt() + epsilon)
    return update, AdamState(m, v, beta1_power, beta2_power)


def cosine_schedule(start: float, end: float, steps: int) -> list[float]:
    """``steps`` values annealed from ``start`` towards ``end`` along half a cosine."""
    return [end + (start - end) * (1 + math.cos(math.pi * i / steps)) / 2 for i in range(steps)]


def schedule_tensor(like: ep.Tensor, values: list[float]) -> ep.Tensor:
    """A per-step schedule moved to the device once; read it with :func:`at_step`."""
    return ep.from_numpy(like, np.asarray(values, dtype=dtype_name(like)))


def at_step(schedule: ep.Tensor, step_index: ep.Tensor) -> ep.Tensor:
    """``schedule[step_index]`` for a 0-d step counter tensor, inside compiled code.

    A masked sum instead of indexing: the counter is a traced value, and a Python index would
    make eager JAX compile one gather per step.
    """
    positions = ep.arange(schedule, schedule.shape[0]).astype(schedule.dtype)
    return ep.where(positions == step_index, schedule, 0.0).sum()


def check_interval(steps: int) -> int:
    """Steps between two early-stop checks (each costs one device-to-host transfer)."""
    return max(1, math.ceil(steps / 10))
