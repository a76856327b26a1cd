"""Small helpers over EagerPy tensors that every layer shares.

Framework types are recognised by their root module name, through the framework registry
(:mod:`advlib.models.registry`), cached per type. A few ops have fused forms that a backend
registers (:func:`l2_rows`, :func:`clip_between`, :func:`crossentropy_sum`): PyTorch runs
eagerly and pays for every intermediate tensor and autograd node, where XLA fuses the generic
form inside compiled steps, and TensorFlow's fused cross-entropy beats the generic form
(measured, see :func:`crossentropy_sum`). A framework is imported only when handed one of its
tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import eagerpy as ep
import numpy as np

Tree = Any  # an ep.Tensor, or a tuple / NamedTuple / list / dict of trees

_MISSING: Any = object()
# The registry's per-type backend cache, bound on first use (advlib.models imports this
# module, so the registry cannot be imported here); read inline by framework_of and _fused,
# which run in every model call and attack step.
_by_type: dict[type, Any] = {}


def _lookup(cls: type) -> Any:
    """The backend of type ``cls`` from the registry, binding its cache to ``_by_type``."""
    global _by_type
    from .models import registry

    _by_type = registry.type_cache()
    return registry.backend_of_type(cls)


def framework_of(value: Any) -> str | None:
    """The backend name of a raw or EagerPy tensor ("torch", "tensorflow", "jax", "numpy", or
    any registered backend), or None for anything else."""
    if isinstance(value, ep.Tensor):
        value = value.raw
    backend = _by_type.get(type(value), _MISSING)
    if backend is _MISSING:
        backend = _lookup(type(value))
    return None if backend is None else backend.name  # type: ignore[no-any-return]


def _fused(raw: Any, name: str) -> Callable[..., Any] | None:
    """The fused form of op ``name`` that ``raw``'s backend registers, if any."""
    backend = _by_type.get(type(raw), _MISSING)
    if backend is _MISSING:
        backend = _lookup(type(raw))
    return None if backend is None else backend.fused.get(name)  # type: ignore[no-any-return]


def dtype_kind(t: ep.Tensor) -> str:
    """ "float", "int", "bool" or "other" for a tensor of any backend."""
    return kind_of_dtype(t.dtype)


def kind_of_dtype(dtype: Any) -> str:
    """ "float", "int", "bool" or "other" for a dtype of any backend."""
    name = name_of_dtype(dtype)
    if "float" in name:
        return "float"
    if "int" in name:
        return "int"
    if name == "bool":
        return "bool"
    return "other"


def dtype_name(t: ep.Tensor) -> str:
    """The dtype's short name ("float32", "int64", "bfloat16", ...) for any backend."""
    return name_of_dtype(t.dtype)


def name_of_dtype(dtype: Any) -> str:
    """A dtype's short name ("float32", "int64", "bfloat16", ...) for any backend."""
    return str(dtype).removeprefix("torch.").removeprefix("<dtype: '").removesuffix("'>")


def map_tree(fn: Callable[[Any], Any], tree: Tree) -> Tree:
    """Apply ``fn`` to every leaf of a tuple / list / dict tree."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a NamedTuple (step state)
        return type(tree)(*(map_tree(fn, item) for item in tree))
    if isinstance(tree, tuple | list):
        return type(tree)(map_tree(fn, item) for item in tree)
    if isinstance(tree, dict):
        return {key: map_tree(fn, item) for key, item in tree.items()}
    return fn(tree)


def unwrap(tree: Tree) -> Tree:
    """EagerPy tensors -> raw framework tensors, leaving other leaves alone."""
    return map_tree(lambda leaf: leaf.raw if isinstance(leaf, ep.Tensor) else leaf, tree)


def wrap(tree: Tree) -> Tree:
    """Raw framework tensors -> EagerPy tensors."""
    return map_tree(lambda leaf: ep.astensor(leaf) if leaf is not None else leaf, tree)


def flat_batch(t: ep.Tensor) -> ep.Tensor:
    """(N, ...) -> (N, D). Works when N is unknown while tracing (TF relaxed shapes)."""
    return t.reshape((-1, math.prod(t.shape[1:])))


def l2_rows(flat: ep.Tensor) -> ep.Tensor:
    """Euclidean norm of each row of a (N, D) tensor: square, sum and square root, or the
    backend's fused ``l2_rows`` (PyTorch: one ``torch.linalg.vector_norm`` kernel, whose
    gradient at zero is zero)."""
    fused = _fused(flat.raw, "l2_rows")
    if fused is not None:
        norms: ep.Tensor = ep.astensor(fused(flat.raw))
        return norms
    return _generic_l2_rows(flat)


def clip_between(t: ep.Tensor, lower: ep.Tensor, upper: ep.Tensor) -> ep.Tensor:
    """Elementwise ``min(max(t, lower), upper)`` for tensors ``lower <= upper`` that broadcast
    against ``t``, or the backend's fused ``clip_between`` (PyTorch: one ``torch.clamp``
    kernel instead of two)."""
    fused = _fused(t.raw, "clip_between")
    if fused is not None:
        clipped: ep.Tensor = ep.astensor(fused(t.raw, lower.raw, upper.raw))
        return clipped
    return _generic_clip_between(t, lower, upper)


def crossentropy_sum(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    """The cross-entropy of each row of ``logits`` (N, C) against ``classes`` (N,), summed.

    Generic form: ``log_softmax`` and a gather, not ``ep.crossentropy``, whose JAX version
    builds the log-sum-exp from separate ``exp``/``log`` ops (a compiled PGD step on a
    784-256-10 MLP was 13% slower). Backends register a fused ``crossentropy_sum`` where it
    is faster: PyTorch's ``cross_entropy`` (two autograd nodes instead of four), TensorFlow's
    ``sparse_softmax_cross_entropy_with_logits`` (the generic gather made XLA-compiled FGSM
    on the MLP 14% slower than the native loop).
    """
    fused = _fused(logits.raw, "crossentropy_sum")
    if fused is not None:
        total: ep.Tensor = ep.astensor(fused(logits.raw, classes.raw))
        return total
    return _generic_crossentropy_sum(logits, classes)


def _generic_l2_rows(flat: ep.Tensor) -> ep.Tensor:
    return flat.square().sum(axis=-1).sqrt()


def _generic_clip_between(t: ep.Tensor, lower: ep.Tensor, upper: ep.Tensor) -> ep.Tensor:
    return ep.minimum(ep.maximum(t, lower), upper)


def _generic_crossentropy_sum(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
    log_probs = ep.log_softmax(logits, axis=-1)
    return -ep.take_along_axis(log_probs, classes[:, None], axis=-1).sum()


#: The generic form of each op a backend may fuse (the reference its fused form must equal).
GENERIC_OPS: Mapping[str, Callable[..., ep.Tensor]] = {
    "l2_rows": _generic_l2_rows,
    "clip_between": _generic_clip_between,
    "crossentropy_sum": _generic_crossentropy_sum,
}


def unflat_batch(t: ep.Tensor, like: ep.Tensor) -> ep.Tensor:
    """(N, D) -> the shape of ``like``, (N, ...)."""
    return t.reshape((-1, *like.shape[1:]))


def atleast_kd(t: ep.Tensor, k: int) -> ep.Tensor:
    """Append singleton axes so a per-sample tensor of shape (N,) broadcasts against rank k."""
    return t[(Ellipsis,) + (None,) * (k - t.ndim)]


def scalars_like(like: ep.Tensor, *values: float) -> ep.Tensor:
    """A 1-d tensor of ``values`` on ``like``'s backend, device and dtype: one transfer for
    several scalars (each transfer costs tens of microseconds next to a busy device)."""
    return ep.from_numpy(like, np.asarray(values, dtype=dtype_name(like)))


def scalar_like(like: ep.Tensor, value: float) -> ep.Tensor:
    """A 0-d tensor on ``like``'s backend, device and dtype."""
    return ep.from_numpy(like, np.asarray(value, dtype=dtype_name(like)))
