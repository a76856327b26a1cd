"""The result of :func:`advlib.evaluate`: counts per attack and epsilon, with 95% intervals.

A report stores counts (samples robust out of ``n``), never raw accuracies, so the intervals
and every accuracy can be recomputed after a JSON round trip. Intervals are Clopper-Pearson
("exact") 95% binomial intervals from :mod:`scipy.stats`: conservative, and they always
contain the point estimate.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

Interval = tuple[float, float]

_QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}


@lru_cache(maxsize=4096)
def interval(successes: int, n: int) -> Interval:
    """The Clopper-Pearson 95% interval of ``successes / n``; (nan, nan) when ``n == 0``."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="exact")
    return (float(ci.low), float(ci.high))


@dataclass
class AttackSummary:
    """One attack's results.

    Attributes:
        name: the label in tables and plots (the name it was given by, or its class name).
        attack: the attack's ``repr``, with every setting.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        kind: ``"fixed-epsilon"`` or ``"minimization"``.
        epsilons: the budgets it was evaluated at (its norm's grid).
        robust: per epsilon, the number of samples still robust. With ``cascade`` (the
            default of :func:`advlib.evaluate`) this counts robustness against this attack and
            every earlier attack of the same norm; otherwise against this attack alone.
        attacked: the number of samples the attack ran on.
        seconds: wall time spent in the attack.
        forward_calls / gradient_calls: batched model calls the attack made (a gradient call's
            own forward pass is not counted as a forward call).
        distances: minimization attacks only: per sample, the size of the smallest adversarial
            found (``inf``: none found; ``0``: misclassified without attack; ``nan``: not
            attacked because an earlier attack already broke it at every epsilon).
    """

    name: str
    attack: str
    norm: str
    kind: str
    epsilons: list[float]
    robust: list[int]
    attacked: int = 0
    seconds: float = 0.0
    forward_calls: int = 0
    gradient_calls: int = 0
    distances: list[float] | None = None

    def distance_summary(self) -> dict[str, float] | None:
        """Quantiles (``q10, q25, median, q75, q90``) of the minimal perturbation sizes over the
        attacked samples (``inf`` where the attack found nothing), plus ``attacked`` and
        ``not_found`` counts; None for fixed-epsilon attacks."""
        if self.distances is None:
            return None
        d = np.asarray(self.distances, dtype=np.float64)
        d = d[~np.isnan(d) & (d > 0)]
        summary = {"attacked": float(len(d)), "not_found": float(np.isinf(d).sum())}
        for key, q in _QUANTILES.items():
            # inverted_cdf picks sample values, so infinite distances need no interpolation.
            summary[key] = float(np.quantile(d, q, method="inverted_cdf")) if len(d) else math.nan
        return summary


@dataclass
class RobustnessReport:
    """Clean and robust accuracy of one model against a list of attacks.

    Attributes:
        model: a description of the model (its wrapper's ``repr``).
        framework: the model's framework.
        n: the number of samples evaluated.
        clean_correct: how many of them the model classifies correctly.
        epsilons: the epsilon grid of each norm, e.g. ``{"linf": [0, 0.03], "l2": [0, 0.5]}``.
        attacks: one :class:`AttackSummary` per attack, in the order they ran.
        worst_case: per norm, the number of samples robust to every attack of that norm.
        cascade: whether later attacks ran only on the samples earlier ones left robust.
        seed: the seed given to seedable attacks (None: the attacks' own seeds).
        seconds: total wall time.
        version: the advlib version that produced the report.
    """

    model: str
    framework: str
    n: int
    clean_correct: int
    epsilons: dict[str, list[float]]
    attacks: list[AttackSummary]
    worst_case: dict[str, list[int]]
    cascade: bool = True
    seed: int | None = 0
    seconds: float = 0.0
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ numbers
    @property
    def clean_accuracy(self) -> float:
        return self.clean_correct / self.n if self.n else math.nan

    def accuracy(self, count: int) -> float:
        """``count / n``: a count of this report as an accuracy."""
        return count / self.n if self.n else math.nan

    def interval(self, count: int) -> Interval:
        """The 95% interval of ``count / n``."""
        return interval(count, self.n)

    def attack(self, name: str) -> AttackSummary:
        """The summary of the attack called ``name``."""
        for summary in self.attacks:
            if summary.name == name:
                return summary
        raise KeyError(f"no attack named {name!r}; attacks: {[a.name for a in self.attacks]}")

    def robust_accuracy(self, name: str) -> list[float]:
        """Robust accuracy per epsilon of the attack called ``name``."""
        return [self.accuracy(k) for k in self.attack(name).robust]

    def worst_case_accuracy(self, norm: str) -> list[float]:
        """Robust accuracy per epsilon against every attack of ``norm``."""
        return [self.accuracy(k) for k in self.worst_case[norm]]

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        from .table import format_report

        return format_report(self)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as JSON-compatible data, with accuracies and intervals
        added for convenience (``from_dict`` recomputes them from the counts)."""
        data = asdict(self)
        for summary in data["attacks"]:
            if summary["distances"] is not None:
                summary["distances"] = [_encode_float(d) for d in summary["distances"]]
            summary["robust_accuracy"] = [self.accuracy(k) for k in summary["robust"]]
            summary["interval"] = [list(self.interval(k)) for k in summary["robust"]]
        data["clean_accuracy"] = self.clean_accuracy
        data["clean_interval"] = list(self.interval(self.clean_correct))
        data["worst_case_accuracy"] = {
            norm: [self.accuracy(k) for k in counts] for norm, counts in self.worst_case.items()
        }
        data["worst_case_interval"] = {
            norm: [list(self.interval(k)) for k in counts]
            for norm, counts in self.worst_case.items()
        }
        return _json_safe(data)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessReport:
        """The report :meth:`to_dict` described."""
        try:
            attacks = []
            for entry in data["attacks"]:
                fields = {k: v for k, v in entry.items() if k in AttackSummary.__dataclass_fields__}
                if fields.get("distances") is not None:
                    fields["distances"] = [_decode_float(d) for d in fields["distances"]]
                attacks.append(AttackSummary(**fields))
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            fields["attacks"] = attacks
            return cls(**fields)
        except (KeyError, TypeError) as error:
            raise ValueError(f"not an advlib robustness report: {error}") from None

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> RobustnessReport:
        """Read a report written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_csv(self, path: str | Path) -> None:
        """One row per attack (or ``clean`` / ``worst case``) and epsilon: norm, attack,
        epsilon, robust, n, accuracy, ci_low, ci_high, cumulative."""
        rows: list[list[Any]] = []
        low, high = self.interval(self.clean_correct)
        clean = self.clean_correct
        rows.append(["", "clean", "", clean, self.n, self.clean_accuracy, low, high, ""])
        for summary in self.attacks:
            for eps, k in zip(summary.epsilons, summary.robust, strict=True):
                low, high = self.interval(k)
                rows.append(
                    [
                        summary.norm,
                        summary.name,
                        eps,
                        k,
                        self.n,
                        self.accuracy(k),
                        low,
                        high,
                        self.cascade,
                    ]
                )
        for norm, counts in self.worst_case.items():
            for eps, k in zip(self.epsilons[norm], counts, strict=True):
                low, high = self.interval(k)
                rows.append([norm, "worst case", eps, k, self.n, self.accuracy(k), low, high, True])
        with Path(path).open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(
                [
                    "norm",
                    "attack",
                    "epsilon",
                    "robust",
                    "n",
                    "accuracy",
                    "ci_low",
                    "ci_high",
                    "cumulative",
                ]
            )
            writer.writerows(rows)

    def plot(self, path: str | Path | None = None) -> Any:
        """Robust accuracy against epsilon, one panel per norm: every attack and the worst
        case, with 95% bands. Saves a PNG (or any format matplotlib infers from the suffix)
        when ``path`` is given; returns the matplotlib ``Figure``. Needs matplotlib."""
        from .plot import plot_report

        return plot_report(self, path)


def _encode_float(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf"
    return value


def _decode_float(value: float | str | None) -> float:
    if value is None:
        return math.nan
    return float(value)


def _json_safe(value: Any) -> Any:
    """NaN (e.g. the interval of zero samples) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
