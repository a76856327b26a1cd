"""The benchmark suite's own logic: ratios, tables, target checks, native loops, one tiny run."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# benchmarks/ is a top-level package of the repository, not part of the installed advlib.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import report
from benchmarks.__main__ import parse_args
from benchmarks.config import ATTACK_SPECS, Case, cases
from benchmarks.native import start_noise


def _record(impl: str, median: float | None, success: list[float] | None = None,
            backend: str = "jax", network: str = "mlp", attack: str = "LinfPGD",
            batch: int = 256, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"backend": backend, "device": "cpu", "network": network,
                              "batch": batch, "attack": attack, "impl": impl, **extra}
    if median is not None:
        record["median_s"] = median
        record["first_call_s"] = 2 * median
        record["success"] = success or [0.5, 0.75]
        record["success_mean"] = float(np.mean(record["success"]))
    return record


def test_ratios_and_targets_on_fake_numbers() -> None:
    records = [
        _record("advlib", 0.5), _record("native", 0.5 / 1.05), _record("foolbox", 2.5),
        _record("advlib", 0.3, backend="tensorflow"), _record("native", 0.2, backend="tensorflow"),
        _record("foolbox", 0.4, backend="tensorflow"),
    ]
    grouped = report.group(records)
    jax_case = grouped["jax", "cpu", "mlp", 256, "LinfPGD"]
    assert report.ratio(jax_case["advlib"], jax_case["foolbox"]) == pytest.approx(0.2)

    checked = {r["target"]: r for r in report.check_targets(records)}
    assert checked["jax mlp LinfPGD: advlib/native <= 1.10"]["passed"] is True
    assert checked["jax mlp LinfPGD: >= 4x faster than Foolbox"]["passed"] is True  # 5x
    assert checked["tensorflow mlp LinfPGD: advlib/native <= 1.10"]["passed"] is False  # 1.5
    assert checked["tensorflow mlp LinfPGD: >= 1.6x faster than Foolbox"]["passed"] is False
    assert checked["torch mlp LinfPGD: at least as fast as torchattacks"]["passed"] is None
    assert checked["tensorflow mlp LinfPGD: advlib/native <= 1.10"]["ratio"] == pytest.approx(1.5)


def test_tables_show_every_case_and_missing_values() -> None:
    records = [
        _record("advlib", 0.5), _record("native", 0.25),
        _record("advlib", None, attack="L2CarliniWagnerAttack", error="no such attack"),
        _record("native", 1.0, attack="L2CarliniWagnerAttack"),
    ]
    timing = report.timing_table(records).splitlines()
    assert len(timing) == 2 + 2  # header, rule, two cases
    assert "2.00" in timing[2]  # advlib / native = 0.5 / 0.25
    assert timing[3].split()[5] == "-"  # advlib did not run C&W
    text = report.full_report(records, ["foolbox is not installed: skipped"])
    assert "no such attack" in text and "foolbox is not installed" in text
    assert "MISS  jax mlp LinfPGD: advlib/native <= 1.10" in text


def test_success_gaps_are_flagged() -> None:
    records = [_record("advlib", 1.0, [0.5, 0.9]), _record("native", 1.0, [0.5, 0.91]),
               _record("foolbox", 1.0, [0.2, 0.9])]
    warnings = report.success_warnings(records)
    assert len(warnings) == 1 and "foolbox" in warnings[0] and "30.0 points" in warnings[0]


def test_quick_grid_is_smaller_and_keeps_the_settings() -> None:
    full, quick = cases(), cases(quick=True)
    assert len(quick) < len(full)
    assert {c.network for c in full} == {"digits", "mlp", "resnet"}
    assert {c.batch for c in full if c.network == "resnet"} == {32, 128, 512}
    pgd = next(c for c in full if c.attack.name == "LinfPGD")
    assert pgd.attack.steps == 40 and pgd.batch == 256
    assert next(c for c in full if c.attack.name == "L2PGD").attack.steps == 50
    cw = next(c for c in full if c.attack.is_minimization)
    assert cw.attack.gradient_steps == 5 * 100


def test_random_start_matches_advlib_draw() -> None:
    """The native loops and Foolbox start where advlib starts: same seed, same numbers."""
    from advlib.norms import NORMS

    spec = ATTACK_SPECS["L2PGD"]
    noise = start_noise(spec, (4, 1, 8, 8), 0.5)
    expected = NORMS["l2"].sample_unit_ball(np.random.default_rng(0), (4, 1, 8, 8)) * 0.5
    np.testing.assert_allclose(noise, expected.astype(np.float32))
    assert np.all(np.linalg.norm(noise.reshape(4, -1), axis=1) <= 0.5 + 1e-6)


def test_cli_arguments() -> None:
    args = parse_args(["--backend", "jax", "--quick", "--out", "x.json"])
    assert args.backend == ["jax"] and args.quick and args.device == "cpu"
    with pytest.raises(SystemExit):
        parse_args(["--repeats", "0"])


def test_worker_runs_one_tiny_case_and_implementations_agree(backend: str) -> None:
    """advlib, the native loop and Foolbox reach the same success rates from the same start."""
    from benchmarks.implementations import Setup, implementations
    from benchmarks.measure import MemoryProbe
    from benchmarks.networks import build_network
    from benchmarks.worker import batch_data, run_case

    spec = replace(ATTACK_SPECS["LinfPGD"], steps=3, epsilons=(0.01, 0.05))
    setup = Setup(backend, "cpu", build_network(backend, "digits"))
    impls, _ = implementations(setup, "digits")
    impls.pop("torchattacks", None)  # its own random start: not identical by design
    x, y, x_np = batch_data(setup, "digits", 16)
    messages: list[str] = []

    records = run_case(Case("digits", 16, spec, repeats=1), impls, x, y, x_np, setup,
                       MemoryProbe(backend, "cpu"), messages.append)

    by_impl = {r["impl"]: r for r in records}
    assert {"advlib", "native"} <= set(by_impl)
    for record in by_impl.values():
        assert record["median_s"] > 0 and len(record["times_s"]) == 1
        assert record["success"] == pytest.approx(by_impl["native"]["success"], abs=1 / 16)
    assert by_impl["native"]["success"][1] > 0  # the attack does something at eps 0.05
    json.dumps(records)  # what the worker writes


def test_short_calls_are_repeated_until_each_implementation_has_enough_timed_seconds() -> None:
    from benchmarks.config import MAX_REPEATS
    from benchmarks.worker import _more_repeats

    case = Case("mlp", 256, ATTACK_SPECS["FGSM"], repeats=3, min_seconds=1.0)
    assert _more_repeats(2, case, [[2.0, 2.0], [2.0, 2.0]])  # requested rounds come first
    assert _more_repeats(3, case, [[0.5] * 3, [0.2] * 3])  # one implementation is short
    assert not _more_repeats(3, case, [[0.5] * 3, [0.4] * 3])
    assert not _more_repeats(MAX_REPEATS, case, [[0.0] * MAX_REPEATS] * 2)
    assert all(c.min_seconds > 0 for c in cases())
