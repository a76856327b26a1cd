"""advlib.zoo: the shipped digits data and CNNs, the same in every framework."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import available

import advlib


def _logits(model: Any, x: np.ndarray) -> np.ndarray:
    t, _ = model.to_tensor(x, "x", floating=True)
    return np.asarray(model(t).numpy())


def _reference_logits(x: np.ndarray, robust: bool) -> np.ndarray:
    """The network written out in float64 NumPy, straight from the weights file."""
    w = advlib.zoo._weights(robust)
    h = x.astype(np.float64)
    for conv in ("conv1", "conv2"):
        kernel, padded = w[f"{conv}.w"], np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((h.shape[0], kernel.shape[0], 8, 8))
        for i in range(3):
            for j in range(3):
                out += np.einsum(
                    "nchw,oc->nohw", padded[:, :, i : i + 8, j : j + 8], kernel[:, :, i, j]
                )
        h = np.maximum(out + w[f"{conv}.b"][None, :, None, None], 0)
    h = np.maximum(h.reshape(len(h), -1) @ w["fc1.w"] + w["fc1.b"], 0)
    return np.asarray(h @ w["fc2.w"] + w["fc2.b"])


def test_digits_data() -> None:
    x, y = advlib.zoo.digits("test")
    x_train, y_train = advlib.zoo.digits("train")
    assert x.shape == (359, 1, 8, 8) and x_train.shape == (1438, 1, 8, 8)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 1
    # The original 17 grey levels survive the scaling exactly.
    assert np.allclose(x * 16, np.round(x * 16))
    # Split per class: every digit in both splits, about 20% of each in the test split.
    test_counts, train_counts = np.bincount(y, minlength=10), np.bincount(y_train, minlength=10)
    assert np.all(np.abs(test_counts / (test_counts + train_counts) - 0.2) < 0.01)
    # No test image appears in the training split.
    train_rows = {row.tobytes() + bytes([c]) for row, c in zip(x_train, y_train)}
    overlap = sum(row.tobytes() + bytes([c]) in train_rows for row, c in zip(x, y))
    assert overlap <= 2  # the UCI set holds a few exact duplicates across the 1797 images
    # Callers get their own arrays.
    x[:] = 0
    assert advlib.zoo.digits("test")[0].max() == 1


def test_shipped_files_are_small_and_packaged() -> None:
    folder = resources.files("advlib.zoo").joinpath("data")
    sizes = {p.name: len(p.read_bytes()) for p in folder.iterdir() if p.name.endswith(".npz")}
    assert set(sizes) == {"digits.npz", "digits_cnn.npz", "digits_cnn_robust.npz", "digits_mlp.npz"}
    assert sum(sizes.values()) < 1_000_000
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"zoo/data/*.npz"' in pyproject


@pytest.mark.parametrize("robust", [False, True], ids=["standard", "robust"])
def test_every_framework_gives_the_same_logits(any_backend: str, robust: bool) -> None:
    x, y = advlib.zoo.digits("test")
    model = advlib.zoo.digits_cnn(any_backend, robust=robust)
    assert tuple(model.bounds) == (0, 1)
    logits = _logits(model, x)
    reference = _reference_logits(x, robust)
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
    # The same predictions on every sample, hence the same clean accuracy.
    np.testing.assert_array_equal(logits.argmax(1), reference.argmax(1))
    assert advlib.utils.accuracy(model, x, y) == pytest.approx((reference.argmax(1) == y).mean())


def test_native_networks_match_the_wrappers() -> None:
    x, _ = advlib.zoo.digits("test")
    forward = advlib.zoo.digits_cnn_network("numpy")
    np.testing.assert_allclose(forward(x), _reference_logits(x, False), atol=1e-4)
    if available("torch"):
        import torch

        net = advlib.zoo.digits_cnn_network("torch", robust=True)
        assert isinstance(net, torch.nn.Module) and not net.training
        with torch.no_grad():
            logits = net(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(logits, _reference_logits(x, True), atol=1e-4)


def test_trained_models_are_accurate_and_the_robust_one_is_robust() -> None:
    if not available("torch"):
        pytest.skip("needs torch")
    x, y = advlib.zoo.digits("test")
    pgd = advlib.attacks.LinfPGD(seed=0)
    robust_accuracy = {}
    for robust in (False, True):
        model = advlib.zoo.digits_cnn("torch", robust=robust)
        assert advlib.utils.accuracy(model, x, y) > 0.93
        success = pgd(model, x, y, epsilons=0.1).success
        robust_accuracy[robust] = 1 - success.mean()
    # Measured when training: 0.51 (standard) and 0.82 (PGD-trained) at Linf 0.1.
    assert robust_accuracy[True] > robust_accuracy[False] + 0.2


def test_training_record_is_shipped() -> None:
    info = advlib.zoo.digits_cnn_info(robust=True)
    assert info["adversarial_training"]["attack"] == "advlib.attacks.LinfPGD"
    assert info["adversarial_training"]["epsilon"] == 0.1
    assert json.dumps(info)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="framework: expected one of"):
        advlib.zoo.digits_cnn("mxnet")
    with pytest.raises(TypeError, match="robust: expected True or False"):
        advlib.zoo.digits_cnn("numpy", robust="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split: expected one of"):
        advlib.zoo.digits("validation")
