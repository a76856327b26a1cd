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
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .plot import plot_report, write_png
from .table import format_report, write_html, write_markdown, write_text

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

    # ------------------------------------------------------------------ combine
    @classmethod
    def merge(cls, parts: Any) -> RobustnessReport:
        """The report of several parts of one evaluation on disjoint samples (shards).

        Args:
            parts: a list of :class:`~advlib.evaluation.results.ResultTable` (per-sample
                results: the merged report equals the one-process report exactly, distances
                ordered by sample id; a sample in two tables raises ValueError), or a list of
                reports (counts, calls and seconds add up; distances concatenate in order).

        Raises:
            ValueError: for no parts, or parts of different evaluations (naming what differs).
            TypeError: for parts that are neither, or a mix of both.
        """
        from .results import ResultTable, reduce_reports

        parts = list(parts) if isinstance(parts, list | tuple) else parts
        if not isinstance(parts, list) or not parts:
            raise ValueError(
                f"parts: expected a non-empty list of reports or tables, got {parts!r}"
            )
        if all(isinstance(p, ResultTable) for p in parts):
            return ResultTable.concat(parts).to_report()
        if all(isinstance(p, RobustnessReport) for p in parts):
            return reduce_reports(parts)
        kinds = sorted({type(p).__name__ for p in parts})
        raise TypeError(
            f"parts: expected all RobustnessReport or all ResultTable, got {', '.join(kinds)}"
        )

    @classmethod
    def from_results(cls, path: str | Path) -> RobustnessReport:
        """The report of the results directory ``path`` that ``advlib.evaluate(...,
        results=path)`` wrote (all its finished blocks; needs pyarrow)."""
        from .store import read_results

        return read_results(path).to_report()

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
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

    def save(self, path: str | Path, format: str | None = None) -> None:
        """Write the report to ``path``.

        Args:
            path: the file to write (its folder must exist).
            format: one of :data:`WRITERS`: ``"txt"`` (the table ``print`` shows), ``"json"``
                (everything, readable by :meth:`from_json`), ``"csv"``, ``"png"`` (the plot),
                ``"md"`` (Markdown tables) or ``"html"`` (one self-contained page with the
                tables and the plot). Default None: the format named by ``path``'s suffix.

        Raises:
            ValueError: for a format (or, without ``format``, a suffix) that is none of these.
            TypeError: for a ``path`` that is no path.
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"path: expected a file name (str or pathlib.Path), got {type(path).__name__}"
            )
        path = Path(path)
        WRITERS[_format(path, format)].write(self, path)

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` (``save(path, format="json")``)."""
        self.save(path, format="json")

    @classmethod
    def from_json(cls, path: str | Path) -> RobustnessReport:
        """Read a report written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_csv(self, path: str | Path) -> None:
        """One row per attack (or ``clean`` / ``worst case``) and epsilon: norm, attack,
        epsilon, robust, n, accuracy, ci_low, ci_high, cumulative
        (``save(path, format="csv")``)."""
        self.save(path, format="csv")

    def plot(self, path: str | Path | None = None) -> Any:
        """Robust accuracy against epsilon, one panel per norm: every attack and the worst
        case, with 95% bands. Saves a PNG (or any format matplotlib infers from the suffix)
        when ``path`` is given; returns the matplotlib ``Figure``. Needs matplotlib."""
        return plot_report(self, path)


# ---------------------------------------------------------------------- writers
#: The columns of :meth:`RobustnessReport.to_csv`.
CSV_HEADER = (
    "norm",
    "attack",
    "epsilon",
    "robust",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "cumulative",
)


def csv_rows(report: RobustnessReport) -> list[list[Any]]:
    """The rows of :meth:`RobustnessReport.to_csv`, in :data:`CSV_HEADER`'s order: clean
    accuracy, each attack at each epsilon, then each norm's worst case."""

    def row(norm: str, name: str, eps: Any, count: int, cumulative: Any) -> list[Any]:
        low, high = report.interval(count)
        return [norm, name, eps, count, report.n, report.accuracy(count), low, high, cumulative]

    rows = [row("", "clean", "", report.clean_correct, "")]
    for s in report.attacks:
        for eps, count in zip(s.epsilons, s.robust, strict=True):
            rows.append(row(s.norm, s.name, eps, count, report.cascade))
    for norm, counts in report.worst_case.items():
        for eps, count in zip(report.epsilons[norm], counts, strict=True):
            rows.append(row(norm, "worst case", eps, count, True))
    return rows


def write_json(report: RobustnessReport, path: Path) -> None:
    """:meth:`RobustnessReport.to_dict` as strict JSON (no NaN or Infinity literals)."""
    path.write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n", "utf-8")


def write_csv(report: RobustnessReport, path: Path) -> None:
    """:data:`CSV_HEADER` and :func:`csv_rows`."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_HEADER)
        writer.writerows(csv_rows(report))


class Writer(NamedTuple):
    """How :meth:`RobustnessReport.save` writes one format."""

    write: Callable[[RobustnessReport, Path], None]
    #: What the file holds, for messages: "cannot write the plot ...".
    description: str


#: The report writers by format, which is also the suffix of their files. A new format is a
#: function ``(report, path) -> None`` and one line here.
WRITERS: dict[str, Writer] = {
    "txt": Writer(write_text, "the text table"),
    "json": Writer(write_json, "the JSON report"),
    "csv": Writer(write_csv, "the CSV table"),
    "png": Writer(write_png, "the plot"),
    "md": Writer(write_markdown, "the Markdown report"),
    "html": Writer(write_html, "the HTML page"),
}


def _format(path: Path, format: str | None) -> str:
    """``format``, or the one ``path``'s suffix names; a ValueError listing the formats."""
    names = ", ".join(WRITERS)
    if format is not None:
        if not isinstance(format, str) or format.lower() not in WRITERS:
            raise ValueError(f"format: expected one of {names}, got {format!r}")
        return format.lower()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in WRITERS:
        raise ValueError(
            f"path: cannot tell the report format from the suffix of {str(path)!r}; expected "
            f"one of .{', .'.join(WRITERS)}, or give format= (one of {names})"
        )
    return suffix


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
