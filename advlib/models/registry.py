"""The framework registry: every framework advlib runs on is one module under
:mod:`advlib.models` that registers itself here, and everything else reads the registry.

Two kinds of entries:

- :class:`Backend`, a tensor framework (torch, tensorflow, jax, numpy): how to recognise its
  tensors, whether it has gradients, how evaluate turns its tensors into NumPy, and its fused
  ops (fast forms of a few ops attacks use every step, see :mod:`advlib._tensors`).
- :class:`ModelKind`, a way of wrapping models (PyTorchModel, TensorFlowModel, JAXModel,
  NumPyModel, and kinds that compute in one of those backends, e.g. Keras 3 models on any
  backend, Flax NNX and Equinox modules through JAX): its wrapper class, how to recognise its
  models (for :func:`advlib.wrap`), and how to build the small reference CNN from NumPy weights
  (the zoo, the demo and the tests share it).

Registering imports no framework: recognisers compare type module names, and the framework is
imported when a wrapper is built or a hook is called. :func:`discover` imports every public
module of :mod:`advlib.models` once, so a new framework is one new module (plus its test
dependency), with no list to edit elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: A fused op: a function of raw tensors of one backend (see advlib._tensors).
FusedOp = Callable[..., Any]
#: A network description: layers such as ("conv", name), ("relu",) (advlib.zoo.architectures).
Layers = Sequence[tuple[str, ...]]
#: Builds the reference CNN: (layers, weights, input_shape) -> a native model of the kind.
Builder = Callable[[Layers, Mapping[str, np.ndarray], tuple[int, ...]], Any]


@dataclass(frozen=True)
class Backend:
    """A tensor framework.

    Args:
        name: the framework's name, as :func:`advlib._tensors.framework_of` returns it.
        modules: root module names of its tensor types (``("torch",)``).
        requires: the module whose presence means the framework is installed.
        gradients: whether models of this backend can give input gradients.
        to_numpy: a tensor of this backend as a NumPy array (evaluate's data adapter).
            Default: ``np.asarray``.
        from_numpy: a NumPy array as a tensor of this backend on its default device (the
            tests' inputs of every kind). Default: ``np.asarray``.
        fused: fast forms of ops by name (``"crossentropy_sum"``, ``"l2_rows"``,
            ``"clip_between"``), each a function of raw tensors; missing ones use the generic
            EagerPy form.
    """

    name: str
    modules: tuple[str, ...]
    requires: str
    gradients: bool = True
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    from_numpy: Callable[[np.ndarray], Any] = np.asarray
    fused: Mapping[str, FusedOp] = field(default_factory=dict)

    def available(self) -> bool:
        """Whether the framework is installed (without importing it)."""
        return importlib.util.find_spec(self.requires) is not None


@dataclass(frozen=True)
class ModelKind:
    """A way of wrapping models.

    Args:
        name: a short name (``"torch"``, ``"keras"``, ``"flax-nnx"``), used by the zoo, the
            demo, the CLI and the tests.
        wrapper: ``"module:Class"`` of its wrapper class, imported on first use.
        backend: the :class:`Backend` name its models compute in, or a function of no arguments
            that says (Keras 3: its configured backend).
        recognizes: whether a user's model object is of this kind (for :func:`advlib.wrap`);
            compare type module names, never import a framework here.
        build: the reference CNN from NumPy weights, as a native model of this kind, or None.
        requires: modules that must be installed for this kind (its test dependencies).
        wrap_kwargs: fixed keyword arguments the zoo and tests pass to the wrapper for
            :attr:`build`'s models (e.g. ``data_format``).
        core: whether the kind is one of the four base backends' own wrappers (tests
            parametrize every test over core kinds, and the contract suite over all kinds).
            :func:`wrap` tries the other, more specific kinds first: a core wrapper takes any
            callable on its tensors.
        order: where :func:`kinds` lists the kind (lower first, then registration order);
            default 100. The core kinds are 0-3 (torch, tensorflow, jax, numpy), so defaults
            such as the demo's framework are picked in that order.
    """

    name: str
    wrapper: str
    backend: str | Callable[[], str]
    recognizes: Callable[[Any], bool]
    build: Builder | None = None
    requires: tuple[str, ...] = ()
    wrap_kwargs: Mapping[str, Any] = field(default_factory=dict)
    core: bool = False
    order: int = 100

    def backend_name(self) -> str:
        return self.backend if isinstance(self.backend, str) else self.backend()

    def available(self) -> bool:
        """Whether everything this kind needs is installed (without importing it)."""
        return all(importlib.util.find_spec(module) is not None for module in self.requires)

    def wrapper_class(self) -> type:
        module, _, name = self.wrapper.partition(":")
        cls: type = getattr(importlib.import_module(module), name)
        return cls


_BACKENDS: dict[str, Backend] = {}
_KINDS: dict[str, ModelKind] = {}
# Tensor type -> its backend (None: no backend's), filled on first sight of each type: the
# lookup runs on every model call and fused op. Cleared whenever the registry changes.
_BY_TYPE: dict[type, Backend | None] = {}
_discovered = False


def register_backend(backend: Backend) -> Backend:
    """Add a tensor framework (replacing one of the same name); returns it, so modules keep
    it as a constant."""
    _BACKENDS[backend.name] = backend
    _BY_TYPE.clear()
    return backend


def register_kind(kind: ModelKind) -> ModelKind:
    """Add a model kind (replacing one of the same name); returns it."""
    _KINDS[kind.name] = kind
    return kind


def register_framework(
    backend: Backend, wrapper: str, build: Builder | None, order: int, **kind: Any
) -> tuple[Backend, ModelKind]:
    """Register a tensor framework and its own wrapper (a core kind of the same name): the
    kind computes in ``backend``, recognises models whose types come from the backend's
    modules, and requires the backend's module, unless ``kind`` (further :class:`ModelKind`
    fields) says otherwise."""
    settings: dict[str, Any] = {
        "recognizes": recognizer(backend.modules),
        "requires": (backend.requires,),
        **kind,
    }
    model_kind = ModelKind(
        backend.name, wrapper, backend.name, build=build, core=True, order=order, **settings
    )
    return register_backend(backend), register_kind(model_kind)


def unregister_backend(name: str) -> None:
    """Remove the tensor framework ``name`` (e.g. one a test registered); no error if absent."""
    _BACKENDS.pop(name, None)
    _BY_TYPE.clear()


def unregister_kind(name: str) -> None:
    """Remove the model kind ``name``; no error if absent."""
    _KINDS.pop(name, None)


def discover() -> None:
    """Import every public module of :mod:`advlib.models` once, so each registers itself."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module("advlib.models")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in ("base", "registry", "outputs"):
            importlib.import_module(f"advlib.models.{info.name}")


def backends() -> dict[str, Backend]:
    """Every registered tensor framework, by name, in registration order."""
    discover()
    return dict(_BACKENDS)


def kinds() -> dict[str, ModelKind]:
    """Every registered model kind, by name, ordered by :attr:`ModelKind.order`, then in
    registration order."""
    discover()
    ordered = sorted(_KINDS.values(), key=lambda kind: kind.order)  # stable
    return {kind.name: kind for kind in ordered}


def backend_of_module(module: str) -> Backend | None:
    """The backend whose tensors live in the root module ``module`` (``"torch"``), if any."""
    for backend in backends().values():
        if module in backend.modules:
            return backend
    return None


def backend_of_type(cls: type) -> Backend | None:
    """The backend of tensors of type ``cls``: the first of its classes (itself, then its base
    classes: a user's subclass of ``torch.Tensor`` or ``np.ndarray``) whose root module is a
    backend's. Cached per type in :func:`type_cache`."""
    try:
        return _BY_TYPE[cls]
    except KeyError:
        pass
    roots = (klass.__module__.partition(".")[0] for klass in cls.__mro__)
    found = next((b for b in map(backend_of_module, roots) if b is not None), None)
    _BY_TYPE[cls] = found
    return found


def type_cache() -> dict[type, Backend | None]:
    """The per-type cache of :func:`backend_of_type` (the same dict for the registry's
    lifetime, cleared when it changes): :mod:`advlib._tensors` reads it directly, as its
    lookups run in every model call and attack step."""
    return _BY_TYPE


def wrapper_names() -> dict[str, ModelKind]:
    """The wrapper class names (``"PyTorchModel"``) of every kind, to the kind."""
    return {kind.wrapper.partition(":")[2]: kind for kind in kinds().values()}


def module_roots(obj: Any) -> set[str]:
    """The root module names of ``obj``'s type and its base classes: what recognisers test
    (``"torch"`` for any subclass of ``torch.nn.Module``), without importing anything."""
    return {cls.__module__.partition(".")[0] for cls in type(obj).__mro__}


def recognizer(modules: Sequence[str]) -> Callable[[Any], bool]:
    """A :attr:`ModelKind.recognizes` for models whose type, or a base class, comes from one of
    the root modules ``modules`` (``("torch",)``: any ``torch.nn.Module``)."""
    return lambda model: not module_roots(model).isdisjoint(modules)


def wrap(model: Any, bounds: Any, **kwargs: Any) -> Any:
    """Wrap ``model`` in the advlib wrapper its type calls for.

    ``advlib.wrap(net, bounds=(0, 1))`` is ``PyTorchModel(net, bounds=(0, 1))`` for a
    ``torch.nn.Module``, ``TensorFlowModel`` for a Keras model, and so on: kinds for specific
    libraries (Keras 3, Flax NNX, Equinox) are tried before the core wrappers, which take any
    model of their framework.

    Args:
        model: the user's model object.
        bounds: ``(lower, upper)`` of valid input values, passed to the wrapper.
        **kwargs: the wrapper's other arguments (``preprocessing``, ``device``, ...).

    Raises:
        TypeError: for a plain Python function (it could compute in any framework: pass it
            to a wrapper yourself) or a model of no registered kind; both list the wrappers.
    """
    every = kinds().values()
    for kind in [*(k for k in every if not k.core), *(k for k in every if k.core)]:
        if kind.recognizes(model):
            return kind.wrapper_class()(model, bounds=bounds, **kwargs)
    names = ", ".join(wrapper_names())
    if module_roots(model) <= {"builtins", "functools"} and callable(model):
        raise TypeError(
            f"model: a plain Python callable ({type(model).__name__}) could compute in any "
            f"framework, so advlib.wrap cannot pick a wrapper; pass it to one explicitly "
            f"({names}), e.g. advlib.JAXModel(fn, bounds) for a function of JAX arrays"
        )
    raise TypeError(
        f"model: advlib.wrap recognises no model of type {type(model).__module__}."
        f"{type(model).__qualname__}; pass it to one of the wrappers explicitly ({names})"
    )
