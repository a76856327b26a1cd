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


def l1_box_projection(v: ep.Tensor, eps: ep.Tensor, lo: ep.Tensor, hi: ep.Tensor) -> ep.Tensor:
    """The Euclidean projection of perturbations ``v`` onto ``{||d||_1 <= eps, lo <= d <= hi}``.

    The solution is ``d_i = sign(v_i) * clip(|v_i| - theta, 0, cap_i)`` with ``cap_i`` the room
    in the box on the side of ``v_i``, and ``theta >= 0`` the value that makes the L1 norm
    ``eps``. Writing ``clip(b - theta, 0, b - a) = relu(b - theta) - relu(a - theta)`` with
    ``b = |v|`` and ``a = |v| - cap``, the norm is ``sum_k w_k relu(t_k - theta)`` over the 2D
    breakpoints ``t`` (weights +1 for ``b``, -1 for ``a``), solved exactly after sorting them.
    """
    magnitude = v.abs()
    cap = ep.where(v >= 0, hi, -lo)

    def shrunk(theta: ep.Tensor) -> ep.Tensor:
        return ep.minimum(ep.maximum(magnitude - theta, 0.0), cap)

    eps_col = eps[:, None] if eps.ndim == 1 else eps
    breaks = ep.concatenate([magnitude, magnitude - cap], axis=-1)
    weights = ep.concatenate([ep.ones_like(magnitude), -ep.ones_like(magnitude)], axis=-1)
    order = breaks.argsort(axis=-1).flip(axis=-1)  # descending
    breaks = ep.take_along_axis(breaks, order, axis=-1)
    weights = ep.take_along_axis(weights, order, axis=-1)
    count = weights.cumsum(axis=-1)  # active coordinates once theta is below each breakpoint
    total = (weights * breaks).cumsum(axis=-1)
    # the norm at each breakpoint: sum over the breakpoints above it of w_k (t_k - t)
    norm_at = (total - weights * breaks) - breaks * (count - weights)
    k = (norm_at < eps_col).astype(v.dtype).sum(axis=-1, keepdims=True) - 1
    index = ep.maximum(k, 0.0).astype(order.dtype)
    active = ep.take_along_axis(count, index, axis=-1)
    summed = ep.take_along_axis(total, index, axis=-1)
    theta = (summed - eps_col) / ep.maximum(active, 1.0)
    inside = shrunk(ep.zeros_like(eps_col)).sum(axis=-1, keepdims=True) <= eps_col
    theta = ep.where(inside, 0.0, ep.maximum(theta, 0.0))
    return v.sign() * shrunk(theta)
