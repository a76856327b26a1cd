"""The ``advlib`` command line: ``demo``, ``evaluate`` and ``attacks``.

``evaluate`` takes attacks with arguments (``--attack "L2CarliniWagnerAttack(steps=100)"``, or
``--attacks-file``; parsed, never evaluated: :mod:`advlib.evaluation.specs`) and says before
running how many model calls per sample each attack will make, with a cheaper setting for
expensive ones.

Mistakes in the user's input (an unknown attack, epsilons that are not numbers, a
``MODULE:FUNCTION`` that cannot be loaded, labels that do not match the inputs) end with one
line on stderr and exit code 2, never a traceback; a plot that cannot be written, exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .evaluation.counting import Calls
from .evaluation.report import WRITERS

if TYPE_CHECKING:
    from .attacks import Attack
    from .evaluation.specs import AttackSpec

EXIT_USAGE = 2

#: The report files ``demo`` and ``evaluate`` write unless ``--format`` says otherwise.
DEFAULT_FORMATS = ("json", "csv", "png", "md", "html")


class UsageError(Exception):
    """A problem reported in one line without a traceback: the user's input (exit code 2), or
    with ``exit_code=1`` a failure of the command itself (a plot that cannot be drawn)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advlib",
        description="Adversarial robustness evaluation on PyTorch, TensorFlow, JAX and NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"advlib {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = commands.add_parser(
        "attacks",
        help="list every attack by family with its aliases, or describe one",
        description="Without NAME: every attack, grouped by family, with its aliases, norm and "
        "whether it supports targeted criteria. With NAME: that attack's signature, summary "
        "and cost with its defaults.",
    )
    listing.add_argument("name", nargs="?", metavar="NAME", help="an attack name or alias")

    demo = commands.add_parser(
        "demo",
        help="evaluate the zoo's digits CNNs against FGSM, PGD and C&W",
        description="Evaluate advlib.zoo's standard and adversarially trained digits CNNs "
        "against FGSM, LinfPGD and L2 C&W; print the tables and write the report files "
        "(--format).",
    )
    from .evaluation.demo import demo_frameworks

    demo.add_argument(
        "--framework",
        choices=demo_frameworks(),
        default=None,
        help=f"default: the first installed of {', '.join(demo_frameworks())}",
    )
    _add_output_options(demo, "advlib-demo", "digits_cnn.FORMAT and digits_cnn_robust.FORMAT")
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
        default=[],
        metavar="SPEC",
        help="an attack name, optionally with keyword arguments (repeatable), e.g. "
        '--attack FGSM --attack "L2CarliniWagnerAttack(steps=100, binary_search_steps=5)"; '
        "values must be literals (numbers, strings, True/False/None, lists, inf)",
    )
    run.add_argument(
        "--attacks-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help='a JSON (or, with PyYAML, YAML) list of {"attack": NAME, "label": optional, '
        "ARGUMENT: value, ...} (repeatable; adds to --attack)",
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
    _add_output_options(run, "advlib-report", "report.FORMAT")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_scale_options(run)
    return parser


def _add_scale_options(parser: argparse.ArgumentParser) -> None:
    """``evaluate``'s options for per-sample results, resuming and the Ray engine."""
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="DIR",
        help="write per-sample results to DIR (one Parquet file per block); rerunning with "
        "the same DIR resumes (required with --engine ray)",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Data workers, each building the model "
        "from MODULE:FUNCTION once (pip install 'advlib[ray]')",
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="--engine ray: workers (default 1)"
    )
    parser.add_argument(
        "--cpus-per-worker",
        type=float,
        default=1.0,
        metavar="N",
        help="--engine ray: CPUs per worker (default 1)",
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="G",
        help="--engine ray: GPUs per worker (default 0; 1 gives each worker its own GPU)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="--engine ray: the cluster to join, 'auto' or ray://HOST:PORT (default: a local Ray)",
    )


_FAMILIES = (
    "gradient attacks, fixed epsilon",
    "gradient attacks, minimal perturbation",
    "black-box attacks, score-based",
    "black-box attacks, decision-based",
    "ensembles (AutoAttack)",
)


def family(cls: type[Attack]) -> str:
    """The family an attack class belongs to, one of :data:`_FAMILIES`."""
    if callable(getattr(cls, "attacks", None)):
        return _FAMILIES[4]
    fixed = cls.kind != "minimization"
    if cls.requires_grad:
        return _FAMILIES[0] if fixed else _FAMILIES[1]
    return _FAMILIES[2] if fixed else _FAMILIES[3]


def aliases(cls: type[Attack]) -> list[str]:
    """The other names :mod:`advlib.attacks` exports the class under, shortest first."""
    from .evaluation.specs import attack_names

    names = [n for n, c in attack_names().items() if c is cls and n != cls.__name__]
    return sorted(names, key=lambda n: (len(n), n))


def list_attacks() -> str:
    """Every attack grouped by family, each row with its aliases, norm and targeted support."""
    from .attacks import ATTACKS

    header = ("attack", "aliases", "norm", "targeted")
    groups: dict[str, list[tuple[str, ...]]] = {name: [] for name in _FAMILIES}
    for name, cls in ATTACKS.items():
        row = (
            name,
            ", ".join(aliases(cls)) or "-",
            cls.norm.name,
            "yes" if cls.supports_targeted else "no",
        )
        groups[family(cls)].append(row)
    rows = [header, *(row for group in groups.values() for row in group)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    out = [line(header)]
    for title, group in groups.items():
        if group:
            out += ["", title[0].upper() + title[1:] + ":", *(line(row) for row in group)]
    out += ["", 'Describe one: advlib attacks NAME. Arguments: --attack "LinfPGD(steps=100)".']
    return "\n".join(out)


def describe_attack(name: str) -> str:
    """One attack: its class, aliases, family, signature, docstring summary and default cost."""
    from .evaluation.specs import estimated_calls, lookup, signature_text

    try:
        cls = lookup(name, "advlib attacks")
    except ValueError as error:
        raise UsageError(str(error)) from None
    doc = inspect.getdoc(cls) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ")
    lines = [
        f"{cls.__name__}" + (f" (also: {', '.join(aliases(cls))})" if aliases(cls) else ""),
        f"{family(cls)}; norm {cls.norm.name}; targeted criteria: "
        + ("yes" if cls.supports_targeted else "no"),
        "",
        signature_text(cls),
    ]
    if summary:
        lines += ["", summary]
    try:
        estimate = estimated_calls(cls())
    except (TypeError, ValueError):  # an attack that needs arguments to be built
        estimate = None
    if estimate is not None:
        per = "per sample and epsilon" if cls.kind != "minimization" else "per sample"
        lines += ["", f"With its defaults: about {_cost(estimate)} {per}."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "attacks":
            print(describe_attack(args.name) if args.name else list_attacks())
        elif args.command == "demo":
            progress = False if args.no_progress else None
            demo(args.framework, args.out, args.samples, progress, args.format)
        elif args.command == "evaluate":
            evaluate_target(args)
        else:
            parser.print_help()
    except UsageError as error:
        print(f"advlib: error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


# ---------------------------------------------------------------------- demo
def demo(
    framework: str | None,
    out: Path,
    samples: int | None,
    progress: bool | None,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> None:
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
        written += _write(report, out, name, formats)
    print("wrote " + ", ".join(written))


# ---------------------------------------------------------------------- evaluate
def evaluate_target(args: argparse.Namespace) -> None:
    from .evaluation import evaluate
    from .evaluation.specs import resolve_attacks, resolve_epsilons
    from .models.base import Model

    specs = attack_specs(args.attack, args.attacks_file)
    epsilons = parse_eps(args.eps)
    try:
        attacks = resolve_attacks(specs, args.seed)
        grids = resolve_epsilons(epsilons, attacks)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
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
    announce_costs(specs, attacks, grids, _classes(model, data))
    ray = args.engine == "ray"
    try:
        report = evaluate(
            args.target if ray else model,
            data,
            dict(attacks),
            epsilons,
            batch_size=args.batch_size,
            progress=False if args.no_progress else None,
            seed=args.seed,
            cascade=not args.individual,
            results=args.results,
            engine=args.engine,
            **(_ray_options(args) if ray else {}),
        )
    except (ValueError, TypeError, ImportError) as error:
        raise UsageError(str(error)) from None
    except RuntimeError as error:  # blocks that failed on every try (BlockError)
        raise UsageError(str(error), exit_code=1) from None
    if not ray:
        report.model = f"{args.target} ({report.model})"
    print(report)
    print("wrote " + ", ".join(_write(report, args.out, "report", args.format)))


def _ray_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "cpus_per_worker": args.cpus_per_worker,
        "gpus_per_worker": args.gpus_per_worker,
        "address": args.address,
    }


def attack_specs(texts: Sequence[str], files: Sequence[Path]) -> list[AttackSpec]:
    """The attacks of ``--attack`` and ``--attacks-file``, parsed (nothing built yet)."""
    from .evaluation.specs import parse_attack, read_attacks_file

    if not texts and not files:
        raise UsageError(
            "give at least one attack: --attack NAME (e.g. --attack LinfPGD or --attack "
            '"L2CarliniWagnerAttack(steps=100)") or --attacks-file FILE'
        )
    try:
        specs = [parse_attack(text, "--attack") for text in texts]
        for path in files:
            specs += read_attacks_file(path)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    return specs


def announce_costs(
    specs: Sequence[AttackSpec],
    attacks: Sequence[tuple[str, Attack]],
    grids: dict[str, list[float]],
    classes: int | None,
) -> None:
    """Before a run, on stderr: each attack's estimated model calls per sample, and for an
    expensive one how to make it cheaper."""
    from .evaluation.specs import cheaper, estimated_calls, expensive

    for spec, (label, attack) in zip(specs, attacks, strict=True):
        estimate = estimated_calls(attack, classes)
        if estimate is None:
            print(f"advlib: {label}: cost unknown", file=sys.stderr)
            continue
        runs = 1
        if attack.kind != "minimization":
            runs = max(sum(1 for eps in grids[attack.norm.name] if eps > 0), 1)
        total = Calls()
        total.add(estimate, runs)
        per = f"per sample ({runs} epsilons)" if runs > 1 else "per sample"
        print(f"advlib: {label}: about {_cost(total)} {per}", file=sys.stderr)
        if expensive(total):
            better = cheaper(spec, attack, classes)
            print(
                f"advlib: warning: {label} is expensive ({_cost(total)} per sample) and may run "
                "for a long time"
                + (f'; for a cheaper run: --attack "{better.text}"' if better else ""),
                file=sys.stderr,
            )


def _cost(calls: Calls) -> str:
    def count(n: int, what: str) -> str:
        return f"{n:,} {what}" + ("" if n == 1 else "es" if what.endswith("s") else "s")

    parts = [count(calls.gradient, "gradient call")] if calls.gradient else []
    return " and ".join([*parts, count(calls.forward, "forward pass")])


def _classes(model: Any, data: Any) -> int | None:
    """The model's number of outputs, from one input of a pair of arrays (else None)."""
    from .evaluation.data import is_pair, to_numpy

    if not is_pair(data) or len(data[0]) == 0:
        return None
    try:
        inputs, _ = model.to_tensor(to_numpy(data[0][:1], "inputs"), "inputs", floating=True)
        return int(model(inputs).shape[-1])
    except Exception:  # the user's model or data: evaluate reports problems properly
        return None


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
    from .evaluation.factory import load_target

    try:
        return load_target(target)
    except ValueError as error:
        raise UsageError(str(error)) from None


# ---------------------------------------------------------------------- helpers
def _write(report: Any, out: Path, stem: str, formats: Sequence[str]) -> list[str]:
    """The report's files ``out/stem.FORMAT``, one per format (names from
    :data:`~advlib.evaluation.report.WRITERS`); the paths written. A file that cannot be
    drawn (e.g. the plot) is an error (exit code 1), not a skipped file."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out: cannot write to {out}: {error}") from None
    paths = []
    for name in formats:
        path = out / f"{stem}.{name}"
        try:
            report.save(path, format=name)
        except OSError as error:
            raise UsageError(f"--out: cannot write to {out}: {error}") from None
        except Exception as error:  # matplotlib's failures have many types: report any
            what = f"{WRITERS[name].description} {path}"
            raise UsageError(
                f"cannot write {what}: {type(error).__name__}: {error}", exit_code=1
            ) from None
        paths.append(str(path))
    return paths


def _add_output_options(parser: argparse.ArgumentParser, out: str, files: str) -> None:
    """``--out`` (default ``./out``) and ``--format``; ``files``: the names written there."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(out),
        help=f"folder for {files} (default: ./{out})",
    )
    parser.add_argument(
        "--format",
        type=_formats,
        default=DEFAULT_FORMATS,
        metavar="FORMATS",
        help="comma-separated report formats, of "
        + ", ".join(f"{name} ({writer.description})" for name, writer in WRITERS.items())
        + f" (default: {','.join(DEFAULT_FORMATS)})",
    )


def _formats(text: str) -> list[str]:
    """``"json,md"`` -> ``["json", "md"]``; argparse reports a name that is no format."""
    names = [name.strip().lower().lstrip(".") for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in WRITERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated formats of {', '.join(WRITERS)}, got {text!r}"
        )
    return list(dict.fromkeys(names))  # in order, each once


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
