"""``advlib.evaluate(..., engine="ray")``: blocks of samples attacked by Ray Data workers.

The driver (the process that calls :func:`advlib.evaluate`) splits the data into blocks with
stable sample ids, leaves out the samples the results directory already holds, and streams the
blocks through ``Dataset.map_batches`` to a pool of :class:`BlockWorker` actors. Each actor
builds the model once, from a picklable :class:`~advlib.evaluation.factory.ModelFactory`,
and turns each block into its per-sample :class:`~advlib.evaluation.results.ResultTable`
(as Parquet bytes). The driver writes each block's file atomically as it arrives, so a run that
is killed keeps every block it received. The report is reduced from the directory's files.

Faults: an actor whose process dies is restarted by Ray and its block retried (Ray Data's
defaults for actors: ``max_restarts=-1``, ``max_task_retries=-1``). A block whose evaluation
raises (the model or the data is at fault, so a retry would fail again) comes back as an error;
the run finishes the other blocks, then raises :class:`BlockError` naming each failed block's
sample ids and error, so no sample silently drops out of the denominator.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _progress
from ..attacks import _diagnostics as diagnostics
from ..evaluation.counting import CountingModel
from ..evaluation.data import Block, is_pair, iter_blocks
from ..evaluation.evaluate import Plan, Settings, evaluate_block, make_plan
from ..evaluation.factory import ModelFactory, load_target
from ..evaluation.report import RobustnessReport
from ..evaluation.store import ResultsDir

#: Samples per block when neither ``batch_size`` nor the data's batches say otherwise.
BLOCK_SIZE = 128
#: The columns a Ray Dataset given as data must have.
DATASET_COLUMNS = ("x", "y", "id")


class BlockError(RuntimeError):
    """Blocks whose evaluation raised: ``failures`` lists ``(sample ids, error text)``."""

    def __init__(self, failures: list[tuple[list[int], str]]) -> None:
        self.failures = failures
        lines = [f"  samples {_span(ids)}: {error}" for ids, error in failures]
        super().__init__(
            f"{len(failures)} block(s) failed on every try; their samples are not in the "
            "results (the finished blocks are, and a rerun with the same results directory "
            "attacks only what is missing):\n" + "\n".join(lines)
        )


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide :func:`evaluate_ray` runs (see :func:`advlib.evaluate`).

    Attributes:
        workers: actors, an int >= 1, or ``(min, max)`` for Ray to scale between.
        cpus_per_worker: CPUs Ray reserves per actor (> 0).
        gpus_per_worker: GPUs Ray reserves per actor (>= 0; 1 gives each its own device).
        address: the cluster to join (``"auto"``, ``"ray://host:10001"``), or None for a Ray
            already started in this process, else a new local one.
    """

    workers: int | tuple[int, int] = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: str | None = None

    def __post_init__(self) -> None:
        counts: tuple[Any, ...] = (
            self.workers if isinstance(self.workers, tuple) else (self.workers,)
        )
        whole = all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts)
        if not whole or len(counts) > 2 or (len(counts) == 2 and counts[0] > counts[1]):
            raise ValueError(
                f"workers: expected an int >= 1 or a (min, max) pair of them, got {self.workers!r}"
            )
        for name in ("cpus_per_worker", "gpus_per_worker"):
            value = getattr(self, name)
            low = 0 if name == "gpus_per_worker" else 1e-9
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ValueError(
                    f"{name}: expected a number {'>= 0' if low == 0 else '> 0'}, got {value!r}"
                )
        if self.address is not None and not isinstance(self.address, str):
            raise TypeError(f"address: expected a string such as 'auto', got {self.address!r}")


def evaluate_ray(
    model: Any,
    data: Any,
    settings: Settings,
    options: RayOptions,
    *,
    batch_size: int | None,
    progress: bool | None,
    indices: Any,
    results: Any,
) -> RobustnessReport:
    """:func:`advlib.evaluate` on Ray; the arguments are :func:`advlib.evaluate`'s."""
    if results is None:
        raise ValueError(
            "results: engine='ray' writes per-sample results to a directory; give one, e.g. "
            "results='advlib-results' (rerunning with it resumes)"
        )
    ray = import_ray()
    factory = ModelFactory(model)
    _check_picklable(factory)
    plan = make_plan(factory.name, settings)
    store = ResultsDir(results, plan.header)
    if isinstance(data, str):
        data = load_target(data)()
    started = start_ray(ray, options)
    try:
        start = time.perf_counter()
        workers = _run(ray, (factory, plan, store), data, options, (batch_size, indices, progress))
        seconds = time.perf_counter() - start
    finally:
        if started:
            ray.shutdown()
    table = store.table()
    if table is None:
        raise ValueError("data: no samples to evaluate")
    report = table.to_report(seconds=seconds)
    done = sum(w["samples"] for w in workers.values())
    report.extra.update(
        engine="ray",
        workers=len(workers),
        devices=sorted({w["device"] for w in workers.values()}),
        samples_this_run=done,
        samples_per_second=done / seconds if seconds > 0 else 0.0,
        compute_seconds=float(table.columns["seconds"].sum()),
    )
    diagnostics.warn(dict.fromkeys([*table.warnings, *table.black_box_messages()]), "evaluate")
    return report


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise ImportError(
            f"engine='ray' needs Ray Data and pyarrow: pip install 'advlib[ray]' ({error})"
        ) from None
    return ray


def start_ray(ray: Any, options: RayOptions) -> bool:
    """Connect to ``options.address``, or start a local Ray unless one runs in this process;
    whether this call started it (and so shuts it down)."""
    if ray.is_initialized():
        return False
    if options.address is not None:
        ray.init(address=options.address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


def _run(
    ray: Any,
    job: tuple[ModelFactory, Plan, ResultsDir],
    data: Any,
    options: RayOptions,
    how: tuple[int | None, Any, bool | None],
) -> dict[str, dict[str, Any]]:
    """Evaluate the missing samples; per worker (its id), its device and samples done."""
    factory, plan, store = job
    batch_size, indices, progress = how
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    done = store.done()
    dataset, total, per_block = _dataset(ray, data, (batch_size, indices), done)
    if total == 0:
        return {}  # every sample is in the results directory already
    pool = options.workers if isinstance(options.workers, tuple) else (options.workers,)
    results = dataset.map_batches(
        BlockWorker,
        fn_constructor_kwargs={"factory": factory, "plan": plan},
        batch_size=per_block,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            min_size=pool[0], max_size=pool[-1], max_tasks_in_flight_per_actor=1
        ),
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker,
        zero_copy_batch=True,
    )
    failures: list[tuple[list[int], str]] = []
    workers: dict[str, dict[str, Any]] = {}
    bar = _progress.Progress(total, "evaluate", "sample", enabled=progress)
    with bar.activate():
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for k in range(len(batch["ids"])):
                ids = json.loads(batch["ids"][k])
                if batch["error"][k]:
                    failures.append((ids, str(batch["error"][k])))
                else:
                    store.write_bytes(bytes(batch["table"][k]), np.asarray(ids, np.int64))
                worker = workers.setdefault(
                    str(batch["worker"][k]), {"device": str(batch["device"][k]), "samples": 0}
                )
                worker["samples"] += len(ids)
                bar.update(len(ids))
    if failures:
        raise BlockError(failures)
    return workers


def _dataset(
    ray: Any, data: Any, how: tuple[int | None, Any], done: np.ndarray
) -> tuple[Any, int | None, int | None]:
    """The Ray Dataset of the samples still to evaluate, their number (None: unknown) and the
    ``batch_size`` for ``map_batches``: 1 for blocks built here (one row per block), the
    block size for a Ray Dataset of samples."""
    batch_size, indices = how
    if isinstance(data, ray.data.Dataset):
        missing = set(DATASET_COLUMNS) - set(data.columns())
        if missing:
            raise ValueError(
                f"data: a Ray Dataset needs columns {list(DATASET_COLUMNS)} (inputs, label, "
                f"sample id), got {data.columns()} (missing {sorted(missing)})"
            )
        if indices is not None:
            raise ValueError("indices: a Ray Dataset carries its ids in its 'id' column")
        if len(done):
            data = data.map_batches(_NotDone(done), batch_format="numpy")
        return data, None, batch_size or BLOCK_SIZE
    if is_pair(data) and batch_size is None:
        batch_size = BLOCK_SIZE
    rows = [
        {"bx": x, "by": y, "bid": ids} for x, y, ids in _missing(data, batch_size, indices, done)
    ]
    total = sum(len(r["bid"]) for r in rows)
    return ray.data.from_items(rows, override_num_blocks=max(len(rows), 1)), total, 1


def _missing(data: Any, batch_size: int | None, indices: Any, done: np.ndarray) -> Iterator[Block]:
    """The blocks of ``data`` without the samples in ``done`` (empty blocks left out)."""
    for (x, y, ids), _ in iter_blocks(data, batch_size, indices):
        keep = ~np.isin(ids, done)
        if keep.any():
            yield x[keep], y[keep], ids[keep]


class _NotDone:
    """A ``map_batches`` function keeping the rows whose ``id`` is not in ``done``."""

    def __init__(self, done: np.ndarray) -> None:
        self.done = done

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keep = ~np.isin(batch["id"], self.done)
        return {name: values[keep] for name, values in batch.items()}


class BlockWorker:
    """A Ray Data actor: builds the model once, then evaluates the blocks it is given.

    Each call returns one row per block: ``ids`` (JSON list), ``table`` (Parquet bytes of its
    :class:`~advlib.evaluation.results.ResultTable`, empty on error), ``error`` (empty, or the
    error the block raised), ``worker`` and ``device``.
    """

    def __init__(self, factory: ModelFactory, plan: Plan) -> None:
        self.plan = plan
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.device = _device()
        self.error = ""
        self.checked = False
        try:
            self.model = CountingModel(factory.build())
        except Exception as error:  # the user's factory: report it with every block
            self.error = f"building the model failed: {_describe(error)}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blocks = _blocks_of(batch)
        out: dict[str, list[Any]] = {k: [] for k in ("ids", "table", "error", "worker", "device")}
        for block in blocks:
            table, error = self._evaluate(block)
            out["ids"].append(json.dumps([int(i) for i in block[2]]))
            out["table"].append(table)
            out["error"].append(error)
            out["worker"].append(self.worker)
            out["device"].append(self.device)
        return {
            "ids": np.asarray(out["ids"], dtype=object),
            "table": np.asarray(out["table"], dtype=object),
            "error": np.asarray(out["error"], dtype=object),
            "worker": np.asarray(out["worker"], dtype=object),
            "device": np.asarray(out["device"], dtype=object),
        }

    def _evaluate(self, block: Block) -> tuple[bytes, str]:
        if self.error:
            return b"", self.error
        from ..evaluation.evaluate import _model_checks

        quiet = _progress.Progress(None, "", enabled=False)
        try:
            with quiet.activate():
                table = evaluate_block(self.model, block, self.plan, (quiet, 0.0))
            if not self.checked:
                table.warnings.extend(_model_checks(self.model.inner, block[0], block[1]))
                self.checked = True
            return table.to_parquet(), ""
        except Exception as error:  # the user's model or data: the block fails, with why
            return b"", _describe(error)


def _blocks_of(batch: dict[str, np.ndarray]) -> list[Block]:
    """The blocks of one ``map_batches`` batch: its rows when they are blocks (built by the
    driver), else the batch itself (rows of samples)."""
    if "bid" in batch:
        return [
            (np.asarray(x), np.asarray(y), np.asarray(i, np.int64))
            for x, y, i in zip(batch["bx"], batch["by"], batch["bid"], strict=True)
        ]
    return [(np.asarray(batch["x"]), np.asarray(batch["y"]), np.asarray(batch["id"], np.int64))]


def _device() -> str:
    """This worker's accelerator as Ray assigned it (its GPU ids), else ``host:cpu``."""
    import ray

    gpus = ray.get_gpu_ids()
    where = socket.gethostname()
    return f"{where}:gpu{','.join(map(str, gpus))}" if gpus else f"{where}:cpu"


def _describe(error: BaseException) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(error).__name__}: {error}{at}"


def _check_picklable(factory: ModelFactory) -> None:
    try:
        import cloudpickle  # type: ignore[import-untyped]  # Ray's pickler

        cloudpickle.dumps(factory)
    except Exception as error:  # anything pickling raises: the model cannot travel
        raise TypeError(
            f"model: engine='ray' sends the model to worker processes, but {factory.name} "
            f"cannot be pickled ({type(error).__name__}: {error}); pass a function that builds "
            "it, or 'module:function'"
        ) from None


def _span(ids: list[int]) -> str:
    if not ids:
        return "(none)"
    text = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
    return f"[{text}] ({len(ids)} samples, ids {min(ids)}..{max(ids)})"
