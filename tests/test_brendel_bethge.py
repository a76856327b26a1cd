"""Brendel-Bethge attacks: exact minimal distances of a linear model within the box, the
vectorised subproblem solvers against a generic solver, Foolbox 3.3.4's attack, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

from advlib import attacks
from advlib.attacks import _bb_solvers as solvers

BB = {
    0.0: attacks.L0BrendelBethgeAttack,
    1.0: attacks.L1BrendelBethgeAttack,
    2.0: attacks.L2BrendelBethgeAttack,
    np.inf: attacks.LinfBrendelBethgeAttack,
}


# ---------------------------------------------------------------------- exact box oracle
def _minimal_to_halfspace(a: np.ndarray, m: float, x: np.ndarray, p: float) -> float:
    """The smallest Lp perturbation ``delta`` with ``a . delta >= m`` and ``0 <= x + delta <=
    1`` (inf if none): every coordinate moves towards the bound that raises ``a . delta``."""
    room = np.where(a > 0, 1 - x, x)
    gain = np.abs(a) * room
    if gain.sum() < m:
        return np.inf
    if p == 0:  # whole coordinates in order of the gain each can buy
        return float(np.searchsorted(np.cumsum(np.sort(gain)[::-1]), m) + 1)
    if p == 1:  # fractional knapsack: cheapest gain per unit first
        order = np.argsort(-np.abs(a))
        before = np.cumsum(gain[order]) - gain[order]
        share = np.clip((m - before) / np.maximum(gain[order], 1e-300), 0, 1)
        return float((share * room[order]).sum())
    if p == np.inf:  # sum |a_i| min(eps, room_i) = m, bisected
        low, high = 0.0, 1.0
        for _ in range(100):
            eps = (low + high) / 2
            low, high = (eps, high) if (np.abs(a) * np.minimum(eps, room)).sum() < m else (low, eps)
        return high
    low, high = 0.0, 1.0  # L2: delta = clip(lam * a, -x, 1 - x) with a . delta = m
    while (a * np.clip(high * a, -x, 1 - x)).sum() < m:
        high *= 2
    for _ in range(200):
        lam = (low + high) / 2
        low, high = (lam, high) if (a * np.clip(lam * a, -x, 1 - x)).sum() < m else (low, lam)
    return float(np.linalg.norm(np.clip(high * a, -x, 1 - x)))


class BoxOracle(LinearOracle):
    """A linear model on inputs anywhere in [0, 1], where the bounds limit the perturbation:
    exact minimal distances in L0, L1, L2 and Linf, one boundary at a time, then the minimum
    over the classes."""

    def __init__(self, n: int, d: int, classes: int, seed: int) -> None:
        super().__init__(n=n, shape=(d,), classes=classes, seed=seed, scale=3.0)
        self.x = np.random.default_rng(seed + 100).uniform(0, 1, (n, d)).astype(np.float32)
        self.logits = self.x.astype(np.float64) @ self.weights["fc1.w"] + self.weights["fc1.b"]
        self.labels = self.logits.argmax(-1)

    def minimal(self, p: float) -> np.ndarray:
        w = self.weights["fc1.w"].astype(np.float64)
        result = []
        for x, z, y in zip(self.x.astype(np.float64), self.logits, self.labels):
            sizes = [
                _minimal_to_halfspace(w[:, j] - w[:, y], z[y] - z[j], x, p)
                for j in range(w.shape[1])
                if j != y
            ]
            result.append(min(sizes))
        return np.array(result)


def _sizes(x: np.ndarray, adversarial: np.ndarray, p: float) -> np.ndarray:
    delta = (adversarial.astype(np.float64) - x).reshape(len(x), -1)
    if p == 0:
        return (delta != 0).sum(axis=1).astype(np.float64)
    return np.linalg.norm(delta, ord=p, axis=1)


@pytest.mark.parametrize(
    ("p", "limit"),
    [(0.0, 1.10), (1.0, 1.02), (2.0, 1.02), (np.inf, 1.02)],
    ids=["L0", "L1", "L2", "Linf"],
)
def test_reaches_exact_minimum_within_box(p: float, limit: float, backend: str) -> None:
    oracle = BoxOracle(n=24, d=16, classes=4, seed=3)
    optimal = oracle.minimal(p)
    assert np.isfinite(optimal).all()
    # Foolbox 3's trust region for this batch (advlib's lr is per sample).
    attack = BB[p](steps=200, lr=1e-3 * len(oracle.x), seed=0)
    _, clipped, success = attack(
        oracle.model(backend),
        native(backend, oracle.x),
        native(backend, oracle.labels),
        epsilons=None,
    )
    assert to_numpy(success).all()
    ratios = _sizes(oracle.x, to_numpy(clipped), p) / optimal
    # Below the optimum is impossible (up to float32 rounding of the inputs).
    assert ratios.min() >= 1 - 1e-4
    assert np.median(ratios) <= limit, np.sort(ratios)


# ---------------------------------------------------------------------- the solvers
def _subproblems(seed: int, n: int = 30, d: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, 1, (n, d))
    x = np.clip(x0 + rng.normal(0, 0.3, (n, d)), 0, 1)
    return x0, x, rng.normal(0, 1, (n, d)), rng.normal(0, 0.5, n), rng.uniform(0.05, 1.5, n)


@pytest.mark.parametrize(
    ("step", "p"),
    [(solvers.l1_step, 1.0), (solvers.l2_step, 2.0), (solvers.linf_step, np.inf)],
    ids=["L1", "L2", "Linf"],
)
def test_step_solves_the_trust_region_problem(step: solvers.Step, p: float) -> None:
    """Every step meets the constraints; where the boundary is reachable it is as close to
    the original as any feasible point SciPy's SLSQP finds (a generic solver, from several
    starts; its points are checked against the constraints, so it only gives upper bounds)."""
    optimize = pytest.importorskip("scipy.optimize")
    x0, x, b, c, r = _subproblems(seed=int(p) if np.isfinite(p) else 7)
    problem = solvers.Subproblem(x0, x, b, 0.0, 1.0, c, r)
    delta = solvers.solve(step, problem)
    assert ((x + delta) >= 0).all() and ((x + delta) <= 1).all()
    assert (np.linalg.norm(delta, axis=1) <= r * (1 + 1e-9)).all()
    reach, _ = solvers.reach(problem)
    minimal = solvers.min_norm_to_boundary(problem)
    solvable = (np.abs(reach) >= np.abs(c)) & (minimal <= r)
    assert 10 < solvable.sum() < len(c)
    np.testing.assert_allclose((b * delta).sum(axis=1)[solvable], c[solvable], atol=1e-7)
    mine = np.linalg.norm(delta - (x0 - x), ord=p, axis=1)
    bounded = 0
    for i in np.flatnonzero(solvable):
        best = _generic(optimize, x0[i], x[i], b[i], c[i], r[i], p)
        assert mine[i] <= best * (1 + 1e-4) + 1e-9
        bounded += bool(np.isfinite(best))
    assert bounded >= solvable.sum() // 2  # SLSQP found a feasible point for most


def _generic(optimize, x0, x, b, c, r, p):  # type: ignore[no-untyped-def]
    """``min ||x0 - x - delta||_p`` by SLSQP (L1 and Linf as smooth programs with slacks)."""
    d, dx = len(x), x0 - x
    slacks = {1.0: d, 2.0: 0, np.inf: 1}[p]
    bounds = [(-x[j], 1 - x[j]) for j in range(d)] + [(0, None)] * slacks
    constraints = [
        {"type": "eq", "fun": lambda z: b @ z[:d] - c},
        {"type": "ineq", "fun": lambda z: r**2 - z[:d] @ z[:d]},
    ]
    if p == 2:
        objective = lambda z: ((z[:d] - dx) ** 2).sum()  # noqa: E731
    else:
        objective = lambda z: z[d:].sum()  # noqa: E731
        constraints += [
            {"type": "ineq", "fun": lambda z: z[d:] - (z[:d] - dx)},
            {"type": "ineq", "fun": lambda z: z[d:] + (z[:d] - dx)},
        ]
    rng = np.random.default_rng(0)
    values = []
    for trial in range(4):
        z0 = np.zeros(d + slacks) if trial == 0 else rng.uniform(-0.2, 0.2, d + slacks)
        res = optimize.minimize(
            objective,
            z0,
            bounds=bounds,
            constraints=constraints,
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-12},
        )
        z = res.x[:d]
        # Only points that satisfy the constraints exactly (to 1e-9) bound the optimum from
        # above, whatever SLSQP's tolerances do on this machine.
        feasible = (
            abs(b @ z - c) <= 1e-9
            and z @ z <= r**2 * (1 + 1e-9)
            and np.all(z >= -x - 1e-12)
            and np.all(z <= 1 - x + 1e-12)
        )
        if feasible:
            values.append(np.linalg.norm(z - dx, ord=p))
    return min(values, default=np.inf)


def test_l1_search_finds_the_bisection_optimum_on_large_rows() -> None:
    """On 64-dimensional rows with many coordinates at the bounds (as on images), the L1
    step's search for the dual's ``t`` lands on the point that a 60-round bisection on
    ``log t`` finds: the same L1 distance, within the trust region."""
    x0, x, b, c, r = _subproblems(seed=5, n=60, d=64)
    rng = np.random.default_rng(6)
    x0 = np.where(rng.uniform(size=x0.shape) < 0.5, np.round(x0), x0)
    x = np.where(rng.uniform(size=x.shape) < 0.3, x0, x)
    problem = solvers.Subproblem(x0, x, b, 0.0, 1.0, c, r * 0.2)
    delta = solvers.l1_step(problem)
    dx = x0 - x
    knapsack = solvers._greedy(problem, by_gain=False)
    rows = np.flatnonzero((knapsack**2).sum(axis=1) > problem.r**2)
    assert len(rows) > 20
    log_fit, log_out = np.full(len(rows), np.log(0.5) - 12), np.full(len(rows), np.log(0.5) + 12)
    args = (dx[rows], b[rows], -x[rows], 1 - x[rows], c[rows])
    for _ in range(60):
        middle = (log_fit + log_out) / 2
        step = solvers._l1_inner(*args, np.exp(middle))[0]
        fits = (step**2).sum(axis=1) <= problem.r[rows] ** 2
        log_fit, log_out = np.where(fits, middle, log_fit), np.where(fits, log_out, middle)
    reference = solvers._l1_inner(*args, np.exp(log_fit))[0]
    # Rows that no t fits cannot reach the boundary within the region (solve() takes
    # boundary_step there).
    solvable = (reference**2).sum(axis=1) <= problem.r[rows] ** 2
    assert solvable.sum() > 20
    rows, reference = rows[solvable], reference[solvable]
    assert (np.linalg.norm(delta[rows], axis=1) <= problem.r[rows] * (1 + 1e-9)).all()
    np.testing.assert_allclose((b[rows] * delta[rows]).sum(axis=1), c[rows], atol=1e-9)
    ours = np.abs(delta[rows] - dx[rows]).sum(axis=1)
    theirs = np.abs(reference - dx[rows]).sum(axis=1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)


def test_the_region_check_agrees_with_the_exact_minimal_norm() -> None:
    """The cheap bounds of the solver's reachability check decide as the exact minimal norm
    does, also where many coordinates sit at the bounds (which blocks the plain step)."""
    x0, x, b, c, r = _subproblems(seed=3, n=400, d=6)
    x = np.where(np.random.default_rng(4).uniform(size=x.shape) < 0.4, np.round(x), x)
    problem = solvers.Subproblem(x0, x, b, 0.0, 1.0, c * 0.3, r * 0.3)
    reachable = np.abs(solvers.reach(problem)[0]) >= np.abs(problem.c)
    rows = np.flatnonzero(reachable)
    exact = solvers.min_norm_to_boundary(problem.take(rows)) <= problem.r[rows]
    assert 50 < exact.sum() < len(rows) - 50
    np.testing.assert_array_equal(solvers._within_region(problem.take(rows)), exact)


def test_ramp_root_is_exact() -> None:
    rng = np.random.default_rng(0)
    weight = rng.uniform(0, 1, (50, 9))
    start = rng.uniform(-1, 1, (50, 9))
    stop = start + rng.uniform(0, 1, (50, 9))
    t_true = rng.uniform(-1.2, 2.2, 50)
    value = (weight * np.clip(t_true[:, None], start, stop)).sum(axis=1)
    t = solvers.ramp_root(weight, start, stop, value)
    np.testing.assert_allclose((weight * np.clip(t[:, None], start, stop)).sum(axis=1), value)
    squares = (weight * np.clip(np.abs(t_true)[:, None], 0, stop + 1) ** 2).sum(axis=1)
    t = solvers.ramp_root(weight, np.zeros_like(stop), stop + 1, squares, square=True)
    np.testing.assert_allclose((weight * np.clip(t[:, None], 0, stop + 1) ** 2).sum(1), squares)


# ---------------------------------------------------------------------- arguments
def test_non_adversarial_starting_points_raise(backend: str) -> None:
    oracle = BoxOracle(n=4, d=16, classes=4, seed=3)
    x, labels = native(backend, oracle.x), native(backend, oracle.labels)
    with pytest.raises(ValueError, match=r"starting_points: .* 4 of 4 starts are not adversarial"):
        attacks.L2BrendelBethgeAttack(steps=2)(
            oracle.model(backend), x, labels, epsilons=None, starting_points=x
        )


def test_failing_init_attack_raises(backend: str) -> None:
    oracle = BoxOracle(n=4, d=16, classes=4, seed=3)
    with pytest.raises(ValueError, match="init_attack: "):
        attacks.L2BrendelBethgeAttack(steps=2, init_attack=_Identity())(
            oracle.model(backend),
            native(backend, oracle.x),
            native(backend, oracle.labels),
            epsilons=None,
        )


class _Identity(attacks.MinimizationAttack):
    """An init attack that finds nothing: it returns the inputs."""

    norm = attacks.L2BrendelBethgeAttack.norm

    def perturb(self, model, inputs, criterion, early_stop=None):  # type: ignore[no-untyped-def]
        return inputs


def test_foolbox_arguments() -> None:
    attack = attacks.LinfBrendelBethgeAttack()
    assert attacks.LinfBrendelBethgeAttack is attacks.LinfinityBrendelBethgeAttack
    assert (attack.overshoot, attack.steps, attack.lr, attack.lr_decay) == (1.1, 1000, 1e-3, 0.5)
    assert (attack.lr_num_decay, attack.momentum, attack.binary_search_steps) == (20, 0.8, 10)
    attacks.L1BrendelBethgeAttack(tensorboard=None)
    with pytest.warns(UserWarning, match="tensorboard"):
        attacks.L1BrendelBethgeAttack(tensorboard="runs")
    for bad in (dict(overshoot=2.5), dict(momentum=1.0), dict(steps=0), dict(lr=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            attacks.L2BrendelBethgeAttack(**bad)


# ---------------------------------------------------------------------- Foolbox 3.3.4
@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", [cls.__name__ for cls in BB.values()])
def test_as_strong_as_foolbox_from_the_same_starts(name: str) -> None:
    """On the trained digits CNN, from the same starting points: success at least Foolbox's
    and median size at most 1.01x Foolbox's on the samples both solve. Foolbox's attack needs
    numba (not a dependency of advlib): skipped without it."""
    pytest.importorskip("numba")
    fb = pytest.importorskip("foolbox")
    torch = pytest.importorskip("torch")
    import advlib

    net = advlib.zoo.digits_cnn_network("torch").eval()
    x, y = advlib.zoo.digits("test")
    x, y = torch.as_tensor(x[:24]), torch.as_tensor(y[:24])
    starts, found = _noise_starts(net, x, y)
    x, y, starts = x[found], y[found], starts[found]
    p = {v.__name__: k for k, v in BB.items()}[name]
    with warnings.catch_warnings():  # Foolbox's notice that numba compiles its solvers
        warnings.simplefilter("ignore")
        theirs = getattr(fb.attacks, name)(steps=60).run(
            fb.PyTorchModel(net, bounds=(0, 1)), x, y, starting_points=starts
        )
    ours = getattr(attacks, name)(steps=60, lr=1e-3 * len(x)).run(  # Foolbox 3's radius
        advlib.PyTorchModel(net, bounds=(0, 1)), x, y, starting_points=starts
    )
    solved = [(net(a).argmax(-1) != y).numpy() for a in (theirs, ours)]
    assert solved[1].mean() >= solved[0].mean()
    both = solved[0] & solved[1]
    sizes = [_sizes(x.numpy(), a.detach().numpy(), p)[both] for a in (theirs, ours)]
    assert np.median(sizes[1]) <= 1.01 * np.median(sizes[0])


def _noise_starts(net, x, y):  # type: ignore[no-untyped-def]
    """Per sample the first of 200 uniform noise images that the network misclassifies."""
    import torch

    rng = np.random.default_rng(0)
    starts, found = x.clone(), (net(x).argmax(-1) != y)
    for _ in range(200):
        noise = torch.as_tensor(rng.uniform(0, 1, tuple(x.shape)).astype(np.float32))
        adversarial = net(noise).argmax(-1) != y
        starts[adversarial & ~found] = noise[adversarial & ~found]
        found |= adversarial
    return starts, found.numpy()
