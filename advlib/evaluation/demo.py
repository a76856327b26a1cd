"""``advlib demo``: both zoo models against FGSM, PGD and C&W, in a few seconds on a CPU."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..attacks.base import ATTACKS, Attack
from ..models import registry
from .evaluate import evaluate
from .report import RobustnessReport

LINF_EPSILONS = [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3]
L2_EPSILONS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]

# Foolbox's C&W defaults (9 x 10000 steps) take minutes; these settings find adversarials of
# about the same size on the 8x8 digits in a few seconds.
_CW_SETTINGS = {"binary_search_steps": 5, "steps": 100, "stepsize": 0.05}


def demo_frameworks() -> tuple[str, ...]:
    """The frameworks the demo runs on, in the order the default is picked: the core model
    kinds (torch, tensorflow, jax) whose backend has gradients, as gradient attacks need.
    Other kinds (Keras 3, Flax NNX, ...) are left out: each computes in one of these
    backends, so the demo would measure the same thing."""
    backends = registry.backends()
    return tuple(
        name
        for name, kind in registry.kinds().items()
        if kind.core and kind.build is not None and backends[kind.backend_name()].gradients
    )


def installed_framework() -> str | None:
    """The first of :func:`demo_frameworks` that is installed (without importing it)."""
    kinds = registry.kinds()
    return next((name for name in demo_frameworks() if kinds[name].available()), None)


def demo_attacks() -> tuple[dict[str, Attack], dict[str, list[float]]]:
    """FGSM and LinfPGD, plus L2 C&W when this advlib has it, and their epsilon grids."""
    attacks: dict[str, Attack] = {
        "FGSM": ATTACKS["LinfFastGradientAttack"](),
        "LinfPGD": ATTACKS["LinfProjectedGradientDescentAttack"](),
    }
    epsilons = {"linf": LINF_EPSILONS}
    cw = ATTACKS.get("L2CarliniWagnerAttack")
    if cw is not None:
        accepted = inspect.signature(cw.__init__).parameters
        attacks["C&W"] = cw(**{k: v for k, v in _CW_SETTINGS.items() if k in accepted})
        epsilons["l2"] = L2_EPSILONS
    return attacks, epsilons


def run_demo(
    framework: str, samples: int | None = None, progress: bool | None = None
) -> dict[str, RobustnessReport]:
    """Evaluate the standard and the adversarially trained zoo CNN; reports by model name.

    Args:
        framework: one of :func:`demo_frameworks`: "torch", "tensorflow" or "jax".
        samples: evaluate only the first ``samples`` test images (default: all 359).
        progress: progress bars: None (default) when somebody watches (a terminal or a
            notebook), True always, False never.
    """
    from .. import zoo

    if framework not in demo_frameworks():
        raise ValueError(f"framework: expected one of {list(demo_frameworks())}, got {framework!r}")
    if framework == "torch":
        _single_thread_torch()
    x, y = zoo.digits("test")
    if samples is not None:
        x, y = x[:samples], y[:samples]
    attacks, epsilons = demo_attacks()
    reports = {}
    for robust in (False, True):
        name = "digits_cnn_robust" if robust else "digits_cnn"
        model = zoo.digits_cnn(framework, robust=robust)
        report = evaluate(model, (x, y), attacks, epsilons, progress=progress)
        report.model = f"advlib.zoo.{name} ({framework})"
        reports[name] = report
    return reports


def _single_thread_torch() -> None:
    # The zoo CNN is too small to gain from intra-op threads, and on busy cores two threads
    # were measured 20-30x slower than one.
    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(1)
