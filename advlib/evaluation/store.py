"""A results directory: the per-sample results of one evaluation, one Parquet file per block.

Layout::

    DIR/config.json                      the evaluation (model, attacks, epsilons, seed, ...)
    DIR/blocks/ids-FIRST-LAST-TAG.parquet one block's ResultTable (written atomically)

A block file appears whole or not at all (written to a temporary name, then ``os.replace``), so
a run killed at any moment leaves only finished blocks. Rerunning with the same directory skips
the samples it already holds; a different configuration is refused, naming what differs.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .results import ResultTable, describe_differences

CONFIG = "config.json"
BLOCKS = "blocks"


class ResultsDir:
    """The results directory ``path`` of the evaluation described by ``config``.

    Args:
        path: the directory (created when missing).
        config: the evaluation's :attr:`ResultTable.header`; a directory that holds another
            evaluation's results raises ValueError naming the fields that differ.
    """

    def __init__(self, path: str | os.PathLike[str], config: dict[str, Any]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"results: expected a directory (str or pathlib.Path), got {type(path).__name__}"
            )
        self.path = Path(path)
        self.config = config
        (self.path / BLOCKS).mkdir(parents=True, exist_ok=True)
        saved = read_config(self.path)
        if saved is None:
            atomic_write(self.path / CONFIG, json.dumps(config, indent=1).encode())
        else:
            differs = describe_differences(saved, config)
            if differs:
                raise ValueError(
                    f"results: {self.path} holds an evaluation with another configuration "
                    f"({differs}); give another results directory, or delete this one to "
                    "start over"
                )

    def files(self) -> list[Path]:
        """The finished block files, in name order."""
        return sorted((self.path / BLOCKS).glob("*.parquet"))

    def done(self) -> np.ndarray:
        """The ids of the samples already evaluated (sorted)."""
        ids = [ResultTable.from_parquet(f).ids for f in self.files()]
        return np.sort(np.concatenate(ids)) if ids else np.zeros(0, np.int64)

    def write(self, table: ResultTable) -> Path:
        """Store one block's table; returns its file."""
        return self.write_bytes(table.to_parquet(), table.ids)

    def write_bytes(self, parquet: bytes, ids: np.ndarray) -> Path:
        """Store a block's table already written as Parquet ``parquet`` (of samples ``ids``)."""
        first, last = (int(ids[0]), int(ids[-1])) if len(ids) else (0, 0)
        name = f"ids-{first:012d}-{last:012d}-{uuid.uuid4().hex[:8]}.parquet"
        path = self.path / BLOCKS / name
        atomic_write(path, parquet)
        return path

    def table(self) -> ResultTable | None:
        """Every stored block in one table (None when there is none yet)."""
        tables = [ResultTable.from_parquet(f) for f in self.files()]
        return ResultTable.concat(tables) if tables else None


def read_config(path: Path) -> dict[str, Any] | None:
    """The configuration stored in the results directory ``path`` (None: none yet)."""
    file = path / CONFIG
    if not file.exists():
        return None
    config: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return config


def read_results(path: str | os.PathLike[str]) -> ResultTable:
    """Every block of the results directory ``path`` in one table.

    Raises:
        ValueError: when ``path`` holds no results.
    """
    folder = Path(path)
    files = sorted((folder / BLOCKS).glob("*.parquet"))
    if read_config(folder) is None or not files:
        raise ValueError(
            f"path: {folder} holds no advlib results (expected {CONFIG} and {BLOCKS}/*.parquet, "
            "as advlib.evaluate(..., results=DIR) writes)"
        )
    return ResultTable.concat([ResultTable.from_parquet(f) for f in files])


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
