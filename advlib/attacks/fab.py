"""The Fast Adaptive Boundary attack (Croce & Hein, 2020), a minimization attack.

Each step linearises the model at the current point ``x``, picks the class boundary that the
linearisation puts closest (untargeted: every other class; targeted: the target class), and
projects both ``x`` and the original input ``x0`` onto that hyperplane intersected with the box
(:func:`~advlib.attacks._box_projections.hyperplane_projection`). The next point is a convex
combination of the two projections, biased towards ``x0`` by at most ``alpha_max`` so the result
stays close to the input, with an overshoot ``eta``. Once a point is adversarial the attack keeps
it if it is the smallest so far and steps back towards ``x0`` by the factor ``beta``.

Three modes, chosen by the criterion and ``n_target_classes``:

- untargeted (``n_target_classes=None``, the default): the closest boundary among all classes,
  one gradient per class and step;
- FAB-T (``n_target_classes=k``, untargeted criterion): the boundaries with each of the ``k``
  most likely other classes in turn (one gradient per step), success being any
  misclassification; AutoAttack uses this with ``k = 9``;
- targeted criterion: the boundary between the target and the strongest other class.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name, flat_batch, unflat_batch
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l1, l2, linf
from ._box_projections import hyperplane_projection
from ._dlr import ranked_other_classes
from ._losses import best_other_logit, class_logit
from ._minimization import Minimizer, Problem, check_float, check_int, check_seed, dual
from ._norm_arg import NormFamily, norm_family
from ._restarts import stacked_rounds
from ._subsets import Shrinking, host_bool, take_rows

_INF = float("inf")


class _Constants(NamedTuple):
    """The tensors a run attacks from."""

    origin: ep.Tensor  # the inputs
    labels: ep.Tensor  # their classes (the target classes for a targeted criterion)
    targets: ep.Tensor  # the classes whose boundary to cross (FAB-T), else the labels


class _Scalars(NamedTuple):
    """The attack's settings as 0-d tensors."""

    alpha_max: ep.Tensor
    eta: ep.Tensor
    beta: ep.Tensor


class _Best(NamedTuple):
    """Per sample, the smallest adversarial found (the input where none) and its size (0 for
    the input when it is adversarial already, infinite where none)."""

    x: ep.Tensor
    size: ep.Tensor


class _FAB(NormFamily, Minimizer):
    """FAB in the norm ``self.norm`` (see the module documentation); ``FAB(norm="l2")`` gives an
    :class:`L2FAB`.

    Args:
        steps: steps per target class and restart (default 100).
        restarts: runs per target class; every run after the first starts from a random point
            at half the distance of the best adversarial found (or of ``early_stop`` /
            ``restart_radius`` when smaller) (default 1).
        n_target_classes: None (default) for the untargeted attack over all classes, or the
            number of most likely other classes to attack in turn (FAB-T), capped at the number
            of classes minus one.
        alpha_max: largest weight of the projection of the original input (default 0.1).
        eta: overshoot of each projection (default 1.05).
        beta: backward step towards the input after an adversarial point (default 0.9).
        restart_radius: radius of random restarts while no adversarial is known, in input
            units (default None: 0.3 of the bounds' range in Linf, 1.0 of it in L2, 5.0 in L1,
            as AutoAttack's defaults for [0, 1] inputs).
        seed: seed of the random restarts; None draws fresh randomness on every call.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``, also spelled as AutoAttack does (``"Linf"``,
            ``"L2"``, ``"L1"``, ``np.inf``, ``2``, ``1``); default None: the class's norm (Linf
            for ``FAB``).
    """

    default_radius = 0.3

    def __init__(
        self,
        *,
        steps: int = 100,
        restarts: int = 1,
        n_target_classes: int | None = None,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        restart_radius: float | None = None,
        seed: int | None = None,
        norm: Any = None,
    ) -> None:
        # ``norm`` chose the class: NormFamily.__new__
        self.steps = check_int(steps, "steps")
        self.restarts = check_int(restarts, "restarts")
        self.n_target_classes = (
            None if n_target_classes is None else check_int(n_target_classes, "n_target_classes")
        )
        self.alpha_max = check_float(alpha_max, "alpha_max")
        if self.alpha_max > 1:
            raise ValueError(f"alpha_max: expected a number in (0, 1], got {alpha_max!r}")
        self.eta = check_float(eta, "eta")
        self.beta = check_float(beta, "beta")
        if self.beta > 1:
            raise ValueError(f"beta: expected a number in (0, 1], got {beta!r}")
        self.restart_radius = (
            None if restart_radius is None else check_float(restart_radius, "restart_radius")
        )
        self.seed = check_seed(seed)

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, early_stop = problem
        classes, targeted = criterion.gradient_target()
        if inputs.shape[0] == 0:
            return inputs
        outputs = model(inputs)
        num_classes = outputs.shape[-1]
        if targeted:
            mode, target_list = "dynamic", [classes]
        elif self.n_target_classes is not None:
            count = min(self.n_target_classes, num_classes - 1)
            mode, target_list = "target", ranked_other_classes(outputs, classes, count)
        else:
            mode, target_list = "all", [classes]

        adversarial = host_bool(criterion(inputs, outputs))
        size = ep.where(ep.from_numpy(classes, adversarial), 0.0, _INF).astype(inputs.dtype)
        best = _Best(inputs, size)
        stop = _INF if early_stop is None else early_stop

        def remaining() -> np.ndarray:
            mask: np.ndarray = ~adversarial
            if stop < _INF:  # samples adversarial within early_stop are done
                mask = np.logical_and(mask, best.size.numpy() > stop)
            return mask

        rng = self._generator()
        count = len(target_list) * self.restarts
        # a restart's random start depends on the best found before it: those run one by one
        for stack in stacked_rounds(
            model, inputs, outputs, criterion, count, remaining, stack=self.restarts == 1
        ):
            targets = [stack.subset.take(target_list[i // self.restarts]) for i in stack.indices]
            part = self._single_run(
                model,
                stack.criterion,
                _Constants(stack.inputs, stack.tile(classes), ep.concatenate(targets, axis=0)),
                (mode, num_classes),
                _Best(*(stack.tile(t) for t in best)),
                stack.first % self.restarts > 0,
                stop,
                rng.take(stack.subset.all_rows, stack.copies),
                stack.copies,
            )
            # per sample the smallest of its copies, the first on ties: what the rounds one
            # after the other keep (each replaces the best only by a smaller one)
            smallest = (
                stack.per_copy(part.size.numpy()).argmin(axis=0) if stack.copies > 1 else None
            )
            best = _Best(
                *(stack.subset.put(t, stack.pick(p, smallest)) for t, p in zip(best, part))
            )
        return best.x

    def _single_run(
        self,
        model: Model,
        criterion: Criterion,
        constants: _Constants,
        mode: tuple[str, int],
        best: _Best,
        random_start: bool,
        stop: float,
        rng: SampleRandom,
        copies: int = 1,
    ) -> _Best:
        """One run from ``constants.origin`` (or a random start when ``random_start``): the
        smallest adversarials, ``best`` where none is smaller. ``mode``: the boundaries to
        cross ("all", "target" or "dynamic") and the number of classes. ``copies``: the batch
        stacks that many successive runs (see :class:`Shrinking`)."""
        step = model.compiled(
            self._step_key("step", *mode, settings=()), lambda: self._make_step(model, *mode)
        )
        keep = model.compiled(self._step_key("keep", settings=()), self._make_keep)
        origin = constants.origin
        x = self._start(model, origin, best.size, stop, rng) if random_start else origin
        scalars = _Scalars(*model.scalars(origin, self.alpha_max, self.eta, self.beta))
        check_every = max(1, self.steps // 10)
        rows = Shrinking(origin.shape[0], model.compile_enabled, copies)
        for i in progress.steps(self.steps):
            x, logits = step(x, constants, scalars)
            x, best = keep(x, criterion(x, logits), best, constants.origin, scalars.beta)
            # One transfer every 10% of the steps: samples within early_stop are done and
            # stop costing (what they return then does not depend on the rest of the batch).
            if stop < _INF and (i + 1) % check_every == 0:
                done, kept = rows.check(best.size <= stop, partial(tuple, best))
                if done:
                    break
                if kept is not None:
                    criterion = kept.criterion(criterion, x, logits)
                    x, best, constants = take_rows(kept, (x, best, constants))
        return _Best(*rows.results(tuple(best)))

    def _start(
        self,
        model: Model,
        origin: ep.Tensor,
        best_size: ep.Tensor,
        stop: float,
        rng: SampleRandom,
    ) -> ep.Tensor:
        lower, upper = model.bounds
        if stop < _INF:
            cap = stop
        elif self.restart_radius is not None:
            cap = self.restart_radius
        else:
            cap = self.default_radius * (upper - lower)
        radius = ep.minimum(best_size, cap)
        noise = self.norm.sample_unit_ball(rng, tuple(origin.shape))
        direction = ep.from_numpy(origin, noise.astype(dtype_name(origin)))
        direction = direction / atleast_kd(self.norm(direction) + 1e-12, origin.ndim)
        start = origin + atleast_kd(0.5 * radius, origin.ndim) * direction
        return start.clip(lower, upper)

    # ------------------------------------------------------------------ compiled pieces
    def _make_step(self, model: Model, mode: str, num_classes: int) -> StepFn:
        """``step(x, constants, scalars) -> (x, logits)``: the biased projection onto the
        linearised boundary, with overshoot."""
        norm, (lower, upper) = self.norm, model.bounds
        boundary = self._make_boundary(model, mode, num_classes)
        hyperplane = self._hyperplane()

        def step(
            x: ep.Tensor, constants: _Constants, scalars: _Scalars
        ) -> tuple[ep.Tensor, ep.Tensor]:
            origin, eta = constants.origin, scalars.eta
            # the plane: offset + normal.(z - x) = 0
            offset, normal = boundary(x, constants.labels, constants.targets)
            w = flat_batch(normal)
            shift = (w * flat_batch(origin - x)).sum(axis=-1)
            # both projections in one call: rows of x, then rows of origin
            starts = flat_batch(ep.concatenate([x, origin], axis=0))
            both = hyperplane(
                ep.concatenate([w, w], axis=0),
                ep.concatenate([-offset, -offset - shift], axis=0),
                lower - starts,
                upper - starts,
            )
            halves = both.reshape((2, -1, w.shape[-1]))  # the batch size may be unknown
            d_x, d_origin = halves[0], halves[1]
            size_x = ep.maximum(norm(d_x), 1e-8)
            size_origin = ep.maximum(norm(d_origin), 1e-8)
            alpha = ep.minimum(size_x / (size_x + size_origin), scalars.alpha_max)
            alpha = atleast_kd(alpha, x.ndim)
            moved = (x + eta * unflat_batch(d_x, x)) * (1 - alpha) + (
                origin + eta * unflat_batch(d_origin, x)
            ) * alpha
            moved = moved.clip(lower, upper)
            return moved, model(moved)

        return step

    def _hyperplane(self) -> Callable[..., ep.Tensor]:
        """``project(w, c, lo, hi)``: the smallest perturbation in the attack's norm onto the
        plane ``w . d = c`` within the box (see :func:`hyperplane_projection`)."""
        norm = self.norm

        def project(w: ep.Tensor, c: ep.Tensor, lo: ep.Tensor, hi: ep.Tensor) -> ep.Tensor:
            return hyperplane_projection(norm, w, c, lo, hi)

        return project

    def _make_boundary(
        self, model: Model, mode: str, num_classes: int
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], tuple[ep.Tensor, ep.Tensor]]:
        """``(offset, normal)`` of the linearised boundary to cross: ``f(x)`` and its gradient,
        with ``f = z_target - z_label`` (or the closest such difference, untargeted)."""
        dual_norm = dual(self.norm)

        def difference(
            other: Callable[[ep.Tensor], ep.Tensor], own: Callable[[ep.Tensor], ep.Tensor]
        ) -> Callable[[ep.Tensor], tuple[ep.Tensor, ep.Tensor]]:
            def loss_fn(z: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
                logits = model(z)
                values = other(logits) - own(logits)
                return values.sum(), values

            return loss_fn

        def boundary(
            x: ep.Tensor, labels: ep.Tensor, targets: ep.Tensor
        ) -> tuple[ep.Tensor, ep.Tensor]:
            if mode == "target":
                loss_fn = difference(
                    lambda z: class_logit(z, targets), lambda z: class_logit(z, labels)
                )
                _, offset, normal = model.value_and_grad(loss_fn, x)
                return offset, normal
            if mode == "dynamic":
                loss_fn = difference(
                    lambda z: class_logit(z, targets), lambda z: best_other_logit(z, targets)
                )
                _, offset, normal = model.value_and_grad(loss_fn, x)
                return offset, normal
            candidates = []
            for j in range(num_classes):
                column = ep.zeros_like(labels) + j

                def other(z: ep.Tensor, column: ep.Tensor = column) -> ep.Tensor:
                    return class_logit(z, column)

                loss_fn = difference(other, lambda z: class_logit(z, labels))
                _, offset, normal = model.value_and_grad(loss_fn, x)
                distance = offset.abs() / (dual_norm(normal) + 1e-12)
                candidates.append((ep.where(labels == j, _INF, distance), offset, normal))
            best_distance, best_offset, best_normal = candidates[0]
            for distance, offset, normal in candidates[1:]:
                closer = distance < best_distance
                best_offset = ep.where(closer, offset, best_offset)
                best_normal = ep.where(atleast_kd(closer, x.ndim), normal, best_normal)
                best_distance = ep.where(closer, distance, best_distance)
            return best_offset, best_normal

        return boundary

    def _make_keep(self) -> StepFn:
        """``keep(x, is_adv, best, origin, beta) -> (x, best)``: adversarial points closer than
        the best become the best, and step back towards ``origin`` by the factor ``beta``."""
        norm = self.norm

        def keep(
            x: ep.Tensor, is_adv: ep.Tensor, best: _Best, origin: ep.Tensor, beta: ep.Tensor
        ) -> tuple[ep.Tensor, _Best]:
            size = norm(x - origin)
            better = ep.logical_and(is_adv, size < best.size)
            best = _Best(
                ep.where(atleast_kd(better, x.ndim), x, best.x),
                ep.where(better, size, best.size),
            )
            x = ep.where(atleast_kd(is_adv, x.ndim), origin + beta * (x - origin), x)
            return x, best

        return keep


class LinfFAB(_FAB):
    """FAB minimising the Linf norm; see :class:`_FAB` for the arguments (defaults: 100 steps,
    1 restart, untargeted over all classes, ``alpha_max=0.1``, ``eta=1.05``, ``beta=0.9``)."""

    norm = linf


class L2FAB(_FAB):
    """FAB minimising the L2 norm; see :class:`_FAB` for the arguments."""

    norm = l2
    default_radius = 1.0


class L1FAB(_FAB):
    """FAB minimising the L1 norm (FAB-L1 of AutoAttack's L1 version, Croce & Hein, 2021); see
    :class:`_FAB` for the arguments. The projection onto the linearised boundary moves the
    coordinates with the largest gradient entries first, each as far as the box allows, the
    exact smallest L1 step; random restarts default to a radius of 5 times the bounds' range
    (AutoAttack's 5.0 for [0, 1] inputs)."""

    norm = l1
    default_radius = 5.0

    def _hyperplane(self) -> Callable[..., ep.Tensor]:
        return l1_hyperplane_projection


def l1_hyperplane_projection(
    w: ep.Tensor, c: ep.Tensor, lo: ep.Tensor, hi: ep.Tensor
) -> ep.Tensor:
    """The smallest L1 perturbation ``d`` with ``w . d = c`` and ``lo <= d <= hi`` per sample
    (flat (N, D) tensors); the closest the box allows where the plane is out of reach.

    A coordinate moved by ``t`` in the direction of ``sign(w_i)`` gains ``|w_i| t`` for a cost
    ``t``: the cheapest way to gain ``|c|`` fills the coordinates in order of decreasing
    ``|w_i|``, each up to its room in the box, the last one partly.
    """
    flip = ep.where(c >= 0, 1.0, -1.0).astype(w.dtype)
    ws, target = w * flip[:, None], c.abs()
    room = ep.where(ws > 0, hi, -lo)
    a = ws.abs()
    order = (-a).argsort(axis=-1)
    a_sorted = ep.take_along_axis(a, order, axis=-1)
    room_sorted = ep.take_along_axis(room, order, axis=-1)
    gain = a_sorted * room_sorted
    before = gain.cumsum(axis=-1) - gain  # what the larger coordinates gain when full
    usable = a_sorted > 0
    share = (target[:, None] - before) / ep.where(usable, a_sorted, 1.0)
    moved = ep.where(usable, ep.minimum(ep.maximum(share, 0.0), room_sorted), 0.0)
    back = order.argsort(axis=-1)
    return ws.sign() * ep.take_along_axis(moved, back, axis=-1)


FAB = LinfFAB
LinfFastAdaptiveBoundaryAttack = LinfFAB
L2FastAdaptiveBoundaryAttack = L2FAB
L1FastAdaptiveBoundaryAttack = L1FAB
norm_family(LinfFAB, L2FAB, L1FAB)
