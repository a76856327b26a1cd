"""Fast Minimum-Norm attacks (Pintor et al., 2021, arXiv:2102.12827) in L0, L1, L2 and Linf.

Each step ascends the logit-difference loss along its L2-normalised gradient and projects onto
an epsilon ball whose radius adapts per sample: it shrinks by ``gamma`` while the sample is
adversarial, grows by ``gamma`` once one was found, and before that jumps to the linearised
distance to the decision boundary. Step size and ``gamma`` are annealed along a cosine.

Two changes to the published search, both before the first adversarial is found: the jump
overshoots the linearised distance by ``gamma``, and epsilon grows by at least ``gamma`` per
step. Without them a sample stalls where clipping to the box keeps the perturbation below
epsilon, or exactly on a linear boundary (measured on a small trained CNN, L2, 100 steps: 59%
success without the minimum growth, 100% with it, at a median L2 equal to C&W's with 9 x 1000
steps).

L0 (Foolbox's rule): the radius is a count of changed elements, starting at 1 (or at the
start's count), lowered by ``max(1, floor(gamma * epsilon))`` while the sample is adversarial
and raised by as much while it is not; the fit keeps the ``epsilon`` largest changes.

Where ``init_attack`` gives the start, the first radius is the start's norm, so the search
shrinks from there (the published search, as in Foolbox, where the radius starts unbounded).
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd
from ..norms import l0, l1, l2, linf
from ._epsilon_search import Constants, EpsilonSearchAttack, Loss, Observation
from ._losses import margin
from ._minimization import (
    Problem,
    check_float,
    check_fraction,
    check_init_attack,
    check_int,
)
from ._optim import at_step, cosine_schedule, schedule_tensor
from .base import MinimizationAttack

_FINAL_GAMMA = 0.001
_TINY = 1e-12


class _FMNAttack(EpsilonSearchAttack):
    """Fast Minimum-Norm attack in ``self.norm``, with Foolbox's signature and defaults.

    Args:
        steps: number of steps (default 100).
        max_stepsize: the first step size, in L2 (default 1.0).
        min_stepsize: the last step size (default ``max_stepsize / 100``).
        gamma: the first relative change of epsilon per step, annealed to 0.001 (default 0.05).
        init_attack: an optional minimization attack whose adversarials give the start: FMN
            then starts from the point between the input and that adversarial that is closest to
            the input and still adversarial (found by bisection). Default None: start at the
            input.
        binary_search_steps: bisection steps towards ``init_attack``'s adversarials (default 10;
            unused without ``init_attack``).
    """

    def __init__(
        self,
        *,
        steps: int = 100,
        max_stepsize: float = 1.0,
        min_stepsize: float | None = None,
        gamma: float = 0.05,
        init_attack: MinimizationAttack | None = None,
        binary_search_steps: int = 10,
    ) -> None:
        self.steps = check_int(steps, "steps")
        self.max_stepsize = check_float(max_stepsize, "max_stepsize")
        self.min_stepsize = (
            self.max_stepsize / 100
            if min_stepsize is None
            else check_float(min_stepsize, "min_stepsize")
        )
        self.gamma = check_fraction(gamma, "gamma")
        self.init_attack = check_init_attack(init_attack, "DDNAttack()")
        self.binary_search_steps = check_int(binary_search_steps, "binary_search_steps", 0)

    def _start(self, problem: Problem) -> tuple[ep.Tensor, ep.Tensor]:
        """The first perturbation (zero, or towards the adversarial closest to the inputs on
        the way to ``init_attack``'s) and the first radius (its norm)."""
        delta = self._first_delta(problem)
        return delta, self._first_radius(self.norm(delta))

    def _first_radius(self, size: ep.Tensor) -> ep.Tensor:
        """The first radius for a start of norm ``size``: that norm."""
        return size

    def _first_delta(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        if self.init_attack is None:
            return inputs - inputs
        with progress.quiet():  # the bar counts the attack's own steps, not its init's
            target = self.init_attack.perturb(model, inputs, criterion)
        delta = target - inputs
        sizes = self.norm(delta)
        # Bisect the radius of the ball the init attack's perturbation is projected onto.
        low, high = ep.zeros_like(sizes), ep.ones_like(sizes)
        for _ in range(self.binary_search_steps):
            middle = (low + high) / 2
            point = inputs + self.norm.clip(delta, middle * sizes)
            is_adv = criterion(point, model(point))
            low, high = ep.where(is_adv, low, middle), ep.where(is_adv, middle, high)
        start = inputs + self.norm.clip(delta, high * sizes)
        # Where the init attack failed there is nothing to bisect towards: start at the input.
        failed = ep.logical_not(criterion(start, model(start)))
        return ep.where(atleast_kd(failed, inputs.ndim), inputs, start) - inputs

    def _loss(self, targeted: bool) -> Loss:
        # Ascend -margin: towards the adversarial side.
        def loss(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
            return -margin(logits, classes, targeted).sum()

        return loss

    def _stepsizes(self) -> tuple[float, float]:
        return self.max_stepsize, self.min_stepsize

    def _extra(self, inputs: ep.Tensor) -> ep.Tensor:
        """The schedule of ``gamma``."""
        return schedule_tensor(inputs, cosine_schedule(self.gamma, _FINAL_GAMMA, self.steps))

    def _radius(self, seen: Observation) -> ep.Tensor:
        epsilon, best, size, c = seen.state.epsilon, seen.state.best, seen.size, seen.constants
        gamma = at_step(c.extra, seen.state.step_index)
        # Until a first adversarial is found, jump to the linearised distance to the
        # boundary (|margin| / ||gradient of the margin||_dual), overshot by gamma so a
        # locally linear model does not leave the sample exactly on the boundary; and grow
        # by at least gamma, as where clipping to the box keeps the perturbation smaller than
        # epsilon, the linearised distance alone could leave epsilon stalled.
        margins = margin(seen.probe.logits, c.classes, seen.targeted)
        to_boundary = margins.abs() / ep.maximum(self.norm.dual(seen.probe.grad), _TINY)
        searching = ep.maximum(size + (1 + gamma) * to_boundary, epsilon * (1 + gamma))
        return ep.where(
            seen.is_adv,
            ep.minimum(epsilon * (1 - gamma), best.size),
            ep.where(best.found, epsilon * (1 + gamma), searching),
        )

    def _direction(self, grad: ep.Tensor, c: Constants) -> ep.Tensor:
        return l2.normalize(grad)

    def _fit(self, moved: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        return self.norm.clip(moved, epsilon)


class L0FMNAttack(_FMNAttack):
    """Fast Minimum-Norm attack in L0 (changed elements, as Foolbox counts them); the step
    follows the L2-normalised gradient and the fit keeps the ``epsilon`` largest changes
    (``max_stepsize`` is in L2)."""

    norm = l0

    def _first_radius(self, size: ep.Tensor) -> ep.Tensor:
        return ep.maximum(size, 1.0)

    def _radius(self, seen: Observation) -> ep.Tensor:
        epsilon, best = seen.state.epsilon, seen.state.best
        gamma = at_step(seen.constants.extra, seen.state.step_index)
        # A count moves by at least 1 (floor(gamma * epsilon) is 0 for small epsilons).
        change = ep.maximum(_floor(gamma * epsilon), 1.0)
        shrunk = ep.minimum(epsilon - change, best.size)
        return ep.maximum(ep.where(seen.is_adv, shrunk, epsilon + change), 1.0)


def _floor(t: ep.Tensor) -> ep.Tensor:
    """``floor`` of a tensor of values >= 0 (an integer cast truncates)."""
    return t.astype(ep.arange(t, 1).dtype).astype(t.dtype)


class L1FMNAttack(_FMNAttack):
    """Fast Minimum-Norm attack in L1."""

    norm = l1


class L2FMNAttack(_FMNAttack):
    """Fast Minimum-Norm attack in L2."""

    norm = l2


class LinfFMNAttack(_FMNAttack):
    """Fast Minimum-Norm attack in Linf."""

    norm = linf


LInfFMNAttack = LinfFMNAttack  # Foolbox's spelling
