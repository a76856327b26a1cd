"""Robust-accuracy curves of a report, drawn with matplotlib.

Uses matplotlib's object-oriented API with the Agg canvas, so plotting never changes the
user's pyplot backend or opens a window.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .report import AttackSummary, RobustnessReport

#: Resolution of saved plots.
DPI = 110


def png_bytes(report: RobustnessReport) -> bytes:
    """``report.plot()`` as PNG data (for the PNG file and the HTML page)."""
    buffer = io.BytesIO()
    # No "Software" entry: the same report gives the same bytes whatever matplotlib wrote it.
    report.plot().savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def write_png(report: RobustnessReport, path: Path) -> None:
    """The plot of :meth:`RobustnessReport.plot` as a PNG file. Needs matplotlib."""
    path.write_bytes(png_bytes(report))


def plot_report(report: RobustnessReport, path: str | Path | None) -> Any:
    """The figure of :meth:`RobustnessReport.plot`, saved to ``path`` unless it is None."""
    from .table import accuracy_rows, norm_title

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "RobustnessReport.plot needs matplotlib, a dependency of advlib that is missing "
            "here: pip install matplotlib"
        ) from None
    norms = list(report.epsilons)
    figure = Figure(figsize=(5.0 * len(norms), 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(norms), squeeze=False)[0]
    for ax, norm in zip(axes, norms, strict=True):
        grid = np.asarray(report.epsilons[norm], dtype=float)
        for label, counts, summary in accuracy_rows(report, norm):
            line = _curve(ax, report, grid, counts, label, "k--" if summary is None else "o-")
            if summary is not None:
                _exact_curve(ax, report, summary, line.get_color(), grid)
        ax.set_title(f"{norm_title(norm, tex=True)} attacks")
        ax.set_xlabel("epsilon")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(
        f"{report.model}: clean accuracy {100 * report.clean_accuracy:.1f}%", fontsize="medium"
    )
    if path is not None:
        figure.savefig(path, dpi=DPI)
    return figure


def _curve(
    ax: Any, report: RobustnessReport, grid: np.ndarray, counts: list[int], label: str, style: str
) -> Any:
    accuracy = np.array([report.accuracy(k) for k in counts])
    bounds = np.array([report.interval(k) for k in counts])
    (line,) = ax.plot(grid, accuracy, style, label=label, markersize=4)
    ax.fill_between(grid, bounds[:, 0], bounds[:, 1], color=line.get_color(), alpha=0.15)
    return line


def _exact_curve(
    ax: Any, report: RobustnessReport, summary: AttackSummary, color: Any, grid: np.ndarray
) -> None:
    """A minimization attack that saw every sample gives robust accuracy at every epsilon."""
    if summary.distances is None:
        return
    distances = np.asarray(summary.distances, dtype=float)
    if np.isnan(distances).any() or len(distances) == 0:
        return  # some samples were not attacked (cascade): only the grid points are exact
    eps = np.linspace(0.0, float(grid.max()) if len(grid) else 1.0, 200)
    accuracy = (distances[None, :] > eps[:, None]).mean(axis=1)
    ax.step(eps, accuracy, where="post", color=color, alpha=0.6, linewidth=1)
