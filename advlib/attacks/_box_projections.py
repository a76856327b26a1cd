"""Projections that respect the input box, for FAB and L1-APGD. All pure and compilable.

Every function works on flat per-sample vectors of shape (N, D); ``lo <= 0 <= hi`` are the
per-coordinate limits of the perturbation that keep ``point + perturbation`` inside the bounds.
"""

from __future__ import annotations

import eagerpy as ep

from ..norms import Norm

_BIG = 1e30
_TINY = 1e-12


def hyperplane_projection(
    norm: Norm, w: ep.Tensor, c: ep.Tensor, lo: ep.Tensor, hi: ep.Tensor
) -> ep.Tensor:
    """The smallest perturbation ``d`` (in ``norm``, "l2" or "linf") with ``w . d = c`` and
    ``lo <= d <= hi``, per sample; where the box makes the plane unreachable, the perturbation
    within the box that gets closest to it.

    Both problems share one structure. Writing ``a = |w|`` after flipping signs so that ``c >= 0``
    and ``room`` for the distance to the box in the direction of ``w``, the solution is
    ``d_i = sign(w_i) * min(s * alpha_i, room_i)`` where ``alpha = a`` (L2: ``d`` follows ``w``)
    or ``alpha = 1`` (Linf: every coordinate moves by ``s``), and ``s >= 0`` solves
    ``sum_i a_i * min(s * alpha_i, room_i) = c``, a piecewise-linear increasing equation solved
    exactly by sorting its breakpoints ``room_i / alpha_i``.
    """
    flip = ep.where(c >= 0, 1.0, -1.0).astype(w.dtype)
    ws, target = w * flip[:, None], c.abs()
    room = ep.where(ws > 0, hi, -lo)
    a = ws.abs()
    alpha = a if norm.name == "l2" else ep.ones_like(a)
    s = _solve_saturating(alpha, room, a, target)
    d = ep.minimum(s[:, None] * alpha, room)
    return ws.sign() * d


def _solve_saturating(
    alpha: ep.Tensor, cap: ep.Tensor, gamma: ep.Tensor, target: ep.Tensor
) -> ep.Tensor:
    """The smallest ``s >= 0`` with ``F(s) = sum_i gamma_i * min(s * alpha_i, cap_i) >= target``
    per row (the largest useful ``s`` when ``F`` never reaches ``target``)."""
    usable = alpha > 0
    breaks = ep.where(usable, cap / ep.where(usable, alpha, 1.0), _BIG)
    order = breaks.argsort(axis=-1)
    breaks = ep.take_along_axis(breaks, order, axis=-1)
    saturated = ep.take_along_axis(gamma * cap, order, axis=-1).cumsum(axis=-1)
    slopes = ep.take_along_axis(gamma * alpha, order, axis=-1)
    # slope of F after the first k + 1 breakpoints have saturated
    remaining = slopes.sum(axis=-1, keepdims=True) - slopes.cumsum(axis=-1)
    remaining = ep.maximum(remaining, 0.0)
    reached = saturated + ep.where(remaining > 0, breaks * remaining, 0.0)
    # k = number of breakpoints before the solution; the solution lies in segment k
    k = (reached < target[:, None]).astype(alpha.dtype).sum(axis=-1)
    zero = ep.zeros_like(saturated[:, :1])
    total = slopes.sum(axis=-1, keepdims=True)
    saturated_before = ep.concatenate([zero, saturated], axis=-1)
    slope_before = ep.concatenate([total, remaining], axis=-1)
    index = k.astype(order.dtype)[:, None]
    base = ep.take_along_axis(saturated_before, index, axis=-1)[:, 0]
    slope = ep.take_along_axis(slope_before, index, axis=-1)[:, 0]
    last_break = ep.where(usable, breaks, 0.0).max(axis=-1)
    feasible = k < alpha.shape[-1]
    s = (target - base) / ep.maximum(slope, _TINY)
    return ep.where(feasible, ep.maximum(s, 0.0), last_break)


def l1_box_projection(
    v: ep.Tensor, eps: ep.Tensor, lo: ep.Tensor, hi: ep.Tensor, iterations: int = 40
) -> ep.Tensor:
    """The Euclidean projection of perturbations ``v`` onto ``{||d||_1 <= eps, lo <= d <= hi}``.

    The solution is ``d_i = sign(v_i) * clip(|v_i| - theta, 0, cap_i)``; ``theta >= 0`` makes the
    L1 norm ``eps`` and is found by bisection (``iterations`` halvings of ``[0, max |v|]``), taking
    the upper end so the result never exceeds ``eps``.
    """
    cap = ep.where(v >= 0, hi, -lo)
    magnitude = v.abs()

    def shrunk(theta: ep.Tensor) -> ep.Tensor:
        return ep.minimum(ep.maximum(magnitude - theta[:, None], 0.0), cap)

    low = ep.zeros_like(magnitude[:, 0])
    high = magnitude.max(axis=-1)
    for _ in range(iterations):
        middle = (low + high) / 2
        too_big = shrunk(middle).sum(axis=-1) > eps
        low = ep.where(too_big, middle, low)
        high = ep.where(too_big, high, middle)
    inside = shrunk(low * 0).sum(axis=-1) <= eps
    theta = ep.where(inside, 0.0, high)
    return v.sign() * shrunk(theta)
