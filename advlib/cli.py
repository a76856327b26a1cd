"""The ``advlib`` command line: ``demo``, ``evaluate`` and ``attacks``.

Mistakes in the user's input (an unknown attack, epsilons that are not numbers, a
``MODULE:FUNCTION`` that cannot be loaded, labels that do not match the inputs) end with one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the user's input, reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advlib",
        description="Adversarial robustness evaluation on PyTorch, TensorFlow, JAX and NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"advlib {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("attacks", help="list every attack with its norm and properties")

    demo = commands.add_parser(
        "demo",
        help="evaluate the zoo's digits CNNs against FGSM, PGD and C&W",
        description="Evaluate advlib.zoo's standard and adversarially trained digits CNNs "
        "against FGSM, LinfPGD and L2 C&W; print the tables and write JSON, CSV and PNG files.",
    )
    demo.add_argument(
        "--framework",
        choices=["torch", "tensorflow", "jax"],
        default=None,
        help="default: the first installed of torch, tensorflow, jax",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("advlib-demo"),
        help="folder for the files (default: ./advlib-demo)",
    )
    demo.add_argument(
        "--samples",
        type=_positive_int,
        default=None,
        help="evaluate only the first N test images (default: all 359)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    run = commands.add_parser(
        "evaluate",
        help="evaluate your model: MODULE:FUNCTION returns (model, data)",
        description="Evaluate the model that MODULE:FUNCTION returns. FUNCTION takes no "
        "arguments and returns (model, data): an advlib model wrapper and (inputs, labels) "
        "arrays, a DataLoader, a tf.data.Dataset or an iterable of batches.",
    )
    run.add_argument(
        "target",
        metavar="MODULE:FUNCTION",
        help="an importable module or a .py file, and a function in it",
    )
    run.add_argument(
        "--attack",
        action="append",
        required=True,
        metavar="NAME",
        help="an attack name (repeatable), e.g. --attack FGSM --attack LinfPGD",
    )
    run.add_argument(
        "--eps",
        action="append",
        required=True,
        metavar="EPSILONS",
        help="comma-separated budgets, e.g. 0.01,0.03; with attacks of several "
        "norms give one per norm: --eps linf=0.01,0.03 --eps l2=0.5,1",
    )
    run.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="attack at most N inputs at a time (default: the data's batches)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the attacks (default 0)")
    run.add_argument(
        "--individual",
        action="store_true",
        help="run every attack on every sample (default: AutoAttack-style cascade)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("advlib-report"),
        help="folder for report.json, report.csv, report.png (default: ./advlib-report)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def list_attacks() -> str:
    """A table of every attack, generated from the classes."""
    from .attacks import ATTACKS

    rows = [("attack", "norm", "kind", "gradients", "targeted")]
    for name, cls in ATTACKS.items():
        rows.append(
            (
                name,
                cls.norm.name,
                cls.kind,
                "yes" if cls.requires_grad else "no",
                "yes" if cls.supports_targeted else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "attacks":
            print(list_attacks())
        elif args.command == "demo":
            demo(args.framework, args.out, args.samples, not args.no_progress)
        elif args.command == "evaluate":
            evaluate_target(args)
        else:
            parser.print_help()
    except UsageError as error:
        print(f"advlib: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


# ---------------------------------------------------------------------- demo
def demo(framework: str | None, out: Path, samples: int | None, progress: bool) -> None:
    from .evaluation.demo import installed_framework, run_demo

    framework = framework or installed_framework()
    if framework is None:
        raise UsageError(
            "the demo needs PyTorch, TensorFlow or JAX; install one, e.g. pip install advlib[torch]"
        )
    if importlib.util.find_spec(framework) is None:
        raise UsageError(f"--framework {framework}: {framework} is not installed")
    reports = run_demo(framework, samples=samples, progress=progress)
    written: list[str] = []
    for name, report in reports.items():
        print(report)
        print()
        written += _write(report, out, name)
    print("wrote " + ", ".join(written))


# ---------------------------------------------------------------------- evaluate
def evaluate_target(args: argparse.Namespace) -> None:
    from .evaluation import evaluate
    from .evaluation.specs import attack_names
    from .models.base import Model

    names = attack_names()
    unknown = [name for name in args.attack if name not in names]
    if unknown:
        raise UsageError(
            f"--attack: unknown attack {unknown[0]!r}; valid names: {', '.join(sorted(names))}"
        )
    epsilons = parse_eps(args.eps)
    function = load_function(args.target)
    try:
        returned = function()
    except Exception as error:  # the user's code: report it, whatever it raised
        raise UsageError(f"{args.target} raised {type(error).__name__}: {error}") from None
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise UsageError(f"{args.target} must return (model, data), got {type(returned).__name__}")
    model, data = returned
    if not isinstance(model, Model):
        raise UsageError(
            f"{args.target} returned a {type(model).__name__} as the model; wrap it, e.g. "
            "advlib.PyTorchModel(net.eval(), bounds=(0, 1))"
        )
    try:
        report = evaluate(
            model,
            data,
            list(args.attack),
            epsilons,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            seed=args.seed,
            cascade=not args.individual,
        )
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    report.model = f"{args.target} ({report.model})"
    print(report)
    print("wrote " + ", ".join(_write(report, args.out, "report")))


def parse_eps(values: Sequence[str]) -> list[float] | dict[str, list[float]]:
    """``["0.01,0.03"]`` -> a list; ``["linf=0.01", "l2=0.5,1"]`` -> one list per norm."""
    by_norm: dict[str, list[float]] = {}
    plain: list[float] = []
    for value in values:
        norm, _, numbers = value.rpartition("=")
        target = by_norm.setdefault(norm.strip().lower(), []) if norm else plain
        for item in numbers.split(","):
            try:
                number = float(item)
            except ValueError:
                raise UsageError(
                    f"--eps: expected comma-separated numbers such as 0.01,0.03 "
                    f"(or NORM=numbers), got {value!r}"
                ) from None
            if not number >= 0 or number == float("inf"):
                raise UsageError(f"--eps: epsilons must be finite and >= 0, got {item.strip()}")
            target.append(number)
    if by_norm and plain:
        raise UsageError("--eps: give either plain epsilons or NORM=epsilons for every norm")
    return by_norm or plain


def load_function(target: str) -> Callable[[], Any]:
    """The function named by ``module:function`` or ``path/to/file.py:function``."""
    module_name, sep, function_name = target.rpartition(":")
    if not sep or not module_name or not function_name:
        raise UsageError(f"expected MODULE:FUNCTION (e.g. mymodels:load), got {target!r}")
    try:
        if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise UsageError(f"cannot load {target!r}: no file {module_name}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise UsageError(f"cannot load {target!r}: {module_name} is not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.resolve().parent))
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to you load
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as error:  # importing runs the user's code: report any failure
        raise UsageError(
            f"cannot import {module_name!r} from {target!r}: {type(error).__name__}: {error}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"cannot load {target!r}: {module_name} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- helpers
def _write(report: Any, out: Path, stem: str) -> list[str]:
    """JSON, CSV and (with matplotlib) PNG files of a report; the paths written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{stem}.json", out / f"{stem}.csv"]
        report.to_json(paths[0])
        report.to_csv(paths[1])
        try:
            report.plot(out / f"{stem}.png")
            paths.append(out / f"{stem}.png")
        except ImportError as error:
            print(f"advlib: no plot: {error}", file=sys.stderr)
    except OSError as error:
        raise UsageError(f"--out: cannot write to {out}: {error}") from None
    return [str(p) for p in paths]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
