"""The Pointwise attack (Schott et al., 2019), Foolbox's ``PointwiseAttack``: from an
adversarial start, reset the values that differ from the input one at a time, in random order,
keeping each reset that leaves the point adversarial, pass after pass until a pass resets
nothing; then (``l2_binary_search``) bisect each remaining value between the start's and the
input's, pass after pass until no value moves.

advlib measures it in L0 (the number of changed values, what the resets minimise); Foolbox
leaves its distance unset, so ``epsilons`` other than None fail there. Batched: every step
changes one value of every sample still running, with one model call for the whole batch; a
sample stops after a pass that changed nothing for it, so its result does not depend on the
other samples of its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import eagerpy as ep

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name, flat_batch
from ..models.base import Model, StepFn
from ..norms import l0
from ._decision import DecisionAttack, Start
from ._minimization import Problem, check_bool, check_init_attack, check_seed
from .base import MinimizationAttack
from .salt_and_pepper import SaltAndPepperNoiseAttack

# Bisection steps per value (Foolbox's).
_BISECTIONS = 10


class PointwiseAttack(DecisionAttack):
    """The Pointwise attack in L0 with Foolbox's signature and defaults; see the module
    documentation.

    Args:
        init_attack: a minimization attack giving the starting points; default None:
            ``SaltAndPepperNoiseAttack()`` seeded from ``seed``. ``starting_points=`` of the
            call take precedence where they are adversarial.
        l2_binary_search: after the resets, bisect each changed value towards the input
            (default True): fewer changes are not found, but each is smaller.
        seed: seed of the order in which values are tried (and of the default start);
            None draws fresh randomness on every call.

    Samples without an adversarial start are returned unchanged (Foolbox fails the whole
    batch with an AssertionError).
    """

    norm = l0
    init_trials = 100  # noise draws of find_starts: unused, there is always an init_attack

    def __init__(
        self,
        init_attack: MinimizationAttack | None = None,
        l2_binary_search: bool = True,
        *,
        seed: int | None = None,
    ) -> None:
        self.seed = check_seed(seed)
        given = check_init_attack(init_attack, "SaltAndPepperNoiseAttack()")
        init_seed = None if self.seed is None else self.seed + 1
        self.init_attack = SaltAndPepperNoiseAttack(seed=init_seed) if given is None else given
        self.l2_binary_search = check_bool(l2_binary_search, "l2_binary_search")

    def _search(self, problem: Problem, start: Start) -> ep.Tensor:
        _model, inputs, _, _ = problem
        origin = flat_batch(inputs)
        # One stream per phase, taken before any data-dependent loop: a sample's order of
        # values depends on its id and its pass only.
        resets, bisections = start.rng.fork(), start.rng.fork()
        point = self._resets(problem, origin, flat_batch(start.points), start.active, resets)
        if self.l2_binary_search:
            point = self._bisections(problem, origin, point, start.active, bisections)
        return point.reshape(inputs.shape)

    def _resets(
        self, problem: Problem, origin: ep.Tensor, point: ep.Tensor, running: ep.Tensor,
        rng: SampleRandom,
    ) -> ep.Tensor:  # fmt: skip
        """Values reset to the input's while the point stays adversarial, pass after pass."""
        probe = _prober(problem)

        def reset(point: ep.Tensor, index: ep.Tensor, relevant: ep.Tensor) -> Visited:
            value = ep.take_along_axis(origin, index[:, None], axis=-1)[:, 0]
            candidate, adversarial = probe(point, index, relevant, value)
            point = ep.where(atleast_kd(adversarial, 2), candidate, point)
            return point, ep.logical_and(adversarial, relevant)

        return _sweep(origin, point, running, rng, reset)

    def _bisections(
        self, problem: Problem, origin: ep.Tensor, point: ep.Tensor, running: ep.Tensor,
        rng: SampleRandom,
    ) -> ep.Tensor:  # fmt: skip
        """Each changed value moved towards the input's as far as a bisection of
        ``_BISECTIONS`` steps keeps the point adversarial, pass after pass."""
        probe = _prober(problem)

        def bisect(point: ep.Tensor, index: ep.Tensor, relevant: ep.Tensor) -> Visited:
            column = index[:, None]
            old = ep.take_along_axis(point, column, axis=-1)[:, 0]
            target = ep.take_along_axis(origin, column, axis=-1)[:, 0]
            _, reset = probe(point, index, relevant, target)
            good, bad = old, target  # adversarial, not adversarial
            for _ in range(_BISECTIONS):
                middle = (good + bad) / 2
                _, adversarial = probe(point, index, relevant, middle)
                good = ep.where(adversarial, middle, good)
                bad = ep.where(adversarial, bad, middle)
            new = ep.where(reset, target, good)
            return _put(point, index, relevant, new), ep.logical_and(relevant, new != old)

        return _sweep(origin, point, running, rng, bisect)


#: A visit's result: the new points, and the samples whose visited value changed.
Visited = tuple[ep.Tensor, ep.Tensor]


def _sweep(
    origin: ep.Tensor, point: ep.Tensor, running: ep.Tensor, rng: SampleRandom,
    visit: Callable[[ep.Tensor, ep.Tensor, ep.Tensor], Visited],
) -> ep.Tensor:  # fmt: skip
    """Pass after pass, ``visit(point, index, relevant)`` every value in which the running
    samples differ from ``origin``, in each sample's random order (``relevant``: the samples
    that have an ``index`` at this position); a sample stops after a pass that changed none."""
    for round_ in _passes():
        order, counts, longest = _order(origin, point, running, rng, round_)
        if longest == 0:
            break
        changed = ep.zeros_like(running)
        for i in progress.steps(longest):
            index, relevant = order[:, i], ep.logical_and(running, counts > i)
            point, moved = visit(point, index, relevant)
            changed = ep.logical_or(changed, moved)
        running = ep.logical_and(running, changed)
    return point


def _passes() -> Any:
    """0, 1, 2, ...: the passes (each ends with one host sync)."""
    round_ = 0
    while True:
        yield round_
        round_ += 1


def _order(
    origin: ep.Tensor, point: ep.Tensor, running: ep.Tensor, rng: SampleRandom, round_: int
) -> tuple[ep.Tensor, ep.Tensor, int]:
    """Per sample, the positions of the values that differ from the input's, in random order,
    first (``order``, (N, D)); how many there are (``counts``, 0 for samples not running);
    and the largest count (one host sync)."""
    n, d = origin.shape
    keys = ep.from_numpy(origin, rng.random(size=(n, d), at=round_ * d).astype(dtype_name(origin)))
    differ = point != origin
    order = ep.where(differ, keys, 2.0).argsort(axis=-1)
    counts = ep.where(running, differ.astype(origin.dtype).sum(axis=-1), 0.0)
    return order, counts, int(counts.max().item())


def _put(point: ep.Tensor, index: ep.Tensor, relevant: ep.Tensor, value: ep.Tensor) -> ep.Tensor:
    """``point`` with ``point[i, index[i]] = value[i]`` in the ``relevant`` rows."""
    columns = ep.arange(point, point.shape[1]).astype(index.dtype)[None, :]
    here = ep.logical_and(columns == index[:, None], relevant[:, None])
    return ep.where(here, value[:, None], point)


def _prober(problem: Problem) -> Any:
    """``probe(point, index, relevant, value) -> (candidate, adversarial)``: ``point`` (flat)
    with one value per relevant row replaced (:func:`_put`), judged by the model (compiled);
    rows not relevant are judged as they are."""
    model, inputs, criterion, _ = problem
    shape = tuple(inputs.shape[1:])
    key = ("advlib.attacks.pointwise", "put", shape)
    forward = model.compiled(key, lambda: _make_put(model, shape))

    def probe(
        point: ep.Tensor, index: ep.Tensor, relevant: ep.Tensor, value: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor]:
        candidate, logits = forward(point, index, relevant, value)
        return candidate, criterion(candidate.reshape((-1, *shape)), logits)

    return probe


def _make_put(model: Model, shape: tuple[int, ...]) -> StepFn:
    def put(
        point: ep.Tensor, index: ep.Tensor, relevant: ep.Tensor, value: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor]:
        candidate = _put(point, index, relevant, value)
        return candidate, model(candidate.reshape((-1, *shape)))

    return put
