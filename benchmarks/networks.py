"""The benchmark networks, built natively in one framework from one set of NumPy weights.

- ``digits``: the 8x8-digits CNN of the issue (two 3x3 convs, two dense layers), input (1, 8, 8).
- ``mlp``: a 784-256-10 MLP, input (1, 28, 28).
- ``resnet``: a small CIFAR-shaped ResNet (3x32x32 inputs, three residual stages, global
  average pooling), written here per framework.

Every network takes channels-first inputs (N, C, H, W) in [0, 1]; the Keras and JAX ResNets
transpose to channels-last internally, where their convolutions are fastest. Weights are random
(seeded), the same in every framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from advlib.zoo.architectures import Layer, build, cnn_layers

Weights = dict[str, np.ndarray]

#: (in channels, out channels, stride) of each residual block of the ResNet.
RESNET_BLOCKS: tuple[tuple[int, int, int], ...] = ((8, 8, 1), (8, 16, 2), (16, 32, 2))
RESNET_STEM = 8


@dataclass(frozen=True)
class NetworkSpec:
    """A benchmark network: its name, input shape (without batch) and number of classes."""

    name: str
    input_shape: tuple[int, ...]
    classes: int = 10


NETWORKS: dict[str, NetworkSpec] = {
    "digits": NetworkSpec("digits", (1, 8, 8)),
    "mlp": NetworkSpec("mlp", (1, 28, 28)),
    "resnet": NetworkSpec("resnet", (3, 32, 32)),
}

MLP_LAYERS: list[Layer] = [("flatten",), ("dense", "fc1"), ("relu",), ("dense", "fc2")]


def weights_for(name: str, seed: int = 0) -> Weights:
    """Random weights of network ``name``, scaled so that logits are of order one."""
    rng = np.random.default_rng(seed)
    if name == "digits":
        return {
            "conv1.w": rng.normal(0, 0.3, (8, 1, 3, 3)),
            "conv1.b": rng.normal(0, 0.1, 8),
            "conv2.w": rng.normal(0, 0.1, (16, 8, 3, 3)),
            "conv2.b": rng.normal(0, 0.1, 16),
            "fc1.w": rng.normal(0, 0.03, (16 * 64, 32)),
            "fc1.b": np.zeros(32),
            "fc2.w": rng.normal(0, 0.2, (32, 10)),
            "fc2.b": np.zeros(10),
        }
    if name == "mlp":
        return {
            "fc1.w": rng.normal(0, 1 / np.sqrt(784), (784, 256)),
            "fc1.b": np.zeros(256),
            "fc2.w": rng.normal(0, 2 / np.sqrt(256), (256, 10)),
            "fc2.b": np.zeros(10),
        }
    if name == "resnet":
        return _resnet_weights(rng)
    raise ValueError(f"network: expected one of {sorted(NETWORKS)}, got {name!r}")


def _conv(rng: np.random.Generator, cin: int, cout: int, k: int, gain: float = 1.0) -> np.ndarray:
    return rng.normal(0, gain * np.sqrt(2 / (cin * k * k)), (cout, cin, k, k))


def _resnet_weights(rng: np.random.Generator) -> Weights:
    w: Weights = {"stem.w": _conv(rng, 3, RESNET_STEM, 3), "stem.b": np.zeros(RESNET_STEM)}
    for i, (cin, cout, stride) in enumerate(RESNET_BLOCKS):
        w[f"b{i}.c1.w"] = _conv(rng, cin, cout, 3)
        w[f"b{i}.c1.b"] = np.zeros(cout)
        w[f"b{i}.c2.w"] = _conv(rng, cout, cout, 3, gain=0.5)
        w[f"b{i}.c2.b"] = np.zeros(cout)
        if stride != 1 or cin != cout:
            w[f"b{i}.sc.w"] = _conv(rng, cin, cout, 1)
    last = RESNET_BLOCKS[-1][1]
    w["fc.w"] = rng.normal(0, 1 / np.sqrt(last), (last, 10))
    w["fc.b"] = np.zeros(10)
    return w


def build_network(framework: str, name: str, seed: int = 0) -> Any:
    """Network ``name`` as a native model of ``framework`` (``nn.Module``, ``keras.Model`` or a
    JAX function of a batch)."""
    spec = NETWORKS[name]
    weights = weights_for(name, seed)
    if name == "digits":
        return build(framework, cnn_layers(2, 2), weights, spec.input_shape)
    if name == "mlp":
        return build(framework, MLP_LAYERS, weights, spec.input_shape)
    builders: dict[str, Callable[[Weights], Any]] = {
        "torch": _torch_resnet,
        "tensorflow": _keras_resnet,
        "jax": _jax_resnet,
    }
    return builders[framework](weights)


def _torch_resnet(weights: Weights) -> Any:
    import torch
    from torch import nn

    def tensor(name: str) -> Any:
        return nn.Parameter(torch.as_tensor(weights[name], dtype=torch.float32).clone())

    def conv(name: str, stride: int, bias: bool = True) -> nn.Conv2d:
        w = weights[f"{name}.w"]
        # Strided 3x3 convs pad (0, 1) like Keras / XLA "SAME", so all frameworks agree.
        padding = w.shape[2] // 2 if stride == 1 else 0
        layer = nn.Conv2d(
            w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=padding, bias=bias
        )
        layer.weight = tensor(f"{name}.w")
        if bias:
            layer.bias = tensor(f"{name}.b")
        return layer

    class Block(nn.Module):
        def __init__(self, i: int, stride: int) -> None:
            super().__init__()
            self.c1 = conv(f"b{i}.c1", stride)
            self.c2 = conv(f"b{i}.c2", 1)
            has_shortcut = f"b{i}.sc.w" in weights
            self.sc = conv(f"b{i}.sc", stride, bias=False) if has_shortcut else nn.Identity()

        def forward(self, x: Any) -> Any:
            padded = x if self.c1.stride == (1, 1) else nn.functional.pad(x, (0, 1, 0, 1))
            return torch.relu(self.c2(torch.relu(self.c1(padded))) + self.sc(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = conv("stem", 1)
            self.blocks = nn.Sequential(
                *(Block(i, stride) for i, (_, _, stride) in enumerate(RESNET_BLOCKS))
            )
            self.fc = nn.Linear(RESNET_BLOCKS[-1][1], 10)
            self.fc.weight = nn.Parameter(torch.as_tensor(weights["fc.w"].T, dtype=torch.float32))
            self.fc.bias = tensor("fc.b")

        def forward(self, x: Any) -> Any:
            x = self.blocks(torch.relu(self.stem(x)))
            return self.fc(x.mean(dim=(2, 3)))

    return ResNet().eval()


def _hwio(w: np.ndarray) -> np.ndarray:
    return np.asarray(w.transpose(2, 3, 1, 0), dtype=np.float32)


def _keras_resnet(weights: Weights) -> Any:
    import keras

    loaded: list[tuple[Any, list[np.ndarray]]] = []

    def conv(name: str, stride: int, bias: bool = True) -> Any:
        w = weights[f"{name}.w"]
        layer = keras.layers.Conv2D(
            w.shape[0], w.shape[2], strides=stride, padding="same", use_bias=bias
        )
        values = [_hwio(w)] + ([np.asarray(weights[f"{name}.b"], np.float32)] if bias else [])
        loaded.append((layer, values))
        return layer

    inputs = keras.Input((3, 32, 32))
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.ReLU()(conv("stem", 1)(x))
    for i, (_, _, stride) in enumerate(RESNET_BLOCKS):
        y = keras.layers.ReLU()(conv(f"b{i}.c1", stride)(x))
        y = conv(f"b{i}.c2", 1)(y)
        shortcut = conv(f"b{i}.sc", stride, bias=False)(x) if f"b{i}.sc.w" in weights else x
        x = keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(10)
    outputs = dense(x)
    loaded.append((dense, [np.asarray(weights["fc.w"], np.float32), weights["fc.b"]]))
    model = keras.Model(inputs, outputs)
    for layer, values in loaded:
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return model


def _jax_resnet(weights: Weights) -> Callable[[Any], Any]:
    import jax
    import jax.numpy as jnp

    params = {
        k: jnp.asarray(_hwio(v) if v.ndim == 4 else v, dtype=jnp.float32)
        for k, v in weights.items()
    }

    def conv(x: Any, name: str, stride: int, bias: bool = True) -> Any:
        y = jax.lax.conv_general_dilated(
            x, params[f"{name}.w"], (stride, stride), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + params[f"{name}.b"] if bias else y

    def forward(x: Any) -> Any:
        x = jax.nn.relu(conv(jnp.transpose(x, (0, 2, 3, 1)), "stem", 1))
        for i, (_, _, stride) in enumerate(RESNET_BLOCKS):
            y = conv(jax.nn.relu(conv(x, f"b{i}.c1", stride)), f"b{i}.c2", 1)
            shortcut = conv(x, f"b{i}.sc", stride, bias=False) if f"b{i}.sc.w" in params else x
            x = jax.nn.relu(y + shortcut)
        return x.mean(axis=(1, 2)) @ params["fc.w"] + params["fc.b"]

    return forward
