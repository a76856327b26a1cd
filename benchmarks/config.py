"""What is measured: the attacks (with identical settings in every implementation) and the cases.

A case is one network at one batch size under one attack. ``cases(quick)`` lists them: the full
run covers the issue's grid, ``--quick`` a small subset that finishes in about two minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Seed of the random start (and of the data), shared by every implementation.
SEED = 0


@dataclass(frozen=True)
class AttackSpec:
    """One attack's settings, the same for advlib, the native loop and the peers.

    Args:
        name: advlib's class name (``FGSM``, ``LinfPGD``, ``L2PGD``, ``L2CarliniWagnerAttack``).
        norm: ``"linf"`` or ``"l2"``.
        steps: gradient steps per epsilon (per binary-search step for C&W).
        rel_stepsize: step size relative to epsilon (absolute step size for C&W's Adam).
        random_start: whether PGD starts from a random point of the ball (seeded).
        epsilons: the budgets; every implementation runs once per epsilon. Empty for C&W, which
            runs once (unbounded) and reports the minimal adversarials.
        binary_steps: C&W's binary search steps over the constant (0 for other attacks).
        initial_const: C&W's initial trade-off constant.
    """

    name: str
    norm: str
    steps: int
    rel_stepsize: float
    random_start: bool
    epsilons: tuple[float, ...]
    binary_steps: int = 0
    initial_const: float = 1e-3

    @property
    def is_minimization(self) -> bool:
        return self.binary_steps > 0

    @property
    def gradient_steps(self) -> int:
        """Gradient evaluations per epsilon (per call for C&W)."""
        return self.steps * max(self.binary_steps, 1)


LINF_EPSILONS = (0.002, 0.005, 0.01, 0.02)
L2_EPSILONS = (0.05, 0.1, 0.2, 0.4)

ATTACK_SPECS: dict[str, AttackSpec] = {
    "FGSM": AttackSpec("FGSM", "linf", 1, 1.0, False, LINF_EPSILONS),
    "LinfPGD": AttackSpec("LinfPGD", "linf", 40, 0.01 / 0.3, True, LINF_EPSILONS),
    "L2PGD": AttackSpec("L2PGD", "l2", 50, 0.025, True, L2_EPSILONS),
    "L2CarliniWagnerAttack": AttackSpec(
        "L2CarliniWagnerAttack", "l2", 100, 0.01, False, (), binary_steps=5
    ),
}


@dataclass(frozen=True)
class Case:
    """One network at one batch size under one attack."""

    network: str
    batch: int
    attack: AttackSpec
    repeats: int = 3
    min_seconds: float = 0.0  # repeat beyond ``repeats`` until each implementation has this much

    @property
    def key(self) -> str:
        return f"{self.network}/{self.batch}/{self.attack.name}"


#: Short calls (FGSM: a few milliseconds) are repeated until each implementation has this many
#: seconds of timed calls, at most ``MAX_REPEATS`` times: a median of 3-5 such calls swung by
#: 10-30% from run to run on a shared 2-core CPU.
MIN_TIMED_SECONDS = 1.0
MAX_REPEATS = 200

#: The ResNet on a CPU: one epsilon and 10 steps keep the full CPU run near a quarter of an hour
#: (batch 512 costs about 0.35 s per gradient step on two cores); the full settings on a GPU.
RESNET_CPU_EPSILONS = {"linf": (0.008,), "l2": (0.25,)}
RESNET_CPU_STEPS = 10
QUICK_STEPS = 10


def _resnet_cpu(spec: AttackSpec) -> AttackSpec:
    return replace(
        spec,
        epsilons=RESNET_CPU_EPSILONS[spec.norm],
        steps=min(spec.steps, RESNET_CPU_STEPS),
    )


def cases(quick: bool = False, repeats: int = 3, device: str = "cpu") -> list[Case]:
    """The benchmark grid.

    Full: the digits CNN and the MLP at batch 256 under FGSM, Linf PGD, L2 PGD and C&W, and the
    ResNet at batch 32, 128 and 512 under FGSM, Linf PGD and L2 PGD (on a CPU with one epsilon
    and 10 steps, and without C&W, see :data:`RESNET_CPU_STEPS`). ``quick``: the digits CNN and the
    MLP with 10-step PGD and one 10-step round of C&W, and the ResNet at batch 32 under FGSM and
    Linf PGD.
    """
    attacks = list(ATTACK_SPECS.values())
    small = [(net, 256, a) for net in ("digits", "mlp") for a in attacks]
    resnet = [a for a in attacks if device == "cuda" or not a.is_minimization]
    if device == "cpu":
        resnet = [_resnet_cpu(a) for a in resnet]
    if quick:
        small = [
            (net, batch, replace(a, steps=min(a.steps, QUICK_STEPS),
                                 binary_steps=min(a.binary_steps, 1)))
            for net, batch, a in small
        ]
        grid = small + [("resnet", 32, a) for a in resnet if a.name in ("FGSM", "LinfPGD")]
    else:
        grid = small + [("resnet", batch, a) for batch in (32, 128, 512) for a in resnet]
    return [Case(n, b, a, repeats, MIN_TIMED_SECONDS) for n, b, a in grid]
