"""``python -m benchmarks.scale``: ``advlib.evaluate`` in one process against the Ray engine.

The zoo's digits CNN (PyTorch, one thread per process) on ``--samples`` digits (the 1,797
bundled digits, augmented by deterministic one-pixel shifts), Linf PGD with ``--steps`` steps at
one epsilon, blocks of ``--block`` samples:

1. in-process: ``advlib.evaluate(model, data, ...)``;
2. Ray, 1 worker: ``engine="ray", workers=1`` (target: at most 1.3x the in-process time);
3. Ray, 2 workers of one CPU each (target: at least 1.6x the 1-worker throughput).

Ray is started once (local, ``--cpus`` CPUs) before the timed runs; each Ray run includes its
actors' start and model loading. The three reports must agree exactly (per-sample random
numbers): the script checks it. Then a paper estimate for AutoAttack on ImageNet (see
:func:`paper_estimate` and benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from typing import Any

import numpy as np


def model() -> Any:
    """The benchmark's model (also built by each Ray worker): one torch thread."""
    import torch

    import advlib

    torch.set_num_threads(1)
    return advlib.zoo.digits_cnn("torch")


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits: the bundled ones, then copies shifted by one pixel (deterministic)."""
    import advlib

    x = np.concatenate([advlib.zoo.digits("train")[0], advlib.zoo.digits("test")[0]])
    y = np.concatenate([advlib.zoo.digits("train")[1], advlib.zoo.digits("test")[1]])
    shifts = [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)]
    xs = [np.roll(x, s, axis=(2, 3)) for s in shifts[: math.ceil(n / len(x))]]
    return np.concatenate(xs)[:n], np.tile(y, len(xs))[:n]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    import advlib

    data = digits(args.samples)
    attack = [f"LinfPGD(steps={args.steps})"]
    common: dict[str, Any] = {"batch_size": args.block, "progress": False}
    timings: dict[str, Any] = {}
    start = time.perf_counter()
    local = advlib.evaluate(model, data, attack, [0.0, 0.1], **common)
    timings["in-process"] = time.perf_counter() - start
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    reports = {}
    try:
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                reports[workers] = advlib.evaluate(
                    f"{__file__}:model", data, attack, [0.0, 0.1], engine="ray",
                    workers=workers, results=folder, **common,
                )  # fmt: skip
                timings[f"ray, {workers} worker(s)"] = time.perf_counter() - start
    finally:
        ray.shutdown()
    for report in reports.values():
        same = [a.robust for a in report.attacks] == [a.robust for a in local.attacks]
        if not same or report.clean_correct != local.clean_correct:
            raise SystemExit("the Ray reports differ from the in-process report")
    pgd = local.attacks[0]
    return {
        "timings": timings,
        "samples": args.samples,
        "gradient_calls": pgd.gradient_calls,
        "attack_seconds": pgd.seconds,
        "robust": pgd.robust,
    }


def paper_estimate(samples: int, gpus: int, block: int = 32) -> dict[str, float]:
    """Hours for AutoAttack (standard, Linf) on ``samples`` ImageNet images on ``gpus`` GPUs.

    Assumptions (benchmarks/README.md): a ResNet-50 at 224 px does 1,000 forward passes per
    second per GPU in float32 and a gradient costs 3 forward passes; 65% clean accuracy, 40%
    of the samples robust to the end; a robust sample costs APGD-CE 100 + APGD-T 9 x 100 +
    FAB-T 9 x 100 gradients and Square 5,000 forwards (10,700 forward-equivalents), a sample
    broken along the way about 10% of that; loading the model 30 s per worker; data movement
    150 KB per image at 1 GB/s (0.15 ms); blocks of ``block`` samples, so with more GPUs than
    blocks the extra GPUs idle, and the last round of blocks is the tail.
    """
    forward_per_s = 1000.0
    robust_cost = (100 + 900 + 900) * 3 + 5000
    per_sample = (0.40 * robust_cost + 0.25 * 0.1 * robust_cost) / forward_per_s
    blocks = math.ceil(samples / block)
    rounds = math.ceil(blocks / gpus)
    attack = rounds * block * per_sample
    load, move = 30.0, samples / gpus * 0.15e-3
    return {
        "hours": (attack + load + move) / 3600,
        "attack_h": attack / 3600,
        "load_s": load,
        "data_s": move,
        "busy_gpus": float(min(gpus, blocks)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--samples", type=int, default=3072)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--skip-run", action="store_true", help="only the paper estimate")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.skip_run:
        result = run(args)
        base = result["timings"]["in-process"]
        one = result["timings"]["ray, 1 worker(s)"]
        print(f"{args.samples} samples, LinfPGD(steps={args.steps}), blocks of {args.block}")
        for name, seconds in result["timings"].items():
            print(f"  {name:20s} {seconds:8.1f} s  {args.samples / seconds:8.1f} samples/s")
        print(f"  ray 1 worker / in-process: {one / base:.2f}x (target <= 1.3x)")
        two = result["timings"]["ray, 2 worker(s)"]
        print(f"  ray 2 workers throughput / 1 worker: {one / two:.2f}x (target >= 1.6x)")
    print("AutoAttack standard (Linf) on ImageNet, estimated (assumptions in the docstring):")
    for samples in (5000, 50000):
        for gpus in (1, 8, 64):
            e = paper_estimate(samples, gpus)
            print(
                f"  {samples:6d} images, {gpus:2d} GPUs: {e['hours']:7.2f} h "
                f"(attack {e['attack_h']:.2f} h, model load {e['load_s']:.0f} s, data "
                f"{e['data_s']:.1f} s, {e['busy_gpus']:.0f} GPUs busy)"
            )


if __name__ == "__main__":
    main()
