"""Attacks. Every attack is written once and runs on every model wrapper.

Call an attack as ``raw, clipped, success = attack(model, inputs, labels, epsilons=...)``;
see :mod:`advlib.attacks.base` for what each return value means.
"""

from ._diagnostics import GradientMaskingWarning
from .acg import ACGAttack, L2ACGAttack, LinfACGAttack
from .additive_noise import (
    L2AdditiveGaussianNoiseAttack,
    L2AdditiveUniformNoiseAttack,
    L2ClippingAwareAdditiveGaussianNoiseAttack,
    L2ClippingAwareAdditiveUniformNoiseAttack,
    L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack,
    L2ClippingAwareRepeatedAdditiveUniformNoiseAttack,
    L2RepeatedAdditiveGaussianNoiseAttack,
    L2RepeatedAdditiveUniformNoiseAttack,
    LinfAdditiveUniformNoiseAttack,
    LinfRepeatedAdditiveUniformNoiseAttack,
)
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
from .autoattack import AutoAttack, AutoAttackReport, L1AutoAttack, L2AutoAttack, LinfAutoAttack
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
    L1AdamBasicIterativeAttack,
    L1BasicIterativeAttack,
    L2AdamBasicIterativeAttack,
    L2BasicIterativeAttack,
    LinfAdamBasicIterativeAttack,
    LinfBasicIterativeAttack,
    LinfBIM,
)
from .binarization import BinarizationRefinementAttack
from .blended_noise import LinearSearchBlendedUniformNoiseAttack
from .blur import GaussianBlurAttack
from .boundary import BoundaryAttack
from .brendel_bethge import (
    L0BrendelBethgeAttack,
    L1BrendelBethgeAttack,
    L2BrendelBethgeAttack,
    LinfBrendelBethgeAttack,
    LinfinityBrendelBethgeAttack,
)
from .carlini_wagner import L2CarliniWagnerAttack
from .contrast import (
    BinarySearchContrastReductionAttack,
    L2ContrastReductionAttack,
    LinearSearchContrastReductionAttack,
)
from .dataset_attack import DatasetAttack
from .ddn import DDNAttack
from .deepfool import L2DeepFoolAttack, LinfDeepFoolAttack
from .ead import EADAttack
from .fab import (
    FAB,
    L1FAB,
    L2FAB,
    L1FastAdaptiveBoundaryAttack,
    L2FastAdaptiveBoundaryAttack,
    LinfFAB,
    LinfFastAdaptiveBoundaryAttack,
)
from .fgm import (
    FGM,
    FGSM,
    L1FGM,
    L1FastGradientAttack,
    L2FastGradientAttack,
    LinfFastGradientAttack,
)
from .fmn import L0FMNAttack, L1FMNAttack, L2FMNAttack, LInfFMNAttack, LinfFMNAttack
from .gen_attack import GenAttack
from .gradient_descent import GradientDescentAttack
from .hop_skip_jump import HSJA, HopSkipJumpAttack, L2HopSkipJumpAttack, LinfHopSkipJumpAttack
from .inversion import FlexibleDistanceMinimizationAttack, InversionAttack
from .malt import L1MALTAttack, L2MALTAttack, LinfMALTAttack, MALTAttack
from .mifgsm import (
    MIFGSM,
    L1MomentumIterativeFastGradientMethod,
    L2MomentumIterativeFastGradientMethod,
    LinfMomentumIterativeAttack,
    LinfMomentumIterativeFastGradientMethod,
)
from .newton_fool import NewtonFoolAttack
from .pgd import (
    L1PGD,
    L2PGD,
    PGD,
    AdamPGD,
    L1AdamPGD,
    L1AdamProjectedGradientDescentAttack,
    L1ProjectedGradientDescentAttack,
    L2AdamPGD,
    L2AdamProjectedGradientDescentAttack,
    L2ProjectedGradientDescentAttack,
    LinfAdamPGD,
    LinfAdamProjectedGradientDescentAttack,
    LinfPGD,
    LinfProjectedGradientDescentAttack,
)
from .pointwise import PointwiseAttack
from .salt_and_pepper import SaltAndPepperNoiseAttack
from .sigma_zero import SigmaZeroAttack
from .sparse_l1 import SparseL1DescentAttack
from .sparse_rs import SparseRSAttack
from .spatial import SpatialAttack
from .square import (
    L1Square,
    L1SquareAttack,
    L2Square,
    L2SquareAttack,
    LinfSquare,
    LinfSquareAttack,
    SquareAttack,
)
from .transfer import DIFGSM, NIFGSM, SINIFGSM, TIFGSM, VMIFGSM, VNIFGSM
from .virtual_adversarial import VirtualAdversarialAttack

__all__ = [
    "APGD",
    "APGDT",
    "ATTACKS",
    "BIM",
    "DIFGSM",
    "FAB",
    "FGM",
    "FGSM",
    "HSJA",
    "L1APGD",
    "L1APGDT",
    "L1BIM",
    "L1FAB",
    "L1FGM",
    "L1PGD",
    "L2APGD",
    "L2APGDT",
    "L2BIM",
    "L2FAB",
    "L2PGD",
    "MIFGSM",
    "NIFGSM",
    "PGD",
    "SINIFGSM",
    "TIFGSM",
    "VMIFGSM",
    "VNIFGSM",
    "ACGAttack",
    "AdamPGD",
    "Attack",
    "AttackResult",
    "AutoAttack",
    "AutoAttackReport",
    "BinarizationRefinementAttack",
    "BinarySearchContrastReductionAttack",
    "BoundaryAttack",
    "DDNAttack",
    "DatasetAttack",
    "EADAttack",
    "FixedEpsilonAttack",
    "FlexibleDistanceMinimizationAttack",
    "GaussianBlurAttack",
    "GenAttack",
    "GradientDescentAttack",
    "GradientMaskingWarning",
    "HopSkipJumpAttack",
    "InversionAttack",
    "L0BrendelBethgeAttack",
    "L0FMNAttack",
    "L1AdamBasicIterativeAttack",
    "L1AdamPGD",
    "L1AdamProjectedGradientDescentAttack",
    "L1AutoAttack",
    "L1AutoPGD",
    "L1AutoPGDTargeted",
    "L1BasicIterativeAttack",
    "L1BrendelBethgeAttack",
    "L1FMNAttack",
    "L1FastAdaptiveBoundaryAttack",
    "L1FastGradientAttack",
    "L1MALTAttack",
    "L1MomentumIterativeFastGradientMethod",
    "L1ProjectedGradientDescentAttack",
    "L1Square",
    "L1SquareAttack",
    "L2ACGAttack",
    "L2AdamBasicIterativeAttack",
    "L2AdamPGD",
    "L2AdamProjectedGradientDescentAttack",
    "L2AdditiveGaussianNoiseAttack",
    "L2AdditiveUniformNoiseAttack",
    "L2AutoAttack",
    "L2AutoPGD",
    "L2AutoPGDTargeted",
    "L2BasicIterativeAttack",
    "L2BrendelBethgeAttack",
    "L2CarliniWagnerAttack",
    "L2ClippingAwareAdditiveGaussianNoiseAttack",
    "L2ClippingAwareAdditiveUniformNoiseAttack",
    "L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack",
    "L2ClippingAwareRepeatedAdditiveUniformNoiseAttack",
    "L2ContrastReductionAttack",
    "L2DeepFoolAttack",
    "L2FMNAttack",
    "L2FastAdaptiveBoundaryAttack",
    "L2FastGradientAttack",
    "L2HopSkipJumpAttack",
    "L2MALTAttack",
    "L2MomentumIterativeFastGradientMethod",
    "L2ProjectedGradientDescentAttack",
    "L2RepeatedAdditiveGaussianNoiseAttack",
    "L2RepeatedAdditiveUniformNoiseAttack",
    "L2Square",
    "L2SquareAttack",
    "LInfFMNAttack",
    "LinearSearchBlendedUniformNoiseAttack",
    "LinearSearchContrastReductionAttack",
    "LinfACGAttack",
    "LinfAPGD",
    "LinfAPGDT",
    "LinfAdamBasicIterativeAttack",
    "LinfAdamPGD",
    "LinfAdamProjectedGradientDescentAttack",
    "LinfAdditiveUniformNoiseAttack",
    "LinfAutoAttack",
    "LinfAutoPGD",
    "LinfAutoPGDTargeted",
    "LinfBIM",
    "LinfBasicIterativeAttack",
    "LinfBrendelBethgeAttack",
    "LinfDeepFoolAttack",
    "LinfFAB",
    "LinfFMNAttack",
    "LinfFastAdaptiveBoundaryAttack",
    "LinfFastGradientAttack",
    "LinfHopSkipJumpAttack",
    "LinfMALTAttack",
    "LinfMomentumIterativeAttack",
    "LinfMomentumIterativeFastGradientMethod",
    "LinfPGD",
    "LinfProjectedGradientDescentAttack",
    "LinfRepeatedAdditiveUniformNoiseAttack",
    "LinfSquare",
    "LinfSquareAttack",
    "LinfinityBrendelBethgeAttack",
    "MALTAttack",
    "MinimizationAttack",
    "NewtonFoolAttack",
    "PointwiseAttack",
    "Repeated",
    "SaltAndPepperNoiseAttack",
    "SigmaZeroAttack",
    "SparseL1DescentAttack",
    "SparseRSAttack",
    "SpatialAttack",
    "SquareAttack",
    "VirtualAdversarialAttack",
]
