"""Compiled steps with named state, one compile-cache key helper, the restart driver and the
gradient family's declared constructors (APGD, FAB, Square, AutoAttack, FGM/BIM/PGD/MI-FGSM)."""

from __future__ import annotations

import inspect
import pydoc
import re
from collections.abc import Callable, Hashable
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native

import advlib
from advlib import attacks
from advlib.attacks._restarts import rounds
from advlib.criteria import Misclassification, TargetedMisclassification
from advlib.norms import linf

ORACLE = LinearOracle(n=8, classes=5, seed=3, scale=5.0)

# One of each compiled step of the attacks with named state, in each mode they compile.
STEP_ATTACKS: list[tuple[attacks.Attack, float, bool]] = [
    (attacks.LinfAPGD(steps=4, seed=0), 0.05, False),
    (attacks.L2APGD(steps=4, seed=0), 0.3, True),
    (attacks.L1APGD(steps=4, seed=0), 1.0, False),
    (attacks.LinfAPGDT(steps=4, n_target_classes=2, seed=0), 0.05, False),
    (attacks.LinfFAB(steps=3, seed=0), 0.05, False),
    (attacks.L2FAB(steps=3, n_target_classes=2, seed=0), 0.3, False),
    (attacks.LinfFAB(steps=3, seed=0), 0.05, True),
    (attacks.LinfSquareAttack(n_queries=5, seed=0), 0.05, False),
    (attacks.L2SquareAttack(n_queries=5, seed=0), 0.3, True),
    (attacks.LinfPGD(steps=2, seed=0), 0.05, False),
    (attacks.L1PGD(steps=2, seed=0), 1.0, True),
    (attacks.MIFGSM(steps=2), 0.05, False),
    (attacks.FGSM(), 0.05, False),
]

GRADIENT_FAMILY = [
    attacks.FGSM, attacks.FGM, attacks.L1FGM,
    attacks.LinfBIM, attacks.L2BIM, attacks.L1BIM,
    attacks.LinfPGD, attacks.L2PGD, attacks.L1PGD,
    attacks.MIFGSM, attacks.L2MomentumIterativeFastGradientMethod,
    attacks.L1MomentumIterativeFastGradientMethod, attacks.LinfMomentumIterativeAttack,
]  # fmt: skip


def _recording(model: advlib.Model) -> dict[Hashable, Callable[..., Any]]:
    """Records every pure step ``model`` compiles (by cache key), as the factory built it."""
    built: dict[Hashable, Callable[..., Any]] = {}
    compiled = model.compiled

    def record(key: Hashable, factory: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        def build() -> Callable[..., Any]:
            built[key] = factory()
            return built[key]

        return compiled(key, build)

    model.compiled = record  # type: ignore[method-assign]
    return built


def _targets() -> np.ndarray:
    targets: np.ndarray = (ORACLE.labels + 1) % 5
    return targets


@pytest.mark.parametrize(
    ("attack", "eps", "targeted"),
    STEP_ATTACKS,
    ids=[f"{type(a).__name__}-{'t' if t else 'u'}" for a, _, t in STEP_ATTACKS],
)
def test_compiled_steps_take_at_most_six_positional_arguments(
    attack: attacks.Attack, eps: float, targeted: bool, backend: str
) -> None:
    model = ORACLE.model(backend)
    built = _recording(model)
    labels = _targets() if targeted else ORACLE.labels
    criterion = native(backend, labels)
    if targeted:
        criterion = TargetedMisclassification(criterion)
    attack(model, native(backend, ORACLE.x), criterion, epsilons=eps)

    own = {key: step for key, step in built.items() if key != ("advlib.range",)}
    assert len(own) >= 2, own  # the attack's steps and the finishing step
    for key, step in own.items():
        parameters = inspect.signature(step).parameters.values()
        positional = [p for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert len(positional) <= 6, (key, [p.name for p in positional])


def test_apgd_and_apgd_t_of_one_norm_share_compiled_pieces(backend: str) -> None:
    apgd, apgd_t = attacks.LinfAPGD(steps=3), attacks.LinfAPGDT(steps=7, restarts=2)
    key = apgd._compile_key("checkpoint", (20,))
    assert key == apgd_t._compile_key("checkpoint", (20,))
    # EOT lives in the model the steps are built on (eot_iter multiplies eot_samples)
    assert key == attacks.LinfAPGD(eot_iter=2)._compile_key("checkpoint", (20,))
    assert key != attacks.L2APGD()._compile_key("checkpoint", (20,))
    assert key != attacks.L1APGDT()._compile_key("checkpoint", (20,))

    model = ORACLE.model(backend)
    built = _recording(model)
    x, y = native(backend, ORACLE.x), native(backend, ORACLE.labels)
    apgd(model, x, y, epsilons=0.05)
    before = set(built)
    apgd_t(model, x, y, epsilons=0.05)
    assert key in before and len(set(built) - before) == 1  # only APGD-T's step is new


def test_step_key_names_every_setting_but_the_seed_by_default() -> None:
    key = attacks.LinfPGD(steps=5, seed=1)._step_key("step", True)
    assert key == attacks.LinfPGD(steps=5, seed=2)._step_key("step", True)
    assert key != attacks.LinfPGD(steps=6, seed=1)._step_key("step", True)
    assert key != attacks.LinfPGD(steps=5, seed=1)._step_key("step", False)
    assert key != attacks.LinfBIM(steps=5, rel_stepsize=1 / 30)._step_key("step", True)
    assert key != attacks.L2PGD(steps=5, seed=1)._step_key("step", True)
    # only the settings named: the start of every gradient attack depends on random_start
    family = attacks.GradientDescentAttack
    start = attacks.LinfPGD(steps=5)._step_key("start", family=family, settings=["random_start"])
    other = attacks.LinfBIM(random_start=True)._step_key(
        "start", family=family, settings=["random_start"]
    )
    assert start == other
    assert start != attacks.LinfBIM()._step_key("start", family=family, settings=["random_start"])


@pytest.mark.parametrize("cls", GRADIENT_FAMILY, ids=lambda c: c.__name__)
def test_gradient_family_signatures_show_the_defaults_the_attack_uses(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    assert parameters == list(inspect.signature(cls.__init__).parameters.values())[1:]
    # The family's own arguments end with the seed; every gradient attack then takes EOT's.
    assert [p.name for p in parameters[-2:]] == ["seed", "eot_samples"]
    attack, text = cls(), pydoc.render_doc(cls)
    checked = 0
    for parameter in parameters:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter
        shown = rf"{parameter.name}(: [^=,]+)? ?= ?{re.escape(repr(parameter.default))}"
        assert re.search(shown, text), parameter
        if hasattr(attack, parameter.name):  # MI-FGM's decay is stored as its momentum
            assert getattr(attack, parameter.name) == parameter.default, parameter
            checked += 1
    assert checked >= len(parameters) - 1


def test_gradient_family_constructors_refuse_what_they_do_not_take() -> None:
    with pytest.raises(TypeError, match=r"LinfProjectedGradientDescentAttack\(\).*'stepz'"):
        attacks.LinfPGD(stepz=3)
    with pytest.raises(TypeError, match=r"LinfBasicIterativeAttack\(\).*positional"):
        attacks.LinfBIM(0.1)
    with pytest.raises(TypeError, match=r"LinfFastGradientAttack\(\).*'steps'"):
        attacks.FGSM(steps=3)  # one step by definition

    class Custom(attacks.GradientDescentAttack):
        norm = linf

    with pytest.raises(TypeError, match="missing a required argument: 'rel_stepsize'"):
        Custom(steps=3, random_start=False)
    custom = Custom(rel_stepsize=0.5, steps=3, random_start=False)
    assert (custom.rel_stepsize, custom.abs_stepsize, custom.seed) == (0.5, None, None)
    with pytest.raises(ValueError, match="momentum"):
        attacks.MIFGSM(momentum=-1.0)
    with pytest.raises(ValueError, match="decay: another name for momentum"):
        attacks.MIFGSM(momentum=0.5, decay=0.7)
    assert attacks.MIFGSM(decay=0.7).momentum == 0.7


def _bound(n_rows: int = 8) -> tuple[advlib.Model, ep.Tensor, ep.Tensor, Any]:
    model = ORACLE.model("numpy")
    x = ep.astensor(ORACLE.x[:n_rows])
    outputs = model(x)
    criterion = Misclassification(ep.astensor(ORACLE.labels[:n_rows])).bind(model, outputs)
    return model, x, outputs, criterion


def test_rounds_attack_the_remaining_samples_until_none_remains() -> None:
    model, x, outputs, criterion = _bound()
    remaining = np.ones(8, dtype=bool)
    remaining[[1, 4]] = False
    seen = []
    for run in rounds(model, x, outputs, criterion, 10, lambda: remaining):
        rows = np.flatnonzero(remaining)
        np.testing.assert_array_equal(run.subset.rows_np, rows)
        np.testing.assert_array_equal(run.inputs.numpy(), ORACLE.x[rows])
        flags = np.zeros(len(rows), dtype=bool)
        flags[: len(rows) // 2 + 1] = True  # more than half of them are done
        done = run.subset.rows_where(ep.astensor(flags))
        np.testing.assert_array_equal(done, rows[flags])
        remaining[done] = False
        seen.append(run.index)
    assert not remaining.any()
    assert seen == list(range(len(seen))) and 1 < len(seen) < 10


def test_rounds_stop_after_count_and_never_start_without_samples() -> None:
    model, x, outputs, criterion = _bound()
    always = np.ones(8, dtype=bool)
    assert [run.index for run in rounds(model, x, outputs, criterion, 3, lambda: always)] == [
        0,
        1,
        2,
    ]
    never = np.zeros(8, dtype=bool)
    assert list(rounds(model, x, outputs, criterion, 3, lambda: never)) == []
