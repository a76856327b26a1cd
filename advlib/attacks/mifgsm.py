"""Momentum iterative FGSM (Dong et al., 2018)."""

from __future__ import annotations

import eagerpy as ep

from .._tensors import atleast_kd, flat_batch
from ..norms import linf
from .gradient_descent import GradientDescentAttack, State


class LinfMomentumIterativeAttack(GradientDescentAttack):
    """MI-FGSM: sign steps along an accumulated, L1-normalised gradient.

    Args:
        rel_stepsize: step size relative to epsilon (default 0.1, i.e. epsilon / steps).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        decay: momentum decay factor mu (default 1.0, as in the paper).
        random_start: start from a random point of the ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    norm = linf

    def __init__(
        self,
        *,
        rel_stepsize: float = 0.1,
        abs_stepsize: float | None = None,
        steps: int = 10,
        decay: float = 1.0,
        random_start: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rel_stepsize=rel_stepsize,
            abs_stepsize=abs_stepsize,
            steps=steps,
            random_start=random_start,
            seed=seed,
        )
        if isinstance(decay, bool) or not isinstance(decay, int | float) or decay < 0:
            raise ValueError(f"decay: expected a number >= 0, got {decay!r}")
        self.decay = float(decay)

    def _initial_state(self, inputs: ep.Tensor) -> State:
        return (ep.zeros_like(inputs),)

    def _direction(self, grad: ep.Tensor, state: State) -> tuple[ep.Tensor, State]:
        scale = flat_batch(grad).abs().mean(axis=-1)
        momentum = self.decay * state[0] + grad / atleast_kd(scale + 1e-12, grad.ndim)
        return momentum, (momentum,)  # the Linf step normalizes it to its sign


MIFGSM = LinfMomentumIterativeAttack
