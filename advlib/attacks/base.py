"""The attack call, written once: validation, epsilon semantics, clipping, success, types.

``attack(model, inputs, criterion, epsilons=...)`` returns ``AttackResult(raw, clipped, success)``:

- ``raw``: what the attack produced, before clipping to each epsilon. For minimization attacks
  this is the smallest adversarial the attack found, whatever its size.
- ``clipped``: ``raw`` moved into each epsilon ball (and the bounds). Evaluate robustness on this.
- ``success``: the criterion on ``clipped``, a bool tensor of shape (N,) or (K, N).

A scalar epsilon gives single tensors and ``success`` of shape (N,); a list of K epsilons gives
lists of K tensors and ``success`` of shape (K, N).
"""

from __future__ import annotations

import math
import numbers
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, NamedTuple, cast

import eagerpy as ep
import numpy as np

from .._tensors import atleast_kd, dtype_kind, dtype_name, flat_batch
from ..criteria import Criterion, Misclassification
from ..criteria.labels import split_labels
from ..models.base import Model
from ..norms import Norm

#: Every concrete attack class, by name, in definition order (aliases are the same classes).
ATTACKS: dict[str, type[Attack]] = {}

_BOUNDS_TOLERANCE = 1e-6


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        concrete = not getattr(cls, "__abstractmethods__", None) and hasattr(cls, "norm")
        if concrete and not cls.__name__.startswith("_"):
            ATTACKS[cls.__name__] = cls

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
    ) -> AttackResult:
        """Attack ``inputs`` of ``model``.

        Args:
            model: an advlib model wrapper (``PyTorchModel``, ``TensorFlowModel``, ...).
            inputs: a batch, shape (N, ...), as the model's native tensor, a NumPy array or an
                EagerPy tensor; values within ``model.bounds``. Never modified.
            criterion: the true labels (shape (N,), any integer dtype), meaning
                ``Misclassification(labels)``, or a :class:`~advlib.criteria.Criterion`.
            epsilons: a perturbation budget in the attack's norm, or a list of them.
                ``None`` is allowed for minimization attacks: no budget, return the minimal
                adversarials found.
            batch_size: attack at most this many inputs at a time, bounding memory for large
                inputs; results are concatenated. Default None: the whole batch at once.

        Returns:
            ``AttackResult(raw, clipped, success)`` in the type, dtype and device of ``inputs``;
            see the module documentation for the exact meaning of each.
        """
        eps_list, single = parse_epsilons(epsilons, self.accepts_unbounded, type(self).__name__)
        chunk = parse_batch_size(batch_size)
        self._check_model(model)
        criterion = as_criterion(criterion)
        x, restore = model.to_tensor(inputs, "inputs", floating=True)
        x = check_inputs(x, model)
        n = x.shape[0]
        chunk = n if chunk is None else min(chunk, n)
        if n == 0:
            raw, clipped, success = self._empty(model, x, criterion, len(eps_list))
            success_t = ep.stack(success, axis=0)
        else:
            outputs, probabilities = probe_outputs(model, x, chunk)
            if self.requires_grad and probabilities:
                warn_probabilities(type(self).__name__)
            bound = criterion.bind(model, outputs, n=n)
            self._check_criterion(bound)
            raw, clipped, success_t = self._attack_chunks(model, x, bound, eps_list, chunk)
        if single:
            return AttackResult(restore(raw[0]), restore(clipped[0]), restore(success_t[0]))
        return AttackResult(restore.many(raw), restore.many(clipped), restore(success_t))

    def _attack_chunks(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        epsilons: list[float | None],
        chunk: int,
    ) -> tuple[list[ep.Tensor], list[ep.Tensor], ep.Tensor]:
        """Attack ``chunk`` inputs at a time: per-epsilon raw and clipped, and success of
        shape (K, N). Samples whose results are not finite fail."""
        n = inputs.shape[0]
        raws, clips, successes = [], [], []
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            part = inputs[start:stop] if chunk < n else inputs
            part_criterion = criterion.sliced(start, stop) if chunk < n else criterion
            outcome = self._attack_all(model, part, part_criterion, epsilons)
            raw, clipped, success = _discard_nonfinite(part, outcome, type(self).__name__)
            raws.append(raw)
            clips.append(clipped)
            successes.append(success)
        if len(successes) == 1:
            return raws[0], clips[0], successes[0]
        return (
            [ep.concatenate([r[k] for r in raws], axis=0) for k in range(len(epsilons))],
            [ep.concatenate([c[k] for c in clips], axis=0) for k in range(len(epsilons))],
            ep.concatenate(successes, axis=1),
        )

    def _empty(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, k: int
    ) -> tuple[list[ep.Tensor], list[ep.Tensor], list[ep.Tensor]]:
        """An empty batch: empty results, after the labels are checked to be empty too."""
        outputs = ep.zeros(inputs, (0, 2))
        criterion.bind(model, outputs, n=0)
        nothing = ep.zeros(inputs, (0,)) > 0
        return [inputs] * k, [inputs] * k, [nothing] * k

    @abstractmethod
    def _attack_all(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilons: list[float | None]
    ) -> Outcome:
        """Per-epsilon results for validated inputs on the model's backend."""

    # ------------------------------------------------------------------ shared helpers
    def _check_model(self, model: Any) -> None:
        if not isinstance(model, Model):
            raise TypeError(
                "model: expected an advlib model wrapper (PyTorchModel, TensorFlowModel, "
                f"JAXModel or NumPyModel), got {type(model).__module__}.{type(model).__name__}"
            )
        if self.requires_grad and not model.has_gradients:
            usable = sorted(name for name, cls in ATTACKS.items() if not cls.requires_grad)
            raise TypeError(
                f"model: {type(self).__name__} needs gradients, which {type(model).__name__} "
                "does not provide; wrap the model with PyTorchModel, TensorFlowModel or "
                "JAXModel, or use a gradient-free attack"
                + (f": {', '.join(usable)}" if usable else " (none is available yet)")
            )

    def _check_criterion(self, criterion: Criterion) -> None:
        if self.requires_grad:
            _, targeted = criterion.gradient_target()
            if targeted and not self.supports_targeted:
                raise ValueError(
                    f"criterion: {type(self).__name__} does not support targeted criteria"
                )

    def _generator(self) -> np.random.Generator:
        """A fresh generator from the attack's seed: each run draws the same numbers."""
        return np.random.default_rng(self.seed)

    def _step_key(self, *extra: Hashable) -> Hashable:
        """Identifies a compiled step: the attack's settings except its seed."""
        settings = tuple(sorted((k, repr(v)) for k, v in vars(self).items() if k != "seed"))
        return (type(self).__qualname__, settings, *extra)

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

    def _attack_all(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilons: list[float | None]
    ) -> Outcome:
        outcome = Outcome([], [], [], [])
        restrict = "none" if self.returns_projected else "project"
        # parse_epsilons refuses None for fixed-epsilon attacks.
        for eps in cast(list[float], epsilons):
            raw = self.perturb(model, inputs, criterion, eps)
            outcome.add(raw, *self._finish(model, criterion, inputs, raw, eps, restrict))
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

    def _attack_all(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilons: list[float | None]
    ) -> Outcome:
        bounded = [eps for eps in epsilons if eps is not None]
        raw = self.perturb(model, inputs, criterion, early_stop=min(bounded) if bounded else None)
        outcome = Outcome([], [], [], [])
        for eps in epsilons:
            restrict = "clip" if eps is None else "project"
            outcome.add(raw, *self._finish(model, criterion, inputs, raw, eps, restrict))
        return outcome


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
) -> tuple[list[ep.Tensor], list[ep.Tensor], ep.Tensor]:
    """Samples whose perturbed inputs became NaN/Inf (a model that overflows) are returned
    unperturbed and failed, with a warning; the other samples are untouched. Returns the
    per-epsilon ``raw`` and ``clipped`` and ``success`` of shape (K, N).

    Only ``raw`` is checked (``outcome.finite``, computed with the success): projecting and
    clipping keep finite values finite. One stack and one small host sync; results are only
    rewritten when some sample is not finite.
    """
    k = len(outcome.success)
    flags = ep.stack(outcome.success + outcome.finite, axis=0)
    success, finite = flags[:k], flags[k:].numpy()
    raw, clipped = outcome.raw, outcome.clipped
    if finite.all():
        return raw, clipped, success
    warnings.warn(
        f"{attack_name}: the model produced NaN or infinite values for some samples; "
        "they are returned unperturbed and counted as failed",
        stacklevel=4,
    )
    keep = ep.from_numpy(success, finite)
    rows = [atleast_kd(keep[i], inputs.ndim) for i in range(k)]
    return (
        [ep.where(r, x, inputs) for r, x in zip(rows, raw)],
        [ep.where(r, c, inputs) for r, c in zip(rows, clipped)],
        ep.logical_and(success, keep),
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
    epsilons: Any, accepts_unbounded: bool, attack_name: str
) -> tuple[list[float | None], bool]:
    """``(list of epsilons, whether a single epsilon was given)``, validated."""
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
            f"epsilons: expected a number, a list of numbers or None, got {type(epsilons).__name__}"
        )
    if not single and len(values) == 0:
        raise ValueError("epsilons: expected at least one epsilon, got an empty list")
    parsed: list[float | None] = []
    for value in values:
        if value is None:
            if not accepts_unbounded:
                raise ValueError(
                    f"epsilons: {attack_name} is a fixed-epsilon attack and needs a budget; "
                    "pass a number or a list of numbers (None means unbounded, which only "
                    "minimization attacks support)"
                )
            parsed.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real | np.generic | np.ndarray):
            raise TypeError(f"epsilons: expected numbers, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"epsilons: expected finite numbers >= 0, got {number}")
        parsed.append(number)
    return parsed, single


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
            f"got values from {low:.6g} to {high:.6g}"
        )
    if model.immutable_tensors and lower <= low and high <= upper:
        return x
    return x.clip(lower, upper)


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
    warnings.warn(
        f"{attack_name}: the model's outputs look like probabilities (non-negative rows "
        "summing to 1). Gradient attacks on softmax outputs are much weaker and can report "
        "false robustness; pass a model that returns logits",
        stacklevel=3,
    )


def as_criterion(criterion: Any) -> Criterion:
    """Plain labels mean ``Misclassification(labels)``."""
    if isinstance(criterion, Criterion):
        return criterion
    if criterion is None or isinstance(criterion, str | dict):
        raise TypeError(
            "criterion: expected labels (shape (N,), integers) or a Criterion such as "
            f"Misclassification or TargetedMisclassification, got {type(criterion).__name__}"
        )
    return Misclassification(criterion)
