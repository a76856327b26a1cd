"""Foolbox's attack call: run(), keyword arguments for perturb, repeat(), user criteria, Foolbox
objects handed over by mistake, progress bars, and results in a wider dtype than the model's."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import eagerpy as ep
import numpy as np
import pytest
from helpers import LinearOracle, cnn_model, native, to_numpy

import advlib
from advlib import _progress, attacks
from advlib.attacks.base import FixedEpsilonAttack, MinimizationAttack, check_model
from advlib.criteria import Criterion
from advlib.models.base import Model
from advlib.norms import NORMS, l2, linf

ORACLE = LinearOracle(n=12, classes=5, seed=0)


@functools.cache
def oracle_model(backend: str) -> Model:
    model: Model = ORACLE.model(backend)
    return model


@functools.cache
def small_cnn(backend: str) -> Model:
    model: Model = cnn_model(backend)
    return model


def _predict(model: Model, inputs: Any) -> np.ndarray:
    """The model's own predictions for ``inputs`` (any type, any float dtype)."""
    x, _ = model.to_tensor(inputs, "inputs", floating=True)
    return model(x).argmax(axis=-1).numpy()


X8 = np.random.default_rng(0).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
Y8 = np.array([0, 1, 2, 3, 4, 5])


# ---------------------------------------------------------------------- run()
def test_run_returns_the_raw_output_natively(backend: str) -> None:
    model = small_cnn(backend)
    x, y = native(backend, X8), native(backend, Y8)
    attack = attacks.LinfPGD(steps=3, seed=0)
    raw = attack.run(model, x, y, epsilon=0.05)
    assert type(raw) is type(x) and raw.dtype == x.dtype and tuple(raw.shape) == X8.shape
    np.testing.assert_array_equal(to_numpy(raw), to_numpy(attack(model, x, y, epsilons=0.05).raw))
    eager = attack.run(model, ep.astensor(x), y, epsilon=0.05)
    assert isinstance(eager, ep.Tensor)
    np.testing.assert_array_equal(eager.numpy(), to_numpy(raw))


def test_run_batches_like_call(backend: str) -> None:
    model, before = small_cnn(backend), X8.copy()
    attack = attacks.FGSM()
    whole = attack.run(model, X8, Y8, epsilon=0.1)
    chunked = attack.run(model, X8, Y8, epsilon=0.1, batch_size=3)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    np.testing.assert_array_equal(X8, before)


class _EarlyStopSpy(MinimizationAttack):
    """Records the early_stop each perturb call gets; returns the inputs."""

    norm = l2
    requires_grad = False

    def __init__(self) -> None:
        self.seen: list[float | None] = []

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        self.seen.append(early_stop)
        return inputs


def test_early_stop_reaches_perturb() -> None:
    model, spy = oracle_model("numpy"), _EarlyStopSpy()
    spy.run(model, ORACLE.x, ORACLE.labels, early_stop=0.25)
    spy.run(model, ORACLE.x, ORACLE.labels)
    spy(model, ORACLE.x, ORACLE.labels, epsilons=[0.3, 0.1])
    spy(model, ORACLE.x, ORACLE.labels, epsilons=[0.3, None])  # None: as Foolbox, no early stop
    assert spy.seen == [0.25, None, 0.1, None]


X, Y = ORACLE.x, ORACLE.labels


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a, m: a.run(m, X, Y, epsilon=[0.1, 0.2]), TypeError, "epsilon: run takes one"),
        (lambda a, m: a.run(m, X, Y, epsilon=None), ValueError, "epsilon: .* needs a budget"),
        (lambda a, m: a.run(m, X, Y), ValueError, "epsilon: .* needs a budget"),
        (lambda a, m: a.run(m, X, Y, epsilon=-1.0), ValueError, "epsilon: expected finite"),
        (lambda a, m: a.run(m, X + 2, Y, epsilon=0.1), ValueError, "bounds"),
        (lambda a, m: a.run(m, X, Y[:3], epsilon=0.1), ValueError, r"shape \(12,\)"),
        (lambda a, m: a.run(m, X, Y, epsilons=0.1), TypeError, "run takes one epsilon"),
        (lambda a, m: a(m, X, Y, epsilon=0.1), TypeError, "pass epsilons="),
        (lambda a, m: a(m, X, Y, epsilons=0.1, seed=3), TypeError, "unexpected keyword.*seed"),
        (lambda a, m: a(m, X, Y, epsilons=0.1, progress=1), TypeError, "progress"),
        (lambda a, m: a.run(m, X, Y, epsilon=0.1, batch_size=0), ValueError, "batch_size"),
    ],
)
def test_run_and_call_check_their_arguments(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(_RandomSigns(), oracle_model("numpy"))


def test_early_stop_in_call_points_to_run() -> None:
    with pytest.raises(TypeError, match=r"run\(\.\.\., early_stop=\.\.\.\)"):
        _EarlyStopSpy()(oracle_model("numpy"), ORACLE.x, ORACLE.labels, early_stop=0.1)


# ---------------------------------------------------------------------- starting_points
class _StartSpy(attacks.HopSkipJumpAttack):
    """HopSkipJump recording the starting points each perturb call receives."""

    seen: list[ep.Tensor]

    def perturb(
        self,
        model: Model,
        inputs: ep.Tensor,
        criterion: Criterion,
        early_stop: float | None = None,
        *,
        starting_points: ep.Tensor | None = None,
    ) -> ep.Tensor:
        self.seen.append(starting_points)  # type: ignore[arg-type]
        return super().perturb(
            model, inputs, criterion, early_stop, starting_points=starting_points
        )


def _adversarial_starts() -> np.ndarray:
    """For every oracle input, a point in the bounds that the oracle puts clearly (by a
    margin of 1 logit) into another class."""
    candidates = np.random.default_rng(0).uniform(0, 1, (500, 20)).astype(np.float32)
    logits = candidates @ ORACLE.weights["fc1.w"] + ORACLE.weights["fc1.b"]
    top = np.sort(logits, axis=-1)
    clear = (top[:, -1] - top[:, -2] > 1) & (logits.argmax(-1) != ORACLE.labels[0])
    assert len(np.unique(ORACLE.labels)) == 1 and clear.any()
    return np.repeat(candidates[clear][:1], len(ORACLE.labels), axis=0)


@pytest.mark.parametrize("kind", ["native", "numpy", "eagerpy"])
def test_starting_points_move_to_the_model(any_backend: str, kind: str) -> None:
    model = oracle_model(any_backend)
    starts = _adversarial_starts()
    given = {"native": native(any_backend, starts), "numpy": starts}.get(kind)
    if given is None:
        given = ep.astensor(native(any_backend, starts))
    attack = _StartSpy(steps=1, seed=0)
    attack.seen = []
    x = native(any_backend, ORACLE.x)
    _, clipped, success = attack(
        model, x, ORACLE.labels, epsilons=None, starting_points=given, batch_size=6
    )
    assert [tuple(s.shape) for s in attack.seen] == [(6, 20), (6, 20)]
    for seen, rows in zip(attack.seen, (slice(0, 6), slice(6, 12))):
        assert isinstance(seen, ep.Tensor) and type(seen) is type(ep.astensor(x))
        np.testing.assert_array_equal(seen.numpy(), starts[rows])
    assert to_numpy(success).all()  # every start is adversarial
    np.testing.assert_array_equal(_predict(model, clipped) != ORACLE.labels, to_numpy(success))


def test_starting_points_are_checked(any_backend: str) -> None:
    model = oracle_model(any_backend)
    attack = attacks.BoundaryAttack(steps=1, seed=0)
    with pytest.raises(ValueError, match=r"starting_points: expected one row per input"):
        attack(model, ORACLE.x, ORACLE.labels, epsilons=None, starting_points=ORACLE.x[:3])
    with pytest.raises(TypeError, match="unexpected keyword argument 'starting_point'"):
        attack(model, ORACLE.x, ORACLE.labels, epsilons=None, starting_point=ORACLE.x)
    raw = attack.run(model, ORACLE.x, ORACLE.labels, starting_points=_adversarial_starts())
    assert (_predict(model, raw) != ORACLE.labels).all()


# ---------------------------------------------------------------------- repeat()
class _RandomSigns(FixedEpsilonAttack):
    """x + epsilon * random signs drawn from the attack's seed; keeps every draw."""

    norm = linf
    requires_grad = False

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.draws: list[np.ndarray] = []

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        signs = self._generator().choice([-1.0, 1.0], size=inputs.shape).astype(np.float32)
        raw = (inputs + epsilon * ep.from_numpy(inputs, signs)).clip(*model.bounds)
        self.draws.append(raw.numpy())
        return raw


class _RandomScale(MinimizationAttack):
    """x + u * direction with u ~ U(0, 1) per sample, drawn from the seed; keeps every draw."""

    norm = l2
    requires_grad = False

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.draws: list[np.ndarray] = []

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, early_stop: float | None = None
    ) -> ep.Tensor:
        u = self._generator().uniform(0, 1, size=(inputs.shape[0], 1)).astype(np.float32)
        direction = np.where(np.arange(inputs.shape[1]) % 2 == 0, 0.4, -0.4).astype(np.float32)
        raw = (inputs + ep.from_numpy(inputs, u * direction)).clip(*model.bounds)
        self.draws.append(raw.numpy())
        return raw


def test_repeat_arguments_and_flattening() -> None:
    pgd = attacks.LinfPGD(steps=2)
    with pytest.raises(ValueError, match="times: expected an int >= 1, got 0"):
        pgd.repeat(0)
    with pytest.raises(TypeError, match="times"):
        pgd.repeat(2.0)  # type: ignore[arg-type]
    repeated = pgd.repeat(2).repeat(3)
    assert isinstance(repeated, attacks.Repeated) and isinstance(repeated, advlib.Attack)
    assert repeated.attack is pgd and repeated.times == 6
    assert (repeated.norm, repeated.kind, repeated.requires_grad) == (linf, pgd.kind, True)
    assert repr(repeated).startswith("Repeated(LinfProjectedGradientDescentAttack(")
    hsj = attacks.HopSkipJumpAttack().repeat(2)
    assert (hsj.kind, hsj.requires_grad, hsj.accepts_unbounded) == ("minimization", False, True)


def test_repeat_keeps_the_first_success_per_epsilon(any_backend: str) -> None:
    model, epsilons = oracle_model(any_backend), [0.05, 0.25]
    inner = _RandomSigns(seed=3)
    raw, clipped, success = inner.repeat(4)(model, ORACLE.x, ORACLE.labels, epsilons=epsilons)
    draws = np.stack(inner.draws).reshape(4, len(epsilons), *ORACLE.x.shape)  # (run, eps, N, D)
    fooled = np.stack([[_predict(model, d) != ORACLE.labels for d in run] for run in draws])
    for k in range(len(epsilons)):
        first = np.where(fooled[:, k].any(axis=0), fooled[:, k].argmax(axis=0), 0)
        want = draws[first, k, np.arange(len(first))]
        np.testing.assert_array_equal(to_numpy(clipped[k]), want)
        np.testing.assert_array_equal(to_numpy(raw[k]), want)
        np.testing.assert_array_equal(to_numpy(success)[k], fooled[:, k].any(axis=0))
    assert to_numpy(success)[1].sum() > to_numpy(success)[0].sum() > 0  # a real test


def test_repeat_keeps_the_closest_success_when_unbounded(any_backend: str) -> None:
    model, inner = oracle_model(any_backend), _RandomScale(seed=1)
    _, clipped, success = inner.repeat(5)(model, ORACLE.x, ORACLE.labels, epsilons=None)
    draws = np.stack(inner.draws)  # (run, N, D)
    fooled = np.stack([_predict(model, d) != ORACLE.labels for d in draws])
    sizes = np.where(fooled, np.linalg.norm(draws - ORACLE.x, axis=-1), np.inf)
    best = np.where(fooled.any(axis=0), sizes.argmin(axis=0), 0)
    np.testing.assert_array_equal(to_numpy(clipped), draws[best, np.arange(len(best))])
    np.testing.assert_array_equal(to_numpy(success), fooled.any(axis=0))
    assert (best > 0).any() and fooled.any(axis=0).sum() > 1


def test_repeat_draws_new_reproducible_numbers() -> None:
    model = oracle_model("numpy")
    inner = _RandomSigns(seed=7)
    first = inner.repeat(3)(model, ORACLE.x, ORACLE.labels, epsilons=0.1)
    again = inner.repeat(3)(model, ORACLE.x, ORACLE.labels, epsilons=0.1)
    np.testing.assert_array_equal(first.clipped, again.clipped)
    draws = inner.draws
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    np.testing.assert_array_equal(draws[:3], draws[3:])  # the same three runs again
    alone = _RandomSigns(seed=7)(model, ORACLE.x, ORACLE.labels, epsilons=0.1)
    np.testing.assert_array_equal(alone.clipped, draws[0])  # run 0 is the attack alone
    once = _RandomSigns(seed=7).repeat(1)(model, ORACLE.x, ORACLE.labels, epsilons=0.1)
    np.testing.assert_array_equal(once.clipped, alone.clipped)


def test_repeat_of_a_real_attack_is_at_least_as_strong(backend: str) -> None:
    model = small_cnn(backend)
    single = attacks.LinfPGD(steps=2, seed=0)(model, X8, Y8, epsilons=0.02)
    repeated = attacks.LinfPGD(steps=2, seed=0).repeat(3)(
        model, X8, Y8, epsilons=0.02, batch_size=3
    )
    assert (repeated.success >= single.success).all()
    assert np.abs(repeated.clipped - X8).max() <= 0.02 + 1e-6


def test_repeated_attack_in_evaluate() -> None:
    model, repeated = oracle_model("numpy"), _RandomScale(seed=0).repeat(2)
    described = repr(repeated)  # as configured: the spy records its draws once it runs
    report = advlib.evaluate(
        model, (ORACLE.x, ORACLE.labels), [repeated], [0.0, 5.0], progress=False
    )
    (summary,) = report.attacks
    assert (summary.norm, summary.kind, summary.attack) == ("l2", "minimization", described)
    assert summary.robust[0] == report.clean_correct > summary.robust[1]


# ---------------------------------------------------------------------- user criteria
class NotClass(Criterion):
    """A user's criterion as in Foolbox: adversarial when the top class is not ``cls``. No
    per-sample data; returns a native tensor."""

    def __init__(self, cls: int) -> None:
        self.cls = cls

    def __repr__(self) -> str:
        return f"NotClass({self.cls})"

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> Any:
        return (outputs.argmax(axis=-1) != self.cls).raw


class NotLabel(Criterion):
    """A user's criterion keeping per-sample labels as NumPy and answering in NumPy."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> Any:
        return outputs.argmax(axis=-1).numpy() != self.labels


class SlicedNotLabel(NotLabel):
    def sliced(self, start: int, stop: int) -> Criterion:
        return SlicedNotLabel(self.labels[start:stop])


_MAJORITY = int(np.bincount(ORACLE.labels).argmax())
_OF_MAJORITY = ORACLE.labels == _MAJORITY


@pytest.mark.parametrize(
    "attack",
    [attacks.HopSkipJumpAttack(steps=2, seed=0), attacks.BoundaryAttack(steps=20, seed=0)],
    ids=["hsj", "boundary"],
)
def test_user_criterion_with_decision_attacks(any_backend: str, attack: advlib.Attack) -> None:
    model = oracle_model(any_backend)
    x = native(any_backend, ORACLE.x[_OF_MAJORITY])
    raw, clipped, success = attack(model, x, NotClass(_MAJORITY), epsilons=[None, 0.5])
    success = to_numpy(success)
    assert success[0].all()
    for k in range(2):
        np.testing.assert_array_equal(_predict(model, clipped[k]) != _MAJORITY, success[k])
    raw = attack.run(model, x, NotClass(_MAJORITY))
    assert type(raw) is type(x) and (_predict(model, raw) != _MAJORITY).all()


def test_user_criterion_with_per_sample_data(any_backend: str) -> None:
    model, attack = oracle_model(any_backend), attacks.HopSkipJumpAttack(steps=1, seed=0)
    x = native(any_backend, ORACLE.x)
    _, clipped, success = attack(model, x, NotLabel(ORACLE.labels), epsilons=None)
    np.testing.assert_array_equal(_predict(model, clipped) != ORACLE.labels, to_numpy(success))
    with pytest.raises(ValueError, match=r"keeps one value per input \(labels of shape \(12,\)\)"):
        attack(model, x, NotLabel(ORACLE.labels), epsilons=None, batch_size=6)
    _, clipped, success = attack(
        model, x, SlicedNotLabel(ORACLE.labels), epsilons=None, batch_size=6
    )
    np.testing.assert_array_equal(_predict(model, clipped) != ORACLE.labels, to_numpy(success))
    combined = advlib.Misclassification(ORACLE.labels) & NotClass(_MAJORITY)
    _, clipped, success = attack(model, x, combined, epsilons=None)
    want = (_predict(model, clipped) != ORACLE.labels) & (_predict(model, clipped) != _MAJORITY)
    np.testing.assert_array_equal(want, to_numpy(success))


def test_user_criterion_refused_by_loss_based_attacks(backend: str) -> None:
    with pytest.raises(
        ValueError, match=r"NotClass\(0\) gives loss-based attacks .*BoundaryAttack"
    ):
        attacks.LinfPGD(steps=1)(small_cnn(backend), X8, NotClass(0), epsilons=0.1)


class _Returns(Criterion):
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def __call__(self, perturbed: ep.Tensor, outputs: ep.Tensor) -> Any:
        return self.answer(outputs)


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (lambda o: o.argmax(axis=-1)[:1] != 0, ValueError, r"returned shape \(1,\) for 12 inputs"),
        (lambda o: o.argmax(axis=-1), TypeError, "returned dtype"),
        (lambda o: [True] * 12, TypeError, "returned list"),
        (lambda o: o > 0, ValueError, r"returned shape \(12, 5\)"),
    ],
)
def test_user_criterion_answers_are_checked(answer: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        attacks.HopSkipJumpAttack(steps=1)(
            oracle_model("numpy"), ORACLE.x, _Returns(answer), epsilons=None
        )


# ---------------------------------------------------------------------- Foolbox objects
def test_foolbox_criteria_are_refused_with_the_advlib_equivalent() -> None:
    fb = pytest.importorskip("foolbox")
    model = oracle_model("numpy")
    cases = [
        (fb.criteria.Misclassification(ORACLE.labels), r"advlib\.Misclassification\(labels\)"),
        (
            fb.criteria.TargetedMisclassification(ORACLE.labels),
            r"advlib\.TargetedMisclassification\(target_classes\)",
        ),
    ]
    for criterion, message in cases:
        with pytest.raises(TypeError, match="criterion: got a Foolbox criterion.*" + message):
            attacks.HopSkipJumpAttack(steps=1)(model, ORACLE.x, criterion, epsilons=None)
        with pytest.raises(TypeError, match=message):
            advlib.Misclassification(ORACLE.labels) & criterion
        with pytest.raises(TypeError, match=message):
            advlib.Misclassification(criterion).bind(model, model(ep.astensor(ORACLE.x)))


@pytest.mark.torch
def test_foolbox_models_and_bare_networks_are_refused_with_the_fix() -> None:
    torch = pytest.importorskip("torch")
    fb = pytest.importorskip("foolbox")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    fmodel = fb.PyTorchModel(net, bounds=(0, 1), device="cpu")
    fix = r"wrap the network with advlib\.PyTorchModel\(net, bounds=\.\.\.\)"
    with pytest.raises(TypeError, match="model: got a Foolbox model.*" + fix):
        attacks.FGSM()(fmodel, X8, Y8, epsilons=0.1)
    with pytest.raises(TypeError, match="model: got a Foolbox model.*" + fix):
        attacks.FGSM().run(fmodel, X8, Y8, epsilon=0.1)
    with pytest.raises(TypeError, match=r"expected an advlib model.*advlib\.PyTorchModel\(net"):
        attacks.FGSM()(net, X8, Y8, epsilons=0.1)
    with pytest.raises(TypeError, match="inputs_model: got a Foolbox model"):
        check_model(fmodel, "inputs_model")
    assert check_model(small_cnn("torch")) is small_cnn("torch")


# ---------------------------------------------------------------------- progress
def test_progress_bar_of_a_direct_call(capsys: pytest.CaptureFixture[str]) -> None:
    model = oracle_model("numpy")
    attack = _RandomSigns(seed=0)
    attack(model, ORACLE.x, ORACLE.labels, epsilons=[0.1, 0.2], batch_size=5, progress=True)
    err = capsys.readouterr().err
    assert "_RandomSigns" in err and "100%" in err
    attack(model, ORACLE.x, ORACLE.labels, epsilons=0.1, progress=False)
    attack.run(model, ORACLE.x, ORACLE.labels, epsilon=0.1, progress=False)
    assert capsys.readouterr().err == ""
    attack.run(model, ORACLE.x, ORACLE.labels, epsilon=0.1, progress=True)
    assert "100%" in capsys.readouterr().err


def test_progress_inside_an_active_bar(capsys: pytest.CaptureFixture[str]) -> None:
    model = oracle_model("numpy")
    bar = _progress.Progress(1, "outer", enabled=True)
    with bar.activate():
        with bar.portion(0.5):
            _RandomSigns(seed=0)(model, ORACLE.x, ORACLE.labels, epsilons=[0.1, 0.2], progress=True)
        assert bar._done == pytest.approx(0.5)  # the call filled exactly its portion
    err = capsys.readouterr().err
    assert "outer" in err and "_RandomSigns" not in err


@pytest.mark.torch
def test_progress_of_a_gradient_attack(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    attacks.LinfPGD(steps=3)(small_cnn("torch"), X8, Y8, epsilons=0.1, progress=True)
    err = capsys.readouterr().err
    assert "LinfProjectedGradientDescentAttack" in err and "100%" in err


# ---------------------------------------------------------------------- wider dtypes
def _float64_inputs(backend: str, source: str) -> Any:
    x = X8.astype(np.float64) * 0.98 + 0.01
    if source == "numpy":
        return x
    if backend == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX holds float64 arrays only with jax_enable_x64 (off in this run)")
    return native(backend, x)


@pytest.mark.parametrize("source", ["native", "numpy"])
@pytest.mark.parametrize(
    ("attack", "eps"),
    [
        (attacks.LinfPGD(steps=3, seed=0), 0.1),
        (attacks.L2PGD(steps=3, seed=0), 0.5),
    ],
    ids=["linf-pgd", "l2-pgd"],
)
def test_float64_results_keep_the_budget_exactly(
    backend: str, source: str, attack: advlib.Attack, eps: float
) -> None:
    model = small_cnn(backend)
    inputs = _float64_inputs(backend, source)
    x = to_numpy(inputs)
    _, clipped, success = attack(model, inputs, Y8, epsilons=[eps, 2 * eps])
    assert type(clipped[0]) is type(inputs) and to_numpy(clipped[0]).dtype == np.float64
    for k, budget in enumerate([eps, 2 * eps]):
        c = to_numpy(clipped[k])
        delta = (c - x).reshape(len(x), -1)
        assert np.linalg.norm(delta, ord=attack.norm.p, axis=1).max() <= budget
        assert c.min() >= 0.0 and c.max() <= 1.0
        np.testing.assert_array_equal(_predict(model, clipped[k]) != Y8, to_numpy(success)[k])
    assert to_numpy(success).any()  # the budget is large enough to matter


# ---------------------------------------------------------------------- epsilon warnings
@pytest.mark.parametrize(
    ("attack", "eps"), [(_RandomSigns(), 8.0), (attacks.HopSkipJumpAttack(steps=1), 10.0)]
)
def test_epsilons_beyond_the_bounds_warn_at_the_callers_line(attack: Any, eps: float) -> None:
    model = oracle_model("numpy")
    with pytest.warns(UserWarning, match=rf"epsilons: {eps:g} is larger than any .* 0-255") as w:
        attack(model, ORACLE.x, ORACLE.labels, epsilons=[0.1, eps])
    assert [record.filename for record in w] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        largest = 1.0 if attack.norm is linf else np.sqrt(ORACLE.x[0].size)
        attack(model, ORACLE.x, ORACLE.labels, epsilons=float(largest))


def test_norms_fit_is_exact_in_the_tensor_dtype() -> None:
    rng = np.random.default_rng(0)
    origin = rng.uniform(0, 1, (32, 3, 8, 8))
    for eps in (0.1, 8 / 255, 0.5, 3.0):
        x = np.clip(origin + rng.normal(0, eps, origin.shape), 0, 1)
        for norm in NORMS.values():
            fitted = norm.fit(ep.astensor(x), ep.astensor(origin), eps, (0.0, 1.0)).numpy()
            delta = (fitted - origin).reshape(32, -1)
            assert np.linalg.norm(delta, ord=norm.p, axis=1).max() <= eps
            assert fitted.min() >= 0 and fitted.max() <= 1
            plain = norm.project(ep.astensor(x), ep.astensor(origin), eps).clip(0, 1).numpy()
            np.testing.assert_allclose(fitted, plain, rtol=0, atol=1e-12)
