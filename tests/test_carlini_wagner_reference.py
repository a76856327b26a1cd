"""Carlini & Wagner L2 against Foolbox 3.3.4 and across frameworks, on small CNNs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import CNN_LAYERS, cnn_model, cnn_weights, native, to_numpy, wrap_model

from advlib.attacks.carlini_wagner import L2CarliniWagnerAttack
from advlib.zoo.architectures import build

SETTINGS = dict(binary_search_steps=5, steps=100, stepsize=1e-2, initial_const=1e-3)

def l2_sizes(adversarials: Any, x: np.ndarray) -> np.ndarray:
    return np.linalg.norm((to_numpy(adversarials) - x).reshape(len(x), -1), axis=1)


def prototype_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images of 10 classes: a fixed smooth pattern per class plus pixel noise."""
    patterns = np.random.default_rng(1234).uniform(0, 1, (10, 1, 4, 4))
    patterns = patterns.repeat(2, axis=2).repeat(2, axis=3)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = patterns[labels] + rng.normal(0, 0.2, (n, 1, 8, 8))
    return np.clip(images, 0, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def trained_cnn() -> Any:
    """The helpers' CNN architecture, trained for a few seconds on prototype digits."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = build("torch", CNN_LAYERS, cnn_weights(0), (1, 8, 8))
    x, y = prototype_digits(2048, seed=0)
    x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for epoch in range(4):
        for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).split(
            128
        ):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x_t[batch]), y_t[batch]).backward()
            optimizer.step()
    return net.eval()


@pytest.mark.slow
@pytest.mark.torch
def test_as_strong_as_foolbox_on_a_trained_cnn(trained_cnn: Any) -> None:
    torch = pytest.importorskip("torch")
    foolbox = pytest.importorskip("foolbox")
    x, labels = prototype_digits(64, seed=1)
    with torch.no_grad():
        predicted = trained_cnn(torch.as_tensor(x)).argmax(-1).numpy()
    assert (predicted == labels).mean() > 0.9, "the CNN should have learnt the prototypes"
    x, labels = x[predicted == labels], labels[predicted == labels]
    inputs, targets = torch.as_tensor(x), torch.as_tensor(labels)

    fb_model = foolbox.PyTorchModel(trained_cnn, bounds=(0, 1))
    fb_raw, _, fb_success = foolbox.attacks.L2CarliniWagnerAttack(**SETTINGS)(
        fb_model, inputs, targets, epsilons=None
    )
    model = wrap_model("torch", trained_cnn)
    raw, _, success = L2CarliniWagnerAttack(**SETTINGS)(model, inputs, targets, epsilons=None)

    # Foolbox returns an all-zero image where it found nothing; that image may happen to be
    # misclassified, which is not a success of the attack.
    fb_found = fb_raw.flatten(1).abs().amax(1).numpy() > 0
    fb_success, success = fb_success.numpy() & fb_found, to_numpy(success)
    assert success.sum() >= fb_success.sum()
    # Failures count as infinitely large, so a failure can only raise the median.
    ours = np.where(success, l2_sizes(raw, x), np.inf)
    theirs = np.where(fb_success, l2_sizes(fb_raw, x), np.inf)
    assert np.median(ours) <= 1.01 * np.median(theirs), (np.median(ours), np.median(theirs))
    assert np.isfinite(np.median(ours))


@pytest.fixture(scope="module")
def cnn_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).uniform(0, 1, (64, 1, 8, 8)).astype(np.float32)
    model = cnn_model("numpy")
    labels = to_numpy(model(model.to_tensor(x, "x", floating=True)[0])).argmax(-1)
    return x, labels


@pytest.fixture(scope="module")
def torch_reference(cnn_data: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pytest.importorskip("torch")
    x, labels = cnn_data
    raw, _, success = L2CarliniWagnerAttack(**SETTINGS)(
        cnn_model("torch"), native("torch", x), native("torch", labels), epsilons=None
    )
    return l2_sizes(raw, x), to_numpy(success)


@pytest.mark.slow
def test_same_weights_same_result_in_every_framework(
    backend: str,
    cnn_data: tuple[np.ndarray, np.ndarray],
    torch_reference: tuple[np.ndarray, np.ndarray],
) -> None:
    x, labels = cnn_data
    reference_sizes, reference_success = torch_reference

    raw, _, success = L2CarliniWagnerAttack(**SETTINGS)(
        cnn_model(backend), native(backend, x), native(backend, labels), epsilons=None
    )

    sizes = l2_sizes(raw, x)
    np.testing.assert_array_equal(to_numpy(success), reference_success)
    assert reference_success.mean() > 0.9
    median, reference = np.median(sizes), np.median(reference_sizes)
    assert abs(median - reference) <= 0.01 * reference, (median, reference)
