"""SpatialAttack: its transform against scipy's and Foolbox's, and its results being
rotations and translations of the inputs within the budget."""

from __future__ import annotations

import warnings

import eagerpy as ep
import numpy as np
import pytest
from helpers import ChannelsLast, cnn_model, native, to_numpy

import advlib
from advlib import attacks
from advlib.attacks.spatial import transform

X = np.random.default_rng(5).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)


def _reference(image: np.ndarray, angle: float, dx: float, dy: float) -> np.ndarray:
    """scipy's bilinear affine transform (zero outside) of a square (C, H, H) image: output
    pixel (i, j) reads the input at centre + R (pixel - centre) + shift, with the shifts in
    the normalised units of align_corners=True."""
    ndimage = pytest.importorskip("scipy.ndimage")
    size = image.shape[-1]
    c, a = (size - 1) / 2, np.deg2rad(angle)
    matrix = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # (row, col)
    shift = np.array([dy, dx]) / (size / 2) * c
    offset = np.array([c, c]) - matrix @ np.array([c, c]) + shift
    return np.stack([
        ndimage.affine_transform(channel.astype(np.float64), matrix, offset, order=1,
                                 mode="grid-constant", cval=0.0)
        for channel in image
    ])  # fmt: skip


@pytest.mark.parametrize(("angle", "dx", "dy"), [(0, 0, 0), (30, 0, 0), (-17, 2, -1.5), (90, 3, 1)])
def test_transform_is_scipys_affine_transform(angle: float, dx: float, dy: float) -> None:
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 9, 9))
    got = transform(ep.astensor(x), np.full(2, angle), np.tile([dx, dy], (2, 1))).numpy()
    for image, out in zip(x, got, strict=True):
        np.testing.assert_allclose(out, _reference(image, angle, dx, dy), atol=1e-9)


@pytest.mark.torch
def test_transform_is_foolboxs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        shifting = pytest.importorskip("foolbox.attacks.spatial_attack_transformations")
    torch = pytest.importorskip("torch")
    x = ep.astensor(torch.rand(3, 2, 9, 7))  # not square: Foolbox's shift units
    for angle, dx, dy in [(25, 1, -2), (-40, -3, 0.5)]:
        theirs = shifting.rotate_and_shift(x, translation=(dx, dy), rotation=angle).numpy()
        ours = transform(x, np.full(3, angle), np.tile([dx, dy], (3, 1))).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def _labels(x: np.ndarray) -> np.ndarray:
    model = cnn_model("numpy")
    tensor, _ = model.to_tensor(x, "x", floating=True)
    return np.asarray(to_numpy(model(tensor)).argmax(-1))


def test_grid_results_are_grid_transforms(any_backend: str) -> None:
    """Every success is the first adversarial grid transform (in Foolbox's order: angle,
    then x shift, then y shift); every failure is the input."""
    model, labels = cnn_model(any_backend), _labels(X)
    attack = attacks.SpatialAttack(0.5, 4, 3, 3, channel_axis=1)
    raw, clipped, success = attack(model, native(any_backend, X), labels)
    raw, success = to_numpy(raw), to_numpy(success)
    np.testing.assert_array_equal(to_numpy(clipped), raw)
    assert success.any() and not success.all(), "choose a budget that fools some samples"
    expected, found = X.astype(np.float64), np.zeros(len(X), bool)
    for angle in np.linspace(-4, 4, 3):
        for dx in np.linspace(-0.5, 0.5, 3):
            for dy in np.linspace(-0.5, 0.5, 3):
                moved = np.clip(np.stack([_reference(i, angle, dx, dy) for i in X]), 0, 1)
                new = (_labels(moved.astype(np.float32)) != labels) & ~found
                expected[new], found = moved[new], found | new
    np.testing.assert_array_equal(success, found)
    np.testing.assert_allclose(raw, expected, atol=1e-5)


def test_random_search_draws_per_sample_within_the_budget() -> None:
    model, labels = cnn_model("numpy"), _labels(X)
    attack = attacks.SpatialAttack(2, 15, grid_search=False, random_steps=20, channel_axis=1,
                                   seed=3)  # fmt: skip
    whole = to_numpy(attack(model, X, labels).raw)
    part = to_numpy(attack(model, X[4:], labels[4:], indices=np.arange(4, 8)).raw)
    np.testing.assert_array_equal(part, whole[4:])
    moved = ~np.all(whole == X, axis=(1, 2, 3))
    assert moved.any()
    with pytest.raises(ValueError, match="grid_search=True is deterministic"):
        attacks.SpatialAttack().repeat(2)
    assert attack.repeat(3).times == 3


def test_channels_last_is_the_same_transform(any_backend: str) -> None:
    """Channels-last images (the layout from the model's data_format) give the transposed
    channels-first results."""
    model, labels = cnn_model(any_backend), _labels(X)
    spatial = attacks.SpatialAttack(1, 10, 2, 2, channel_axis=1)
    first = spatial(model, native(any_backend, X), labels)
    last_model = ChannelsLast(model)
    last = attacks.SpatialAttack(1, 10, 2, 2)(
        last_model, native(any_backend, X.transpose(0, 2, 3, 1)), labels)  # fmt: skip
    np.testing.assert_allclose(to_numpy(last.raw).transpose(0, 3, 1, 2), to_numpy(first.raw),
                               atol=1e-6)  # fmt: skip


def test_spatial_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_rotation"):
        attacks.SpatialAttack(max_rotation=-1)
    with pytest.raises(ValueError, match="num_translations"):
        attacks.SpatialAttack(num_translations=0)
    model = advlib.NumPyModel(lambda x: x.reshape(len(x), -1)[:, :10], bounds=(0, 1))
    with pytest.raises(ValueError, match="channel_axis: SpatialAttack needs to know"):
        attacks.SpatialAttack()(model, X, np.zeros(8, int))
