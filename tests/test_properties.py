"""Property-based tests: random shapes, layouts, bounds, dtypes, epsilons and norms."""

from __future__ import annotations

import inspect

import eagerpy as ep
import numpy as np
import pytest
from helpers import native, to_numpy, wrap_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contract import ENTRIES

from advlib import attacks
from advlib.attacks.gradient_descent import GradientDescentAttack
from advlib.norms import NORMS
from advlib.zoo.architectures import build

SHAPES = st.sampled_from([(5,), (3, 4, 4), (4, 4, 3), (1, 6, 6), (2, 3)])
# The first-order fixed-epsilon family with the contract's CI settings (tests/test_contract.py
# checks every attack on the fixed CNN; here they meet random shapes, bounds and dtypes).
# (Input diversity and gradient smoothing, DIFGSM and TIFGSM, need images: not these shapes.)
ATTACKS = st.sampled_from(
    [
        e.make()
        for e in ENTRIES
        if issubclass(e.attack, GradientDescentAttack)
        and "channel_axis" not in inspect.signature(e.attack).parameters
    ]
)
FIXTURE_OK = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FIXTURE_OK
@given(
    n=st.integers(1, 64),
    shape=SHAPES,
    lower=st.floats(-2, 1),
    width=st.floats(0.5, 3),
    dtype=st.sampled_from(["float32", "float64"]),
    relative_eps=st.floats(0, 0.5),
    attack=ATTACKS,
    seed=st.integers(0, 2**16),
)
def test_attack_properties(
    backend: str,
    n: int,
    shape: tuple[int, ...],
    lower: float,
    width: float,
    dtype: str,
    relative_eps: float,
    attack: attacks.Attack,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    d, classes = int(np.prod(shape)), 3
    weights = {"fc1.w": rng.normal(0, 1, (d, classes)), "fc1.b": rng.normal(0, 0.1, classes)}
    net = build(backend, [("flatten",), ("dense", "fc1")], weights, shape)
    upper = lower + width
    model = wrap_model(backend, net, bounds=(lower, upper))
    x = rng.uniform(lower, upper, (n, *shape)).astype(dtype)
    labels = rng.integers(0, classes, n)
    inputs, labels_in = native(backend, x), native(backend, labels)
    x_before, labels_before = to_numpy(inputs).copy(), to_numpy(labels_in).copy()
    scale = {"linf": 1.0, "l2": np.sqrt(d), "l1": d}[attack.norm.name]
    eps = relative_eps * width * scale

    raw, clipped, success = attack(model, inputs, labels_in, epsilons=eps)

    np.testing.assert_array_equal(to_numpy(inputs), x_before)
    np.testing.assert_array_equal(to_numpy(labels_in), labels_before)
    for result in (raw, clipped, success):
        assert type(result) is type(inputs)
    adv = to_numpy(clipped)
    assert adv.dtype == to_numpy(inputs).dtype and adv.shape == x.shape
    assert adv.min() >= lower - 1e-6 and adv.max() <= upper + 1e-6
    x64 = to_numpy(inputs).astype(np.float64)
    sizes = NORMS[attack.norm.name](ep.astensor(adv.astype(np.float64) - x64)).numpy()
    assert np.all(sizes <= eps * (1 + 1e-5) + 1e-5)
    logits = to_numpy(model(model.to_tensor(adv, "x", floating=True)[0]))
    np.testing.assert_array_equal(to_numpy(success), logits.argmax(-1) != labels)
    again = attack(model, inputs, labels_in, epsilons=eps)
    np.testing.assert_array_equal(to_numpy(again.clipped), adv)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_image_layouts_with_preprocessing(backend: str, layout: str) -> None:
    """Per-channel preprocessing on either layout equals normalising by hand."""
    shape = (3, 4, 4) if layout == "channels_first" else (4, 4, 3)
    axis = -3 if layout == "channels_first" else -1
    rng = np.random.default_rng(0)
    weights = {"fc1.w": rng.normal(0, 1, (48, 3)), "fc1.b": np.zeros(3)}
    mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])
    net = build(backend, [("flatten",), ("dense", "fc1")], weights, shape)
    pre = wrap_model(backend, net, preprocessing=dict(mean=mean, std=std, axis=axis))
    plain = wrap_model(backend, net)
    x = rng.uniform(0, 1, (5, *shape)).astype(np.float32)
    broadcast = (3, 1, 1) if axis == -3 else (3,)
    by_hand = ((x - mean.reshape(broadcast)) / std.reshape(broadcast)).astype(np.float32)
    got = to_numpy(pre(pre.to_tensor(x, "x", floating=True)[0]))
    want = to_numpy(plain(plain.to_tensor(by_hand, "x", floating=True)[0]))
    np.testing.assert_allclose(got, want, atol=1e-4)
