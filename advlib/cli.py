"""The ``advlib`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advlib",
        description="Adversarial robustness evaluation on PyTorch, TensorFlow, JAX and NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"advlib {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("attacks", help="list every attack with its norm and properties")
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
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "attacks":
        print(list_attacks())
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
