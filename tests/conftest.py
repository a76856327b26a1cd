"""Backend fixtures: every test parametrized over frameworks runs per framework, and each
framework's tests run alone with ``-m torch``, ``-m tensorflow``, ``-m jax`` or ``-m numpy``.

The frameworks are the registry's model kinds (:mod:`advlib.models.registry`): ``backend`` and
``any_backend`` run over the core kinds, ``model_kind`` over every kind; each kind's marker
(its name, and its backend's) is added here, so a new framework needs no list edited.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from helpers import available, backend_of

from advlib.models import registry

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One intra-op thread per framework: on 2 cores, small ops with two threads were 20-30x
# slower (thread hand-off dominates). Read by torch at import, before any test imports it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_KINDS = registry.kinds()
ALL_BACKENDS = [name for name, kind in _KINDS.items() if kind.core]
GRADIENT_BACKENDS = [name for name in ALL_BACKENDS if backend_of(name).gradients]


def _markers(name: str) -> list[str]:
    """The kind's own marker and its backend's (one marker for a core kind)."""
    return list(dict.fromkeys([backend_of(name).name, name]))


def pytest_configure(config: pytest.Config) -> None:
    for marker in dict.fromkeys(m for name in _KINDS for m in _markers(name)):
        config.addinivalue_line("markers", f"{marker}: the {marker} model kind or backend")


def _params(names: list[str]) -> list[object]:
    return [
        pytest.param(
            name,
            marks=[
                *(getattr(pytest.mark, marker) for marker in _markers(name)),
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


@pytest.fixture(params=_params(list(_KINDS)))
def model_kind(request: pytest.FixtureRequest) -> str:
    """Every registered model kind, core or not (the contract suite): its name, for
    ``helpers.cnn_model``, ``helpers.native`` and ``advlib.zoo.digits_cnn``."""
    return str(request.param)
