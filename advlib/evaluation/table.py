"""The tables of a :class:`~advlib.evaluation.report.RobustnessReport`: plain text, Markdown and
a self-contained HTML page. One set of rows feeds all three (and the plot's curves)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .plot import png_bytes

if TYPE_CHECKING:
    from .report import AttackSummary, RobustnessReport

NORM_TITLES = {"linf": "Linf", "l2": "L2", "l1": "L1", "l0": "L0", "l0pixels": "L0 (pixels)"}

_COST_HEADER = ("attack", "seconds", "forward calls", "gradient calls", "attacked")

_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
code { font-size: 0.9em; background: #f3f3f3; padding: 0.1em 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
td small { color: #666; display: block; }
tr.worst td { font-weight: bold; }
img { max-width: 100%; }
footer { margin-top: 2em; color: #888; font-size: 0.85em; }
"""


# ---------------------------------------------------------------------- shared pieces
def norm_title(norm: str, tex: bool = False) -> str:
    """How tables and plots name ``norm``: ``"Linf"``, or with ``tex`` matplotlib's
    ``"L$_{\\infty}$"``; a norm without a title as given."""
    title = NORM_TITLES.get(norm)
    if title is None:
        return norm
    if tex:
        return "L$_{" + title[1:].replace("inf", "\\infty") + "}$"
    return title


class Row(NamedTuple):
    """One row of a norm's accuracy table and one curve of its plot."""

    label: str
    counts: list[int]
    #: The row's attack; None for the worst case.
    attack: AttackSummary | None


def accuracy_rows(report: RobustnessReport, norm: str) -> list[Row]:
    """The robust counts per epsilon of ``norm``'s attacks, labelled ``"+ NAME"`` where a
    cascade adds the attack to the ones before it, then the worst case when there are several
    attacks (with one it is that attack's row)."""
    attacks = [a for a in report.attacks if a.norm == norm]
    rows = [
        Row(("+ " if report.cascade and index else "") + a.name, a.robust, a)
        for index, a in enumerate(attacks)
    ]
    if len(attacks) > 1:
        rows.append(Row("worst case", report.worst_case[norm], None))
    return rows


def describe_run(report: RobustnessReport) -> str:
    """Samples, seed and whether the attacks ran as a cascade."""
    mode = (
        "cascade (each attack runs only on the samples still robust; rows are cumulative)"
        if report.cascade
        else "every attack on every sample"
    )
    return f"{report.n} samples, seed {report.seed}, {mode}"


def describe_clean(report: RobustnessReport) -> str:
    """Clean accuracy in % with its 95% interval."""
    low, high = report.interval(report.clean_correct)
    return (
        f"clean accuracy: {_percent(report.clean_accuracy)}%  "
        f"(95% CI {_percent(low)}-{_percent(high)})"
    )


def describe_distances(summary: AttackSummary) -> str | None:
    """A minimization attack's smallest adversarials in one sentence (None for the others)."""
    stats = summary.distance_summary()
    if stats is None:
        return None
    return (
        f"{summary.name}: smallest {norm_title(summary.norm)} "
        f"adversarial over {int(stats['attacked'])} attacked samples: median "
        f"{_number(stats['median'])}, quartiles {_number(stats['q25'])}-"
        f"{_number(stats['q75'])}, 10%-90% {_number(stats['q10'])}-{_number(stats['q90'])}, "
        f"none found for {int(stats['not_found'])}"
    )


def cost_rows(report: RobustnessReport) -> list[tuple[str, ...]]:
    """Per attack: seconds, forward calls, gradient calls and samples attacked (no header)."""
    return [
        (
            s.name,
            f"{s.seconds:.2f}",
            str(s.forward_calls),
            str(s.gradient_calls),
            str(s.attacked),
        )
        for s in report.attacks
    ]


def _distance_sentences(report: RobustnessReport) -> list[str]:
    return [text for s in report.attacks if (text := describe_distances(s)) is not None]


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


# ---------------------------------------------------------------------- plain text
def format_report(report: RobustnessReport) -> str:
    """Clean accuracy, then per norm one row per attack and epsilon column (accuracy in %,
    the 95% interval on the line below), the worst case, distance quantiles and costs."""
    lines = [f"advlib robustness report: {report.model}", describe_run(report)]
    lines.append(describe_clean(report))
    for norm, grid in report.epsilons.items():
        lines += ["", *_text_accuracy_table(report, norm, grid)]
    for sentence in _distance_sentences(report):
        lines += ["", sentence]
    lines.append("")
    rows = [_COST_HEADER, *cost_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COST_HEADER))]
    for row in rows:
        lines.append(
            row[0].ljust(widths[0])
            + "".join(cell.rjust(w + 2) for cell, w in zip(row[1:], widths[1:], strict=True))
        )
    lines.append(f"total time: {report.seconds:.1f} s")
    return "\n".join(lines)


def _text_accuracy_table(report: RobustnessReport, norm: str, grid: list[float]) -> list[str]:
    rows = accuracy_rows(report, norm)
    header = f"{norm_title(norm)} epsilon"
    name_width = max(len(header), *(len(row.label) for row in rows))
    cells = [[_number(eps) for eps in grid]]
    for _, counts, _ in rows:
        cells.append([_percent(report.accuracy(k)) for k in counts])
        cells.append([_range(report.interval(k)) for k in counts])
    width = max(len(cell) for row in cells for cell in row) + 2
    lines = [f"robust accuracy (%) under {norm_title(norm)} attacks"]
    lines.append(header.ljust(name_width) + "".join(c.rjust(width) for c in cells[0]))
    for i, row in enumerate(rows):
        lines.append(
            row.label.ljust(name_width) + "".join(c.rjust(width) for c in cells[1 + 2 * i])
        )
        lines.append(" " * name_width + "".join(c.rjust(width) for c in cells[2 + 2 * i]))
    return lines


def write_text(report: RobustnessReport, path: Path) -> None:
    """The text table that ``print(report)`` shows."""
    path.write_text(format_report(report) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- Markdown
def format_markdown(report: RobustnessReport) -> str:
    """The report as Markdown: per norm a table of robust accuracy (%) with its 95% interval,
    one row per attack; distance quantiles and costs."""
    lines = [
        f"# advlib robustness report: {_md(report.model)}",
        "",
        f"{describe_run(report)}; {describe_clean(report)}",
    ]
    for norm, grid in report.epsilons.items():
        header = [f"{norm_title(norm)} epsilon", *(_number(eps) for eps in grid)]
        rows = [
            [name, *(_accuracy_cell(report, k, " (") + ")" for k in counts)]
            for name, counts, _ in accuracy_rows(report, norm)
        ]
        lines += ["", f"## Robust accuracy (%) under {norm_title(norm)} attacks", ""]
        lines += _md_table(header, rows)
    distances = _distance_sentences(report)
    if distances:
        lines += ["", "## Smallest adversarials", ""] + [f"- {_md(s)}" for s in distances]
    lines += ["", "## Cost", ""]
    lines += _md_table(list(_COST_HEADER), [list(row) for row in cost_rows(report)])
    lines += ["", f"Total time {report.seconds:.1f} s; advlib {_md(report.version)}."]
    return "\n".join(lines) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_md(c) for c in cells) + " |"

    return [line(header), "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"] + [
        line(row) for row in rows
    ]


def _md(text: str) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _accuracy_cell(report: RobustnessReport, count: int, separator: str) -> str:
    return f"{_percent(report.accuracy(count))}{separator}{_range(report.interval(count))}"


def write_markdown(report: RobustnessReport, path: Path) -> None:
    """:func:`format_markdown`, for a README, an issue or a pull request."""
    path.write_text(format_markdown(report), encoding="utf-8")


# ---------------------------------------------------------------------- HTML
def format_html(report: RobustnessReport, png: bytes | None) -> str:
    """The report as one HTML page with inline CSS and ``png`` (the plot) embedded as base64:
    no external files, scripts or links, so it can be mailed or attached as is."""
    e = html.escape
    body = [
        f"<h1>advlib robustness report</h1>\n<p><code>{e(report.model)}</code></p>",
        f"<p>{e(describe_run(report))}.<br>{e(describe_clean(report))}</p>",
    ]
    for norm, grid in report.epsilons.items():
        header = [f"{norm_title(norm)} epsilon", *(_number(eps) for eps in grid)]
        rows = [
            (
                name,
                [_accuracy_cell(report, k, "<small>") + "</small>" for k in counts],
                attack is None,
            )
            for name, counts, attack in accuracy_rows(report, norm)
        ]
        body.append(f"<h2>Robust accuracy (%) under {e(norm_title(norm))} attacks</h2>")
        body.append(_html_table(header, rows))
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        alt = "robust accuracy against epsilon, one panel per norm, with 95% bands"
        body.append(
            f'<h2>Robust accuracy against epsilon</h2>\n<img alt="{alt}" '
            f'src="data:image/png;base64,{data}">'
        )
    distances = _distance_sentences(report)
    if distances:
        items = "".join(f"<li>{e(s)}</li>" for s in distances)
        body.append(f"<h2>Smallest adversarials</h2>\n<ul>{items}</ul>")
    costs = [(row[0], [e(c) for c in row[1:]], False) for row in cost_rows(report)]
    body.append("<h2>Cost</h2>\n" + _html_table(list(_COST_HEADER), costs))
    body.append(f"<footer>Total time {report.seconds:.1f} s; advlib {e(report.version)}.</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>advlib robustness report: {e(report.model)}</title>\n"
        f"<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _html_table(header: list[str], rows: list[tuple[str, list[str], bool]]) -> str:
    """A table of (name, cells, emphasised) rows: names are escaped here, cells are HTML."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for name, cells, emphasised in rows:
        css = ' class="worst"' if emphasised else ""
        tds = "".join(f"<td>{c}</td>" for c in cells)
        lines.append(f"<tr{css}><td>{html.escape(name)}</td>{tds}</tr>")
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)


def write_html(report: RobustnessReport, path: Path) -> None:
    """:func:`format_html` with the plot embedded. Needs matplotlib."""
    path.write_text(format_html(report, png_bytes(report)), encoding="utf-8")
