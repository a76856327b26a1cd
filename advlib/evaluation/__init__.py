"""Robustness evaluation: :func:`evaluate` runs attacks over a data set and returns a
:class:`RobustnessReport` (text, JSON, CSV, PNG plot, Markdown, HTML; one writer registry);
:func:`transfer` measures how often adversarials of a surrogate model fool a target model."""

from .evaluate import evaluate
from .report import AttackSummary, RobustnessReport
from .transfer import TransferReport, transfer

__all__ = ["AttackSummary", "RobustnessReport", "TransferReport", "evaluate", "transfer"]
