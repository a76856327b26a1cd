"""Criteria decide whether a perturbed input is adversarial; combine them with ``&`` and ``|``."""

from .base import Criterion
from .labels import Misclassification, TargetedMisclassification, TopKMisclassification
from .targets import LeastLikelyTargetedMisclassification, RandomTargetedMisclassification

__all__ = [
    "Criterion",
    "LeastLikelyTargetedMisclassification",
    "Misclassification",
    "RandomTargetedMisclassification",
    "TargetedMisclassification",
    "TopKMisclassification",
]
