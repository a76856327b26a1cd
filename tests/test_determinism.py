"""Per-sample determinism: a sample's result does not depend on the batch it is attacked in.

Every attack of the contract table that draws random numbers runs on the same 64 samples with
batch sizes 1, 7 and 64 and in a shuffled order (with the shuffled samples' ids): per-sample
success and perturbations must be identical, bitwise. The model is batch-invariant by
construction (elementwise products summed per sample, no matrix kernel whose blocking depends
on the batch size), so any difference comes from the attack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_contract import ENTRIES, Entry

import advlib
from advlib._random import SampleRandom

N, SHAPE, CLASSES = 64, (1, 8, 8), 10
X = np.random.default_rng(3).uniform(0, 1, (N, *SHAPE)).astype(np.float32)
# Settings the contract table does not use that draw random numbers too: restarts.
RESTARTS = [
    Entry(advlib.attacks.LinfFAB, dict(steps=10, restarts=2), random=True),
    Entry(advlib.attacks.L2FAB, dict(steps=10, restarts=2), random=True),
    Entry(advlib.attacks.LinfAutoPGD, dict(steps=10, restarts=2), random=True),
]
RANDOM = [e for e in ENTRIES if e.random] + RESTARTS


def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    d = int(np.prod(SHAPE))
    return (
        rng.normal(0, 1 / np.sqrt(d), (16, d)).astype(np.float32),
        rng.normal(0, 0.1, 16).astype(np.float32),
        rng.normal(0, 0.5, (CLASSES, 16)).astype(np.float32),
        rng.normal(0, 0.1, CLASSES).astype(np.float32),
    )


def _torch_model() -> Any:
    torch = pytest.importorskip("torch")
    w1, b1, w2, b2 = (torch.from_numpy(w) for w in _weights())

    class Invariant(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            h = (x.flatten(1)[:, None, :] * w1[None]).sum(-1) + b1
            return (torch.tanh(h)[:, None, :] * w2[None]).sum(-1) + b2

    return advlib.PyTorchModel(Invariant().eval(), bounds=(0, 1))


def _numpy_model() -> Any:
    w1, b1, w2, b2 = _weights()

    def forward(x: np.ndarray) -> np.ndarray:
        h = (x.reshape(len(x), 1, -1) * w1[None]).sum(-1) + b1
        return np.asarray((np.tanh(h)[:, None, :] * w2[None]).sum(-1) + b2)

    return advlib.NumPyModel(forward, bounds=(0, 1))


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return {"torch": _torch_model(), "numpy": _numpy_model()}


def _call(entry: Entry, model: Any, x: np.ndarray, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(model(x)).argmax(-1)
    # Minimization attacks: unbounded, and with a budget (they may then stop early).
    eps = [None, entry.epsilons[-1]] if entry.minimization else entry.epsilons[-1]
    result = entry.make()(model, x, labels, epsilons=eps, **kw)
    return np.asarray(result.clipped), np.asarray(result.success)


@pytest.mark.parametrize(
    "entry", RANDOM, ids=[e.name + ("-restarts" if e in RESTARTS else "") for e in RANDOM]
)
def test_results_do_not_depend_on_the_batch(entry: Entry, models: dict[str, Any]) -> None:
    model = models["torch" if entry.attack.requires_grad else "numpy"]
    clipped, success = _call(entry, model, X)
    for batch_size in (1, 7):
        other = _call(entry, model, X, batch_size=batch_size)
        np.testing.assert_array_equal(other[1], success, err_msg=f"batch_size={batch_size}")
        np.testing.assert_array_equal(other[0], clipped, err_msg=f"batch_size={batch_size}")
    order = np.random.default_rng(5).permutation(N)
    shuffled = _call(entry, model, X[order], indices=order)
    np.testing.assert_array_equal(shuffled[1], success[..., order], err_msg="shuffled")
    np.testing.assert_array_equal(shuffled[0], clipped[..., order, :, :, :], err_msg="shuffled")


# Rounds that run stacked in one batch when few samples remain (advlib.attacks._restarts).
# Epsilons at which about half of the 12 samples are broken.
STACKED = [
    Entry(advlib.attacks.LinfAutoPGDTargeted, dict(steps=10, n_target_classes=5), [0.02], True),
    Entry(advlib.attacks.L2AutoPGD, dict(steps=10, restarts=3), [0.2], True),
    Entry(advlib.attacks.L1MALTAttack, dict(steps=10, n_target_classes=3), [0.5], True),
    Entry(advlib.attacks.LinfFAB, dict(steps=10, n_target_classes=5), [0.02]),
    Entry(advlib.attacks.L2FAB, dict(steps=10, n_target_classes=5), [0.2]),
]


@pytest.mark.parametrize("entry", STACKED, ids=[e.name for e in STACKED])
def test_stacked_rounds_give_the_results_of_rounds_in_turn(
    entry: Entry, models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from advlib.attacks import _restarts

    model, x = models["torch"], X[:12]
    labels = np.asarray(model(x)).argmax(-1)
    sizes: list[int] = []

    def run(**kw: Any) -> tuple[np.ndarray, np.ndarray]:
        sizes.clear()
        # one epsilon: minimization attacks stop early, and later rounds get fewer samples
        result = entry.make()(model, x, labels, epsilons=entry.epsilons[-1], **kw)
        return np.asarray(result.clipped), np.asarray(result.success)

    hook = model._model.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    try:
        stacked = run()
        stacked_calls = len(sizes)
        assert max(sizes) <= len(x)  # never more rows than the caller's batch
        run(batch_size=5)
        assert max(sizes) <= 5
        monkeypatch.setattr(_restarts, "_STACK_ROWS", 1)
        in_turn = run()
        assert len(sizes) > stacked_calls, "no rounds were stacked"
    finally:
        hook.remove()
    np.testing.assert_array_equal(stacked[1], in_turn[1])
    np.testing.assert_array_equal(stacked[0], in_turn[0])
    assert 0 < in_turn[1].sum() < in_turn[1].size  # some samples broken, not all


def test_the_batch_invariant_model_is_batch_invariant(models: dict[str, Any]) -> None:
    for model in models.values():
        whole = np.asarray(model(X))
        single = np.concatenate([np.asarray(model(X[i : i + 1])) for i in range(N)])
        np.testing.assert_array_equal(single, whole)


def test_a_samples_draws_depend_on_its_id_only() -> None:
    ids = np.array([5, 9, 2, 7])
    whole = SampleRandom(0, ids)
    draws = [whole.standard_normal((4, 3)), whole.uniform(-1, 1, (4, 2)), whole.integers(3, 9, 4)]
    for rows in ([0], [3, 1], [2, 0, 1]):
        part = SampleRandom(0, ids[rows])
        again = [part.standard_normal((len(rows), 3)), part.uniform(-1, 1, (len(rows), 2))]
        again.append(part.integers(3, 9, len(rows)))
        for a, b in zip(again, draws):
            np.testing.assert_array_equal(a, b[rows])
    assert not np.array_equal(SampleRandom(1, ids).random(4), SampleRandom(0, ids).random(4))


def test_a_fork_reads_one_stream_in_any_pieces() -> None:
    rng = SampleRandom(0, np.arange(3)).fork()
    whole = rng.standard_normal((3, 10))
    pieces = [rng.standard_normal((3, 4), at=0), rng.standard_normal((3, 6), at=4)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)


def test_take_keeps_in_step_with_the_batch() -> None:
    ids = np.arange(6)
    full = SampleRandom(0, ids)
    full.random((6, 2))
    expected = full.random((6, 2))
    sub = SampleRandom(0, ids)
    sub.take([1, 4]).random((2, 2))
    np.testing.assert_array_equal(sub.take([1, 4]).random((2, 2)), expected[[1, 4]])


def test_stacked_copies_draw_what_successive_draws_would() -> None:
    rows = np.array([4, 1, 2])
    one_by_one, stacked = SampleRandom(0, np.arange(6)), SampleRandom(0, np.arange(6))
    expected = [one_by_one.take(rows).uniform(-1, 1, (3, 2)) for _ in range(4)]
    np.testing.assert_array_equal(
        stacked.take(rows, copies=4).uniform(-1, 1, (12, 2)), np.concatenate(expected)
    )
    # and the draws after them are in step
    np.testing.assert_array_equal(stacked.random((6, 3)), one_by_one.random((6, 3)))


def test_draws_have_the_right_distributions() -> None:
    rng = SampleRandom(0, np.arange(2000))
    normal = rng.standard_normal((2000, 50))
    uniform = rng.random((2000, 50))
    # 100k draws: the standard errors are about 0.003 (mean) and 0.002 (std); 5 sigma bounds.
    assert abs(normal.mean()) < 0.016 and abs(normal.std() - 1) < 0.012
    assert abs(uniform.mean() - 0.5) < 0.005 and uniform.min() >= 0 and uniform.max() < 1
    counts = np.bincount(rng.integers(0, 4, (2000, 50)).ravel(), minlength=4)
    assert np.all(np.abs(counts / 100_000 - 0.25) < 0.007)


def test_bad_ids_and_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="indices"):
        attack = advlib.attacks.LinfPGD(steps=1)
        attack(_torch_model(), X[:2], np.array([0, 1]), epsilons=0.1, indices=np.array([0]))
    with pytest.raises(ValueError, match="size"):
        SampleRandom(0, np.arange(3)).random((2, 4))
