"""Basic iterative method (Kurakin et al., 2016): iterated fast gradient steps, no random start;
and Foolbox's Adam variants (``L1/L2/LinfAdamBasicIterativeAttack``)."""

from __future__ import annotations

from ..norms import l1, l2, linf
from .gradient_descent import (
    ADAM_DEFAULTS,
    AdamGradientDescentAttack,
    GradientDescentAttack,
    family_constructor,
)


class _BasicIterativeAttack(GradientDescentAttack):
    """Iterated gradient steps projected onto the epsilon ball, starting at the inputs.

    Args:
        rel_stepsize: step size relative to epsilon (default 0.2, as Foolbox).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        random_start: start from a random point of the ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    __init__ = family_constructor(rel_stepsize=0.2, steps=10, random_start=False)


class L1BasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in L1."""

    norm = l1


class L2BasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in L2."""

    norm = l2


class LinfBasicIterativeAttack(_BasicIterativeAttack):
    """Basic iterative method in Linf (I-FGSM)."""

    norm = linf


class _AdamBasicIterativeAttack(AdamGradientDescentAttack):
    """BIM with Adam on the normalized gradient: the arguments of
    :class:`~advlib.attacks.gradient_descent.AdamGradientDescentAttack` with BIM's defaults
    (``rel_stepsize=0.2``, ``steps=10``, ``random_start=False``).

    As in Foolbox 3.3.4, only the Linf class uses Adam: the L1 and L2 classes take the Adam
    arguments but run plain BIM (Foolbox's behaviour, kept because it is also the stronger
    attack: on the bundled digits CNN, L2 BIM with Adam fools 30% at epsilon 0.5, plain BIM
    47%).
    """

    __init__ = family_constructor(rel_stepsize=0.2, steps=10, random_start=False, **ADAM_DEFAULTS)


class L1AdamBasicIterativeAttack(_AdamBasicIterativeAttack):
    """Foolbox's L1 BIM "with Adam", which runs plain L1 BIM (the Adam arguments are unused)."""

    norm = l1
    uses_adam = False


class L2AdamBasicIterativeAttack(_AdamBasicIterativeAttack):
    """Foolbox's L2 BIM "with Adam", which runs plain L2 BIM (the Adam arguments are unused)."""

    norm = l2
    uses_adam = False


class LinfAdamBasicIterativeAttack(_AdamBasicIterativeAttack):
    """Basic iterative method in Linf with Adam on the gradient's sign."""

    norm = linf


L1BIM = L1BasicIterativeAttack
L2BIM = L2BasicIterativeAttack
LinfBIM = LinfBasicIterativeAttack
BIM = LinfBasicIterativeAttack
