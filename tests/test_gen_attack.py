"""GenAttack: targeted Linf adversarials within the budget, per-sample randomness, reduced
noise grids, and strength against Foolbox 3.3.4's on the digits CNN."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cnn_model, foolbox_digits, native, to_numpy

import advlib
from advlib import attacks
from advlib.attacks.gen_attack import resize_matrix

X = np.random.default_rng(7).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)


def _logits(x: np.ndarray) -> np.ndarray:
    model = cnn_model("numpy")
    return np.asarray(to_numpy(model(model.to_tensor(x, "x", floating=True)[0])))


LABELS = _logits(X).argmax(-1)
TARGETS = (LABELS + 1) % 10


def test_targeted_results_within_the_budget(any_backend: str) -> None:
    model, eps = cnn_model(any_backend), 0.3
    criterion = advlib.TargetedMisclassification(native(any_backend, TARGETS))
    raw, clipped, success = attacks.GenAttack(steps=40, seed=0)(
        model, native(any_backend, X), criterion, epsilons=eps)  # fmt: skip
    raw, success = to_numpy(raw), to_numpy(success)
    assert np.abs(raw - X).max() <= eps + 1e-6 and raw.min() >= 0 and raw.max() <= 1
    np.testing.assert_array_equal(success, _logits(to_numpy(clipped)).argmax(-1) == TARGETS)
    assert success.mean() >= 0.5, success


def test_labels_give_an_untargeted_search() -> None:
    result = attacks.GenAttack(steps=20, seed=0)(cnn_model("numpy"), X, LABELS, epsilons=0.2)
    assert result.success.any()


def test_draws_are_per_sample() -> None:
    model, attack = cnn_model("numpy"), attacks.GenAttack(steps=5, seed=1)
    whole = attack.run(model, X, advlib.TargetedMisclassification(TARGETS), epsilon=0.1)
    part = attack.run(model, X[3:], advlib.TargetedMisclassification(TARGETS[3:]), epsilon=0.1,
                      indices=np.arange(3, 6))  # fmt: skip
    np.testing.assert_array_equal(part, whole[3:])


def test_reduced_dims_resizes_smooth_noise() -> None:
    """The noise lives on a (2, 2) grid: bilinear resizing of a constant grid is constant,
    and Foolbox's half-pixel resize of 2 values to 4 is (a, .75a+.25b, .25a+.75b, b)."""
    np.testing.assert_allclose(resize_matrix(4, 2).sum(axis=1), 1.0)
    np.testing.assert_allclose(resize_matrix(4, 2) @ [0.0, 1.0], [0, 0.25, 0.75, 1])
    model = cnn_model("numpy")
    attack = attacks.GenAttack(steps=3, reduced_dims=(2, 2), channel_axis=1, seed=0)
    raw = attack.run(model, np.full_like(X, 0.5), advlib.TargetedMisclassification(TARGETS),
                     epsilon=0.1)  # fmt: skip
    delta = raw - 0.5
    assert np.abs(delta).max() <= 0.1 + 1e-6 and np.abs(delta).max() > 0
    # rows 0-1 / 6-7 of an 8-row resize of 2 rows repeat the edge: equal values
    np.testing.assert_allclose(delta[:, :, 0], delta[:, :, 1], atol=1e-6)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="population"):
        attacks.GenAttack(population=1)
    with pytest.raises(ValueError, match="reduced_dims"):
        attacks.GenAttack(reduced_dims=(2,))
    model = advlib.NumPyModel(lambda x: x.reshape(len(x), -1)[:, :10], bounds=(0, 1))
    with pytest.raises(ValueError, match="channel_axis: GenAttack needs to know"):
        attacks.GenAttack(steps=1, reduced_dims=(2, 2)).run(model, X, LABELS, epsilon=0.1)


@pytest.mark.torch
@pytest.mark.slow
def test_at_least_as_strong_as_foolbox() -> None:
    """Targeted success on the digits CNN at least Foolbox's (within 2 points of 100 samples,
    genuine adversarials: the target predicted, within epsilon and the bounds)."""
    torch = pytest.importorskip("torch")
    fb, net, x, y = foolbox_digits(100)
    targets = (y + 1) % 10
    eps, steps = 0.15, 20

    def rate(lib: object, attack: object) -> float:
        model = lib.PyTorchModel(net, bounds=(0, 1))  # type: ignore[attr-defined]
        criterion = lib.TargetedMisclassification(targets)  # type: ignore[attr-defined]
        _, clipped, _ = attack(model, x, criterion, epsilons=eps)  # type: ignore[operator]
        genuine = (net(clipped).argmax(-1) == targets) & ((clipped - x).abs().amax((1, 2, 3))
                                                          <= eps + 1e-6)  # fmt: skip
        return float(genuine.float().mean())

    torch.manual_seed(0)
    with torch.no_grad():
        theirs = rate(fb, fb.attacks.GenAttack(steps=steps))
        ours = rate(advlib, attacks.GenAttack(steps=steps, seed=0))
    assert ours >= theirs - 0.02, (ours, theirs)
