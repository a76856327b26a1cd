"""The framework-agnostic model interface every attack talks to.

A wrapper turns a native model into one callable on EagerPy tensors that returns logits, plus
the few things that differ between frameworks: input gradients, compiling a pure step function,
and moving user data onto the model's backend and back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .._tensors import dtype_kind, dtype_name, framework_of, scalars_like, unwrap, wrap

# A loss for value_and_grad: inputs -> (scalar loss, auxiliary tensor, e.g. the logits).
LossFn = Callable[[ep.Tensor], tuple[ep.Tensor, ep.Tensor]]
StepFn = Callable[..., Any]


class Bounds(NamedTuple):
    """The valid range of every input value, e.g. ``(0, 1)`` for images scaled to [0, 1]."""

    lower: float
    upper: float


def make_bounds(bounds: Any) -> Bounds:
    """Validate a ``(lower, upper)`` pair."""
    try:
        if isinstance(bounds, str | bytes):
            raise TypeError
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise TypeError(
            f"bounds: expected a pair of numbers (lower, upper), got {bounds!r}"
        ) from None
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower >= upper:
        raise ValueError(f"bounds: expected finite lower < upper, got lower={lower}, upper={upper}")
    return Bounds(lower, upper)


@dataclass(frozen=True)
class Preprocessing:
    """``(x[flip_axis reversed] - mean) / std``, broadcast along ``axis``, inside the model."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    axis: int | None = None
    flip_axis: int | None = None

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> Preprocessing:
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise TypeError(
                "preprocessing: expected a dict with keys mean, std, axis, flip_axis, "
                f"got {type(spec).__name__}"
            )
        unknown = set(spec) - {"mean", "std", "axis", "flip_axis"}
        if unknown:
            raise ValueError(
                f"preprocessing: unknown keys {sorted(unknown)}; "
                "expected some of mean, std, axis, flip_axis"
            )
        axis = spec.get("axis")
        flip_axis = spec.get("flip_axis")
        for name, value in (("axis", axis), ("flip_axis", flip_axis)):
            if value is not None and (not isinstance(value, int) or value >= 0):
                raise ValueError(
                    f"preprocessing[{name!r}]: expected a negative int counted from the last "
                    f"axis (e.g. -3 for channels-first images), got {value!r}"
                )
        mean = cls._array(spec.get("mean"), "mean", axis)
        std = cls._array(spec.get("std"), "std", axis)
        if std is not None and np.any(std == 0):
            raise ValueError("preprocessing['std']: must not contain zeros")
        return cls(mean, std, axis, flip_axis)

    @staticmethod
    def _array(value: Any, name: str, axis: int | None) -> np.ndarray | None:
        if value is None:
            return None
        array = np.asarray(value, dtype=np.float64)
        if array.ndim > 1:
            raise ValueError(
                f"preprocessing[{name!r}]: expected a number or a 1-d sequence, "
                f"got shape {array.shape}"
            )
        if array.ndim == 1:
            if axis is None:
                raise ValueError(
                    f"preprocessing[{name!r}]: a per-channel sequence needs 'axis' "
                    "(e.g. axis=-3 for NCHW images, axis=-1 for NHWC)"
                )
            array = array.reshape(array.shape + (1,) * (-axis - 1))
        return array

    @property
    def is_identity(self) -> bool:
        return self.mean is None and self.std is None and self.flip_axis is None


class Model(ABC):
    """A classifier on EagerPy tensors: ``model(x) -> logits`` of shape (N, classes).

    Args:
        bounds: ``(lower, upper)``, the valid range of input values.
        preprocessing: optional ``dict(mean=..., std=..., axis=-3, flip_axis=None)`` applied
            to the inputs inside the (differentiable) forward pass. Default: none.
        compile: compile attack steps with the framework's compiler. ``None`` (the default)
            uses each framework's best choice; results are the same either way.
    """

    #: The framework's name as returned by :func:`advlib._tensors.framework_of`.
    framework: str = ""
    #: Whether :meth:`value_and_grad` is available.
    has_gradients: bool = True
    #: Whether the framework's arrays are immutable (JAX, TensorFlow): results may then share
    #: memory with the user's inputs; otherwise attacks copy the inputs first.
    immutable_tensors: bool = False

    def __init__(
        self,
        bounds: Any,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool | None = None,
    ) -> None:
        self._bounds = make_bounds(bounds)
        self._preprocessing = Preprocessing.from_dict(preprocessing)
        self._compile_enabled = self._default_compile() if compile is None else bool(compile)
        self._compiled: dict[Hashable, StepFn] = {}
        self._scalars: dict[Hashable, tuple[ep.Tensor, ...]] = {}
        self._compiled_forward: StepFn | None = None

    # ---------------------------------------------------------------- public surface
    @property
    def bounds(self) -> Bounds:
        return self._bounds

    @property
    def compile_enabled(self) -> bool:
        return self._compile_enabled

    def __call__(self, inputs: ep.Tensor) -> ep.Tensor:
        """Logits for a batch of inputs on this model's backend."""
        if self._compile_enabled and self._compiles_forward() and not self._is_traced(inputs.raw):
            # Eager calls (the attack's checks and success masks) run one compiled forward
            # pass instead of many dispatched ops; inside a compiled step it is traced inline.
            compiled: ep.Tensor = ep.astensor(self._compiled_forward_fn()(inputs.raw))
            return compiled
        logits: ep.Tensor = ep.astensor(self._forward(self._preprocess(inputs).raw))
        return logits

    def _compiled_forward_fn(self) -> StepFn:
        """Preprocessing and the forward pass on raw tensors, compiled once per model."""
        if self._compiled_forward is None:
            compiler = self._raw_compiler()
            if compiler is None:
                raise TypeError(
                    f"{type(self).__name__}: compiling the forward pass needs _raw_compiler()"
                )
            self._compiled_forward = compiler(
                lambda raw: self._forward(self._preprocess(ep.astensor(raw)).raw)
            )
        return self._compiled_forward

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        """``loss, aux = loss_fn(inputs)`` and the gradient of ``loss`` w.r.t. ``inputs`` only.

        No gradient reaches the model's parameters.
        """
        raise TypeError(f"{type(self).__name__} provides no gradients; use a gradient-free attack")

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        """``t``'s values as a NumPy array when they are in host memory (a CPU tensor, no
        device transfer), else None. Boundary checks read small reductions off it: NumPy's
        min/max beat a dispatched reduction on CPU. The array must not be modified."""
        return None

    def scalars(self, like: ep.Tensor, *values: float) -> tuple[ep.Tensor, ...]:
        """``values`` as 0-d tensors in ``like``'s dtype and device, cached: attacks called
        again with the same epsilons and step sizes (every batch of an evaluation) transfer
        nothing, and a step unpacks them without indexing. Tensors are never modified in
        place, so sharing them is safe."""
        key = (values, str(like.dtype), self._device_key(like.raw))
        cached = self._scalars.get(key)
        if cached is None:
            if len(self._scalars) >= _MAX_CACHED_SCALARS:
                self._scalars.clear()
            vector = scalars_like(like, *values)  # one transfer for all of them
            cached = self._scalars[key] = tuple(vector[i] for i in range(len(values)))
        return cached

    def _device_key(self, raw: Any) -> Hashable:
        """Where a raw tensor lives, as a hashable key (its device)."""
        return str(getattr(raw, "device", ""))

    def value_range(self, t: ep.Tensor) -> tuple[float, float]:
        """``(min, max)`` of a non-empty tensor (NaN when it holds a NaN), for boundary
        checks: from NumPy when the values are in host memory, else one compiled reduction
        and one sync."""
        host = self.host_array(t)
        if host is None:
            host = self.compiled(("advlib.range",), lambda: _value_range)(t).numpy()
        return float(host.min()), float(host.max())

    def compile(self, step: StepFn) -> StepFn:
        """Compile a pure function of EagerPy tensors (or tuples of them); eager by default."""
        compiler = self._raw_compiler()
        if compiler is None:
            return step
        compiled = compiler(lambda *args: unwrap(step(*wrap(args))))
        return lambda *args: wrap(compiled(*unwrap(args)))

    def _raw_compiler(self) -> Callable[[StepFn], StepFn] | None:
        """The framework's compiler for functions of raw tensors, or None to stay eager."""
        return None

    def _compiles_forward(self) -> bool:
        """Whether eager forward passes go through the compiler too (when compiling)."""
        return False

    def _is_traced(self, raw: Any) -> bool:
        """Whether ``raw`` is a symbolic value of a function being compiled or differentiated."""
        return False

    def compiled(self, key: Hashable, factory: Callable[[], StepFn]) -> StepFn:
        """The compiled step cached under ``key``; ``factory`` builds the pure step once."""
        if key not in self._compiled:
            step = factory()
            self._compiled[key] = self.compile(step) if self._compile_enabled else step
        return self._compiled[key]

    def to_tensor(self, value: Any, name: str, *, floating: bool) -> tuple[ep.Tensor, Restore]:
        """Move a user's tensor onto this model's backend.

        Returns the EagerPy tensor and a :class:`Restore` that turns results back into the
        user's type, dtype and device. Raises ``TypeError`` for tensors of another framework.
        """
        as_eagerpy = isinstance(value, ep.Tensor)
        raw = value.raw if as_eagerpy else value
        source = framework_of(raw)
        if source is None and isinstance(raw, list | tuple | int | float):
            raw, source = np.asarray(raw), "numpy"
        if source == "numpy" and self.framework != "numpy":
            array = np.asarray(raw)
            # Frameworks refuse negative strides and warn on read-only memory: copy then.
            contiguous = np.ascontiguousarray(array)
            if not contiguous.flags.writeable:
                contiguous = contiguous.copy()
            tensor = ep.astensor(self._from_numpy(contiguous))
            restore = Restore("numpy", array.dtype, None, as_eagerpy)
        elif source == self.framework:
            tensor = ep.astensor(self._prepare_native(raw))
            restore = Restore(self.framework, tensor.dtype, raw, as_eagerpy)
        else:
            raise TypeError(
                f"{name}: {type(self).__name__} takes {self.framework} tensors, NumPy arrays "
                f"or EagerPy tensors, got {type(raw).__module__}.{type(raw).__name__}"
            )
        if floating:
            tensor = self._to_compute_dtype(tensor, name)
        return tensor, restore

    # ---------------------------------------------------------------- framework hooks
    @abstractmethod
    def _forward(self, raw_inputs: Any) -> Any:
        """Native forward pass on preprocessed raw inputs; returns raw logits."""

    @abstractmethod
    def _from_numpy(self, array: np.ndarray) -> Any:
        """A NumPy array as a raw tensor of this framework, on the model's device."""

    def _prepare_native(self, raw: Any) -> Any:
        """A native tensor, made ready for computation (e.g. detached); never mutated."""
        return raw

    def _default_compile(self) -> bool:
        return False

    def _to_compute_dtype(self, t: ep.Tensor, name: str) -> ep.Tensor:
        """Cast inputs to the dtype the model computes in (half precision runs in float32)."""
        kind = dtype_kind(t)
        if kind not in ("float", "int"):
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        target = self._model_dtype()
        if target is None:
            if kind == "float" and dtype_name(t) not in ("float16", "bfloat16"):
                return t
            target = self._float32
        return t if t.dtype == target else t.astype(target)

    def _model_dtype(self) -> Any:
        """The model's parameter dtype when the wrapper knows it, else None."""
        return None

    @property
    @abstractmethod
    def _float32(self) -> Any:
        """This framework's float32 dtype."""

    # ---------------------------------------------------------------- preprocessing
    def _preprocess(self, x: ep.Tensor) -> ep.Tensor:
        pre = self._preprocessing
        if pre.is_identity:
            return x
        if pre.flip_axis is not None:
            x = x.flip(axis=pre.flip_axis)
        if pre.mean is not None:
            x = x - self._constant(x, pre.mean)
        if pre.std is not None:
            x = x / self._constant(x, pre.std)
        return x

    def _constant(self, like: ep.Tensor, array: np.ndarray) -> ep.Tensor:
        return ep.from_numpy(like, array.astype(dtype_name(like)))


_MAX_CACHED_SCALARS = 256


def _value_range(t: ep.Tensor) -> ep.Tensor:
    return ep.stack([t.min(), t.max()])


@dataclass(frozen=True)
class Restore:
    """Turns results back into what the user passed: type, float dtype and device."""

    kind: str  # "numpy" or the model's framework
    dtype: Any  # the user's dtype (NumPy dtype for "numpy", framework dtype otherwise)
    like: Any  # the user's raw tensor (for device and dtype), None for NumPy
    as_eagerpy: bool  # whether the user passed an EagerPy tensor

    def __call__(self, t: ep.Tensor) -> Any:
        if self.kind == "numpy":
            array = t.numpy()
            if not array.flags.writeable:
                array = array.copy()
            if array.dtype.kind == "f" and np.dtype(self.dtype).kind == "f":
                array = array.astype(self.dtype, copy=False)
            return ep.astensor(array) if self.as_eagerpy else array
        if dtype_kind(t) == "float" and t.dtype != self.dtype:
            t = t.astype(self.dtype)
        return t if self.as_eagerpy else t.raw

    def many(self, ts: Sequence[ep.Tensor]) -> list[Any]:
        return [self(t) for t in ts]
