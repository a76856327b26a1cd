"""The text table of a :class:`~advlib.evaluation.report.RobustnessReport`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import RobustnessReport

_NORM_TITLES = {"linf": "Linf", "l2": "L2", "l1": "L1"}


def format_report(report: RobustnessReport) -> str:
    """Clean accuracy, then per norm one row per attack and epsilon column (accuracy in %,
    the 95% interval on the line below), the worst case, distance quantiles and costs."""
    low, high = report.interval(report.clean_correct)
    lines = [
        f"advlib robustness report: {report.model}",
        f"{report.n} samples, seed {report.seed}, "
        + (
            "cascade (each attack runs only on the samples still robust; rows are cumulative)"
            if report.cascade
            else "every attack on every sample"
        ),
        f"clean accuracy: {_percent(report.clean_accuracy)}%  "
        f"(95% CI {_percent(low)}-{_percent(high)})",
    ]
    for norm, grid in report.epsilons.items():
        attacks = [a for a in report.attacks if a.norm == norm]
        rows: list[tuple[str, list[int]]] = []
        for index, summary in enumerate(attacks):
            prefix = "+ " if report.cascade and index > 0 else ""
            rows.append((prefix + summary.name, summary.robust))
        if len(attacks) > 1 or not report.cascade:
            rows.append(("worst case", report.worst_case[norm]))
        name_width = max(len(f"{_NORM_TITLES.get(norm, norm)} epsilon"), *(len(r[0]) for r in rows))
        cells = [[_number(eps) for eps in grid]]
        for _, counts in rows:
            cells.append([_percent(report.accuracy(k)) for k in counts])
            cells.append([_range(report.interval(k)) for k in counts])
        width = max(len(cell) for row in cells for cell in row) + 2
        lines.append("")
        lines.append(f"robust accuracy (%) under {_NORM_TITLES.get(norm, norm)} attacks")
        header = f"{_NORM_TITLES.get(norm, norm)} epsilon".ljust(name_width)
        lines.append(header + "".join(c.rjust(width) for c in cells[0]))
        for i, (name, _) in enumerate(rows):
            lines.append(name.ljust(name_width) + "".join(c.rjust(width) for c in cells[1 + 2 * i]))
            lines.append(" " * name_width + "".join(c.rjust(width) for c in cells[2 + 2 * i]))
    for summary in report.attacks:
        stats = summary.distance_summary()
        if stats is None:
            continue
        lines.append("")
        lines.append(
            f"{summary.name}: smallest {_NORM_TITLES.get(summary.norm, summary.norm)} "
            f"adversarial over {int(stats['attacked'])} attacked samples: median "
            f"{_number(stats['median'])}, quartiles {_number(stats['q25'])}-"
            f"{_number(stats['q75'])}, 10%-90% {_number(stats['q10'])}-{_number(stats['q90'])}, "
            f"none found for {int(stats['not_found'])}"
        )
    lines.append("")
    cost_rows = [("attack", "seconds", "forward calls", "gradient calls", "attacked")]
    for summary in report.attacks:
        cost_rows.append(
            (
                summary.name,
                f"{summary.seconds:.2f}",
                str(summary.forward_calls),
                str(summary.gradient_calls),
                str(summary.attacked),
            )
        )
    widths = [max(len(row[i]) for row in cost_rows) for i in range(len(cost_rows[0]))]
    for row in cost_rows:
        lines.append(
            row[0].ljust(widths[0])
            + "".join(cell.rjust(w + 2) for cell, w in zip(row[1:], widths[1:], strict=True))
        )
    lines.append(f"total time: {report.seconds:.1f} s")
    return "\n".join(lines)


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def _range(bounds: tuple[float, float]) -> str:
    return f"{_percent(bounds[0])}-{_percent(bounds[1])}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.4g}"
