"""Robustness evaluation: :func:`evaluate` runs attacks over a data set and returns a
:class:`RobustnessReport` (text, JSON, CSV, PNG plot, Markdown, HTML; one writer registry)."""

from .evaluate import evaluate
from .report import AttackSummary, RobustnessReport

__all__ = ["AttackSummary", "RobustnessReport", "evaluate"]
