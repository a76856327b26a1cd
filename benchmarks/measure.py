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
