"""Per-sample results of an evaluation, from which its :class:`RobustnessReport` is reduced.

:func:`advlib.evaluate` attacks the data block by block (a block: one batch of samples). Each
block yields a :class:`ResultTable`: one row per sample, keyed by the sample's id (its global
index, given by ``indices=``, by default its position in the data). Tables of disjoint samples
concatenate, whatever process or machine computed them, and the report reduces from the
concatenation, so a sharded, resumed or distributed run gives the same report as one process.

Columns (all 1-D, one entry per sample; ``i`` an attack's position, ``j`` an epsilon's):

* ``id`` (int64), ``correct`` (clean prediction right), ``seconds`` (the block's wall time);
* ``a{i}.robust.{j}``: robust after attack ``i`` at epsilon ``j`` (with ``cascade``: after it
  and every earlier attack of its norm); ``a{i}.attacked``: the attack ran on the sample;
  ``a{i}.distance``: minimization attacks only, the smallest adversarial's size (``inf``: none
  found, ``0``: misclassified, ``nan``: not attacked); ``a{i}.forward`` / ``a{i}.gradient`` /
  ``a{i}.seconds``: the attack's batched model calls and time on the block;
* ``{norm}.worst.{j}``: robust to every attack of the norm; ``{norm}.white_robust.{j}`` and
  ``{norm}.black_broken.{j}``: for norms with white- and black-box attacks, what the
  black-box significance check needs.

Per-block quantities (calls, seconds) sit on the block's first row and are zero on the others,
so they sum exactly once however tables are merged.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..attacks import _diagnostics as diagnostics
from .report import AttackSummary, RobustnessReport

#: Schema metadata key of the Parquet files.
_META_KEY = b"advlib"
#: Columns that hold one number per block (on its first row) rather than per sample.
_PER_BLOCK = ("forward", "gradient", "seconds")


def column(*parts: Any) -> str:
    """The name of a column: its parts joined by dots (``column("a0", "robust", 2)``)."""
    return ".".join(str(p) for p in parts)


def per_block(value: float, n: int, dtype: Any) -> np.ndarray:
    """A block-level number as a column of ``n`` rows: on the first row, zero on the others."""
    out = np.zeros(n, dtype)
    if n:
        out[0] = value
    return out


@dataclass
class ResultTable:
    """Per-sample results of some samples of one evaluation.

    Attributes:
        header: what the columns mean (JSON-compatible): ``model``, ``framework``,
            ``epsilons`` (per norm), ``attacks`` (per attack: ``name``, ``attack`` (its repr),
            ``norm``, ``kind``, ``requires_grad``), ``cascade``, ``seed`` and ``version``.
        columns: the columns described in the module documentation, by name.
        warnings: diagnostics raised while computing the rows (e.g. gradient masking).
    """

    header: dict[str, Any]
    columns: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """The number of samples (rows)."""
        return len(self.columns["id"])

    @property
    def ids(self) -> np.ndarray:
        """The samples' ids."""
        return self.columns["id"]

    # ------------------------------------------------------------------ combine
    @classmethod
    def concat(cls, tables: Sequence[ResultTable]) -> ResultTable:
        """The rows of ``tables`` (of the same evaluation, disjoint samples) in one table.

        Raises:
            ValueError: for no tables, tables of different evaluations, or a sample id in
                more than one table (a sample would count twice).
        """
        if not tables:
            raise ValueError("tables: expected at least one ResultTable, got none")
        header = tables[0].header
        for table in tables[1:]:
            differs = describe_differences(header, table.header)
            if differs:
                raise ValueError(f"tables: results of different evaluations ({differs})")
        columns = {
            name: np.concatenate([t.columns[name] for t in tables]) for name in tables[0].columns
        }
        ids, counts = np.unique(columns["id"], return_counts=True)
        if (counts > 1).any():
            twice = ids[counts > 1][:10].tolist()
            raise ValueError(
                f"tables: sample ids {twice} appear more than once; merge results of disjoint "
                "samples only (each sample counted once)"
            )
        warnings = list(dict.fromkeys(w for t in tables for w in t.warnings))
        return cls(header, columns, warnings)

    # ------------------------------------------------------------------ reduce
    def to_report(self, seconds: float | None = None) -> RobustnessReport:
        """The :class:`RobustnessReport` of these samples; distances in the order of the
        sample ids. ``seconds``: the report's wall time (default: the blocks' summed time)."""
        order = np.argsort(self.ids, kind="stable")
        c = self.columns
        h = self.header
        summaries = []
        for i, info in enumerate(h["attacks"]):
            grid = h["epsilons"][info["norm"]]
            a = f"a{i}"
            distances = None
            if info["kind"] == "minimization":
                distances = [float(d) for d in c[column(a, "distance")][order]]
            summaries.append(
                AttackSummary(
                    name=info["name"],
                    attack=info["attack"],
                    norm=info["norm"],
                    kind=info["kind"],
                    epsilons=list(grid),
                    robust=[_count(c[column(a, "robust", j)]) for j in range(len(grid))],
                    attacked=_count(c[column(a, "attacked")]),
                    seconds=float(c[column(a, "seconds")].sum()),
                    forward_calls=_count(c[column(a, "forward")]),
                    gradient_calls=_count(c[column(a, "gradient")]),
                    distances=distances,
                )
            )
        worst = {
            norm: [_count(c[column(norm, "worst", j)]) for j in range(len(grid))]
            for norm, grid in h["epsilons"].items()
        }
        return RobustnessReport(
            model=h["model"],
            framework=h["framework"],
            n=self.n,
            clean_correct=_count(c["correct"]),
            epsilons={norm: list(grid) for norm, grid in h["epsilons"].items()},
            attacks=summaries,
            worst_case=worst,
            cascade=bool(h["cascade"]),
            seed=h["seed"],
            seconds=float(c["seconds"].sum()) if seconds is None else seconds,
            version=h["version"],
        )

    def black_box_messages(self) -> list[str]:
        """The black-box significance warnings of these samples (see
        :func:`~advlib.attacks._diagnostics.black_box_significance`)."""
        messages = []
        for norm in self.header["black_box"]:
            for j, eps in enumerate(self.header["epsilons"][norm]):
                robust = self.columns[column(norm, "white_robust", j)]
                fooled = robust & self.columns[column(norm, "black_broken", j)]
                message = diagnostics.black_box_significance(
                    _count(robust), _count(fooled), epsilon=eps, norm=norm
                )
                if message is not None:
                    messages.append(message)
        return messages

    # ------------------------------------------------------------------ files
    def to_parquet(self) -> bytes:
        """The table as Parquet bytes; the header and warnings ride in the schema metadata."""
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        meta = json.dumps({"header": self.header, "warnings": self.warnings})
        table = pa.table(self.columns).replace_schema_metadata({_META_KEY: meta.encode()})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    @classmethod
    def from_parquet(cls, source: bytes | str | Path) -> ResultTable:
        """A table written by :meth:`to_parquet` (bytes, or the path of a file)."""
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        table = pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise ValueError(f"source: {_where(source)} is not an advlib results file")
        meta = json.loads(raw)
        columns = {name: table.column(name).to_numpy() for name in table.column_names}
        return cls(meta["header"], columns, list(meta["warnings"]))


def describe_differences(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """``"key: saved X, now Y"`` for each key whose value differs ("" when none does)."""
    keys = list(dict.fromkeys([*saved, *now]))
    return "; ".join(
        f"{key}: saved {saved.get(key)!r}, now {now.get(key)!r}"
        for key in keys
        if saved.get(key) != now.get(key)
    )


def reduce_reports(reports: Sequence[RobustnessReport]) -> RobustnessReport:
    """The report of the samples of ``reports`` together (reports of one evaluation on
    disjoint samples): counts and calls add up, distances concatenate in order."""
    first = reports[0]
    keys = ("epsilons", "cascade", "seed", "framework")
    for report in reports[1:]:
        differs = describe_differences(
            {k: getattr(first, k) for k in keys} | {"attacks": _attack_keys(first)},
            {k: getattr(report, k) for k in keys} | {"attacks": _attack_keys(report)},
        )
        if differs:
            raise ValueError(f"reports: reports of different evaluations ({differs})")
    attacks = []
    for i, summary in enumerate(first.attacks):
        parts = [r.attacks[i] for r in reports]
        distances = None
        if summary.distances is not None:
            distances = [d for p in parts for d in p.distances or []]
        attacks.append(
            AttackSummary(
                name=summary.name,
                attack=summary.attack,
                norm=summary.norm,
                kind=summary.kind,
                epsilons=list(summary.epsilons),
                robust=_add([p.robust for p in parts]),
                attacked=sum(p.attacked for p in parts),
                seconds=sum(p.seconds for p in parts),
                forward_calls=sum(p.forward_calls for p in parts),
                gradient_calls=sum(p.gradient_calls for p in parts),
                distances=distances,
            )
        )
    return RobustnessReport(
        model=first.model,
        framework=first.framework,
        n=sum(r.n for r in reports),
        clean_correct=sum(r.clean_correct for r in reports),
        epsilons={norm: list(grid) for norm, grid in first.epsilons.items()},
        attacks=attacks,
        worst_case={norm: _add([r.worst_case[norm] for r in reports]) for norm in first.epsilons},
        cascade=first.cascade,
        seed=first.seed,
        seconds=sum(r.seconds for r in reports),
        version=first.version,
    )


def _attack_keys(report: RobustnessReport) -> list[tuple[str, str, str]]:
    return [(a.name, a.attack, a.kind) for a in report.attacks]


def _add(counts: list[list[int]]) -> list[int]:
    return [int(k) for k in np.sum(np.asarray(counts, dtype=np.int64), axis=0)]


def _count(values: np.ndarray) -> int:
    return int(values.sum())


def _where(source: bytes | str | Path) -> str:
    return "the data" if isinstance(source, bytes) else str(source)
