"""Criteria decide whether a perturbed input is adversarial; combine them with ``&`` and ``|``."""

from .base import Criterion
from .labels import Misclassification, TargetedMisclassification, TopKMisclassification

__all__ = ["Criterion", "Misclassification", "TargetedMisclassification", "TopKMisclassification"]
