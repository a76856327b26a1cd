"""One network description, built natively in PyTorch, Keras, JAX and NumPy from one set of weights.

A network is a list of layers: ``("conv", name)`` (3x3, stride 1, same padding, weights
``name.w`` of shape (out, in, 3, 3) and ``name.b``), ``("dense", name)`` (weights ``name.w`` of
shape (in, out) and ``name.b``), ``("relu",)`` and ``("flatten",)``. Every framework takes
channels-first inputs (N, C, H, W) and flattens in (C, H, W) order, so the same weights give
the same logits everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Layer = tuple[str, ...]
Weights = Mapping[str, np.ndarray]


def cnn_layers(n_conv: int, n_dense: int) -> list[Layer]:
    """conv-relu blocks, flatten, dense-relu blocks, with the last dense layer giving logits."""
    layers: list[Layer] = []
    for i in range(n_conv):
        layers += [("conv", f"conv{i + 1}"), ("relu",)]
    layers.append(("flatten",))
    for i in range(n_dense):
        layers.append(("dense", f"fc{i + 1}"))
        if i < n_dense - 1:
            layers.append(("relu",))
    return layers


def build(
    framework: str, layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]
) -> Any:
    """The network as a native model: an ``nn.Module`` (torch), a ``keras.Model``
    (tensorflow), or a function of a batch (jax, numpy). ``input_shape`` excludes the batch."""
    builders: dict[str, Callable[[Sequence[Layer], Weights, tuple[int, ...]], Any]] = {
        "torch": _torch,
        "tensorflow": _keras,
        "jax": _jax,
        "numpy": _numpy,
    }
    if framework not in builders:
        raise ValueError(f"framework: expected one of {sorted(builders)}, got {framework!r}")
    return builders[framework](layers, weights, input_shape)


def _torch(layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]) -> Any:
    import torch

    modules: list[Any] = []
    for layer in layers:
        if layer[0] == "conv":
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
            conv.weight.data = torch.as_tensor(w, dtype=torch.float32).clone()
            conv.bias.data = torch.as_tensor(b, dtype=torch.float32).clone()  # type: ignore[union-attr]
            modules.append(conv)
        elif layer[0] == "dense":
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            dense = torch.nn.Linear(w.shape[0], w.shape[1])
            dense.weight.data = torch.as_tensor(w.T, dtype=torch.float32).clone()
            dense.bias.data = torch.as_tensor(b, dtype=torch.float32).clone()
            modules.append(dense)
        elif layer[0] == "relu":
            modules.append(torch.nn.ReLU())
        else:
            modules.append(torch.nn.Flatten())
    return torch.nn.Sequential(*modules).eval()


def _keras(layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]) -> Any:
    import keras

    def channels_last(x: Any) -> Any:
        return keras.ops.transpose(x, (0, 2, 3, 1)) if len(x.shape) == 4 else x

    def channels_first(x: Any) -> Any:
        return keras.ops.transpose(x, (0, 3, 1, 2)) if len(x.shape) == 4 else x

    keras_layers: list[Any] = []
    loaded: list[tuple[Any, list[np.ndarray]]] = []
    image = any(layer[0] == "conv" for layer in layers)
    if image:
        keras_layers.append(keras.layers.Lambda(channels_last))
    for layer in layers:
        if layer[0] in ("conv", "dense"):
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            if layer[0] == "conv":
                native = keras.layers.Conv2D(w.shape[0], w.shape[2], padding="same")
                loaded.append((native, [w.transpose(2, 3, 1, 0), b]))
            else:
                native = keras.layers.Dense(w.shape[1])
                loaded.append((native, [w, b]))
            keras_layers.append(native)
        elif layer[0] == "relu":
            keras_layers.append(keras.layers.ReLU())
        else:
            if image:
                keras_layers.append(keras.layers.Lambda(channels_first))
            keras_layers.append(keras.layers.Flatten())
    model = keras.Sequential(keras_layers)
    model.build((None, *input_shape))
    for native, values in loaded:
        native.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return model


def _jax(
    layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]
) -> Callable[[Any], Any]:
    import jax
    import jax.numpy as jnp

    params = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in weights.items()}

    def forward(x: Any) -> Any:
        for layer in layers:
            if layer[0] == "conv":
                x = (
                    jax.lax.conv_general_dilated(
                        x,
                        params[f"{layer[1]}.w"],
                        (1, 1),
                        "SAME",
                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                    )
                    + params[f"{layer[1]}.b"][None, :, None, None]
                )
            elif layer[0] == "dense":
                x = x @ params[f"{layer[1]}.w"] + params[f"{layer[1]}.b"]
            elif layer[0] == "relu":
                x = jax.nn.relu(x)
            else:
                x = x.reshape((x.shape[0], -1))
        return x

    return forward


def _numpy(
    layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]
) -> Callable[[np.ndarray], np.ndarray]:
    params = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    def forward(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        for layer in layers:
            if layer[0] == "conv":
                x = (
                    _conv2d_same(x, params[f"{layer[1]}.w"])
                    + params[f"{layer[1]}.b"][None, :, None, None]
                )
            elif layer[0] == "dense":
                x = x @ params[f"{layer[1]}.w"] + params[f"{layer[1]}.b"]
            elif layer[0] == "relu":
                x = np.maximum(x, 0)
            else:
                x = x.reshape(x.shape[0], -1)
        return x

    return forward


def _conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero padding, NCHW inputs and OIHW weights."""
    k = w.shape[2]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, width = x.shape[2], x.shape[3]
    out = np.zeros((x.shape[0], w.shape[0], h, width), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            patch = padded[:, :, i : i + h, j : j + width]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j], optimize=True)
    return out
