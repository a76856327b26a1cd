"""Compiled attack steps: no recompilation per call. (That compiled steps give the results of
eager ones is a property of every attack in tests/test_contract.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import CNN_LAYERS, cnn_weights, native, to_numpy, wrap_model

import advlib
from advlib import attacks
from advlib.zoo.architectures import build

ATTACKS: list[Callable[[], advlib.Attack]] = [
    lambda: attacks.FGSM(),
    lambda: attacks.LinfPGD(steps=5, seed=3),
    lambda: attacks.L2PGD(steps=5, seed=3),
    lambda: attacks.MIFGSM(steps=5),
]
ATTACK_IDS = ["FGSM", "LinfPGD", "L2PGD", "MIFGSM"]
EPSILONS = {"linf": [0.03, 0.1], "l2": [0.3, 1.0]}


def _data(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


class TraceCounter:
    """The CNN as a plain function that counts how often Python runs it.

    Under ``jax.jit`` / ``tf.function`` Python runs the function only while tracing, so the
    count is the number of traces; run eagerly, it counts forward passes.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.net = build(backend, CNN_LAYERS, cnn_weights(0), (1, 8, 8))
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.backend == "tensorflow":
            return self.net(x, training=False)
        return self.net(x)


def _labels(model: advlib.Model, x: np.ndarray) -> np.ndarray:
    tensor, _ = model.to_tensor(x, "x", floating=True)
    return to_numpy(model(tensor).argmax(axis=-1))


@pytest.mark.parametrize("make_attack", ATTACKS, ids=ATTACK_IDS)
def test_repeated_calls_do_not_retrace(
    make_attack: Callable[[], advlib.Attack], backend: str
) -> None:
    if backend == "torch":
        pytest.skip("eager PyTorch has nothing to trace")
    counter = TraceCounter(backend)
    model = wrap_model(backend, counter)
    x = _data()
    labels = native(backend, _labels(model, x))
    attack = make_attack()
    epsilons = EPSILONS[attack.norm.name]
    inputs = native(backend, x)

    attack(model, inputs, labels, epsilons=epsilons)
    traced = counter.calls
    # Other epsilons, another seed, other inputs of the same shape: all the same compilation.
    attack(model, inputs, labels, epsilons=[e / 2 for e in epsilons])
    if hasattr(attack, "seed"):
        attack.seed = 11
    attack(model, native(backend, _data(seed=1)), labels, epsilons=epsilons[0])

    assert traced > 0
    assert counter.calls == traced, f"{counter.calls - traced} retraces after the first call"


def test_eager_model_counts_every_forward_pass(backend: str) -> None:
    """The counter itself works: without compilation every step calls the function."""
    if backend == "torch":
        pytest.skip("the wrapper of a plain torch function is always eager")
    counter = TraceCounter(backend)
    model = wrap_model(backend, counter, compile=False)
    x = _data()
    labels = native(backend, _labels(model, x))
    before = counter.calls

    attacks.LinfPGD(steps=4, seed=0)(model, native(backend, x), labels, epsilons=0.1)

    assert counter.calls - before >= 4


@pytest.mark.tensorflow
def test_tensorflow_retraces_once_for_new_batch_sizes() -> None:
    """Like ``reduce_retracing``: the second batch size relaxes the batch dimension, after
    which no batch size traces again."""
    pytest.importorskip("tensorflow")
    counter = TraceCounter("tensorflow")
    model = wrap_model("tensorflow", counter)
    x = _data(32)
    labels = _labels(model, x)
    attack = attacks.LinfPGD(steps=2, seed=0)

    def traces_after(n: int) -> int:
        attack(model, native("tensorflow", x[:n]), native("tensorflow", labels[:n]), epsilons=0.1)
        return counter.calls

    first = traces_after(32)
    relaxed = traces_after(16)
    assert relaxed > first
    assert traces_after(8) == relaxed
    assert traces_after(24) == relaxed
    assert traces_after(32) == relaxed


@pytest.mark.tensorflow
def test_flat_function_passes_nested_arguments_through() -> None:
    tf = pytest.importorskip("tensorflow")
    from advlib.models._tf_functions import FlatFunction

    def fn(a: Any, pair: tuple[Any, Any], nothing: None, items: list[Any], scale: float) -> Any:
        assert nothing is None and isinstance(items, list)
        return a * scale + pair[0] - pair[1], (items[0], None)

    flat = FlatFunction(fn, jit_compile=False)
    a, b = tf.constant([1.0, 2.0]), tf.constant([0.5, 0.25])
    out, (first, none) = flat(a, (b, a), None, [b], 3.0)
    np.testing.assert_allclose(out.numpy(), [2.5, 4.25])
    np.testing.assert_allclose(first.numpy(), b.numpy())
    assert none is None
