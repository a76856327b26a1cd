"""``advlib.evaluate``: how robust is a model, against which attacks, at which budgets."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..attacks import _diagnostics as diagnostics
from ..attacks.base import Attack, check_inputs, check_outputs
from ..criteria import Misclassification
from ..models.base import Model
from .counting import Calls, CountingModel
from .data import count_batches, is_pair, iter_batches, to_numpy
from .report import AttackSummary, RobustnessReport
from .specs import resolve_attacks, resolve_epsilons


def evaluate(
    model: Model,
    data: Any,
    attacks: Any,
    epsilons: Any,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    seed: int | None = 0,
    cascade: bool = True,
) -> RobustnessReport:
    """Clean and robust accuracy of ``model`` on ``data`` against ``attacks``.

    Args:
        model: an advlib model wrapper (``PyTorchModel``, ``TensorFlowModel``, ``JAXModel``,
            ``NumPyModel``, or a zoo model).
        data: ``(inputs, labels)`` arrays or tensors, a torch ``DataLoader``, a
            ``tf.data.Dataset`` or any iterable of ``(inputs, labels)`` batches. Inputs are
            batches (N, ...) within the model's bounds, labels class indices of shape (N,).
        attacks: an attack, an attack name from :data:`advlib.attacks.ATTACKS` or an alias
            such as ``"FGSM"`` / ``"LinfPGD"`` (built with its defaults), a list of them, or a
            ``{label: attack}`` dict to choose the labels in the report.
        epsilons: the budgets: a number or list of numbers when all attacks share one norm, else
            a dict with one list per norm, e.g. ``{"linf": [0, 8/255], "l2": [0, 0.5]}``.
            Minimization attacks (C&W, DeepFool, ...) run once, unbounded, and their smallest
            adversarials give the robust accuracy at every epsilon.
        batch_size: the largest batch an attack sees, which bounds memory; batches of ``data``
            are split to fit. Default None: the data's own batches (a pair of arrays is one
            batch).
        progress: a tqdm progress bar with an ETA, shown when stderr is a terminal and tqdm is
            installed (default True); False never shows one.
        seed: given to every attack that takes a seed: named attacks are built with it, and
            instances whose seed is None are copied with it (instances are never changed, and
            an instance's own seed wins). Each batch is attacked with the same seed, exactly
            like a direct call ``attack(model, x_batch, y_batch, epsilons=..)``. None: leave the
            attacks' seeds alone. Default 0.
        cascade: run each attack only on the samples every earlier attack of the same norm left
            robust at that epsilon, as AutoAttack does (default True); each attack's row is then
            the robust accuracy against it and all earlier attacks. False runs every attack on
            every correctly classified sample, for each attack's own robust accuracy.

    Returns:
        A :class:`RobustnessReport` (``print(report)`` for the table). Samples the model
        misclassifies count as not robust and are never attacked.
    """
    if not isinstance(model, Model):
        raise TypeError(
            "model: expected an advlib model wrapper (PyTorchModel, TensorFlowModel, JAXModel, "
            f"NumPyModel), got {type(model).__module__}.{type(model).__name__}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed: expected an int or None, got {seed!r}")
    specs = resolve_attacks(attacks, seed)
    grids = resolve_epsilons(epsilons, specs)
    totals = _Totals(
        {label: _AttackTotals(len(grids[a.norm.name])) for label, a in specs},
        {norm: np.zeros(len(grid), np.int64) for norm, grid in grids.items()},
    )
    counting = CountingModel(model)
    start = time.perf_counter()
    with _progress_bar(progress, data, batch_size) as bar:
        for x, y in iter_batches(data, batch_size):
            if totals.n == 0 and len(y) > 0:
                totals.warnings.extend(_model_checks(model, x, y))
            _evaluate_batch(counting, x, y, specs, grids, cascade, totals, bar)
            bar.update(len(y) if is_pair(data) else 1)
    seconds = time.perf_counter() - start
    diagnostics.warn(dict.fromkeys(totals.warnings), "evaluate")
    from .. import __version__

    summaries = []
    for label, attack in specs:
        t = totals.attacks[label]
        summaries.append(
            AttackSummary(
                name=label,
                attack=repr(attack),
                norm=attack.norm.name,
                kind=attack.kind,
                epsilons=list(grids[attack.norm.name]),
                robust=[int(k) for k in t.robust],
                attacked=t.attacked,
                seconds=t.seconds,
                forward_calls=t.calls.forward,
                gradient_calls=t.calls.gradient,
                distances=[float(d) for d in np.concatenate(t.distances)]
                if attack.kind == "minimization"
                else None,
            )
        )
    return RobustnessReport(
        model=type(model).__name__,
        framework=model.framework,
        n=totals.n,
        clean_correct=totals.correct,
        epsilons={norm: list(grid) for norm, grid in grids.items()},
        attacks=summaries,
        worst_case={norm: [int(k) for k in counts] for norm, counts in totals.worst.items()},
        cascade=bool(cascade),
        seed=seed,
        seconds=seconds,
        version=__version__,
    )


@dataclass
class _AttackTotals:
    epsilons: int
    robust: np.ndarray = field(init=False)
    attacked: int = 0
    seconds: float = 0.0
    calls: Calls = field(default_factory=Calls)
    distances: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.robust = np.zeros(self.epsilons, np.int64)


@dataclass
class _Totals:
    attacks: dict[str, _AttackTotals]
    worst: dict[str, np.ndarray]
    n: int = 0
    correct: int = 0
    warnings: list[str] = field(default_factory=list)


def _evaluate_batch(
    model: CountingModel,
    x: np.ndarray,
    y: np.ndarray,
    specs: list[tuple[str, Attack]],
    grids: dict[str, list[float]],
    cascade: bool,
    totals: _Totals,
    bar: Any,
) -> None:
    correct = _clean_correct(model.inner, x, y)
    totals.n += len(y)
    totals.correct += int(correct.sum())
    for norm, grid in grids.items():
        eps = np.asarray(grid)
        worst = np.tile(correct, (len(grid), 1))  # (epsilons, samples): robust so far
        after_white_box: np.ndarray | None = None
        for label, attack in specs:
            if attack.norm.name != norm:
                continue
            bar.set_postfix_str(label, refresh=True)
            candidates = worst if cascade else np.tile(correct, (len(grid), 1))
            # A zero budget leaves the inputs unchanged: nothing to attack there.
            targets = candidates & (eps > 0)[:, None]
            t = totals.attacks[label]
            before, start = model.calls.copy(), time.perf_counter()
            if attack.kind == "minimization":
                broken, distances = _run_minimization(model, attack, x, y, targets, eps)
                t.distances.append(np.where(correct, distances, 0.0))
            else:
                broken = _run_fixed(model, attack, x, y, targets, eps)
            t.seconds += time.perf_counter() - start
            t.calls.add(model.calls.minus(before))
            t.attacked += int(targets.any(axis=0).sum())
            robust = candidates & ~broken
            t.robust += robust.sum(axis=1)
            worst = worst & robust
            if attack.requires_grad:
                after_white_box = worst
        if after_white_box is not None and worst is not after_white_box:
            message = diagnostics.black_box_check(after_white_box.ravel(), worst.ravel())
            if message is not None:
                totals.warnings.append(message)
        totals.worst[norm] += worst.sum(axis=1)


def _model_checks(model: Model, x: np.ndarray, y: np.ndarray) -> list[str]:
    """Gradient-masking checks on the first batch: probability outputs, a randomized model,
    zero gradients. Invalid data is left for the evaluation itself to report."""
    inputs, _ = model.to_tensor(x, "inputs", floating=True)
    try:
        check_inputs(inputs, model)
        outputs = model(inputs)
        check_outputs(outputs, len(y))
        criterion = Misclassification(y).bind(model, outputs)
    except (TypeError, ValueError):
        return []
    return diagnostics.model_checks(model, inputs, criterion, outputs)


def _clean_correct(model: Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if len(y) == 0:
        return np.zeros(0, dtype=bool)
    inputs, _ = model.to_tensor(x, "inputs", floating=True)
    check_inputs(inputs, model)
    logits = model(inputs)
    check_outputs(logits, len(y))
    classes = logits.shape[1]
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(
            f"data: labels must be class indices in [0, {classes - 1}] for a model with "
            f"{classes} outputs, got values from {y.min()} to {y.max()}"
        )
    correct: np.ndarray = to_numpy(logits.argmax(axis=-1), "predictions") == y
    return correct


def _run_fixed(
    model: Model,
    attack: Attack,
    x: np.ndarray,
    y: np.ndarray,
    candidates: np.ndarray,
    eps: np.ndarray,
) -> np.ndarray:
    """Which candidates the attack breaks, per epsilon; epsilons whose candidates are the same
    samples share one call."""
    broken = np.zeros_like(candidates)
    groups: dict[bytes, list[int]] = {}
    for j, mask in enumerate(candidates):
        groups.setdefault(mask.tobytes(), []).append(j)
    for indices in groups.values():
        mask = candidates[indices[0]]
        if not mask.any():
            continue
        rows, m = _subset(mask, model.compile_enabled)
        result = attack(model, x[rows], y[rows], epsilons=[float(eps[j]) for j in indices])
        success = to_numpy(result.success, "success").astype(bool)[:, :m]
        broken[np.ix_(np.asarray(indices), rows[:m])] = success
    return broken


def _run_minimization(
    model: Model,
    attack: Attack,
    x: np.ndarray,
    y: np.ndarray,
    candidates: np.ndarray,
    eps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One unbounded run on every sample that is still a candidate at some epsilon; a sample is
    broken at epsilon when its smallest adversarial is no larger."""
    broken = np.zeros_like(candidates)
    distances = np.full(len(y), np.nan)
    mask: np.ndarray = np.asarray(candidates.any(axis=0))
    if mask.any():
        rows, m = _subset(mask, model.compile_enabled)
        result = attack(model, x[rows], y[rows], epsilons=None)
        found = to_numpy(result.success, "success").astype(bool)[:m]
        clipped = to_numpy(result.clipped, "clipped")[:m].astype(np.float64)
        delta = (clipped - x[rows[:m]].astype(np.float64)).reshape(m, -1)
        size = np.linalg.norm(delta, ord=attack.norm.p, axis=1)
        distances[rows[:m]] = np.where(found, size, np.inf)
        broken[:, rows[:m]] = found[None, :] & (size[None, :] <= eps[:, None])
    return broken & candidates, distances


def _subset(mask: np.ndarray, pad: bool) -> tuple[np.ndarray, int]:
    """The indices of the ``m`` selected samples, and ``m``.

    Compiled steps (``jax.jit``, ``torch.compile``) are specialised to a batch size, so every
    new subset size would compile again (measured: 33 s instead of 3 s for a JAX evaluation).
    With ``pad`` the indices are padded to the next power of two (at most the batch size) by
    repeating the first sample, so a batch needs only a few sizes; the padding's results are
    dropped. Attacks treat samples independently, so the padding changes no other sample's
    result beyond the random numbers it is given.
    """
    selected = np.flatnonzero(mask)
    m = len(selected)
    if not pad:
        return selected, m
    size = min(1 << (m - 1).bit_length(), len(mask))
    return np.concatenate([selected, np.full(size - m, selected[0])]), m


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass


@contextmanager
def _progress_bar(progress: bool, data: Any, batch_size: int | None) -> Iterator[Any]:
    """A tqdm bar over samples (or batches, when the data's size is unknown)."""
    bar: Any = _NoBar()
    if progress and sys.stderr is not None and sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            tqdm = None
        if tqdm is not None:
            if is_pair(data):
                bar = tqdm(total=len(data[0]), unit="sample", desc="evaluate")
            else:
                bar = tqdm(total=count_batches(data, batch_size), unit="batch", desc="evaluate")
    try:
        yield bar
    finally:
        if not isinstance(bar, _NoBar):
            bar.close()
