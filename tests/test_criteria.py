"""Criteria on known logits, and their combinations."""

from __future__ import annotations

import eagerpy as ep
import numpy as np
import pytest
from helpers import native, wrap_model

import advlib

LOGITS = np.array(
    [[3.0, 2.0, 1.0, 0.0], [0.0, 3.0, 2.0, 1.0], [1.0, 0.0, 3.0, 2.0], [2.0, 1.0, 0.0, 3.0]],
    dtype=np.float32,
)
LABELS = np.array([0, 2, 3, 1])  # ranks of the true class: 0, 1, 1, 2


def _evaluate(criterion: advlib.Criterion, backend: str) -> np.ndarray:
    model = wrap_model(backend, lambda x: x)
    outputs = ep.astensor(native(backend, LOGITS))
    bound = criterion.bind(model, outputs)
    return bound(outputs, outputs).numpy()


def test_misclassification(any_backend: str) -> None:
    got = _evaluate(advlib.Misclassification(LABELS), any_backend)
    np.testing.assert_array_equal(got, [False, True, True, True])


def test_targeted(any_backend: str) -> None:
    got = _evaluate(advlib.TargetedMisclassification(np.array([0, 0, 2, 2])), any_backend)
    np.testing.assert_array_equal(got, [True, False, True, False])


@pytest.mark.parametrize(
    ("k", "expected"), [(1, [0, 1, 1, 1]), (2, [0, 0, 0, 1]), (3, [0, 0, 0, 0])]
)
def test_top_k(k: int, expected: list[int], any_backend: str) -> None:
    got = _evaluate(advlib.TopKMisclassification(LABELS, k=k), any_backend)
    np.testing.assert_array_equal(got, np.array(expected, dtype=bool))


def test_combinations(any_backend: str) -> None:
    mis = advlib.Misclassification(LABELS)
    target = advlib.TargetedMisclassification(np.array([0, 0, 2, 2]))
    np.testing.assert_array_equal(_evaluate(mis & target, any_backend), [False, False, True, False])
    np.testing.assert_array_equal(_evaluate(mis | target, any_backend), [True, True, True, True])
    with pytest.raises(TypeError, match="combine only with criteria"):
        mis & LABELS  # type: ignore[operator]


def test_gradient_target_of_combinations() -> None:
    mis = advlib.Misclassification(LABELS)
    target = advlib.TargetedMisclassification(LABELS)
    assert (target & mis).gradient_target()[1] is True
    assert (mis | target).gradient_target()[1] is False


class _Odd(advlib.Criterion):
    """A user's criterion with only __call__ (as Foolbox's): odd top class; native answer."""

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> object:
        return (outputs.argmax(axis=-1) % 2 == 1).raw


def test_a_user_criterion_binds_and_slices_to_itself(any_backend: str) -> None:
    criterion = _Odd()
    model = wrap_model(any_backend, lambda x: x)
    outputs = ep.astensor(native(any_backend, LOGITS))
    bound = criterion.bind(model, outputs)
    assert repr(bound) == repr(criterion) and bound.sliced(1, 3) is bound
    verdict = bound(outputs, outputs)
    assert isinstance(verdict, ep.Tensor) and type(verdict) is type(outputs)
    np.testing.assert_array_equal(verdict.numpy(), [False, True, False, True])
    np.testing.assert_array_equal(
        _evaluate(advlib.Misclassification(LABELS) & criterion, any_backend),
        [False, True, False, True],
    )
    with pytest.raises(ValueError, match="gives loss-based attacks"):
        bound.gradient_target()


# ---------------------------------------------------------------------- chosen targets
def _bind(criterion: advlib.Criterion, backend: str) -> advlib.Criterion:
    model = wrap_model(backend, lambda x: x)
    return criterion.bind(model, ep.astensor(native(backend, LOGITS)))


def test_random_targets_differ_from_the_labels(any_backend: str) -> None:
    labels = np.random.default_rng(0).integers(0, 4, 400)
    logits = np.zeros((400, 4), np.float32)
    model = wrap_model(any_backend, lambda x: x)
    criterion = advlib.criteria.RandomTargetedMisclassification(labels, seed=3)
    bound = criterion.bind(model, ep.astensor(native(any_backend, logits)))
    assert isinstance(bound, advlib.TargetedMisclassification)
    targets = bound.gradient_target()[0].numpy()
    assert np.all(targets != labels) and targets.min() >= 0 and targets.max() <= 3
    counts = np.bincount(targets[labels == 0], minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 0.2 * counts.sum()  # all three others drawn
    again = criterion.bind(model, ep.astensor(native(any_backend, logits)))
    np.testing.assert_array_equal(again.gradient_target()[0].numpy(), targets)
    other = advlib.criteria.RandomTargetedMisclassification(labels, seed=4)
    assert not np.array_equal(other.bind(model, ep.astensor(native(any_backend, logits)))
                              .gradient_target()[0].numpy(), targets)  # fmt: skip
    few = advlib.criteria.RandomTargetedMisclassification(labels % 2, num_classes=2)
    two = few.bind(model, ep.astensor(native(any_backend, logits)))
    np.testing.assert_array_equal(two.gradient_target()[0].numpy(), 1 - labels % 2)


def test_least_likely_targets(any_backend: str) -> None:
    """The rank-th smallest logit of the clean inputs, the label excluded."""
    criterion = advlib.criteria.LeastLikelyTargetedMisclassification(LABELS, LOGITS)
    targets = _bind(criterion, any_backend).gradient_target()[0].numpy()
    np.testing.assert_array_equal(targets, [3, 0, 1, 2])
    second = advlib.criteria.LeastLikelyTargetedMisclassification(LABELS, LOGITS, rank=2)
    np.testing.assert_array_equal(_bind(second, any_backend).gradient_target()[0].numpy(),
                                  [2, 3, 0, 0])  # fmt: skip
    with pytest.raises(ValueError, match="rank: a model with 4 outputs"):
        _bind(advlib.criteria.LeastLikelyTargetedMisclassification(LABELS, LOGITS, rank=4),
              any_backend)  # fmt: skip
    with pytest.raises(ValueError, match="inputs: expected one input per label"):
        _bind(advlib.criteria.LeastLikelyTargetedMisclassification(LABELS, LOGITS[:2]),
              any_backend)  # fmt: skip


def test_chosen_targets_work_with_targeted_attacks() -> None:
    from helpers import cnn_model

    model = cnn_model("numpy")
    x = np.random.default_rng(0).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
    labels = np.asarray(model(model.to_tensor(x, "x", floating=True)[0]).numpy()).argmax(-1)
    criterion = advlib.criteria.RandomTargetedMisclassification(labels, seed=0)
    _, clipped, success = advlib.attacks.GenAttack(steps=20, seed=0)(
        model, x, criterion, epsilons=0.3)  # fmt: skip
    targets = criterion.bind(model, model(model.to_tensor(x, "x", floating=True)[0]))
    predicted = np.asarray(model(model.to_tensor(clipped, "x", floating=True)[0]).numpy())
    np.testing.assert_array_equal(
        success, predicted.argmax(-1) == targets.gradient_target()[0].numpy())
    assert success.any()
    with pytest.raises(TypeError, match="chooses its targets when an attack binds it"):
        criterion(None, None)  # type: ignore[arg-type]
