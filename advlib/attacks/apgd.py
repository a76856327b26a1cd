"""Auto-PGD (Croce & Hein, 2020): PGD without a step size to tune.

APGD starts with a step of ``2 * epsilon`` (Linf, L2) and halves it at checkpoints whenever the
loss stopped improving: at checkpoint ``j`` a sample's step is halved when at most a fraction
``rho`` of the steps since the previous checkpoint increased its loss, or when its step was not
halved at the previous checkpoint and its best loss has not improved since. A halving restarts
the sample from its best point. The checkpoints lie at fractions ``p_0 = 0, p_1 = 0.22`` and
``p_(j+1) = p_j + max(p_j - p_(j-1) - 0.03, 0.06)`` of the steps; updates use momentum 0.75.

The L1 version follows Croce & Hein (2021, "Mind the box"): it moves only the coordinates with
the largest gradients (a fraction ``k`` of them, adapted to the sparsity of the best point found),
projects onto the L1 ball intersected with the box exactly, and has no momentum.

Losses (all maximised): ``"ce"`` (cross-entropy; towards a target class when the criterion is
targeted) and ``"dlr"`` (the difference-of-logits ratio, invariant to the scale of the logits).
Success is always decided by the criterion itself, so a targeted criterion uses the targeted
success test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name, flat_batch, scalar_like, unflat_batch
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l1, l2, linf
from ._box_projections import l1_box_projection
from ._dlr import LOSSES, cross_entropy, dlr, ranked_other_class, targeted_dlr
from ._minimization import check_float, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._subsets import Subset, host_bool
from .base import FixedEpsilonAttack

#: Weight of the new gradient step against the previous update (Croce & Hein's alpha).
MOMENTUM = 0.75

LossFn = Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]
# (x_best, grad_best, loss_best, loss_previous, increases): the per-sample bookkeeping.
Best = tuple[ep.Tensor, ep.Tensor, ep.Tensor, ep.Tensor, ep.Tensor]


def linf_l2_checkpoints(steps: int) -> list[tuple[int, int]]:
    """``(iteration, window)`` pairs: after ``iteration`` (0-based) the step sizes are checked
    over the last ``window`` iterations."""
    window = max(int(0.22 * steps), 1)
    shrink, smallest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    checkpoints, i = [], window - 1
    while i < steps:
        checkpoints.append((i, window))
        window = max(window - shrink, smallest)
        i += window
    return checkpoints


def l1_checkpoints(steps: int) -> list[tuple[int, int]]:
    """L1-APGD checks its step size and sparsity every 4% of the steps."""
    window = max(int(0.04 * steps), 1)
    return [(i, window) for i in range(window - 1, steps, window)]


def _loss_function(loss: str, targeted: bool, with_labels: bool) -> LossFn:
    """The per-sample loss to maximise, as ``f(logits, labels, targets)``."""
    if loss == "ce":
        if targeted:
            return lambda z, labels, targets: cross_entropy(z, targets, True)
        return lambda z, labels, targets: cross_entropy(z, labels, False)
    if targeted:
        if with_labels:
            return lambda z, labels, targets: targeted_dlr(z, targets, labels)
        return lambda z, labels, targets: targeted_dlr(z, targets, None)
    return lambda z, labels, targets: dlr(z, labels)


class _AutoPGD(NormFamily, FixedEpsilonAttack):
    """APGD in the norm ``self.norm``; ``APGD(norm="l2")`` gives an :class:`L2AutoPGD`.

    Args:
        steps: gradient steps per restart (default 100).
        restarts: random restarts; each later restart runs only on the samples not yet
            adversarial (default 1).
        loss: ``"ce"`` (default) or ``"dlr"``.
        rho: the fraction of loss-increasing steps below which the step size halves
            (default 0.75; unused by L1-APGD).
        eot_iter: gradients averaged per step, for randomized models (expectation over
            transformation; default 1).
        seed: seed of the random starts; None draws fresh randomness on every call.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``, also spelled as AutoAttack and torchattacks do
            (``"Linf"``, ``"L2"``, ``"L1"``, ``np.inf``, ``2``, ``1``); default None: the class's
            norm (Linf for ``APGD``).
    """

    def __init__(
        self,
        *,
        steps: int = 100,
        restarts: int = 1,
        loss: str = "ce",
        rho: float = 0.75,
        eot_iter: int = 1,
        seed: int | None = None,
        norm: Any = None,
    ) -> None:
        # ``norm`` chose the class: NormFamily.__new__
        self.steps = check_int(steps, "steps")
        self.restarts = check_int(restarts, "restarts")
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {loss!r}")
        self.loss = loss
        self.rho = check_float(rho, "rho")
        if self.rho > 1:
            raise ValueError(f"rho: expected a number in (0, 1], got {rho!r}")
        self.eot_iter = check_int(eot_iter, "eot_iter")
        self.seed = check_seed(seed)

    # ------------------------------------------------------------------ the attack
    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        if epsilon == 0 or inputs.shape[0] == 0:
            return inputs
        outputs = model(inputs)
        self._check_classes(outputs.shape[-1])
        # labels (untargeted) or targets (targeted) fill both class arguments of the loss
        x, _ = self._attack(
            model, inputs, outputs, criterion, epsilon, classes, classes, targeted, False
        )
        return x

    def _check_classes(self, num_classes: int) -> None:
        if self.loss == "dlr" and num_classes < 3:
            raise ValueError(
                "loss: the DLR loss needs a model with at least 3 classes, "
                f"got {num_classes}; use loss='ce'"
            )

    def _attack(
        self,
        model: Model,
        inputs: ep.Tensor,
        outputs: ep.Tensor,
        criterion: Criterion,
        epsilon: float,
        labels: ep.Tensor,
        targets: ep.Tensor,
        targeted: bool,
        with_labels: bool,
        found: np.ndarray | None = None,
        result: ep.Tensor | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[ep.Tensor, np.ndarray]:
        """Restarts on the samples not yet adversarial; returns the perturbed inputs and the
        host-side success mask. Samples in ``found`` (default: those adversarial at ``inputs``)
        keep their row of ``result`` (default: ``inputs``)."""
        if found is None:
            found = host_bool(criterion(inputs, outputs))
        found = found.copy()
        rng = self._generator() if rng is None else rng
        result = inputs if result is None else result
        for _ in progress.steps(self.restarts):
            if found.all():
                break
            subset = Subset.of_mask(inputs, ~found, model.compile_enabled)
            x, success = self._single_run(
                model,
                subset.take(inputs),
                subset.criterion(criterion, inputs, outputs),
                epsilon,
                subset.take(labels),
                subset.take(targets),
                targeted,
                with_labels,
                rng,
            )
            result = subset.put(result, x)
            found[subset.rows_np[subset.selected(host_bool(success))]] = True
        return result, found

    def _single_run(
        self,
        model: Model,
        origin: ep.Tensor,
        criterion: Criterion,
        epsilon: float,
        labels: ep.Tensor,
        targets: ep.Tensor,
        targeted: bool,
        with_labels: bool,
        rng: np.random.Generator,
    ) -> tuple[ep.Tensor, ep.Tensor]:
        """One APGD run from a random start: (best adversarial or highest-loss point, success)."""
        mode = (self.loss, targeted, with_labels)
        step = model.compiled(
            self._compile_key("step", *mode), lambda: self._make_step(model, mode)
        )
        shape = tuple(origin.shape[1:])
        checkpoint = model.compiled(
            self._compile_key("checkpoint", shape), lambda: self._make_checkpoint(shape)
        )
        eps = scalar_like(origin, epsilon)
        x = self._random_start(model, origin, eps, rng)
        # The start is evaluated by a step of size zero: one compiled function serves both.
        zero = ep.zeros(origin, (origin.shape[0],))
        one = scalar_like(origin, 1.0)
        best: Best = (x, ep.zeros_like(x), zero - np.inf, zero - np.inf, zero)
        x, x_prev, grad, logits, best = step(
            x,
            x,
            ep.zeros_like(x),
            origin,
            eps,
            zero,
            one,
            labels,
            targets,
            best,
            self._checkpoint_state(zero),
        )
        best = (*best[:4], zero)
        success = criterion(x, logits)
        x_adv = x
        step_size = zero + self._initial_step(epsilon)
        extra = self._checkpoint_state(best[2])
        checkpoints = dict(self._checkpoints())
        momentum = scalar_like(origin, MOMENTUM)
        for i in progress.steps(self.steps):
            weight = one if i == 0 else momentum
            x, x_prev, grad, logits, best = step(
                x, x_prev, grad, origin, eps, step_size, weight, labels, targets, best, extra
            )
            now = criterion(x, logits)
            x_adv = ep.where(atleast_kd(now, x.ndim), x, x_adv)
            success = ep.logical_or(success, now)
            if i in checkpoints:
                threshold = scalar_like(origin, self.rho * checkpoints[i])
                x, grad, step_size, best, extra = checkpoint(
                    x, grad, origin, eps, step_size, best, extra, threshold
                )
                if bool(success.all().item()):  # one transfer per checkpoint
                    break
        return ep.where(atleast_kd(success, x.ndim), x_adv, best[0]), success

    def _compile_key(self, *parts: object) -> tuple[object, ...]:
        """Compiled pieces depend only on the norm, EOT and ``parts`` (mode, shapes), so APGD
        and APGD-T of any budget share them on a model."""
        return ("advlib.attacks.apgd", self.norm.name, self.eot_iter, *parts)

    # ------------------------------------------------------------------ per-norm hooks
    def _random_start(
        self, model: Model, origin: ep.Tensor, eps: ep.Tensor, rng: np.random.Generator
    ) -> ep.Tensor:
        """A random point on the sphere of radius epsilon (Linf, L2), clipped to the bounds."""
        noise = (
            rng.uniform(-1.0, 1.0, size=origin.shape)
            if self.norm is linf
            else (rng.standard_normal(size=origin.shape))
        )
        t = ep.from_numpy(origin, noise.astype(dtype_name(origin)))
        start = (
            origin + eps * self.norm.normalize(t)
            if self.norm is l2
            else (origin + eps * t / atleast_kd(linf(t) + 1e-12, t.ndim))
        )
        return start.clip(*model.bounds)

    def _initial_step(self, epsilon: float) -> float:
        return 2.0 * epsilon

    def _checkpoints(self) -> list[tuple[int, int]]:
        return linf_l2_checkpoints(self.steps)

    def _checkpoint_state(self, loss: ep.Tensor) -> tuple[ep.Tensor, ...]:
        """(best loss at the last checkpoint, whether the step was halved there)."""
        return loss, ep.ones_like(loss) > 0

    # ------------------------------------------------------------------ compiled pieces
    def _make_evaluate(self, model: Model, mode: tuple[str, bool, bool]) -> StepFn:
        loss_of = _loss_function(*mode)
        eot = self.eot_iter

        def evaluate(
            x: ep.Tensor, labels: ep.Tensor, targets: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
            def loss_fn(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits = model(z)
                return loss_of(logits, labels, targets).sum(), logits

            _, logits, grad = model.value_and_grad(loss_fn, x)
            loss = loss_of(logits, labels, targets)
            for _ in range(eot - 1):
                _, logits, more = model.value_and_grad(loss_fn, x)
                grad = grad + more
                loss = loss + loss_of(logits, labels, targets)
            if eot == 1:
                return loss, logits, grad
            return loss / eot, logits, grad / eot

        return evaluate

    def _make_step(self, model: Model, mode: tuple[str, bool, bool]) -> StepFn:
        evaluate = self._make_evaluate(model, mode)
        move = self._make_move(model)

        def step(
            x: ep.Tensor,
            x_prev: ep.Tensor,
            grad: ep.Tensor,
            origin: ep.Tensor,
            eps: ep.Tensor,
            step_size: ep.Tensor,
            weight: ep.Tensor,
            labels: ep.Tensor,
            targets: ep.Tensor,
            best: Best,
            extra: tuple[ep.Tensor, ...],
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor, ep.Tensor, Best]:
            x_new = move(x, x_prev, grad, origin, eps, step_size, weight, extra)
            loss, logits, grad_new = evaluate(x_new, labels, targets)
            x_best, grad_best, loss_best, loss_prev, increases = best
            improved = loss > loss_best
            improved_kd = atleast_kd(improved, x.ndim)
            best = (
                ep.where(improved_kd, x_new, x_best),
                ep.where(improved_kd, grad_new, grad_best),
                ep.where(improved, loss, loss_best),
                loss,
                increases + (loss > loss_prev).astype(loss.dtype),
            )
            return x_new, x, grad_new, logits, best

        return step

    def _make_move(self, model: Model) -> Callable[..., ep.Tensor]:
        """Linf / L2: a normalised gradient step, projected, then mixed with the previous
        update (momentum) and projected again."""
        norm, (lower, upper) = self.norm, model.bounds

        def project(z: ep.Tensor, origin: ep.Tensor, eps: ep.Tensor) -> ep.Tensor:
            return norm.project(z, origin, eps).clip(lower, upper)

        def move(
            x: ep.Tensor,
            x_prev: ep.Tensor,
            grad: ep.Tensor,
            origin: ep.Tensor,
            eps: ep.Tensor,
            step_size: ep.Tensor,
            weight: ep.Tensor,
            extra: tuple[ep.Tensor, ...],
        ) -> ep.Tensor:
            z = project(x + atleast_kd(step_size, x.ndim) * norm.normalize(grad), origin, eps)
            return project(x + weight * (z - x) + (1 - weight) * (x - x_prev), origin, eps)

        return move

    def _make_checkpoint(self, shape: tuple[int, ...]) -> StepFn:
        def checkpoint(
            x: ep.Tensor,
            grad: ep.Tensor,
            origin: ep.Tensor,
            eps: ep.Tensor,
            step_size: ep.Tensor,
            best: Best,
            extra: tuple[ep.Tensor, ...],
            threshold: ep.Tensor,
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor, Best, tuple[ep.Tensor, ...]]:
            x_best, grad_best, loss_best, loss_prev, increases = best
            loss_at_last, halved_last = extra
            oscillating = increases <= threshold
            stalled = ep.logical_and(ep.logical_not(halved_last), loss_at_last >= loss_best)
            halve = ep.logical_or(oscillating, stalled)
            halve_kd = atleast_kd(halve, x.ndim)
            step_size = ep.where(halve, step_size / 2, step_size)
            x = ep.where(halve_kd, x_best, x)
            grad = ep.where(halve_kd, grad_best, grad)
            best = (x_best, grad_best, loss_best, loss_prev, ep.zeros_like(increases))
            return x, grad, step_size, best, (loss_best, halve)

        return checkpoint


class LinfAutoPGD(_AutoPGD):
    """APGD in Linf (Croce & Hein, 2020); see :class:`_AutoPGD` for the arguments.

    Defaults: ``steps=100``, ``restarts=1``, ``loss="ce"``, ``rho=0.75``, ``eot_iter=1``.
    """

    norm = linf


class L2AutoPGD(_AutoPGD):
    """APGD in L2 (Croce & Hein, 2020); see :class:`_AutoPGD` for the arguments."""

    norm = l2


class L1AutoPGD(_AutoPGD):
    """L1-APGD (Croce & Hein, 2021): sparse steps over the top-``k`` gradient coordinates and an
    exact projection onto the L1 ball intersected with the box; ``rho`` is unused.

    Defaults: ``steps=100``, ``restarts=1``, ``loss="ce"``, ``eot_iter=1``.
    """

    norm = l1

    #: Fraction of coordinates moved at the start.
    initial_topk = 0.2

    def _random_start(
        self, model: Model, origin: ep.Tensor, eps: ep.Tensor, rng: np.random.Generator
    ) -> ep.Tensor:
        noise = ep.from_numpy(
            origin, rng.standard_normal(size=origin.shape).astype(dtype_name(origin))
        )
        project = model.compiled(self._compile_key("start"), lambda: self._make_projection(model))
        start: ep.Tensor = project(origin + noise, origin, eps)
        return start

    def _make_projection(self, model: Model) -> StepFn:
        lower, upper = model.bounds

        def project(z: ep.Tensor, origin: ep.Tensor, eps: ep.Tensor) -> ep.Tensor:
            delta = l1_box_projection(
                flat_batch(z - origin),
                eps,
                flat_batch(lower - origin),
                flat_batch(upper - origin),
            )
            return origin + unflat_batch(delta, origin)

        return project

    def _initial_step(self, epsilon: float) -> float:
        return epsilon

    def _checkpoints(self) -> list[tuple[int, int]]:
        return l1_checkpoints(self.steps)

    def _checkpoint_state(self, loss: ep.Tensor) -> tuple[ep.Tensor, ...]:
        """(fraction of coordinates moved, number of non-zero coordinates at the last check)."""
        return ep.zeros_like(loss) + self.initial_topk, ep.zeros_like(loss) - 1.0

    def _make_move(self, model: Model) -> Callable[..., ep.Tensor]:
        project = self._make_projection(model)

        def move(
            x: ep.Tensor,
            x_prev: ep.Tensor,
            grad: ep.Tensor,
            origin: ep.Tensor,
            eps: ep.Tensor,
            step_size: ep.Tensor,
            weight: ep.Tensor,
            extra: tuple[ep.Tensor, ...],
        ) -> ep.Tensor:
            topk = extra[0]
            g = flat_batch(grad)
            features = g.shape[-1]
            magnitude = g.abs()
            rank = ((1.0 - topk) * features).astype(magnitude.dtype)
            rank = ep.minimum(ep.maximum(rank, 0.0), features - 1.0)
            index = rank.astype(magnitude.argmax(axis=-1).dtype)[:, None]
            threshold = ep.take_along_axis(magnitude.sort(axis=-1), index, axis=-1)
            direction = ep.where(magnitude >= threshold, g.sign(), 0.0)
            moved = direction.abs().sum(axis=-1, keepdims=True)
            step = direction * (step_size[:, None] / (moved + 1e-10))
            moved_x: ep.Tensor = project(x + unflat_batch(step, x), origin, eps)
            return moved_x

        return move

    def _make_checkpoint(self, shape: tuple[int, ...]) -> StepFn:
        features = float(np.prod(shape))

        def checkpoint(
            x: ep.Tensor,
            grad: ep.Tensor,
            origin: ep.Tensor,
            eps: ep.Tensor,
            step_size: ep.Tensor,
            best: Best,
            extra: tuple[ep.Tensor, ...],
            threshold: ep.Tensor,
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor, Best, tuple[ep.Tensor, ...]]:
            x_best, grad_best = best[0], best[1]
            _, sparsity_before = extra
            sparsity_before = ep.where(sparsity_before < 0, features, sparsity_before)
            sparsity = (flat_batch(x_best - origin).abs() > 0).astype(x.dtype).sum(axis=-1)
            # the best point got much sparser: move fewer coordinates, restart at full step
            sparser = sparsity / ep.maximum(sparsity_before, 1.0) < 0.95
            topk = sparsity / features / 1.5
            step_size = ep.where(sparser, eps + 0 * step_size, step_size / 1.5)
            step_size = ep.minimum(ep.maximum(step_size, eps / 10), eps)
            sparser_kd = atleast_kd(sparser, x.ndim)
            x = ep.where(sparser_kd, x_best, x)
            grad = ep.where(sparser_kd, grad_best, grad)
            return x, grad, step_size, best, (topk, sparsity)

        return checkpoint


class _AutoPGDTargeted(_AutoPGD):
    """APGD-T: APGD on the targeted DLR loss towards each of the ``n_target_classes`` classes
    with the highest clean logits in turn, each run only on the samples still robust.

    With an untargeted criterion (labels), success is any misclassification, as in AutoAttack.
    With a targeted criterion, only the given targets are attacked and success is the targeted
    test.

    Args:
        steps: gradient steps per target and restart (default 100).
        restarts: restarts per target class (default 1).
        n_target_classes: how many of the most likely other classes to target (default 9),
            capped at the number of classes minus one.
        loss: ``"dlr"`` (targeted DLR, default) or ``"ce"`` (cross-entropy to the target).
        rho: see :class:`_AutoPGD` (default 0.75).
        eot_iter: gradients averaged per step (default 1).
        seed: seed of the random starts; None draws fresh randomness on every call.
        norm: as for :class:`_AutoPGD`; ``APGDT(norm="l2")`` gives an :class:`L2AutoPGDTargeted`.
    """

    def __init__(
        self,
        *,
        steps: int = 100,
        restarts: int = 1,
        n_target_classes: int = 9,
        loss: str = "dlr",
        rho: float = 0.75,
        eot_iter: int = 1,
        seed: int | None = None,
        norm: Any = None,
    ) -> None:
        super().__init__(
            steps=steps, restarts=restarts, loss=loss, rho=rho, eot_iter=eot_iter, seed=seed
        )
        self.n_target_classes = check_int(n_target_classes, "n_target_classes")

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        if epsilon == 0 or inputs.shape[0] == 0:
            return inputs
        outputs = model(inputs)
        self._check_classes(outputs.shape[-1])
        if targeted:
            x, _ = self._attack(
                model, inputs, outputs, criterion, epsilon, classes, classes, True, False
            )
            return x
        found = host_bool(criterion(inputs, outputs))
        rng = self._generator()
        result = inputs
        for rank in progress.steps(min(self.n_target_classes, outputs.shape[-1] - 1)):
            if found.all():
                break
            targets = ranked_other_class(outputs, classes, rank + 1)
            result, found = self._attack(
                model,
                inputs,
                outputs,
                criterion,
                epsilon,
                classes,
                targets,
                True,
                True,
                found=found,
                result=result,
                rng=rng,
            )
        return result


class LinfAutoPGDTargeted(_AutoPGDTargeted):
    """APGD-T in Linf; see :class:`_AutoPGDTargeted` (defaults: 100 steps, 1 restart, 9 targets,
    targeted DLR loss)."""

    norm = linf


class L2AutoPGDTargeted(_AutoPGDTargeted):
    """APGD-T in L2; see :class:`_AutoPGDTargeted`."""

    norm = l2


class L1AutoPGDTargeted(_AutoPGDTargeted, L1AutoPGD):
    """APGD-T in L1 (L1-APGD steps); see :class:`_AutoPGDTargeted`."""

    norm = l1


LinfAPGD = LinfAutoPGD
L2APGD = L2AutoPGD
L1APGD = L1AutoPGD
APGD = LinfAutoPGD
LinfAPGDT = LinfAutoPGDTargeted
L2APGDT = L2AutoPGDTargeted
L1APGDT = L1AutoPGDTargeted
APGDT = LinfAutoPGDTargeted
norm_family(LinfAutoPGD, L2AutoPGD, L1AutoPGD)
norm_family(LinfAutoPGDTargeted, L2AutoPGDTargeted, L1AutoPGDTargeted)
