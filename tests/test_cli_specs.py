"""Attack specifications ("L2CarliniWagnerAttack(steps=100)"), attacks files, "did you mean",
and the estimated model calls per sample against the calls evaluate counts."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import LinearOracle

import advlib
from advlib.evaluation.specs import (
    GRADIENT_BUDGET,
    AttackSpec,
    cheaper,
    estimated_calls,
    expensive,
    parse_attack,
    read_attacks_file,
    signature_text,
    suggest,
)

ORACLE = LinearOracle(n=12, classes=5, seed=3)


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("text", "name", "kwargs"),
    [
        ("FGSM", "FGSM", {}),
        ("  LinfPGD()  ", "LinfPGD", {}),
        (
            "L2CarliniWagnerAttack(steps=100, binary_search_steps=5)",
            "L2CarliniWagnerAttack",
            {"steps": 100, "binary_search_steps": 5},
        ),
        ("LinfAutoPGD(norm=inf, loss='dlr')", "LinfAutoPGD", {"norm": math.inf, "loss": "dlr"}),
        (
            "PGD(abs_stepsize=-1e-3, random_start=False, seed=None)",
            "PGD",
            {"abs_stepsize": -1e-3, "random_start": False, "seed": None},
        ),
        (
            "PGD(x=[1, 2.5, 'a'], y=(1,), z=[inf, [True]])",
            "PGD",
            {"x": [1, 2.5, "a"], "y": (1,), "z": [math.inf, [True]]},
        ),
    ],
)
def test_parse_literal_keywords(text: str, name: str, kwargs: dict[str, Any]) -> None:
    spec = parse_attack(text)
    assert (spec.name, spec.kwargs) == (name, kwargs)
    again = parse_attack(spec.text)  # the text is a specification of the same attack
    assert (again.name, again.kwargs) == (name, kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PGD(steps=__import__('os').getpid())", "is not a literal"),
        ("PGD(steps=n)", "'n' is not a literal"),
        ("PGD(steps={1: 2})", "is not a literal"),
        ("PGD(steps=1 + 2)", "is not a literal"),
        ("PGD(40)", "by keyword"),
        ("PGD(**{'steps': 4})", "by keyword"),
        ("PGD(steps=4", "cannot parse"),
        ("advlib.attacks.PGD()", "cannot parse"),
        ("PGD()()", "cannot parse"),
        ("[PGD]", "cannot parse"),
    ],
)
def test_parse_refuses_anything_but_literals(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_attack(text)
    assert "L2CarliniWagnerAttack(steps=100, binary_search_steps=5)" in str(info.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pgd", ["PGD"]),
        ("linfpgd", ["LinfPGD"]),
        ("LinfPDG", ["LinfPGD"]),
        ("CarliniWagner", ["L2CarliniWagnerAttack"]),
        ("Xyzzy", None),
    ],
)
def test_unknown_names_suggest_close_ones(name: str, expected: list[str] | None) -> None:
    with pytest.raises(ValueError, match=f"unknown attack '{name}'") as info:
        parse_attack(f"{name}(steps=3)")
    message = str(info.value)
    if expected is None:
        assert "did you mean" not in message and "valid names include" in message
    else:
        assert f"did you mean {expected[0]!r}" in message
        assert suggest(name, [*advlib.attacks.ATTACKS, "PGD", "LinfPGD"])[0] == expected[0]


def test_wrong_keyword_shows_the_signature() -> None:
    with pytest.raises(TypeError, match="has no argument 'step'") as info:
        parse_attack("L2CarliniWagnerAttack(step=100)").build()
    cw = advlib.attacks.L2CarliniWagnerAttack
    assert signature_text(cw) in str(info.value)
    assert "binary_search_steps=9, steps=10000" in signature_text(cw)
    # The attack's own validation keeps its message, with the signature added.
    with pytest.raises(ValueError, match="steps") as info:
        parse_attack("LinfPGD(steps=-1)").build()
    assert signature_text(advlib.attacks.LinfPGD) in str(info.value)


def test_build_gives_the_seed_unless_the_spec_sets_one() -> None:
    assert parse_attack("LinfPGD(steps=3)").build(seed=7).seed == 7
    assert parse_attack("LinfPGD(steps=3, seed=1)").build(seed=7).seed == 1
    cw = parse_attack("L2CarliniWagnerAttack(steps=3)").build(seed=7)  # takes no seed
    assert (cw.steps, cw.binary_search_steps) == (3, 9)


# ------------------------------------------------------------------ attacks files
def test_attacks_file_json(tmp_path: Path) -> None:
    path = tmp_path / "attacks.json"
    entries = [
        {"attack": "LinfPGD", "steps": 5, "label": "PGD-5"},
        {"attack": "FGSM"},
        {"attack": "L2CarliniWagnerAttack", "steps": 100, "binary_search_steps": 5},
    ]
    path.write_text(json.dumps(entries))
    specs = read_attacks_file(path)
    assert [s.label or s.text for s in specs] == [
        "PGD-5",
        "FGSM",
        "L2CarliniWagnerAttack(steps=100, binary_search_steps=5)",
    ]
    assert specs[0].build().steps == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"attack": "FGSM"}', "non-empty list"),
        ("[]", "non-empty list"),
        ('[{"name": "FGSM"}]', 'an "attack" name'),
        ('[{"attack": "LinfPDG"}]', "did you mean 'LinfPGD'"),
        ('[{"attack": "LinfPGD", "steps": {"a": 1}}]', "entry 0: steps"),
        ('[{"attack": "FGSM", "label": 3}]', "label must be a string"),
        ("[{", "not valid JSON"),
    ],
)
def test_attacks_file_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "attacks.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_attacks_file(path)
    with pytest.raises(ValueError, match="cannot read"):
        read_attacks_file(tmp_path / "missing.json")


def test_attacks_file_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "attacks.yaml"
    path.write_text("- attack: LinfPGD\n  steps: 5\n- attack: FGSM\n  label: fast\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        pass
    else:
        specs = read_attacks_file(path)
        assert [(s.name, s.kwargs, s.label) for s in specs] == [
            ("LinfPGD", {"steps": 5}, None),
            ("FGSM", {}, "fast"),
        ]
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML is optional: say what to do
    with pytest.raises(ValueError, match="pip install pyyaml"):
        read_attacks_file(path)


# ------------------------------------------------------------------ evaluate takes specs
def test_evaluate_accepts_specification_strings(backend: str) -> None:
    model = ORACLE.model(backend)
    data = (ORACLE.x, ORACLE.labels)
    report = advlib.evaluate(
        model, data, ["LinfPGD(steps=3, rel_stepsize=0.5)", "FGSM"], [0.0, 0.1], progress=False
    )
    pgd = report.attack("LinfPGD(steps=3, rel_stepsize=0.5)")
    assert "steps=3" in pgd.attack and "rel_stepsize=0.5" in pgd.attack and "seed=0" in pgd.attack
    assert pgd.gradient_calls == 3
    direct = advlib.attacks.LinfPGD(steps=3, rel_stepsize=0.5, seed=0)
    success = np.asarray(direct(model, ORACLE.x, ORACLE.labels, epsilons=0.1).success)
    assert pgd.robust[-1] == int((~success).sum())
    with pytest.raises(ValueError, match="did you mean 'FGSM'"):
        advlib.evaluate(model, data, ["fgsm"], [0.1], progress=False)
    with pytest.raises(TypeError, match="has no argument 'step'"):
        advlib.evaluate(model, data, ["LinfPGD(step=3)"], [0.1], progress=False)


# ------------------------------------------------------------------ estimated calls
SMALL: dict[str, dict[str, Any]] = {
    "LinfPGD": {"steps": 7},
    "FGSM": {},
    "L2CarliniWagnerAttack": {"steps": 10, "binary_search_steps": 3, "abort_early": False},
    "LinfAutoPGD": {"steps": 6, "restarts": 2},
    "LinfAutoPGDTargeted": {"steps": 4, "n_target_classes": 3},
    "LinfFAB": {"steps": 4, "n_target_classes": 2},
    "L2DeepFoolAttack": {"steps": 5},
    "DDNAttack": {"steps": 6},
    "LinfFMNAttack": {"steps": 6},
    "EADAttack": {"steps": 5, "binary_search_steps": 2, "abort_early": False},
    "LinfSquareAttack": {"n_queries": 30},
    "BoundaryAttack": {"steps": 30, "init_trials": 5},
    "HopSkipJumpAttack": {"steps": 3, "initial_gradient_eval_steps": 10, "init_trials": 5},
    "AutoAttack": {"steps": 4, "n_queries": 20, "n_target_classes": 2},
}
# The estimate follows the settings exactly for these (within 2x of the real count). Not
# APGD-T: with few samples left it runs several targets in one call (stacked rounds).
TIGHT = {"LinfPGD", "FGSM", "L2CarliniWagnerAttack", "LinfAutoPGD"}


@pytest.mark.parametrize("name", list(SMALL))
def test_estimate_bounds_the_counted_calls(backend: str, name: str) -> None:
    """One batch, one epsilon: evaluate's CountingModel counts the calls of one run."""
    if name not in advlib.attacks.ATTACKS and name not in vars(advlib.attacks):
        pytest.skip(f"{name} is not in this advlib")
    spec = AttackSpec(name, SMALL[name])
    attack = spec.build(seed=0)
    eps = 0.005 if attack.norm.name == "linf" else 0.05  # small: the searches run in full
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", advlib.attacks.GradientMaskingWarning)
        report = advlib.evaluate(
            ORACLE.model(backend),
            (ORACLE.x, ORACLE.labels),
            {name: attack},
            [eps],
            progress=False,
        )
    summary = report.attack(name)
    estimate = estimated_calls(attack, classes=5)
    assert estimate is not None
    assert summary.gradient_calls <= estimate.gradient
    assert summary.forward_calls <= estimate.forward
    if name in TIGHT:
        assert estimate.gradient <= 2 * summary.gradient_calls
    # Without the number of classes the estimate is an upper bound all the same.
    unknown = estimated_calls(attack)
    assert unknown is not None and unknown.gradient >= estimate.gradient


def test_estimates_from_settings() -> None:
    cw = advlib.attacks.L2CarliniWagnerAttack()
    assert estimated_calls(cw) is not None and estimated_calls(cw).gradient == 9 * 10_001
    assert expensive(estimated_calls(cw))
    assert not expensive(estimated_calls(advlib.attacks.LinfPGD()))
    # Untargeted FAB computes one gradient per class: it needs the number of classes.
    fab = advlib.attacks.LinfFAB(steps=10)
    assert estimated_calls(fab) is None
    assert estimated_calls(fab, classes=10).gradient == 10 * 11
    # APGD-T's targets are capped by the classes.
    apgdt = advlib.attacks.LinfAutoPGDTargeted(steps=10)
    assert estimated_calls(apgdt, classes=4).gradient == 3 * 11
    assert estimated_calls(apgdt).gradient == 9 * 11
    # Nested attacks: a repeated attack runs its attack each time; an init_attack runs once.
    repeated = advlib.attacks.LinfPGD(steps=10).repeat(3)
    assert estimated_calls(repeated).gradient == 3 * 11
    fmn = advlib.attacks.L2FMNAttack(steps=10, init_attack=advlib.attacks.L2DeepFoolAttack())
    assert estimated_calls(fmn).gradient == 11 + 51 * 9  # DeepFool: 50 steps, 9 candidates


def test_cheaper_suggestion_fits_the_budget() -> None:
    spec = parse_attack("L2CarliniWagnerAttack")
    better = cheaper(spec, spec.build())
    assert better is not None and better.text == "L2CarliniWagnerAttack(steps=100)"
    spec = parse_attack("L2CarliniWagnerAttack(binary_search_steps=5)")
    better = cheaper(spec, spec.build())
    assert better is not None
    assert better.text == "L2CarliniWagnerAttack(binary_search_steps=5, steps=100)"
    estimate = estimated_calls(better.build())
    assert estimate is not None and 5 * estimate.gradient <= GRADIENT_BUDGET
