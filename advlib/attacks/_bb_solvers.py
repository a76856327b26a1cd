"""The trust-region subproblems of the Brendel-Bethge attack, solved for a whole batch at once.

Each step of the attack solves, per sample (rows of float64 NumPy arrays of shape (N, D))::

    min_delta  distance(x0, x + delta)
    s.t.       b . delta = c,   ||delta||_2 <= r,   low <= x + delta <= high

with ``b`` the estimated normal of the decision boundary, ``c`` the logit difference still to
cover and ``r`` the trust-region radius. Where the boundary cannot be reached within the trust
region the step goes as far towards it as the region allows (:func:`boundary_step`).

Foolbox solves each sample in a numba loop (BFGS-B or Nelder-Mead on the dual). Here every
one-dimensional search of the dual is exact: the constraint functions are sums of clipped
ramps, ``sum_i w_i * phi(clip(t, start_i, stop_i))``, whose roots one sort per row finds
(:func:`ramp_root`). No loop runs over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

_LINF_ITERATIONS = 21  # bisection steps on the Linf radius (Foolbox: at most 21, tol 1e-6)
_L1_ITERATIONS = 24  # bisection steps on log(mu) of the L1 dual
_L2_ITERATIONS = 20  # active-set rounds of the L2 solver (as Foolbox)


class Subproblem(NamedTuple):
    """The subproblems of a batch (see the module documentation), one row per sample."""

    x0: np.ndarray  #: the originals, (N, D)
    x: np.ndarray  #: the current points, (N, D)
    b: np.ndarray  #: the estimated normals of the boundary, (N, D)
    low: float  #: the lower bound of every value
    high: float  #: the upper bound of every value
    c: np.ndarray  #: the change of ``b . delta`` still to cover, (N,)
    r: np.ndarray  #: the trust-region radii, (N,)

    def take(self, rows: np.ndarray) -> Subproblem:
        """The subproblems of ``rows`` (positions) only."""
        return self._replace(
            x0=self.x0[rows], x=self.x[rows], b=self.b[rows], c=self.c[rows], r=self.r[rows]
        )


#: A per-norm solver: the step of every row of a :class:`Subproblem`.
Step = Callable[[Subproblem], np.ndarray]


def ramp_root(
    weight: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    target: np.ndarray,
    square: bool = False,
) -> np.ndarray:
    """Per row, the ``t`` at which ``sum_i weight_i * phi(clip(t, start_i, stop_i))`` reaches
    ``target``, with ``phi(s) = s`` (or ``s ** 2`` when ``square``, for ``start >= 0``).

    ``weight >= 0`` and ``start <= stop`` make the sum nondecreasing and piecewise linear (or
    quadratic) in ``t``, with kinks at the ``start`` and ``stop`` values: after one sort per
    row, cumulative sums give its value at every kink and the root lies on the segment where
    the target is crossed. A target beyond the range gives the first or last kink.
    """
    phi = np.square if square else np.positive
    points = np.concatenate([start, stop], axis=1)
    order = np.argsort(points, axis=1)
    points = np.take_along_axis(points, order, axis=1)
    # Sweeping t upwards, a ramp starts rising at its start and is saturated after its stop.
    slope = np.take_along_axis(np.concatenate([weight, -weight], axis=1), order, axis=1)
    fixed_change = np.concatenate([-weight * phi(start), weight * phi(stop)], axis=1)
    fixed_change = np.take_along_axis(fixed_change, order, axis=1)
    slope = np.cumsum(slope, axis=1)
    fixed = (weight * phi(start)).sum(axis=1, keepdims=True) + np.cumsum(fixed_change, axis=1)
    values = fixed + slope * phi(points)
    k = (values < target[:, None]).sum(axis=1)
    rows = np.arange(len(target))
    last = points.shape[1] - 1
    before = np.maximum(k - 1, 0)
    rising = slope[rows, before]
    level = (target - fixed[rows, before]) / np.where(rising > 0, rising, 1.0)
    t = np.sqrt(np.maximum(level, 0.0)) if square else level
    t = np.clip(t, points[rows, before], points[rows, np.minimum(k, last)])
    return np.where(k == 0, points[:, 0], np.where(k > last, points[:, -1], t))


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where the denominator is nonzero, else 0."""
    nonzero = denominator != 0
    return np.where(nonzero, numerator, 0.0) / np.where(nonzero, denominator, 1.0)


def _towards(
    direction: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, stop)`` such that ``clip(t * direction, low, high) = direction *
    clip(t, 0, stop)`` for ``t >= 0`` (``low <= 0 <= high``), with ``weight = direction ** 2``."""
    cap = np.where(direction > 0, high, low)
    return direction**2, _safe_ratio(cap, direction)


def reach(problem: Subproblem) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the largest ``b . delta`` with the sign of ``c`` within the bounds, and the L2
    norm of the corner step that gives it (Foolbox's ``_max_logit_diff``)."""
    _, x, b, low, high, c, _ = problem
    corner = np.where((b > 0) == (c > 0)[:, None], high - x, low - x)
    return (b * corner).sum(axis=1), np.sqrt((corner**2).sum(axis=1))


def _along_boundary(problem: Subproblem, target: np.ndarray, square: bool) -> np.ndarray:
    """The step ``clip(t * sign(c) * b, low - x, high - x)`` (along the normal, towards the
    boundary, within the bounds) with the smallest ``t >= 0`` at which ``sign(c) b . delta``
    (or, ``square``, ``||delta||^2``) reaches ``target``."""
    _, x, b, low, high, c, _ = problem
    direction = np.sign(c)[:, None] * b
    weight, stop = _towards(direction, low - x, high - x)
    # sign(c) b . delta = sum_i weight_i clip(t, 0, stop_i); ||delta||^2 the same, squared
    t = ramp_root(weight, np.zeros_like(stop), stop, target, square=square)
    step: np.ndarray = np.clip(t[:, None] * direction, low - x, high - x)
    return step


def min_norm_to_boundary(problem: Subproblem) -> np.ndarray:
    """Per row, the smallest L2 norm of a step within the bounds with ``b . delta = c``
    (exact; Foolbox's ``_minimum_norm_to_boundary`` bisects to 0.1%)."""
    delta = _along_boundary(problem, np.abs(problem.c), square=False)
    norms: np.ndarray = np.sqrt((delta**2).sum(axis=1))
    return norms


def boundary_step(problem: Subproblem) -> np.ndarray:
    """The step of L2 norm ``r`` (or the bounds' corner, if nearer) that goes furthest towards
    the boundary: ``argmax sign(c) b . delta`` s.t. ``||delta|| <= r`` and the bounds."""
    return _along_boundary(problem, problem.r**2, square=True)


def solve(distance_step: Step, problem: Subproblem) -> np.ndarray:
    """The step of every row: ``distance_step`` on the rows whose boundary is reachable
    within the trust region, :func:`boundary_step` on the others (the case analysis of
    Foolbox's ``Optimizer.solve``)."""
    cmax, corner_norm = reach(problem)
    c, r = problem.c, problem.r
    reachable = np.abs(cmax) >= np.abs(c)
    doubtful = np.flatnonzero(reachable & (corner_norm >= r))
    minimal = np.zeros_like(c)
    minimal[doubtful] = min_norm_to_boundary(problem.take(doubtful))
    inside = reachable & ((corner_norm < r) | (minimal <= r))
    delta = np.empty_like(problem.x)
    for chosen, step in ((inside, distance_step), (~inside, boundary_step)):
        rows = np.flatnonzero(chosen)
        if len(rows):
            delta[rows] = step(problem.take(rows))
    return delta


# ---------------------------------------------------------------------- per-norm steps
def l2_step(problem: Subproblem) -> np.ndarray:
    """Foolbox's active-set L2 solver, all rows at once: the optimal step towards the
    boundary and the original over the coordinates not clamped to the bounds, clamping the
    coordinates that leave the bounds, until no new one does (at most 20 rounds)."""
    x0, x, b, low, high, c, r = problem
    n, d = x.shape
    dx = x0 - x
    clamped = np.zeros((n, d), dtype=bool)
    delta = np.zeros_like(x)
    running = np.ones(n, dtype=bool)
    ck, rk = c.copy(), r.copy()
    clamp_c, clamp_norm = np.zeros(n), np.zeros(n)
    for _ in range(_L2_ITERATIONS):
        free = ~clamped & running[:, None]
        bf = np.where(free, b, 0.0)
        bnorm = 1e-8 + (bf**2).sum(axis=1)
        b_dot_dx = (bf * dx).sum(axis=1) / bnorm
        to_boundary = (ck / bnorm)[:, None] * b
        step = dx + b * (ck / bnorm - b_dot_dx)[:, None]
        boundary_norm = np.where(free, to_boundary**2, 0.0).sum(axis=1)
        step_norm = np.where(free, step**2, 0.0).sum(axis=1)
        descent = np.sqrt(np.where(free, (dx - b * b_dot_dx[:, None]) ** 2, 0.0).sum(axis=1))
        # Too long: the whole trust region beyond the boundary step goes towards the original.
        correct = np.sqrt(np.maximum(rk**2 - boundary_norm, 0.0)) / (descent + 1e-8)
        corrected = correct[:, None] * dx + b * (ck / bnorm - correct * b_dot_dx)[:, None]
        step = np.where((step_norm > rk**2)[:, None], corrected, step)
        step = np.where((boundary_norm > rk**2)[:, None], to_boundary, step)
        delta = np.where(free, step, delta)
        below, above = free & (x + delta <= low), free & (x + delta >= high)
        delta = np.where(below, low - x, np.where(above, high - x, delta))
        new = below | above
        clamped |= new
        clamp_norm += np.where(new, delta**2, 0.0).sum(axis=1)
        clamp_c += np.where(new, b * delta, 0.0).sum(axis=1)
        rk = np.sqrt(np.maximum(r**2 - clamp_norm, 0.0))
        ck = c - clamp_c
        running &= new.any(axis=1) & ~clamped.all(axis=1)
        if not running.any():
            break
    return delta


def _linf_box(
    x0: np.ndarray, x: np.ndarray, eps: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """The limits of steps from ``x`` into the ``eps`` ball around ``x0`` within the bounds."""
    radius = eps[:, None]
    return np.maximum(low, x0 - radius) - x, np.minimum(high, x0 + radius) - x


def _kinks(
    slope: np.ndarray, offset: np.ndarray | float, floor: np.ndarray, ceiling: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(start, stop)`` with ``clip(slope * s + offset, floor, ceiling) = slope * clip(s,
    start, stop) + offset`` wherever ``slope != 0`` (0 and 0 where it is 0)."""
    nonzero = slope != 0
    safe = np.where(nonzero, slope, 1.0)
    one, other = (floor - offset) / safe, (ceiling - offset) / safe
    return (
        np.where(nonzero, np.minimum(one, other), 0.0),
        np.where(nonzero, np.maximum(one, other), 0.0),
    )


def _min_norm_in_box(
    b: np.ndarray, lower: np.ndarray, upper: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """The step of least L2 norm within ``[lower, upper]`` with ``b . delta = c`` (nearest if
    none reaches ``c``): ``clip(lam * b, lower, upper)`` with ``lam`` found exactly."""
    # b_i * clip(lam * b_i, lower_i, upper_i) = b_i^2 * clip(lam, start_i, stop_i)
    lam = ramp_root(b**2, *_kinks(b, 0.0, lower, upper), c)
    step: np.ndarray = np.clip(lam[:, None] * b, lower, upper)
    return step


def linf_step(problem: Subproblem) -> np.ndarray:
    """Bisection on the Linf radius ``eps`` (as Foolbox): ``eps`` is feasible when a step
    within the ``eps`` ball and the bounds reaches ``b . delta = c`` with L2 norm ``<= r``."""
    x0, x, b, low, high, c, r = problem
    n = len(c)
    eps_low, eps_high = np.zeros(n), np.full(n, float(high - low))
    for _ in range(_LINF_ITERATIONS):
        eps = (eps_low + eps_high) / 2
        lower, upper = _linf_box(x0, x, eps, low, high)
        positive = b > 0
        most = (b * np.where(positive, upper, lower)).sum(axis=1)
        least = (b * np.where(positive, lower, upper)).sum(axis=1)
        delta = _min_norm_in_box(b, lower, upper, c)
        feasible = (least <= c) & (c <= most) & ((delta**2).sum(axis=1) <= r**2)
        eps_high = np.where(feasible, eps, eps_high)
        eps_low = np.where(feasible, eps_low, eps)
    lower, upper = _linf_box(x0, x, eps_high, low, high)
    return _min_norm_in_box(b, lower, upper, c)


def _greedy(problem: Subproblem, by_gain: bool) -> np.ndarray:
    """The step without trust region that starts at the original (``delta = x0 - x``) and
    moves whole coordinates to the bound that helps, the last one only as far as needed to
    reach ``b . delta = c``: in descending order of ``|b_i|`` (L1-minimal, a knapsack), or
    ``by_gain`` of the change of ``b . delta`` each coordinate buys (Foolbox's L0 order)."""
    x0, x, b, low, high, c, _ = problem
    delta = x0 - x
    need = c - (b * delta).sum(axis=1)
    up = (b > 0) == (need > 0)[:, None]
    room = np.where(up, high - x0, low - x0)
    gain = np.abs(b * room)
    order = np.argsort(-(gain if by_gain else np.abs(b)), axis=1)
    gain_sorted = np.take_along_axis(gain, order, axis=1)
    before = np.cumsum(gain_sorted, axis=1) - gain_sorted
    useful = gain_sorted > 0
    share = (np.abs(need)[:, None] - before) / np.where(useful, gain_sorted, 1.0)
    share = np.where(useful, np.clip(share, 0.0, 1.0), 0.0)
    moved = np.empty_like(share)
    np.put_along_axis(moved, order, share, axis=1)
    step: np.ndarray = delta + moved * room
    return step


def _l1_inner(
    dx: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    c: np.ndarray,
    mu: np.ndarray,
) -> np.ndarray:
    """For a fixed ``mu > 0``, the minimiser of ``|delta - dx|_1 + lam b . delta + mu
    ||delta||^2`` over the box, with ``lam`` found exactly such that ``b . delta = c``.

    Per coordinate ``delta = clip(v + t, lower, dx) + clip(v - t, dx, upper) - dx`` with
    ``v = s * b * t``, ``s = -lam`` and ``t = 1 / (2 mu)``: two clipped ramps in ``s``, each
    ``b t clip(s, start, stop) + offset``."""
    t = (0.5 / mu)[:, None]
    slope = b * t
    start1, stop1 = _kinks(slope, t, lower, dx)
    start2, stop2 = _kinks(slope, -t, dx, upper)
    weight = b * slope
    # b . delta = sum_i b_i slope_i (clip(s, ramp 1) + clip(s, ramp 2)) - b . dx
    s = ramp_root(
        np.concatenate([weight, weight], axis=1),
        np.concatenate([start1, start2], axis=1),
        np.concatenate([stop1, stop2], axis=1),
        c + (b * dx).sum(axis=1),
    )
    v = s[:, None] * slope
    step: np.ndarray = np.clip(v + t, lower, dx) + np.clip(v - t, dx, upper) - dx
    return step


def l1_step(problem: Subproblem) -> np.ndarray:
    """The exact L1 step: the knapsack step where it fits the trust region, else the dual
    solution for the smallest ``mu`` (bisection on ``log mu``) whose step fits."""
    delta = _greedy(problem, by_gain=False)
    over = np.flatnonzero((delta**2).sum(axis=1) > problem.r**2)
    if len(over) == 0:
        return delta
    x0, x, bo, low, high, co, ro = problem.take(over)
    dx, lower, upper = x0 - x, low - x, high - x
    log_low = np.full(len(over), -12.0)
    log_high = np.full(len(over), 12.0)
    for _ in range(_L1_ITERATIONS):
        log_mu = (log_low + log_high) / 2
        step = _l1_inner(dx, bo, lower, upper, co, np.exp(log_mu))
        fits = (step**2).sum(axis=1) <= ro**2
        log_high = np.where(fits, log_mu, log_high)
        log_low = np.where(fits, log_low, log_mu)
    delta[over] = _l1_inner(dx, bo, lower, upper, co, np.exp(log_high))
    return delta


def l0_step(problem: Subproblem) -> np.ndarray:
    """Foolbox's L0 step without trust region: from the original, move whole coordinates to
    the bounds in descending order of the logit change each buys, the last only as far as
    needed. Where that step does not fit the trust region, the exact L1 step instead: its
    solutions are sparse, and exact (Foolbox runs Nelder-Mead on the non-convex L0 dual
    there, one sample at a time)."""
    delta = _greedy(problem, by_gain=True)
    over = np.flatnonzero((delta**2).sum(axis=1) > problem.r**2)
    if len(over):
        delta[over] = l1_step(problem.take(over))
    return delta
