"""Calling ``tf.function`` steps through concrete functions, with flat tensor arguments.

An attack calls its compiled step hundreds of times per run. A ``tf.function`` call spends
most of its fixed cost (about 0.35 ms on a 2-core CPU, measured) matching the arguments
against its traces in Python; a concrete function with flat tensor arguments skips that
(about 0.2 ms). :class:`FlatFunction` keeps one concrete function per argument structure and
input signature, and like ``reduce_retracing`` relaxes dimensions that change between calls
(a new batch size) to ``None``, so a run over chunks of different sizes traces at most twice.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, cast

from ._lazy import lazy_import

if TYPE_CHECKING:
    import tensorflow as tf
else:
    tf = lazy_import("tensorflow")

# The structure of an argument tree: nested tuples of "T" (a tensor) and static leaves.
Structure = Hashable


def flatten(tree: Any, leaves: list[Any]) -> Structure:
    """Append the tensors of ``tree`` to ``leaves``; return its structure (hashable)."""
    if isinstance(tree, tuple | list):  # tuple, list or NamedTuple (a step's named state)
        return (type(tree), tuple(flatten(item, leaves) for item in tree))
    if isinstance(tree, tf.Tensor | tf.Variable):
        leaves.append(tree)
        return "T"
    return ("static", tree)  # None and Python constants are part of the structure


def unflatten(structure: Structure, leaves: Any) -> Any:
    """Rebuild the tree of ``structure`` from an iterator over its tensors."""
    if structure == "T":
        return next(leaves)
    kind, content = cast(tuple[Any, Any], structure)
    if kind == "static":
        return content
    items = [unflatten(item, leaves) for item in content]
    if kind is list:
        return items
    return kind(*items) if hasattr(kind, "_fields") else kind(items)


class _Traces:
    """The concrete functions of one argument structure, by input signature."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.by_signature: dict[tuple[Any, ...], Any] = {}
        self.specs: list[tf.TensorSpec] | None = None
        self.concrete: Any = None

    def get(self, leaves: list[Any]) -> Any:
        signature = tuple((tuple(t.shape), t.dtype) for t in leaves)
        concrete = self.by_signature.get(signature)
        if concrete is None:
            concrete = self._trace(leaves)
            self.by_signature[signature] = concrete
        return concrete

    def _trace(self, leaves: list[Any]) -> Any:
        specs = [tf.TensorSpec(t.shape, t.dtype) for t in leaves]
        if self.specs is not None:
            if all(s.is_compatible_with(t) for s, t in zip(self.specs, leaves)):
                return self.concrete
            if all(s.dtype == t.dtype and s.shape.rank == t.shape.rank
                   for s, t in zip(self.specs, leaves)):
                specs = [_relaxed(old, new) for old, new in zip(self.specs, specs)]
        self.specs = specs
        self.concrete = self.function.get_concrete_function(*specs)
        return self.concrete


def _relaxed(old: tf.TensorSpec, new: tf.TensorSpec) -> tf.TensorSpec:
    """The spec whose dimensions are ``None`` where ``old`` and ``new`` differ."""
    dims = [a if a == b else None for a, b in zip(old.shape.as_list(), new.shape.as_list())]
    return tf.TensorSpec(dims, old.dtype)


class FlatFunction:
    """``fn`` (a function of raw TF tensors, tuples and constants) compiled by ``tf.function``
    and called through concrete functions with flat tensor arguments."""

    def __init__(self, fn: Callable[..., Any], jit_compile: bool) -> None:
        self._fn = fn
        self._jit_compile = jit_compile
        self._traces: dict[Structure, _Traces] = {}

    def __call__(self, *args: Any) -> Any:
        leaves: list[Any] = []
        structure = flatten(args, leaves)
        traces = self._traces.get(structure)
        if traces is None:
            fn = self._fn

            def flat_fn(*flat: Any) -> Any:
                return fn(*unflatten(structure, iter(flat)))

            function = tf.function(flat_fn, jit_compile=self._jit_compile)
            traces = self._traces[structure] = _Traces(function)
        return traces.get(leaves)(*leaves)
