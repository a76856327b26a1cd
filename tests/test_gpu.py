"""GPU checks: run on a machine with CUDA (``pytest -m gpu``); skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CNN_LAYERS, cnn_weights

import advlib
from advlib.zoo.architectures import build

pytestmark = pytest.mark.gpu


def _cuda_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


def test_torch_inputs_and_results_stay_on_the_gpu() -> None:
    torch = _cuda_torch()
    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8)).cuda()
    model = advlib.PyTorchModel(net, bounds=(0, 1))
    assert model.device.type == "cuda"
    x = torch.rand(64, 1, 8, 8, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    _raw, clipped, success = advlib.attacks.LinfPGD(steps=5, seed=0)(model, x, y, epsilons=0.1)
    assert clipped.device == x.device and success.device == x.device
    _, _cpu_clipped, cpu_success = advlib.attacks.LinfPGD(steps=5, seed=0)(
        advlib.PyTorchModel(build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8)), bounds=(0, 1)),
        x.cpu(),
        y.cpu(),
        epsilons=0.1,
    )
    agreement = (success.cpu() == cpu_success).float().mean().item()
    assert agreement >= 0.98


def test_numpy_inputs_go_to_the_model_device() -> None:
    torch = _cuda_torch()
    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8)).cuda()
    model = advlib.PyTorchModel(net, bounds=(0, 1))
    x = np.random.default_rng(0).uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    _, clipped, success = advlib.attacks.FGSM()(model, x, np.arange(16) % 10, epsilons=0.1)
    assert isinstance(clipped, np.ndarray) and success.dtype == np.bool_
    assert torch.cuda.max_memory_allocated() > 0
