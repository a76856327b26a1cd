"""The driver C&W and EAD share: a per-sample search over the constant ``c`` that weighs the
adversarial loss ``max(margin + confidence, 0)`` against the distance.

Each round runs ``steps`` compiled optimisation steps with the current constants, keeping the
smallest adversarial per sample on the device; between rounds the constants are bisected (or
multiplied by ten while no constant succeeded). Rounds end early when the loss stalls; samples
stop once adversarial within ``early_stop``.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import eagerpy as ep

from .. import _progress as progress
from ..models.base import Model, StepFn
from ._losses import margin, squared_l2
from ._minimization import (
    Best,
    Minimizer,
    Problem,
    any_active,
    best_init,
    check_bool,
    check_float,
    check_int,
    compiled_keep_best,
    stalled,
    still_active,
)
from ._optim import check_interval

# A constant search with this many rounds or more spends its last round on the smallest
# successful constant found (as the reference implementation).
_LAST_ROUND_BEST = 10
_LARGEST_CONST = 1e10


class Constants(NamedTuple):
    """What a compiled step reads and never changes within a round."""

    inputs: ep.Tensor
    classes: ep.Tensor  # the labels (untargeted) or the targets
    consts: ep.Tensor  # the per-sample constant ``c`` of this round
    extra: Any  # the attack's own constants (a tensor or a tuple of them)


class Report(NamedTuple):
    """What a compiled step reports besides its new state."""

    candidate: ep.Tensor  # the point to judge
    logits: ep.Tensor  # its logits as the criterion should see them (confidence included)
    losses: ep.Tensor  # per-sample total loss, for the early abort
    size: ep.Tensor  # per-sample size the best adversarial is chosen by


class Bracket(NamedTuple):
    """The per-sample constants and the interval the search narrows."""

    consts: ep.Tensor
    lower: ep.Tensor  # largest constant known to fail (0 at first)
    upper: ep.Tensor  # smallest constant known to succeed (inf at first)


def bracket_init(like: ep.Tensor, initial_const: float) -> Bracket:
    """Every sample at ``initial_const``, nothing known yet."""
    n = like.shape[0]
    return Bracket(
        ep.full(like, (n,), initial_const), ep.zeros(like, (n,)), ep.full(like, (n,), float("inf"))
    )


def bisect(bracket: Bracket, found: ep.Tensor) -> Bracket:
    """One round of the search: a constant that produced an adversarial becomes the upper
    bound, one that did not the lower bound; the next constant is their midpoint, or ten times
    larger while no upper bound exists."""
    consts, lower, upper = bracket
    upper = ep.where(found, consts, upper)
    lower = ep.where(found, lower, consts)
    consts = ep.where(ep.isinf(upper), consts * 10, (lower + upper) / 2)
    return Bracket(consts, lower, upper)


class _Round(NamedTuple):
    """The pieces of one call every round uses."""

    problem: Problem
    step: StepFn  # (state, constants, active) -> (state, report), compiled
    keep_best: StepFn  # compiled :func:`keep_best`
    constants: Constants


class ConstantSearchAttack(Minimizer):
    """A minimization attack driven by the constant search; subclasses give the optimiser
    (:meth:`_make_step`, :meth:`_extra`, :meth:`_start`)."""

    binary_search_steps: int
    steps: int
    confidence: float
    initial_const: float
    abort_early: bool

    def _check_search(
        self,
        binary_search_steps: int,
        steps: int,
        confidence: float,
        initial_const: float,
        abort_early: bool,
        own: dict[str, Any],
    ) -> None:
        """Validate the arguments of the search and store them, with the attack's ``own``
        (validated) arguments, as attributes in the order of the signature (the repr's)."""
        values = {
            "binary_search_steps": check_int(binary_search_steps, "binary_search_steps"),
            "steps": check_int(steps, "steps"),
            "confidence": check_float(confidence, "confidence", positive=False),
            "initial_const": check_float(initial_const, "initial_const"),
            "abort_early": check_bool(abort_early, "abort_early"),
            **own,
        }
        order = list(inspect.signature(type(self).__init__).parameters)
        # A subclass with a signature of its own (``**kwargs``, say) still gets every attribute.
        order += [name for name in values if name not in order]
        for name in order:
            if name in values:
                setattr(self, name, values[name])

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs = problem.model, problem.inputs
        classes, targeted = problem.criterion.gradient_target()
        step = model.compiled(self._step_key(targeted), lambda: self._make_step(model, targeted))
        bracket = bracket_init(inputs, self.initial_const)
        constants = Constants(inputs, classes, bracket.consts, self._extra(model, inputs))
        run = _Round(problem, step, compiled_keep_best(model), constants)
        best = best_init(inputs)
        active = ep.ones(inputs, (inputs.shape[0],)).bool()
        rounds = self.binary_search_steps
        for round_ in progress.steps(rounds):
            if round_ == rounds - 1 and rounds >= _LAST_ROUND_BEST:
                bracket = bracket._replace(consts=ep.minimum(bracket.upper, _LARGEST_CONST))
            best = best._replace(found=ep.zeros_like(best.found))
            best, active = self._round(run, bracket.consts, best, active)
            active = self._still_active(active, best, problem)
            if not any_active(active):
                break
            bracket = bisect(bracket, best.found)
        return best.x

    def _round(
        self, run: _Round, consts: ep.Tensor, best: Best, active: ep.Tensor
    ) -> tuple[Best, ep.Tensor]:
        """``steps`` optimisation steps from :meth:`_start` with the constants ``consts``."""
        constants = run.constants._replace(consts=consts)
        state = self._start(constants)
        interval = check_interval(self.steps)
        previous_losses = None
        for step in progress.steps(self.steps):
            state, report = run.step(state, constants, active)
            if step % interval == 0:
                active = self._still_active(active, best, run.problem)
                if not any_active(active):
                    break
                if self.abort_early:
                    if previous_losses is not None and stalled(
                        report.losses, previous_losses, active
                    ):
                        break
                    previous_losses = report.losses
            is_adv = run.problem.criterion(report.candidate, report.logits)
            best = run.keep_best(best, report.candidate, report.size, is_adv, active)
        return best, active

    def _still_active(self, active: ep.Tensor, best: Best, problem: Problem) -> ep.Tensor:
        """Running samples without an adversarial within ``early_stop`` yet."""
        return still_active(active, best.size, problem.early_stop)

    def _make_losses(
        self, targeted: bool
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor, Constants], ep.Tensor]:
        """``losses(x, logits, origin, constants)``: per sample,
        ``c * max(margin + confidence, 0) + ||x - origin||_2^2``."""
        confidence = self.confidence

        def losses(x: ep.Tensor, logits: ep.Tensor, origin: ep.Tensor, c: Constants) -> ep.Tensor:
            adversarial = ep.maximum(margin(logits, c.classes, targeted) + confidence, 0)
            return c.consts * adversarial + squared_l2(x - origin)

        return losses

    @abstractmethod
    def _make_step(self, model: Model, targeted: bool) -> StepFn:
        """The pure step ``(state, constants, active) -> (state, report)``: one optimisation
        step on the ``active`` samples and a :class:`Report` on a point to judge."""

    def _extra(self, model: Model, inputs: ep.Tensor) -> Any:
        """The attack's own constants of one call (:attr:`Constants.extra`); none by
        default."""
        return ()

    @abstractmethod
    def _start(self, constants: Constants) -> Any:
        """The optimiser's state at the start of a round."""
