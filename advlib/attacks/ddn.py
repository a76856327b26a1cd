"""Decoupled Direction and Norm (Rony et al., 2019, arXiv:1811.09600), an L2 attack.

Each step moves along the normalised cross-entropy gradient, then rescales the perturbation to
a norm ``epsilon`` that shrinks by ``gamma`` while the sample is adversarial and grows by
``gamma`` while it is not. The step size is annealed from 1 to 0.01 along a cosine.
"""

from __future__ import annotations

import eagerpy as ep

from .._tensors import atleast_kd, crossentropy_sum, dtype_name
from ..norms import l2
from ._epsilon_search import Constants, EpsilonSearchAttack, Loss, Observation
from ._minimization import Problem, check_float, check_fraction, check_int, check_seed

_MAX_STEPSIZE, _MIN_STEPSIZE = 1.0, 0.01
_TINY = 1e-12


class DDNAttack(EpsilonSearchAttack):
    """The Decoupled Direction and Norm L2 attack, with Foolbox's signature and defaults.

    Args:
        init_epsilon: the starting norm of the perturbation (default 1.0).
        steps: number of steps (default 100).
        gamma: relative change of the norm per step (default 0.05).
        seed: seed of the random direction used where the gradient is exactly zero; None
            draws fresh randomness on every call.
    """

    norm = l2

    def __init__(
        self,
        *,
        init_epsilon: float = 1.0,
        steps: int = 100,
        gamma: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.init_epsilon = check_float(init_epsilon, "init_epsilon")
        self.steps = check_int(steps, "steps")
        self.gamma = check_fraction(gamma, "gamma")
        self.seed = check_seed(seed)

    def _loss(self, targeted: bool) -> Loss:
        # Ascend the cross-entropy away from the labels, descend it towards the targets.
        sign = -1.0 if targeted else 1.0

        def loss(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
            return sign * crossentropy_sum(logits, classes)

        return loss

    def _stepsizes(self) -> tuple[float, float]:
        return _MAX_STEPSIZE, _MIN_STEPSIZE

    def _extra(self, inputs: ep.Tensor) -> ep.Tensor:
        """The direction used where the gradient is exactly zero: random, of norm 1."""
        fallback = self.norm.sample_unit_ball(self._generator(), tuple(inputs.shape))
        return l2.normalize(ep.from_numpy(inputs, fallback.astype(dtype_name(inputs))))

    def _start(self, problem: Problem) -> tuple[ep.Tensor, ep.Tensor]:
        inputs = problem.inputs
        return ep.zeros_like(inputs), ep.full(inputs, (inputs.shape[0],), self.init_epsilon)

    def _radius(self, seen: Observation) -> ep.Tensor:
        # Shrink while adversarial, grow while not.
        return seen.state.epsilon * ep.where(seen.is_adv, 1.0 - self.gamma, 1.0 + self.gamma)

    def _direction(self, grad: ep.Tensor, c: Constants) -> ep.Tensor:
        grad_norm = l2(grad)
        return ep.where(
            atleast_kd(grad_norm < _TINY, grad.ndim),
            c.extra,
            grad / atleast_kd(ep.maximum(grad_norm, _TINY), grad.ndim),
        )

    def _fit(self, moved: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        # Rescaled to norm epsilon exactly, inwards or outwards.
        scale = epsilon / ep.maximum(l2(moved), _TINY)
        return moved * atleast_kd(scale, moved.ndim)
