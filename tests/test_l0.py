"""L0: the norms (changed elements, changed pixels), L0-FMN and sigma-zero against the exact
minimal L0 of a linear model in a box, L0-FMN against Foolbox 3.3.4's, and Sparse L1 Descent
against Foolbox's step by step."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, minimal_l0, native, to_numpy

import advlib
from advlib import TargetedMisclassification, attacks
from advlib.attacks.base import MinimizationAttack
from advlib.norms import NORMS, L0PixelNorm, l0


# ---------------------------------------------------------------------- references
def top_k(delta: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``delta`` (N, d): the ``k`` largest magnitudes kept, the rest zeroed."""
    out = np.zeros_like(delta)
    for i, row in enumerate(delta):
        keep = np.argsort(-np.abs(row), kind="stable")[:k]
        out[i, keep] = row[keep]
    return out


def tensor(backend: str, array: np.ndarray) -> ep.Tensor:
    return ep.astensor(native(backend, array))


# A batch whose magnitudes are distinct within each row (the kept set is unique).
RNG = np.random.default_rng(0)
DELTA = (RNG.permutation(60).reshape(3, 20) + 1.0) * RNG.choice([-1.0, 1.0], (3, 20)) / 60
DELTA[:, ::3] = 0.0  # some unchanged elements


# ---------------------------------------------------------------------- L0 norm
def test_l0_counts_changed_elements(any_backend: str) -> None:
    counts = to_numpy(l0(tensor(any_backend, DELTA.astype(np.float32))).raw)
    np.testing.assert_array_equal(counts, (DELTA != 0).sum(axis=1))


@pytest.mark.parametrize("eps", [0.0, 1.0, 2.5, 5.0, 13.0, 100.0])
def test_l0_clip_keeps_the_largest_changes(any_backend: str, eps: float) -> None:
    clipped = to_numpy(l0.clip(tensor(any_backend, DELTA.astype(np.float32)), eps).raw)
    np.testing.assert_array_equal(clipped, top_k(DELTA, int(eps)).astype(np.float32))


def test_l0_clip_takes_one_epsilon_per_sample(any_backend: str) -> None:
    delta = tensor(any_backend, DELTA.astype(np.float32))
    eps = tensor(any_backend, np.array([0.0, 3.0, 7.9999999], dtype=np.float32))
    clipped = to_numpy(l0.clip(delta, eps).raw)
    expected = np.concatenate([top_k(DELTA[i : i + 1], k) for i, k in enumerate((0, 3, 8))])
    np.testing.assert_array_equal(clipped, expected.astype(np.float32))


def test_l0_projects_on_images_and_fits_exactly(any_backend: str) -> None:
    origin = RNG.uniform(0, 1, (3, 2, 5, 2)).astype(np.float32)
    x = np.clip(origin + DELTA.reshape(origin.shape), 0, 1).astype(np.float32)
    projected = to_numpy(l0.project(tensor(any_backend, x), tensor(any_backend, origin), 4).raw)
    expected = origin + top_k((x - origin).reshape(3, -1), 4).reshape(origin.shape)
    np.testing.assert_allclose(projected, expected, rtol=0, atol=1e-7)
    fitted = l0.fit(tensor(any_backend, x), tensor(any_backend, origin), 4.0, (0.0, 1.0))
    np.testing.assert_array_equal(to_numpy(fitted.raw), projected)


def test_l0_has_no_dual_and_no_random_start() -> None:
    with pytest.raises(ValueError, match="dual"):
        l0.dual  # noqa: B018
    with pytest.raises(ValueError, match="random_start"):
        l0.sample_unit_ball(np.random.default_rng(0), (2, 3))  # type: ignore[arg-type]
    assert NORMS["l0"] is l0 and l0.largest(1.0, 64) == 64
    assert [norm.largest(2.0, 16) for norm in (NORMS["l1"], NORMS["l2"])] == [32.0, 8.0]
    assert NORMS["linf"].largest(2.0, 16) == 2.0


# ---------------------------------------------------------------------- pixels
PIXELS = RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)  # (N, C, H, W)
PIXELS[:, :, ::2, :] = 0.0  # unchanged pixels
PIXELS[0, 1:, 1, :] = 0.0  # pixels with one changed channel of three


def pixel_reference(delta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Changed pixels per sample and the perturbation with the k pixels of the largest L2
    change kept, for channels-first (N, C, H, W)."""
    changed = (delta != 0).any(axis=1).reshape(len(delta), -1).sum(axis=1)
    strength = np.sqrt((delta.astype(np.float64) ** 2).sum(axis=1)).reshape(len(delta), -1)
    keep = top_k(strength, k) != 0
    return changed, delta * keep.reshape(len(delta), 1, *delta.shape[2:])


@pytest.mark.parametrize("k", [0, 3, 100])
def test_pixel_norm_counts_and_keeps_whole_pixels(any_backend: str, k: int) -> None:
    changed, expected = pixel_reference(PIXELS, k)
    norm = L0PixelNorm(channel_axis=1)
    delta = tensor(any_backend, PIXELS)
    np.testing.assert_array_equal(to_numpy(norm(delta).raw), changed)
    np.testing.assert_array_equal(to_numpy(norm.clip(delta, float(k)).raw), expected)
    assert changed.tolist() != to_numpy(l0(delta).raw).tolist()  # elements != pixels here


def test_pixel_norm_channels_last(any_backend: str) -> None:
    changed, expected = pixel_reference(PIXELS, 3)
    last = np.moveaxis(PIXELS, 1, -1)
    for axis in (-1, 3):
        norm = L0PixelNorm(channel_axis=axis)
        np.testing.assert_array_equal(to_numpy(norm(tensor(any_backend, last)).raw), changed)
        clipped = to_numpy(norm.clip(tensor(any_backend, last), 3.0).raw)
        np.testing.assert_array_equal(clipped, np.moveaxis(expected, 1, -1))


@pytest.mark.parametrize("axis", [0, 1.0, True, 4, -5])
def test_pixel_norm_refuses_a_wrong_channel_axis(axis: Any) -> None:
    with pytest.raises(ValueError, match="channel_axis"):
        L0PixelNorm(channel_axis=axis)(ep.astensor(PIXELS))


# ---------------------------------------------------------------------- linear oracle
class SparseOracle(LinearOracle):
    """A linear model whose inputs lean towards their class's weights: a wide margin, so that
    fooling a sample takes several changed elements (2 to 11 here), not one."""

    def __init__(self, n: int = 64, shape: tuple[int, ...] = (1, 8, 8), seed: int = 0) -> None:
        super().__init__(n=1, shape=shape, classes=5, seed=seed)
        rng = np.random.default_rng(seed + 100)
        w = self.weights["fc1.w"]
        lean = np.tanh(3 * (w[:, rng.integers(0, 5, n)] - w.mean(axis=1, keepdims=True))).T
        x = 0.5 + 0.4 * lean + rng.uniform(-0.05, 0.05, lean.shape)
        self.x = x.reshape(n, *shape).astype(np.float32)
        self.logits = self.x.reshape(n, -1) @ w + self.weights["fc1.b"]
        self.labels = self.logits.argmax(-1)

    def optimal_l0(self, targets: np.ndarray | None = None) -> np.ndarray:
        """The exact minimal number of changed elements within [0, 1] per sample.

        For one class j the margin falls by at most |a_i| * room_i when element i moves to
        the bound that helps j (a = w_j - w_y); the fewest elements are those of the largest
        such falls. The optimum is the minimum over j (a perturbation that fools the model
        makes some j overtake the label)."""
        w = self.weights["fc1.w"].astype(np.float64)
        x = self.x.reshape(len(self.x), -1).astype(np.float64)
        logits = x @ w + self.weights["fc1.b"].astype(np.float64)
        return minimal_l0(w, x, logits, self.labels, targets)


ORACLE = SparseOracle()
OPTIMAL = ORACLE.optimal_l0()


def test_the_oracle_needs_several_elements() -> None:
    assert OPTIMAL.min() >= 2 and np.median(OPTIMAL) >= 5 and np.isfinite(OPTIMAL).all()


L0_CASES = {
    "L0FMN": attacks.L0FMNAttack(steps=100),
    "SigmaZero": attacks.SigmaZeroAttack(steps=300),
}


@pytest.mark.parametrize("name", L0_CASES)
def test_l0_attacks_near_the_exact_optimum(name: str, backend: str) -> None:
    attack = L0_CASES[name]
    model = ORACLE.model(backend)
    raw, _, success = attack(
        model, native(backend, ORACLE.x), native(backend, ORACLE.labels), epsilons=None
    )
    raw = to_numpy(raw)
    assert to_numpy(success).all()
    assert raw.min() >= 0 and raw.max() <= 1
    ratios = (raw != ORACLE.x).reshape(len(raw), -1).sum(axis=1) / OPTIMAL
    assert ratios.min() >= 1, "below the exact optimum: the oracle or the count is wrong"
    assert np.median(ratios) <= 1.15, f"median ratio {np.median(ratios):.3f}"


@pytest.mark.parametrize("name", L0_CASES)
def test_targeted_l0_attacks_reach_the_target(name: str, backend: str) -> None:
    targets = (ORACLE.labels + 1) % 5
    model = ORACLE.model(backend)
    criterion = TargetedMisclassification(native(backend, targets))
    raw, _, success = L0_CASES[name](model, native(backend, ORACLE.x), criterion, epsilons=None)
    logits = to_numpy(model(native(backend, to_numpy(raw))))
    found = to_numpy(success)
    assert found.mean() >= 0.9
    np.testing.assert_array_equal(logits.argmax(-1)[found], targets[found])
    counts = (to_numpy(raw) != ORACLE.x).reshape(len(ORACLE.x), -1).sum(axis=1)
    assert (counts[found] >= ORACLE.optimal_l0(targets)[found]).all()


def test_l0_budgets_keep_the_largest_changes(backend: str) -> None:
    """With epsilons, ``clipped`` changes at most floor(eps) elements and succeeds exactly
    where the minimal adversarial is within the budget (a linear model: the kept elements
    are those of the minimal one)."""
    model = ORACLE.model(backend)
    inputs, labels = native(backend, ORACLE.x), native(backend, ORACLE.labels)
    attack = attacks.L0FMNAttack(steps=100)
    raw, clipped, success = attack(model, inputs, labels, epsilons=[4.0, 6.5])
    sizes = (to_numpy(raw[0]) != ORACLE.x).reshape(len(ORACLE.x), -1).sum(axis=1)
    for eps, c, s in zip((4, 6), clipped, to_numpy(success)):
        counts = (to_numpy(c) != ORACLE.x).reshape(len(ORACLE.x), -1).sum(axis=1)
        assert counts.max() <= eps
        assert s[sizes <= eps].all()
        assert not s[eps < OPTIMAL].any()


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (attacks.SigmaZeroAttack, dict(steps=0), "steps"),
        (attacks.SigmaZeroAttack, dict(lr=0.0), "lr"),
        (attacks.SigmaZeroAttack, dict(sigma=-1.0), "sigma"),
        (attacks.SigmaZeroAttack, dict(threshold=1.5), "threshold"),
        (attacks.SigmaZeroAttack, dict(threshold_factor=-0.1), "threshold_factor"),
        (attacks.L0FMNAttack, dict(gamma=1.0), "gamma"),
        (attacks.SparseL1DescentAttack, dict(quantile=1.5), "quantile"),
        (attacks.SparseL1DescentAttack, dict(quantile="high"), "quantile"),
    ],
)
def test_bad_arguments_are_named(cls: type, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        cls(**kwargs)


def test_l0_attacks_measure_l0() -> None:
    assert attacks.L0FMNAttack.norm is l0 and attacks.SigmaZeroAttack.norm is l0
    assert attacks.L0FMNAttack().distance is advlib.distances.l0
    assert attacks.SparseL1DescentAttack.norm is NORMS["l1"]


# ---------------------------------------------------------------------- against Foolbox
def _digits() -> tuple[Any, Any, Any]:
    torch = pytest.importorskip("torch")
    net = advlib.zoo.digits_cnn_network("torch").eval()
    x, y = advlib.zoo.digits("test")
    return net, torch.as_tensor(x), torch.as_tensor(y)


def _genuine(fb: Any, attack: Any, net: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: whether ``attack.run`` found a misclassified point, and its L0."""
    model = fb.PyTorchModel(net, bounds=(0, 1))
    raw = attack.run(model, x, y)
    fooled = (model(raw).argmax(-1) != y).numpy()
    return fooled, (raw != x).flatten(1).sum(-1).numpy()


@pytest.mark.torch
@pytest.mark.slow
def test_l0fmn_against_foolbox() -> None:
    """On the digits CNN: success within each L0 budget at least Foolbox's, up to 2 points
    (Foolbox keeps epsilon + 1 elements per step, so it never returns a single changed
    element: advlib finds one-element adversarials for about a quarter of the digits), and the
    same median L0 on the samples both fool."""
    fb = pytest.importorskip("foolbox")
    net, x, y = _digits()
    theirs = _genuine(fb, fb.attacks.L0FMNAttack(steps=50), net, x, y)
    ours = _genuine(advlib, attacks.L0FMNAttack(steps=50), net, x, y)
    rates = [[(f & (s <= eps)).mean() for eps in (1, 2, 3, 4)] for f, s in (theirs, ours)]
    assert np.all(np.array(rates[1]) >= np.array(rates[0]) - 0.02), rates
    assert rates[1][0] >= rates[0][0] + 0.1, rates
    both = theirs[0] & ours[0]
    assert np.median(ours[1][both]) <= np.median(theirs[1][both])


@pytest.mark.torch
def test_sparse_l1_steps_match_foolbox() -> None:
    """Foolbox's first steps, exactly: the same coordinates move by the same amounts (later
    Foolbox's iterates leave the L1 ball, see :mod:`advlib.attacks.sparse_l1`)."""
    fb = pytest.importorskip("foolbox")
    net, x, y = _digits()
    x, y = x[:64], y[:64]
    outputs = [
        lib.attacks.SparseL1DescentAttack(steps=3).run(
            lib.PyTorchModel(net, bounds=(0, 1)), x, y, epsilon=3.0
        )
        for lib in (fb, advlib)
    ]
    np.testing.assert_allclose(outputs[1].numpy(), outputs[0].numpy(), rtol=0, atol=1e-6)


def test_sparse_l1_moves_the_top_coordinates_within_the_ball(backend: str) -> None:
    """One step from the input moves only the coordinates whose gradient is at or above the
    quantile, each by stepsize / their count, towards the loss; many steps stay in the ball
    and the bounds."""
    oracle = LinearOracle(n=16, shape=(1, 8, 8), classes=5, seed=3)
    model = oracle.model(backend)
    inputs, labels = native(backend, oracle.x), native(backend, oracle.labels)
    one = to_numpy(
        attacks.SparseL1DescentAttack(steps=1, abs_stepsize=0.3, quantile=0.95).run(
            model, inputs, labels, epsilon=1.0
        )
    )
    moved = (one - oracle.x).reshape(16, -1)
    assert ((moved != 0).sum(axis=1) == 4).all()  # 0.95 * 63 = 59.85: the top 4 of 64
    np.testing.assert_allclose(np.abs(moved).sum(axis=1), 0.3, rtol=1e-5)
    many = to_numpy(attacks.SparseL1DescentAttack(steps=20)(model, inputs, labels, epsilons=1.0)[1])
    assert np.abs(many - oracle.x).reshape(16, -1).sum(axis=1).max() <= 1.0 + 1e-5
    assert many.min() >= 0 and many.max() <= 1


@pytest.mark.parametrize("cls", [attacks.L0FMNAttack, attacks.SigmaZeroAttack])
def test_early_stop_stops_within_the_budget(cls: type[MinimizationAttack], backend: str) -> None:
    model = ORACLE.model(backend)
    inputs, labels = native(backend, ORACLE.x), native(backend, ORACLE.labels)
    raw = to_numpy(cls(steps=100).run(model, inputs, labels, early_stop=20.0))  # type: ignore[call-arg]
    counts = (raw != ORACLE.x).reshape(len(raw), -1).sum(axis=1)
    assert counts.max() <= 20


@pytest.mark.torch
def test_float64_inputs_count_only_the_attacks_changes() -> None:
    """A float32 model attacked with float64 inputs: elements the attack left alone are the
    user's own values in ``clipped`` (not their float32 rounding, which L0 would count)."""
    x64 = ORACLE.x.astype(np.float64) + 1e-9  # not representable in float32
    model = ORACLE.model("torch")
    _, clipped, success = attacks.L0FMNAttack(steps=50)(model, x64, ORACLE.labels, epsilons=None)
    assert clipped.dtype == np.float64 and to_numpy(success).all()
    counts = (clipped != x64).reshape(len(x64), -1).sum(axis=1)
    assert np.median(counts / OPTIMAL) <= 1.15, counts
