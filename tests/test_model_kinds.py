"""Keras 3 models on every Keras backend, Flax NNX and Equinox modules (issue 16).

Each kind builds the reference CNN from the NumPy weights of tests/helpers.py: its logits must
equal the NumPy reference network's, and FGSM / L2 PGD on it must equal the same attacks on the
core wrapper of its backend (JAXModel, PyTorchModel, TensorFlowModel) over the same weights.
Keras on jax and torch runs in subprocesses: KERAS_BACKEND must be set before keras is
imported, and TensorFlow and torch in one process can crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import CNN_LAYERS, cnn_weights

import advlib
from advlib.models import registry
from advlib.zoo.architectures import build

SHAPE = (1, 8, 8)
LINF_EPS = 0.05
L2_EPS = 0.5
FRAMEWORKS = ("torch", "tensorflow", "jax", "keras", "flax", "equinox")


def _data() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Weights, 8 inputs in [0, 1] and the reference network's labels for them."""
    weights = {k: v.astype(np.float32) for k, v in cnn_weights(0).items()}
    x = np.random.default_rng(1).uniform(0, 1, (8, *SHAPE)).astype(np.float32)
    labels = _reference_logits(weights, x).argmax(-1)
    return weights, x, labels


def _reference_logits(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.asarray(build("numpy", CNN_LAYERS, weights, SHAPE)(x))


def _built(kind_name: str, weights: dict[str, np.ndarray], **kwargs: Any) -> tuple[Any, Any]:
    """The kind's native CNN and its wrapper (as the zoo and tests wrap it, plus ``kwargs``)."""
    kind = registry.kinds()[kind_name]
    assert kind.build is not None
    net = kind.build(CNN_LAYERS, weights, SHAPE)
    return net, kind.wrapper_class()(net, bounds=(0, 1), **kind.wrap_kwargs, **kwargs)


def _gradient(model: Any, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The input gradient of the summed cross-entropy (FGSM's direction, before the sign)."""
    inputs, _ = model.to_tensor(x, "x", floating=True)
    targets, _ = model.to_tensor(labels, "labels", floating=False)

    def loss(t: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
        logits = model(t)
        return ep.crossentropy(logits, targets).sum(), logits

    return model.value_and_grad(loss, inputs)[2].numpy()


def attack_results(
    model: Any, x: np.ndarray, labels: np.ndarray, core: bool = False
) -> dict[str, np.ndarray]:
    """Logits, FGSM and deterministic L2 PGD results as NumPy; for the ``core`` wrapper (the
    reference) the loss gradient too."""
    fgsm = advlib.attacks.FGSM()(model, x, labels, epsilons=LINF_EPS)
    pgd = advlib.attacks.L2PGD(steps=5, random_start=False)(model, x, labels, epsilons=L2_EPS)
    results = {
        "logits": np.asarray(model(x)),
        "fgsm": np.asarray(fgsm.clipped),
        "pgd": np.asarray(pgd.clipped),
    }
    if core:
        results["grad"] = _gradient(model, x, labels)
    return results


def check_results(
    kind: dict[str, np.ndarray], core: dict[str, np.ndarray], x: np.ndarray, reference: np.ndarray
) -> None:
    """The kind's results against the NumPy reference logits and its backend's core wrapper."""
    np.testing.assert_allclose(kind["logits"], reference, atol=1e-4, rtol=0)
    for name, eps, norm in (("fgsm", LINF_EPS, np.inf), ("pgd", L2_EPS, 2)):
        adv = kind[name]
        assert adv.dtype == np.float32 and adv.min() >= 0 and adv.max() <= 1
        sizes = np.linalg.norm((adv - x).reshape(len(x), -1), ord=norm, axis=1)
        assert (sizes <= eps * (1 + 1e-5)).all(), (name, sizes)
    # FGSM steps by the gradient's sign: the two networks round differently (float32, other
    # op orders), which can flip only signs of components far below the gradient's scale.
    grad = core["grad"]
    scale = np.abs(grad).reshape(len(x), -1).max(1).reshape(-1, 1, 1, 1)
    decided = np.abs(grad) > 1e-3 * scale
    assert decided.mean() > 0.5
    np.testing.assert_allclose(kind["fgsm"][decided], core["fgsm"][decided], atol=1e-6, rtol=0)
    # 5 normalised gradient steps: float32 gradient differences (~1e-6 relative) stay far
    # below 1e-4 in the result.
    np.testing.assert_allclose(kind["pgd"], core["pgd"], atol=1e-4, rtol=0)
    assert np.abs(kind["pgd"] - x).max() > 1e-2  # the attack moved the inputs


# ------------------------------------------------------------------ in-process kinds
IN_PROCESS = [
    pytest.param("flax-nnx", "flax", marks=[pytest.mark.jax], id="flax-nnx"),
    pytest.param("equinox", "equinox", marks=[pytest.mark.jax], id="equinox"),
    pytest.param("keras", "keras", marks=[pytest.mark.tensorflow], id="keras-tensorflow"),
]


def _in_process_backend(kind_name: str, package: str) -> str:
    pytest.importorskip(package)
    backend = registry.kinds()[kind_name].backend_name()
    if kind_name == "keras" and backend != "tensorflow":
        pytest.skip(f"Keras runs on {backend} in this process (tested in a subprocess below)")
    pytest.importorskip(backend)
    return backend


def _weights_of(kind_name: str, net: Any) -> list[np.ndarray]:
    """The network's arrays (to show they do not change)."""
    if kind_name == "keras":
        return [np.array(w) for w in net.get_weights()]
    import jax

    if kind_name == "flax-nnx":
        from flax import nnx

        leaves = jax.tree_util.tree_leaves(nnx.state(net))  # parameters, RNG keys and counts
        keys = [jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) for leaf in leaves]
        return [
            np.array(jax.random.key_data(leaf) if key else leaf)
            for leaf, key in zip(leaves, keys, strict=True)
        ]
    import equinox as eqx

    return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))]


@pytest.mark.parametrize(("kind_name", "package"), IN_PROCESS)
def test_kind_matches_reference_and_core_wrapper(kind_name: str, package: str) -> None:
    backend = _in_process_backend(kind_name, package)
    weights, x, labels = _data()
    # Eager: compiling the attacks' steps took seconds here; the contract suite compares
    # compiled with eager runs for every kind, and the Keras subprocesses run compiled.
    net, model = _built(kind_name, weights, compile=False)
    before = _weights_of(kind_name, net)
    assert model.framework == backend
    results = attack_results(model, x, labels)
    core = attack_results(_built(backend, weights, compile=False)[1], x, labels, core=True)
    check_results(results, core, x, _reference_logits(weights, x))
    for old, new in zip(before, _weights_of(kind_name, net), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize(("kind_name", "package"), IN_PROCESS)
def test_wrap_picks_the_kind(kind_name: str, package: str) -> None:
    _in_process_backend(kind_name, package)
    kind = registry.kinds()[kind_name]
    weights, x, _ = _data()
    net, _ = _built(kind_name, weights)
    model = advlib.wrap(net, bounds=(0, 1), **kind.wrap_kwargs)
    assert isinstance(model, kind.wrapper_class())
    assert kind.recognizes(net)
    assert [k.name for k in registry.kinds().values() if not k.core and k.recognizes(net)] == [
        kind_name
    ]
    np.testing.assert_allclose(np.asarray(model(x)), _reference_logits(weights, x), atol=1e-4)


# ------------------------------------------------------------------ Flax NNX
@pytest.mark.jax
def test_flax_nnx_runs_in_inference_mode_without_mutating_the_module() -> None:
    nnx = pytest.importorskip("flax.nnx")
    from advlib.models.flax_nnx import FlaxNNXModel

    class Net(nnx.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            self.dense = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
            self.dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(1))

        def __call__(self, x: Any) -> Any:
            return self.dropout(self.dense(x))

    net = Net()
    x = np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)
    before = _weights_of("flax-nnx", net)
    expected = np.asarray(net.dense(x))
    for compile in (True, False):
        model = FlaxNNXModel(net, bounds=(0, 1), compile=compile)
        np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)  # no dropout
    assert net.dropout.deterministic is False  # the user's module keeps its mode
    for old, new in zip(before, _weights_of("flax-nnx", net), strict=True):
        np.testing.assert_array_equal(old, new)  # RNG counters included


@pytest.mark.jax
def test_flax_nnx_rejects_other_models() -> None:
    pytest.importorskip("flax.nnx")
    from advlib.models.flax_nnx import FlaxNNXModel

    with pytest.raises(TypeError, match=r"module: expected a Flax NNX module .*builtins\.int"):
        FlaxNNXModel(3, bounds=(0, 1))


# ------------------------------------------------------------------ Equinox
@pytest.mark.jax
def test_equinox_batched_and_inference_mode() -> None:
    eqx = pytest.importorskip("equinox")
    import jax

    from advlib.models.equinox import EquinoxModel

    linear = eqx.nn.Linear(4, 3, key=jax.random.key(0))
    net = eqx.nn.Sequential([linear, eqx.nn.Dropout(0.5)])
    x = np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)
    expected = np.asarray(jax.vmap(linear)(x))
    model = EquinoxModel(net, bounds=(0, 1), batched=False)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6)
    assert net.layers[1].inference is False  # the user's module is unchanged

    def batched(batch: Any) -> Any:
        return batch @ linear.weight.T + linear.bias

    # A module of batches (any eqx.Module with a batch-level __call__) is called as is.
    class Batched(eqx.Module):  # type: ignore[misc]
        layer: Any

        def __call__(self, batch: Any) -> Any:
            return batched(batch)

    whole = EquinoxModel(Batched(linear), bounds=(0, 1))
    np.testing.assert_allclose(np.asarray(whole(x)), expected, rtol=1e-5)
    assert whole.data_format == "channels_first"


@pytest.mark.jax
def test_equinox_argument_errors() -> None:
    eqx = pytest.importorskip("equinox")
    import jax

    from advlib.models.equinox import EquinoxModel

    with pytest.raises(TypeError, match=r"module: expected an Equinox module"):
        EquinoxModel(lambda x: x, bounds=(0, 1))
    linear = eqx.nn.Linear(4, 3, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"batched: expected True .* got 1"):
        EquinoxModel(linear, bounds=(0, 1), batched=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------ Keras
@pytest.mark.tensorflow
def test_keras_argument_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    keras = pytest.importorskip("keras")
    from advlib.models import keras as keras_kind

    with pytest.raises(TypeError, match=r"model: expected a Keras 3 model .*builtins\.int"):
        keras_kind.KerasModel(3, bounds=(0, 1))
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"model: the Keras model .* is not built"):
        keras_kind.KerasModel(unbuilt, bounds=(0, 1))
    monkeypatch.setattr(keras_kind, "configured_backend", lambda: "numpy")
    with pytest.raises(ValueError, match=r"Keras runs on the 'numpy' backend.*KERAS_BACKEND"):
        keras_kind.KerasModel(unbuilt, bounds=(0, 1))


@pytest.mark.tensorflow
def test_keras_transform_bounds_copies_the_backend_wrapper() -> None:
    """transform_bounds copies the wrapper (copy.copy calls __new__ with no arguments)."""
    pytest.importorskip("keras")
    weights, x, _ = _data()
    _, model = _built("keras", weights)
    moved = model.transform_bounds((0, 255))
    assert type(moved) is type(model) and moved.keras_model is model.keras_model
    np.testing.assert_allclose(np.asarray(moved(x * 255)), np.asarray(model(x)), atol=1e-4)


def test_configured_backend_imports_nothing() -> None:
    """Listing the kinds (advlib.wrap, the test fixtures) reads the Keras backend without
    importing keras, and recognisers import no framework."""
    code = (
        "import sys; from advlib.models import registry; "
        "kinds = registry.kinds(); print(kinds['keras'].backend_name()); "
        "[kind.recognizes(object()) for kind in kinds.values()]; "
        f"print(sorted(set(sys.modules) & set({list(FRAMEWORKS)!r})))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["jax", "[]"]


_SUBPROCESS = """
import sys
sys.path[:0] = {paths!r}
import test_model_kinds
test_model_kinds.keras_subprocess({data!r}, {out!r})
"""


def keras_subprocess(data_path: str, out_path: str) -> None:
    """In a process with KERAS_BACKEND set: attack the Keras CNN (wrapped by advlib.wrap, the
    backend's default compilation) and the backend's core wrapper (eager: compiling it only
    costs time) on the same weights; save both results and facts."""
    with np.load(data_path) as data:
        x, labels = data["x"], data["labels"]
        weights = {k[2:]: data[k] for k in data.files if k.startswith("w.")}
    net, model = _built("keras", weights)
    backend = registry.kinds()["keras"].backend_name()
    wrapped = advlib.wrap(net, bounds=(0, 1), data_format="channels_first")
    before = [np.array(w) for w in net.get_weights()]
    results = attack_results(wrapped, x, labels)
    core = attack_results(_built(backend, weights, compile=False)[1], x, labels, core=True)
    unchanged = all(
        np.array_equal(old, new) for old, new in zip(before, net.get_weights(), strict=True)
    )
    no_grads = all(getattr(v.value, "grad", None) is None for v in net.variables)
    native = registry.backends()[backend].from_numpy(x)
    facts = [backend, wrapped.framework, type(wrapped).__name__, type(model).__name__]
    np.savez(
        out_path,
        facts=np.array(facts),
        unchanged=unchanged and no_grads,
        native_out=registry.backend_of_type(type(wrapped(native))).name,  # type: ignore[union-attr]
        **{f"kind.{k}": v for k, v in results.items()},
        **{f"core.{k}": v for k, v in core.items()},
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("jax", marks=[pytest.mark.jax]),
        pytest.param("torch", marks=[pytest.mark.torch]),
    ],
)
def test_keras_on_other_backends(backend: str, tmp_path: Path) -> None:
    pytest.importorskip("keras")
    pytest.importorskip(backend)
    weights, x, labels = _data()
    data, out = tmp_path / "data.npz", tmp_path / "out.npz"
    np.savez(data, x=x, labels=labels, **{f"w.{k}": v for k, v in weights.items()})
    tests = str(Path(__file__).parent)
    code = _SUBPROCESS.format(paths=[tests, str(Path(tests).parent)], data=str(data), out=str(out))
    env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as saved:
        wrapper = {"jax": "KerasJAXModel", "torch": "KerasTorchModel"}[backend]
        assert list(saved["facts"]) == [backend, backend, wrapper, wrapper]
        assert bool(saved["unchanged"])
        assert str(saved["native_out"]) == backend
        results = {k[5:]: saved[k] for k in saved.files if k.startswith("kind.")}
        core = {k[5:]: saved[k] for k in saved.files if k.startswith("core.")}
    check_results(results, core, x, _reference_logits(weights, x))
