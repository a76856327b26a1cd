"""Fast gradient attacks: one full step of size epsilon along the norm's steepest direction."""

from __future__ import annotations

from typing import Any

from ..norms import l1, l2, linf
from ._signatures import keyword_constructor
from .gradient_descent import GradientDescentAttack


class _FastGradientAttack(GradientDescentAttack):
    """One gradient step of size ``epsilon``, no random start (Goodfellow et al., 2015).

    Args:
        random_start: start from a uniform random point of the epsilon ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    __init__ = keyword_constructor(random_start=False, seed=None)

    def _configure(self, **arguments: Any) -> None:
        super()._configure(rel_stepsize=1.0, abs_stepsize=None, steps=1, **arguments)


class L1FastGradientAttack(_FastGradientAttack):
    """Fast gradient method in L1 (the gradient scaled to L1 norm epsilon)."""

    norm = l1


class L2FastGradientAttack(_FastGradientAttack):
    """Fast gradient method in L2 (FGM): the gradient scaled to L2 norm epsilon."""

    norm = l2


class LinfFastGradientAttack(_FastGradientAttack):
    """Fast gradient sign method (FGSM): ``x + epsilon * sign(gradient)``."""

    norm = linf


FGM = L2FastGradientAttack
FGSM = LinfFastGradientAttack
L1FGM = L1FastGradientAttack
