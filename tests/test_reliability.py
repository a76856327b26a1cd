"""Reliability: chunked batches, empty batches, overflowing models, no side effects."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import LinearOracle, cnn_model, host_memory, native, to_numpy

import advlib
from advlib import attacks

X = np.random.default_rng(5).uniform(0, 1, (50, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize(
    "attack",
    [attacks.FGSM(), attacks.L2PGD(steps=5, seed=3), attacks.MIFGSM(steps=3)],
    ids=lambda a: type(a).__name__,
)
def test_batch_size_gives_the_same_result(attack: advlib.Attack, backend: str) -> None:
    model = cnn_model(backend)
    labels = np.arange(50) % 10
    eps = [0.05, 0.5] if attack.norm.name == "linf" else [0.5, 2.0]
    whole = attack(model, X, labels, epsilons=eps)
    chunked = attack(model, X, labels, epsilons=eps, batch_size=16)
    # Random starts are drawn per chunk, so compare only deterministic attacks exactly.
    if not getattr(attack, "random_start", False):
        np.testing.assert_allclose(to_numpy(whole.clipped), to_numpy(chunked.clipped), atol=1e-6)
        np.testing.assert_array_equal(whole.success, chunked.success)
    assert to_numpy(chunked.clipped).shape == (2, *X.shape)
    assert chunked.success.shape == (2, 50)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1"):
        attack(model, X, labels, epsilons=eps, batch_size=0)


def test_empty_batch_returns_empty_results(backend: str) -> None:
    model = cnn_model(backend)
    empty = native(backend, X[:0])
    raw, clipped, success = attacks.LinfPGD(steps=2)(
        model, empty, native(backend, np.zeros(0, np.int64)), epsilons=[0.1, 0.2]
    )
    assert to_numpy(clipped).shape == (2, 0, 1, 8, 8)
    assert to_numpy(success).shape == (2, 0)
    assert type(raw[0]) is type(empty)


def test_target_equal_to_label_is_refused(backend: str) -> None:
    model = cnn_model(backend)
    labels = np.arange(50) % 10
    criterion = advlib.TargetedMisclassification(labels, labels=labels)
    with pytest.raises(ValueError, match=r"target_classes: must differ.*50 of 50"):
        attacks.FGSM()(model, X, criterion, epsilons=0.1)


def _overflowing_model(backend: str, oracle: LinearOracle) -> advlib.Model:
    """Linear logits, NaN for every sample whose first feature is below 0.2."""
    w, b = oracle.weights["fc1.w"], oracle.weights["fc1.b"]
    if backend == "torch":
        import torch

        def net(x):
            return x @ torch.as_tensor(w) + torch.as_tensor(b) + torch.log(x[:, :1] - 0.2) * 0

    elif backend == "tensorflow":
        import tensorflow as tf

        def net(x):
            return x @ tf.constant(w) + tf.constant(b) + tf.math.log(x[:, :1] - 0.2) * 0

    else:
        import jax.numpy as jnp

        def net(x):
            return x @ jnp.asarray(w) + jnp.asarray(b) + jnp.log(x[:, :1] - 0.2) * 0

    return getattr(
        advlib, {"torch": "PyTorchModel", "tensorflow": "TensorFlowModel"}.get(backend, "JAXModel")
    )(net, bounds=(0, 1))


@pytest.mark.parametrize("memory", ["host", "device"])
def test_nan_samples_fail_without_poisoning_the_others(backend: str, memory: str) -> None:
    """Both ways of finding them: NumPy on host memory, a compiled reduction on a device."""
    oracle = LinearOracle(n=64, shape=(20,), classes=4, seed=9)
    oracle.weights["fc1.w"][0] = 0  # feature 0 only switches NaN on; attacks never move it
    model = _overflowing_model(backend, oracle)
    x = oracle.x.copy()
    x[:8, 0] = 0.1  # these samples produce NaN logits and gradients
    good = slice(8, None)
    attack = attacks.L2BasicIterativeAttack(steps=10)
    with host_memory(model, memory == "host"), pytest.warns(UserWarning, match="NaN or infinite"):
        _raw, clipped, success = attack(model, x, oracle.labels, epsilons=1.0)
    reference = attack(model, x[good], oracle.labels[good], epsilons=1.0)
    np.testing.assert_array_equal(clipped[:8], x[:8])
    assert not success[:8].any()
    np.testing.assert_allclose(clipped[good], reference.clipped, atol=1e-6)
    np.testing.assert_array_equal(success[good], reference.success)
    assert success[good].any()


@pytest.mark.tensorflow
def test_keras_weights_unchanged() -> None:
    pytest.importorskip("tensorflow")
    model = cnn_model("tensorflow")
    before = [v.numpy().copy() for v in model._model.weights]
    attacks.LinfPGD(steps=3, seed=0)(model, X, np.arange(50) % 10, epsilons=0.1)
    for a, b in zip(before, model._model.weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_framework_random_state_untouched(backend: str) -> None:
    """Attacks draw randomness from their own seeded NumPy generator only."""
    model = cnn_model(backend)
    np_state = np.random.get_state()[1].copy()
    if backend == "torch":
        import torch

        before = torch.get_rng_state()
    attacks.LinfPGD(steps=2, seed=0)(model, X, np.arange(50) % 10, epsilons=0.1)
    attacks.LinfPGD(steps=2)(model, X, np.arange(50) % 10, epsilons=0.1)
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])
    if backend == "torch":
        assert torch.equal(before, torch.get_rng_state())


def test_probability_outputs_warn_once(backend: str) -> None:
    from advlib.attacks import base

    oracle = LinearOracle(n=16, shape=(20,), classes=4, seed=2)
    logits_model = oracle.model(backend)

    class Softmax(type(logits_model)):  # type: ignore[misc]
        def _forward(self, raw):
            import eagerpy as ep

            return ep.softmax(ep.astensor(super()._forward(raw)), axis=-1).raw

    model = Softmax.__new__(Softmax)
    model.__dict__.update(logits_model.__dict__)
    base._warned_probabilities.discard("LinfFastGradientAttack")
    with pytest.warns(UserWarning, match="look like probabilities"):
        attacks.FGSM()(model, oracle.x, oracle.labels, epsilons=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attacks.FGSM()(model, oracle.x, oracle.labels, epsilons=0.01)
