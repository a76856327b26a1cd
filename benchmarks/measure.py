"""Wall-clock time and peak memory of one call.

Peak memory is the resident set size on CPU (Linux: ``VmHWM`` after resetting it through
``/proc/self/clear_refs``; elsewhere the process's lifetime peak from ``resource``) and the
framework allocator's peak on GPU.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_MIB = 1024 * 1024


@dataclass
class Measurement:
    """One call: wall-clock seconds, peak memory, the peak's growth over the memory in use
    just before the call (what the call itself needed), and the call's result."""

    seconds: float
    peak_mib: float | None
    added_mib: float | None
    result: Any


class MemoryProbe:
    """Resets and reads the peak memory of one backend on one device."""

    def __init__(self, framework: str, device: str) -> None:
        self.framework, self.device = framework, device
        self.kind = "gpu-allocator" if device == "cuda" else self._rss_kind()

    @staticmethod
    def _rss_kind() -> str:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return "rss"
        except OSError:
            return "rss-lifetime"

    def reset(self) -> None:
        if self.kind == "rss":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        elif self.kind == "gpu-allocator":
            if self.framework == "torch":
                import torch

                torch.cuda.reset_peak_memory_stats()
            elif self.framework == "tensorflow":
                import tensorflow as tf

                tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_mib(self) -> float | None:
        if self.kind == "rss":
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
            return None
        if self.kind == "rss-lifetime":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak / _MIB if sys.platform == "darwin" else peak / 1024
        if self.framework == "torch":
            import torch

            return float(torch.cuda.max_memory_allocated()) / _MIB
        if self.framework == "tensorflow":
            import tensorflow as tf

            return float(tf.config.experimental.get_memory_info("GPU:0")["peak"]) / _MIB
        import jax

        # JAX cannot reset its peak: this is the process's peak so far.
        stats: dict[str, Any] = jax.devices()[0].memory_stats() or {}
        in_use = stats.get("peak_bytes_in_use")
        return None if in_use is None else float(in_use) / _MIB


def synchronize(framework: str, device: str) -> None:
    """Wait for queued GPU work (CPU work and results converted to NumPy already waited)."""
    if device == "cuda" and framework == "torch":
        import torch

        torch.cuda.synchronize()


def measure(
    fn: Callable[[], Any], probe: MemoryProbe, framework: str, device: str
) -> Measurement:
    """Time one call of ``fn`` (which must return host data or wait for the device)."""
    synchronize(framework, device)
    probe.reset()
    before = probe.peak_mib()
    start = time.perf_counter()
    result = fn()
    synchronize(framework, device)
    seconds = time.perf_counter() - start
    peak = probe.peak_mib()
    added = None if peak is None or before is None else max(peak - before, 0.0)
    return Measurement(seconds, peak, added, result)


# ---------------------------------------------------------------------- the AutoAttack suite
#: (network, norm, epsilon) cases of ``--suite autoattack``: the zoo digits CNN, standard and
#: PGD-trained, Linf at two budgets and L2 at one.
AUTOATTACK_CASES = [
    (robust, norm, eps)
    for robust in (False, True)
    for norm, eps in (("Linf", 0.1), ("Linf", 0.2), ("L2", 1.0))
]


class _Counting:
    """A torch module wrapper that counts forward passes (rows) and backward passes (rows), and
    times them: ``model_s`` is the time spent inside the network (forward passes, and backward
    passes from the gradient reaching its output to the gradient reaching its input), the part
    of a run that no attack code can make cheaper without evaluating the network less."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.forward_rows = self.backward_rows = 0
        self.model_s = 0.0
        self.training = False  # torchattacks reads and sets the module's mode

    def reset(self) -> None:
        self.forward_rows = self.backward_rows = 0
        self.model_s = 0.0

    def eval(self) -> _Counting:
        return self

    def train(self, mode: bool = True) -> _Counting:
        return self

    def parameters(self) -> Any:
        return self.net.parameters()

    def __call__(self, x: Any) -> Any:
        self.forward_rows += len(x)
        start = time.perf_counter()
        out = self.net(x)
        self.model_s += time.perf_counter() - start
        if out.requires_grad:
            n, began = len(x), [-1.0]

            def counted(grad: Any) -> Any:
                self.backward_rows += n
                began[0] = time.perf_counter()
                return grad

            def reached_input(grad: Any) -> Any:
                if began[0] >= 0:  # once: a hook on a reused leaf stays registered
                    self.model_s += time.perf_counter() - began[0]
                    began[0] = -1.0
                return grad

            out.register_hook(counted)
            if x.requires_grad:
                x.register_hook(reached_input)
        return out


def autoattack_suite(n: int, repeats: int, threads: int | None) -> list[dict[str, Any]]:
    """advlib's AutoAttack (standard, fast, strong) against torchattacks' AutoAttack on the
    first ``n`` test digits: robust accuracy, forward and gradient rows per image (machine
    independent) and the median wall time of ``repeats`` interleaved runs (A, B, A, B...)."""
    import torch

    import advlib.zoo

    if threads:
        torch.set_num_threads(threads)
    x, y = advlib.zoo.digits("test")
    x, y = x[:n], y[:n]
    records = []
    for robust, norm, eps in AUTOATTACK_CASES:
        records += _autoattack_case(robust, norm, eps, x, y, repeats)
    return records


def _autoattack_case(
    robust: bool, norm: str, eps: float, x: Any, y: Any, repeats: int
) -> list[dict[str, Any]]:
    import warnings

    import numpy as np
    import torch
    import torchattacks

    import advlib
    import advlib.zoo

    n = len(x)
    net = advlib.zoo.digits_cnn("torch", robust=robust)._model.eval()
    counting = _Counting(net)
    model = advlib.PyTorchModel(counting, bounds=(0, 1))

    def ours(version: str, steps: int = 100) -> Callable[[], float]:
        attack = advlib.attacks.AutoAttack(
            norm=norm, eps=eps, version=version, seed=0, steps=steps
        )

        def run() -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(1 - attack(model, x, y).success.mean())

        return run

    def theirs(make: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            adv = make()(torch.tensor(x), torch.tensor(y))
            with torch.no_grad():
                return float((net(adv).argmax(-1).numpy() == y).mean())

        return run

    def their_default() -> Any:  # its components at torchattacks' defaults: 10 steps
        return torchattacks.AutoAttack(counting, norm=norm, eps=eps, n_classes=10, seed=0)

    def their_reference() -> Any:  # the same components at AutoAttack's budgets
        common = dict(norm=norm, eps=eps, seed=0)
        return torchattacks.MultiAttack([
            torchattacks.APGD(counting, steps=100, loss="ce", **common),
            torchattacks.APGDT(counting, steps=100, n_classes=10, **common),
            torchattacks.FAB(counting, steps=100, multi_targeted=True, n_classes=10, **common),
            torchattacks.Square(counting, n_queries=5000, **common),
        ])

    runs = {
        "torchattacks-100": theirs(their_reference),
        **{v: ours(v) for v in ("standard", "fast", "strong")},
        "torchattacks (10 steps)": theirs(their_default),
        "standard-10": ours("standard", steps=10),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    model_s: dict[str, list[float]] = {k: [] for k in runs}
    result: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        for name, run in runs.items():  # interleaved: load changes hit every one alike
            counting.reset()
            start, start_cpu = time.perf_counter(), time.process_time()
            accuracy = run()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            model_s[name].append(counting.model_s)
            result[name] = {
                "robust_accuracy": accuracy,
                "forward_per_image": counting.forward_rows / n,
                "gradients_per_image": counting.backward_rows / n,
            }
    records = []
    for name in runs:
        result[name]["median_s"] = float(np.median(times[name]))
        # the process's CPU time: what other jobs on a shared machine disturb least
        result[name]["median_cpu_s"] = float(np.median(cpu[name]))
        result[name]["median_model_s"] = float(np.median(model_s[name]))
        short = name in ("torchattacks (10 steps)", "standard-10")
        reference = "torchattacks (10 steps)" if short else "torchattacks-100"
        records.append({"network": "digits-robust" if robust else "digits", "norm": norm,
                        "eps": eps, "implementation": name, "reference": reference,
                        **result[name]})
        print(records[-1], file=sys.stderr, flush=True)
    return records


def autoattack_table(records: list[dict[str, Any]]) -> str:
    """The suite's records as a Markdown table, with CPU and wall time relative to the
    torchattacks run of the same budget (``reference``: the 100-step components, or its
    10-step default). ``model s`` is the time inside the network; over the reference's wall
    time it is the ratio the run would reach if nothing outside the network cost anything
    (``floor``)."""
    by_name = {(r["network"], r["norm"], r["eps"], r["implementation"]): r for r in records}
    lines = ["| network | norm | eps | implementation | robust acc. | fwd/img | grad/img | "
             "CPU s | x reference (CPU) | wall s | x reference (wall) | model s | floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        ref = by_name[(r["network"], r["norm"], r["eps"], r["reference"])]
        lines.append(
            f"| {r['network']} | {r['norm']} | {r['eps']} | {r['implementation']} | "
            f"{r['robust_accuracy']:.3f} | {r['forward_per_image']:.0f} | "
            f"{r['gradients_per_image']:.0f} | {r['median_cpu_s']:.2f} | "
            f"{r['median_cpu_s'] / ref['median_cpu_s']:.2f} | {r['median_s']:.2f} | "
            f"{r['median_s'] / ref['median_s']:.2f} | {r['median_model_s']:.2f} | "
            f"{r['median_model_s'] / ref['median_s']:.2f} |"
        )
    return "\n".join(lines)
