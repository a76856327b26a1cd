"""Projected gradient descent (Madry et al., 2018): BIM from a random point of the ball."""

from __future__ import annotations

from ..norms import l1, l2, linf
from .gradient_descent import GradientDescentAttack


class _ProjectedGradientDescentAttack(GradientDescentAttack):
    """PGD with Foolbox's signature and defaults (L1 and L2 here; Linf overrides them).

    Args:
        rel_stepsize: step size relative to epsilon (default 0.025).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 50).
        random_start: start from a uniform random point of the ball (default True).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    def __init__(
        self,
        *,
        rel_stepsize: float = 0.025,
        abs_stepsize: float | None = None,
        steps: int = 50,
        random_start: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rel_stepsize=rel_stepsize,
            abs_stepsize=abs_stepsize,
            steps=steps,
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
    """PGD in Linf with Madry et al.'s defaults ``rel_stepsize=0.01/0.3``, ``steps=40``; the
    arguments as for :class:`_ProjectedGradientDescentAttack`."""

    norm = linf

    def __init__(
        self,
        *,
        rel_stepsize: float = 0.01 / 0.3,
        abs_stepsize: float | None = None,
        steps: int = 40,
        random_start: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rel_stepsize=rel_stepsize,
            abs_stepsize=abs_stepsize,
            steps=steps,
            random_start=random_start,
            seed=seed,
        )


L1PGD = L1ProjectedGradientDescentAttack
L2PGD = L2ProjectedGradientDescentAttack
LinfPGD = LinfProjectedGradientDescentAttack
PGD = LinfProjectedGradientDescentAttack
