"""Evaluation beyond one process (issue 15): per-sample results that merge exactly, a results
directory that resumes after SIGKILL, and the Ray engine with its fault handling.

The Ray tests (marker ``ray``) start one local Ray on 2 CPUs with a small object store for the
module and shut it down after; they skip when Ray is not installed. Their models are the zoo's
NumPy CNN (no framework to import in the workers) behind a ``file.py:function`` factory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import advlib
from advlib.distributed import BlockError, ModelFactory, ResultsDir, ResultTable, read_results
from advlib.evaluation.data import iter_blocks

ROOT = Path(__file__).resolve().parents[1]
SQUARE = ["LinfSquareAttack(n_queries=15)"]
EPS = [0.0, 0.1, 0.3]

# Factories the worker processes import by file path. MARKER is replaced by a file name.
MODELS = '''
import os, time
import numpy as np
import advlib

def model():
    return advlib.zoo.digits_cnn("numpy")

def slow_model():
    inner = advlib.zoo.digits_cnn("numpy")
    def forward(x):
        time.sleep(0.003)
        return inner._forward(x)
    return advlib.NumPyModel(forward, bounds=(0, 1))

def dying_model():
    """Exits its process on its first forward pass after building (once: a marker file)."""
    inner = advlib.zoo.digits_cnn("numpy")
    def forward(x):
        if len(x) > 1 and not os.path.exists(MARKER):
            open(MARKER, "w").close()
            os._exit(1)
        return inner._forward(x)
    return advlib.NumPyModel(forward, bounds=(0, 1))

def failing_model():
    def forward(x):
        raise RuntimeError("the model is broken")
    return advlib.NumPyModel(forward, bounds=(0, 1))

def target():
    x, y = advlib.zoo.digits("test")
    return model(), (x[:40], y[:40])
'''


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = advlib.zoo.digits("test")
    return x[:48], y[:48]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    path = folder / "factories.py"
    path.write_text(MODELS.replace("MARKER", repr(str(folder / "died"))))
    return path


def _without_times(report: Any) -> dict[str, Any]:
    """The report's content without wall times (and engine details), for exact comparison."""
    data = report.to_dict()
    data.pop("seconds")
    data.pop("extra")
    for summary in data["attacks"]:
        summary.pop("seconds")
    return data  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- per-sample tables
def test_shards_merge_to_the_one_process_report(tmp_path: Path, digits: Any) -> None:
    """Blocks evaluated in separate calls (shards with their global ids) merge to exactly the
    one-process report: counts, calls, attacked, distances in sample order."""
    model = advlib.zoo.digits_cnn("numpy")
    x, y = digits
    attacks = {"square": SQUARE[0], "boundary": "BoundaryAttack(steps=5)"}
    eps = [0.0, 0.5, 2.0]
    whole = advlib.evaluate(model, (x, y), attacks, {"l2": eps, "linf": EPS}, batch_size=16)
    tables = []
    for k, rows in enumerate([slice(16, 48), slice(0, 16)]):  # out of order on purpose
        ids = np.arange(48)[rows]
        advlib.evaluate(
            model,
            (x[rows], y[rows]),
            attacks,
            {"l2": eps, "linf": EPS},
            batch_size=16,
            indices=ids,
            results=tmp_path / str(k),
        )
        tables.append(read_results(tmp_path / str(k)))
    merged = advlib.RobustnessReport.merge(tables)
    assert _without_times(merged) == _without_times(whole)
    assert merged.attack("boundary").distances == whole.attack("boundary").distances
    assert merged.attack("square").robust[1] < merged.clean_correct  # the attack did something


def test_merge_of_reports_adds_counts(digits: Any) -> None:
    model = advlib.zoo.digits_cnn("numpy")
    x, y = digits
    parts = [
        advlib.evaluate(model, (x[s], y[s]), SQUARE, EPS, indices=np.arange(48)[s])
        for s in (slice(0, 16), slice(16, 48))
    ]
    whole = advlib.evaluate(model, (x, y), SQUARE, EPS, batch_size=16)
    merged = advlib.RobustnessReport.merge(parts)
    assert merged.n == 48
    assert merged.attacks[0].robust == whole.attacks[0].robust
    assert merged.worst_case == whole.worst_case
    assert merged.clean_correct == whole.clean_correct


def test_merge_refuses_a_sample_twice_and_other_evaluations(tmp_path: Path, digits: Any) -> None:
    model = advlib.zoo.digits_cnn("numpy")
    x, y = digits
    for name, eps in (("a", EPS), ("b", EPS), ("c", [0.0, 0.2])):
        advlib.evaluate(model, (x[:8], y[:8]), SQUARE, eps, results=tmp_path / name)
    a, b, c = (read_results(tmp_path / name) for name in "abc")
    with pytest.raises(ValueError, match=r"sample ids \[0, 1, 2.*more than once"):
        advlib.RobustnessReport.merge([a, b])
    with pytest.raises(ValueError, match=r"different evaluations.*epsilons"):
        ResultTable.concat([a, c])
    with pytest.raises(TypeError, match="all RobustnessReport or all ResultTable"):
        advlib.RobustnessReport.merge([a, a.to_report()])


def test_parquet_round_trip_is_exact(digits: Any) -> None:
    model = advlib.zoo.digits_cnn("numpy")
    x, y = digits
    from advlib.evaluation.counting import CountingModel
    from advlib.evaluation.evaluate import Settings, evaluate_block, make_plan

    plan = make_plan("m", Settings(["BoundaryAttack(steps=3)"], [0.0, 1.0], 0, True))
    bar = advlib._progress.Progress(None, "", enabled=False)
    table = evaluate_block(CountingModel(model), (x[:8], y[:8], np.arange(8) + 100), plan, (bar, 0))
    back = ResultTable.from_parquet(table.to_parquet())
    assert back.header == table.header
    assert back.columns.keys() == table.columns.keys()
    for name, values in table.columns.items():
        np.testing.assert_array_equal(back.columns[name], values, err_msg=name)
    assert list(back.ids) == list(range(100, 108))


def test_results_dir_resumes_and_refuses_another_configuration(tmp_path: Path, digits: Any) -> None:
    model = advlib.zoo.digits_cnn("numpy")
    x, y = digits
    first = advlib.evaluate(model, (x[:24], y[:24]), SQUARE, EPS, batch_size=8, results=tmp_path)
    files = sorted(p.name for p in (tmp_path / "blocks").iterdir())
    # The same data again: every sample is there already, nothing is recomputed.
    again = advlib.evaluate(model, (x[:24], y[:24]), SQUARE, EPS, batch_size=8, results=tmp_path)
    assert sorted(p.name for p in (tmp_path / "blocks").iterdir()) == files
    assert _without_times(again) == _without_times(first)
    with pytest.raises(ValueError, match=r"another configuration \(attacks: saved .*n_queries=15"):
        advlib.evaluate(model, (x, y), ["LinfSquareAttack(n_queries=5)"], EPS, results=tmp_path)
    with pytest.raises(ValueError, match="seed: saved 0, now 1"):
        advlib.evaluate(model, (x, y), SQUARE, EPS, seed=1, results=tmp_path)


def test_resume_after_sigkill_counts_every_sample_once(tmp_path: Path, models: Path) -> None:
    """A run killed with SIGKILL after some blocks, then rerun: the report equals an
    uninterrupted run's and every sample is in exactly one block."""
    x, y = advlib.zoo.digits("test")
    run = (f"{models}:slow_model", (x[:64], y[:64]), SQUARE, EPS)
    script = (
        "import sys, advlib\n"
        "x, y = advlib.zoo.digits('test')\n"
        f"advlib.evaluate('{run[0]}', (x[:64], y[:64]), {SQUARE!r}, {EPS!r}, "
        "batch_size=8, results=sys.argv[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", script, str(killed)], env=env)
    blocks = killed / "blocks"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if blocks.exists() and len(list(blocks.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.003)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(list(blocks.glob("*.parquet")))
    assert 2 <= written < 8, f"the run was not interrupted in the middle ({written} blocks)"
    resumed = advlib.evaluate(*run, batch_size=8, results=killed)
    assert sorted(read_results(killed).ids.tolist()) == list(range(64))  # none lost or twice
    assert _without_times(resumed) == _without_times(advlib.evaluate(*run, batch_size=8))


# ---------------------------------------------------------------------- ids and factories
def test_indices_default_to_positions_across_batches() -> None:
    x, y = np.zeros((10, 1, 2, 2), np.float32), np.zeros(10, np.int64)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    ids = [block[2].tolist() for block, _ in iter_blocks(batches, 3)]
    assert ids == [[0, 1, 2], [3], [4, 5, 6], [7, 8, 9]]
    given = np.arange(100, 110)
    ids = [block[2].tolist() for block, _ in iter_blocks(batches, None, given)]
    assert ids == [[100, 101, 102, 103], [104, 105, 106, 107, 108, 109]]


@pytest.mark.parametrize(
    "indices, message",
    [
        (np.arange(9), "one id per sample of the data, got 9 ids for 10 samples"),
        (np.zeros(10, np.int64), r"distinct, got \[0\] more than once"),
        (np.arange(10.0), "integer sample ids"),
    ],
)
def test_bad_indices_name_the_problem(indices: Any, message: str, digits: Any) -> None:
    model = advlib.zoo.digits_cnn("numpy")
    with pytest.raises(ValueError, match=message):
        advlib.evaluate(model, (digits[0][:10], digits[1][:10]), SQUARE, EPS, indices=indices)


def test_model_factories(models: Path) -> None:
    factory = ModelFactory(f"{models}:model")
    assert factory.name == f"{models}:model"
    assert isinstance(factory.build(), advlib.models.Model)
    assert isinstance(ModelFactory(f"{models}:target").build(), advlib.models.Model)
    with pytest.raises(TypeError, match="returned a str, not an advlib model wrapper"):
        ModelFactory(lambda: "net").build()
    with pytest.raises(ValueError, match="has no function 'nothing'"):
        ModelFactory(f"{models}:nothing")
    with pytest.raises(ValueError, match="only engine='ray' uses it, got workers=2"):
        advlib.evaluate(factory.build(), (np.zeros((1, 1, 8, 8)), [0]), SQUARE, EPS, workers=2)


def test_cli_writes_and_resumes_results(tmp_path: Path, models: Path) -> None:
    from advlib.cli import main

    argv = [
        "evaluate", f"{models}:target", "--attack", SQUARE[0], "--eps", "0,0.1",
        "--batch-size", "16", "--results", str(tmp_path / "r"), "--out", str(tmp_path),
        "--format", "json", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    assert len(list((tmp_path / "r" / "blocks").glob("*.parquet"))) == 3
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["n"] == 40
    assert main(argv) == 0
    assert len(list((tmp_path / "r" / "blocks").glob("*.parquet"))) == 3


# ---------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray", reason="needs ray[data] (pip install 'advlib[ray]')")
    pytest.importorskip("pyarrow")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=96 * 2**20,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


def _square(models: Path, name: str, digits: Any, **kwargs: Any) -> Any:
    """The report of the Square attack on the model factory ``name`` of ``models``."""
    return advlib.evaluate(f"{models}:{name}", digits, SQUARE, EPS, **kwargs)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_local")
def test_ray_report_equals_local_and_resumes(tmp_path: Path, models: Path, digits: Any) -> None:
    local = _square(models, "model", digits, batch_size=8)
    kwargs: dict[str, Any] = {"batch_size": 8, "engine": "ray", "results": tmp_path}
    report = _square(models, "model", digits, workers=2, **kwargs)
    assert _without_times(report) == _without_times(local)
    assert report.extra["samples_this_run"] == 48
    assert 1 <= report.extra["workers"] <= 2
    assert report.extra["devices"]
    again = _square(models, "model", digits, **kwargs)
    assert again.extra["samples_this_run"] == 0
    assert _without_times(again) == _without_times(local)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_local")
def test_ray_restarts_a_dead_worker_and_retries_its_block(
    tmp_path: Path, models: Path, digits: Any
) -> None:
    local = _square(models, "model", digits, batch_size=16)
    report = _square(models, "dying_model", digits, batch_size=16, engine="ray", results=tmp_path)
    assert (models.parent / "died").exists()  # a worker did die
    assert sorted(read_results(tmp_path).ids.tolist()) == list(range(48))
    expected = _without_times(local)
    got = _without_times(report)
    assert got.pop("model").endswith(":dying_model")
    expected.pop("model")
    assert got == expected


@pytest.mark.ray
@pytest.mark.usefixtures("ray_local")
def test_ray_block_that_always_fails_ends_the_run(
    tmp_path: Path, models: Path, digits: Any
) -> None:
    with pytest.raises(
        BlockError, match=r"samples \[16, 17, .*ids 16\.\.31\).*the model is broken"
    ):
        _square(models, "failing_model", digits, batch_size=16, engine="ray", results=tmp_path)
    assert not list((tmp_path / "blocks").glob("*.parquet"))


@pytest.mark.ray
@pytest.mark.usefixtures("ray_local")
def test_cli_ray_engine(tmp_path: Path, models: Path) -> None:
    from advlib.cli import main

    argv = [
        "evaluate", f"{models}:target", "--attack", SQUARE[0], "--eps", "0,0.1",
        "--batch-size", "20", "--engine", "ray", "--workers", "1", "--results",
        str(tmp_path / "r"), "--out", str(tmp_path), "--format", "json", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["n"] == 40
    assert saved["extra"]["engine"] == "ray"
    assert ResultsDir(tmp_path / "r", json.loads((tmp_path / "r/config.json").read_text()))
