"""The fast paths around an attack call: host-memory checks, cached scalars and output probes,
label tensors for compiled code, fused projections. Each must agree with the slow path."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import cnn_model, host_memory, native

import advlib
from advlib import attacks
from advlib._tensors import clip_between, crossentropy_sum, l2_rows
from advlib.criteria import Misclassification, TargetedMisclassification, TopKMisclassification
from advlib.criteria.labels import split_labels
from advlib.norms import l1, l2, linf


def _inputs(n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


# ----------------------------------------------------------------------------- value range
@pytest.mark.parametrize("path", ["host", "device"])
def test_value_range_agrees_on_host_and_device(backend: str, path: str) -> None:
    model = cnn_model(backend)
    x = _inputs()
    x[3, 0, 2, 2] = -0.25
    tensor, _ = model.to_tensor(x, "x", floating=True)
    if path == "device":
        with host_memory(model, False):
            assert model.host_array(tensor) is None
            found = model.value_range(tensor)
    else:
        assert model.host_array(tensor) is not None, "a CPU tensor has host memory"
        found = model.value_range(tensor)
    assert found == pytest.approx((float(x.min()), float(x.max())))
    x[5, 0, 1, 1] = np.nan
    tensor, _ = model.to_tensor(x, "x", floating=True)
    with host_memory(model, path == "host"):
        low, high = model.value_range(tensor)
    assert np.isnan(low) and np.isnan(high), "NaN must propagate to be refused"


@pytest.mark.parametrize("path", ["host", "device"])
def test_inputs_are_refused_on_both_paths(backend: str, path: str) -> None:
    model = cnn_model(backend)
    x = _inputs()
    labels = np.zeros(len(x), dtype=np.int64)
    for bad, message in ((np.nan, "NaN"), (np.inf, "NaN or infinite"), (1.5, "within")):
        y = x.copy()
        y[2, 0, 4, 4] = bad
        with host_memory(model, path == "host"), pytest.raises(ValueError, match=message):
            attacks.FGSM()(model, native(backend, y), native(backend, labels), epsilons=0.1)


# ----------------------------------------------------------------------------- probes
def test_the_output_probe_runs_once_per_input_signature() -> None:
    torch = pytest.importorskip("torch")
    model = cnn_model("torch")
    calls = [0]
    model._model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    x, labels = torch.as_tensor(_inputs()), torch.zeros(16, dtype=torch.int64)

    def forward_passes(inputs: Any) -> int:
        calls[0] = 0
        attacks.FGSM()(model, inputs, labels[: len(inputs)], epsilons=0.1)
        return calls[0]

    first = forward_passes(x)
    assert forward_passes(x) == first - 1, "the second call reuses the probe"
    assert forward_passes(x[:8]) == first - 1, "the batch size is not part of the signature"


def test_probability_warning_survives_the_probe_cache() -> None:
    torch = pytest.importorskip("torch")
    net = cnn_model("torch")._model
    model = advlib.PyTorchModel(torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)), bounds=(0, 1))
    x, labels = torch.as_tensor(_inputs()), torch.zeros(16, dtype=torch.int64)
    attacks.FGSM()(model, x, labels, epsilons=0.1)  # probes and caches the verdict
    from advlib.attacks import base

    base._warned_probabilities.discard("LinfBasicIterativeAttack")
    with pytest.warns(UserWarning, match="probabilities"):
        attacks.LinfBasicIterativeAttack(steps=2)(model, x, labels, epsilons=0.1)


def test_label_range_is_checked_on_the_cached_probe(backend: str) -> None:
    model = cnn_model(backend)
    x = native(backend, _inputs())
    ok = native(backend, np.zeros(16, dtype=np.int64))
    attacks.FGSM()(model, x, ok, epsilons=0.1)
    with pytest.raises(ValueError, match=r"labels: class indices must lie in \[0, 9\]"):
        attacks.FGSM()(model, x, native(backend, np.full(16, 10, dtype=np.int64)), epsilons=0.1)


# ----------------------------------------------------------------------------- label tensors
CRITERIA = {
    "misclassification": lambda y, t: Misclassification(y),
    "targeted": lambda y, t: TargetedMisclassification(t),
    "targeted with labels": lambda y, t: TargetedMisclassification(t, labels=y),
    "top-k": lambda y, t: TopKMisclassification(y, k=3),
    "combined": lambda y, t: Misclassification(y) & TopKMisclassification(y, k=2),
}


@pytest.mark.parametrize("name", list(CRITERIA))
def test_split_labels_rebuilds_the_same_criterion(name: str) -> None:
    rng = np.random.default_rng(0)
    y = ep.astensor(rng.integers(0, 10, 32))
    t = ep.astensor((y.numpy() + 1) % 10)
    logits = ep.astensor(rng.normal(size=(32, 10)).astype(np.float32))
    criterion = CRITERIA[name](y, t)
    split = split_labels(criterion)
    assert split is not None
    tensors, rebuild, structure = split
    hash(structure)
    np.testing.assert_array_equal(
        rebuild(tensors)(logits, logits).numpy(), criterion(logits, logits).numpy()
    )
    # other labels: the same structure (one compiled function serves both)
    y2, t2 = ep.astensor((y.numpy() + 3) % 10), ep.astensor((y.numpy() + 5) % 10)
    other = split_labels(CRITERIA[name](y2, t2))
    assert other is not None and other[2] == structure
    np.testing.assert_array_equal(
        rebuild(other[0])(logits, logits).numpy(), CRITERIA[name](y2, t2)(logits, logits).numpy()
    )


def test_split_labels_refuses_unknown_criteria() -> None:
    class Custom(Misclassification):
        pass

    assert split_labels(Custom(ep.astensor(np.zeros(3, dtype=np.int64)))) is None


# ----------------------------------------------------------------------------- norm hooks
@pytest.mark.parametrize("per_sample", [False, True])
def test_linf_region_projection_equals_project_then_clip(per_sample: bool) -> None:
    rng = np.random.default_rng(0)
    origin = ep.astensor(rng.uniform(0, 1, (12, 3, 4)).astype(np.float32))
    x = ep.astensor(rng.uniform(-0.5, 1.5, (12, 3, 4)).astype(np.float32))
    eps: Any = ep.astensor(rng.uniform(0.01, 0.4, 12).astype(np.float32)) if per_sample else 0.1
    bounds = (0.0, 1.0)
    region = linf.region(origin, eps, bounds)
    fused = linf.project_region(x, origin, eps, region, bounds)
    reference = linf.project(x, origin, eps).clip(*bounds)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), atol=1e-6)


@pytest.mark.parametrize("norm", [l1, l2, linf], ids=["l1", "l2", "linf"])
def test_ascend_is_a_normalized_step(norm: Any) -> None:
    rng = np.random.default_rng(0)
    x = ep.astensor(rng.uniform(0, 1, (6, 5, 5)).astype(np.float32))
    direction = ep.astensor(rng.normal(size=(6, 5, 5)).astype(np.float32))
    stepsize = ep.astensor(np.asarray(0.3, dtype=np.float32))
    moved = norm.ascend(x, direction, stepsize)
    expected = x + stepsize * norm.normalize(direction)
    np.testing.assert_allclose(moved.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm(moved - x).numpy(), 0.3, rtol=1e-5)


def test_clip_between_matches_numpy(backend: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 2, (9, 2, 3)).astype(np.float32)
    low = rng.uniform(-0.5, 0.5, (9, 2, 3)).astype(np.float32)
    high = low + rng.uniform(0, 1, (9, 1, 1)).astype(np.float32)
    found = clip_between(*(ep.astensor(native(backend, a)) for a in (x, low, high)))
    np.testing.assert_array_equal(found.numpy(), np.minimum(np.maximum(x, low), high))


@pytest.mark.parametrize("label_dtype", ["int64", "int32"])
def test_crossentropy_sum_matches_numpy(backend: str, label_dtype: str) -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 5, (11, 7)).astype(np.float32)
    classes = rng.integers(0, 7, 11).astype(label_dtype)
    found = crossentropy_sum(
        ep.astensor(native(backend, logits)), ep.astensor(native(backend, classes))
    )
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_probs[np.arange(11), classes].sum()
    np.testing.assert_allclose(float(found.numpy()), expected, rtol=1e-5)


def test_torch_crossentropy_sum_gradient_matches_the_generic_form() -> None:
    torch = pytest.importorskip("torch")
    logits = torch.randn(13, 6, dtype=torch.float64, requires_grad=True)
    classes = torch.randint(0, 6, (13,))
    (fused,) = torch.autograd.grad(
        crossentropy_sum(ep.astensor(logits), ep.astensor(classes)).raw, logits
    )
    generic = -torch.log_softmax(logits, -1).gather(1, classes[:, None]).sum()
    (expected,) = torch.autograd.grad(generic, logits)
    torch.testing.assert_close(fused, expected)


def test_torch_l2_rows_matches_the_formula_and_has_zero_gradient_at_zero() -> None:
    torch = pytest.importorskip("torch")
    flat = torch.randn(7, 30, dtype=torch.float64)
    flat[2] = 0
    expected = flat.square().sum(-1).sqrt()
    np.testing.assert_allclose(l2_rows(ep.astensor(flat)).raw.numpy(), expected.numpy())
    leaf = flat.clone().requires_grad_(True)
    l2_rows(ep.astensor(leaf)).raw.sum().backward()
    assert torch.isfinite(leaf.grad).all() and (leaf.grad[2] == 0).all()


# ----------------------------------------------------------------------------- scalars
def test_model_scalars_are_cached_per_value_and_dtype(backend: str) -> None:
    model = cnn_model(backend)
    x32, _ = model.to_tensor(_inputs(), "x", floating=True)
    a = model.scalars(x32, 0.1, 0.25)
    assert model.scalars(x32, 0.1, 0.25) is a
    np.testing.assert_allclose([s.numpy() for s in a], [0.1, 0.25], rtol=1e-6)
    assert all(s.dtype == x32.dtype and s.shape == () for s in a)
    assert model.scalars(x32, 0.1, 0.5) is not a


# ----------------------------------------------------------------------------- aliasing
def test_torch_results_never_share_memory_with_the_inputs() -> None:
    torch = pytest.importorskip("torch")
    model = cnn_model("torch")
    x = torch.as_tensor(_inputs())
    before = x.clone()
    labels = torch.zeros(16, dtype=torch.int64)
    raw, clipped, _ = attacks.LinfPGD(steps=2, seed=0)(model, x, labels, epsilons=[0.0, 0.1])
    for tensor in (*raw, *clipped):
        tensor.add_(1.0)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_finite_rows_do_not_overflow_in_half_precision(backend: str, dtype: str) -> None:
    from advlib.attacks.base import _finite_rows

    values = np.full((4, 3, 32, 32), 255.0, dtype=dtype)  # row sums of 783360 > float16 max
    values[1, 0, 0, 0] = np.nan
    values[2, 2, 5, 5] = np.inf
    found = _finite_rows(ep.astensor(native(backend, values))).numpy()
    np.testing.assert_array_equal(found, [True, False, False, True])
