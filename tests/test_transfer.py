"""The transfer family (DI, TI, NI, SI-NI, VMI, VNI), its image ops, the zoo MLP and
advlib.evaluation.transfer: references from torchattacks 3.5.1 and PyTorch ops."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import available, to_numpy

import advlib
from advlib import attacks
from advlib._random import SampleRandom
from advlib.attacks._transfer_ops import (
    kernel_1d,
    resize_pad_matrices,
    separable_map,
    smoothing_matrix,
)
from advlib.evaluation.transfer import transfer

needs_torch = pytest.mark.skipif(not available("torch"), reason="torch is not installed")
X, Y = advlib.zoo.digits("test")
X, Y = X[:16], Y[:16]


def _torchattacks() -> Any:
    return pytest.importorskip("torchattacks")


# ---------------------------------------------------------------------- image ops
@needs_torch
@pytest.mark.torch
@pytest.mark.parametrize("length", [8, 11])
def test_resize_pad_is_torch_bilinear_resize_and_zero_pad(length: int) -> None:
    import torch
    import torch.nn.functional as F

    image = np.random.default_rng(0).uniform(size=(1, 2, length, length))
    for size in range(1, length + 1):
        for offset in range(length - size + 1):
            resized = F.interpolate(
                torch.tensor(image), size=[size, size], mode="bilinear", align_corners=False
            )
            rest = length - size - offset
            expected = F.pad(resized, [offset, rest, offset, rest]).numpy()
            m = resize_pad_matrices(np.array([size]), np.array([offset]), length)[0]
            got = np.einsum("ha,ncab,wb->nchw", m, image, m)
            np.testing.assert_allclose(got, expected, atol=1e-12, err_msg=f"{size}, {offset}")


@needs_torch
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("name", ["gaussian", "linear", "uniform"])
@pytest.mark.parametrize("length", [3, 4, 15])
def test_smoothing_is_torchattacks_depthwise_convolution(name: str, length: int) -> None:
    import torch
    import torch.nn.functional as F

    ta = _torchattacks()
    kernel = ta.TIFGSM(torch.nn.Identity(), kernel_name=name, len_kernel=length).stacked_kernel
    grad = np.random.default_rng(1).normal(size=(2, 3, 8, 7)).astype(np.float32)
    expected = F.conv2d(torch.tensor(grad), kernel, stride=1, padding="same", groups=3).numpy()
    k = kernel_1d(name, length, 3.0)
    maps = (ep.astensor(smoothing_matrix(k, 8)), ep.astensor(smoothing_matrix(k, 7)))
    got = separable_map(ep.astensor(grad.astype(np.float64)), maps, (2, 3)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_separable_map_follows_the_layout() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 2, 5, 6))
    maps = (ep.astensor(rng.normal(size=(3, 5, 5))), ep.astensor(rng.normal(size=(1, 6, 6))))
    first = separable_map(ep.astensor(x), maps, (2, 3)).numpy()
    last = separable_map(ep.astensor(x.transpose(0, 2, 3, 1)), maps, (1, 2)).numpy()
    np.testing.assert_allclose(last.transpose(0, 3, 1, 2), first, atol=1e-12)
    rows, cols = maps[0].numpy(), maps[1].numpy()[0]
    np.testing.assert_allclose(first, np.einsum("nha,ncab,wb->nchw", rows, x, cols), atol=1e-12)


# ---------------------------------------------------------------------- against torchattacks
def _torch_cnn(channels: int = 1) -> tuple[Any, Any]:
    """The zoo CNN (for 3 channels: behind their mean), native and wrapped."""
    import torch

    net = advlib.zoo.digits_cnn_network("torch")
    if channels == 3:
        mean = torch.nn.Conv2d(3, 1, 1, bias=False)
        mean.weight.data.fill_(1 / 3)
        net = torch.nn.Sequential(mean, net).eval()
    return net, advlib.PyTorchModel(net, bounds=(0, 1))


def _inputs(channels: int) -> np.ndarray:
    return np.repeat(X, channels, axis=1) if channels > 1 else X


CASES = [  # (ours, torchattacks' class, shared settings, channels)
    (attacks.NIFGSM, "NIFGSM", {}, 1),
    (attacks.SINIFGSM, "SINIFGSM", {"m": 3}, 1),
    (attacks.DIFGSM, "DIFGSM", {"diversity_prob": 0.0, "decay": 0.5}, 1),
    (attacks.TIFGSM, "TIFGSM", {"diversity_prob": 0.0, "len_kernel": 5, "decay": 1.0}, 3),
]


@needs_torch
@pytest.mark.torch
@pytest.mark.parametrize("ours, theirs, settings, channels", CASES, ids=[c[1] for c in CASES])
def test_deterministic_members_equal_torchattacks(
    ours: Any, theirs: str, settings: dict[str, Any], channels: int
) -> None:
    import torch

    ta = _torchattacks()
    net, model = _torch_cnn(channels)
    x, eps, alpha = _inputs(channels), 0.1, 0.025
    reference = getattr(ta, theirs)(net, eps=eps, alpha=alpha, steps=5, **settings)
    expected = reference(torch.tensor(x), torch.tensor(Y)).numpy()
    got = ours(abs_stepsize=alpha, steps=5, **settings)(model, x, Y, epsilons=eps).clipped
    np.testing.assert_allclose(got, expected, atol=1e-6)


def _variance_reference(net: Any, x: np.ndarray, nesterov: bool, seed: int) -> np.ndarray:
    """torchattacks' VMIFGSM / VNIFGSM loop, with the neighbours advlib draws (one uniform
    draw per step from the seed, per sample) instead of torch's generator."""
    import torch

    eps, alpha, steps, decay, n, beta = 0.1, 0.025, 4, 1.0, 3, 1.5
    loss = torch.nn.CrossEntropyLoss()
    images, labels = torch.tensor(x), torch.tensor(Y)
    rng = SampleRandom(seed, None)
    momentum, v, adv = torch.zeros_like(images), torch.zeros_like(images), images.clone()

    def grad_at(point: Any, wrt: Any) -> Any:
        return torch.autograd.grad(loss(net(point), labels), wrt)[0]

    for _ in range(steps):
        adv.requires_grad = True
        adv_grad = grad_at(adv + decay * alpha * momentum if nesterov else adv, adv)
        grad = (adv_grad + v) / torch.mean(torch.abs(adv_grad + v), dim=(1, 2, 3), keepdim=True)
        momentum = grad = grad + momentum * decay
        noise = torch.tensor(
            rng.uniform(-1, 1, size=(len(x), n, *x.shape[1:])), dtype=torch.float32
        )
        total = torch.zeros_like(images)
        for j in range(n):
            neighbour = (adv.detach() + noise[:, j] * (eps * beta)).requires_grad_()
            total += grad_at(neighbour, neighbour)
        v = total / n - adv_grad
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.clamp(images + torch.clamp(adv - images, -eps, eps), 0, 1).detach()
    return adv.numpy()


@needs_torch
@pytest.mark.torch
@pytest.mark.parametrize("nesterov", [False, True], ids=["VMIFGSM", "VNIFGSM"])
def test_variance_tuning_equals_torchattacks_loop(nesterov: bool) -> None:
    net, model = _torch_cnn()
    cls = attacks.VNIFGSM if nesterov else attacks.VMIFGSM
    attack = cls(abs_stepsize=0.025, steps=4, N=3, seed=7)
    got = attack(model, X, Y, epsilons=0.1).clipped
    np.testing.assert_allclose(got, _variance_reference(net, X, nesterov, 7), atol=1e-6)


# ---------------------------------------------------------------------- properties
@pytest.mark.parametrize("cls", [attacks.DIFGSM, attacks.TIFGSM, attacks.VMIFGSM])
def test_a_sample_does_not_depend_on_its_batch(backend: str, cls: Any) -> None:
    model = advlib.zoo.digits_cnn(backend)
    attack = cls(steps=3, seed=3)
    whole = np.asarray(to_numpy(attack(model, X, Y, epsilons=0.1).clipped))
    rows = np.arange(4, 9)
    part = attack(model, X[rows], Y[rows], epsilons=0.1, indices=rows).clipped
    np.testing.assert_allclose(np.asarray(to_numpy(part)), whole[rows], atol=1e-6)


def test_diversity_changes_the_result_and_the_seed_is_used(backend: str) -> None:
    model = advlib.zoo.digits_cnn(backend)
    plain = attacks.DIFGSM(diversity_prob=0.0, steps=5, seed=0)(model, X, Y, epsilons=0.2)
    results = [
        attacks.DIFGSM(diversity_prob=1.0, steps=5, seed=s)(model, X, Y, epsilons=0.2)
        for s in (0, 0, 1)
    ]
    as_np = [np.asarray(to_numpy(r.clipped)) for r in (plain, *results)]
    assert not np.array_equal(as_np[0], as_np[1])
    np.testing.assert_array_equal(as_np[1], as_np[2])
    resized = attacks.DIFGSM(diversity_prob=1.0, resize_rate=0.5, steps=5, seed=1)
    other = np.asarray(to_numpy(resized(model, X, Y, epsilons=0.2).clipped))
    assert not np.array_equal(as_np[1], other)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (attacks.DIFGSM, {"resize_rate": 1.1}, "resize_rate: expected a number in \\(0, 1\\)"),
        (attacks.DIFGSM, {"diversity_prob": 2}, "diversity_prob: expected a probability"),
        (attacks.TIFGSM, {"kernel_name": "box"}, "kernel_name: expected one of"),
        (attacks.TIFGSM, {"len_kernel": 0}, "len_kernel: expected an int >= 1"),
        (attacks.TIFGSM, {"channel_axis": 2}, "channel_axis: expected 1"),
        (attacks.SINIFGSM, {"m": 0}, "m: expected an int >= 1"),
        (attacks.VMIFGSM, {"beta": -1}, "beta: expected a number > 0"),
        (attacks.NIFGSM, {"decay": -1}, "decay: expected a number >= 0"),
    ],
)
def test_bad_arguments_are_named(cls: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.jax
@pytest.mark.skipif(not available("jax"), reason="jax is not installed")
def test_unknown_layout_and_tiny_images_are_explained() -> None:
    net = advlib.zoo.digits_cnn_network("jax")
    model = advlib.JAXModel(net, bounds=(0, 1), data_format=None)
    with pytest.raises(ValueError, match="channel_axis: the image layout is unknown"):
        attacks.TIFGSM()(model, X, Y, epsilons=0.1)
    # Given the layout, it runs; a rate that leaves no pixel is refused.
    attacks.TIFGSM(channel_axis=1, steps=1)(model, X, Y, epsilons=0.1)
    with pytest.raises(ValueError, match=r"resize_rate: 0\.1 shrinks images"):
        attacks.DIFGSM(channel_axis=1, resize_rate=0.1)(model, X, Y, epsilons=0.1)
    flat = advlib.JAXModel(lambda z: net(z.reshape(-1, 1, 8, 8)), bounds=(0, 1))
    with pytest.raises(ValueError, match="inputs: input diversity and gradient smoothing"):
        attacks.DIFGSM()(flat, X.reshape(-1, 64), Y, epsilons=0.1)


# ---------------------------------------------------------------------- zoo MLP
def test_zoo_mlp_gives_the_reference_logits(any_backend: str) -> None:
    weights = advlib.zoo._arrays("digits_mlp.npz")
    x, y = advlib.zoo.digits("test")
    hidden = np.maximum(
        x.reshape(len(x), -1).astype(np.float64) @ weights["fc1.w"] + weights["fc1.b"], 0
    )
    reference = hidden @ weights["fc2.w"] + weights["fc2.b"]
    model = advlib.zoo.digits_mlp(any_backend)
    tensor, _ = model.to_tensor(x, "x", floating=True)
    logits = np.asarray(to_numpy(model(tensor)))
    np.testing.assert_allclose(logits, reference, atol=1e-4)
    accuracy = float((reference.argmax(1) == y).mean())
    assert advlib.zoo.digits_mlp_info()["clean_test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert accuracy > 0.9


# ---------------------------------------------------------------------- evaluation
def test_transfer_report_counts_target_errors_on_both_correct_samples(backend: str) -> None:
    surrogate, target = advlib.zoo.digits_cnn(backend), advlib.zoo.digits_mlp("numpy")
    x, y = advlib.zoo.digits("test")
    x, y = x[:40], y[:40]
    attack = attacks.NIFGSM(steps=3)
    report = transfer(surrogate, target, {"NI": attack}, (x, y), [0.0, 0.1, 0.3])

    def predict(model: Any, inputs: Any) -> np.ndarray:
        tensor, _ = model.to_tensor(inputs, "x", floating=True)
        return np.asarray(to_numpy(model(tensor))).argmax(1)

    both = (predict(surrogate, x) == y) & (predict(target, x) == y)
    assert report.counted == both.sum() and report.total == 40 and both.sum() > 30
    result = attack(surrogate, x[both], y[both], epsilons=[0.0, 0.1, 0.3])
    fooled = [float(np.mean(predict(target, c) != y[both])) for c in result.clipped]
    assert report.rates["NI"] == pytest.approx(fooled)
    assert report.rates["NI"][0] == 0 and report.rates["NI"][2] > report.rates["NI"][1] > 0
    assert report.white_box["NI"][2] >= report.rates["NI"][2] - 0.5
    assert "NI" in str(report) and report.to_dict()["epsilons"] == [0.0, 0.1, 0.3]


def test_transfer_refuses_bad_arguments() -> None:
    model = advlib.zoo.digits_mlp("numpy")
    with pytest.raises(TypeError, match="data: expected a pair"):
        transfer(model, model, [attacks.NIFGSM()], [X], 0.1)
    with pytest.raises(ValueError, match="attacks: two attacks of one class"):
        transfer(model, model, [attacks.NIFGSM(), attacks.NIFGSM()], (X, Y), 0.1)
    with pytest.raises(TypeError, match="attacks\\['x'\\]: expected an advlib attack"):
        transfer(model, model, {"x": object()}, (X, Y), 0.1)  # type: ignore[dict-item]
