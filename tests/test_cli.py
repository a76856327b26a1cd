"""The advlib command line: demo and evaluate end to end, clear errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import available

import advlib
from advlib.cli import main, parse_eps
from advlib.evaluation.demo import installed_framework

ROOT = Path(__file__).resolve().parents[1]

MODELS = """
import advlib

def load():
    x, y = advlib.zoo.digits("test")
    return advlib.zoo.digits_cnn("torch"), (x[:80], y[:80])

def mismatched():
    x, y = advlib.zoo.digits("test")
    return advlib.zoo.digits_cnn("torch"), (x[:80], y[:70])

def not_a_model():
    return "model", advlib.zoo.digits("test")

def broken():
    raise RuntimeError("no weights here")

value = 3
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models; oversubscribed cores are 20x slower
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "advlib", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli_models.py"
    path.write_text(MODELS)
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading a file adds its folder
    return path


def _needs_torch() -> None:
    if not available("torch"):
        pytest.skip("needs torch")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    if installed_framework() is None:
        pytest.skip("needs torch, tensorflow or jax")
    pytest.importorskip("matplotlib")
    done = _run("demo", "--out", "demo", "--samples", "60", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("clean accuracy") == 2
    assert "worst case" in done.stdout and "LinfPGD" in done.stdout
    written = {p.name for p in (tmp_path / "demo").iterdir()}
    for name in ("digits_cnn", "digits_cnn_robust"):
        assert {f"{name}.json", f"{name}.csv", f"{name}.png"} <= written
        report = advlib.RobustnessReport.from_json(tmp_path / "demo" / f"{name}.json")
        assert report.n == 60 and report.framework == installed_framework()
        norms = {"linf"} | ({"l2"} if "L2CarliniWagnerAttack" in advlib.attacks.ATTACKS else set())
        assert norms <= set(report.epsilons)
        assert (tmp_path / "demo" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    standard, robust = (
        advlib.RobustnessReport.from_json(tmp_path / "demo" / f"{n}.json")
        for n in ("digits_cnn", "digits_cnn_robust")
    )
    # At Linf 0.1 the adversarially trained model keeps more of its accuracy.
    assert robust.worst_case["linf"][3] > standard.worst_case["linf"][3]


@pytest.mark.slow
def test_evaluate_end_to_end(tmp_path: Path) -> None:
    _needs_torch()
    pytest.importorskip("matplotlib")
    (tmp_path / "cli_models.py").write_text(MODELS)
    args = ["--attack", "FGSM", "--attack", "LinfPGD", "--eps", "0.05,0.1", "--no-progress"]
    done = _run(
        "evaluate", "cli_models:load", *args, "--batch-size", "50", "--out", "out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clean accuracy" in done.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "report.json",
        "report.csv",
        "report.png",
    }
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["n"] == 80 and [a["name"] for a in data["attacks"]] == ["FGSM", "LinfPGD"]
    assert data["epsilons"] == {"linf": [0.05, 0.1]}
    # A bad attack name, in a fresh process: a one-line message, exit code 2, no traceback.
    done = _run("evaluate", "cli_models.py:load", "--attack", "PDG", "--eps", "0.1", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown attack 'PDG'" in done.stderr and "LinfPGD" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("{file}:load", ["--eps", "abc"], "--eps: expected comma-separated numbers"),
        ("{file}:load", ["--eps", "0.1,-1"], "finite and >= 0"),
        ("{file}:load", ["--eps", "linf=0.1", "--eps", "0.2"], "either plain epsilons"),
        ("{file}:load", ["--eps", "l2=0.5"], "one grid per norm"),
        ("{file}:mismatched", ["--eps", "0.1"], "got 80 inputs and 70 labels"),
        ("{file}:not_a_model", ["--eps", "0.1"], "returned a str as the model"),
        ("{file}:broken", ["--eps", "0.1"], "raised RuntimeError: no weights here"),
        ("{file}:missing", ["--eps", "0.1"], "has no function 'missing'"),
        ("{file}:value", ["--eps", "0.1"], "has no function 'value'"),
        ("{file}", ["--eps", "0.1"], "expected MODULE:FUNCTION"),
        ("no_such_module_xyz:load", ["--eps", "0.1"], "cannot import 'no_such_module_xyz'"),
        ("missing/file.py:load", ["--eps", "0.1"], "no file missing/file.py"),
    ],
)
def test_bad_input_fails_clearly(
    models: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    extra: list[str],
    message: str,
) -> None:
    _needs_torch()
    code = main(["evaluate", target.format(file=models), "--attack", "FGSM", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("advlib: error: ") and message in err, err
    assert "Traceback" not in err


def test_module_that_fails_to_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    bad = tmp_path / "bad_module.py"
    bad.write_text("import no_such_dependency_xyz\n")
    assert main(["evaluate", f"{bad}:load", "--attack", "FGSM", "--eps", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "ModuleNotFoundError" in err and "no_such_dependency_xyz" in err


def test_argparse_errors_exit_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "m:f", "--eps", "0.1"])  # --attack is required
    assert exit_info.value.code == 2
    assert "--attack" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--framework", "mxnet"])
    with pytest.raises(SystemExit):
        main(["demo", "--samples", "0"])


def test_parse_eps() -> None:
    assert parse_eps(["0.01,0.03"]) == [0.01, 0.03]
    assert parse_eps(["linf=0.01, 0.03", "L2=0.5"]) == {"linf": [0.01, 0.03], "l2": [0.5]}


def test_attacks_table_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["attack", "norm", "kind", "gradients", "targeted"]
    assert len(lines) == 1 + len(advlib.attacks.ATTACKS)
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert advlib.__version__ in capsys.readouterr().out


def test_default_framework_is_the_first_installed() -> None:
    expected = next((f for f in ("torch", "tensorflow", "jax") if available(f)), None)
    assert installed_framework() == expected
