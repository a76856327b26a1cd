"""A small model zoo: 8x8 handwritten digits, two CNNs and an MLP, in every framework.

>>> x, y = advlib.zoo.digits("test")                  # (359, 1, 8, 8) float32 in [0, 1], int64
>>> model = advlib.zoo.digits_cnn("torch")            # doctest: +SKIP
>>> robust = advlib.zoo.digits_cnn("jax", robust=True)  # doctest: +SKIP
>>> other = advlib.zoo.digits_mlp("tensorflow")       # doctest: +SKIP

The data is scikit-learn's bundled copy of the UCI optical digits (1797 images), shipped in the
package and split 80/20 per class. Both networks (two 3x3 convolutions, two dense layers) come
from one weights file each, built natively in PyTorch, Keras, JAX or NumPy; every framework
gives the same logits. ``robust=True`` selects the variant trained with Linf PGD (epsilon 0.1).
:func:`digits_mlp`, a second architecture (one hidden layer of 128 units) trained on the same
data, is the target to measure how adversarials of the CNN transfer.
``scripts/train_zoo.py`` regenerates all files from a seed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .architectures import build, buildable_kinds, cnn_layers

__all__ = [
    "FRAMEWORKS",
    "digits",
    "digits_cnn",
    "digits_cnn_info",
    "digits_cnn_network",
    "digits_mlp",
    "digits_mlp_info",
    "digits_mlp_network",
]

_SPLITS = ("train", "test")


def __getattr__(name: str) -> Any:
    if name == "FRAMEWORKS":
        # Read from the registry on every access, so a kind registered later is listed too.
        return _frameworks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _frameworks() -> tuple[str, ...]:
    """``FRAMEWORKS``: the model kinds :func:`digits_cnn` builds for ("torch", "tensorflow",
    "jax", "numpy", and every other registered kind with a builder), installed or not."""
    return tuple(buildable_kinds())


def digits(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits as ``(inputs, labels)`` NumPy arrays.

    Args:
        split: ``"test"`` (359 images, the default) or ``"train"`` (1438 images).

    Returns:
        inputs of shape (N, 1, 8, 8), float32 in [0, 1] (channels first), and labels of
        shape (N,), int64 in 0..9. Fresh arrays on every call.
    """
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {list(_SPLITS)}, got {split!r}")
    data = _load("digits.npz")
    images, labels = data[f"x_{split}"], data[f"y_{split}"]
    return (images[:, None] / np.float32(16)).astype(np.float32), labels.astype(np.int64)


def digits_cnn(framework: str = "torch", robust: bool = False) -> Any:
    """A CNN trained on :func:`digits`, wrapped for ``framework`` with bounds (0, 1).

    Args:
        framework: the model kind: ``"torch"`` (default; a ``PyTorchModel``), ``"tensorflow"``
            (a ``TensorFlowModel`` around a Keras model), ``"jax"`` (a ``JAXModel``),
            ``"numpy"`` (a ``NumPyModel``: forward passes only, for gradient-free attacks), or
            any other of ``FRAMEWORKS``. All take channels-first inputs of shape (N, 1, 8, 8).
        robust: the adversarially trained variant (Linf PGD, epsilon 0.1) instead of the
            standard one. Default False.

    Returns:
        The advlib model wrapper around a fresh :func:`digits_cnn_network`.
    """
    return _wrapped(framework, digits_cnn_network(framework, robust))


def digits_cnn_network(framework: str = "torch", robust: bool = False) -> Any:
    """The native network behind :func:`digits_cnn`: a ``torch.nn.Module`` in eval mode, a
    ``keras.Model``, a function of a batch (``"jax"``: jax arrays, ``"numpy"``: arrays), or
    the native model of another kind. Arguments as for :func:`digits_cnn`; built fresh on
    every call."""
    _check_framework(framework)
    if not isinstance(robust, bool):
        raise TypeError(f"robust: expected True or False, got {robust!r}")
    return build(framework, cnn_layers(2, 2), _weights(robust), (1, 8, 8))


def digits_mlp(framework: str = "torch") -> Any:
    """An MLP trained on :func:`digits` (64-128-10, ReLU), wrapped for ``framework`` with
    bounds (0, 1): another architecture than :func:`digits_cnn`, for transfer attacks.

    Args:
        framework: the model kind, as for :func:`digits_cnn` (default ``"torch"``); takes the
            same channels-first inputs of shape (N, 1, 8, 8).

    Returns:
        The advlib model wrapper around a fresh :func:`digits_mlp_network`.
    """
    return _wrapped(framework, digits_mlp_network(framework))


def digits_mlp_network(framework: str = "torch") -> Any:
    """The native network behind :func:`digits_mlp`, as :func:`digits_cnn_network` builds
    the CNN's; built fresh on every call."""
    _check_framework(framework)
    return build(framework, cnn_layers(0, 2), _arrays(_MLP_FILE), (1, 8, 8))


def digits_mlp_info() -> dict[str, Any]:
    """How the MLP was trained (seed, epochs, test accuracy, architecture), from its file."""
    return dict(json.loads(str(_load(_MLP_FILE)["meta"])))


_MLP_FILE = "digits_mlp.npz"


def _check_framework(framework: str) -> None:
    if framework not in buildable_kinds():
        raise ValueError(f"framework: expected one of {list(_frameworks())}, got {framework!r}")


def _wrapped(framework: str, net: Any) -> Any:
    kind = buildable_kinds()[framework]
    return kind.wrapper_class()(net, bounds=(0, 1), **kind.wrap_kwargs)


def digits_cnn_info(robust: bool = False) -> dict[str, Any]:
    """How the network was trained (seed, epochs, test accuracy, PGD settings), from its file."""
    return dict(json.loads(str(_load(_weights_file(robust))["meta"])))


def _weights_file(robust: bool) -> str:
    return "digits_cnn_robust.npz" if robust else "digits_cnn.npz"


def _weights(robust: bool) -> dict[str, np.ndarray]:
    return _arrays(_weights_file(robust))


def _arrays(name: str) -> dict[str, np.ndarray]:
    data = _load(name)
    # Writable copies: frameworks warn about (or refuse) read-only NumPy memory.
    return {key: np.array(value) for key, value in data.items() if key != "meta"}


@cache
def _load(name: str) -> dict[str, np.ndarray]:
    path = resources.files(__name__).joinpath("data").joinpath(name)
    with path.open("rb") as file, np.load(file, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for array in arrays.values():
        array.flags.writeable = False  # cached: callers get copies or derived arrays
    return arrays
