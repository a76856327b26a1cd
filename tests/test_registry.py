"""The framework registry: a framework registered at run time is read everywhere, every kind
builds the reference CNN, fused ops equal their generic forms, and importing advlib (which
imports every framework module) imports no framework."""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import CNN_LAYERS, available, backend_of, cnn_model, cnn_weights, native, to_numpy

import advlib
from advlib import _tensors
from advlib.evaluation import data
from advlib.evaluation.demo import demo_frameworks
from advlib.models import registry
from advlib.models.numpy import NumPyModel
from advlib.models.numpy import build_cnn as numpy_cnn
from advlib.zoo.architectures import build

_X = np.random.default_rng(3).uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)


class FakeTensor:
    """The fake framework's tensors: a NumPy array in a box that NumPy cannot convert."""

    __array__ = None  # np.asarray(FakeTensor) must fail: only the registered hook converts

    def __init__(self, values: Any) -> None:
        self.values = np.asarray(values)


class FakeNet:
    """The fake framework's models: a function of NumPy batches."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.fn = fn

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


# Types of the fake framework live in its own root module, as a real framework's do.
FakeTensor.__module__ = "fakefw.tensor"
FakeNet.__module__ = "fakefw.nets"


class FakeModel(NumPyModel):
    """The fake kind's wrapper."""


def _build_fake(layers: Any, weights: Any, shape: tuple[int, ...]) -> FakeNet:
    return FakeNet(numpy_cnn(layers, weights, shape))


@contextlib.contextmanager
def fake_framework(**kind_args: Any) -> Iterator[list[Any]]:
    """Register the fake backend and kind (``kind_args`` override the kind's fields); yield
    the arguments its fused ``l2_rows`` was called with; unregister both afterwards."""
    calls: list[Any] = []

    def l2_rows(raw: Any) -> Any:
        calls.append(raw)
        return np.sqrt((raw.values**2).sum(-1))

    registry.register_backend(
        registry.Backend(
            name="fakefw",
            modules=("fakefw",),
            requires="numpy",
            gradients=False,
            to_numpy=lambda t: t.values,
            from_numpy=FakeTensor,
            fused={"l2_rows": l2_rows},
        )
    )
    fields: dict[str, Any] = {
        "name": "fakefw",
        "wrapper": f"{__name__}:FakeModel",
        "backend": "fakefw",
        "recognizes": lambda model: "fakefw" in registry.module_roots(model),
        "build": _build_fake,
        "wrap_kwargs": {"data_format": "channels_first"},
        **kind_args,
    }
    registry.register_kind(registry.ModelKind(**fields))
    try:
        yield calls
    finally:
        registry.unregister_kind(fields["name"])
        registry.unregister_backend("fakefw")


@pytest.mark.numpy
def test_a_framework_registered_at_run_time_is_read_everywhere() -> None:
    tensor = FakeTensor(np.ones((2, 3)))
    assert _tensors.framework_of(tensor) is None  # cached as "no backend" ...
    with fake_framework() as calls:
        assert _tensors.framework_of(tensor) == "fakefw"  # ... and the cache was cleared
        assert "fakefw" in registry.kinds() and "fakefw" in advlib.zoo.FRAMEWORKS
        assert advlib.FakeModel is advlib.models.FakeModel is FakeModel
        assert "FakeModel" in dir(advlib) and "FakeModel" in dir(advlib.models)
        assert available("fakefw") and isinstance(native("fakefw", _X), FakeTensor)
        np.testing.assert_array_equal(data.to_numpy(FakeTensor(_X), "x"), _X)
        np.testing.assert_array_equal(to_numpy(FakeTensor(_X)), _X)

        wrapped = advlib.wrap(FakeNet(numpy_cnn(CNN_LAYERS, cnn_weights(), (1, 8, 8))), (0, 1))
        assert type(wrapped) is FakeModel
        zoo_model = advlib.zoo.digits_cnn("fakefw")
        assert type(zoo_model) is FakeModel and zoo_model.data_format == "channels_first"
        np.testing.assert_array_equal(zoo_model(_X), advlib.zoo.digits_cnn("numpy")(_X))

        rows = ep.NumPyTensor(tensor)  # type: ignore[arg-type]
        np.testing.assert_allclose(_tensors.l2_rows(rows).numpy(), np.sqrt([3.0, 3.0]))
        assert calls == [tensor]  # the backend's fused op, not the generic form
        assert "fakefw" not in demo_frameworks()  # no gradients
    assert _tensors.framework_of(tensor) is None
    assert "fakefw" not in registry.kinds() and "fakefw" not in advlib.zoo.FRAMEWORKS
    assert not hasattr(advlib, "FakeModel")
    with pytest.raises(TypeError, match="FakeNet"):
        advlib.wrap(FakeNet(np.asarray), (0, 1))


@pytest.mark.numpy
def test_wrap_tries_specific_kinds_before_the_core_wrappers() -> None:
    net = FakeNet(np.asarray)
    generic: dict[str, Any] = {"name": "fakecore", "core": True, "order": 0}
    generic["wrapper"] = "advlib.models.numpy:NumPyModel"
    with fake_framework(**generic):  # a core kind that takes FakeNets, listed first
        assert type(advlib.wrap(net, (0, 1))) is NumPyModel
        with fake_framework():  # and a specific one, listed after it
            assert list(registry.kinds()).index("fakecore") < list(registry.kinds()).index("fakefw")
            assert type(advlib.wrap(net, (0, 1))) is FakeModel


@pytest.mark.numpy
@pytest.mark.parametrize(
    "model",
    [lambda x: x, functools.partial(np.add, 1), FakeNet(np.asarray).__call__],
    ids=["lambda", "partial", "method"],
)
def test_wrap_refuses_plain_callables_and_lists_the_wrappers(model: Any) -> None:
    with pytest.raises(TypeError, match=r"plain Python callable.*explicitly.*NumPyModel"):
        advlib.wrap(model, bounds=(0, 1))


@pytest.mark.numpy
def test_wrap_refuses_unknown_objects_and_lists_the_wrappers() -> None:
    with pytest.raises(TypeError, match=r"recognises no model of type builtins\.str.*JAXModel"):
        advlib.wrap("resnet50", bounds=(0, 1))


def test_every_kind_builds_the_numpy_reference_cnn(model_kind: str) -> None:
    reference = numpy_cnn(CNN_LAYERS, cnn_weights(), (1, 8, 8))(_X)
    model = cnn_model(model_kind)
    logits = to_numpy(model(native(model_kind, _X)))
    # float32 sums in another order: differences of about 1e-6 on logits of about 1
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-4)


def test_wrap_picks_a_wrapper_for_every_kinds_network(model_kind: str) -> None:
    kind = registry.kinds()[model_kind]
    net = build(model_kind, CNN_LAYERS, cnn_weights(), (1, 8, 8))
    if not any(k.recognizes(net) for k in registry.kinds().values()):
        with pytest.raises(TypeError, match="explicitly"):  # JAX and NumPy: plain functions
            advlib.wrap(net, (0, 1))
        return
    model = advlib.wrap(net, (0, 1), **kind.wrap_kwargs)
    reference = numpy_cnn(CNN_LAYERS, cnn_weights(), (1, 8, 8))(_X)
    np.testing.assert_allclose(model(_X), reference, rtol=0, atol=1e-4)


@pytest.mark.torch
def test_wrap_gives_a_pytorch_model_for_a_torch_module() -> None:
    pytest.importorskip("torch")
    net = build("torch", CNN_LAYERS, cnn_weights(), (1, 8, 8))
    assert type(advlib.wrap(net, bounds=(0, 1))) is advlib.PyTorchModel


def test_fused_ops_equal_the_generic_form(any_backend: str) -> None:
    rng = np.random.default_rng(0)
    flat = rng.normal(0, 1, (5, 7)).astype(np.float32)
    flat[2] = 0  # the norm's kink
    bound = rng.uniform(0, 1, (5, 7)).astype(np.float32)
    logits = rng.normal(0, 3, (6, 4)).astype(np.float32)
    arguments: dict[str, list[tuple[np.ndarray, ...]]] = {
        "l2_rows": [(flat,)],
        "clip_between": [(flat, -bound, bound), (flat, -bound[:1], bound[:1])],
        "crossentropy_sum": [
            (logits, rng.integers(0, 4, 6).astype(dtype)) for dtype in ("int64", "int32")
        ],
    }
    fused = backend_of(any_backend).fused
    assert set(fused) <= set(_tensors.GENERIC_OPS)
    for name, op in fused.items():
        for args in arguments[name]:
            tensors = [ep.astensor(native(any_backend, a)) for a in args]
            expected = _tensors.GENERIC_OPS[name](*tensors).numpy()
            got = to_numpy(op(*(t.raw for t in tensors)))
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=name)
            public = getattr(_tensors, name)(*tensors).numpy()
            np.testing.assert_array_equal(public, got, err_msg=name)  # dispatches to it


_NO_FRAMEWORK = """
import json, sys
import advlib
from advlib.models import registry
from advlib.models._lazy import lazy_import
kinds, backends = registry.kinds(), registry.backends()
frameworks = {m for b in backends.values() for m in (b.requires, *b.modules)} - {"numpy"}
frameworks |= {m for k in kinds.values() for m in k.requires} - {"numpy"}
wrappers = [getattr(advlib, name) for name in registry.wrapper_names()]
advlib.zoo.FRAMEWORKS, dir(advlib), dir(advlib.models)
proxy = lazy_import("tabnanny")
before = "tabnanny" in sys.modules
proxy.NannyNag
print(json.dumps({
    "imported": sorted(frameworks & set(sys.modules)),
    "checked": sorted(frameworks),
    "wrappers": len(wrappers),
    "proxy": [before, "tabnanny" in sys.modules, sys.modules.get("tabnanny") is proxy],
}))
"""


@pytest.mark.numpy
def test_importing_advlib_and_every_framework_module_imports_no_framework() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NO_FRAMEWORK],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["imported"] == []
    assert {"torch", "tensorflow", "jax"} <= set(found["checked"])
    assert found["wrappers"] >= 4
    assert found["proxy"] == [False, True, False]  # imported on use, never the proxy itself


@pytest.mark.numpy
def test_subclasses_of_a_backends_tensors_belong_to_it() -> None:
    class Image(np.ndarray):
        """A user's array type, defined outside NumPy."""

    Image.__module__ = "mylib.arrays"
    assert _tensors.framework_of(np.zeros(3).view(Image)) == "numpy"
    assert _tensors.framework_of(FakeTensor(1)) is None and _tensors.framework_of(3.0) is None
