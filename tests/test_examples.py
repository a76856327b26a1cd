"""Every example script and notebook runs to the end (in subprocesses / fresh kernels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import available

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
NOTEBOOKS = sorted((EXAMPLES / "notebooks").glob("*.ipynb"))

# A script's framework is in its name (evaluate_torch.py); notebooks may use all three.
_FRAMEWORKS = ("torch", "tensorflow", "jax")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The examples use tiny models: one intra-op thread each avoids oversubscribing the
    # cores when tests run in parallel (measured 20-30x slower with torch's default there).
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _skip_missing(names: list[str]) -> None:
    missing = [name for name in names if not available(name)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def test_examples_exist() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"evaluate_torch.py", "evaluate_tensorflow.py", "evaluate_jax.py"} <= names
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_evaluate.ipynb",
        "03_write_your_own_attack.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_script_runs(script: Path, tmp_path: Path) -> None:
    _skip_missing([f for f in _FRAMEWORKS if f in script.stem])
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clean accuracy" in done.stdout
    written = {p.name for p in tmp_path.iterdir()}
    framework = script.stem.removeprefix("evaluate_")
    if script.stem.startswith("evaluate_"):
        assert {f"robustness_{framework}.json", f"robustness_{framework}.png"} <= written
        report = json.loads((tmp_path / f"robustness_{framework}.json").read_text())
        assert report["framework"] == framework
        assert report["n"] == 359


def _has_no_outputs(path: Path) -> bool:
    cells = json.loads(path.read_text())["cells"]
    return all(not c.get("outputs") and not c.get("execution_count") for c in cells)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(notebook: Path) -> None:
    assert _has_no_outputs(notebook)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    needs = ["torch"] + (["tensorflow", "jax"] if notebook.name.startswith("03") else [])
    _skip_missing(needs)
    for key, value in _env().items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    text = "".join(
        output.get("text", "")
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("name", "stdout") == "stdout"  # progress bars go to stderr
    )
    assert text, "the notebook printed nothing"
    if notebook.name.startswith("03"):
        # The attack written once gives the same robust accuracy on every framework.
        lines = [line for line in text.splitlines() if "robust accuracy [" in line]
        assert len(lines) == 3
        assert len({line.split(":", 1)[1] for line in lines}) == 1, lines
