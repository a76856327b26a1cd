"""Backend fixtures: every test parametrized over frameworks runs per framework, and each
framework's tests run alone with ``-m torch``, ``-m tensorflow``, ``-m jax`` or ``-m numpy``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from helpers import available

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One intra-op thread per framework: on 2 cores, small ops with two threads were 20-30x
# slower (thread hand-off dominates). Read by torch at import, before any test imports it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

GRADIENT_BACKENDS = ["torch", "tensorflow", "jax"]
ALL_BACKENDS = [*GRADIENT_BACKENDS, "numpy"]


def _params(names: list[str]) -> list[object]:
    return [
        pytest.param(
            name,
            marks=[
                getattr(pytest.mark, name),
                pytest.mark.skipif(not available(name), reason=f"{name} is not installed"),
            ],
            id=name,
        )
        for name in names
    ]


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One PyTorch thread even where OMP_NUM_THREADS was set otherwise: tiny models' intra-op
    threads only contend on the 2-core CI machines (a torchattacks comparison took 118 s with
    2 threads, 4 s with 1). Never imports torch itself."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=_params(GRADIENT_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """A framework with gradients: torch, tensorflow or jax."""
    return str(request.param)


@pytest.fixture(params=_params(ALL_BACKENDS))
def any_backend(request: pytest.FixtureRequest) -> str:
    """Any framework, NumPy included (forward passes only)."""
    return str(request.param)
