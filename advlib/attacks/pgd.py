"""Projected gradient descent (Madry et al., 2018): BIM from a random point of the ball."""

from __future__ import annotations

from ..norms import l1, l2, linf
from ._signatures import keyword_constructor
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

    __init__ = keyword_constructor(
        rel_stepsize=0.025, abs_stepsize=None, steps=50, random_start=True, seed=None
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

    __init__ = keyword_constructor(
        rel_stepsize=0.01 / 0.3, abs_stepsize=None, steps=40, random_start=True, seed=None
    )


L1PGD = L1ProjectedGradientDescentAttack
L2PGD = L2ProjectedGradientDescentAttack
LinfPGD = LinfProjectedGradientDescentAttack
PGD = LinfProjectedGradientDescentAttack
