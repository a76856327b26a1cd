"""Projected gradient descent (Madry et al., 2018): BIM from a random point of the ball."""

from __future__ import annotations

from ..norms import l1, l2, linf
from .gradient_descent import GradientDescentAttack


class _ProjectedGradientDescentAttack(GradientDescentAttack):
    """PGD with Foolbox's defaults for the norm (see each subclass).

    Args:
        rel_stepsize: step size relative to epsilon.
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps.
        random_start: start from a uniform random point of the ball (default True).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    default_rel_stepsize = 0.025
    default_steps = 50

    def __init__(
        self,
        *,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
        steps: int | None = None,
        random_start: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rel_stepsize=self.default_rel_stepsize if rel_stepsize is None else rel_stepsize,
            abs_stepsize=abs_stepsize,
            steps=self.default_steps if steps is None else steps,
            random_start=random_start,
            seed=seed,
        )


class L1ProjectedGradientDescentAttack(_ProjectedGradientDescentAttack):
    """PGD in L1; defaults ``rel_stepsize=0.025``, ``steps=50``."""

    norm = l1


class L2ProjectedGradientDescentAttack(_ProjectedGradientDescentAttack):
    """PGD in L2; defaults ``rel_stepsize=0.025``, ``steps=50``."""

    norm = l2


class LinfProjectedGradientDescentAttack(_ProjectedGradientDescentAttack):
    """PGD in Linf; defaults ``rel_stepsize=0.01/0.3``, ``steps=40`` (Madry et al.)."""

    norm = linf
    default_rel_stepsize = 0.01 / 0.3
    default_steps = 40


L1PGD = L1ProjectedGradientDescentAttack
L2PGD = L2ProjectedGradientDescentAttack
LinfPGD = LinfProjectedGradientDescentAttack
PGD = LinfProjectedGradientDescentAttack
