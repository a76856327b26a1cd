"""``python -m benchmarks``: advlib against Foolbox, torchattacks and native loops, side by side.

Runs one subprocess per backend (TensorFlow and PyTorch must not share a process), then prints
the timing table, the details (compile time, memory, success rates), the issue's targets, and
writes everything as JSON. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

from .report import check_targets, full_report
from .worker import thread_environment

BACKENDS = ("torch", "tensorflow", "jax")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time advlib against Foolbox, torchattacks and hand-written native loops.",
    )
    parser.add_argument("--backend", choices=BACKENDS, action="append",
                        help="run only this backend (repeatable); default: all installed")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the frameworks compute (default cpu)")
    parser.add_argument("--quick", action="store_true",
                        help="small subset with fewer steps (about two minutes on CPU)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="at least this many timed calls per implementation after the warm-up "
                             "(default 3; short calls repeat until they total one second)")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap each framework's CPU threads (default: its own choice)")
    parser.add_argument("--networks", default=None,
                        help="comma-separated subset of digits,mlp,resnet")
    parser.add_argument("--attacks", default=None,
                        help="comma-separated subset of FGSM,LinfPGD,L2PGD,L2CarliniWagnerAttack")
    parser.add_argument("--suite", choices=["attacks", "autoattack"], default="attacks",
                        help="attacks (default): the timing grid; autoattack: advlib's "
                             "AutoAttack versions against torchattacks' (torch, in-process)")
    parser.add_argument("--images", type=int, default=200,
                        help="--suite autoattack: test digits attacked (default 200)")
    parser.add_argument("--out", default="benchmark-results.json",
                        help="JSON output file (default benchmark-results.json)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected an int >= 1, got {args.repeats}")
    return args


def run_worker(backend: str, args: argparse.Namespace, out: str) -> dict[str, Any]:
    """One backend in a fresh interpreter; its progress goes straight to our stderr."""
    command = [sys.executable, "-m", "benchmarks.worker", "--backend", backend,
               "--device", args.device, "--repeats", str(args.repeats), "--out", out]
    for flag in ("quick",):
        if getattr(args, flag):
            command.append(f"--{flag}")
    for option in ("threads", "networks", "attacks"):
        if getattr(args, option) is not None:
            command += [f"--{option}", str(getattr(args, option))]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.update(thread_environment(args.threads))
    # The repository root (for ``benchmarks``) goes after any PYTHONPATH the user set.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), root]))
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0 or not os.path.exists(out):
        return {"backend": backend, "device": args.device, "records": [],
                "messages": [f"{backend}: worker failed with exit code {completed.returncode}"]}
    with open(out) as f:
        result: dict[str, Any] = json.load(f)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.suite == "autoattack":
        return autoattack_main(args)
    backends = args.backend or list(BACKENDS)
    started = time.time()
    parts, messages = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            print(f"== {backend} ({args.device}) ==", file=sys.stderr, flush=True)
            part = run_worker(backend, args, os.path.join(tmp, f"{backend}.json"))
            parts.append(part)
            messages += part.get("messages", [])
    records = [r for part in parts for r in part.get("records", [])]
    print()
    print(full_report(records, messages, quick=args.quick))
    elapsed = time.time() - started
    print(f"\nTotal wall-clock time: {elapsed:.0f} s")
    result = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count()},
        "backends": {p["backend"]: {k: v for k, v in p.items() if k != "records"}
                     for p in parts},
        "records": records,
        "targets": check_targets(records),
        "messages": messages,
        "elapsed_s": elapsed,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"Results written to {args.out}")
    return 0


def autoattack_main(args: argparse.Namespace) -> int:
    """``--suite autoattack``: one process (torch), interleaved repeats, a Markdown table."""
    from .measure import autoattack_suite, autoattack_table

    os.environ.update(thread_environment(args.threads))
    records = autoattack_suite(args.images, args.repeats, args.threads)
    print(autoattack_table(records))
    with open(args.out, "w") as f:
        json.dump({"settings": {k: v for k, v in vars(args).items() if k != "out"},
                   "records": records}, f, indent=1)
    print(f"Results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
