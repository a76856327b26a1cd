"""Attacks. Every attack is written once and runs on every model wrapper.

Call an attack as ``raw, clipped, success = attack(model, inputs, labels, epsilons=...)``;
see :mod:`advlib.attacks.base` for what each return value means.
"""

from ._diagnostics import GradientMaskingWarning
from .apgd import (
    APGD,
    APGDT,
    L1APGD,
    L1APGDT,
    L2APGD,
    L2APGDT,
    L1AutoPGD,
    L1AutoPGDTargeted,
    L2AutoPGD,
    L2AutoPGDTargeted,
    LinfAPGD,
    LinfAPGDT,
    LinfAutoPGD,
    LinfAutoPGDTargeted,
)
from .autoattack import AutoAttack, AutoAttackReport, L2AutoAttack, LinfAutoAttack
from .base import (
    ATTACKS,
    Attack,
    AttackResult,
    FixedEpsilonAttack,
    MinimizationAttack,
    Repeated,
)
from .bim import (
    BIM,
    L1BIM,
    L2BIM,
    L1BasicIterativeAttack,
    L2BasicIterativeAttack,
    LinfBasicIterativeAttack,
    LinfBIM,
)
from .boundary import BoundaryAttack
from .carlini_wagner import L2CarliniWagnerAttack
from .ddn import DDNAttack
from .deepfool import L2DeepFoolAttack, LinfDeepFoolAttack
from .ead import EADAttack
from .fab import FAB, L2FAB, L2FastAdaptiveBoundaryAttack, LinfFAB, LinfFastAdaptiveBoundaryAttack
from .fgm import (
    FGM,
    FGSM,
    L1FGM,
    L1FastGradientAttack,
    L2FastGradientAttack,
    LinfFastGradientAttack,
)
from .fmn import L1FMNAttack, L2FMNAttack, LInfFMNAttack, LinfFMNAttack
from .gradient_descent import GradientDescentAttack
from .hop_skip_jump import HSJA, HopSkipJumpAttack, L2HopSkipJumpAttack, LinfHopSkipJumpAttack
from .mifgsm import (
    MIFGSM,
    L1MomentumIterativeFastGradientMethod,
    L2MomentumIterativeFastGradientMethod,
    LinfMomentumIterativeAttack,
    LinfMomentumIterativeFastGradientMethod,
)
from .pgd import (
    L1PGD,
    L2PGD,
    PGD,
    L1ProjectedGradientDescentAttack,
    L2ProjectedGradientDescentAttack,
    LinfPGD,
    LinfProjectedGradientDescentAttack,
)
from .square import L2Square, L2SquareAttack, LinfSquare, LinfSquareAttack, SquareAttack

__all__ = [
    "APGD",
    "APGDT",
    "ATTACKS",
    "BIM",
    "FAB",
    "FGM",
    "FGSM",
    "HSJA",
    "L1APGD",
    "L1APGDT",
    "L1BIM",
    "L1FGM",
    "L1PGD",
    "L2APGD",
    "L2APGDT",
    "L2BIM",
    "L2FAB",
    "L2PGD",
    "MIFGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "AutoAttack",
    "AutoAttackReport",
    "BoundaryAttack",
    "DDNAttack",
    "EADAttack",
    "FixedEpsilonAttack",
    "GradientDescentAttack",
    "GradientMaskingWarning",
    "HopSkipJumpAttack",
    "L1AutoPGD",
    "L1AutoPGDTargeted",
    "L1BasicIterativeAttack",
    "L1FMNAttack",
    "L1FastGradientAttack",
    "L1MomentumIterativeFastGradientMethod",
    "L1ProjectedGradientDescentAttack",
    "L2AutoAttack",
    "L2AutoPGD",
    "L2AutoPGDTargeted",
    "L2BasicIterativeAttack",
    "L2CarliniWagnerAttack",
    "L2DeepFoolAttack",
    "L2FMNAttack",
    "L2FastAdaptiveBoundaryAttack",
    "L2FastGradientAttack",
    "L2HopSkipJumpAttack",
    "L2MomentumIterativeFastGradientMethod",
    "L2ProjectedGradientDescentAttack",
    "L2Square",
    "L2SquareAttack",
    "LInfFMNAttack",
    "LinfAPGD",
    "LinfAPGDT",
    "LinfAutoAttack",
    "LinfAutoPGD",
    "LinfAutoPGDTargeted",
    "LinfBIM",
    "LinfBasicIterativeAttack",
    "LinfDeepFoolAttack",
    "LinfFAB",
    "LinfFMNAttack",
    "LinfFastAdaptiveBoundaryAttack",
    "LinfFastGradientAttack",
    "LinfHopSkipJumpAttack",
    "LinfMomentumIterativeAttack",
    "LinfMomentumIterativeFastGradientMethod",
    "LinfPGD",
    "LinfProjectedGradientDescentAttack",
    "LinfSquare",
    "LinfSquareAttack",
    "MinimizationAttack",
    "Repeated",
    "SquareAttack",
]
