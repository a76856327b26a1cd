"""Equinox modules, wrapped as pure JAX functions. Importing this module imports no framework:
Equinox is imported when a module is wrapped or built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .jax import JAXModel, register_jax_kind
from .registry import Layers


class EquinoxModel(JAXModel):
    """Wrap an Equinox module (``equinox.Module``) returning logits, as a :class:`JAXModel`.

    Equinox modules are immutable pytrees: the wrapper calls the module in inference mode
    (``equinox.nn.inference_mode``: dropout off, a new pytree; the module is unchanged), vmapped
    over the batch when it takes single samples, compiled by ``jax.jit``. Stateful modules
    (``equinox.nn.State``, e.g. BatchNorm) are not supported: wrap a function that passes the
    state with :class:`JAXModel`.

    Args:
        module: the Equinox module.
        bounds: ``(lower, upper)`` of valid input values.
        batched: whether the module takes a batch (default True). Most Equinox layers take one
            sample (``eqx.nn.Conv2d`` takes (C, H, W)): pass ``batched=False`` to map the
            module over the batch with ``jax.vmap``.
        data_format: ``"channels_first"`` (default, Equinox's convolution layout),
            ``"channels_last"`` or None; informative, as in :class:`JAXModel`.
        **kwargs: ``preprocessing``, ``device``, ``compile``, ``output_key``,
            ``output_index``: as for :class:`JAXModel`.
    """

    def __init__(
        self,
        module: Any,
        bounds: Any,
        batched: bool = True,
        data_format: str | None = "channels_first",
        **kwargs: Any,
    ) -> None:
        if not is_equinox_module(module):
            raise TypeError(
                "module: expected an Equinox module (equinox.Module), got "
                f"{type(module).__module__}.{type(module).__name__}; wrap plain JAX functions "
                "with JAXModel"
            )
        if not isinstance(batched, bool):
            raise TypeError(
                f"batched: expected True (the module takes a batch) or False (it takes one "
                f"sample), got {batched!r}"
            )
        import equinox as eqx
        import jax

        inference = eqx.nn.inference_mode(module, True)
        forward = inference if batched else jax.vmap(inference)
        super().__init__(forward, bounds, data_format=data_format, **kwargs)


def is_equinox_module(model: Any) -> bool:
    """Whether ``model`` is an Equinox module (by its types' modules; imports nothing)."""
    return any(
        cls.__name__ == "Module" and cls.__module__.split(".")[0] == "equinox"
        for cls in type(model).__mro__
    )


def build_cnn(
    layers: Layers, weights: Mapping[str, np.ndarray], input_shape: tuple[int, ...]
) -> Any:
    """The reference network (see :mod:`advlib.zoo.architectures`) as an
    ``eqx.nn.Sequential`` taking ONE channels-first sample of ``input_shape`` (Equinox's
    convention): wrap it with ``batched=False``."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    key = jax.random.key(0)
    stack: list[Any] = []
    native: Any
    for layer in layers:
        if layer[0] in ("conv", "dense"):
            w = jnp.asarray(weights[f"{layer[1]}.w"], dtype=jnp.float32)
            b = jnp.asarray(weights[f"{layer[1]}.b"], dtype=jnp.float32)
            if layer[0] == "conv":  # OIHW, as Equinox stores it; bias of shape (O, 1, 1)
                native = eqx.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding="SAME", key=key)
                values = (w, b[:, None, None])
            else:  # Equinox stores (out, in)
                native, values = eqx.nn.Linear(w.shape[0], w.shape[1], key=key), (w.T, b)
            stack.append(eqx.tree_at(lambda m: (m.weight, m.bias), native, values))
        elif layer[0] == "relu":
            stack.append(eqx.nn.Lambda(jax.nn.relu))
        else:
            stack.append(eqx.nn.Lambda(jnp.ravel))  # one sample: (C, H, W) order
    return eqx.nn.Sequential(stack)


# The reference CNN's layers take one sample at a time.
_WRAPPER = "advlib.models.equinox:EquinoxModel"
KIND = register_jax_kind(
    "equinox", _WRAPPER, is_equinox_module, build_cnn, "equinox", batched=False
)
