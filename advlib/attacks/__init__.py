"""Attacks. Every attack is written once and runs on every model wrapper.

Call an attack as ``raw, clipped, success = attack(model, inputs, labels, epsilons=...)``;
see :mod:`advlib.attacks.base` for what each return value means.
"""

from .base import ATTACKS, Attack, AttackResult, FixedEpsilonAttack, MinimizationAttack
from .bim import (
    BIM,
    L1BIM,
    L2BIM,
    L1BasicIterativeAttack,
    L2BasicIterativeAttack,
    LinfBasicIterativeAttack,
    LinfBIM,
)
from .fgm import (
    FGM,
    FGSM,
    L1FGM,
    L1FastGradientAttack,
    L2FastGradientAttack,
    LinfFastGradientAttack,
)
from .gradient_descent import GradientDescentAttack
from .mifgsm import MIFGSM, LinfMomentumIterativeAttack
from .pgd import (
    L1PGD,
    L2PGD,
    PGD,
    L1ProjectedGradientDescentAttack,
    L2ProjectedGradientDescentAttack,
    LinfPGD,
    LinfProjectedGradientDescentAttack,
)

__all__ = [
    "ATTACKS",
    "BIM",
    "FGM",
    "FGSM",
    "L1BIM",
    "L1FGM",
    "L1PGD",
    "L2BIM",
    "L2PGD",
    "MIFGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "FixedEpsilonAttack",
    "GradientDescentAttack",
    "L1BasicIterativeAttack",
    "L1FastGradientAttack",
    "L1ProjectedGradientDescentAttack",
    "L2BasicIterativeAttack",
    "L2FastGradientAttack",
    "L2ProjectedGradientDescentAttack",
    "LinfBIM",
    "LinfBasicIterativeAttack",
    "LinfFastGradientAttack",
    "LinfMomentumIterativeAttack",
    "LinfPGD",
    "LinfProjectedGradientDescentAttack",
    "MinimizationAttack",
]
