"""Robustness evaluation: :func:`evaluate` runs attacks over a data set and returns a
:class:`RobustnessReport` (table, JSON, CSV, plot)."""

from .evaluate import evaluate
from .report import AttackSummary, RobustnessReport

__all__ = ["AttackSummary", "RobustnessReport", "evaluate"]
