"""The attack call, written once: validation, epsilon semantics, clipping, success, types.

``attack(model, inputs, criterion, epsilons=...)`` returns ``AttackResult(raw, clipped, success)``:

- ``raw``: what the attack produced, before clipping to each epsilon. For minimization attacks
  this is the smallest adversarial the attack found, whatever its size.
- ``clipped``: ``raw`` moved into each epsilon ball (and the bounds). Evaluate robustness on this.
- ``success``: the criterion on ``clipped``, a bool tensor of shape (N,) or (K, N).

A scalar epsilon gives single tensors and ``success`` of shape (N,); a list of K epsilons gives
lists of K tensors and ``success`` of shape (K, N).

Foolbox's other entry points work the same way: ``attack.run(model, inputs, criterion,
epsilon=...)`` (fixed-epsilon attacks) or ``run(..., early_stop=None)`` (minimization attacks)
returns the raw output only, and ``attack.repeat(n)`` runs an attack ``n`` times keeping the
best result per sample. Keyword arguments a call does not take itself go to the attack's
``perturb`` (e.g. ``starting_points=`` of BoundaryAttack and HopSkipJumpAttack); tensors
among them (native, NumPy or EagerPy, one row per input) move to the model's backend.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar, cast

import eagerpy as ep
import numpy as np

from .. import _progress
from .._random import SampleRandom, check_ids
from .._tensors import (
    atleast_kd,
    dtype_kind,
    dtype_name,
    flat_batch,
    framework_of,
    kind_of_dtype,
    name_of_dtype,
)
from .._warnings import warn_user
from ..criteria import Criterion, Misclassification
from ..criteria.base import foolbox_criterion_error, is_foolbox
from ..criteria.labels import split_labels
from ..models.base import Model, Restore
from ..norms import Norm

if TYPE_CHECKING:
    from ..distances import Distance

#: Every concrete attack class, by name, in definition order (aliases are the same classes).
ATTACKS: dict[str, type[Attack]] = {}

_BOUNDS_TOLERANCE = 1e-6
_T = TypeVar("_T")
# Which run of a Repeated attack is running: run i > 0 draws from a seed derived from (seed, i).
_repeat_index: ContextVar[int] = ContextVar("advlib_repeat_index", default=0)
# The global ids of the samples being attacked (None: their positions in the batch).
_sample_ids: ContextVar[np.ndarray | None] = ContextVar("advlib_sample_ids", default=None)
# The rows of the call's chunk: what the caller lets the model evaluate at once.
_chunk_rows: ContextVar[int | None] = ContextVar("advlib_chunk_rows", default=None)
# Parameters of perturb that every call fills in itself.
_CALL_PARAMETERS = frozenset({"self", "model", "inputs", "criterion", "epsilon", "early_stop"})


class AttackResult(NamedTuple):
    """``(raw, clipped, success)``; unpacks like Foolbox's three return values."""

    raw: Any
    clipped: Any
    success: Any


class Attack(ABC):
    """Base of every attack. Subclasses implement :meth:`_attack_all` through a family base."""

    #: Whether the attack needs the model's gradients.
    requires_grad: ClassVar[bool] = True
    #: Whether targeted criteria are supported.
    supports_targeted: ClassVar[bool] = True
    #: The norm perturbations are measured in.
    norm: ClassVar[Norm]
    #: "fixed-epsilon" or "minimization".
    kind: ClassVar[str]
    #: Whether ``epsilons=None`` is accepted.
    accepts_unbounded: ClassVar[bool] = False

    seed: int | None = None
    #: Passes each gradient is averaged over, for randomized models (expectation over
    #: transformation); every gradient attack's constructor takes it as ``eot_samples=``.
    eot_samples: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        concrete = not getattr(cls, "__abstractmethods__", None) and hasattr(cls, "norm")
        if concrete and not cls.__name__.startswith("_"):
            ATTACKS[cls.__name__] = cls
        if cls.requires_grad and "__init__" in vars(cls) and hasattr(cls, "perturb"):
            cls.__init__ = _taking_eot_samples(vars(cls)["__init__"])  # type: ignore[method-assign]

    def _attacked_model(self, model: Model) -> Model:
        """The model ``perturb`` sees: gradients averaged over ``eot_samples`` passes."""
        from ..models.eot import averaged_gradients

        return averaged_gradients(model, self.eot_samples)

    @property
    def distance(self) -> Distance:
        """The distance perturbations are measured in (Foolbox's ``attack.distance``): the
        :mod:`advlib.distances` object of :attr:`norm`, e.g. ``attack.distance(x, clipped)``."""
        from .. import distances

        known = {0.0: distances.l0, 1.0: distances.l1, 2.0: distances.l2}
        return known.get(self.norm.p, distances.linf)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"

    def __call__(
        self,
        model: Model,
        inputs: Any,
        criterion: Any,
        *,
        epsilons: Any = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        indices: Any = None,
        **kwargs: Any,
    ) -> AttackResult:
        """Attack ``inputs`` of ``model``.

        Args:
            model: an advlib model wrapper (``PyTorchModel``, ``TensorFlowModel``, ...).
            inputs: a batch, shape (N, ...), as the model's native tensor, a NumPy array or an
                EagerPy tensor; values within ``model.bounds``. Never modified.
            criterion: the true labels (shape (N,), any integer dtype), meaning
                ``Misclassification(labels)``, or a :class:`~advlib.criteria.Criterion`.
            epsilons: a perturbation budget in the attack's norm, or a list of them.
                ``None`` (the default) is allowed for minimization attacks only: no budget,
                return the minimal adversarials found.
            batch_size: attack at most this many inputs at a time, bounding memory for large
                inputs; results are concatenated. Default None: the whole batch at once.
            progress: a progress bar with an ETA: True shows it, False never, None (the
                default) when somebody watches (a terminal or a notebook). Inside
                :func:`advlib.evaluate` its own bar counts instead.
            indices: the samples' global ids, a 1-D integer array of length N (default None:
                0..N-1). Random numbers are drawn per sample from the seed and the id, so a
                sample's result does not depend on the batch it is attacked in.
            **kwargs: further arguments of the attack's ``perturb``, e.g. ``starting_points``
                (BoundaryAttack, HopSkipJumpAttack); unknown names raise TypeError.

        Returns:
            ``AttackResult(raw, clipped, success)`` in the type, dtype and device of ``inputs``;
            see the module documentation for the exact meaning of each. ``clipped`` keeps the
            budget and the bounds in the dtype of ``inputs``, also when it is wider (float64)
            than the model's.
        """
        self._check_kwargs(kwargs, "__call__")
        eps_list, single = parse_epsilons(epsilons, self.accepts_unbounded, self._name())
        call = self._prepare(
            model, inputs, criterion, eps_list, (batch_size, indices), progress, kwargs
        )
        restore = call.restore
        if call.n == 0:
            nothing = ep.zeros(call.x, (len(eps_list), 0)) > 0
            raw = clipped = [call.x] * len(eps_list)
            clipped_out, success = restore.many(clipped), nothing
        else:
            with showing(progress, self._name()):
                raw, clipped, success, finite = self._attack_chunks(call, eps_list)
            clipped_out, success = self._user_clipped(call, clipped, success, finite, eps_list)
        if single:
            return AttackResult(restore(raw[0]), clipped_out[0], restore(success[0]))
        return AttackResult(restore.many(raw), clipped_out, restore(success))

    def repeat(self, times: int) -> Repeated:
        """This attack run ``times`` times, keeping per epsilon and sample the best result
        (Foolbox's ``repeat``); see :class:`Repeated`."""
        return Repeated(self, times)

    def _name(self) -> str:
        """The attack's name in messages and progress bars."""
        return type(self).__name__

    # ------------------------------------------------------------------ one call
    def _prepare(
        self,
        model: Model,
        inputs: Any,
        criterion: Any,
        epsilons: list[float | None],
        batching: tuple[Any, Any],
        progress: Any,
        kwargs: dict[str, Any],
    ) -> _Call:
        """Every check of a call, before any work: the inputs on the model's backend, the
        criterion bound to them, the keyword arguments for ``perturb``; ``batching`` is the
        call's ``(batch_size, indices)``."""
        chunk = parse_batch_size(batching[0])
        _progress.check_progress(progress)
        self._check_model(model)
        unbound = as_criterion(criterion)
        x, restore = model.to_tensor(inputs, "inputs", floating=True)
        x = check_inputs(x, model)
        warn_large_epsilons(epsilons, self.norm, model.bounds, tuple(x.shape))
        extra = {name: per_sample(model, value, name, x) for name, value in kwargs.items()}
        n = x.shape[0]
        ids = np.arange(n) if batching[1] is None else check_ids(batching[1], "indices", n)
        if n == 0:
            bound = unbound.bind(model, ep.zeros(x, (0, 2)), n=0)
            return _Call(model, inputs, x, restore, bound, 1, extra, ids)
        chunk = n if chunk is None else min(chunk, n)
        outputs, probabilities = probe_outputs(model, x, chunk)
        if self.requires_grad and probabilities:
            warn_probabilities(self._name())
        bound = unbound.bind(model, outputs, n=n)
        self._check_criterion(bound)
        return _Call(model, inputs, x, restore, bound, chunk, extra, ids)

    def _attack_chunks(
        self, call: _Call, epsilons: list[float | None]
    ) -> tuple[list[ep.Tensor], list[ep.Tensor], ep.Tensor, ep.Tensor]:
        """Attack ``call.chunk`` inputs at a time: per-epsilon raw and clipped, success and
        whether raw is finite, both of shape (K, N). Samples whose results are not finite
        fail."""

        def attack(piece: Piece) -> Any:
            outcome = self._attack_all(piece, epsilons)
            return _discard_nonfinite(piece.inputs, outcome, self._name())

        parts = call.each(attack)
        if len(parts) == 1:
            return cast(tuple[list[ep.Tensor], list[ep.Tensor], ep.Tensor, ep.Tensor], parts[0])
        raws, clips, successes, finites = zip(*parts)
        return (
            [ep.concatenate([r[k] for r in raws], axis=0) for k in range(len(epsilons))],
            [ep.concatenate([c[k] for c in clips], axis=0) for k in range(len(epsilons))],
            ep.concatenate(successes, axis=1),
            ep.concatenate(finites, axis=1),
        )

    def _user_clipped(
        self,
        call: _Call,
        clipped: list[ep.Tensor],
        success: ep.Tensor,
        finite: ep.Tensor,
        epsilons: list[float | None],
    ) -> tuple[list[Any], ep.Tensor]:
        """``clipped`` in the user's type, and the success flags that go with it.

        Inputs in a wider dtype than the model computes in (float64 for a float32 model):
        the float32 results, widened, can exceed the budget in float64 by float32 rounding
        (0.1000000024 for 0.1). They are projected again in the user's dtype around the
        user's own inputs, and judged again (one forward pass per epsilon)."""
        if not call.widened:
            return call.restore.many(clipped), success
        bounds = call.model.bounds
        origin = call.user_inputs().clip(*bounds)
        results, flags = [], []
        for k, eps in enumerate(epsilons):
            # Elements the attack left as they were (in the model's dtype) get the user's own
            # values back, not their rounding: an L0 distance must not count them.
            unchanged = ep.astensor(call.restore(clipped[k] == call.x))
            widened = ep.where(unchanged, origin, ep.astensor(call.restore(clipped[k])))
            fitted = (
                widened.clip(*bounds)
                if eps is None
                else self.norm.fit(widened, origin, eps, bounds)
            )
            computed, _ = call.model.to_tensor(fitted, "clipped", floating=True)
            flags.append(self._judge(call, computed))
            results.append(fitted if call.restore.as_eagerpy else fitted.raw)
        return results, ep.logical_and(ep.stack(flags, axis=0), finite)

    def _judge(self, call: _Call, inputs: ep.Tensor) -> ep.Tensor:
        """The criterion on ``inputs`` (shape (N, ...)), a chunk at a time."""

        def judge(rows: slice, criterion: Criterion) -> ep.Tensor:
            part = _rows(inputs, rows)
            return self._finish(call.model, criterion, part, part, None, "none")[1]

        flags = [judge(rows, criterion) for rows, criterion in call.chunks()]
        return flags[0] if len(flags) == 1 else ep.concatenate(flags, axis=0)

    def _run(
        self,
        model: Model,
        inputs: Any,
        criterion: Any,
        budget: float | None,
        batching: tuple[Any, Any],
        progress: Any,
        kwargs: dict[str, Any],
    ) -> Any:
        """Foolbox's ``run``: :meth:`_perturb` on validated inputs, raw, in the user's type;
        ``batching`` is ``(batch_size, indices)``."""
        call = self._prepare(model, inputs, criterion, [budget], batching, progress, kwargs)
        if call.n == 0:
            return call.restore(call.x)

        with showing(progress, self._name()):
            raws = call.each(lambda piece: self._perturb(piece, budget))
        return call.restore(raws[0] if len(raws) == 1 else ep.concatenate(raws, axis=0))

    @abstractmethod
    def _attack_all(self, piece: Piece, epsilons: list[float | None]) -> Outcome:
        """Per-epsilon results for one piece of a call."""

    def _perturb(self, piece: Piece, budget: float | None) -> ep.Tensor:
        """One ``perturb`` call: ``budget`` is the epsilon or the early stop. Defined by
        :class:`FixedEpsilonAttack` and :class:`MinimizationAttack`, the bases of ``run``."""
        raise NotImplementedError(f"{self._name()} has no run(); call the attack itself")

    # ------------------------------------------------------------------ shared helpers
    def _check_model(self, model: Any) -> None:
        check_model(model)
        if self.requires_grad and not model.has_gradients:
            usable = sorted(name for name, cls in ATTACKS.items() if not cls.requires_grad)
            raise TypeError(
                f"model: {self._name()} needs gradients, which {type(model).__name__} "
                "does not provide; wrap the model with PyTorchModel, TensorFlowModel or "
                "JAXModel, or use a gradient-free attack"
                + (f": {', '.join(usable)}" if usable else " (none is available yet)")
            )

    def _check_criterion(self, criterion: Criterion) -> None:
        if self.requires_grad:
            _, targeted = criterion.gradient_target()
            if targeted and not self.supports_targeted:
                raise ValueError(f"criterion: {self._name()} does not support targeted criteria")

    def _perturb_keywords(self) -> frozenset[str] | None:
        """The keyword arguments ``perturb`` takes beyond the call's own (None: any)."""
        return _perturb_keywords(type(self))

    def _check_kwargs(self, kwargs: dict[str, Any], entry: str) -> None:
        """Unknown keyword arguments raise TypeError, as Foolbox's (which pass them to run)."""
        accepted = self._perturb_keywords()
        for key in kwargs:
            if accepted is None or key in accepted:
                continue
            hints = {
                ("__call__", "epsilon"): "pass epsilons=...",
                ("__call__", "early_stop"): "calls stop early at the smallest epsilon; "
                "run(..., early_stop=...) takes early_stop",
                ("run", "epsilons"): "run takes one epsilon=... (early_stop=... for "
                "minimization attacks)",
            }
            takes = ", ".join(sorted(accepted)) or "no further keyword arguments"
            hint = hints.get((entry, key), f"{self._name()} takes {takes}")
            raise TypeError(
                f"{self._name()}.{entry}() got an unexpected keyword argument {key!r}; {hint}"
            )

    def _generator(self) -> SampleRandom:
        """Fresh per-sample random numbers from the attack's seed (see :mod:`advlib._random`):
        each run draws the same numbers, and a sample's numbers depend on its id only, not on
        its batch. Run ``i > 0`` of a :class:`Repeated` attack draws from stream ``i``: other
        numbers, still reproducible."""
        return SampleRandom(self.seed, _sample_ids.get(), stream=_repeat_index.get())

    def _step_key(
        self,
        *extra: Hashable,
        family: type[Attack] | None = None,
        settings: Sequence[str] | None = None,
    ) -> Hashable:
        """The key of a compiled step in the model's cache (``model.compiled(key, factory)``),
        for every attack: two steps share one compiled function exactly when their keys are
        equal, so the key names everything the step is built from.

        Args:
            *extra: what the step is built from besides the attack: its name, modes, shapes.
            family: the class whose methods build the step, to share it among that class's
                subclasses of one norm (APGD and APGD-T); default None: the attack's class.
            settings: the names of the attack's attributes the step is built from; default
                None: all of them except the seed (the safe choice).
        """
        chosen = vars(self) if settings is None else {k: getattr(self, k) for k in settings}
        values = tuple(sorted((k, repr(v)) for k, v in chosen.items() if k != "seed"))
        owner = type(self) if family is None else family
        return (owner, self.norm.name, values, *extra)

    def _finish(
        self,
        model: Model,
        criterion: Criterion,
        inputs: ep.Tensor,
        raw: ep.Tensor,
        epsilon: float | None,
        restrict: str,
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        """``(clipped, success, finite)`` for one epsilon, in one compiled call when the
        criterion's labels can be passed to compiled code (see :func:`finisher`)."""
        eps = None  # a 0-d tensor when projecting
        if epsilon is not None and restrict == "project":
            (eps,) = model.scalars(inputs, epsilon)
        split = split_labels(criterion)
        if split is None:  # a user-defined criterion: evaluated eagerly
            fn = finisher(model, self.norm, restrict, lambda _: criterion)
            clipped, success, finite = fn(raw, inputs, eps, ())
        else:
            tensors, rebuild, structure = split
            key = ("advlib.finish", self.norm.name, restrict, structure)
            fn = model.compiled(key, lambda: finisher(model, self.norm, restrict, rebuild))
            clipped, success, finite = fn(raw, inputs, eps, tensors)
        return (raw if clipped is None else clipped), success, finite


def _taking_eot_samples(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` also taking the keyword ``eot_samples=1`` (shown in its signature), stored as
    the attack's ``eot_samples`` after ``init`` ran."""
    from ..models.eot import check_samples

    signature = inspect.signature(init)
    if "eot_samples" in signature.parameters:
        return init
    parameters = list(signature.parameters.values())
    keywords = [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = inspect.Parameter("eot_samples", inspect.Parameter.KEYWORD_ONLY, default=1)
    rest = parameters[len(keywords) :]

    @functools.wraps(init)
    def __init__(self: Attack, *args: Any, eot_samples: int = 1, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.eot_samples = check_samples(eot_samples, "eot_samples")

    __init__.__signature__ = signature.replace(parameters=[*keywords, added, *rest])  # type: ignore[attr-defined]
    return __init__


@functools.cache
def _perturb_keywords(cls: type[Attack]) -> frozenset[str] | None:
    perturb = getattr(cls, "perturb", None)
    if perturb is None:
        return frozenset()
    parameters = inspect.signature(perturb).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in named) - _CALL_PARAMETERS


@dataclass
class _Call:
    """One validated call: the inputs on the model's backend (``x``, in the compute dtype), the
    bound criterion, the keyword arguments for ``perturb``, and how to give results back."""

    model: Model
    inputs: Any  # as the user passed them
    x: ep.Tensor
    restore: Restore
    criterion: Criterion
    chunk: int
    kwargs: dict[str, Any]
    ids: np.ndarray  # the samples' global ids

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def widened(self) -> bool:
        """Whether the user's inputs have a wider float dtype than the model computes in."""
        return _float_bits(self.restore.dtype) > _float_bits(self.x.dtype)

    def user_inputs(self) -> ep.Tensor:
        """The user's inputs as an EagerPy tensor of their own type and dtype (detached)."""
        if self.restore.kind == "numpy":  # kept on the host: the model's backend may narrow
            raw = self.inputs.raw if isinstance(self.inputs, ep.Tensor) else self.inputs
            return ep.astensor(np.asarray(raw))
        return self.model.to_tensor(self.inputs, "inputs", floating=False)[0]

    def chunks(self) -> Iterator[tuple[slice, Criterion]]:
        """Each chunk's rows and criterion."""
        if self.chunk >= self.n:
            yield slice(None), self.criterion
            return
        for start in range(0, self.n, self.chunk):
            stop = min(self.n, start + self.chunk)
            yield slice(start, stop), self.criterion.sliced(start, stop)

    def each(self, fn: Callable[[Piece], _T]) -> list[_T]:
        """``fn(piece)`` for each chunk, each an equal share of the progress bar's current
        portion."""
        chunks = list(self.chunks())  # slices every criterion first: errors before any work
        results = []
        for i in _progress.steps(len(chunks)):
            rows, criterion = chunks[i]
            kwargs = {k: _rows(v, rows) for k, v in self.kwargs.items()}
            ids = self.ids[rows]
            with sample_ids(ids), chunk_of(len(ids)):
                results.append(fn(Piece(self.model, _rows(self.x, rows), criterion, kwargs)))
        return results


class Piece(NamedTuple):
    """The inputs an attack runs on at once (a call's chunk): validated, on the model's
    backend, with their bound criterion and the keyword arguments for ``perturb``."""

    model: Model
    inputs: ep.Tensor
    criterion: Criterion
    kwargs: dict[str, Any]

    def finish(
        self, attack: Attack, raw: ep.Tensor, epsilon: float | None, restrict: str
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        """``attack._finish`` for this piece."""
        return attack._finish(self.model, self.criterion, self.inputs, raw, epsilon, restrict)


def _rows(t: _T, rows: slice) -> _T:
    """Rows of a tensor (anything else as it is)."""
    if not isinstance(t, ep.Tensor) or rows == slice(None):
        return t
    return cast(_T, t[rows])


def _float_bits(dtype: Any) -> int:
    """The width of a floating-point dtype of any backend (0 for other dtypes)."""
    if kind_of_dtype(dtype) != "float":
        return 0
    digits = name_of_dtype(dtype).rpartition("float")[2]
    return int(digits) if digits.isdigit() else 0


@contextmanager
def sample_ids(ids: np.ndarray | None) -> Iterator[None]:
    """Attacks inside draw their random numbers for the samples with these global ids (one
    per input row; None: the rows' positions)."""
    token = _sample_ids.set(ids)
    try:
        yield
    finally:
        _sample_ids.reset(token)


def current_ids() -> np.ndarray | None:
    """The global ids of the samples being attacked (None: their positions)."""
    return _sample_ids.get()


def chunk_rows() -> int | None:
    """The rows of the attack call's current chunk (its ``batch_size``, or all its inputs):
    as many rows as the caller lets the model evaluate at once, also for the components and
    rounds that run on fewer of them (None: outside an attack call)."""
    return _chunk_rows.get()


@contextmanager
def chunk_of(rows: int) -> Iterator[None]:
    """Attacks inside may evaluate ``rows`` rows at once (see :func:`chunk_rows`)."""
    token = _chunk_rows.set(rows)
    try:
        yield
    finally:
        _chunk_rows.reset(token)


@contextmanager
def showing(progress: bool | None, desc: str) -> Iterator[None]:
    """A progress bar labelled ``desc`` for a direct attack call (see
    :mod:`advlib._progress`); none when a bar is active already (``evaluate``'s)."""
    if _progress.active() is not None:
        yield
        return
    with _progress.Progress(1, desc, enabled=progress).activate():
        yield


class FixedEpsilonAttack(Attack):
    """An attack that searches inside a given epsilon ball; runs once per epsilon."""

    kind = "fixed-epsilon"
    #: Whether :meth:`perturb` already returns points within epsilon and the bounds, so that
    #: ``clipped`` is ``raw`` (no second projection).
    returns_projected: ClassVar[bool] = False

    @abstractmethod
    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        """Perturbed inputs within ``epsilon`` of ``inputs`` and within the bounds."""

    def run(
        self,
        model: Model,
        inputs: Any,
        criterion: Any,
        *,
        epsilon: float | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        indices: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Foolbox's ``run``: the attack's raw output for one ``epsilon`` (required, a number),
        in the type, dtype and device of ``inputs``; no projection, no success flags (call the
        attack itself for those). Arguments and checks as :meth:`__call__`."""
        self._check_kwargs(kwargs, "run")
        budget = _one_budget(epsilon, False, self._name(), "epsilon")
        return self._run(
            model, inputs, criterion, budget, (batch_size, indices), progress, kwargs
        )

    def _perturb(self, piece: Piece, budget: float | None) -> ep.Tensor:
        # parse_epsilons refuses None for fixed-epsilon attacks.
        model, inputs, criterion, kwargs = piece
        model = self._attacked_model(model)
        return self.perturb(model, inputs, criterion, cast(float, budget), **kwargs)

    def _attack_all(self, piece: Piece, epsilons: list[float | None]) -> Outcome:
        outcome = Outcome([], [], [], [])
        restrict = "none" if self.returns_projected else "project"
        for k in _progress.steps(len(epsilons)):
            raw = self._perturb(piece, epsilons[k])
            outcome.add(raw, *piece.finish(self, raw, epsilons[k], restrict))
        return outcome


class MinimizationAttack(Attack):
    """An attack that looks for the smallest adversarial; runs once for all epsilons."""

    kind = "minimization"
    accepts_unbounded = True

    @abstractmethod
    def perturb(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        early_stop: float | None = None,
    ) -> ep.Tensor:
        """Minimal adversarials (or the inputs where none was found). A sample may stop once
        it is adversarial within ``early_stop``."""

    def run(
        self,
        model: Model,
        inputs: Any,
        criterion: Any,
        *,
        early_stop: float | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        indices: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Foolbox's ``run``: the attack's raw output, the smallest adversarials it found (a
        sample may stop once adversarial within ``early_stop``, default None: never), in the
        type, dtype and device of ``inputs``; no clipping, no success flags (call the attack
        itself for those). Arguments and checks as :meth:`__call__`."""
        self._check_kwargs(kwargs, "run")
        budget = _one_budget(early_stop, True, self._name(), "early_stop")
        return self._run(
            model, inputs, criterion, budget, (batch_size, indices), progress, kwargs
        )

    def _perturb(self, piece: Piece, budget: float | None) -> ep.Tensor:
        model, inputs, criterion, kwargs = piece
        model = self._attacked_model(model)
        return self.perturb(model, inputs, criterion, early_stop=budget, **kwargs)

    def _attack_all(self, piece: Piece, epsilons: list[float | None]) -> Outcome:
        # As Foolbox: stop early at the smallest epsilon, never when one is unbounded.
        bounded = [eps for eps in epsilons if eps is not None]
        early_stop = min(bounded) if len(bounded) == len(epsilons) else None
        raw = self._perturb(piece, early_stop)
        outcome = Outcome([], [], [], [])
        for eps in epsilons:
            restrict = "clip" if eps is None else "project"
            outcome.add(raw, *piece.finish(self, raw, eps, restrict))
        return outcome


# What a Repeated attack reads from the attack it repeats.
_REPEATED_TRAITS = ("norm", "kind", "requires_grad", "supports_targeted", "accepts_unbounded")


class Repeated(Attack):
    """``attack`` run ``times`` times, keeping the best result (Foolbox's ``Repeated``;
    ``attack.repeat(times)`` makes one). Usable wherever ``attack`` is.

    Per epsilon and sample it keeps the first successful run for a numeric epsilon, and for
    ``None`` (minimization attacks, unbounded) a success strictly closer in the attack's norm
    than the best so far; ``success`` is True where any run succeeded. Each run draws other
    random numbers: run ``i > 0`` uses a seed derived from the attack's seed and ``i``, so a
    seeded attack repeated gives the same results every time (and run 0 is the attack alone).

    Args:
        attack: the attack to repeat (a Repeated one is flattened: its attack, more times).
        times: how many runs, an int >= 1.
    """

    def __init__(self, attack: Attack, times: int) -> None:
        if not isinstance(attack, Attack):
            raise TypeError(f"attack: expected an advlib attack, got {type(attack).__name__}")
        if isinstance(times, bool) or not isinstance(times, int | np.integer):
            raise TypeError(f"times: expected an int >= 1, got {times!r}")
        if times < 1:
            raise ValueError(f"times: expected an int >= 1, got {times}")
        if isinstance(attack, Repeated):
            times *= attack.times
            attack = attack.attack
        self.attack: Attack = attack
        self.times: int = int(times)
        # Per instance, the class attributes of the attack it repeats (evaluate reads them).
        vars(self).update({name: getattr(attack, name) for name in _REPEATED_TRAITS})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.attack!r}, times={self.times})"

    def _name(self) -> str:
        return self.attack._name()

    def _perturb_keywords(self) -> frozenset[str] | None:
        return self.attack._perturb_keywords()

    def _attack_all(self, piece: Piece, epsilons: list[float | None]) -> Outcome:
        runs = (self._once(i, piece, epsilons) for i in _progress.steps(self.times))
        best = next(runs)
        for outcome in runs:
            best = self._better(best, outcome, piece.inputs, epsilons)
        return best

    def _once(self, index: int, piece: Piece, epsilons: list[float | None]) -> Outcome:
        token = _repeat_index.set(index)
        try:
            return self.attack._attack_all(piece, epsilons)
        finally:
            _repeat_index.reset(token)

    def _better(
        self, best: Outcome, new: Outcome, inputs: ep.Tensor, epsilons: list[float | None]
    ) -> Outcome:
        """Per epsilon and sample, ``new`` where it succeeds and ``best`` does not (or, for
        an unbounded epsilon, where ``new`` succeeds strictly closer)."""
        merged = Outcome([], [], [], [])
        for k, eps in enumerate(epsilons):
            wanted = ep.logical_not(best.success[k])
            if eps is None:
                closer = self.norm(new.clipped[k] - inputs) < self.norm(best.clipped[k] - inputs)
                wanted = ep.logical_or(wanted, closer)
            take = ep.logical_and(new.success[k], wanted)
            rows = atleast_kd(take, inputs.ndim)
            merged.add(
                ep.where(rows, new.raw[k], best.raw[k]),
                ep.where(rows, new.clipped[k], best.clipped[k]),
                ep.logical_or(best.success[k], new.success[k]),
                ep.where(take, new.finite[k], best.finite[k]),
            )
        return merged


class Outcome(NamedTuple):
    """Per-epsilon lists of raw, clipped, success, and whether each sample of raw is finite."""

    raw: list[ep.Tensor]
    clipped: list[ep.Tensor]
    success: list[ep.Tensor]
    finite: list[ep.Tensor]

    def add(
        self, raw: ep.Tensor, clipped: ep.Tensor, success: ep.Tensor, finite: ep.Tensor
    ) -> None:
        for field, value in zip(self, (raw, clipped, success, finite)):
            field.append(value)


def finisher(
    model: Model, norm: Norm, restrict: str, rebuild: Callable[[Any], Criterion]
) -> Callable[..., tuple[ep.Tensor | None, ep.Tensor, ep.Tensor]]:
    """A pure function ``(raw, inputs, eps, labels) -> (clipped, success, finite)``, where
    ``eps`` is the epsilon as a 0-d tensor (None when not projecting), ``clipped`` is None
    when it is ``raw``, and ``finite`` says per sample whether ``raw`` is finite.

    ``restrict`` says how ``clipped`` comes from ``raw``: "none" (already within epsilon and
    the bounds), "clip" (into the bounds) or "project" (into the epsilon ball, then the
    bounds). ``rebuild(labels)`` gives the criterion. A sample succeeds when the criterion
    holds for ``clipped`` and its logits are finite (non-finite inputs are failed later, by
    :func:`_discard_nonfinite`).
    """
    bounds = model.bounds

    def finish(
        raw: ep.Tensor, inputs: ep.Tensor, eps: ep.Tensor | None, labels: Any
    ) -> tuple[ep.Tensor | None, ep.Tensor, ep.Tensor]:
        if restrict == "none":
            clipped = raw
        elif restrict == "clip":
            clipped = raw.clip(*bounds)
        else:
            assert eps is not None  # "project" always comes with an epsilon
            clipped = norm.project(raw, inputs, eps).clip(*bounds)
        logits = model(clipped)
        success = ep.logical_and(rebuild(labels)(clipped, logits), _finite(logits).all(axis=-1))
        # Returning an argument unchanged would make compiled code copy it.
        return (None if restrict == "none" else clipped), success, _finite_rows(raw)

    return finish


def _discard_nonfinite(
    inputs: ep.Tensor, outcome: Outcome, attack_name: str
) -> tuple[list[ep.Tensor], list[ep.Tensor], ep.Tensor, ep.Tensor]:
    """Samples whose perturbed inputs became NaN/Inf (a model that overflows) are returned
    unperturbed and failed, with a warning; the other samples are untouched. Returns the
    per-epsilon ``raw`` and ``clipped``, and ``success`` and ``finite`` of shape (K, N).

    Only ``raw`` is checked (``outcome.finite``, computed with the success): projecting and
    clipping keep finite values finite. One stack and one small host sync; results are only
    rewritten when some sample is not finite.
    """
    k = len(outcome.success)
    flags = ep.stack(outcome.success + outcome.finite, axis=0)
    success, finite = flags[:k], flags[k:]
    finite_np = finite.numpy()
    raw, clipped = outcome.raw, outcome.clipped
    if finite_np.all():
        return raw, clipped, success, finite
    warn_user(
        f"{attack_name}: the model produced NaN or infinite values for some samples; "
        "they are returned unperturbed and counted as failed"
    )
    rows = [atleast_kd(finite[i], inputs.ndim) for i in range(k)]
    return (
        [ep.where(r, x, inputs) for r, x in zip(rows, raw)],
        [ep.where(r, c, inputs) for r, c in zip(rows, clipped)],
        ep.logical_and(success, finite),
        finite,
    )


def _finite_rows(t: ep.Tensor) -> ep.Tensor:
    """Per sample: whether every value is finite, read off the row sum (one pass over the
    data). A NaN or infinity makes the sum NaN or infinite; finite values only overflow a
    float32 sum beyond ~1e38, far outside any input range an attack returns. Half-precision
    sums overflow at 65504 (an image in [0, 255]), so those are checked value by value."""
    flat = flat_batch(t)
    if dtype_name(t) in ("float16", "bfloat16"):
        return _finite(flat).all(axis=-1)
    return _finite(flat.sum(axis=-1))


def _finite(t: ep.Tensor) -> ep.Tensor:
    """Elementwise: neither NaN nor infinite (``x - x`` is 0 only for finite ``x``)."""
    finite: ep.Tensor = (t - t) == 0
    return finite


def parse_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1 or None, got {batch_size!r}")
    return batch_size


# ---------------------------------------------------------------------- boundary checks
def parse_epsilons(
    epsilons: Any, accepts_unbounded: bool, attack_name: str, argument: str = "epsilons"
) -> tuple[list[float | None], bool]:
    """``(list of epsilons, whether a single epsilon was given)``, validated; ``argument``
    names the argument in messages."""
    if isinstance(epsilons, ep.Tensor):
        epsilons = epsilons.numpy()
    single = (
        epsilons is None
        or isinstance(epsilons, numbers.Real)
        or (isinstance(epsilons, np.ndarray) and epsilons.ndim == 0)
    )
    values = [epsilons] if single else epsilons
    if not single and not isinstance(epsilons, Sequence | np.ndarray):
        raise TypeError(
            f"{argument}: expected a number, a list of numbers or None, got "
            f"{type(epsilons).__name__}"
        )
    if not single and len(values) == 0:
        raise ValueError(f"{argument}: expected at least one epsilon, got an empty list")
    parsed: list[float | None] = []
    for value in values:
        if value is None:
            if not accepts_unbounded:
                raise ValueError(
                    f"{argument}: {attack_name} is a fixed-epsilon attack and needs a budget; "
                    "pass a number or a list of numbers (None means unbounded, which only "
                    "minimization attacks support)"
                )
            parsed.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real | np.generic | np.ndarray):
            raise TypeError(f"{argument}: expected numbers, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{argument}: expected finite numbers >= 0, got {number}")
        parsed.append(number)
    return parsed, single


def _one_budget(value: Any, accepts_none: bool, attack_name: str, argument: str) -> float | None:
    """One epsilon (or early stop) for ``run``, validated."""
    parsed, single = parse_epsilons(value, accepts_none, attack_name, argument)
    if not single:
        raise TypeError(
            f"{argument}: run takes one number, got {value!r}; call the attack itself with "
            "epsilons=[...] for several"
        )
    return parsed[0]


def warn_large_epsilons(
    epsilons: Sequence[float | None],
    norm: Norm,
    bounds: tuple[float, float],
    shape: tuple[int, ...],
) -> None:
    """Warn when an epsilon exceeds the largest ``norm`` of any perturbation of inputs of
    ``shape`` within ``bounds`` (the width of the bounds for Linf): such a budget limits
    nothing, and usually is in 0-255 pixel units while the bounds are (0, 1)."""
    lower, upper = bounds
    size = math.prod(shape[1:])
    largest = norm.largest(upper - lower, size)
    too_large = [eps for eps in epsilons if eps is not None and eps > largest]
    if too_large:
        warn_user(
            f"epsilons: {max(too_large):g} is larger than any {norm.name} perturbation of these "
            f"inputs within the bounds ({lower:g}, {upper:g}) can be ({largest:.4g}), so it "
            "limits nothing. Was it given in 0-255 pixel units? Then scale it to the bounds: "
            f"epsilon * {upper - lower:g} / 255 (e.g. 8/255 for bounds (0, 1))"
        )


def check_inputs(x: ep.Tensor, model: Model) -> ep.Tensor:
    """Rank, finiteness and bounds of the inputs, checked before any work (one sync).

    Returns ``x`` clipped into the bounds (values may exceed them by the tolerance of 1e-6).
    Results never share memory with a mutable user tensor (PyTorch, NumPy): ``x`` is copied
    there, and kept as it is for immutable frameworks when it is inside the bounds."""
    if x.ndim < 2:
        raise ValueError(
            f"inputs: expected a batch of shape (N, ...) with at least 2 dimensions, "
            f"got shape {tuple(x.shape)}"
        )
    lower, upper = model.bounds
    if x.shape[0] == 0:
        return x.clip(lower, upper)
    low, high = model.value_range(x)
    # NaN propagates through min and max and fails both comparisons.
    if not (lower - _BOUNDS_TOLERANCE <= low and high <= upper + _BOUNDS_TOLERANCE):
        values = x.numpy()
        if not np.isfinite(values).all():
            raise ValueError("inputs: contain NaN or infinite values")
        raise ValueError(
            f"inputs: values must lie within the model's bounds [{lower}, {upper}], "
            f"got values from {low:.6g} to {high:.6g}" + _pixel_hint(low, high, upper)
        )
    if model.immutable_tensors and lower <= low and high <= upper:
        return x
    return x.clip(lower, upper)


def _pixel_hint(low: float, high: float, upper: float) -> str:
    """The likely fix when inputs look like 8-bit pixels (0 to 255) but the bounds do not."""
    if low >= 0 and 1.5 < high <= 255 and upper < high:
        return (
            "; they look like 8-bit pixel values (0 to 255): scale them to the bounds "
            "(e.g. inputs / 255 for bounds (0, 1)), or wrap the model with bounds=(0, 255)"
        )
    return ""


def check_outputs(outputs: ep.Tensor, n: int) -> None:
    """The model must return logits of shape (N, classes) with at least two classes."""
    if not isinstance(outputs, ep.Tensor) or outputs.ndim != 2 or outputs.shape[0] != n:
        shape = tuple(outputs.shape) if isinstance(outputs, ep.Tensor) else type(outputs)
        raise ValueError(f"model: expected outputs of shape ({n}, classes), got {shape}")
    if outputs.shape[1] < 2:
        raise ValueError(
            "model: returns one output per sample; attacks need one logit per class. For a "
            "binary sigmoid model z, return the two logits [0, z] (e.g. torch.cat([0 * z, z], 1))"
        )
    if dtype_kind(outputs) != "float":
        raise ValueError(f"model: expected floating-point logits, got dtype {outputs.dtype}")


# Per model and input signature (shape, dtype, device) already validated: one row of logits
# and whether the outputs looked like probabilities.
_probed: weakref.WeakKeyDictionary[Model, dict[tuple[Any, ...], tuple[ep.Tensor, bool]]] = (
    weakref.WeakKeyDictionary()
)


def probe_outputs(model: Model, x: ep.Tensor, chunk: int) -> tuple[ep.Tensor, bool]:
    """Logits to validate the labels against, and whether they look like probabilities.

    The first call for an input signature runs the model on the first ``chunk`` inputs and
    checks its outputs; later calls with the same signature reuse one cached row of those
    logits (its number of classes and dtype are all the labels' checks need), which saves a
    forward pass and a host sync per call.
    """
    signature = (tuple(x.shape[1:]), str(x.dtype), str(getattr(x.raw, "device", "")))
    cache = _probed.setdefault(model, {})
    if signature not in cache:
        outputs = model(x[:chunk])
        check_outputs(outputs, chunk)
        cache[signature] = (outputs[:1], looks_like_probabilities(outputs))
        return outputs, cache[signature][1]
    return cache[signature]


def looks_like_probabilities(outputs: ep.Tensor) -> bool:
    """Whether every row is non-negative and sums to 1 (softmax outputs, not logits)."""
    rows = outputs.sum(axis=-1)
    looks = ep.logical_and((outputs >= 0).all(), ((rows - 1).abs() < 1e-3).all())
    return bool(looks.item())


_warned_probabilities: set[str] = set()


def warn_probabilities(attack_name: str) -> None:
    """Warn once per attack class that the model seems to return probabilities."""
    if attack_name in _warned_probabilities:
        return
    _warned_probabilities.add(attack_name)
    warn_user(
        f"{attack_name}: the model's outputs look like probabilities (non-negative rows "
        "summing to 1). Gradient attacks on softmax outputs are much weaker and can report "
        "false robustness; pass a model that returns logits"
    )


def as_criterion(criterion: Any) -> Criterion:
    """Plain labels mean ``Misclassification(labels)``."""
    if isinstance(criterion, Criterion):
        return criterion
    if is_foolbox(criterion):
        raise foolbox_criterion_error(criterion)
    if criterion is None or isinstance(criterion, str | dict):
        raise TypeError(
            "criterion: expected labels (shape (N,), integers) or a Criterion such as "
            f"Misclassification or TargetedMisclassification, got {type(criterion).__name__}"
        )
    return Misclassification(criterion)


_WRAPPERS = ("PyTorchModel", "TensorFlowModel", "JAXModel", "NumPyModel")
# The wrapper for a network, by the top-level module of a class in its type's MRO.
_NETWORK_WRAPPERS = {
    "torch": "PyTorchModel",
    "keras": "TensorFlowModel",
    "tensorflow": "TensorFlowModel",
    "tf_keras": "TensorFlowModel",
}


def check_model(model: Any, name: str = "model") -> Model:
    """``model`` if it is an advlib model, else a TypeError that says how to make one (for
    Foolbox models and bare networks too). Every entry point that takes a model calls it."""
    if isinstance(model, Model):
        return model
    kind = type(model)
    got = f"{kind.__module__}.{kind.__qualname__}"
    if is_foolbox(model):
        wrapper = kind.__name__ if kind.__name__ in _WRAPPERS else _WRAPPERS[0]
        raise TypeError(
            f"{name}: got a Foolbox model ({got}); advlib attacks take advlib models: wrap the "
            f"network with advlib.{wrapper}(net, bounds=...) (advlib's wrappers: "
            f"{', '.join(_WRAPPERS)})"
        )
    roots = {cls.__module__.split(".")[0] for cls in kind.__mro__}
    network = next((w for root, w in _NETWORK_WRAPPERS.items() if root in roots), None)
    hint = ""
    if network is not None:
        hint = f"; wrap the network: advlib.{network}(net, bounds=(0, 1))"
    elif callable(model):
        hint = "; wrap a function with advlib.JAXModel(fn, bounds=...) or NumPyModel(fn, ...)"
    raise TypeError(
        f"{name}: expected an advlib model wrapper ({', '.join(_WRAPPERS)}), got {got}{hint}"
    )


def per_sample(model: Model, value: Any, name: str, inputs: ep.Tensor) -> Any:
    """A keyword argument for ``perturb``: a tensor (native, NumPy or EagerPy) moves to the
    model's backend (floats in the inputs' dtype) and must hold one row per input; other
    values stay as they are."""
    if framework_of(value) is None:
        return value
    floating = kind_of_dtype(value.dtype) == "float"
    tensor, _ = model.to_tensor(value, name, floating=floating)
    if floating and tensor.dtype != inputs.dtype:
        tensor = tensor.astype(inputs.dtype)
    if tensor.ndim == 0 or tensor.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"{name}: expected one row per input, shape ({inputs.shape[0]}, ...) like the "
            f"inputs {tuple(inputs.shape)}, got shape {tuple(tensor.shape)}"
        )
    return tensor
