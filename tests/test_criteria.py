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
