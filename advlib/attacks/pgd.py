"""Projected gradient descent (Madry et al., 2018): BIM from a random point of the ball; and
Foolbox's Adam variants (``L1AdamPGD``, ``L2AdamPGD``, ``LinfAdamPGD``/``AdamPGD``)."""

from __future__ import annotations

from ..norms import l1, l2, linf
from .gradient_descent import (
    ADAM_DEFAULTS,
    AdamGradientDescentAttack,
    GradientDescentAttack,
    family_constructor,
)


class _ProjectedGradientDescentAttack(GradientDescentAttack):
    """PGD with Foolbox's signature and defaults (L1 and L2 here; Linf overrides them).

    Args:
        rel_stepsize: step size relative to epsilon (default 0.025).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 50).
        random_start: start from a uniform random point of the ball (default True).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    __init__ = family_constructor(rel_stepsize=0.025, steps=50, random_start=True)


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

    __init__ = family_constructor(rel_stepsize=0.01 / 0.3, steps=40, random_start=True)


class _AdamProjectedGradientDescentAttack(AdamGradientDescentAttack):
    """PGD with Adam on the normalized gradient (Foolbox's Adam PGD): the arguments of
    :class:`~advlib.attacks.gradient_descent.AdamGradientDescentAttack` with Foolbox's
    defaults, the same for every norm (``rel_stepsize=0.025``, ``steps=50``,
    ``random_start=True``)."""

    __init__ = family_constructor(rel_stepsize=0.025, steps=50, random_start=True, **ADAM_DEFAULTS)


class L1AdamProjectedGradientDescentAttack(_AdamProjectedGradientDescentAttack):
    """Adam PGD in L1 (``L1AdamPGD``)."""

    norm = l1


class L2AdamProjectedGradientDescentAttack(_AdamProjectedGradientDescentAttack):
    """Adam PGD in L2 (``L2AdamPGD``)."""

    norm = l2


class LinfAdamProjectedGradientDescentAttack(_AdamProjectedGradientDescentAttack):
    """Adam PGD in Linf (``LinfAdamPGD``, ``AdamPGD``); Adam runs on the gradient's sign."""

    norm = linf


L1PGD = L1ProjectedGradientDescentAttack
L2PGD = L2ProjectedGradientDescentAttack
LinfPGD = LinfProjectedGradientDescentAttack
PGD = LinfProjectedGradientDescentAttack
L1AdamPGD = L1AdamProjectedGradientDescentAttack
L2AdamPGD = L2AdamProjectedGradientDescentAttack
LinfAdamPGD = LinfAdamProjectedGradientDescentAttack
AdamPGD = LinfAdamProjectedGradientDescentAttack
