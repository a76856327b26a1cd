"""Auto Conjugate Gradient (Yamamura et al., ICML 2022, arXiv 2206.09628).

APGD's step-size control with conjugate-gradient search directions instead of momentum: the
direction is ``s_k = g_k + beta_k s_(k-1)`` with the Hestenes-Stiefel coefficient for an
ascent, ``beta_k = <g_k, g_k - g_(k-1)> / <s_(k-1), g_(k-1) - g_k>`` (0 where undefined or
negative, which restarts along the gradient), and the next point is
``P(x_k + eta_k * normalize(s_k))`` (Linf: the sign). Where a checkpoint halves a sample's step
and moves it back to its best point, its conjugate direction restarts from the gradient there.
Everything else (random start, checkpoints, losses, restarts on the still-robust samples, the
first adversarial kept) is APGD's; ``ACGAttack(loss="margin")`` and ``loss="pma"`` use the
margin losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import eagerpy as ep

from .._tensors import atleast_kd, flat_batch
from ..models.base import Model, StepFn
from ..norms import l2, linf
from ._norm_arg import norm_family
from .apgd import _AutoPGD, _Constants, _Schedule, _State

# Below this |<s, y>| the coefficient is undefined: restart along the gradient.
_TINY = 1e-20


def hestenes_stiefel(
    grad: ep.Tensor, grad_prev: ep.Tensor, direction: ep.Tensor
) -> ep.Tensor:
    """Per sample, the non-negative Hestenes-Stiefel coefficient of an ascent (see the module
    documentation); 0 where it is undefined."""
    g, y, s = flat_batch(grad), flat_batch(grad_prev - grad), flat_batch(direction)
    numerator = -(g * y).sum(axis=-1)
    denominator = (s * y).sum(axis=-1)
    defined = denominator.abs() > _TINY
    beta = numerator / ep.where(defined, denominator, 1.0)
    return ep.where(defined, ep.maximum(beta, 0.0), 0.0)


class _ACG(_AutoPGD):
    """ACG in the norm ``self.norm``; ``ACGAttack(norm="l2")`` gives an :class:`L2ACGAttack`.

    Args: as :class:`~advlib.attacks.apgd._AutoPGD` (``steps=100``, ``restarts=1``,
    ``loss="ce"`` (also ``"dlr"``, ``"margin"``, ``"pma"``), ``rho=0.75``, ``eot_iter=1``,
    ``seed=None``, ``norm=None``: Linf); ACG has no momentum.
    """

    def _compile_key(self, *parts: Any) -> Any:
        return self._step_key(*parts, family=_ACG, settings=())

    def _initial_memory(self, x: ep.Tensor) -> Any:
        """(previous direction, previous gradient): zero, so the first direction is the
        gradient."""
        return (ep.zeros_like(x), ep.zeros_like(x))

    def _make_move(self, model: Model) -> Callable[..., tuple[ep.Tensor, Any]]:
        norm, project = self.norm, self._make_projection(model)

        def move(
            state: _State, schedule: _Schedule, constants: _Constants, weight: ep.Tensor
        ) -> tuple[ep.Tensor, tuple[ep.Tensor, ep.Tensor]]:
            direction_prev, grad_prev = state.memory
            beta = hestenes_stiefel(state.grad, grad_prev, direction_prev)
            direction = state.grad + atleast_kd(beta, state.x.ndim) * direction_prev
            step = atleast_kd(schedule.step_size, state.x.ndim) * norm.normalize(direction)
            x = project(state.x + step, constants.origin, constants.eps)
            return x, (direction, state.grad)

        return move

    def _make_checkpoint(self, shape: tuple[int, ...]) -> StepFn:
        """APGD's checkpoint; samples moved back to their best point forget their direction."""
        checkpoint = super()._make_checkpoint(shape)

        def restart(
            state: _State, schedule: _Schedule, constants: _Constants, threshold: ep.Tensor
        ) -> tuple[_State, _Schedule]:
            state, schedule = checkpoint(state, schedule, constants, threshold)
            keep = atleast_kd(ep.logical_not(schedule.halved), state.x.ndim)
            direction, grad_prev = state.memory
            memory = (ep.where(keep, direction, 0.0), ep.where(keep, grad_prev, 0.0))
            return state._replace(memory=memory), schedule

        return restart


class LinfACGAttack(_ACG):
    """ACG in Linf (sign steps); see :class:`_ACG` (defaults: 100 steps, 1 restart, CE)."""

    norm = linf


class L2ACGAttack(_ACG):
    """ACG in L2 (normalised steps); see :class:`_ACG`."""

    norm = l2


ACGAttack = LinfACGAttack
LinfACG = LinfACGAttack
L2ACG = L2ACGAttack
norm_family(LinfACGAttack, L2ACGAttack)
