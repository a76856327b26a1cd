"""``advlib.evaluate``: how robust is a model, against which attacks, at which budgets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .. import _progress
from ..attacks import _diagnostics as diagnostics
from ..attacks.base import Attack, check_inputs, check_model, check_outputs
from ..criteria import Misclassification
from ..models.base import Model
from .counting import Calls, CountingModel
from .data import iter_pieces, progress_total, to_numpy
from .report import AttackSummary, RobustnessReport
from .specs import resolve_attacks, resolve_epsilons


def evaluate(
    model: Model,
    data: Any,
    attacks: Any,
    epsilons: Any,
    *,
    batch_size: int | None = None,
    progress: bool | None = None,
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
            such as ``"FGSM"`` / ``"LinfPGD"`` (built with its defaults), a name with keyword
            arguments such as ``"L2CarliniWagnerAttack(steps=100, binary_search_steps=5)"``
            (literal values only; see :mod:`advlib.evaluation.specs`), a list of them, or a
            ``{label: attack}`` dict to choose the labels in the report.
        epsilons: the budgets: a number or list of numbers when all attacks share one norm, else
            a dict with one list per norm, e.g. ``{"linf": [0, 8/255], "l2": [0, 0.5]}``.
            Minimization attacks (C&W, DeepFool, ...) run once, unbounded, and their smallest
            adversarials give the robust accuracy at every epsilon.
        batch_size: the largest batch an attack sees, which bounds memory; batches of ``data``
            are split to fit. Default None: the data's own batches (a pair of arrays is one
            batch).
        progress: a progress bar over samples x attacks with an ETA, moving during every
            attack's iterations: None (the default) shows it when somebody watches (stderr is a
            terminal, or a notebook), True always, False never.
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
    check_model(model)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed: expected an int or None, got {seed!r}")
    _progress.check_progress(progress)
    specs = resolve_attacks(attacks, seed)
    grids = resolve_epsilons(epsilons, specs)
    totals = _Totals(
        {label: _AttackTotals(len(grids[a.norm.name])) for label, a in specs},
        {norm: np.zeros(len(grid), np.int64) for norm, grid in grids.items()},
        {norm: _BlackBoxTotals(len(grid)) for norm, grid in grids.items()},
    )
    counting = CountingModel(model)
    start = time.perf_counter()
    units, unit = progress_total(data)
    bar = _progress.Progress(
        None if units is None else units * len(specs), "evaluate", unit, enabled=progress
    )
    with bar.activate():
        for x, y, share in iter_pieces(data, batch_size):
            if totals.n == 0 and len(y) > 0:
                totals.warnings.extend(_model_checks(model, x, y))
            _evaluate_batch(counting, x, y, specs, grids, cascade, totals, (bar, share))
    seconds = time.perf_counter() - start
    for norm, grid in grids.items():
        totals.warnings.extend(totals.black_box[norm].messages(grid, norm))
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
class _BlackBoxTotals:
    """Per epsilon: samples that survived every white-box attack, and how many of those a
    black-box attack fooled (for :func:`~advlib.attacks._diagnostics.black_box_significance`)."""

    epsilons: int
    robust: np.ndarray = field(init=False)
    fooled: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.robust = np.zeros(self.epsilons, np.int64)
        self.fooled = np.zeros(self.epsilons, np.int64)

    def add(self, white_robust: np.ndarray, black_broken: np.ndarray) -> None:
        self.robust += white_robust.sum(axis=1)
        self.fooled += (white_robust & black_broken).sum(axis=1)

    def messages(self, grid: list[float], norm: str) -> list[str]:
        found = (
            diagnostics.black_box_significance(int(r), int(f), epsilon=eps, norm=norm)
            for eps, r, f in zip(grid, self.robust, self.fooled, strict=True)
        )
        return [message for message in found if message is not None]


@dataclass
class _Totals:
    attacks: dict[str, _AttackTotals]
    worst: dict[str, np.ndarray]
    black_box: dict[str, _BlackBoxTotals]
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
    progress: tuple[_progress.Progress, float],
) -> None:
    """Attack one batch with every attack; ``progress`` is the bar and the batch's share of
    it per attack."""
    bar, share = progress
    correct = _clean_correct(model.inner, x, y)
    totals.n += len(y)
    totals.correct += int(correct.sum())
    for norm, grid in grids.items():
        eps = np.asarray(grid)
        worst = np.tile(correct, (len(grid), 1))  # (epsilons, samples): robust so far
        # Samples every white-box attack ran on and failed; samples a black-box attack broke.
        white_robust = np.tile(correct, (len(grid), 1)) & (eps > 0)[:, None]
        black_broken = np.zeros_like(white_robust)
        white, black = False, False
        for label, attack in specs:
            if attack.norm.name != norm:
                continue
            candidates = worst if cascade else np.tile(correct, (len(grid), 1))
            # A zero budget leaves the inputs unchanged: nothing to attack there.
            targets = candidates & (eps > 0)[:, None]
            t = totals.attacks[label]
            before, start = model.calls.copy(), time.perf_counter()
            with bar.portion(share):
                job = _Job(model, attack, x, y, targets, eps)
                if attack.kind == "minimization":
                    broken, distances = _run_minimization(job)
                    t.distances.append(np.where(correct, distances, 0.0))
                else:
                    broken = _run_fixed(job, bar)
            t.seconds += time.perf_counter() - start
            t.calls.add(model.calls.minus(before))
            t.attacked += int(targets.any(axis=0).sum())
            robust = candidates & ~broken
            t.robust += robust.sum(axis=1)
            worst = worst & robust
            if attack.requires_grad:
                white_robust &= targets & ~broken
                white = True
            else:
                black_broken |= broken
                black = True
        if white and black:
            totals.black_box[norm].add(white_robust, black_broken)
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


class _Job(NamedTuple):
    """One attack on one batch: the samples still to attack (``candidates``, per epsilon)."""

    model: Model
    attack: Attack
    x: np.ndarray
    y: np.ndarray
    candidates: np.ndarray
    eps: np.ndarray


def _run_fixed(job: _Job, bar: _progress.Progress) -> np.ndarray:
    """Which candidates the attack breaks, per epsilon: one call per epsilon with candidates,
    each an equal part of the bar's current portion. (One call per epsilon rather than one for
    several: the attack's run at each epsilon then owns its portion whether or not the attack
    call splits portions among its runs, and a fresh generator per run draws the same numbers
    either way.)"""
    model, attack, x, y, candidates, eps = job
    broken = np.zeros_like(candidates)
    rows_to_attack = [j for j, mask in enumerate(candidates) if mask.any()]
    each = bar.share / max(len(rows_to_attack), 1)
    for j in rows_to_attack:
        rows, m = _subset(candidates[j], model.compile_enabled)
        with bar.portion(each):
            result = attack(model, x[rows], y[rows], epsilons=float(eps[j]))
        broken[j, rows[:m]] = to_numpy(result.success, "success").astype(bool)[:m]
    return broken


def _run_minimization(job: _Job) -> tuple[np.ndarray, np.ndarray]:
    """One unbounded run on every sample that is still a candidate at some epsilon; a sample is
    broken at epsilon when its smallest adversarial is no larger."""
    model, attack, x, y, candidates, eps = job
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
