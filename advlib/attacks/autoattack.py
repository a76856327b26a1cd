"""AutoAttack (Croce & Hein, 2020): a fixed ensemble of diverse, parameter-free attacks.

``version="standard"`` runs APGD-CE (no restarts), APGD-T (targeted DLR, 9 target classes),
FAB-T (9 target classes) and Square (5000 queries), each only on the samples that every attack
before it failed on; a sample counts as robust only if all of them fail. ``"plus"`` adds
restarts and the untargeted APGD-DLR and FAB; ``"rand"`` is for randomized models (APGD-CE and
APGD-DLR with expectation over 20 transformations per gradient). Target counts are capped by the
number of classes.

Before attacking, AutoAttack checks the model for signs of gradient masking (probability
outputs, randomness, zero gradients) and afterwards whether the black-box Square attack beat the
gradient attacks; each finding is a :class:`GradientMaskingWarning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import eagerpy as ep
import numpy as np

from .._tensors import atleast_kd
from ..criteria import Criterion
from ..models.base import Model
from ..norms import Norm, l2, linf
from . import _diagnostics
from ._minimization import check_bool, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._restarts import rounds
from ._subsets import host_bool
from .apgd import L2AutoPGD, L2AutoPGDTargeted, LinfAutoPGD, LinfAutoPGDTargeted
from .base import Attack, AttackResult, FixedEpsilonAttack, MinimizationAttack, parse_epsilons
from .fab import L2FAB, LinfFAB
from .square import L2SquareAttack, LinfSquareAttack

VERSIONS = ("standard", "plus", "rand")
_WHITE_BOX = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t")


@dataclass
class AutoAttackReport:
    """What one AutoAttack run found, for one epsilon.

    Attributes:
        epsilon: the budget.
        robust_accuracy: the fraction of samples still robust after each attack, in order,
            starting with ``"clean"``.
        fooled_by: how many samples each attack was the first to fool.
        warnings: gradient-masking findings (also emitted as warnings).
    """

    epsilon: float
    robust_accuracy: dict[str, float] = field(default_factory=dict)
    fooled_by: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class AutoAttack(NormFamily, FixedEpsilonAttack):
    """AutoAttack; ``AutoAttack(norm="l2", ...)`` gives an :class:`L2AutoAttack`.

    Args:
        norm: ``"linf"`` or ``"l2"``, also spelled ``"Linf"``, ``"inf"``, ``np.inf``, ``"L2"``,
            ``2`` (strings in any case); default None: the class's norm (Linf for
            ``AutoAttack``).
        eps: the default budget when called without ``epsilons`` (default None: pass them).
        version: ``"standard"`` (default), ``"plus"`` or ``"rand"`` (see the module docs).
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
        apgd, apgd_t, fab, square = self._families()
        seed, steps, targets = self.seed, self.steps, self.n_target_classes
        if self.version == "standard":
            chosen: list[tuple[str, Attack]] = [
                ("apgd-ce", apgd(steps=steps, restarts=1, loss="ce", seed=seed)),
                ("apgd-t", apgd_t(steps=steps, restarts=1, n_target_classes=targets, seed=seed)),
                ("fab-t", fab(steps=steps, restarts=1, n_target_classes=targets, seed=seed)),
                ("square", square(n_queries=self.n_queries, seed=seed)),
            ]
        elif self.version == "plus":
            chosen = [
                ("apgd-ce", apgd(steps=steps, restarts=5, loss="ce", seed=seed)),
                ("apgd-dlr", apgd(steps=steps, restarts=5, loss="dlr", seed=seed)),
                ("fab", fab(steps=steps, restarts=5, seed=seed)),
                ("square", square(n_queries=self.n_queries, seed=seed)),
                ("apgd-t", apgd_t(steps=steps, restarts=1, n_target_classes=targets, seed=seed)),
                ("fab-t", fab(steps=steps, restarts=1, n_target_classes=targets, seed=seed)),
            ]
        else:
            chosen = [
                ("apgd-ce", apgd(steps=steps, restarts=1, loss="ce", eot_iter=20, seed=seed)),
                ("apgd-dlr", apgd(steps=steps, restarts=1, loss="dlr", eot_iter=20, seed=seed)),
            ]
        if num_classes < 3:
            chosen = [(name, a) for name, a in chosen if name not in ("apgd-t", "apgd-dlr")]
        return chosen

    def _families(self) -> tuple[Any, Any, Any, Any]:
        return LinfAutoPGD, LinfAutoPGDTargeted, LinfFAB, LinfSquareAttack

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
        if self.checks:
            report.warnings += _diagnostics.model_checks(model, inputs, criterion, outputs)
        robust = ~host_bool(criterion(inputs, outputs))
        components = self.attacks(outputs.shape[-1])
        # per component, the samples it was the first to fool
        fooled = [np.zeros(n, dtype=bool) for _ in components]
        remaining = robust.copy() if epsilon > 0 else np.zeros(n, dtype=bool)
        result = inputs
        for run in rounds(model, inputs, outputs, criterion, len(components), lambda: remaining):
            attack = components[run.index][1]
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
        return [self.run_with_report(model, x, bound, float(eps or 0))[1] for eps in eps_list]


class L2AutoAttack(AutoAttack):
    """AutoAttack in L2; see :class:`AutoAttack`."""

    norm = l2

    def _families(self) -> tuple[Any, Any, Any, Any]:
        return L2AutoPGD, L2AutoPGDTargeted, L2FAB, L2SquareAttack


LinfAutoAttack = AutoAttack
norm_family(AutoAttack, L2AutoAttack)


def robust_accuracy_table(reports: Sequence[AutoAttackReport]) -> str:
    """The reports as a plain-text table: one row per epsilon, one column per attack."""
    if not reports:
        return ""
    names = list(reports[0].robust_accuracy)
    lines = ["epsilon  " + "  ".join(f"{name:>8}" for name in names)]
    for report in reports:
        values = "  ".join(
            f"{report.robust_accuracy.get(name, float('nan')):>8.3f}" for name in names
        )
        lines.append(f"{report.epsilon:<7.4g}  {values}")
    return "\n".join(lines)
