"""advlib.evaluate and RobustnessReport on the zoo's digits CNN."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import available

import advlib
from advlib import _progress
from advlib._tensors import atleast_kd
from advlib.attacks import FixedEpsilonAttack, MinimizationAttack
from advlib.norms import l2, linf

LINF = [0.0, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = advlib.zoo.digits("test")
    return x[:96], y[:96]


def torch_model(robust: bool = False) -> Any:
    if not available("torch"):
        pytest.skip("needs torch")
    return advlib.zoo.digits_cnn("torch", robust=robust)


class _GradientLineSearch(MinimizationAttack):
    """Test-only minimization attack: the smallest step along the L2-normalised gradient that
    fools the model, found by bisection up to ``max_norm`` (the inputs where none does).
    Its leading underscore keeps it out of the attack registry."""

    norm = l2

    def __init__(self, max_norm: float = 1.0, steps: int = 10) -> None:
        self.max_norm = max_norm
        self.steps = steps

    def perturb(self, model: Any, inputs: Any, criterion: Any, early_stop: Any = None) -> Any:
        classes, _ = criterion.gradient_target()

        def loss(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            logits = model(z)
            return ep.crossentropy(logits, classes).sum(), logits

        _, _, grad = model.value_and_grad(loss, inputs)
        direction = l2.normalize(grad)

        def moved(scale: np.ndarray) -> ep.Tensor:
            s = atleast_kd(ep.from_numpy(inputs, scale.astype(np.float32)), inputs.ndim)
            return (inputs + s * direction).clip(*model.bounds)

        def fools(scale: np.ndarray) -> np.ndarray:
            x = moved(scale)
            return np.array(criterion(x, model(x)).numpy())  # writable: it goes back in

        n = inputs.shape[0]
        low, high = np.zeros(n), np.full(n, self.max_norm)
        found = fools(high)
        for _ in range(self.steps):
            mid = (low + high) / 2
            ok = fools(mid)
            high, low = np.where(ok, mid, high), np.where(ok, low, mid)
        keep = atleast_kd(ep.from_numpy(inputs, found), inputs.ndim)
        return ep.where(keep, moved(high), inputs)


def _correct(model: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    t, _ = model.to_tensor(x, "x", floating=True)
    return np.asarray(model(t).argmax(axis=-1).numpy()) == y


def _counts(report: advlib.RobustnessReport) -> dict[str, Any]:
    """Everything but wall times."""
    data = report.to_dict()
    data.pop("seconds")
    for attack in data["attacks"]:
        attack.pop("seconds")
    return data


# ------------------------------------------------------------------ agreement with attacks
def test_agrees_with_direct_seeded_calls(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = torch_model()
    pgd = advlib.attacks.LinfPGD(steps=10)
    report = advlib.evaluate(
        model, (x, y), {"pgd": pgd, "fgsm": "FGSM"}, LINF, seed=3, cascade=False, progress=False
    )
    assert pgd.seed is None, "evaluate must not change the attack it was given"
    correct = _correct(model, x, y)
    assert report.n == len(y) and report.clean_correct == correct.sum()
    for name, attack in [
        ("pgd", advlib.attacks.LinfPGD(steps=10, seed=3)),
        ("fgsm", advlib.attacks.FGSM()),
    ]:
        # Each sample's random numbers come from its id: its position in the data.
        ids = np.flatnonzero(correct)
        success = attack(model, x[correct], y[correct], epsilons=LINF[1:], indices=ids).success
        expected = [int(correct.sum())] + [int((~s).sum()) for s in success]
        assert report.attack(name).robust == expected
    # A cascade's first attack sees every correctly classified sample: also a direct call.
    cascade = advlib.evaluate(
        model, (x, y), {"pgd": pgd, "fgsm": "FGSM"}, LINF, seed=3, progress=False
    )
    assert cascade.attack("pgd").robust == report.attack("pgd").robust


def test_same_seed_same_report(data: tuple[np.ndarray, np.ndarray]) -> None:
    model = torch_model()
    runs = [
        advlib.evaluate(model, data, ["LinfPGD"], LINF, seed=5, progress=False) for _ in range(2)
    ]
    assert _counts(runs[0]) == _counts(runs[1])


def test_counts_model_calls_on_every_backend(
    backend: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Compiled steps (jax.jit, tf.function) run their Python once; calls are still counted."""
    x, y = data
    model = advlib.zoo.digits_cnn(backend)
    steps, eps = 5, [0.0, 0.05, 0.1]
    bim = advlib.attacks.LinfBasicIterativeAttack(steps=steps)
    report = advlib.evaluate(model, (x, y), [bim, "FGSM"], eps, cascade=False, progress=False)
    summary = report.attack("BIM")
    # A success test per positive epsilon. The attacks' one-time probe of the outputs is made
    # by evaluate itself, outside every attack's count, so shards' counts add up exactly.
    assert summary.gradient_calls == steps * 2
    assert summary.forward_calls == 2
    # Deterministic attacks agree with direct calls on every framework.
    correct = _correct(model, x, y)
    for name, attack in [("BIM", bim), ("FGSM", advlib.attacks.FGSM())]:
        success = np.asarray(attack(model, x[correct], y[correct], epsilons=eps[1:]).success)
        assert report.attack(name).robust == [int(correct.sum())] + [
            int((~s).sum()) for s in success
        ]


# ------------------------------------------------------------------ worst case and intervals
def test_worst_case_never_above_any_attack(data: tuple[np.ndarray, np.ndarray]) -> None:
    model = torch_model(robust=True)
    attacks = ["FGSM", advlib.attacks.LinfBasicIterativeAttack(steps=10)]
    single = advlib.evaluate(model, data, attacks, LINF, cascade=False, progress=False)
    cascade = advlib.evaluate(model, data, attacks, LINF, progress=False)
    worst = single.worst_case["linf"]
    for summary in single.attacks:
        assert all(w <= k for w, k in zip(worst, summary.robust, strict=True))
    assert worst[0] == single.clean_correct
    assert worst[-1] < single.attack("FGSM").robust[-1], "BIM should add to FGSM at 0.2"
    # Deterministic attacks: the cascade finds exactly the same worst case, and its rows are
    # cumulative (the last row is the worst case, never above the first).
    assert cascade.worst_case["linf"] == worst
    assert cascade.attacks[-1].robust == worst
    assert all(a <= b for a, b in zip(cascade.attacks[1].robust, cascade.attacks[0].robust))
    assert cascade.attack("BIM").attacked <= single.attack("BIM").attacked


def test_intervals_contain_point_estimates(data: tuple[np.ndarray, np.ndarray]) -> None:
    report = advlib.evaluate(torch_model(), data, ["FGSM"], [*LINF, 0.5], progress=False)
    counts = [report.clean_correct, *report.worst_case["linf"]]
    counts += [k for a in report.attacks for k in a.robust]
    assert 0 in counts, "epsilon 0.5 should break every sample"
    for k in counts:
        low, high = report.interval(k)
        assert 0 <= low <= k / report.n <= high <= 1
        assert high - low > 0
    assert report.interval(0)[0] == 0 and report.interval(report.n)[1] == 1
    # Clopper-Pearson is the exact binomial interval: at k = 0, (alpha/2)^(1/n) = 1 - high.
    assert report.interval(0)[1] == pytest.approx(1 - 0.025 ** (1 / report.n))


# ------------------------------------------------------------------ minimization attacks
def test_minimization_distances_give_the_curve(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = torch_model()
    grid = [0.0, 0.25, 0.5, 1.0]
    attack = _GradientLineSearch(max_norm=0.6)
    report = advlib.evaluate(model, (x, y), {"line": attack}, grid, progress=False)
    summary = report.attack("line")
    distances = np.array(summary.distances)
    correct = _correct(model, x, y)
    assert np.all(distances[~correct] == 0)
    assert np.isinf(distances).any(), "max_norm 0.6 should leave some samples unbroken"
    # The curve: robust at epsilon <=> the smallest adversarial found is larger.
    assert summary.robust == [int((distances > eps).sum()) for eps in grid]
    # The distances are those of a direct unbounded call.
    result = attack(model, x[correct], y[correct], epsilons=None)
    direct = np.linalg.norm((result.clipped - x[correct]).reshape(int(correct.sum()), -1), axis=1)
    direct = np.where(result.success, direct, np.inf)
    np.testing.assert_allclose(distances[correct], direct, rtol=1e-5)
    stats = summary.distance_summary()
    assert stats is not None and stats["attacked"] == correct.sum()
    assert stats["not_found"] == np.isinf(direct).sum()
    assert stats["q25"] <= stats["median"] <= stats["q75"]


def test_mixed_norms_need_one_grid_each(data: tuple[np.ndarray, np.ndarray]) -> None:
    model = torch_model()
    attacks = {"FGSM": "FGSM", "line": _GradientLineSearch()}
    with pytest.raises(ValueError, match="one list per norm"):
        advlib.evaluate(model, data, attacks, LINF, progress=False)
    report = advlib.evaluate(model, data, attacks, {"linf": LINF, "l2": [0.0, 0.5]}, progress=False)
    assert set(report.worst_case) == {"linf", "l2"}
    assert report.worst_case["l2"] == report.attack("line").robust


# ------------------------------------------------------------------ data and batching
def test_batches_generators_and_loaders_agree(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = torch_model()
    attacks = ["FGSM", "LinfPGD", _GradientLineSearch()]
    grids = {"linf": LINF, "l2": [0.0, 0.5]}

    def run(d: Any, **kw: Any) -> dict[str, Any]:
        return _counts(advlib.evaluate(model, d, attacks, grids, progress=False, **kw))

    arrays = run((x, y), batch_size=32)
    generator = ((x[i : i + 32], y[i : i + 32]) for i in range(0, len(y), 32))
    assert run(generator) == arrays
    # Larger batches are split to batch_size (64 -> 32 + 32), giving the same batches again.
    assert run([(x[:64], y[:64]), (x[64:], y[64:])], batch_size=32) == arrays
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=32)
    assert run(loader) == arrays


def test_batch_size_bounds_memory_and_keeps_results(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = torch_model()
    largest = 0
    forward = model._forward

    def spy(raw: Any) -> Any:
        nonlocal largest
        largest = max(largest, int(raw.shape[0]))
        return forward(raw)

    model._forward = spy  # type: ignore[method-assign]
    # Deterministic attacks: chunking must not change a single count.
    attacks = ["FGSM", advlib.attacks.LinfBasicIterativeAttack(steps=5)]
    whole = advlib.evaluate(model, (x, y), attacks, LINF, progress=False)
    assert largest == len(y)
    largest = 0
    chunked = advlib.evaluate(model, (x, y), attacks, LINF, batch_size=25, progress=False)
    assert largest == 25
    assert [a.robust for a in chunked.attacks] == [a.robust for a in whole.attacks]
    assert chunked.worst_case == whole.worst_case


# ------------------------------------------------------------------ report files
def test_json_round_trip(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    attacks = {"FGSM": "FGSM", "line": _GradientLineSearch(max_norm=0.5)}
    report = advlib.evaluate(
        torch_model(), data, attacks, {"linf": LINF, "l2": [0.0, 0.25, 1.0]}, progress=False
    )
    path = tmp_path / "report.json"
    report.to_json(path)
    json.loads(path.read_text())  # strict JSON: no NaN or Infinity literals
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    loaded = advlib.RobustnessReport.from_json(path)
    assert loaded.to_dict() == report.to_dict()
    assert str(loaded) == str(report)
    assert math.isinf(max(loaded.attack("line").distances or []))


def test_csv_has_a_row_per_attack_and_epsilon(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    import csv

    report = advlib.evaluate(torch_model(), data, ["FGSM", "LinfPGD"], LINF, progress=False)
    report.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 1 + 3 * len(LINF)
    for row in rows:
        assert float(row["ci_low"]) <= float(row["accuracy"]) <= float(row["ci_high"])
        assert int(row["robust"]) / int(row["n"]) == pytest.approx(float(row["accuracy"]))


def test_plot_writes_a_png(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("matplotlib")
    report = advlib.evaluate(
        torch_model(),
        data,
        {"FGSM": "FGSM", "line": _GradientLineSearch()},
        {"linf": LINF, "l2": [0.0, 0.5, 1.0]},
        progress=False,
    )
    path = tmp_path / "report.png"
    figure = report.plot(path)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > height > 100
    assert len(figure.axes) == 2  # one panel per norm


def test_plot_without_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, data: tuple[np.ndarray, np.ndarray]
) -> None:
    report = advlib.evaluate(torch_model(), data, ["FGSM"], LINF, progress=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        report.plot("never.png")


def test_table_shows_every_attack_and_epsilon(data: tuple[np.ndarray, np.ndarray]) -> None:
    report = advlib.evaluate(torch_model(), data, ["FGSM", "LinfPGD"], LINF, progress=False)
    table = str(report)
    assert "clean accuracy" in table and "worst case" in table and "+ LinfPGD" in table
    for eps in ("0.05", "0.1", "0.2"):
        assert eps in table
    fgsm = report.robust_accuracy("FGSM")
    assert f"{100 * fgsm[2]:.1f}" in table


class _Slow(FixedEpsilonAttack):
    """Test-only attack that only takes time: ``steps`` iterations of ``pause`` seconds,
    counted through advlib._progress.steps like every attack's loops; returns the inputs."""

    norm = linf
    requires_grad = False

    def __init__(self, steps: int = 12, pause: float = 0.03) -> None:
        self.steps = steps
        self.pause = pause

    def perturb(self, model: Any, inputs: Any, criterion: Any, epsilon: float) -> Any:
        for _ in _progress.steps(self.steps):
            time.sleep(self.pause)
        return inputs


def _percentages(err: str) -> list[int]:
    return [int(p) for p in re.findall(r"(\d+)%\|", err)]


def test_progress_moves_during_a_single_batch(
    capsys: pytest.CaptureFixture[str], data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Arrays without batch_size are one batch: the bar still moves inside each attack."""
    x, y = data
    attacks = {"first": _Slow(), "second": _Slow(steps=3)}
    advlib.evaluate(torch_model(), (x, y), attacks, [0.0, 0.1, 0.2], progress=True)
    err = capsys.readouterr().err
    seen = _percentages(err)
    assert "evaluate" in err and seen[-1] == 100, err
    assert any(0 < p < 50 for p in seen), err  # inside the first attack
    assert seen == sorted(seen)


def test_progress_counts_the_batches_of_split_data(
    capsys: pytest.CaptureFixture[str], data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    batches = [(x[:64], y[:64]), (x[64:], y[64:])]
    advlib.evaluate(torch_model(), batches, {"slow": _Slow(4)}, [0.1], batch_size=20, progress=True)
    err = capsys.readouterr().err
    assert _percentages(err)[-1] == 100 and "[" in err, err
    # Data of unknown length: a bar without a percentage, and no error.
    generator = ((x[i : i + 48], y[i : i + 48]) for i in range(0, len(y), 48))
    advlib.evaluate(torch_model(), generator, {"slow": _Slow(2)}, [0.1], progress=True)
    err = capsys.readouterr().err
    assert "evaluate" in err and not _percentages(err), err


def test_no_progress_output_when_off_or_unwatched(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    attacks = {"slow": _Slow(steps=2, pause=0.0), "FGSM": "FGSM"}
    advlib.evaluate(torch_model(), data, attacks, LINF)  # None: stderr is not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    advlib.evaluate(torch_model(), data, attacks, LINF, progress=False)
    assert capsys.readouterr().err == ""
    advlib.evaluate(torch_model(), data, attacks, LINF)  # somebody watches: shown
    assert _percentages(capsys.readouterr().err)[-1] == 100
    with pytest.raises(TypeError, match="progress: expected True, False or None"):
        advlib.evaluate(torch_model(), data, attacks, LINF, progress="yes")


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("attacks", "epsilons", "error", "message"),
    [
        (["Xyzzy"], LINF, ValueError, "valid names include .*FGSM.*PGD"),
        (["LinfPDG"], LINF, ValueError, "did you mean 'LinfPGD'"),
        (["LinfPGD(steps=range(3))"], LINF, ValueError, "is not a literal"),
        ([advlib.attacks.LinfPGD], LINF, TypeError, "pass an instance"),
        ([], LINF, ValueError, "at least one attack"),
        (["FGSM"], [-0.1], ValueError, ">= 0"),
        (["FGSM"], ["a"], TypeError, "numbers"),
        (["FGSM"], [], ValueError, "at least one epsilon"),
        (["FGSM"], {"l2": [0.1]}, ValueError, "linf"),
    ],
)
def test_bad_arguments(
    attacks: Any,
    epsilons: Any,
    error: type[Exception],
    message: str,
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(error, match=message):
        advlib.evaluate(torch_model(), data, attacks, epsilons, progress=False)


def test_bad_data(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = torch_model()
    with pytest.raises(ValueError, match="one entry per input, got 96 inputs and 95 labels"):
        advlib.evaluate(model, (x, y[:-1]), ["FGSM"], LINF, progress=False)
    with pytest.raises(ValueError, match=r"class indices in \[0, 9\]"):
        advlib.evaluate(model, (x, y + 10), ["FGSM"], LINF, progress=False)
    with pytest.raises(ValueError, match="labels must have shape"):
        advlib.evaluate(model, (x, np.eye(10)[y]), ["FGSM"], LINF, progress=False)
    with pytest.raises(ValueError, match="batch 1 is not an"):
        advlib.evaluate(model, [(x, y), x], ["FGSM"], LINF, progress=False)
    with pytest.raises(TypeError, match="expected an advlib model wrapper"):
        advlib.evaluate(object(), (x, y), ["FGSM"], LINF, progress=False)
    with pytest.raises(ValueError, match="within the model's bounds"):
        advlib.evaluate(model, (x + 2, y), ["FGSM"], LINF, progress=False)
