"""Foolbox's attack names, arguments and defaults; the norm spellings of AutoAttack,
torchattacks and RobustBench; progress ticks in every attack's loops.

The signature test is built from the installed Foolbox, so it follows Foolbox rather than a
copy of its tables.
"""

from __future__ import annotations

import enum
import inspect
import warnings
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, native, to_numpy

import advlib
from advlib import _progress, attacks
from advlib.attacks._norm_arg import parse_norm

#: Deliberate differences from Foolbox's constructors, as (class name, parameter): reason.
#: None today: every Foolbox argument is accepted with Foolbox's default and positional rule.
DELIBERATE: dict[tuple[str, str], str] = {}

ORACLE = LinearOracle(n=6, classes=4, seed=2)


def _foolbox_attacks() -> list[tuple[str, type]]:
    """Foolbox's concrete attack classes whose names advlib exports (none without Foolbox)."""
    try:
        with warnings.catch_warnings():  # Foolbox 3.3.4 imports a deprecated SciPy module
            warnings.simplefilter("ignore", DeprecationWarning)
            import foolbox
    except ImportError:
        return []
    return [
        (name, cls)
        for name, cls in sorted(vars(foolbox.attacks).items())
        if inspect.isclass(cls)
        and issubclass(cls, foolbox.attacks.base.Attack)
        and not inspect.isabstract(cls)
        and hasattr(attacks, name)
    ]


def _parameters(cls: type) -> list[inspect.Parameter]:
    """The constructor's parameters without self, *args and **kwargs (Foolbox's attacks
    without a constructor of their own show ``object.__init__``'s)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p for p in parameters if p.kind not in variadic]


def test_foolbox_names_cover_the_families_advlib_has() -> None:
    pytest.importorskip("foolbox")
    names = {name for name, _ in _foolbox_attacks()}
    expected = {
        "FGSM", "FGM", "L1FastGradientAttack", "LinfPGD", "L2PGD", "L1PGD", "PGD",
        "LinfBasicIterativeAttack", "L2BasicIterativeAttack", "L1BasicIterativeAttack",
        "MIFGSM", "LinfMomentumIterativeFastGradientMethod",
        "L2MomentumIterativeFastGradientMethod", "L1MomentumIterativeFastGradientMethod",
        "L2CarliniWagnerAttack", "EADAttack", "DDNAttack", "L2DeepFoolAttack",
        "LinfDeepFoolAttack", "L1FMNAttack", "L2FMNAttack", "LInfFMNAttack",
        "HopSkipJumpAttack", "BoundaryAttack",
        # sparse and minimization (issue 13)
        "L0BrendelBethgeAttack", "L1BrendelBethgeAttack", "L2BrendelBethgeAttack",
        "LinfinityBrendelBethgeAttack", "L0FMNAttack", "PointwiseAttack",
        "SaltAndPepperNoiseAttack", "SparseL1DescentAttack", "BinarizationRefinementAttack",
        "DatasetAttack", "LinearSearchBlendedUniformNoiseAttack",
        # the rest of the catalogue (issue 14)
        "L2AdditiveGaussianNoiseAttack", "L2AdditiveUniformNoiseAttack",
        "L2ClippingAwareAdditiveGaussianNoiseAttack", "L2ClippingAwareAdditiveUniformNoiseAttack",
        "LinfAdditiveUniformNoiseAttack", "L2RepeatedAdditiveGaussianNoiseAttack",
        "L2RepeatedAdditiveUniformNoiseAttack",
        "L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack",
        "L2ClippingAwareRepeatedAdditiveUniformNoiseAttack",
        "LinfRepeatedAdditiveUniformNoiseAttack", "GaussianBlurAttack",
        "L2ContrastReductionAttack", "BinarySearchContrastReductionAttack",
        "LinearSearchContrastReductionAttack", "InversionAttack", "SpatialAttack",
        "NewtonFoolAttack", "VirtualAdversarialAttack", "L1AdamPGD", "L2AdamPGD", "LinfAdamPGD",
        "L1AdamBasicIterativeAttack", "L2AdamBasicIterativeAttack",
        "LinfAdamBasicIterativeAttack", "GenAttack",
    }  # fmt: skip
    assert expected <= names, expected - names


@pytest.mark.parametrize("name", [name for name, _ in _foolbox_attacks()])
def test_constructor_accepts_foolbox_arguments_and_defaults(name: str) -> None:
    reference = dict(_foolbox_attacks())[name]
    ours = getattr(attacks, name)
    theirs, mine = _parameters(reference), {p.name: p for p in _parameters(ours)}
    for parameter in theirs:
        if (name, parameter.name) in DELIBERATE:
            continue
        assert parameter.name in mine, f"{name} lacks Foolbox's argument {parameter.name!r}"
        own = mine[parameter.name]
        assert own.kind == parameter.kind, (name, parameter.name, own.kind, parameter.kind)
        assert own.default == parameter.default, (name, parameter.name, own.default)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    their_order = [p.name for p in theirs if p.kind == positional]
    my_order = [p.name for p in mine.values() if p.kind == positional]
    assert my_order == their_order, f"{name}: positional arguments differ"
    for extra in set(mine) - {p.name for p in theirs}:  # advlib's own: optional keywords
        assert mine[extra].kind == inspect.Parameter.KEYWORD_ONLY, (name, extra)
        assert mine[extra].default is not inspect.Parameter.empty, (name, extra)


@pytest.mark.parametrize("name", [name for name, _ in _foolbox_attacks()])
def test_foolbox_call_builds_the_attack_in_foolboxs_norm(name: str) -> None:
    """Foolbox's defaults, passed positionally where Foolbox allows it, build an attack without
    a warning, measuring what Foolbox's instance measures."""
    reference = dict(_foolbox_attacks())[name]
    args, kwargs = [], {}
    for parameter in _parameters(reference):
        # A required argument (VirtualAdversarialAttack's steps) gets a small count.
        value = 1 if parameter.default is inspect.Parameter.empty else parameter.default
        if parameter.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD:
            args.append(value)
        else:
            kwargs[parameter.name] = value
    if "BrendelBethge" in name:
        pytest.importorskip("numba")  # Foolbox's constructor raises without it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack = getattr(attacks, name)(*args, **kwargs)
    try:
        expected = reference(*args, **kwargs).distance.p
    except (AttributeError, ValueError):  # no distance, or the user's choice (None here)
        return
    assert attack.norm.p == expected


# ---------------------------------------------------------------------- HopSkipJump, Boundary
@pytest.mark.parametrize(
    ("constraint", "expected"),
    [("l2", "l2"), ("L2", "l2"), (2, "l2"), ("linf", "linf"), ("Linf", "linf"), (np.inf, "linf")],
)
def test_hop_skip_jump_constraint_chooses_the_norm_of_the_instance(
    constraint: Any, expected: str
) -> None:
    by_keyword = attacks.HopSkipJumpAttack(constraint=constraint, steps=3)
    by_position = attacks.HopSkipJumpAttack(None, 3, 100, 10000, "geometric_progression", 1.0,
                                            False, constraint)  # fmt: skip
    for attack in (by_keyword, by_position):
        assert attack.norm.name == expected and attack.constraint == expected
        assert isinstance(attack, attacks.HopSkipJumpAttack) and attack.steps == 3
    assert (type(by_keyword) is attacks.LinfHopSkipJumpAttack) == (expected == "linf")


def test_hop_skip_jump_constraint_errors() -> None:
    with pytest.raises(ValueError, match=r"constraint: expected one of 'l2'"):
        attacks.HopSkipJumpAttack(constraint="l1")
    with pytest.raises(ValueError, match="constraint: LinfHopSkipJumpAttack attacks in linf"):
        attacks.LinfHopSkipJumpAttack(constraint="l2")
    assert attacks.LinfHopSkipJumpAttack().constraint == "linf"
    with pytest.raises(ValueError, match="stepsize_search"):
        attacks.HopSkipJumpAttack(stepsize_search="line_search")


@pytest.mark.numpy
def test_hop_skip_jump_constraint_linf_runs_the_linf_attack() -> None:
    model, x, y = ORACLE.model("numpy"), ORACLE.x, ORACLE.labels
    chosen = attacks.HopSkipJumpAttack(constraint="Linf", steps=2, seed=1)
    direct = attacks.LinfHopSkipJumpAttack(steps=2, seed=1)
    ours = to_numpy(chosen(model, x, y, epsilons=None).raw)
    np.testing.assert_array_equal(ours, to_numpy(direct(model, x, y, epsilons=None).raw))


def test_hop_skip_jump_grid_search_approaches_the_optimum(any_backend: str) -> None:
    """Foolbox's grid step-size search: on a linear binary model, where the optimum is known,
    4 iterations come within 1.25x of it (measured: 1.16x); none is closer."""
    oracle = LinearOracle(n=8, classes=2, seed=1)
    model = oracle.model(any_backend)
    x, y = native(any_backend, oracle.x), native(any_backend, oracle.labels)
    attack = attacks.HopSkipJumpAttack(
        steps=4, initial_gradient_eval_steps=30, stepsize_search="grid_search", seed=0
    )
    raw, _, success = attack(model, x, y, epsilons=None)
    assert to_numpy(success).all()
    ratio = np.linalg.norm(to_numpy(raw).reshape(8, -1) - oracle.x, axis=-1) / oracle.optimal(2)
    assert np.all(ratio >= 1 - 1e-4) and np.all(ratio <= 1.25), ratio


class _Fooled(advlib.criteria.Criterion):
    """A user's criterion (no stacked form): the grid search judges one step size at a time."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def __call__(self, perturbed: Any, outputs: Any) -> Any:
        return outputs.argmax(axis=-1) != ep.astensor(self.labels)


@pytest.mark.numpy
def test_hop_skip_jump_grid_search_judges_any_criterion_one_size_at_a_time() -> None:
    oracle = LinearOracle(n=8, classes=2, seed=1)
    model = oracle.model("numpy")
    attack = attacks.HopSkipJumpAttack(
        steps=2, initial_gradient_eval_steps=30, stepsize_search="grid_search", seed=0
    )
    stacked = attack(model, oracle.x, oracle.labels, epsilons=None).raw
    one_by_one = attack(model, oracle.x, _Fooled(oracle.labels), epsilons=None).raw
    np.testing.assert_allclose(one_by_one, stacked, rtol=0, atol=1e-6)


@pytest.mark.parametrize("attack_class", [attacks.HopSkipJumpAttack, attacks.BoundaryAttack])
def test_tensorboard_is_accepted_and_warns_only_when_asked_to_log(
    attack_class: type[advlib.Attack],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack_class(tensorboard=False)
        attack_class(tensorboard=None)
    with pytest.warns(UserWarning, match="tensorboard: advlib writes no TensorBoard") as record:
        attack_class(tensorboard="runs/x")
    assert record[0].filename == __file__


def test_boundary_takes_foolbox_spelling_positionally_and_the_correct_one() -> None:
    positional = attacks.BoundaryAttack(None, 100, 0.02, 0.03, 1e-5, 2.0, False, 5)
    assert (positional.steps, positional.spherical_step) == (100, 0.02)
    assert positional.source_step == 0.03
    assert positional.source_step_convergence == 1e-5 and positional.step_adaptation == 2.0
    assert positional.update_stats_every_k == 5
    assert attacks.BoundaryAttack(source_step_convergance=1e-6).source_step_convergence == 1e-6
    assert attacks.BoundaryAttack(source_step_convergence=1e-6).source_step_convergence == 1e-6
    with pytest.raises(ValueError, match="pass only one"):
        attacks.BoundaryAttack(source_step_convergance=1e-5, source_step_convergence=1e-6)
    with pytest.raises(ValueError, match="source_step_convergance"):
        attacks.BoundaryAttack(source_step_convergance=-1.0)


# ---------------------------------------------------------------------- momentum iterative
MOMENTUM_CASES = [
    ("LinfMomentumIterativeFastGradientMethod", 0.1, {}),
    ("L2MomentumIterativeFastGradientMethod", 0.5, {}),
    # 5 steps of 0.2 epsilon never leave the L1 ball: Foolbox rescales onto it, advlib projects
    ("L1MomentumIterativeFastGradientMethod", 1.0, {"steps": 5}),
    ("MIFGSM", 0.1, {"momentum": 0.5, "rel_stepsize": 0.3}),
]


@pytest.mark.torch
@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize(("name", "epsilon", "kwargs"), MOMENTUM_CASES)
def test_momentum_iterative_methods_match_foolbox(
    name: str, epsilon: float, kwargs: dict[str, Any], targeted: bool
) -> None:
    foolbox = pytest.importorskip("foolbox")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 12), torch.nn.Tanh(), torch.nn.Linear(12, 5)
    ).eval()
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    labels = net(x).argmax(-1)
    theirs_criterion: Any = labels
    ours_criterion: Any = labels
    if targeted:
        theirs_criterion = foolbox.TargetedMisclassification((labels + 1) % 5)
        ours_criterion = advlib.criteria.TargetedMisclassification((labels + 1) % 5)
    theirs = getattr(foolbox.attacks, name)(**kwargs)(
        foolbox.PyTorchModel(net, bounds=(0, 1)), x, theirs_criterion, epsilons=epsilon
    )[0]
    ours = getattr(attacks, name)(**kwargs)(
        advlib.PyTorchModel(net, bounds=(0, 1)), x, ours_criterion, epsilons=epsilon
    )[0]
    assert not torch.equal(theirs, x)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_mifgsm_is_foolbox_linf_method_and_decay_is_momentum() -> None:
    assert attacks.MIFGSM is attacks.LinfMomentumIterativeFastGradientMethod
    attack = attacks.MIFGSM()
    assert (attack.momentum, attack.rel_stepsize, attack.steps) == (1.0, 0.2, 10)
    assert not attack.random_start
    assert attacks.MIFGSM(decay=0.5).momentum == 0.5
    assert attacks.MIFGSM(momentum=0.5, decay=0.5).momentum == 0.5
    with pytest.raises(ValueError, match="pass only one"):
        attacks.MIFGSM(momentum=0.5, decay=0.25)
    with pytest.raises(ValueError, match="decay"):
        attacks.MIFGSM(decay=-1)
    with pytest.raises(ValueError, match="momentum"):
        attacks.L2MomentumIterativeFastGradientMethod(momentum=-1)
    paper = attacks.LinfMomentumIterativeAttack()
    assert (paper.decay, paper.rel_stepsize, paper.steps) == (1.0, 0.1, 10)
    assert repr(paper).startswith("LinfMomentumIterativeAttack(") and "decay=1.0" in repr(paper)


@pytest.mark.torch
def test_paper_momentum_update_is_unchanged() -> None:
    """LinfMomentumIterativeAttack: the accumulator adds gradients over their mean absolute
    value (Dong et al.), each step is its sign; reference written with torch autograd."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)
    ).eval()
    x0 = torch.rand(6, 10, generator=torch.Generator().manual_seed(3))
    labels = net(x0).argmax(-1)
    eps, mu, steps = 0.1, 0.7, 6
    x, accumulated = x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):
        z = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(z), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, z)
        accumulated = mu * accumulated + grad / (grad.abs().mean(-1, keepdim=True) + 1e-12)
        x = torch.min(torch.max(x + 0.1 * eps * accumulated.sign(), x0 - eps), x0 + eps)
        x = x.clamp(0, 1)
    attack = attacks.LinfMomentumIterativeAttack(decay=mu, steps=steps)
    ours = attack(advlib.PyTorchModel(net, bounds=(0, 1)), x0, labels, epsilons=eps).raw
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- norm spellings
class ThreatModel(enum.Enum):  # as RobustBench's robustbench.model_zoo.enums.ThreatModel
    Linf = "Linf"
    L2 = "L2"


SPELLINGS: list[tuple[Any, str]] = [
    ("Linf", "linf"), ("linf", "linf"), ("LINF", "linf"), ("inf", "linf"), ("Inf", "linf"),
    (np.inf, "linf"), (float("inf"), "linf"), (ThreatModel.Linf, "linf"),
    (advlib.norms.linf, "linf"),
    ("L2", "l2"), ("l2", "l2"), (2, "l2"), (2.0, "l2"), ("2", "l2"), (ThreatModel.L2, "l2"),
    ("L1", "l1"), ("l1", "l1"), (1, "l1"), (np.int64(1), "l1"),
]  # fmt: skip
FAMILIES = [attacks.APGD, attacks.APGDT, attacks.AutoAttack, attacks.FAB, attacks.SquareAttack]


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=repr)
def test_parse_norm_reads_every_common_spelling(value: Any, expected: str) -> None:
    assert parse_norm(value) == expected


@pytest.mark.parametrize("value", ["l3", "fro", 3, 0.5, -np.inf, True, "", "l 2", [2]], ids=repr)
def test_parse_norm_refuses_others_listing_the_accepted(value: Any) -> None:
    with pytest.raises(ValueError, match=r"norm: expected one of 'linf' \('Linf'.*'l2'.*'l1'"):
        parse_norm(value)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=repr)
def test_norm_argument_builds_the_attack_of_that_norm(
    family: type[advlib.Attack], value: Any, expected: str
) -> None:
    attack = family(norm=value)  # every family has L1, L2 and Linf members
    assert attack.norm.name == expected
    assert isinstance(attack, family) == (expected == "linf" or family is attacks.AutoAttack)
    assert type(attack)(norm=expected).norm.name == expected  # the member accepts its own


def test_autoattack_accepts_autoattack_and_torchattacks_spelling() -> None:
    """Regression: ``AutoAttack(norm="Linf")`` raised "expected 'linf' or 'l2'"."""
    assert type(attacks.AutoAttack(norm="Linf", eps=8 / 255)) is attacks.AutoAttack
    assert type(attacks.AutoAttack("L2", 0.5)) is attacks.L2AutoAttack
    assert attacks.AutoAttack("L2", 0.5, "plus", 1, steps=7).steps == 7


def test_norm_argument_keeps_the_other_arguments() -> None:
    attack = attacks.APGD(norm="L2", steps=7, loss="dlr", seed=3)
    assert type(attack) is attacks.L2AutoPGD
    assert (attack.steps, attack.loss, attack.seed) == (7, "dlr", 3)
    targeted = attacks.APGDT(norm=1, n_target_classes=2)
    assert type(targeted) is attacks.L1AutoPGDTargeted and targeted.n_target_classes == 2
    assert type(attacks.FAB(norm="L2", steps=3)) is attacks.L2FAB
    assert type(attacks.SquareAttack(norm="L2", n_queries=9)).__name__ == "L2SquareAttack"


def test_a_member_refuses_another_norm() -> None:
    with pytest.raises(ValueError, match="norm: L2AutoPGD attacks in l2, got norm='Linf'"):
        attacks.L2APGD(norm="Linf")
    with pytest.raises(ValueError, match="norm: L2AutoAttack attacks in l2"):
        attacks.L2AutoAttack(norm=np.inf)
    with pytest.raises(TypeError):
        attacks.APGD(nrm="l2")


# ---------------------------------------------------------------------- progress
def _progress_cases() -> list[tuple[str, Any, Any]]:
    hsja = attacks.HopSkipJumpAttack
    auto = {"steps": 3, "n_queries": 5, "n_target_classes": 1, "checks": False}
    return [
        ("FGSM", lambda: attacks.FGSM(), 0.1),
        ("PGD", lambda: attacks.L2PGD(steps=4, seed=0), 0.5),
        ("MIFGSM", lambda: attacks.MIFGSM(steps=4), 0.1),
        ("APGD", lambda: attacks.APGD(steps=4, restarts=2, seed=0), 0.02),
        ("APGDT", lambda: attacks.APGDT(steps=4, n_target_classes=2, seed=0), 0.02),
        ("AutoAttack", lambda: attacks.AutoAttack(**auto), 0.02),
        ("FAB", lambda: attacks.FAB(steps=4, n_target_classes=2, seed=0), None),
        ("Square", lambda: attacks.SquareAttack(n_queries=120, seed=0), 0.02),  # 3 blocks
        ("CW", lambda: attacks.L2CarliniWagnerAttack(2, 4), None),
        ("EAD", lambda: attacks.EADAttack(2, 4), None),
        ("DDN", lambda: attacks.DDNAttack(steps=4), None),
        ("DeepFool", lambda: attacks.L2DeepFoolAttack(steps=4), None),
        ("FMN", lambda: attacks.L2FMNAttack(steps=4, init_attack=attacks.DDNAttack(steps=3)), None),
        ("HSJA", lambda: hsja(init_attack=hsja(steps=2, seed=0), steps=3, seed=0), None),
        ("Boundary", lambda: attacks.BoundaryAttack(steps=20, seed=0), None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "make", "epsilon"), _progress_cases(), ids=[case[0] for case in _progress_cases()]
)
@pytest.mark.torch
def test_attack_loops_advance_the_active_bar_to_the_end_and_no_further(
    name: str, make: Any, epsilon: float | None
) -> None:
    """The loops count on the host, the same for every framework: one (fast) backend."""
    pytest.importorskip("torch")
    attack = make()
    model = ORACLE.model("torch")
    x, y = native("torch", ORACLE.x), native("torch", ORACLE.labels)
    bar = _progress.Progress(1.0, name, enabled=True)
    positions: list[float] = []
    update = bar.update

    def record(n: float = 1) -> None:
        update(n)
        positions.append(bar._done)

    bar.update = record  # type: ignore[method-assign]
    # the attack call's share of the bar, as evaluate gives it: what a loop that stops early
    # leaves uncounted is counted when the portion ends
    with warnings.catch_warnings(), bar.activate(), bar.portion(1.0):
        warnings.simplefilter("ignore")
        attack(model, x, y, epsilons=epsilon)
    assert positions and positions[-1] == pytest.approx(1.0, abs=1e-9)
    assert max(positions) <= 1.0 + 1e-9, "a loop counted more than its share"
    if name != "FGSM":  # one step: nothing between start and end
        assert sum(p < 1.0 - 1e-9 for p in positions) >= 2, positions
