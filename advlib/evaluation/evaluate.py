"""``advlib.evaluate``: how robust is a model, against which attacks, at which budgets."""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress
from ..attacks import _diagnostics as diagnostics
from ..attacks.base import Attack, check_inputs, check_model, check_outputs, probe_outputs
from ..criteria import Misclassification
from ..models.base import Model
from .counting import CountingModel
from .data import Block, iter_blocks, progress_total, to_numpy
from .factory import ModelFactory
from .report import RobustnessReport
from .results import ResultTable, column, per_block
from .specs import resolve_attacks, resolve_epsilons
from .store import ResultsDir

#: The engines :func:`evaluate` runs on.
ENGINES = ("local", "ray")


def evaluate(
    model: Any,
    data: Any,
    attacks: Any,
    epsilons: Any,
    *,
    batch_size: int | None = None,
    progress: bool | None = None,
    seed: int | None = 0,
    cascade: bool = True,
    indices: Any = None,
    results: Any = None,
    engine: str = "local",
    workers: int | tuple[int, int] = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    address: str | None = None,
) -> RobustnessReport:
    """Clean and robust accuracy of ``model`` on ``data`` against ``attacks``.

    Args:
        model: an advlib model wrapper (``PyTorchModel``, ``TensorFlowModel``, ``JAXModel``,
            ``NumPyModel``, or a zoo model); or what builds one: a function of no arguments
            returning it (or ``(model, data)``), or ``"module:function"`` /
            ``"file.py:function"`` naming such a function. With ``engine="ray"`` each worker
            builds its model once from the function (which must be picklable).
        data: ``(inputs, labels)`` arrays or tensors, a torch ``DataLoader``, a
            ``tf.data.Dataset`` or any iterable of ``(inputs, labels)`` batches. Inputs are
            batches (N, ...) within the model's bounds, labels class indices of shape (N,).
            With ``engine="ray"`` also a Ray Dataset with columns ``x``, ``y`` and ``id``, or
            ``"module:function"`` naming a function that returns any of these.
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
            are split to fit. Each batch is one block of the per-sample results. Default None:
            the data's own batches (a pair of arrays is one batch; with ``engine="ray"``,
            blocks of :data:`advlib.distributed.BLOCK_SIZE` samples).
        progress: a progress bar over samples x attacks with an ETA, moving during every
            attack's iterations: None (the default) shows it when somebody watches (stderr is a
            terminal, or a notebook), True always, False never.
        seed: given to every attack that takes a seed: named attacks are built with it, and
            instances whose seed is None are copied with it (instances are never changed, and
            an instance's own seed wins). With it, a sample's random numbers depend only on
            the seed and the sample's id, not on its batch. None: leave the attacks' seeds
            alone. Default 0.
        cascade: run each attack only on the samples every earlier attack of the same norm left
            robust at that epsilon, as AutoAttack does (default True); each attack's row is then
            the robust accuracy against it and all earlier attacks. False runs every attack on
            every correctly classified sample, for each attack's own robust accuracy.
        indices: one distinct integer id per sample of ``data``, in its order: the sample's
            identity in the results and in the attacks' random numbers. Default None: the
            sample's position in the data, counted across batches.
        results: a directory for the per-sample results, one Parquet file per block (needs
            pyarrow). Rerunning with the same directory skips the samples already there, and
            the report covers them all; a directory of another configuration (model, attacks,
            epsilons, seed, cascade, advlib version) is refused. Default None: keep results in
            memory only (``engine="ray"`` needs a directory).
        engine: ``"local"`` (the default): this process, block after block. ``"ray"``: Ray
            Data workers (see :mod:`advlib.distributed`; needs ``pip install advlib[ray]``).
        workers: ``engine="ray"`` only: the number of workers (actors), each building the
            model once, or a ``(min, max)`` pair to let Ray scale between. Default 1.
        cpus_per_worker / gpus_per_worker: ``engine="ray"`` only: what Ray reserves for each
            worker (defaults 1 CPU, no GPU); with one GPU per worker each sees its own device.
        address: ``engine="ray"`` only: the Ray cluster to join (``"auto"``, ``"ray://host:
            10001"``). Default None: a Ray already started in this process, else a local one.

    Returns:
        A :class:`RobustnessReport` (``print(report)`` for the table). Samples the model
        misclassifies count as not robust and are never attacked.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed: expected an int or None, got {seed!r}")
    _progress.check_progress(progress)
    if engine == "ray":
        from ..distributed.engine import RayOptions, evaluate_ray

        options = RayOptions(workers, cpus_per_worker, gpus_per_worker, address)
        return evaluate_ray(
            model,
            data,
            Settings(attacks, epsilons, seed, cascade),
            options,
            batch_size=batch_size,
            progress=progress,
            indices=indices,
            results=results,
        )
    _local_only(
        workers=(workers, 1),
        cpus_per_worker=(cpus_per_worker, 1.0),
        gpus_per_worker=(gpus_per_worker, 0.0),
        address=(address, None),
    )
    model, name = local_model(model)
    plan = make_plan(name, Settings(attacks, epsilons, seed, cascade))
    store = None if results is None else ResultsDir(results, plan.header)
    start = time.perf_counter()
    tables = _evaluate_local(model, data, plan, store, (batch_size, indices, progress))
    combined = ResultTable.concat(tables or [empty_table(CountingModel(model), plan)])
    diagnostics.warn(
        dict.fromkeys([*combined.warnings, *combined.black_box_messages()]), "evaluate"
    )
    return combined.to_report(seconds=time.perf_counter() - start)


class Settings(NamedTuple):
    """What to evaluate, as the user gave it to :func:`evaluate`."""

    attacks: Any
    epsilons: Any
    seed: int | None
    cascade: bool


class Plan(NamedTuple):
    """An evaluation, resolved: the attacks, each norm's epsilons and the results' header."""

    specs: list[tuple[str, Attack]]
    grids: dict[str, list[float]]
    cascade: bool
    header: dict[str, Any]


def make_plan(model_name: str, settings: Settings) -> Plan:
    """The :class:`Plan` of ``settings`` for the model called ``model_name`` (a ValueError or
    TypeError for attacks or epsilons that are no such thing)."""
    from .. import __version__

    specs = resolve_attacks(settings.attacks, settings.seed)
    grids = resolve_epsilons(settings.epsilons, specs)
    kinds = {norm: {a.requires_grad for _, a in specs if a.norm.name == norm} for norm in grids}
    header = {
        "model": model_name,
        "epsilons": {norm: [float(e) for e in grid] for norm, grid in grids.items()},
        "attacks": [
            {"name": label, "attack": repr(a), "norm": a.norm.name, "kind": a.kind}
            for label, a in specs
        ],
        "black_box": [norm for norm, k in kinds.items() if k == {True, False}],
        "cascade": bool(settings.cascade),
        "seed": settings.seed,
        "version": __version__,
    }
    return Plan(specs, grids, bool(settings.cascade), header)


def local_model(model: Any) -> tuple[Model, str]:
    """The model of :func:`evaluate`'s ``model`` argument, built here, and its name."""
    if isinstance(model, str) or is_factory(model):
        factory = ModelFactory(model)
        return factory.build(), factory.name
    return check_model(model), type(model).__name__


def is_factory(value: Any) -> bool:
    """Whether ``value`` is a function that builds a model (rather than a network, which is
    callable too and gets :func:`check_model`'s advice)."""
    return inspect.isfunction(value) or isinstance(value, functools.partial)


def _local_only(**options: tuple[Any, Any]) -> None:
    for name, (value, default) in options.items():
        if value != default:
            raise ValueError(
                f"{name}: only engine='ray' uses it, got {name}={value!r} with the local engine; "
                "pass engine='ray' or leave it out"
            )


def _evaluate_local(
    model: Model,
    data: Any,
    plan: Plan,
    store: ResultsDir | None,
    options: tuple[int | None, Any, bool | None],
) -> list[ResultTable]:
    """Every block's table, computed here (and stored in ``store``); blocks whose samples
    ``store`` already holds are read, not computed."""
    batch_size, indices, progress = options
    done = np.zeros(0, np.int64) if store is None else store.done()
    counting = CountingModel(model)
    tables: list[ResultTable] = []
    checked = False
    units, unit = progress_total(data)
    attacks = len(plan.specs)
    bar = _progress.Progress(
        None if units is None else units * attacks, "evaluate", unit, enabled=progress
    )
    with bar.activate():
        for (x, y, ids), share in iter_blocks(data, batch_size, indices):
            keep = ~np.isin(ids, done)
            with bar.portion(share * attacks):
                if not keep.any():
                    continue
                block = (x[keep], y[keep], ids[keep])
                warnings = [] if checked else _model_checks(model, block[0], block[1])
                checked = True
                table = evaluate_block(counting, block, plan, (bar, share * keep.mean()))
                table.warnings.extend(warnings)
                if store is not None:
                    store.write(table)
                tables.append(table)
    if store is not None:
        stored = store.table()
        return [] if stored is None else [stored]
    return tables


def evaluate_block(
    model: CountingModel,
    block: Block,
    plan: Plan,
    progress: tuple[_progress.Progress, float],
) -> ResultTable:
    """Every attack of ``plan`` on one block; ``progress`` is the bar and the block's share of
    it per attack."""
    x, y, ids = block
    start = time.perf_counter()
    correct = _clean_correct(model, x, y)
    columns = {"id": np.asarray(ids, np.int64), "correct": correct}
    for norm in plan.grids:
        columns.update(_norm_columns(model, block, correct, norm, plan, progress))
    columns["seconds"] = per_block(time.perf_counter() - start, len(y), np.float64)
    return ResultTable(plan.header | {"framework": model.framework}, columns)


def empty_table(model: CountingModel, plan: Plan) -> ResultTable:
    """The table of no samples."""
    nothing = (np.zeros((0, 1), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return evaluate_block(model, nothing, plan, (_progress.Progress(None, "", enabled=False), 0))


def _norm_columns(
    model: CountingModel,
    block: Block,
    correct: np.ndarray,
    norm: str,
    plan: Plan,
    progress: tuple[_progress.Progress, float],
) -> dict[str, np.ndarray]:
    """The columns of the attacks of ``norm`` (and the norm's own) for one block."""
    bar, share = progress
    x, y, ids = block
    eps = np.asarray(plan.grids[norm])
    worst = np.tile(correct, (len(eps), 1))  # (epsilons, samples): robust so far
    # Samples every white-box attack ran on and failed; samples a black-box attack broke.
    white_robust = worst & (eps > 0)[:, None]
    black_broken = np.zeros_like(white_robust)
    out: dict[str, np.ndarray] = {}
    for i, (_, attack) in enumerate(plan.specs):
        if attack.norm.name != norm:
            continue
        a = f"a{i}"
        candidates = worst if plan.cascade else np.tile(correct, (len(eps), 1))
        # A zero budget leaves the inputs unchanged: nothing to attack there.
        targets = candidates & (eps > 0)[:, None]
        before, start = model.calls.copy(), time.perf_counter()
        with bar.portion(share):
            job = _Job(model, attack, (x, y, ids), targets, eps)
            if attack.kind == "minimization":
                broken, distances = _run_minimization(job)
                out[column(a, "distance")] = np.where(correct, distances, 0.0)
            else:
                broken = _run_fixed(job, bar)
        calls = model.calls.minus(before)
        out[column(a, "seconds")] = per_block(time.perf_counter() - start, len(y), np.float64)
        out[column(a, "forward")] = per_block(calls.forward, len(y), np.int64)
        out[column(a, "gradient")] = per_block(calls.gradient, len(y), np.int64)
        out[column(a, "attacked")] = np.asarray(targets.any(axis=0))
        robust = candidates & ~broken
        out.update({column(a, "robust", j): robust[j] for j in range(len(eps))})
        worst = worst & robust
        if attack.requires_grad:
            white_robust &= targets & ~broken
        else:
            black_broken |= broken
    for j in range(len(eps)):
        out[column(norm, "worst", j)] = worst[j]
        if norm in plan.header["black_box"]:
            out[column(norm, "white_robust", j)] = white_robust[j]
            out[column(norm, "black_broken", j)] = black_broken[j]
    return out


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


def _clean_correct(model: CountingModel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which samples the model classifies correctly. Also makes the attacks' one-time probe
    of the model's outputs (once per process and input signature) here, outside every
    attack's count, so an attack's calls on a block do not depend on whether the block is the
    first its process evaluates: shards and workers then add up to one process's counts."""
    if len(y) == 0:
        return np.zeros(0, dtype=bool)
    inputs, _ = model.to_tensor(x, "inputs", floating=True)
    check_inputs(inputs, model)
    logits = model.inner(inputs)
    check_outputs(logits, len(y))
    probe_outputs(model, inputs, len(y))
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
    block: Block
    candidates: np.ndarray
    eps: np.ndarray


#: Whether attacks take the samples' ids (``indices=``) for per-sample random numbers.
_TAKES_INDICES = "indices" in inspect.signature(Attack.__call__).parameters


def _attack(job: _Job, rows: np.ndarray, epsilons: float | None) -> Any:
    """The attack of ``job`` on the block's ``rows``, each with its sample id."""
    x, y, ids = job.block
    extra = {"indices": ids[rows]} if _TAKES_INDICES else {}
    return job.attack(job.model, x[rows], y[rows], epsilons=epsilons, **extra)


def _run_fixed(job: _Job, bar: _progress.Progress) -> np.ndarray:
    """Which candidates the attack breaks, per epsilon: one call per epsilon with candidates,
    each an equal part of the bar's current portion. (One call per epsilon rather than one for
    several: the attack's run at each epsilon then owns its portion whether or not the attack
    call splits portions among its runs, and a fresh generator per run draws the same numbers
    either way.)"""
    model, _, _, candidates, eps = job
    broken = np.zeros_like(candidates)
    rows_to_attack = [j for j, mask in enumerate(candidates) if mask.any()]
    each = bar.share / max(len(rows_to_attack), 1)
    for j in rows_to_attack:
        rows, m = _subset(candidates[j], model.compile_enabled)
        with bar.portion(each):
            result = _attack(job, rows, float(eps[j]))
        broken[j, rows[:m]] = to_numpy(result.success, "success").astype(bool)[:m]
    return broken


def _run_minimization(job: _Job) -> tuple[np.ndarray, np.ndarray]:
    """One unbounded run on every sample that is still a candidate at some epsilon; a sample is
    broken at epsilon when its smallest adversarial is no larger."""
    model, attack, (x, y, _), candidates, eps = job
    broken = np.zeros_like(candidates)
    distances = np.full(len(y), np.nan)
    mask: np.ndarray = np.asarray(candidates.any(axis=0))
    if mask.any():
        rows, m = _subset(mask, model.compile_enabled)
        result = _attack(job, rows, None)
        found = to_numpy(result.success, "success").astype(bool)[:m]
        clipped = to_numpy(result.clipped, "clipped")[:m].astype(np.float64)
        delta = clipped - x[rows[:m]].astype(np.float64)
        # The attack's own norm (L0 pixels need the image's shape), in float64 on the host.
        size = attack.norm(ep.astensor(delta)).numpy()
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
