"""Additive noise, contrast reduction, inversion and Gaussian blur: their defining properties,
and Foolbox 3.3.4's deterministic corruption attacks on the trained digits CNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import ChannelsLast, cnn_model, foolbox_digits, native, to_numpy

import advlib
from advlib import attacks
from advlib.attacks.blur import gaussian_matrix

SHAPE = (1, 8, 8)
RNG = np.random.default_rng(3)
X = RNG.uniform(0, 1, (8, *SHAPE)).astype(np.float32)
MIDDLE = RNG.uniform(0.3, 0.7, (8, *SHAPE)).astype(np.float32)  # no noise reaches the bounds

ONCE = [
    attacks.L2AdditiveGaussianNoiseAttack,
    attacks.L2AdditiveUniformNoiseAttack,
    attacks.LinfAdditiveUniformNoiseAttack,
]
CLIPPING_AWARE = [
    attacks.L2ClippingAwareAdditiveGaussianNoiseAttack,
    attacks.L2ClippingAwareAdditiveUniformNoiseAttack,
]
REPEATED = [
    attacks.L2RepeatedAdditiveGaussianNoiseAttack,
    attacks.L2RepeatedAdditiveUniformNoiseAttack,
    attacks.L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack,
    attacks.L2ClippingAwareRepeatedAdditiveUniformNoiseAttack,
    attacks.LinfRepeatedAdditiveUniformNoiseAttack,
]


def _labels(model: Any, x: np.ndarray) -> np.ndarray:
    tensor, _ = model.to_tensor(x, "x", floating=True)
    return np.asarray(to_numpy(model(tensor)).argmax(-1))


def _sizes(delta: np.ndarray, p: float) -> np.ndarray:
    return np.asarray(np.linalg.norm(delta.reshape(len(delta), -1).astype(np.float64), p, -1))


# ---------------------------------------------------------------------- additive noise
@pytest.mark.parametrize("cls", ONCE + CLIPPING_AWARE, ids=lambda c: c.__name__)
def test_noise_has_size_epsilon(cls: type, any_backend: str) -> None:
    """Inside the bounds every noise has norm epsilon; the clipping-aware ones keep norm
    epsilon after clipping, also for inputs that reach the bounds."""
    model, eps = cnn_model(any_backend), (0.2 if cls.norm.name == "linf" else 0.5)
    x = X if cls in CLIPPING_AWARE else MIDDLE
    raw = to_numpy(cls(seed=1).run(model, native(any_backend, x), _labels(model, x), epsilon=eps))
    assert raw.min() >= 0 and raw.max() <= 1
    if cls in CLIPPING_AWARE:
        assert ((raw == 0) | (raw == 1)).any(), "no value reached the bounds: a weak test"
    np.testing.assert_allclose(_sizes(raw - x, cls.norm.p), eps, rtol=1e-5)


def test_noise_is_per_sample_and_seeded() -> None:
    """Row i depends only on the seed and the sample's id, not on the batch."""
    model, attack = cnn_model("numpy"), attacks.L2AdditiveGaussianNoiseAttack(seed=4)
    labels = _labels(model, MIDDLE)
    whole = to_numpy(attack.run(model, MIDDLE, labels, epsilon=0.5))
    part = to_numpy(attack.run(model, MIDDLE[5:], labels[5:], epsilon=0.5, indices=np.arange(5, 8)))
    np.testing.assert_array_equal(part, whole[5:])
    other = to_numpy(attacks.L2AdditiveGaussianNoiseAttack(seed=5).run(
        model, MIDDLE, labels, epsilon=0.5))  # fmt: skip
    assert not np.allclose(other, whole)


@pytest.mark.parametrize("cls", REPEATED, ids=lambda c: c.__name__)
def test_repeated_noise_keeps_the_first_success(cls: type, any_backend: str) -> None:
    """More repeats never change a sample fooled within fewer (its first success is kept);
    failures are the inputs; one repeat without check_trivial is the single-draw attack."""
    model, eps = cnn_model(any_backend), (0.3 if cls.norm.name == "linf" else 2.0)
    x, labels = native(any_backend, X), _labels(cnn_model("numpy"), X)
    few = cls(repeats=3, seed=2)(model, x, labels, epsilons=eps)
    many = cls(repeats=30, seed=2)(model, x, labels, epsilons=eps)
    fooled, fooled_more = to_numpy(few.success), to_numpy(many.success)
    assert fooled_more.sum() > fooled.sum() > 0, "choose an epsilon that separates them"
    np.testing.assert_array_equal(to_numpy(many.raw)[fooled], to_numpy(few.raw)[fooled])
    np.testing.assert_array_equal(to_numpy(many.raw)[~fooled_more], X[~fooled_more])
    single = {
        "L2RepeatedAdditiveGaussianNoiseAttack": attacks.L2AdditiveGaussianNoiseAttack,
        "L2RepeatedAdditiveUniformNoiseAttack": attacks.L2AdditiveUniformNoiseAttack,
        "L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack":
            attacks.L2ClippingAwareAdditiveGaussianNoiseAttack,
        "L2ClippingAwareRepeatedAdditiveUniformNoiseAttack":
            attacks.L2ClippingAwareAdditiveUniformNoiseAttack,
        "LinfRepeatedAdditiveUniformNoiseAttack": attacks.LinfAdditiveUniformNoiseAttack,
    }[cls.__name__](seed=2)
    once = cls(repeats=1, check_trivial=False, seed=2)(model, x, labels, epsilons=eps)
    expected = single(model, x, labels, epsilons=eps)
    flags = to_numpy(once.success)
    np.testing.assert_array_equal(flags, to_numpy(expected.success))
    np.testing.assert_array_equal(to_numpy(once.raw)[flags], to_numpy(expected.raw)[flags])


def test_repeated_noise_leaves_adversarial_inputs_alone() -> None:
    model = cnn_model("numpy")
    wrong = (_labels(model, X) + 1) % 10  # every input is misclassified already
    attack = attacks.L2RepeatedAdditiveUniformNoiseAttack(repeats=5, seed=0)
    np.testing.assert_array_equal(attack.run(model, X, wrong, epsilon=1.0), X)


def test_noise_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="repeats"):
        attacks.L2RepeatedAdditiveGaussianNoiseAttack(repeats=0)
    with pytest.raises(TypeError, match="check_trivial"):
        attacks.L2RepeatedAdditiveGaussianNoiseAttack(check_trivial=1)


# ---------------------------------------------------------------------- contrast, inversion
def test_contrast_reduction_moves_along_the_line_to_the_target(any_backend: str) -> None:
    """An L2 step of epsilon towards the flat image at target, never past it."""
    model, target = cnn_model(any_backend), 0.25
    attack = attacks.L2ContrastReductionAttack(target=target)
    labels = _labels(model, X)
    direction = (target - X).astype(np.float64)
    norms = _sizes(direction, 2)[:, None, None, None]
    for eps in (0.5, 7.5):  # 7.5 exceeds every distance to the flat image
        raw = to_numpy(attack.run(model, native(any_backend, X), labels, epsilon=eps))
        expected = X + np.minimum(eps / norms, 1.0) * direction
        np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "cls", [attacks.BinarySearchContrastReductionAttack,
            attacks.LinearSearchContrastReductionAttack], ids=lambda c: c.__name__,
)  # fmt: skip
def test_contrast_searches_stay_on_the_line(cls: type, any_backend: str) -> None:
    """Results lie on the segment to the flat image; successes are adversarial, failures the
    flat image (factor 1); the linear scan returns the first adversarial factor."""
    model, steps = cnn_model(any_backend), 20
    settings = {"steps": steps} if "Linear" in cls.__name__ else {"binary_search_steps": 12}
    attack = cls(distance=advlib.distances.l2, target=0.5, **settings)
    labels = _labels(cnn_model("numpy"), X)
    raw, _, success = attack(model, native(any_backend, X), labels, epsilons=None)
    raw, success = to_numpy(raw).astype(np.float64), to_numpy(success)
    direction = 0.5 - X.astype(np.float64)
    factors = ((raw - X) * direction).sum((1, 2, 3)) / (direction**2).sum((1, 2, 3))
    np.testing.assert_allclose(raw, X + factors[:, None, None, None] * direction, atol=1e-6)
    assert np.all((factors >= -1e-6) & (factors <= 1 + 1e-6))
    assert success.any(), "no sample fooled: a weak test"
    np.testing.assert_allclose(factors[~success], 1.0, atol=1e-6)
    if "Linear" in cls.__name__:
        np.testing.assert_allclose(factors * steps, np.round(factors * steps), atol=1e-4)
        before = (X + (factors - 1 / steps)[:, None, None, None] * direction).astype(np.float32)
        earlier = _labels(model, before[success]) != labels[success]
        assert not earlier[factors[success] > 0].any(), "an earlier factor was adversarial"


def test_inversion_flips_within_the_bounds(any_backend: str) -> None:
    model = cnn_model(any_backend, bounds=(-1, 2))
    x = X * 3 - 1
    raw = to_numpy(attacks.InversionAttack().run(model, native(any_backend, x), _labels(model, x)))
    np.testing.assert_allclose(raw, 1 - x, rtol=0, atol=1e-6)


def test_a_flexible_distance_is_needed_for_numeric_epsilons() -> None:
    model = cnn_model("numpy")
    attack = attacks.InversionAttack()
    with pytest.raises(ValueError, match="distance: InversionAttack was created without"):
        attack(model, X, _labels(model, X), epsilons=1.0)
    with pytest.raises(ValueError, match="distance"):
        attack.distance  # noqa: B018
    attack(model, X, _labels(model, X), epsilons=None)  # Foolbox's way without a distance
    with pytest.raises(ValueError, match=r"distance: expected advlib\.distances"):
        attacks.InversionAttack(distance="l2")
    l1 = attacks.InversionAttack(distance=advlib.distances.l1)
    assert l1.norm.name == "l1" and l1.distance is advlib.distances.l1


# ---------------------------------------------------------------------- blur
def test_gaussian_matrix_is_scipys_filter() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    signal = np.random.default_rng(0).normal(size=(3, 9))
    for sigma in (0.4, 1.0, 3.0, 20.0):
        expected = ndimage.gaussian_filter1d(signal, sigma, axis=-1)
        np.testing.assert_allclose(signal @ gaussian_matrix(9, sigma).T, expected, atol=1e-12)


@pytest.mark.parametrize("channels_last", [False, True])
def test_blur_keeps_the_first_adversarial_blur(channels_last: bool, any_backend: str) -> None:
    """Each sample: the first sigma k / steps * max_sigma whose scipy blur (clipped) is
    adversarial, else the input."""
    ndimage = pytest.importorskip("scipy.ndimage")
    model, steps, max_sigma = cnn_model(any_backend), 12, 3.0
    labels = _labels(model, X)
    images = X.transpose(0, 2, 3, 1) if channels_last else X
    attack = attacks.GaussianBlurAttack(
        steps=steps, max_sigma=max_sigma, channel_axis=-1 if channels_last else 1
    )
    if channels_last:
        model = ChannelsLast(model)
    raw = to_numpy(attack.run(model, native(any_backend, images), labels))
    raw = raw.transpose(0, 3, 1, 2) if channels_last else raw
    expected, found = X.copy(), np.zeros(len(X), bool)
    for k in range(1, steps + 1):
        sigma = k / steps * max_sigma
        blurred = np.clip(ndimage.gaussian_filter(X, (0, 0, sigma, sigma)), 0, 1)
        new = (_labels(cnn_model("numpy"), blurred) != labels) & ~found
        expected[new], found = blurred[new], found | new
    assert found.any() and not found.all(), "choose settings that fool some samples"
    np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-5)


def test_blur_needs_the_layout() -> None:
    numpy_model = advlib.NumPyModel(lambda x: x.reshape(len(x), -1)[:, :10], bounds=(0, 1))
    with pytest.raises(ValueError, match="channel_axis: GaussianBlurAttack needs to know"):
        attacks.GaussianBlurAttack(steps=2).run(numpy_model, X, np.zeros(8, int))
    with pytest.raises(ValueError, match=r"inputs: GaussianBlurAttack needs images"):
        attacks.GaussianBlurAttack(steps=2, channel_axis=1).run(
            numpy_model, X[:, 0], np.zeros(8, int))  # fmt: skip
    with pytest.raises(ValueError, match="channel_axis: expected None, 1"):
        attacks.GaussianBlurAttack(channel_axis=2)


# ---------------------------------------------------------------------- Foolbox
@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("GaussianBlurAttack", {"steps": 50}),
        ("InversionAttack", {}),
        ("BinarySearchContrastReductionAttack", {}),
        ("LinearSearchContrastReductionAttack", {"steps": 100}),
    ],
)
def test_same_results_as_foolbox(name: str, kwargs: dict[str, Any]) -> None:
    """Foolbox 3.3.4's deterministic corruption attacks on the digits CNN: the same points."""
    fb, net, x, y = foolbox_digits(100)
    theirs = getattr(fb.attacks, name)(**kwargs).run(fb.PyTorchModel(net, bounds=(0, 1)), x, y)
    ours = getattr(attacks, name)(**kwargs).run(advlib.PyTorchModel(net, bounds=(0, 1)), x, y)
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=0, atol=1e-5)
