"""The decision-based sparse attacks: Pointwise, salt-and-pepper, Sparse-RS, blended uniform
noise, the data-set attack and binarization refinement (issue 13).

Exact references: a linear model on images in [0, 1] has a closed-form minimal L0 (per target
class, change the pixels in order of the logit gain each buys at a vertex of the box), which
Sparse-RS must reach within twice its budget; Pointwise never ends above its start. The
Foolbox comparisons run the same attacks of Foolbox 3.3.4 on the bundled digits CNN with the
same starting points.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from helpers import LinearOracle, minimal_l0, native, to_numpy

import advlib
from advlib.attacks import (
    BinarizationRefinementAttack,
    DatasetAttack,
    LinearSearchBlendedUniformNoiseAttack,
    PointwiseAttack,
    SaltAndPepperNoiseAttack,
    SparseRSAttack,
)
from advlib.attacks.sparse_rs import p_schedule

ORACLE = LinearOracle(n=24, shape=(1, 8, 8), classes=10, seed=3)  # minimal L0: 6 to 8


@functools.cache
def oracle_model(backend: str) -> advlib.Model:
    model: advlib.Model = ORACLE.model(backend)
    return model


def oracle_minimal_l0(oracle: LinearOracle) -> np.ndarray:
    """The exact minimal number of changed values (pixels: one channel) that makes each
    sample misclassified within the box [0, 1]."""
    w, x = oracle.weights["fc1.w"].astype(np.float64), oracle.x.reshape(len(oracle.x), -1)
    return minimal_l0(w, x, x @ w + oracle.weights["fc1.b"], oracle.labels)


def l0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(((a - b).reshape(len(a), -1) != 0).sum(-1))


def l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.norm((a - b).reshape(len(a), -1).astype(np.float64), axis=-1))


# ---------------------------------------------------------------------- linear oracle
def test_sparse_rs_reaches_the_exact_minimal_l0_within_twice_the_budget(any_backend: str) -> None:
    model, minimum = oracle_model(any_backend), oracle_minimal_l0(ORACLE)
    budgets = [4.0, 8.0, 12.0, 16.0]
    x = native(any_backend, ORACLE.x)

    _, clipped, success = SparseRSAttack(n_queries=300, seed=0)(
        model, x, native(any_backend, ORACLE.labels), epsilons=budgets
    )

    success = to_numpy(success)
    for k, eps in enumerate(budgets):
        sizes = l0(to_numpy(clipped[k]), ORACLE.x)
        assert np.all(sizes <= eps)
        assert np.all(success[k][minimum <= eps / 2]), (eps, minimum, success[k])
        assert not np.any(success[k][minimum > eps]), "beyond the exact minimum: a wrong oracle"
    assert success[-1].mean() > success[0].mean()


def test_sparse_rs_schedule_is_the_authors() -> None:
    # p_selection of fra31/sparse-rs for L0 at n_queries = 10000: p_init, then /2, /4, ...
    expected = {0: 0.3, 1: 0.15, 50: 0.15, 51: 0.075, 201: 0.06, 501: 0.05, 1001: 0.0375,
                2001: 0.03, 4001: 0.025, 6001: 0.02, 8001: 0.015}  # fmt: skip
    for query, p in expected.items():
        assert p_schedule(0.3, query, 10000) == pytest.approx(p), query
    assert p_schedule(0.3, 5, 100) == pytest.approx(0.3 / 5)  # rescaled: query 500 of 10000
    assert p_schedule(0.3, 7, 100, constant=True) == pytest.approx(0.15)


def test_pointwise_never_above_its_start_and_below_it_on_most(any_backend: str) -> None:
    model, labels = oracle_model(any_backend), native(any_backend, ORACLE.labels)
    x = native(any_backend, ORACLE.x)
    starts, _, found = SaltAndPepperNoiseAttack(steps=200, seed=0)(model, x, labels, epsilons=None)
    found = to_numpy(found)

    raw, _, success = PointwiseAttack(seed=0)(
        model, x, labels, epsilons=None, starting_points=starts
    )

    start_sizes, sizes = l0(to_numpy(starts), ORACLE.x), l0(to_numpy(raw), ORACLE.x)
    np.testing.assert_array_equal(to_numpy(success), found)
    assert np.all(sizes[found] <= start_sizes[found])
    assert np.mean(sizes[found] < start_sizes[found]) >= 0.5, (sizes, start_sizes)
    assert np.all(sizes[found] >= oracle_minimal_l0(ORACLE)[found])


@pytest.mark.parametrize(
    "make",
    [
        lambda: SaltAndPepperNoiseAttack(steps=50, seed=3),
        lambda: PointwiseAttack(init_attack=SaltAndPepperNoiseAttack(steps=50, seed=1), seed=3),
        lambda: LinearSearchBlendedUniformNoiseAttack(directions=300, steps=50, seed=3),
    ],
    ids=["salt_and_pepper", "pointwise", "blended"],
)
def test_a_samples_result_does_not_depend_on_its_batch(make: Any) -> None:
    model, x, y = oracle_model("numpy"), ORACLE.x, ORACLE.labels
    whole = make()(model, x, y, epsilons=None).raw
    rows = np.array([5, 2, 17])
    alone = make()(model, x[rows], y[rows], epsilons=None, indices=rows).raw
    np.testing.assert_array_equal(alone, whole[rows])


def test_sparse_rs_sample_does_not_depend_on_its_batch() -> None:
    model, x, y = oracle_model("numpy"), ORACLE.x, ORACLE.labels
    whole = SparseRSAttack(n_queries=60, seed=3)(model, x, y, epsilons=3).raw
    rows = np.array([7, 1])
    alone = SparseRSAttack(n_queries=60, seed=3)(model, x[rows], y[rows], epsilons=3, indices=rows)
    np.testing.assert_array_equal(alone.raw, whole[rows])


def test_salt_and_pepper_sets_values_to_the_bounds_and_keeps_adversarial_inputs() -> None:
    model = oracle_model("numpy")
    x, y = ORACLE.x, ORACLE.labels.copy()
    y[0] = (y[0] + 1) % 10  # sample 0 is misclassified as given
    raw, _, success = SaltAndPepperNoiseAttack(steps=100, seed=0)(model, x, y, epsilons=None)
    changed = raw != x
    assert np.all(np.isin(raw[changed], [0.0, 1.0]))
    np.testing.assert_array_equal(raw[0], x[0])
    assert success.mean() >= 0.9


def test_blended_noise_without_adversarial_noise_warns_and_returns_the_inputs() -> None:
    def constant(x: np.ndarray) -> np.ndarray:
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(x), 1))

    model = advlib.NumPyModel(constant, bounds=(0, 1))
    with pytest.warns(UserWarning, match="no adversarial uniform noise within 5 draws"):
        raw, _, success = LinearSearchBlendedUniformNoiseAttack(directions=5, seed=0)(
            model, ORACLE.x, np.zeros(24, dtype=np.int64), epsilons=None
        )
    np.testing.assert_array_equal(raw, ORACLE.x)
    assert not success.any()


@pytest.mark.filterwarnings("ignore:LinearSearchBlendedUniformNoiseAttack")
def test_blended_noise_is_adversarial_or_unchanged(any_backend: str) -> None:
    model = oracle_model(any_backend)
    raw, _, success = LinearSearchBlendedUniformNoiseAttack(steps=40, seed=0)(
        model, native(any_backend, ORACLE.x), native(any_backend, ORACLE.labels), epsilons=None
    )
    raw, success = to_numpy(raw), to_numpy(success)
    assert success.mean() >= 0.5  # some samples have no adversarial noise: returned unchanged
    logits = raw.reshape(24, -1) @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
    np.testing.assert_array_equal(logits.argmax(-1) != ORACLE.labels, success)
    np.testing.assert_array_equal(raw[~success], ORACLE.x[~success])
    assert raw.min() >= 0 and raw.max() <= 1


def test_dataset_attack_returns_the_closest_adversarial_candidate() -> None:
    model = oracle_model("numpy")
    pool = np.random.default_rng(5).uniform(0, 1, (40, 1, 8, 8)).astype(np.float32)
    attack = DatasetAttack()
    attack.feed(model, pool[:25])
    attack.feed(model, pool[25:])
    raw, _, success = attack(model, ORACLE.x, ORACLE.labels, epsilons=None)
    predictions = (pool.reshape(40, -1) @ ORACLE.weights["fc1.w"]).argmax(-1)
    for i in range(24):
        other = predictions != ORACLE.labels[i]
        distances = np.where(other, l2(pool, np.broadcast_to(ORACLE.x[i], pool.shape)), np.inf)
        assert success[i] == other.any()
        if other.any():
            np.testing.assert_array_equal(raw[i], pool[int(np.argmin(distances))])


def test_dataset_attack_without_data_says_how_to_feed_it() -> None:
    with pytest.raises(ValueError, match=r"feed\(model, inputs\)"):
        DatasetAttack()(oracle_model("numpy"), ORACLE.x, ORACLE.labels, epsilons=None)


def test_binarization_refinement_needs_starting_points() -> None:
    with pytest.raises(ValueError, match="starting_points"):
        BinarizationRefinementAttack()(oracle_model("numpy"), ORACLE.x, ORACLE.labels)
    with pytest.raises(ValueError, match="included_in"):
        BinarizationRefinementAttack(included_in="middle")


# ---------------------------------------------------------------------- against Foolbox
fb_reference = pytest.importorskip("foolbox")
torch = pytest.importorskip("torch")
N = 64


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any, Any]:
    net = advlib.zoo.digits_cnn_network("torch").eval()
    x, y = advlib.zoo.digits("test")
    return net, torch.as_tensor(x[:N]), torch.as_tensor(y[:N])


def _genuine(model: Any, adv: Any, labels: Any) -> np.ndarray:
    return np.asarray((model(adv).argmax(-1) != labels).numpy())


def _models(net: Any) -> tuple[advlib.Model, Any]:
    """``net`` wrapped by advlib and by Foolbox, bounds (0, 1)."""
    return advlib.PyTorchModel(net, bounds=(0, 1)), fb_reference.PyTorchModel(net, bounds=(0, 1))


def _no_worse(fb_model: Any, x: Any, y: Any, ours: Any, theirs: Any, distance: Any) -> None:
    """Ours fools (by Foolbox's model) at least as many samples as Foolbox, at a median
    ``distance`` to ``x`` over the samples both fool at most 1% larger."""
    xn = x.numpy()
    mine, its = distance(ours.numpy(), xn), distance(theirs.numpy(), xn)
    ok_ours, ok_theirs = _genuine(fb_model, ours, y), _genuine(fb_model, theirs, y)
    assert ok_ours.mean() >= ok_theirs.mean(), (ok_ours.mean(), ok_theirs.mean())
    both = ok_ours & ok_theirs
    assert np.median(mine[both]) <= 1.01 * np.median(its[both]), (
        np.median(mine[both]), np.median(its[both]),
    )  # fmt: skip


@pytest.mark.torch
@pytest.mark.slow
def test_pointwise_no_worse_than_foolbox_from_the_same_starts(digits: Any) -> None:
    net, x, y = digits
    ours_model, fb_model = _models(net)
    starts = SaltAndPepperNoiseAttack(steps=300, seed=0)(ours_model, x, y, epsilons=None).raw
    ok = _genuine(fb_model, starts, y)
    x, y, starts = x[ok], y[ok], starts[ok]
    torch.manual_seed(0)
    theirs = fb_reference.attacks.PointwiseAttack().run(fb_model, x, y, starting_points=starts)
    ours = PointwiseAttack(seed=0)(ours_model, x, y, epsilons=None, starting_points=starts).raw
    _no_worse(fb_model, x, y, ours, theirs, l0)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["SaltAndPepperNoiseAttack", "LinearSearchBlendedUniformNoiseAttack"]
)
def test_noise_attacks_no_worse_than_foolbox(digits: Any, name: str) -> None:
    net, x, y = digits
    ours_model, fb_model = _models(net)
    torch.manual_seed(0)
    theirs = getattr(fb_reference.attacks, name)().run(fb_model, x, y)
    ours = getattr(advlib.attacks, name)(seed=0)(ours_model, x, y, epsilons=None).raw
    _no_worse(fb_model, x, y, ours, theirs, l2)


@pytest.mark.torch
def test_dataset_attack_no_worse_than_foolbox(digits: Any) -> None:
    net, x, y = digits
    ours_model, fb_model = _models(net)
    theirs_attack, ours_attack = fb_reference.attacks.DatasetAttack(), DatasetAttack()
    theirs_attack.feed(fb_model, x)
    ours_attack.feed(ours_model, x)
    np.random.seed(0)  # Foolbox shuffles with NumPy's global generator
    theirs = theirs_attack.run(fb_model, x, y)
    ours = ours_attack(ours_model, x, y, epsilons=None).raw
    _no_worse(fb_model, x, y, ours, theirs, l2)


@pytest.mark.torch
def test_binarization_refinement_equals_foolbox_on_a_binarizing_model(digits: Any) -> None:
    net, x, y = digits
    ours_model, fb_model = _models(torch.nn.Sequential(_Binarize(), net).eval())
    starts = SaltAndPepperNoiseAttack(steps=100, seed=0)(ours_model, x, y, epsilons=None).raw
    ok = _genuine(fb_model, starts, y)
    x, y, starts = x[ok], y[ok], starts[ok]
    theirs = fb_reference.attacks.BinarizationRefinementAttack().run(
        fb_model, x, y, starting_points=starts
    )
    ours = BinarizationRefinementAttack()(ours_model, x, y, epsilons=None, starting_points=starts)
    np.testing.assert_array_equal(ours.raw.numpy(), theirs.numpy())
    assert to_numpy(ours.success).all()
    assert np.all(l2(ours.raw.numpy(), x.numpy()) <= l2(starts.numpy(), x.numpy()))


class _Binarize(torch.nn.Module):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return (x >= 0.5).to(x.dtype)
