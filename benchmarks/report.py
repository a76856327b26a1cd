"""Turning measurement records into tables, ratios and target checks (pure Python).

A record is one implementation on one case, as written by :mod:`benchmarks.worker`: a dict
with ``backend, device, network, batch, attack, impl`` and, when it ran, ``median_s``,
``first_call_s``, ``peak_mib`` and ``success`` (per-epsilon success rates), else ``error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
CaseKey = tuple[str, str, str, int, str]  # backend, device, network, batch, attack

IMPLS = ("advlib", "native", "foolbox", "torchattacks")
PEERS = ("native", "foolbox", "torchattacks")
#: Success rates further apart than this (absolute, per epsilon) are flagged.
SUCCESS_TOLERANCE = 0.05


def case_key(record: Record) -> CaseKey:
    return (record["backend"], record["device"], record["network"], record["batch"],
            record["attack"])


def group(records: Iterable[Record]) -> dict[CaseKey, dict[str, Record]]:
    """Records by case, then by implementation, in first-seen order."""
    grouped: dict[CaseKey, dict[str, Record]] = {}
    for record in records:
        grouped.setdefault(case_key(record), {})[record["impl"]] = record
    return grouped


def ratio(numerator: Record | None, denominator: Record | None) -> float | None:
    """``numerator / denominator`` of median times, None when either did not run."""
    if numerator is None or denominator is None:
        return None
    a, b = numerator.get("median_s"), denominator.get("median_s")
    if a is None or b is None or b <= 0:
        return None
    return float(a) / float(b)


def success_gap(a: Record | None, b: Record | None) -> float | None:
    """Largest per-epsilon difference of success rates between two implementations."""
    if a is None or b is None or "success" not in a or "success" not in b:
        return None
    if len(a["success"]) != len(b["success"]):
        return None
    return max((abs(x - y) for x, y in zip(a["success"], b["success"], strict=True)),
               default=0.0)


# ------------------------------------------------------------------------------- tables
def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).rjust(w) if i >= 5 else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def _cell(impls: dict[str, Record], name: str, field: str, spec: str,
          scale: float = 1.0) -> str:
    if name not in impls:
        return ""
    value = impls[name].get(field)
    return _fmt(None if value is None else value * scale, spec)


def _case_cells(key: CaseKey) -> list[str]:
    backend, device, network, batch, attack = key
    return [backend, device, network, str(batch), attack]


def timing_table(records: Iterable[Record]) -> str:
    """Median seconds per implementation and advlib's ratio to each peer (< 1: advlib faster)."""
    header = ["backend", "device", "network", "batch", "attack",
              *(f"{i} s" for i in IMPLS), *(f"adv/{p}" for p in PEERS)]
    rows = []
    for key, impls in group(records).items():
        advlib = impls.get("advlib")
        rows.append([
            *_case_cells(key),
            *(_fmt(impls[i].get("median_s"), ".3f") if i in impls else "" for i in IMPLS),
            *(_fmt(ratio(advlib, impls.get(p)), ".2f") if p in impls else "" for p in PEERS),
        ])
    return _table(header, rows)


def detail_table(records: Iterable[Record]) -> str:
    """First-call (compile) time, memory added at the call's peak (over what was in use before
    it) and mean success rate per implementation."""
    header = ["backend", "device", "network", "batch", "attack",
              *(f"{i} first s" for i in IMPLS), *(f"{i} +MiB" for i in IMPLS),
              *(f"{i} succ%" for i in IMPLS)]
    rows = []
    for key, impls in group(records).items():
        rows.append([
            *_case_cells(key),
            *(_cell(impls, i, "first_call_s", ".2f") for i in IMPLS),
            *(_cell(impls, i, "added_mib", ".0f") for i in IMPLS),
            *(_cell(impls, i, "success_mean", ".1f", 100.0) for i in IMPLS),
        ])
    return _table(header, rows)


def success_warnings(records: Iterable[Record]) -> list[str]:
    """Cases where an implementation's success rates differ from advlib's (or, without advlib,
    the native loop's) by more than :data:`SUCCESS_TOLERANCE`, and implementations that failed."""
    messages = []
    for key, impls in group(records).items():
        name = "/".join(str(k) for k in key)
        reference_name = "advlib" if "success" in impls.get("advlib", {}) else "native"
        reference = impls.get(reference_name)
        for impl, record in impls.items():
            if record.get("error") and "median_s" not in record:
                messages.append(f"{name}: {impl}: {record['error']}")
                continue
            if impl == reference_name:
                continue
            if record.get("note"):
                messages.append(f"{name}: {impl}: {record['note']}")
                continue
            gap = success_gap(record, reference)
            if gap is not None and gap > SUCCESS_TOLERANCE:
                messages.append(
                    f"{name}: {impl} success {_rates(record)} vs {reference_name} "
                    f"{_rates(reference)} (max gap {100 * gap:.1f} points)"
                )
    return messages


def _rates(record: Record | None) -> str:
    if record is None:
        return "-"
    return "[" + " ".join(f"{100 * r:.0f}" for r in record["success"]) + "]%"


# ------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """A speed target from the issue: ``advlib/<peer>`` must be ``<= limit``."""

    description: str
    backend: str
    network: str
    attack: str
    peer: str
    limit: float


def targets() -> list[Target]:
    """The issue's targets (CPU, batch 256)."""
    found = []
    for backend in ("torch", "tensorflow", "jax"):
        for network in ("digits", "mlp"):
            for attack in ("FGSM", "LinfPGD", "L2PGD"):
                found.append(Target(
                    f"{backend} {network} {attack}: advlib/native <= 1.10",
                    backend, network, attack, "native", 1.10,
                ))
    found += [
        Target("jax mlp LinfPGD: >= 4x faster than Foolbox", "jax", "mlp", "LinfPGD",
               "foolbox", 1 / 4),
        Target("tensorflow mlp LinfPGD: >= 1.6x faster than Foolbox", "tensorflow", "mlp",
               "LinfPGD", "foolbox", 1 / 1.6),
        Target("torch mlp LinfPGD: at least as fast as torchattacks", "torch", "mlp",
               "LinfPGD", "torchattacks", 1.0),
    ]
    return found


def check_targets(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Each target with the measured ratio and ``passed`` (None when not measured)."""
    grouped = group(records)
    results = []
    for target in targets():
        matches = [
            impls for (backend, _, network, batch, attack), impls in grouped.items()
            if (backend, network, attack, batch) ==
            (target.backend, target.network, target.attack, 256)
        ]
        value = ratio(matches[0].get("advlib"), matches[0].get(target.peer)) if matches else None
        results.append({
            "target": target.description,
            "ratio": value,
            "limit": target.limit,
            "passed": None if value is None else value <= target.limit,
        })
    return results


def targets_text(results: Sequence[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        status = {True: "PASS", False: "MISS", None: "n/a "}[r["passed"]]
        lines.append(f"  {status}  {r['target']}: advlib/peer = {_fmt(r['ratio'], '.2f')} "
                     f"(limit {r['limit']:.3g})")
    return "\n".join(lines)


def full_report(records: Sequence[Record], messages: Sequence[str] = (),
                quick: bool = False) -> str:
    """Everything printed at the end of a run."""
    parts = ["Median wall-clock seconds per call (all epsilons) and advlib's time ratios "
             "(< 1: advlib is faster):", timing_table(records), "",
             "First call (includes compilation), peak memory added by a call (+MiB; RSS on "
             "CPU, allocator on GPU), mean success rate over the epsilons:",
             detail_table(records), ""]
    warnings = success_warnings(records)
    if warnings:
        parts += ["Success-rate differences / failures:", *("  " + w for w in warnings), ""]
    if messages:
        parts += ["Notes:", *("  " + m for m in messages), ""]
    parts.append("Targets (issue 7)" + (" -- quick mode, fewer steps: indicative only" if quick
                                        else "") + ":")
    parts.append(targets_text(check_targets(records)))
    return "\n".join(parts)
