"""The advlib command line: demo and evaluate end to end, clear errors on bad input."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import available

import advlib
import advlib.evaluation.demo
from advlib.cli import main, parse_eps
from advlib.evaluation.demo import installed_framework
from advlib.evaluation.specs import attack_names, signature_text

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
        "report.md",
        "report.html",
    }
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["n"] == 80 and [a["name"] for a in data["attacks"]] == ["FGSM", "LinfPGD"]
    assert data["epsilons"] == {"linf": [0.05, 0.1]}
    # A bad attack name, in a fresh process: a one-line message, exit code 2, no traceback.
    done = _run("evaluate", "cli_models.py:load", "--attack", "PDG", "--eps", "0.1", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown attack 'PDG'; did you mean 'PGD'?" in done.stderr
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
    # The last line: estimates of the attacks' cost may come first, once the model is loaded.
    last = err.splitlines()[-1]
    assert last.startswith("advlib: error: ") and message in last, err
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
    assert main(["evaluate", "m:f", "--eps", "0.1"]) == 2  # no attack
    err = capsys.readouterr().err
    assert "give at least one attack" in err and "--attack" in err and "--attacks-file" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "m:f", "--attack", "FGSM"])  # --eps is required
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["demo", "--framework", "mxnet"])
    with pytest.raises(SystemExit):
        main(["demo", "--samples", "0"])


def test_parse_eps() -> None:
    assert parse_eps(["0.01,0.03"]) == [0.01, 0.03]
    assert parse_eps(["linf=0.01, 0.03", "L2=0.5"]) == {"linf": [0.01, 0.03], "l2": [0.5]}


def test_attacks_listed_by_family_with_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["attack", "aliases", "norm", "targeted"]
    rows = {line.split()[0]: line for line in lines[1:] if line.startswith("  ")}
    assert set(rows) == set(advlib.attacks.ATTACKS)
    # Every name the README may use is on its class's row.
    for name, cls in attack_names().items():
        assert name in rows[cls.__name__].replace(",", " ").split(), (name, cls.__name__)
    for title in ("Gradient attacks, fixed epsilon:", "Black-box attacks, decision-based:"):
        assert title in lines
    family = lines[: lines.index("Ensembles (AutoAttack):")]
    assert "LinfFastGradientAttack" in rows and all("AutoAttack " not in x for x in family)
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert advlib.__version__ in capsys.readouterr().out


def test_attacks_name_describes_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attacks", "FGSM"]) == 0
    out = capsys.readouterr().out
    cls = advlib.attacks.FGSM
    assert out.startswith("LinfFastGradientAttack (also: FGSM")
    assert signature_text(cls) in out
    assert (inspect.getdoc(cls) or "").splitlines()[0] in out
    assert "about 1 gradient call and 4 forward passes per sample and epsilon" in out
    assert main(["attacks", "L2CarliniWagnerAttack"]) == 0
    assert "about 90,009 gradient calls" in capsys.readouterr().out
    assert main(["attacks", "pgd"]) == 2
    err = capsys.readouterr().err
    assert "unknown attack 'pgd'; did you mean 'PGD'?" in err and "Traceback" not in err


# ------------------------------------------------------------------ attack arguments
def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())  # type: ignore[no-any-return]


def test_attack_arguments(
    models: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _needs_torch()
    monkeypatch.setattr(advlib._progress, "interactive", lambda: True)  # somebody watches
    cw = "L2CarliniWagnerAttack(steps=20, binary_search_steps=2)"
    rest = ["--eps", "linf=0.1", "--eps", "l2=0.5,1", "--out", str(tmp_path / "out")]
    code = main(["evaluate", f"{models}:load", "--attack", cw, "--attack", "FGSM", *rest])
    err = capsys.readouterr().err
    assert code == 0, err
    data = _report(tmp_path / "out")
    assert [a["name"] for a in data["attacks"]] == [cw, "FGSM"]
    assert "steps=20" in data["attacks"][0]["attack"]
    assert "binary_search_steps=2" in data["attacks"][0]["attack"]
    # Estimates before running: 2 x (20 + 1) gradient calls per sample, above the real count.
    assert f"advlib: {cw}: about 42 gradient calls" in err
    assert 0 < data["attacks"][0]["gradient_calls"] <= 42
    assert "warning" not in err
    assert "evaluate" in err and "100%" in err  # the progress bar
    capsys.readouterr()
    quiet = ["--no-progress", "--out", str(tmp_path / "quiet")]
    code = main(["evaluate", f"{models}:load", "--attack", "FGSM", "--eps", "0.1", *quiet])
    assert code == 0 and "100%" not in capsys.readouterr().err


def test_attacks_file(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _needs_torch()
    spec = tmp_path / "attacks.json"
    spec.write_text(
        json.dumps(
            [
                {"attack": "LinfPGD", "steps": 3, "label": "PGD-3"},
                {"attack": "LinfBasicIterativeAttack", "steps": 2},
            ]
        )
    )
    rest = ["--eps", "0.1", "--no-progress", "--out", str(tmp_path / "out")]
    code = main(
        ["evaluate", f"{models}:load", "--attacks-file", str(spec), "--attack", "FGSM", *rest]
    )
    assert code == 0, capsys.readouterr().err
    names = [a["name"] for a in _report(tmp_path / "out")["attacks"]]
    assert names == ["FGSM", "PGD-3", "LinfBasicIterativeAttack(steps=2)"]


def test_expensive_attacks_are_announced_before_running(
    models: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs_torch()

    def never(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("not run in this test")

    monkeypatch.setattr(advlib.evaluation, "evaluate", never)
    attacks = ["--attack", "L2CarliniWagnerAttack", "--attack", "LinfPGD", "--attack", "LinfPGD"]
    code = main(["evaluate", f"{models}:load", *attacks, "--eps", "linf=0.05,0.1", "--eps", "l2=1"])
    err = capsys.readouterr().err
    assert code == 2 and "not run in this test" in err
    assert "advlib: L2CarliniWagnerAttack: about 90,009 gradient calls" in err
    assert "advlib: LinfPGD: about 82 gradient calls" in err and "(2 epsilons)" in err
    assert "advlib: LinfPGD #2: about 82 gradient calls" in err  # the same attack twice
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "L2CarliniWagnerAttack is expensive" in warnings[0]
    assert '--attack "L2CarliniWagnerAttack(steps=100)"' in warnings[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attack", "PDG"], "unknown attack 'PDG'; did you mean 'PGD'?"),
        (["--attack", "LinfPGD(steps=__import__('os'))"], "is not a literal"),
        (["--attack", "LinfPGD(10)"], "by keyword"),
        (["--attack", "L2CarliniWagnerAttack(step=10)"], "has no argument 'step'"),
        (["--attack", "L2CarliniWagnerAttack(step=10)"], "binary_search_steps=9, steps=10000"),
        (["--attack", "LinfPGD(steps=-1)"], "LinfPGD(steps=-1)"),
        (["--attacks-file", "missing.json"], "cannot read"),
    ],
)
def test_bad_attack_arguments_fail_clearly(
    models: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["evaluate", f"{models}:load", *args, "--eps", "0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("advlib: error: ") and message in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------ demo
def test_demo_writes_plots_and_fails_loudly_when_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if installed_framework() is None:
        pytest.skip("needs torch, tensorflow or jax")
    out = tmp_path / "demo"
    assert main(["demo", "--samples", "12", "--out", str(out), "--no-progress"]) == 0
    assert "digits_cnn.png" in capsys.readouterr().out
    for name in ("digits_cnn", "digits_cnn_robust"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A plot that fails ends the command with an error, not a silently missing file.
    reports = {"digits_cnn": advlib.RobustnessReport.from_json(out / "digits_cnn.json")}
    monkeypatch.setattr(advlib.evaluation.demo, "run_demo", lambda *a, **k: reports)

    def broken(self: Any, path: Any = None) -> Any:
        raise ImportError("RobustnessReport.plot needs matplotlib: pip install matplotlib")

    monkeypatch.setattr(advlib.RobustnessReport, "plot", broken)
    assert main(["demo", "--out", str(tmp_path / "again")]) == 1
    err = capsys.readouterr().err
    assert "cannot write the plot" in err and "pip install matplotlib" in err


def test_default_framework_is_the_first_installed() -> None:
    expected = next((f for f in ("torch", "tensorflow", "jax") if available(f)), None)
    assert installed_framework() == expected
