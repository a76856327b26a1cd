"""The model interface every attack talks to.

:class:`Model` is Foolbox's minimal contract, a ``bounds`` property and ``__call__``, plus the
few things attacks need from a model (moving user data onto its backend, compiling a step,
gradients), with defaults that work for any framework's tensors. A user's subclass that only
defines ``bounds`` and ``__call__`` can be attacked by gradient-free attacks.

:class:`FrameworkModel` is the machinery the framework wrappers share: preprocessing inside the
forward pass, native tensors in and out, a compiled forward pass, and framework hooks for
gradients and compilation. :class:`TransformBoundsWrapper` maps inputs from new bounds to a
model's bounds.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import eagerpy as ep
import numpy as np

from .._tensors import (
    dtype_kind,
    dtype_name,
    framework_of,
    kind_of_dtype,
    scalars_like,
    unwrap,
    wrap,
)
from .outputs import OutputSelector

# A loss for value_and_grad: inputs -> (scalar loss, auxiliary tensor, e.g. the logits).
LossFn = Callable[[ep.Tensor], tuple[ep.Tensor, ep.Tensor]]
StepFn = Callable[..., Any]

DATA_FORMATS = ("channels_first", "channels_last")


class Bounds(NamedTuple):
    """The valid range of every input value, e.g. ``(0, 1)`` for images scaled to [0, 1]."""

    lower: float
    upper: float


def make_bounds(bounds: Any, name: str = "bounds") -> Bounds:
    """Validate a ``(lower, upper)`` pair."""
    try:
        if isinstance(bounds, str | bytes):
            raise TypeError
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a pair of numbers (lower, upper), got {bounds!r}"
        ) from None
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower >= upper:
        raise ValueError(f"{name}: expected finite lower < upper, got lower={lower}, upper={upper}")
    return Bounds(lower, upper)


def check_data_format(data_format: Any) -> str | None:
    """``"channels_first"``, ``"channels_last"`` or None, else a ValueError."""
    if data_format is None:
        return None
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"data_format: expected 'channels_first', 'channels_last' or None, got {data_format!r}"
        )
    return str(data_format)


def read_data_format(model: Any, data_format: str | None) -> str:
    """Foolbox's rule: a model built with ``data_format=None`` has no data format
    (``hasattr(model, "data_format")`` is False)."""
    if data_format is None:
        raise AttributeError(
            f"{type(model).__name__} has no data_format: pass data_format='channels_first' or "
            "'channels_last' when creating it"
        )
    return data_format


class Model(ABC):
    """A classifier: ``model(inputs) -> logits`` of shape (N, classes).

    Foolbox's contract: a subclass defines ``__call__`` and either a ``bounds`` property or
    passes ``bounds`` to ``super().__init__``. Attacks call it with EagerPy tensors and get
    EagerPy tensors back (a native result is wrapped). Such a model has no gradients: use it
    with gradient-free attacks (BoundaryAttack, HopSkipJumpAttack, LinfSquareAttack, ...).

    Args:
        bounds: ``(lower, upper)``, the valid range of input values. Default None: the
            subclass defines a ``bounds`` property.
        preprocessing: only for the framework wrappers (:class:`FrameworkModel`), which apply
            it; must be None here. Default None.
        compile: compile attack steps with the framework's compiler (the framework wrappers).
            Default None: the model's own choice (no compilation here).
    """

    #: The framework of the model's tensors ("torch", "tensorflow", "jax", "numpy"), or ""
    #: for a model that takes any framework's tensors.
    framework: str = ""
    #: Whether :meth:`value_and_grad` is available.
    has_gradients: bool = False
    #: Whether the framework's arrays are immutable (JAX, TensorFlow): results may then share
    #: memory with the user's inputs; otherwise attacks copy the inputs first.
    immutable_tensors: bool = False

    # Set by __init__; a subclass that does not call it gets these defaults.
    _compile_enabled: bool = False
    _compiled: dict[Hashable, StepFn] | None = None
    _scalars: dict[Hashable, tuple[ep.Tensor, ...]] | None = None
    # A 0-size tensor like the last inputs given to to_tensor (models of any framework only).
    _inputs_like: ep.Tensor | None = None

    def __init__(
        self,
        bounds: Any = None,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool | None = None,
    ) -> None:
        if preprocessing is not None:
            raise TypeError(
                f"preprocessing: {type(self).__name__} does not apply preprocessing; apply it "
                "inside __call__, or use a framework wrapper (PyTorchModel, ...)"
            )
        if bounds is not None:
            self._bounds = make_bounds(bounds)
        self._compile_enabled = self._default_compile() if compile is None else bool(compile)
        self._compiled = {}
        self._scalars = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Attacks call models on EagerPy tensors and compute on the result: a user's
        # __call__ may return native tensors (Foolbox's contract allows either).
        if "__call__" in vars(cls) and not cls.__module__.startswith("advlib."):
            setattr(cls, "__call__", _eagerpy_results(vars(cls)["__call__"]))  # noqa: B010

    # ---------------------------------------------------------------- public surface
    @property
    def bounds(self) -> Bounds:
        """``(lower, upper)``, the valid range of input values."""
        try:
            return self._bounds
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__}: define a bounds property, or pass bounds to "
                "super().__init__(bounds)"
            ) from None

    @abstractmethod
    def __call__(self, inputs: ep.Tensor) -> ep.Tensor:
        """Logits for a batch of inputs, in the inputs' type (attacks pass EagerPy tensors)."""

    @property
    def compile_enabled(self) -> bool:
        return self._compile_enabled

    def transform_bounds(self, bounds: Any) -> Model:
        """This model taking inputs in ``bounds`` instead of its own, as a
        :class:`TransformBoundsWrapper`."""
        return TransformBoundsWrapper(self, bounds)

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
        raw = t.raw
        return raw if isinstance(raw, np.ndarray) else None

    def scalars(self, like: ep.Tensor, *values: float) -> tuple[ep.Tensor, ...]:
        """``values`` as 0-d tensors in ``like``'s dtype and device, cached: attacks called
        again with the same epsilons and step sizes (every batch of an evaluation) transfer
        nothing, and a step unpacks them without indexing. Tensors are never modified in
        place, so sharing them is safe."""
        if self._scalars is None:
            self._scalars = {}
        key = (values, str(like.dtype), self._device_key(like.raw))
        cached = self._scalars.get(key)
        if cached is None:
            if len(self._scalars) >= _MAX_CACHED_SCALARS:
                self._scalars.clear()
            vector = scalars_like(like, *values)  # one transfer for all of them
            cached = self._scalars[key] = tuple(vector[i] for i in range(len(values)))
        return cached

    def _device_key(self, raw: Any) -> Hashable:
        """Where a raw tensor lives, as a hashable key (its framework and device)."""
        return (type(raw), str(getattr(raw, "device", "")))

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

    def compiled(self, key: Hashable, factory: Callable[[], StepFn]) -> StepFn:
        """The compiled step cached under ``key``; ``factory`` builds the pure step once."""
        if self._compiled is None:
            self._compiled = {}
        if key not in self._compiled:
            step = factory()
            self._compiled[key] = self.compile(step) if self.compile_enabled else step
        return self._compiled[key]

    def to_tensor(self, value: Any, name: str, *, floating: bool) -> tuple[ep.Tensor, Restore]:
        """A user's tensor as an EagerPy tensor the model can take, and a :class:`Restore`
        that turns results back into the user's type, dtype and device.

        Here: inputs stay in their own framework; labels (``floating=False``) follow the
        framework of the last inputs. The framework wrappers move values onto their backend.
        """
        tensor, restore = _as_eagerpy(value, name)
        if floating:
            tensor = self._to_compute_dtype(tensor, name)
            self._inputs_like = ep.zeros(tensor, (0,))
        elif self._inputs_like is not None and type(tensor) is not type(self._inputs_like):
            tensor = _converted(tensor, self._inputs_like)
        return tensor, restore

    # ---------------------------------------------------------------- framework hooks
    def _forward(self, raw_inputs: Any) -> Any:
        """The forward pass on raw (preprocessed) inputs; returns raw logits."""
        return unwrap(self(ep.astensor(raw_inputs)))

    def _from_numpy(self, array: np.ndarray) -> Any:
        """A NumPy array as a raw tensor of this model's framework (kept as is here)."""
        return array

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
            if target is None:
                return t.float32()
        return t if t.dtype == target else t.astype(target)

    def _model_dtype(self) -> Any:
        """The model's parameter dtype when the wrapper knows it, else None."""
        return None

    @property
    def _float32(self) -> Any:
        """This framework's float32 dtype; None when the model takes any framework's."""
        return None


def _eagerpy_results(call: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``call`` returning an EagerPy tensor of the inputs' framework for EagerPy inputs."""

    @functools.wraps(call)
    def __call__(self: Any, inputs: Any) -> Any:
        outputs = call(self, inputs)
        if not isinstance(inputs, ep.Tensor) or type(outputs) is type(inputs):
            return outputs
        result = ep.astensor(outputs)
        if type(result) is not type(inputs):  # e.g. NumPy logits for torch inputs
            result = _converted(result, inputs)
        return result

    return __call__


def _converted(t: ep.Tensor, like: ep.Tensor) -> ep.Tensor:
    """``t`` in ``like``'s framework and device, through a writable host copy (frameworks
    warn on read-only NumPy memory, and the result must not share memory with ``t``)."""
    return ep.from_numpy(like, np.array(t.numpy()))


def _as_eagerpy(value: Any, name: str) -> tuple[ep.Tensor, Restore]:
    """Any framework's tensor, a NumPy array, a list or a number as an EagerPy tensor of the
    same framework, and the :class:`Restore` back to ``value``'s type."""
    raw, source, as_eagerpy = _unpack(value)
    if source is None:
        raise TypeError(
            f"{name}: expected a torch, TensorFlow or JAX tensor, a NumPy array or an EagerPy "
            f"tensor, got {type(raw).__module__}.{type(raw).__name__}"
        )
    # Attacks never differentiate through the user's inputs: leave their autograd graph.
    tensor = ep.astensor(raw.detach() if source == "torch" else raw)
    return tensor, Restore(source, tensor.dtype, None if source == "numpy" else raw, as_eagerpy)


def _unpack(value: Any) -> tuple[Any, str | None, bool]:
    """``(raw tensor, its framework or None, whether value was an EagerPy tensor)``; NumPy
    scalars, lists and numbers become NumPy arrays."""
    as_eagerpy = isinstance(value, ep.Tensor)
    raw = value.raw if as_eagerpy else value
    source = framework_of(raw)
    if source == "numpy" or (source is None and isinstance(raw, list | tuple | int | float)):
        raw, source = np.asarray(raw), "numpy"
    return raw, source, as_eagerpy


_MAX_CACHED_SCALARS = 256


def _value_range(t: ep.Tensor) -> ep.Tensor:
    return ep.stack([t.min(), t.max()])


@dataclass(frozen=True)
class Preprocessing:
    """``(x[flip_axis reversed] - mean) / std`` inside the model.

    With ``axis``, a 1-d ``mean``/``std`` is aligned with that axis (e.g. -3 for channels-first
    images); without it, they broadcast as given (Foolbox's rule), e.g. shape (3, 1, 1) for
    NCHW or (3,) for NHWC images.
    """

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
        array = _float64(value, f"preprocessing[{name!r}]")
        if axis is not None:
            if array.ndim > 1:
                raise ValueError(
                    f"preprocessing[{name!r}]: with 'axis', expected a number or a 1-d "
                    f"sequence, got shape {array.shape}; drop 'axis' to broadcast it as given"
                )
            if array.ndim == 1:
                array = array.reshape(array.shape + (1,) * (-axis - 1))
        return array

    @property
    def is_identity(self) -> bool:
        return self.mean is None and self.std is None and self.flip_axis is None

    @functools.cached_property
    def shaped(self) -> bool:
        """Whether ``mean`` or ``std`` is an array whose shape must fit the inputs'."""
        return any(a is not None and a.ndim > 0 for a in (self.mean, self.std))

    def check_shape(self, shape: tuple[int | None, ...]) -> None:
        """A ValueError when ``mean`` or ``std`` cannot broadcast against inputs of ``shape``
        without changing it (None: a dimension unknown while tracing)."""
        for name, array in (("mean", self.mean), ("std", self.std)):
            if array is None or _fits(array.shape, shape):
                continue
            hint = "" if self.axis is not None else "; pass axis=-3 (NCHW) or axis=-1 (NHWC)"
            raise ValueError(
                f"preprocessing[{name!r}]: shape {array.shape} does not broadcast against "
                f"inputs of shape {tuple(shape)}{hint}"
            )

    def rescaled(self, old: Bounds, new: Bounds) -> Preprocessing:
        """The preprocessing that gives the same model outputs for inputs in ``new`` bounds
        as this one for inputs in ``old``: ``x = (x' - c) / f + a`` is folded into mean and
        std (Foolbox's ``transform_bounds``)."""
        (a, b), (c, d) = old, new
        f = (d - c) / (b - a)
        mean = np.zeros(()) if self.mean is None else self.mean
        std = np.ones(()) if self.std is None else self.std
        return Preprocessing(f * (mean - a) + c, f * std, self.axis, self.flip_axis)


def _float64(value: Any, name: str) -> np.ndarray:
    """A number, sequence, NumPy array, framework or EagerPy tensor as a float64 array."""
    if isinstance(value, ep.Tensor):
        value = value.numpy()
    elif framework_of(value) not in (None, "numpy"):
        # Detaches and copies to the host; NumPy reads the rest (e.g. a tf.Variable) below.
        with contextlib.suppress(ValueError):
            value = ep.astensor(value).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a number, a sequence, an array or a tensor, "
            f"got {type(value).__name__}"
        ) from None


def _fits(small: tuple[int, ...], shape: tuple[int | None, ...]) -> bool:
    """Whether an array of shape ``small`` broadcasts against ``shape`` leaving it unchanged."""
    if len(small) > len(shape):
        return False
    return all(a == 1 or b is None or a == b for a, b in zip(small[::-1], shape[::-1]))


class FrameworkModel(Model):
    """The machinery of the framework wrappers (PyTorchModel, TensorFlowModel, JAXModel,
    NumPyModel): preprocessing inside the forward pass, native tensors in and out, a compiled
    forward pass for eager calls, and framework hooks.

    Args:
        bounds: ``(lower, upper)``, the valid range of input values.
        preprocessing: optional ``dict(mean=..., std=..., axis=None, flip_axis=None)`` applied
            to the inputs inside the (differentiable) forward pass. ``mean``/``std``: numbers,
            sequences, NumPy arrays or tensors. Default: none.
        compile: compile attack steps with the framework's compiler. ``None`` (the default)
            uses each framework's best choice; results are the same either way.
    """

    has_gradients = True
    #: The EagerPy tensor type of this framework: inputs of that type take the fast path.
    _eagerpy_type: ClassVar[type[ep.Tensor]]
    # Whether tensors of other frameworks are converted to this one (and results back).
    _converts_foreign: ClassVar[bool] = False

    def __init__(
        self,
        bounds: Any,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool | None = None,
    ) -> None:
        super().__init__(make_bounds(bounds), None, compile)
        self._preprocessing = Preprocessing.from_dict(preprocessing)
        self._compiled_forward: StepFn | None = None
        # Whether an eager forward pass has checked the outputs (before any tracing).
        self._checked = False

    def _keep_model(
        self, model: Any, expected: str, output_key: str | None, output_index: int | None
    ) -> None:
        """Keep the user's model, a callable (else a TypeError saying it should be
        ``expected``), and how to pick the logits from its outputs."""
        if not callable(model):
            raise TypeError(f"model: expected {expected}, got {type(model)}")
        self._model = model
        self._outputs = OutputSelector(output_key, output_index)

    def __call__(self, inputs: Any) -> Any:
        """Logits for a batch of inputs: a native tensor, a NumPy array or an EagerPy tensor
        in, the same type (and device, and float dtype) out."""
        if not isinstance(inputs, self._eagerpy_type):
            x, restore = self._convert(inputs, "inputs", floating=True, detach=False)
            return restore(self(x))
        if self._compile_enabled and self._compiles_forward() and not self._is_traced(inputs.raw):
            if not self._checked:
                self._check_forward(inputs)
            # Eager calls (the attack's checks and success masks) run one compiled forward
            # pass instead of many dispatched ops; inside a compiled step it is traced inline.
            compiled: ep.Tensor = ep.astensor(self._compiled_forward_fn()(inputs.raw))
            return compiled
        logits: ep.Tensor = ep.astensor(self._forward(self._preprocess(inputs).raw))
        return logits

    def _check_forward(self, inputs: ep.Tensor) -> None:
        """One eager forward pass on one input, so that a wrong ``output_key`` or a
        preprocessing shape that does not fit raises its error outside of any tracing."""
        if inputs.shape[0] > 0:
            self._preprocessing.check_shape(tuple(inputs.shape))
            self._forward(self._preprocess(inputs[:1]).raw)
            self._checked = True

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

    def transform_bounds(self, bounds: Any, inplace: bool = False, wrapper: bool = False) -> Model:
        """This model taking inputs in ``bounds``: the affine map from ``bounds`` to the
        model's bounds is folded into the preprocessing (no extra wrapper).

        Args:
            bounds: the new ``(lower, upper)``.
            inplace: change this model instead of returning a copy. Default False.
            wrapper: return a :class:`TransformBoundsWrapper` around this model instead.
                Default False; cannot be combined with ``inplace``.
        """
        new = make_bounds(bounds)
        if wrapper:
            if inplace:
                raise ValueError("inplace and wrapper: pass at most one of them as True")
            return TransformBoundsWrapper(self, new)
        changed = new != self.bounds
        if inplace and not changed:
            return self
        model = self if inplace else copy.copy(self)
        if changed:
            model._preprocessing = self._preprocessing.rescaled(self.bounds, new)
            model._bounds = new
        model._reset_caches()
        return model

    def _reset_caches(self) -> None:
        """Forget compiled steps and constants (they captured the bounds or preprocessing)."""
        self._compiled = {}
        self._scalars = {}
        self._compiled_forward = None

    def to_tensor(self, value: Any, name: str, *, floating: bool) -> tuple[ep.Tensor, Restore]:
        """Move a user's tensor onto this model's backend.

        Returns the EagerPy tensor and a :class:`Restore` that turns results back into the
        user's type, dtype and device. Raises ``TypeError`` for tensors of another framework.
        """
        return self._convert(value, name, floating=floating, detach=True)

    def _convert(
        self, value: Any, name: str, *, floating: bool, detach: bool
    ) -> tuple[ep.Tensor, Restore]:
        """:meth:`to_tensor`; ``detach=False`` keeps native tensors attached to the user's
        autograd graph (direct calls ``model(x)`` on a tensor that requires gradients)."""
        raw, source, as_eagerpy = _unpack(value)
        if source == self.framework:
            tensor = ep.astensor(self._prepare_native(raw) if detach else raw)
        elif source == "numpy" or (source is not None and self._converts_foreign):
            tensor = ep.astensor(self._from_numpy(_host_copy(raw)))
        else:
            raise TypeError(
                f"{name}: {type(self).__name__} takes {self.framework} tensors, NumPy arrays "
                f"or EagerPy tensors, got {type(raw).__module__}.{type(raw).__name__}"
            )
        user_dtype = ep.astensor(raw).dtype
        restore = Restore(source, user_dtype, None if source == "numpy" else raw, as_eagerpy)
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

    @property
    @abstractmethod
    def _float32(self) -> Any:
        """This framework's float32 dtype."""

    def _prepare_native(self, raw: Any) -> Any:
        """A native tensor, made ready for computation (e.g. detached); never mutated."""
        return raw

    def _compiles_forward(self) -> bool:
        """Whether eager forward passes go through the compiler too (when compiling)."""
        return False

    def _is_traced(self, raw: Any) -> bool:
        """Whether ``raw`` is a symbolic value of a function being compiled or differentiated."""
        return False

    # ---------------------------------------------------------------- preprocessing
    def _preprocess(self, x: ep.Tensor) -> ep.Tensor:
        pre = self._preprocessing
        if pre.is_identity:
            return x
        if pre.shaped:
            pre.check_shape(tuple(x.shape))
        if pre.flip_axis is not None:
            x = x.flip(axis=pre.flip_axis)
        if pre.mean is not None:
            x = x - self._constant(x, pre.mean)
        if pre.std is not None:
            x = x / self._constant(x, pre.std)
        return x

    def _constant(self, like: ep.Tensor, array: np.ndarray) -> ep.Tensor:
        return ep.from_numpy(like, array.astype(dtype_name(like)))


def _host_copy(raw: Any) -> np.ndarray:
    """A NumPy array (or another framework's tensor, copied to the host) in memory every
    framework takes: frameworks refuse negative strides and warn on read-only memory."""
    array = raw if isinstance(raw, np.ndarray) else ep.astensor(raw).numpy()
    contiguous = np.ascontiguousarray(array)
    return contiguous if contiguous.flags.writeable else contiguous.copy()


class TransformBoundsWrapper(Model):
    """``model`` taking inputs in ``bounds``: each input is mapped linearly from ``bounds``
    to ``model.bounds`` before the model sees it (Foolbox's ``TransformBoundsWrapper``).

    It is a full model for attacks: gradients, compiled steps and conversions are the inner
    model's, with the map inside the differentiated forward pass.

    Args:
        model: an advlib model.
        bounds: the new ``(lower, upper)``.
    """

    def __init__(self, model: Model, bounds: Any) -> None:
        if not isinstance(model, Model):
            raise TypeError(
                "model: expected an advlib model (PyTorchModel, ...), got "
                f"{type(model).__module__}.{type(model).__name__}"
            )
        super().__init__(bounds)
        self._model = model

    def __repr__(self) -> str:
        return f"TransformBoundsWrapper({self._model!r}, bounds={tuple(self.bounds)})"

    def __call__(self, inputs: Any) -> Any:
        x, restore = ep.astensor_(inputs)
        return restore(ep.astensor(self._model(self._preprocess(x))))

    def transform_bounds(self, bounds: Any, inplace: bool = False) -> Model:
        """The inner model taking inputs in ``bounds`` (one wrapper, never nested).

        Args:
            bounds: the new ``(lower, upper)``.
            inplace: change this wrapper's bounds instead of returning a new one.
                Default False.
        """
        if inplace:
            self._bounds = make_bounds(bounds)
            self._compiled, self._scalars = {}, {}
            return self
        return TransformBoundsWrapper(self._model, bounds)

    def _preprocess(self, x: ep.Tensor) -> ep.Tensor:
        (a, b), (c, d) = self.bounds, self._model.bounds
        if (a, b) == (c, d):
            return x
        return (x - a) * ((d - c) / (b - a)) + c

    @property
    def data_format(self) -> Any:
        """The inner model's data format."""
        return self._model.data_format  # type: ignore[attr-defined]

    # ------------------------------------------- everything else is the inner model's
    @property
    def framework(self) -> str:  # type: ignore[override]
        return self._model.framework

    @property
    def has_gradients(self) -> bool:  # type: ignore[override]
        return self._model.has_gradients

    @property
    def immutable_tensors(self) -> bool:  # type: ignore[override]
        return self._model.immutable_tensors

    @property
    def compile_enabled(self) -> bool:
        return self._model.compile_enabled

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        return self._model.value_and_grad(loss_fn, inputs)

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        return self._model.host_array(t)

    def _device_key(self, raw: Any) -> Hashable:
        return self._model._device_key(raw)

    def compile(self, step: StepFn) -> StepFn:
        return self._model.compile(step)

    def to_tensor(self, value: Any, name: str, *, floating: bool) -> tuple[ep.Tensor, Restore]:
        return self._model.to_tensor(value, name, floating=floating)


@dataclass(frozen=True)
class Restore:
    """Turns results back into what the user passed: type, float dtype and device."""

    kind: str  # "numpy" or the framework of the user's tensor
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
        if framework_of(t.raw) != self.kind:  # computed in another framework (NumPyModel)
            t = _converted(t, ep.astensor(self.like))
        if dtype_kind(t) == "float" and kind_of_dtype(self.dtype) == "float":
            t = t if t.dtype == self.dtype else t.astype(self.dtype)
        return t if self.as_eagerpy else t.raw

    def many(self, ts: Sequence[ep.Tensor]) -> list[Any]:
        return [self(t) for t in ts]
