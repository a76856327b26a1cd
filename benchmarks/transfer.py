"""Transfer attacks: adversarials of the zoo CNN (surrogate) tested on the zoo MLP (target).

    python -m benchmarks.transfer [--backend torch] [--out transfer.json]

Every attack runs 10 steps of size epsilon / 10 (MI-FGSM's paper setting) on the surrogate,
seeded; the table gives, per epsilon, the fraction of the test digits that both models
classify correctly whose adversarial also fools the target (white-box rate in brackets).
Results are in benchmarks/README.md ("Transfer attacks").
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

EPSILONS = (0.05, 0.1, 0.15, 0.2)
STEPS = dict(steps=10, rel_stepsize=0.1)


def candidates() -> dict[str, object]:
    """The attacks compared: MI-FGSM, then the transfer family, with torchattacks' defaults
    and, for DI and TI (whose defaults have no momentum), with MI-FGSM's momentum 1."""
    from advlib import attacks

    seeded = dict(STEPS, seed=0)
    return {
        "MI-FGSM": attacks.LinfMomentumIterativeAttack(**STEPS),
        "DI-FGSM": attacks.DIFGSM(**seeded),
        "DI-FGSM decay=1": attacks.DIFGSM(**seeded, decay=1.0),
        "TI-FGSM": attacks.TIFGSM(**seeded),
        "TI-FGSM decay=1 len_kernel=3": attacks.TIFGSM(**seeded, decay=1.0, len_kernel=3),
        "NI-FGSM": attacks.NIFGSM(**STEPS),
        "SI-NI-FGSM": attacks.SINIFGSM(**STEPS),
        "VMI-FGSM": attacks.VMIFGSM(**seeded),
        "VNI-FGSM": attacks.VNIFGSM(**seeded),
    }


def run(backend: str) -> dict[str, object]:
    import advlib
    from advlib.evaluation.transfer import transfer

    x, y = advlib.zoo.digits("test")
    surrogate, target = advlib.zoo.digits_cnn(backend), advlib.zoo.digits_mlp(backend)
    report = transfer(surrogate, target, candidates(), (x, y), list(EPSILONS))
    print(report)
    return {"backend": backend, **report.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="torch", choices=("torch", "tensorflow", "jax"))
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = run(args.backend)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
