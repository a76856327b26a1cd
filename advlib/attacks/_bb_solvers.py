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
(:func:`ramp_root`); the L1 dual's second multiplier comes from a safeguarded Newton search
that is exact once the active pieces settle (:func:`l1_step`). No loop runs over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

_LINF_ITERATIONS = 21  # bisection steps on the Linf radius (Foolbox: at most 21, tol 1e-6)
_L1_ROUNDS = 40  # at most this many rounds of the search for the L1 dual's t (bisection: 24)
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
    n, last = len(target), 2 * weight.shape[1] - 1
    points = np.concatenate([start, stop], axis=1)
    # Fancy indexing with the row numbers: np.take_along_axis costs twice as much on the
    # small arrays of a step (this runs a few dozen times per step).
    by_row = np.arange(n)[:, None], np.argsort(points, axis=1)
    points = points[by_row]
    # Sweeping t upwards, a ramp starts rising at its start and is saturated after its stop.
    slope = np.concatenate([weight, -weight], axis=1)[by_row].cumsum(axis=1)
    low_part, high_part = weight * phi(start), weight * phi(stop)
    fixed = np.concatenate([-low_part, high_part], axis=1)[by_row].cumsum(axis=1)
    fixed += low_part.sum(axis=1, keepdims=True)
    k = (fixed + slope * phi(points) < target[:, None]).sum(axis=1)
    rows = by_row[0][:, 0]
    before = np.maximum(k - 1, 0)
    rising = slope[rows, before]
    level = (target - fixed[rows, before]) / np.where(rising > 0, rising, 1.0)
    t = np.sqrt(np.maximum(level, 0.0)) if square else level
    t = np.minimum(np.maximum(t, points[rows, before]), points[rows, np.minimum(k, last)])
    root: np.ndarray = np.where(k == 0, points[:, 0], np.where(k > last, points[:, -1], t))
    return root


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


def _within_region(problem: Subproblem) -> np.ndarray:
    """Per row, whether :func:`min_norm_to_boundary` is at most ``r``; bounds on it decide
    most rows without its sort. Below: ``|c| / ||b||``. Above: the norm of the step along
    ``b`` over the coordinates not already at the bound it moves them to, where that step
    stays within the bounds (it is then feasible)."""
    _, x, b, low, high, c, r = problem
    towards = np.sign(c)[:, None] * b
    movable = np.where(towards > 0, x < high, x > low)
    free_b = b * movable
    free_squares = (free_b * free_b).sum(axis=1)
    step = _safe_ratio(c, free_squares)[:, None] * free_b
    feasible = ((x + step >= low) & (x + step <= high)).all(axis=1) & (free_squares > 0)
    near: np.ndarray = feasible & (c**2 <= r**2 * free_squares)
    far = c**2 > r**2 * (b * b).sum(axis=1)
    rest = np.flatnonzero(~near & ~far)
    if len(rest):
        near[rest] = min_norm_to_boundary(problem.take(rest)) <= r[rest]
    return near


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
    near = np.ones_like(reachable)
    near[doubtful] = _within_region(problem.take(doubtful))
    inside = reachable & ((corner_norm < r) | near)
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
        bf, dxf = b * free, dx * free
        b_squares = (bf * bf).sum(axis=1)
        bnorm = 1e-8 + b_squares
        b_dot_dx = (bf * dx).sum(axis=1) / bnorm
        boundary_scale = ck / bnorm
        boundary_norm = boundary_scale**2 * b_squares
        step = dx + b * (boundary_scale - b_dot_dx)[:, None]
        step_norm = np.square(dxf + bf * (boundary_scale - b_dot_dx)[:, None]).sum(axis=1)
        descent = np.sqrt(np.square(dxf - bf * b_dot_dx[:, None]).sum(axis=1))
        # Too long: the whole trust region beyond the boundary step goes towards the original.
        correct = np.sqrt(np.maximum(rk**2 - boundary_norm, 0.0)) / (descent + 1e-8)
        corrected = correct[:, None] * dx + b * (boundary_scale - correct * b_dot_dx)[:, None]
        step = np.where((step_norm > rk**2)[:, None], corrected, step)
        step = np.where((boundary_norm > rk**2)[:, None], boundary_scale[:, None] * b, step)
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
    t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For a fixed ``t = 1 / (2 mu) > 0``, the minimiser of ``|delta - dx|_1 + lam b . delta +
    mu ||delta||^2`` over the box, with ``lam`` found exactly such that ``b . delta = c``; and
    ``a = -lam t``.

    Per coordinate ``delta = clip(a b + t, lower, dx) + clip(a b - t, dx, upper) - dx`` (the
    soft threshold of ``a b`` around ``dx``, clipped): with ``a = s t``, two clipped ramps in
    ``s``, each ``b t clip(s, start, stop) + offset``."""
    t = t[:, None]
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
    a = s * t[:, 0]
    v = a[:, None] * b
    step = np.minimum(np.maximum(v + t, lower), dx) + np.minimum(np.maximum(v - t, dx), upper)
    return step - dx, a


def _l1_next_t(
    dx: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    c: np.ndarray,
    r: np.ndarray,
    a: np.ndarray,
    t: np.ndarray,
) -> np.ndarray:
    """Per row, the ``t`` at which ``||delta||`` reaches ``r`` if the pieces of
    :func:`_l1_inner` stay as they are at ``(a, t)`` (NaN where that gives no root).

    On fixed pieces each coordinate is constant (at a bound or at ``dx``) or moving,
    ``delta_i = a b_i - sigma_i t``; ``b . delta = c`` makes ``a`` affine in ``t``, so
    ``delta`` is affine in ``t`` and ``||delta||^2 = r^2`` a quadratic equation."""
    v = a[:, None] * b - dx
    tt = t[:, None]
    sigma = np.where(v > tt, 1.0, np.where(v < -tt, -1.0, 0.0))
    raw = a[:, None] * b - sigma * tt
    moving = (sigma != 0) & (raw > lower) & (raw < upper)
    still = np.minimum(np.maximum(np.where(sigma == 0, dx, raw), lower), upper)
    fixed = np.where(moving, 0.0, still)
    bm = np.where(moving, b, 0.0)
    b2 = (bm**2).sum(axis=1)
    safe = np.where(b2 > 0, b2, 1.0)
    a0 = (c - (b * fixed).sum(axis=1)) / safe  # a = a0 + t * a1 on these pieces
    a1 = (bm * sigma).sum(axis=1) / safe
    slope = np.where(moving, a1[:, None] * b - sigma, 0.0)  # delta = offset + t * slope
    offset = np.where(moving, a0[:, None] * b, fixed)
    qa = (slope**2).sum(axis=1)
    qb = 2 * (slope * offset).sum(axis=1)
    # Aimed a hair inside the region, so that rounding cannot put the landing point outside.
    qc = (offset**2).sum(axis=1) - r**2 * (1 - 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The rising root of qa t^2 + qb t + qc (the norm grows with t).
        root = (-qb + np.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)
        linear = -qc / qb
    root = np.where(qa > 1e-12 * np.abs(qb), root, linear)
    return np.where(b2 > 0, root, np.nan)


def l1_step(problem: Subproblem) -> np.ndarray:
    """The exact L1 step: the knapsack step where it fits the trust region, else the dual
    solution for the largest ``t = 1 / (2 mu)`` whose step fits. The step's norm grows with
    ``t`` and is piecewise quadratic along the solutions: a safeguarded Newton search solves
    the quadratic of the current pieces (:func:`_l1_next_t`), which is exact once the pieces
    stop changing (a few rounds), and bisects ``log t`` where that leaves the bracket."""
    delta = _greedy(problem, by_gain=False)
    over = np.flatnonzero((delta**2).sum(axis=1) > problem.r**2)
    if len(over) == 0:
        return delta
    x0, x, bo, low, high, co, ro = problem.take(over)
    dx, lower, upper = x0 - x, low - x, high - x
    n = len(over)
    fit, out = np.full(n, 0.5 * np.exp(-12.0)), np.full(n, 0.5 * np.exp(12.0))
    best, t = np.zeros_like(dx), np.full(n, 0.5)
    done = np.zeros(n, dtype=bool)
    for _ in range(_L1_ROUNDS):
        step, a = _l1_inner(dx, bo, lower, upper, co, t)
        fits = (step**2).sum(axis=1) <= ro**2
        best = np.where((fits & ~done)[:, None], step, best)
        fit, out = np.where(fits, t, fit), np.where(fits, out, t)
        guess = _l1_next_t(dx, bo, lower, upper, co, ro, a, t)
        done |= fits & (np.abs(guess - t) <= 1e-9 * t)
        done |= out <= fit * (1 + 1e-9)
        if done.all():
            break
        inside = (guess > fit) & (guess < out)
        t = np.where(inside, guess, np.sqrt(fit * out))
    never = fit == 0.5 * np.exp(-12.0)  # no t fits: the smallest, as far as it goes
    if never.any():
        parts = (a[never] for a in (dx, bo, lower, upper, co, fit))
        best[never] = _l1_inner(*parts)[0]
    delta[over] = best
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
