"""Flax NNX modules, wrapped as pure JAX functions. Importing this module imports no framework:
Flax is imported when a module is wrapped or built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .jax import JAXModel, register_jax_kind
from .registry import Layers


class FlaxNNXModel(JAXModel):
    """Wrap a Flax NNX module (``flax.nnx.Module``) returning logits, as a :class:`JAXModel`.

    The module is split once into its graph definition and state (``nnx.split``) and called as
    the pure function ``nnx.merge(graphdef, state)(x)``, compiled by ``jax.jit``: the module is
    never mutated (RNG counters and batch statistics included), and it runs in inference mode
    (``deterministic=True``, ``use_running_average=True``, as ``module.eval()`` sets them)
    without changing the module's own flags. The state is read once, when the wrapper is
    created: wrap the module again after changing its weights.

    Args:
        module: the NNX module, called on a batch.
        bounds: ``(lower, upper)`` of valid input values.
        **kwargs: ``preprocessing``, ``data_format`` (default ``"channels_last"``, NNX's
            convolution layout), ``device``, ``compile``, ``output_key``, ``output_index``:
            as for :class:`JAXModel`.
    """

    def __init__(self, module: Any, bounds: Any, **kwargs: Any) -> None:
        if not is_nnx_module(module):
            raise TypeError(
                "module: expected a Flax NNX module (flax.nnx.Module), got "
                f"{type(module).__module__}.{type(module).__name__}; wrap Flax Linen models "
                "with JAXModel(functools.partial(module.apply, variables), bounds)"
            )
        super().__init__(_pure_forward(module), bounds, **kwargs)


def is_nnx_module(model: Any) -> bool:
    """Whether ``model`` is a Flax NNX module (by its types' modules; imports nothing)."""
    return any(
        cls.__name__ == "Module" and cls.__module__.startswith("flax.nnx")
        for cls in type(model).__mro__
    )


def _pure_forward(module: Any) -> Callable[[Any], Any]:
    from flax import nnx

    # A view shares the module's arrays with inference flags set; the module keeps its own.
    view = nnx.view(module, deterministic=True, use_running_average=True, raise_if_not_found=False)
    graphdef, state = nnx.split(view)
    return lambda x: nnx.merge(graphdef, state)(x)


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Any:
    """The reference network (see :mod:`advlib.zoo.architectures`) as an ``nnx.Sequential``
    taking channels-first batches of ``input_shape`` (NNX convolutions are channels-last: the
    network transposes on the way in and back before flattening)."""
    from flax import nnx

    image = any(layer[0] == "conv" for layer in layers)
    rngs = nnx.Rngs(0)
    stack: list[Any] = [_channels_last] if image else []
    for layer in layers:
        if layer[0] in ("conv", "dense"):
            w, b = weights[f"{layer[1]}.w"], weights[f"{layer[1]}.b"]
            init: dict[str, Any] = dict(bias_init=_constant(b), rngs=rngs)
            if layer[0] == "conv":  # OIHW -> HWIO
                kernel = _constant(w.transpose(2, 3, 1, 0))
                size = (w.shape[2], w.shape[3])
                stack.append(nnx.Conv(w.shape[1], w.shape[0], size, kernel_init=kernel, **init))
            else:
                stack.append(nnx.Linear(w.shape[0], w.shape[1], kernel_init=_constant(w), **init))
        elif layer[0] == "relu":
            stack.append(nnx.relu)
        else:
            stack += [_channels_first, _flatten] if image else [_flatten]
    return nnx.Sequential(*stack)


def _constant(value: np.ndarray) -> Callable[..., Any]:
    """An NNX initializer ``(key, shape, dtype) -> value`` giving fixed weights."""
    import jax.numpy as jnp

    array = jnp.asarray(value, dtype=jnp.float32)
    return lambda *_: array


def _channels_last(x: Any) -> Any:
    return x.transpose(0, 2, 3, 1)


def _channels_first(x: Any) -> Any:
    return x.transpose(0, 3, 1, 2)


def _flatten(x: Any) -> Any:
    return x.reshape(x.shape[0], -1)


KIND = register_jax_kind(
    "flax-nnx", "advlib.models.flax_nnx:FlaxNNXModel", is_nnx_module, build_cnn, "flax"
)
