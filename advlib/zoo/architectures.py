"""One network description, built natively by every model kind from one set of weights.

A network is a list of layers: ``("conv", name)`` (3x3, stride 1, same padding, weights
``name.w`` of shape (out, in, 3, 3) and ``name.b``), ``("dense", name)`` (weights ``name.w`` of
shape (in, out) and ``name.b``), ``("relu",)`` and ``("flatten",)``. Every kind takes
channels-first inputs (N, C, H, W) and flattens in (C, H, W) order, so the same weights give
the same logits everywhere. Each kind's builder lives in its framework's module of
:mod:`advlib.models` and is registered as :attr:`~advlib.models.registry.ModelKind.build`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..models import registry

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


def buildable_kinds() -> dict[str, registry.ModelKind]:
    """The registered model kinds that can build the network, by name."""
    return {name: kind for name, kind in registry.kinds().items() if kind.build is not None}


def build(
    framework: str, layers: Sequence[Layer], weights: Weights, input_shape: tuple[int, ...]
) -> Any:
    """The network as a native model of the kind ``framework``: an ``nn.Module`` (torch), a
    ``keras.Model`` (tensorflow), a function of a batch (jax, numpy), or whatever another
    registered kind builds. ``input_shape`` excludes the batch."""
    kind = buildable_kinds().get(framework)
    if kind is None or kind.build is None:
        raise ValueError(
            f"framework: expected one of {sorted(buildable_kinds())}, got {framework!r}"
        )
    return kind.build(layers, weights, input_shape)
