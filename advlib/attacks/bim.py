"""Basic iterative method (Kurakin et al., 2016): iterated fast gradient steps, no random start."""

from __future__ import annotations

from ..norms import l1, l2, linf
from ._signatures import keyword_constructor
from .gradient_descent import GradientDescentAttack


class _BasicIterativeAttack(GradientDescentAttack):
    """Iterated gradient steps projected onto the epsilon ball, starting at the inputs.

    Args:
        rel_stepsize: step size relative to epsilon (default 0.2, as Foolbox).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        random_start: start from a random point of the ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    __init__ = keyword_constructor(
        rel_stepsize=0.2, abs_stepsize=None, steps=10, random_start=False, seed=None
    )


class L1BasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in L1."""

    norm = l1


class L2BasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in L2."""

    norm = l2


class LinfBasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in Linf (I-FGSM)."""

    norm = linf


L1BIM = L1BasicIterativeAttack
L2BIM = L2BasicIterativeAttack
LinfBIM = LinfBasicIterativeAttack
BIM = LinfBasicIterativeAttack
