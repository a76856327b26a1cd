"""Expectation over transformation: Foolbox's wrapper and ``eot_samples=`` on every gradient
attack, on a randomized model per backend.

The randomized model is linear plus a small random ripple: logits = ``x W + b + (sin(K x) * r)
V / K`` with ``r`` = +-1 drawn per element on every pass and K = 1000. Its outputs stay within
a few hundredths of the linear model's ``x W + b`` (on which success is judged here), but one
pass's gradient ``W + r cos(K x) V`` is dominated by the random term (V is 5 times W), so the
sign of most coordinates is a coin flip; the average of many passes is close to ``W``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import native, to_numpy

import advlib
from advlib import attacks
from advlib.models import ExpectationOverTransformationWrapper

N, D, CLASSES, K = 48, 64, 3, 1000.0
_RNG = np.random.default_rng(0)
W = _RNG.normal(0, 1, (D, CLASSES)).astype(np.float32)
B = _RNG.normal(0, 0.1, CLASSES).astype(np.float32)
V = (5 * _RNG.normal(0, 1, (D, CLASSES))).astype(np.float32)
X = _RNG.uniform(0.4, 0.6, (N, D)).astype(np.float32)


def _expected_logits(x: np.ndarray) -> np.ndarray:
    return x @ W + B


LABELS = _expected_logits(X).argmax(-1)


def _randomized(backend: str) -> advlib.Model:
    """The randomized model on ``backend`` (JAX: a key split on every call, uncompiled)."""
    if backend == "torch":
        import torch

        w, b, v = torch.as_tensor(W), torch.as_tensor(B), torch.as_tensor(V)

        def torch_net(x: Any) -> Any:
            r = torch.where(torch.rand_like(x) < 0.5, 1.0, -1.0)
            return x @ w + b + (torch.sin(K * x) * r) @ v / K

        return advlib.PyTorchModel(torch_net, bounds=(0, 1))
    if backend == "tensorflow":
        import tensorflow as tf

        tw, tb, tv = tf.constant(W), tf.constant(B), tf.constant(V)

        def tf_net(x: Any) -> Any:
            r = tf.where(tf.random.uniform(tf.shape(x)) < 0.5, 1.0, -1.0)
            return tf.matmul(x, tw) + tb + tf.matmul(tf.sin(K * x) * r, tv) / K

        return advlib.TensorFlowModel(tf_net, bounds=(0, 1))
    import jax
    import jax.numpy as jnp

    keys = [jax.random.PRNGKey(0)]

    def jax_net(x: Any) -> Any:
        keys[0], key = jax.random.split(keys[0])
        r = jnp.where(jax.random.uniform(key, x.shape) < 0.5, 1.0, -1.0)
        return x @ jnp.asarray(W) + jnp.asarray(B) + (jnp.sin(K * x) * r) @ jnp.asarray(V) / K

    return advlib.JAXModel(jax_net, bounds=(0, 1), compile=False)


def _fooled(clipped: Any) -> float:
    """The fraction the expected model misclassifies."""
    return float((_expected_logits(to_numpy(clipped)).argmax(-1) != LABELS).mean())


def test_eot_pgd_beats_plain_pgd_on_a_randomized_model(backend: str) -> None:
    model, x = _randomized(backend), native(backend, X)
    eps = 0.08
    plain = attacks.LinfPGD(steps=10, rel_stepsize=0.25, random_start=False)
    eot = attacks.LinfPGD(steps=10, rel_stepsize=0.25, random_start=False, eot_samples=32)
    rate_plain = _fooled(plain(model, x, LABELS, epsilons=eps).clipped)
    rate_eot = _fooled(eot(model, x, LABELS, epsilons=eps).clipped)
    assert rate_eot >= rate_plain + 0.3, (rate_plain, rate_eot)


def test_every_gradient_attack_takes_eot_samples() -> None:
    for name, cls in attacks.ATTACKS.items():
        if cls.requires_grad and name != "AutoAttack":
            attack = cls(**_required(cls), eot_samples=3)
            assert attack.eot_samples == 3, name
    with pytest.raises(ValueError, match="eot_samples"):
        attacks.LinfPGD(eot_samples=0)


def _required(cls: type) -> dict[str, Any]:
    import inspect

    required = {
        p.name: 1
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
    }
    return required


def test_eot_samples_averages_gradients_over_passes(backend: str) -> None:
    """On the randomized linear model, the averaged cross-entropy gradient of many passes
    approaches the expected one; one pass is far from it."""
    from advlib._tensors import crossentropy_sum
    from advlib.models.eot import averaged_gradients

    model = _randomized(backend)
    x, _ = model.to_tensor(X[:4], "x", floating=True)
    labels, _ = model.to_tensor(LABELS[:4], "labels", floating=False)

    def loss(z: Any) -> Any:
        logits = model(z)
        return crossentropy_sum(logits, labels), logits

    def error(samples: int) -> float:
        _, _, grad = averaged_gradients(model, samples).value_and_grad(loss, x)
        return float((np.sign(to_numpy(grad.raw)) != expected).mean())

    onehot = np.eye(CLASSES)[LABELS[:4]]
    logits = _expected_logits(X[:4])
    p = np.exp(logits - logits.max(-1, keepdims=True))
    expected = np.sign((p / p.sum(-1, keepdims=True) - onehot) @ W.T)
    assert error(1) > 0.3 and error(256) < 0.1


def test_foolbox_wrapper_averages_logits(any_backend: str) -> None:
    """Foolbox's wrapper: the mean of n_steps passes (each a draw of the model)."""
    calls = []

    class Counting(advlib.Model):
        def __init__(self) -> None:
            super().__init__(bounds=(0, 1))

        def __call__(self, inputs: Any) -> Any:
            calls.append(1)
            return inputs[:, :2] * len(calls)

    wrapped = ExpectationOverTransformationWrapper(Counting(), n_steps=4)
    x = native(any_backend, X[:3])
    out = to_numpy(wrapped(x))
    np.testing.assert_allclose(out, X[:3, :2] * 2.5, rtol=1e-6)  # (1 + 2 + 3 + 4) / 4
    assert wrapped.bounds == (0, 1) and len(calls) == 4
    with pytest.raises(ValueError, match="n_steps"):
        ExpectationOverTransformationWrapper(Counting(), n_steps=0)


@pytest.mark.torch
def test_apgd_eot_iter_multiplies_eot_samples() -> None:
    """APGD's ``eot_iter`` (AutoAttack's name) and ``eot_samples`` are one mechanism: the
    same number of passes, and both together multiply."""
    torch = pytest.importorskip("torch")
    w = torch.as_tensor(W)
    passes = {"n": 0}

    def counted(x: Any) -> Any:
        passes["n"] += 1
        return x @ w

    model = advlib.PyTorchModel(counted, bounds=(0, 1))
    attacks.LinfAPGD(steps=1)(model, X[:8], LABELS[:8], epsilons=1e-4)  # the one-off probes
    counts = {}
    for key, kwargs in {"iter": {"eot_iter": 3}, "samples": {"eot_samples": 3},
                        "both": {"eot_iter": 3, "eot_samples": 2}, "none": {}}.items():  # fmt: skip
        passes["n"] = 0
        attack = attacks.LinfAPGD(steps=6, seed=0, **kwargs)
        attack(model, X[:8], LABELS[:8], epsilons=1e-4)  # too small: every step runs
        counts[key] = passes["n"]
    assert counts["iter"] == counts["samples"] > counts["none"]
    gradient_passes = counts["samples"] - counts["none"]  # 2 extra per gradient
    assert counts["both"] - counts["none"] == 5 * gradient_passes // 2
