"""Report writers: one registry by format (txt, json, csv, png, md, html), ``report.save`` and
the command line's ``--format``. Most tests use a report built by hand, so every expected
value is computed here from its counts, independently of the writers."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest

from advlib.cli import DEFAULT_FORMATS, UsageError, _write, build_parser, main
from advlib.evaluation.report import WRITERS, AttackSummary, RobustnessReport, Writer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N = 50
LINF = [0.0, 0.05, 0.1, 0.3]
L2 = [0.0, 0.5, 1.0]
# Smallest L2 adversarials of the 46 correctly classified samples; 4 misclassified (0).
DISTANCES = [0.0] * 4 + [0.2] * 10 + [0.7] * 20 + [1.5] * 14 + [math.inf] * 2


def _report(cascade: bool = True) -> RobustnessReport:
    """Two cascaded Linf attacks (one with characters Markdown and HTML must escape) and one
    L2 minimization attack whose counts follow from its distances."""
    pgd = [46, 25, 9, 1]
    l2_robust = [sum(d > eps for d in DISTANCES) for eps in L2]
    return RobustnessReport(
        model="PyTorchModel",
        framework="torch",
        n=N,
        clean_correct=46,
        epsilons={"linf": LINF, "l2": L2},
        attacks=[
            AttackSummary("FGSM", "FGSM()", "linf", "fixed-epsilon", LINF, [46, 30, 17, 4], 46),
            AttackSummary("PGD <a|b>", "PGD()", "linf", "fixed-epsilon", LINF, pgd, 30, 2.5, 0, 90),
            AttackSummary(
                "CW", "CW()", "l2", "minimization", L2, l2_robust, 46, 4.0, 40, 900, DISTANCES
            ),
        ],
        worst_case={"linf": pgd, "l2": l2_robust},
        cascade=cascade,
        seed=0,
        seconds=7.25,
        version="0.0-test",
    )


def _percent(count: int) -> str:
    return f"{100 * count / N:.1f}"


def _ci(count: int) -> tuple[float, float]:
    ci = binomtest(count, N).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def _cell(count: int) -> str:
    """Accuracy and 95% interval in %, as every table shows them."""
    low, high = _ci(count)
    return f"{_percent(count)} {100 * low:.1f}-{100 * high:.1f}"


def _expected_rows(report: RobustnessReport, norm: str) -> list[tuple[str, list[int]]]:
    attacks = [a for a in report.attacks if a.norm == norm]
    rows = [
        (("+ " if i and report.cascade else "") + a.name, a.robust) for i, a in enumerate(attacks)
    ]
    return rows + ([("worst case", report.worst_case[norm])] if len(attacks) > 1 else [])


def _png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, checking the signature and every chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        crc = int.from_bytes(data[at + 8 + length : at + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append(kind)
        at += 12 + length
    return chunks


# ------------------------------------------------------------------ the registry
def test_suffix_and_format_pick_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(WRITERS) == ["txt", "json", "csv", "png", "md", "html"]
    calls: list[tuple[str, Path]] = []
    for name, writer in WRITERS.items():

        def record(report: RobustnessReport, path: Path, name: str = name) -> None:
            calls.append((name, path))

        monkeypatch.setitem(WRITERS, name, writer._replace(write=record))
    report = _report()
    for name in WRITERS:
        report.save(tmp_path / f"r.{name}")
        report.save(str(tmp_path / f"R.{name.upper()}"))
        report.save(tmp_path / "r.out", format=name)
        report.save(tmp_path / "r.json", format=name.upper())  # format= wins over the suffix
        assert calls == [
            (name, tmp_path / f"r.{name}"),
            (name, tmp_path / f"R.{name.upper()}"),
            (name, tmp_path / "r.out"),
            (name, tmp_path / "r.json"),
        ]
        calls.clear()


@pytest.mark.parametrize("path", ["r.pdf", "r", "r.json.bak"])
def test_unknown_suffix_lists_the_formats(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match=r"\.txt, \.json, \.csv, \.png, \.md, \.html.*format="):
        _report().save(tmp_path / path)
    assert not (tmp_path / path).exists()


@pytest.mark.parametrize("name", ["pdf", "", "markdown", 3])
def test_unknown_format_lists_the_formats(tmp_path: Path, name: Any) -> None:
    with pytest.raises(ValueError, match=r"format: expected one of txt, json, csv, png, md, html"):
        _report().save(tmp_path / "r.json", format=name)
    assert not (tmp_path / "r.json").exists()


def test_path_must_be_a_path() -> None:
    with pytest.raises(TypeError, match=r"path: expected a file name .* got int"):
        _report().save(3)  # type: ignore[arg-type]


def test_a_new_format_is_one_function_and_one_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write_tsv(report: RobustnessReport, path: Path) -> None:
        path.write_text("\n".join(f"{a.name}\t{a.robust[-1]}" for a in report.attacks))

    monkeypatch.setitem(WRITERS, "tsv", Writer(write_tsv, "the TSV table"))
    _report().save(tmp_path / "r.tsv")
    assert (tmp_path / "r.tsv").read_text().splitlines()[0] == "FGSM\t4"
    assert build_parser().parse_args(["demo", "--format", "tsv"]).format == ["tsv"]


def test_old_methods_write_what_save_writes(tmp_path: Path) -> None:
    matplotlib_image = pytest.importorskip("matplotlib.image")
    report = _report()
    report.to_json(tmp_path / "a.json")
    report.to_csv(tmp_path / "a.csv")
    figure = report.plot(tmp_path / "a.png")
    for name in ("json", "csv", "png"):
        report.save(tmp_path / f"b.{name}")
    for name in ("json", "csv"):
        assert (tmp_path / f"a.{name}").read_bytes() == (tmp_path / f"b.{name}").read_bytes()
    pixels = [matplotlib_image.imread(tmp_path / f"{s}.png") for s in "ab"]
    assert np.array_equal(*pixels)
    assert len(figure.axes) == 2


# ------------------------------------------------------------------ each writer
def test_text_is_the_printed_table(tmp_path: Path) -> None:
    report = _report()
    report.save(tmp_path / "r.txt")
    text = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert text == str(report) + "\n"
    for norm in ("linf", "l2"):
        for name, counts in _expected_rows(report, norm):
            line = next(line for line in text.splitlines() if line.startswith(name + " "))
            assert line.split()[-len(counts) :] == [_percent(k) for k in counts]


def test_json_round_trips_to_the_same_numbers(tmp_path: Path) -> None:
    report = _report()
    report.save(tmp_path / "r.json")
    raw = (tmp_path / "r.json").read_text()
    assert "NaN" not in raw and "Infinity" not in raw
    data = json.loads(raw)
    for entry, summary in zip(data["attacks"], report.attacks, strict=True):
        assert entry["robust"] == summary.robust
        assert entry["robust_accuracy"] == [k / N for k in summary.robust]
        assert entry["interval"] == [list(_ci(k)) for k in summary.robust]
    assert data["clean_accuracy"] == 46 / N
    loaded = RobustnessReport.from_json(tmp_path / "r.json")
    assert loaded == report  # every field, the distances' nan / inf included
    assert loaded.attack("CW").distances == DISTANCES


def test_csv_rows_are_the_reports(tmp_path: Path) -> None:
    report = _report(cascade=False)
    report.save(tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    expected: list[tuple[str, str, float | str, int, str]] = [("", "clean", "", 46, "")]
    for a in report.attacks:
        expected += [(a.norm, a.name, e, k, "False") for e, k in zip(a.epsilons, a.robust)]
    for norm, counts in report.worst_case.items():
        expected += [
            (norm, "worst case", e, k, "True") for e, k in zip(report.epsilons[norm], counts)
        ]
    assert len(rows) == len(expected)
    for row, (norm, name, eps, count, cumulative) in zip(rows, expected, strict=True):
        assert (row["norm"], row["attack"], row["cumulative"]) == (norm, name, cumulative)
        assert row["epsilon"] == ("" if eps == "" else str(eps))
        assert (int(row["robust"]), int(row["n"])) == (count, N)
        assert float(row["accuracy"]) == count / N
        assert (float(row["ci_low"]), float(row["ci_high"])) == _ci(count)


def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """Each Markdown table by the heading above it: rows of cells, pipes unescaped."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            tables.setdefault(heading, []).append([c.strip().replace("\\|", "|") for c in cells])
    return tables


@pytest.mark.parametrize("cascade", [True, False])
def test_markdown_has_a_row_per_attack_with_its_accuracies(tmp_path: Path, cascade: bool) -> None:
    report = _report(cascade)
    report.save(tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    tables = _markdown_tables(text)
    for norm, title, grid in (("linf", "Linf", LINF), ("l2", "L2", L2)):
        header, rule, *rows = tables[f"Robust accuracy (%) under {title} attacks"]
        assert header == [f"{title} epsilon", *(f"{eps:.4g}" for eps in grid)]
        assert set(rule[1:]) == {"---:"}
        expected = _expected_rows(report, norm)
        assert [row[0] for row in rows] == [name for name, _ in expected]
        for row, (_, counts) in zip(rows, expected, strict=True):
            assert [c.replace("(", "").replace(")", "") for c in row[1:]] == [
                _cell(k) for k in counts
            ]
    header, _, *costs = tables["Cost"]
    assert [row[0] for row in costs] == [a.name for a in report.attacks]
    assert [row[3] for row in costs] == ["0", "90", "900"]  # gradient calls
    assert f"clean accuracy: {_percent(46)}%" in text


class _Page(HTMLParser):
    """The tables (rows of cell texts), attributes and open-tag balance of an HTML page."""

    VOID = {"meta", "img", "br", "link", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.open: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, key, value or "") for key, value in attrs]
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag, tag
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and data.strip():
            self._cell.append(data.strip())


def test_html_is_one_page_with_the_tables_and_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = _report()
    report.save(tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.open == []  # every element closed, in order
    assert not re.search(r"https?://", text)
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    assert "<a|b>" not in text and "PGD &lt;a|b&gt;" in text  # names are escaped
    linf, l2, costs = page.tables
    for table, norm, grid in ((linf, "linf", LINF), (l2, "l2", L2)):
        assert table[0][1:] == [f"{eps:.4g}" for eps in grid]
        expected = _expected_rows(report, norm)
        assert [row[0] for row in table[1:]] == [name for name, _ in expected]
        for row, (_, counts) in zip(table[1:], expected, strict=True):
            assert row[1:] == [_cell(k) for k in counts]
    assert [row[0] for row in costs[1:]] == [a.name for a in report.attacks]
    sources = [value for tag, key, value in page.attributes if key in ("src", "href")]
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    png = base64.b64decode(sources[0].split(",", 1)[1], validate=True)
    assert _png_chunks(png)[-1] == b"IEND"
    report.save(tmp_path / "r.png")
    assert png == (tmp_path / "r.png").read_bytes()


def test_png_is_a_valid_png_of_the_plot(tmp_path: Path) -> None:
    matplotlib_image = pytest.importorskip("matplotlib.image")
    _report().save(tmp_path / "r.png")
    data = (tmp_path / "r.png").read_bytes()
    chunks = _png_chunks(data)
    assert chunks[0] == b"IHDR" and b"IDAT" in chunks and chunks[-1] == b"IEND"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > height > 100  # two panels side by side
    pixels = matplotlib_image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0


def test_writers_without_matplotlib_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    for name in ("png", "html"):
        with pytest.raises(ImportError, match="pip install matplotlib"):
            _report().save(tmp_path / f"r.{name}")
    _report().save(tmp_path / "r.md")  # the others need no matplotlib


# ------------------------------------------------------------------ command line
def test_format_option(capsys: pytest.CaptureFixture[str]) -> None:
    parse = build_parser().parse_args
    evaluate = ["evaluate", "m:f", "--eps", "0.1"]
    assert parse(evaluate).format == DEFAULT_FORMATS == ("json", "csv", "png", "md", "html")
    assert parse([*evaluate, "--format", "MD, html,md"]).format == ["md", "html"]
    assert parse(["demo", "--format", "txt"]).format == ["txt"]
    for bad in ("pdf", "json,pdf", ","):
        with pytest.raises(SystemExit) as exit_info:
            parse([*evaluate, "--format", bad])
        assert exit_info.value.code == 2
        assert "txt, json, csv, png, md, html" in capsys.readouterr().err


def test_cli_writes_the_formats_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report()
    written = _write(report, tmp_path / "new" / "folder", "r", ["md", "txt"])
    assert written == [str(tmp_path / "new" / "folder" / f"r.{s}") for s in ("md", "txt")]
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == ["r.md", "r.txt"]

    def broken(self: Any, path: Any = None) -> Any:
        raise RuntimeError("no canvas")

    monkeypatch.setattr(RobustnessReport, "plot", broken)
    for name, what in (("png", "the plot"), ("html", "the HTML page")):
        with pytest.raises(UsageError, match=f"cannot write {what} .*r.{name}: RuntimeError") as e:
            _write(report, tmp_path, "r", [name])
        assert e.value.exit_code == 1
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="--out: cannot write to") as e:
        _write(report, tmp_path / "file", "r", ["json"])
    assert e.value.exit_code == 2


MODELS = """
import advlib

def load():
    x, y = advlib.zoo.digits("test")
    return advlib.zoo.digits_cnn("{backend}"), (x[:40], y[:40])
"""


def test_evaluate_writes_the_requested_reports(
    backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading a file adds its folder
    (tmp_path / "models.py").write_text(MODELS.format(backend=backend))
    out = tmp_path / "out"
    args = ["--eps", "0,0.1", "--no-progress", "--out", str(out), "--format", "md,html,json"]
    assert main(["evaluate", f"{tmp_path / 'models.py'}:load", "--attack", "FGSM", *args]) == 0
    assert "report.md" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    report = RobustnessReport.from_json(out / "report.json")
    assert report.framework == backend and report.n == 40
    rows = _markdown_tables((out / "report.md").read_text(encoding="utf-8"))
    (_, _, fgsm) = rows["Robust accuracy (%) under Linf attacks"]
    expected = [f"{100 * k / 40:.1f}" for k in report.attack("FGSM").robust]
    assert [cell.split()[0] for cell in fgsm[1:]] == expected
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert [cell.split()[0] for cell in page.tables[0][1][1:]] == expected
