"""AutoAttack (Croce & Hein, 2020): a fixed ensemble of diverse, parameter-free attacks.

Versions (``steps`` = 100, ``n_target_classes`` = 9 and ``n_queries`` = 5000 by default; each
attack runs only on the samples that every attack before it failed on, and a sample counts as
robust only if all of them fail):

- ``"standard"``: APGD-CE (1 restart), APGD-T (targeted DLR, 9 target classes), FAB-T (9 target
  classes) and Square (5000 queries). In L1 (:class:`L1AutoAttack`, AutoAttack's L1 version):
  L1-APGD-CE with 5 restarts and L1-APGD-T on 5 targets, both with AutoAttack's
  ``use_largereps`` schedule (30% of the steps at 3 epsilon, 30% at 2 epsilon, 40% at epsilon,
  each stage starting from the last one's result; :func:`large_eps_stages`), FAB-L1-T (9
  targets) and Square-L1 (5000 queries).
- ``"fast"``: APGD-CE (1 restart), then MALT (targeted APGD, 1 restart, on the 3 classes closest
  under the linearisation among all others, :mod:`~advlib.attacks.malt`), then Square with
  1000 queries (``"square-short"``; ``FAST_QUERIES``), or its full ``n_queries`` where the model
  checks suspect gradient masking (probability outputs, randomness, zero gradients). A sample
  that resists costs 4 runs of 100 steps (1 + 3) and 1000 queries, instead of 1 + 9 + 9 runs
  and 5000 queries. (Without the short Square, "fast" missed 2 of 200 digits that standard's
  Square found on the PGD-trained zoo CNN at Linf 0.2; 1000 queries found both.)
- ``"strong"``: the standard attacks, unchanged and first (so every success of ``"standard"``
  is kept), then on what they leave: APGD with the probability-margin loss (``"pma"``, 5
  restarts), ACG (margin loss, 1 restart; Linf and L2 only) and MALT on 9 targets (1
  restart).
- ``"plus"``: restarts and the untargeted APGD-DLR and FAB added to the standard attacks.
- ``"rand"``: for randomized models, APGD-CE and APGD-DLR with expectation over 20
  transformations per gradient.

Target counts are capped by the number of classes; the attacks and budgets of a run are in its
report (:attr:`AutoAttackReport.components`, printed by :func:`robust_accuracy_table`).

Before attacking, AutoAttack checks the model for signs of gradient masking (probability
outputs, randomness, zero gradients) and afterwards whether the black-box Square attack beat the
gradient attacks; each finding is a :class:`GradientMaskingWarning`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import eagerpy as ep
import numpy as np

from .._random import SampleRandom
from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model
from ..norms import Norm, l2, linf
from ..norms import l1 as l1_norm
from . import _diagnostics
from ._minimization import check_bool, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._restarts import rounds
from ._subsets import host_bool
from .acg import L2ACGAttack, LinfACGAttack
from .apgd import (
    L1AutoPGD,
    L1AutoPGDTargeted,
    L2AutoPGD,
    L2AutoPGDTargeted,
    LinfAutoPGD,
    LinfAutoPGDTargeted,
    Mode,
    _Constants,
)
from .base import (
    Attack,
    AttackResult,
    FixedEpsilonAttack,
    MinimizationAttack,
    chunk_of,
    chunk_rows,
    parse_epsilons,
    sample_ids,
)
from .fab import L1FAB, L2FAB, LinfFAB
from .malt import L1MALTAttack, L2MALTAttack, LinfMALTAttack
from .square import L1SquareAttack, L2SquareAttack, LinfSquareAttack

VERSIONS = ("standard", "plus", "rand", "fast", "strong")
_WHITE_BOX = ("apgd-ce", "apgd-pma", "apgd-dlr", "apgd-t", "fab", "fab-t", "acg", "malt")
_NEEDS_THREE_CLASSES = ("apgd-t", "apgd-dlr", "malt")
#: Each version's components, in the order they run (see the module documentation).
_ORDER = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    # one Square is dropped at run time: the full one unless the model checks suspect
    # gradient masking, else the short one
    "fast": ("apgd-ce", "malt", "square-short", "square"),
    # the standard run first, unchanged, so "strong" keeps every success of "standard"
    "strong": ("apgd-ce", "apgd-t", "fab-t", "square", "apgd-pma", "acg", "malt"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
#: Target classes of MALT in the ``"fast"`` version.
FAST_TARGETS = 3
#: Queries of the short Square run of the ``"fast"`` version (its full ``n_queries`` where
#: the model checks suspect gradient masking).
FAST_QUERIES = 1000
#: Restarts of APGD with the probability-margin loss in the ``"strong"`` version.
STRONG_RESTARTS = 5


class _Family(NamedTuple):
    """One norm's component classes (``acg`` None where ACG has no such norm)."""

    apgd: Any
    apgd_t: Any
    fab: Any
    square: Any
    malt: Any
    acg: Any


@dataclass
class AutoAttackReport:
    """What one AutoAttack run found, for one epsilon.

    Attributes:
        epsilon: the budget.
        robust_accuracy: the fraction of samples still robust after each attack, in order,
            starting with ``"clean"``.
        fooled_by: how many samples each attack was the first to fool.
        warnings: gradient-masking findings (also emitted as warnings).
        components: each attack that ran, by name, with its budget (e.g. ``"LinfAutoPGD(
            steps=100, restarts=1, loss='ce')"``).
    """

    epsilon: float
    robust_accuracy: dict[str, float] = field(default_factory=dict)
    fooled_by: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)


#: The settings that make a component's budget, in the order shown.
_BUDGET = (
    "steps",
    "restarts",
    "n_target_classes",
    "n_candidates",
    "n_queries",
    "loss",
    "eot_iter",
    "eps_schedule",
)


def large_eps_stages(steps: int) -> list[tuple[float, int]]:
    """AutoAttack's L1 epsilon schedule (``use_largereps``) for ``steps`` steps, as
    ``(epsilon factor, steps)``: ``ceil(0.3 * steps)`` steps at 3 epsilon, as many at 2
    epsilon, the rest (at least 1) at epsilon."""
    early = math.ceil(0.3 * steps)
    return [(3.0, early), (2.0, early), (1.0, max(steps - 2 * early, 1))]


class _LargeEps(L1AutoPGD):
    """L1-APGD with AutoAttack's ``use_largereps``: each run starts at random within 3
    epsilon, runs :func:`large_eps_stages` and starts every stage from the previous one's result
    projected onto the smaller ball; only the last stage, at epsilon, decides success. Sparse
    L1 perturbations found at a larger budget are a better start than noise (Croce & Hein,
    2021)."""

    #: The budgets of the stages, in multiples of epsilon (shown in the report).
    eps_schedule: ClassVar[tuple[float, ...]] = (3.0, 2.0, 1.0)
    _start: ep.Tensor | None = None

    def _single_run(
        self,
        model: Model,
        criterion: Criterion,
        constants: _Constants,
        epsilon: float,
        mode: Mode,
        rng: SampleRandom,
        copies: int = 1,
    ) -> tuple[ep.Tensor, ep.Tensor]:
        """Runs of ``steps`` steps at ``factor`` times epsilon for each stage of
        :func:`large_eps_stages`, each from the previous result (the first from a random
        start); the last stage, at epsilon, decides success (and only there does a finished
        copy end the later ones: an earlier stage's success is at a larger epsilon)."""
        start: ep.Tensor | None = None
        stages = large_eps_stages(self.steps)
        for number, (factor, steps) in enumerate(stages):
            stage = copy.copy(self)  # this attack's own settings stay as they are
            stage.steps, stage._start = steps, start
            scaled = constants._replace(eps=constants.eps * factor)
            last = number == len(stages) - 1
            x, success = super(_LargeEps, stage)._single_run(
                model, criterion, scaled, epsilon * factor, mode, rng, copies if last else 1
            )
            start = x
        return x, success

    def _random_start(
        self, model: Model, origin: ep.Tensor, eps: ep.Tensor, rng: SampleRandom
    ) -> ep.Tensor:
        if self._start is None:
            return super()._random_start(model, origin, eps, rng)
        project = model.compiled(self._compile_key("start"), lambda: self._make_projection(model))
        start: ep.Tensor = project(self._start, origin, eps)
        return start


class _LargeEpsTargeted(_LargeEps, L1AutoPGDTargeted):
    """L1-APGD-T with AutoAttack's ``use_largereps`` (see :class:`_LargeEps`)."""


def describe(attack: Attack) -> str:
    """The attack's class and budget, e.g. ``"LinfAutoPGD(steps=100, restarts=1, loss='ce')"``."""
    values = {name: getattr(attack, name, None) for name in _BUDGET}
    if values["eot_iter"] == 1:
        values["eot_iter"] = None
    settings = ", ".join(f"{k}={v!r}" for k, v in values.items() if v is not None)
    public = next(c.__name__ for c in type(attack).__mro__ if not c.__name__.startswith("_"))
    return f"{public}({settings})"


class AutoAttack(NormFamily, FixedEpsilonAttack):
    """AutoAttack; ``AutoAttack(norm="l2", ...)`` gives an :class:`L2AutoAttack`.

    Args:
        norm: ``"linf"``, ``"l2"`` or ``"l1"``, also spelled ``"Linf"``, ``"inf"``, ``np.inf``,
            ``"L2"``, ``2``, ``"L1"``, ``1`` (strings in any case); default None: the class's
            norm (Linf for ``AutoAttack``).
        eps: the default budget when called without ``epsilons`` (default None: pass them).
        version: ``"standard"`` (default), ``"fast"``, ``"strong"``, ``"plus"`` or ``"rand"``
            (see the module docs for each version's attacks and budgets).
        seed: seed of every component's randomness (default 0, as AutoAttack).
        n_target_classes: target classes of APGD-T and FAB-T (default 9), capped by the number
            of classes minus one.
        steps: iterations of APGD and FAB (default 100).
        n_queries: queries of Square (default 5000).
        checks: run the gradient-masking checks (default True).
    """

    norm: ClassVar[Norm] = linf

    def __init__(
        self,
        norm: Any = None,
        eps: float | None = None,
        version: str = "standard",
        seed: int | None = 0,
        *,
        n_target_classes: int = 9,
        steps: int = 100,
        n_queries: int = 5000,
        checks: bool = True,
    ) -> None:
        # ``norm`` chose the class: NormFamily.__new__
        if eps is not None:
            parse_epsilons(eps, False, type(self).__name__)
        self.eps = None if eps is None else float(eps)
        if version not in VERSIONS:
            raise ValueError(f"version: expected one of {list(VERSIONS)}, got {version!r}")
        self.version = version
        self.seed = check_seed(seed)
        self.n_target_classes = check_int(n_target_classes, "n_target_classes")
        self.steps = check_int(steps, "steps")
        self.n_queries = check_int(n_queries, "n_queries")
        self.checks = check_bool(checks, "checks")

    def __call__(
        self, model: Model, inputs: Any, criterion: Any, *, epsilons: Any = None, **kwargs: Any
    ) -> AttackResult:
        """As every attack; ``epsilons`` defaults to the ``eps`` given at construction."""
        if epsilons is None:
            if self.eps is None:
                raise ValueError(
                    "epsilons: AutoAttack needs a budget; pass epsilons=... or construct it "
                    "with eps=..."
                )
            epsilons = self.eps
        return super().__call__(model, inputs, criterion, epsilons=epsilons, **kwargs)

    def attacks(self, num_classes: int) -> list[tuple[str, Attack]]:
        """The component attacks in order, as ``(name, attack)``, for a model with
        ``num_classes`` outputs (DLR-based attacks need at least 3)."""
        make = self._components()
        names = [name for name in _ORDER[self.version] if name in make]
        if num_classes < 3:
            names = [name for name in names if name not in _NEEDS_THREE_CLASSES]
        return [(name, make[name]()) for name in names]

    def _components(self) -> dict[str, Callable[[], Attack]]:
        """Every component this AutoAttack may run, by name, with its budget."""
        family = self._families()
        seed, steps, targets = self.seed, self.steps, self.n_target_classes
        plus = self.version == "plus"
        # AutoAttack's L1 version: more restarts for APGD-CE, fewer targets for APGD-T
        l1 = self.norm is l1_norm
        ce_restarts = 5 if l1 or plus else 1
        apgd_targets = min(targets, 5) if l1 else targets
        eot = 20 if self.version == "rand" else 1
        fast = self.version == "fast"
        malt_targets = min(targets, FAST_TARGETS) if fast else targets
        pma_restarts = 1 if fast else STRONG_RESTARTS
        components: dict[str, Callable[[], Attack]] = {
            "apgd-ce": lambda: family.apgd(
                steps=steps, restarts=ce_restarts, loss="ce", eot_iter=eot, seed=seed
            ),
            "apgd-pma": lambda: family.apgd(
                steps=steps, restarts=pma_restarts, loss="pma", eot_iter=eot, seed=seed
            ),
            "apgd-dlr": lambda: family.apgd(
                steps=steps, restarts=5 if plus else 1, loss="dlr", eot_iter=eot, seed=seed
            ),
            "apgd-t": lambda: family.apgd_t(
                steps=steps, restarts=1, n_target_classes=apgd_targets, seed=seed
            ),
            "fab": lambda: family.fab(steps=steps, restarts=5, seed=seed),
            "fab-t": lambda: family.fab(
                steps=steps, restarts=1, n_target_classes=targets, seed=seed
            ),
            "square": lambda: family.square(n_queries=self.n_queries, seed=seed),
            "square-short": lambda: family.square(
                n_queries=min(self.n_queries, FAST_QUERIES), seed=seed
            ),
            "malt": lambda: family.malt(steps=steps, n_target_classes=malt_targets, seed=seed),
        }
        if family.acg is not None:  # no ACG in L1
            acg = family.acg
            components["acg"] = lambda: acg(steps=steps, loss="margin", seed=seed)
        return components

    def _families(self) -> _Family:
        return _Family(
            LinfAutoPGD,
            LinfAutoPGDTargeted,
            LinfFAB,
            LinfSquareAttack,
            LinfMALTAttack,
            LinfACGAttack,
        )

    # ------------------------------------------------------------------ running
    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        adversarials, _ = self.run_with_report(model, inputs, criterion, epsilon)
        return adversarials

    def run_with_report(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> tuple[ep.Tensor, AutoAttackReport]:
        """The adversarials (within ``epsilon`` and the bounds) and the :class:`AutoAttackReport`
        for validated EagerPy ``inputs`` and a bound ``criterion``."""
        report = AutoAttackReport(epsilon=epsilon)
        n = inputs.shape[0]
        if n == 0:
            return inputs, report
        outputs = model(inputs)
        suspicions: list[str] = []
        if self.checks or self.version == "fast":
            suspicions = _diagnostics.model_checks(model, inputs, criterion, outputs)
        if self.checks:
            report.warnings += suspicions
        robust = ~host_bool(criterion(inputs, outputs))
        components = self.attacks(outputs.shape[-1])
        if self.version == "fast":  # the full Square only where masking is suspected
            drop = "square-short" if suspicions else "square"
            components = [(name, a) for name, a in components if name != drop]
        report.components = {name: describe(attack) for name, attack in components}
        # per component, the samples it was the first to fool
        fooled = [np.zeros(n, dtype=bool) for _ in components]
        remaining = robust.copy() if epsilon > 0 else np.zeros(n, dtype=bool)
        result = inputs
        for run in rounds(model, inputs, outputs, criterion, len(components), lambda: remaining):
            attack = components[run.index][1]
            with sample_ids(run.ids()):
                adversarial = self._run_one(model, attack, run.inputs, run.criterion, epsilon)
            rows = run.subset.rows_where(run.criterion(adversarial, model(adversarial)))
            if rows.size:
                fooled[run.index][rows] = True
                mask = ep.from_numpy(inputs, fooled[run.index])
                full = run.subset.put(result, adversarial)
                result = ep.where(atleast_kd(mask, inputs.ndim), full, result)
            remaining[rows] = False
        self._fill(report, robust, [name for name, _ in components], fooled)
        return result, report

    def _fill(
        self,
        report: AutoAttackReport,
        robust: np.ndarray,
        names: list[str],
        fooled: list[np.ndarray],
    ) -> None:
        """Robust accuracy after each component, the samples each fooled first, and the
        gradient-masking findings, in ``report``; ``robust``: the samples robust clean."""
        report.robust_accuracy["clean"] = float(robust.mean())
        after_white_box: np.ndarray | None = None
        for name, first in zip(names, fooled):
            robust = np.logical_and(robust, ~first)
            report.robust_accuracy[name] = float(robust.mean())
            report.fooled_by[name] = int(first.sum())
            if name in _WHITE_BOX:
                after_white_box = robust.copy()
            elif after_white_box is not None and self.checks:
                message = _diagnostics.black_box_check(
                    after_white_box, robust, epsilon=report.epsilon, norm=self.norm.name
                )
                if message is not None:
                    report.warnings.append(message)
        _diagnostics.warn(report.warnings, type(self).__name__)

    def _run_one(
        self,
        model: Model,
        attack: Attack,
        inputs: ep.Tensor,
        criterion: Criterion,
        epsilon: float,
    ) -> ep.Tensor:
        model = attack._attacked_model(model)  # the component's own EOT (eot_iter)
        if isinstance(attack, MinimizationAttack):
            raw = attack.perturb(model, inputs, criterion, early_stop=epsilon)
        elif isinstance(attack, FixedEpsilonAttack):
            raw = attack.perturb(model, inputs, criterion, epsilon)
        else:  # pragma: no cover - every component is one of the two
            raise TypeError(f"unsupported component {attack!r}")
        return self.norm.project(raw, inputs, epsilon).clip(*model.bounds)

    def evaluate(
        self, model: Model, inputs: Any, criterion: Any, *, epsilons: Any = None
    ) -> list[AutoAttackReport]:
        """Run AutoAttack and return one :class:`AutoAttackReport` per epsilon (robust accuracy
        after each component, which component fooled how many samples, warnings)."""
        from .base import as_criterion, check_inputs

        eps_list, _ = parse_epsilons(
            self.eps if epsilons is None else epsilons, False, type(self).__name__
        )
        self._check_model(model)
        x, _ = model.to_tensor(inputs, "inputs", floating=True)
        x = check_inputs(x, model)
        bound = as_criterion(criterion).bind(model, model(x))
        with chunk_of(chunk_rows() or x.shape[0]):  # the caller's batch: stacked rounds' limit
            return [self.run_with_report(model, x, bound, float(eps or 0))[1] for eps in eps_list]


class L2AutoAttack(AutoAttack):
    """AutoAttack in L2; see :class:`AutoAttack`."""

    norm = l2

    def _families(self) -> _Family:
        return _Family(
            L2AutoPGD, L2AutoPGDTargeted, L2FAB, L2SquareAttack, L2MALTAttack, L2ACGAttack
        )


class L1AutoAttack(AutoAttack):
    """AutoAttack in L1 (Croce & Hein, 2021): L1-APGD-CE with 5 restarts, L1-APGD-T on 5
    target classes, FAB-L1-T and Square-L1; see :class:`AutoAttack`. ``"strong"`` adds MALT
    only (ACG has no L1 version)."""

    norm = l1_norm

    def _families(self) -> _Family:
        return _Family(_LargeEps, _LargeEpsTargeted, L1FAB, L1SquareAttack, L1MALTAttack, None)


LinfAutoAttack = AutoAttack
norm_family(AutoAttack, L2AutoAttack, L1AutoAttack)


def robust_accuracy_table(reports: Sequence[AutoAttackReport]) -> str:
    """The reports as a plain-text table: one row per epsilon, one column per attack, after
    the attacks that ran and their budgets."""
    if not reports:
        return ""
    names = list(reports[0].robust_accuracy)
    lines = [f"{name}: {budget}" for name, budget in reports[0].components.items()]
    lines.append("epsilon  " + "  ".join(f"{name:>8}" for name in names))
    for report in reports:
        values = "  ".join(
            f"{report.robust_accuracy.get(name, float('nan')):>8.3f}" for name in names
        )
        lines.append(f"{report.epsilon:<7.4g}  {values}")
    return "\n".join(lines)
