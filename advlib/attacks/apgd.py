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
targeted), ``"dlr"`` (the difference-of-logits ratio, invariant to the scale of the logits),
``"margin"`` (the logit margin of Carlini & Wagner: best other logit minus the true class's) and
``"pma"`` (the same margin between softmax probabilities, bounded in [-1, 1]: the probability
margin of Xie et al., 2024, and Gao et al.'s MM without its ranking).
Success is always decided by the criterion itself, so a targeted criterion uses the targeted
success test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name, flat_batch, scalar_like, unflat_batch
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l1, l2, linf
from ._box_projections import l1_box_projection
from ._budgeted import BudgetedSearch, Task
from ._dlr import LOSSES, cross_entropy, dlr, margin_loss, ranked_other_classes, targeted_dlr
from ._minimization import check_float, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._restarts import stacked_rounds
from ._signatures import keyword_constructor
from ._subsets import Shrinking, host_bool, take_rows

#: Weight of the new gradient step against the previous update (Croce & Hein's alpha).
MOMENTUM = 0.75

LossFn = Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]
# (loss name, targeted, whether the targeted DLR knows the true labels): which loss a run uses.
Mode = tuple[str, bool, bool]


class _Constants(NamedTuple):
    """What stays fixed during one run."""

    origin: ep.Tensor  # the inputs attacked
    eps: ep.Tensor  # the budget, 0-d
    labels: ep.Tensor  # the first class argument of the loss
    targets: ep.Tensor  # the second


class _Best(NamedTuple):
    """Per sample: the highest-loss point of a run and the loss history the step size follows."""

    x: ep.Tensor
    grad: ep.Tensor  # the gradient at ``x``
    loss: ep.Tensor  # the loss at ``x``
    loss_prev: ep.Tensor  # the loss of the last step
    increases: ep.Tensor  # how many steps since the last checkpoint increased the loss


class _State(NamedTuple):
    """What every step changes."""

    x: ep.Tensor
    memory: Any  # what the next move needs from the last: APGD the point before ``x``
    grad: ep.Tensor  # the gradient at ``x``
    best: _Best


class _Schedule(NamedTuple):
    """Linf / L2: what only checkpoints change."""

    step_size: ep.Tensor  # per sample
    best_loss: ep.Tensor  # the best loss at the last checkpoint
    halved: ep.Tensor  # whether the step size was halved there


class _SparseSchedule(NamedTuple):
    """L1: what only checkpoints change."""

    step_size: ep.Tensor  # per sample
    topk: ep.Tensor  # the fraction of coordinates a step moves
    nonzero: ep.Tensor  # non-zero coordinates of the best point at the last check (-1: none yet)


Schedule = _Schedule | _SparseSchedule


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
    if loss in ("margin", "pma"):
        values: Callable[[ep.Tensor], ep.Tensor] = (
            (lambda z: z) if loss == "margin" else (lambda z: ep.softmax(z, axis=-1))
        )
        if not targeted:
            return lambda z, labels, targets: margin_loss(values(z), labels, None, False)
        if with_labels:
            return lambda z, labels, targets: margin_loss(values(z), targets, labels, True)
        return lambda z, labels, targets: margin_loss(values(z), targets, None, True)
    if loss == "ce":
        if targeted:
            return lambda z, labels, targets: cross_entropy(z, targets, True)
        return lambda z, labels, targets: cross_entropy(z, labels, False)
    if targeted:
        if with_labels:
            return lambda z, labels, targets: targeted_dlr(z, targets, labels)
        return lambda z, labels, targets: targeted_dlr(z, targets, None)
    return lambda z, labels, targets: dlr(z, labels)


def _initial_state(x: ep.Tensor, zero: ep.Tensor, memory: Any) -> _State:
    """The state at the start ``x``, before its loss is known; ``zero`` has one entry per
    sample."""
    nothing = ep.zeros_like(x)
    return _State(x, memory, nothing, _Best(x, nothing, zero - np.inf, zero - np.inf, zero))


def _back_to_best(state: _State, where: ep.Tensor) -> _State:
    """``state`` with the samples ``where`` moved back to their best point and its gradient."""
    rows = atleast_kd(where, state.x.ndim)
    x = ep.where(rows, state.best.x, state.x)
    return state._replace(x=x, grad=ep.where(rows, state.best.grad, state.grad))


#: Steps between the checks for samples that are already adversarial (besides checkpoints):
#: each check is one small device-to-host transfer.
_DROP_EVERY = 5


def _outcome(success: ep.Tensor, x_adv: ep.Tensor, state: _State) -> tuple[ep.Tensor, ...]:
    """What a run returns: the first adversarial or the highest-loss point, and success."""
    return ep.where(atleast_kd(success, x_adv.ndim), x_adv, state.best.x), success


class _AutoPGD(NormFamily, BudgetedSearch):
    """APGD in the norm ``self.norm``; ``APGD(norm="l2")`` gives an :class:`L2AutoPGD`.

    Args:
        steps: gradient steps per restart (default 100).
        restarts: random restarts; each later restart runs only on the samples not yet
            adversarial (default 1).
        loss: ``"ce"`` (default), ``"dlr"``, ``"margin"`` or ``"pma"`` (see the module docs).
        rho: the fraction of loss-increasing steps below which the step size halves
            (default 0.75; unused by L1-APGD).
        eot_iter: passes each gradient is averaged over, for randomized models (expectation
            over transformation; AutoAttack's name, multiplies ``eot_samples``; default 1).
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
    def _search(self, task: Task) -> ep.Tensor:
        model, inputs, criterion, epsilon, classes, targeted = task
        outputs = model(inputs)
        if self.loss == "dlr" and outputs.shape[-1] < 3:
            raise ValueError(
                "loss: the DLR loss needs a model with at least 3 classes, "
                f"got {outputs.shape[-1]}; use loss='ce'"
            )
        found = host_bool(criterion(inputs, outputs))
        rng = self._generator()
        eps = scalar_like(inputs, epsilon)
        result = inputs
        target_list, mode = self._targets(model, inputs, outputs, classes, targeted)
        count = len(target_list) * self.restarts
        for stack in stacked_rounds(model, inputs, outputs, criterion, count, lambda: ~found):
            targets = [stack.subset.take(target_list[i // self.restarts]) for i in stack.indices]
            constants = _Constants(
                stack.inputs, eps, stack.tile(classes), ep.concatenate(targets, axis=0)
            )
            x, success = self._single_run(
                model,
                stack.criterion,
                constants,
                epsilon,
                mode,
                rng.take(stack.subset.all_rows, stack.copies),
                stack.copies,
            )
            # per sample its first successful copy (the rounds one after the other would stop
            # there), else the last one
            hits = stack.per_copy(host_bool(success))
            any_hit = np.asarray(hits.any(axis=0))
            first = np.where(any_hit, hits.argmax(axis=0), stack.copies - 1)
            result = stack.subset.put(result, stack.pick(x, first))
            found[stack.subset.rows_np[any_hit[: stack.subset.count]]] = True
        return result

    def _targets(
        self,
        model: Model,
        inputs: ep.Tensor,
        outputs: ep.Tensor,
        classes: ep.Tensor,
        targeted: bool,
    ) -> tuple[list[ep.Tensor], Mode]:
        """The second class argument of the loss for each round of restarts, and the mode, for
        ``inputs`` with logits ``outputs``. ``classes`` (labels untargeted, targets targeted)
        fill both class arguments here."""
        return [classes], (self.loss, targeted, False)

    def _single_run(
        self,
        model: Model,
        criterion: Criterion,
        constants: _Constants,
        epsilon: float,
        mode: Mode,
        rng: SampleRandom,
        copies: int = 1,
    ) -> tuple[ep.Tensor, ep.Tensor]:
        """One APGD run from a random start around ``constants.origin`` (``epsilon`` is
        ``constants.eps`` as a number): (best adversarial or highest-loss point, success).
        ``copies``: the batch stacks that many successive runs (see :class:`Shrinking`)."""
        step = model.compiled(
            self._compile_key("step", *mode), lambda: self._make_step(model, mode)
        )
        origin = constants.origin
        shape = tuple(origin.shape[1:])
        checkpoint = model.compiled(
            self._compile_key("checkpoint", shape), lambda: self._make_checkpoint(shape)
        )
        zero = ep.zeros(origin, (origin.shape[0],))
        one = scalar_like(origin, 1.0)
        # The start is evaluated by a step of size zero: one compiled function serves both.
        x0 = self._random_start(model, origin, constants.eps, rng)
        start = _initial_state(x0, zero, self._initial_memory(x0))
        state, logits = step(start, self._schedule(zero, zero), constants, one)
        state = state._replace(best=state.best._replace(increases=zero))
        success = criterion(state.x, logits)
        x_adv = state.x
        schedule = self._schedule(zero + self._initial_step(epsilon), state.best.loss)
        checkpoints = dict(self._checkpoints())
        momentum = scalar_like(origin, MOMENTUM)
        rows = Shrinking(origin.shape[0], model.compile_enabled, copies)
        for i in progress.steps(self.steps):
            state, logits = step(state, schedule, constants, one if i == 0 else momentum)
            # A sample keeps its first adversarial: it must not depend on how long the
            # other samples of its batch keep the loop going.
            now = ep.logical_and(criterion(state.x, logits), ep.logical_not(success))
            x_adv = ep.where(atleast_kd(now, origin.ndim), state.x, x_adv)
            success = ep.logical_or(success, now)
            if i in checkpoints:
                threshold = scalar_like(origin, self.rho * checkpoints[i])
                state, schedule = checkpoint(state, schedule, constants, threshold)
            if i in checkpoints or (i + 1) % _DROP_EVERY == 0:
                # Broken samples stop costing: the loop goes on with the others only (one
                # transfer per check); what they return is already fixed.
                done, keep = rows.check(success, partial(_outcome, success, x_adv, state))
                if done:
                    break
                if keep is not None:
                    criterion = keep.criterion(criterion, state.x, logits)
                    state, schedule, constants, x_adv, success = take_rows(
                        keep, (state, schedule, constants, x_adv, success)
                    )
        x, success = rows.results(_outcome(success, x_adv, state))
        return x, success

    def _compile_key(self, *parts: Any) -> Any:
        """Compiled pieces depend only on the norm and ``parts`` (mode, shapes; EOT lives in
        the model they are built on), so APGD and APGD-T of any budget share them."""
        return self._step_key(*parts, family=_AutoPGD, settings=())

    def _attacked_model(self, model: Model) -> Model:
        """``eot_iter`` (AutoAttack's name) multiplies ``eot_samples``: both average each
        gradient (and the loss and logits that come with it) over that many passes."""
        from ..models.eot import averaged_gradients

        return averaged_gradients(model, self.eot_samples * self.eot_iter)

    # ------------------------------------------------------------------ per-norm hooks
    def _random_start(
        self, model: Model, origin: ep.Tensor, eps: ep.Tensor, rng: SampleRandom
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

    def _initial_memory(self, x: ep.Tensor) -> Any:
        """The move's memory at the start ``x`` (APGD: the previous point, for momentum)."""
        return x

    def _initial_step(self, epsilon: float) -> float:
        return 2.0 * epsilon

    def _checkpoints(self) -> list[tuple[int, int]]:
        return linf_l2_checkpoints(self.steps)

    def _schedule(self, step_size: ep.Tensor, loss: ep.Tensor) -> Schedule:
        """The schedule before the first checkpoint, for the best loss ``loss``."""
        return _Schedule(step_size, loss, ep.ones_like(loss) > 0)

    def _make_projection(
        self, model: Model
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]:
        """``project(z, origin, eps)``: ``z`` moved into the epsilon ball around ``origin``
        and the bounds."""
        norm, (lower, upper) = self.norm, model.bounds

        def project(z: ep.Tensor, origin: ep.Tensor, eps: ep.Tensor) -> ep.Tensor:
            return norm.project(z, origin, eps).clip(lower, upper)

        return project

    # ------------------------------------------------------------------ compiled pieces
    def _make_evaluate(self, model: Model, mode: Mode) -> StepFn:
        loss_of = _loss_function(*mode)

        def evaluate(
            x: ep.Tensor, labels: ep.Tensor, targets: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
            def loss_fn(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits = model(z)
                losses = loss_of(logits, labels, targets)
                # the per-sample losses ride along as a last column: not computed twice
                return losses.sum(), ep.concatenate([logits, losses[:, None]], axis=-1)

            _, both, grad = model.value_and_grad(loss_fn, x)
            return both[:, -1], both[:, :-1], grad

        return evaluate

    def _make_step(self, model: Model, mode: Mode) -> StepFn:
        """``step(state, schedule, constants, weight) -> (state, logits)``: one move, its loss
        and gradient, and the best point updated; ``weight`` weighs the new step against the
        previous update (momentum)."""
        evaluate = self._make_evaluate(model, mode)
        move = self._make_move(model)

        def step(
            state: _State, schedule: Schedule, constants: _Constants, weight: ep.Tensor
        ) -> tuple[_State, ep.Tensor]:
            x, memory = move(state, schedule, constants, weight)
            loss, logits, grad = evaluate(x, constants.labels, constants.targets)
            best = state.best
            improved = loss > best.loss
            improved_kd = atleast_kd(improved, x.ndim)
            best = _Best(
                ep.where(improved_kd, x, best.x),
                ep.where(improved_kd, grad, best.grad),
                ep.where(improved, loss, best.loss),
                loss,
                best.increases + (loss > best.loss_prev).astype(loss.dtype),
            )
            return _State(x, memory, grad, best), logits

        return step

    def _make_move(self, model: Model) -> Callable[..., tuple[ep.Tensor, Any]]:
        """Linf / L2: a normalised gradient step, projected, then mixed with the previous
        update (momentum) and projected again; ``(new point, memory)``."""
        norm, project = self.norm, self._make_projection(model)

        def move(
            state: _State, schedule: _Schedule, constants: _Constants, weight: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor]:
            x, origin, eps = state.x, constants.origin, constants.eps
            step = atleast_kd(schedule.step_size, x.ndim) * norm.normalize(state.grad)
            z = project(x + step, origin, eps)
            mixed = x + weight * (z - x) + (1 - weight) * (x - state.memory)
            return project(mixed, origin, eps), x

        return move

    def _make_checkpoint(self, shape: tuple[int, ...]) -> StepFn:
        """``checkpoint(state, schedule, constants, threshold) -> (state, schedule)``: halve
        the step of the samples whose loss rose in at most ``threshold`` steps since the last
        checkpoint, or stalled, and move them back to their best point."""

        def checkpoint(
            state: _State, schedule: _Schedule, constants: _Constants, threshold: ep.Tensor
        ) -> tuple[_State, _Schedule]:
            best = state.best
            oscillating = best.increases <= threshold
            stalled = ep.logical_and(
                ep.logical_not(schedule.halved), schedule.best_loss >= best.loss
            )
            halve = ep.logical_or(oscillating, stalled)
            step_size = ep.where(halve, schedule.step_size / 2, schedule.step_size)
            state = _back_to_best(state, halve)
            state = state._replace(best=best._replace(increases=ep.zeros_like(best.increases)))
            return state, _Schedule(step_size, best.loss, halve)

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
        self, model: Model, origin: ep.Tensor, eps: ep.Tensor, rng: SampleRandom
    ) -> ep.Tensor:
        noise = ep.from_numpy(
            origin, rng.standard_normal(size=origin.shape).astype(dtype_name(origin))
        )
        project = model.compiled(self._compile_key("start"), lambda: self._make_projection(model))
        start: ep.Tensor = project(origin + noise, origin, eps)
        return start

    def _make_projection(
        self, model: Model
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]:
        """The exact projection onto the L1 ball intersected with the box."""
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

    def _schedule(self, step_size: ep.Tensor, loss: ep.Tensor) -> Schedule:
        return _SparseSchedule(
            step_size, ep.zeros_like(loss) + self.initial_topk, ep.zeros_like(loss) - 1.0
        )

    def _make_move(self, model: Model) -> Callable[..., tuple[ep.Tensor, Any]]:
        """A step of the step size in L1, spread evenly over the coordinates with the
        ``topk`` largest gradients, then projected."""
        project = self._make_projection(model)

        def move(
            state: _State, schedule: _SparseSchedule, constants: _Constants, weight: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor]:
            g = flat_batch(state.grad)
            features = g.shape[-1]
            magnitude = g.abs()
            rank = ((1.0 - schedule.topk) * features).astype(magnitude.dtype)
            rank = ep.minimum(ep.maximum(rank, 0.0), features - 1.0)
            index = rank.astype(magnitude.argmax(axis=-1).dtype)[:, None]
            threshold = ep.take_along_axis(magnitude.sort(axis=-1), index, axis=-1)
            direction = ep.where(magnitude >= threshold, g.sign(), 0.0)
            moved = direction.abs().sum(axis=-1, keepdims=True)
            step = direction * (schedule.step_size[:, None] / (moved + 1e-10))
            moved = project(state.x + unflat_batch(step, state.x), constants.origin, constants.eps)
            return moved, state.x

        return move

    def _make_checkpoint(self, shape: tuple[int, ...]) -> StepFn:
        """Where the best point got much sparser: move fewer coordinates and restart there at
        the full step; elsewhere shrink the step (within ``[eps / 10, eps]``)."""
        features = float(np.prod(shape))

        def checkpoint(
            state: _State,
            schedule: _SparseSchedule,
            constants: _Constants,
            threshold: ep.Tensor,
        ) -> tuple[_State, _SparseSchedule]:
            eps, step_size = constants.eps, schedule.step_size
            before = ep.where(schedule.nonzero < 0, features, schedule.nonzero)
            offset = flat_batch(state.best.x - constants.origin)
            nonzero = (offset.abs() > 0).astype(state.x.dtype).sum(axis=-1)
            sparser = nonzero / ep.maximum(before, 1.0) < 0.95
            step_size = ep.where(sparser, eps + 0 * step_size, step_size / 1.5)
            step_size = ep.minimum(ep.maximum(step_size, eps / 10), eps)
            topk = nonzero / features / 1.5
            return _back_to_best(state, sparser), _SparseSchedule(step_size, topk, nonzero)

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
        loss: ``"dlr"`` (targeted DLR, default), ``"ce"`` (cross-entropy to the target),
            ``"margin"`` or ``"pma"`` (logit or probability of the target minus the label's).
        rho: see :class:`_AutoPGD` (default 0.75).
        eot_iter: passes each gradient is averaged over (AutoAttack's name, multiplies
            ``eot_samples``; default 1).
        seed: seed of the random starts; None draws fresh randomness on every call.
        norm: as for :class:`_AutoPGD`; ``APGDT(norm="l2")`` gives an :class:`L2AutoPGDTargeted`.
    """

    __init__ = keyword_constructor(
        steps=100,
        restarts=1,
        n_target_classes=9,
        loss="dlr",
        rho=0.75,
        eot_iter=1,
        seed=None,
        norm=None,
    )

    def _configure(self, **arguments: Any) -> None:
        """APGD's arguments, with other defaults, and ``n_target_classes``."""
        n_target_classes = arguments.pop("n_target_classes")
        super().__init__(**arguments)
        self.n_target_classes = check_int(n_target_classes, "n_target_classes")

    def _targets(
        self,
        model: Model,
        inputs: ep.Tensor,
        outputs: ep.Tensor,
        classes: ep.Tensor,
        targeted: bool,
    ) -> tuple[list[ep.Tensor], Mode]:
        """Targeted criterion: its targets. Untargeted: the most likely other classes in
        turn (:meth:`_ranked_targets`), with the true labels in the loss."""
        if targeted:
            return [classes], (self.loss, True, False)
        count = min(self.n_target_classes, outputs.shape[-1] - 1)
        return self._ranked_targets(model, inputs, outputs, classes, count), (
            self.loss,
            True,
            True,
        )

    def _ranked_targets(
        self, model: Model, inputs: ep.Tensor, outputs: ep.Tensor, labels: ep.Tensor, count: int
    ) -> list[ep.Tensor]:
        """The ``count`` target classes of each sample, in the order attacked: APGD-T takes
        the most likely other classes."""
        return ranked_other_classes(outputs, labels, count)


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
