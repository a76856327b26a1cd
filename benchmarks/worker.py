"""One backend in one process: ``python -m benchmarks.worker --backend jax --out part.json``.

The main script (``python -m benchmarks``) starts one worker per backend, since TensorFlow and
PyTorch should not share a process. A worker builds each network once per batch size, warms
every implementation up (that call's time is reported as the first-call / compile time), then
times ``repeats`` calls of each, interleaved so that background load hits all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from .config import MAX_REPEATS, SEED, Case, cases
from .implementations import Setup, implementations, installed, note, unsupported
from .measure import MemoryProbe, measure
from .networks import NETWORKS, build_network

FRAMEWORK_MODULES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
Log = Callable[[str], None]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- devices
def device_problem(framework: str, device: str) -> str | None:
    """Why ``framework`` cannot run on ``device`` here, or None."""
    if not installed(FRAMEWORK_MODULES[framework]):
        return f"{framework} is not installed"
    if device == "cpu":
        return None
    if framework == "torch":
        import torch

        return None if torch.cuda.is_available() else "torch sees no CUDA device"
    if framework == "tensorflow":
        import tensorflow as tf

        return None if tf.config.list_physical_devices("GPU") else "TensorFlow sees no GPU"
    import jax

    return None if jax.devices()[0].platform == "gpu" else "JAX sees no GPU (install jax[cuda])"


def thread_environment(threads: int | None) -> dict[str, str]:
    """Environment variables that cap CPU threads (must be set before a framework starts)."""
    if threads is None:
        return {}
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "XLA_FLAGS": (
            f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
            f"intra_op_parallelism_threads={threads}"
        ),
    }


def configure(framework: str, device: str, threads: int | None = None) -> None:
    """Pin the framework to ``device`` (and ``threads`` CPU threads) before anything is built."""
    if framework == "jax" and device == "cpu":
        import jax

        config: Any = jax.config
        config.update("jax_platforms", "cpu")
    if framework == "torch" and threads is not None:
        import torch

        torch.set_num_threads(threads)
    if framework == "tensorflow":
        import tensorflow as tf

        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            if device == "cpu":
                tf.config.set_visible_devices([], "GPU")
                break
            tf.config.experimental.set_memory_growth(gpu, True)


def versions(framework: str) -> dict[str, str]:
    import advlib

    found = {"python": platform.python_version(), "advlib": advlib.__version__}
    for name in (FRAMEWORK_MODULES[framework], "eagerpy", "foolbox", "torchattacks", "numpy"):
        if name == "torchattacks" and framework != "torch":
            continue
        if installed(name):
            module = __import__(name)
            found[name] = str(getattr(module, "__version__", "?"))
    return found


# ------------------------------------------------------------------------------- data
def to_native(framework: str, device: str, array: np.ndarray) -> Any:
    if framework == "torch":
        import torch

        return torch.as_tensor(array, device="cuda" if device == "cuda" else "cpu")
    if framework == "tensorflow":
        import tensorflow as tf

        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            return tf.convert_to_tensor(array)
    import jax.numpy as jnp

    return jnp.asarray(array)


def to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)


def predict(framework: str, net: Any, x: Any) -> np.ndarray:
    """The network's predicted classes for ``x``."""
    if framework == "torch":
        import torch

        with torch.no_grad():
            logits = to_numpy(net(x))
    elif framework == "tensorflow":
        logits = to_numpy(net(x, training=False))
    else:
        logits = to_numpy(net(x))
    return np.asarray(logits.argmax(-1))


def batch_data(setup: Setup, network: str, batch: int) -> tuple[Any, Any, np.ndarray]:
    """Uniform random inputs and the network's own predictions as labels (100% clean
    accuracy): ``(x, y, x_numpy)``."""
    shape = (batch, *NETWORKS[network].input_shape)
    x_np = np.random.default_rng(SEED).uniform(0, 1, shape).astype(np.float32)
    x = to_native(setup.framework, setup.device, x_np)
    labels = predict(setup.framework, setup.net, x)
    # int64 labels match TF's argmax dtype (Foolbox compares them); JAX runs in 32 bits.
    dtype = np.int32 if setup.framework == "jax" else np.int64
    return x, to_native(setup.framework, setup.device, labels.astype(dtype)), x_np


# ------------------------------------------------------------------------------- running
def run_case(
    case: Case,
    impls: dict[str, Any],
    x: Any,
    y: Any,
    x_np: np.ndarray,
    setup: Setup,
    probe: MemoryProbe,
    log: Log = _log,
) -> list[dict[str, Any]]:
    """Warm up and time every implementation on one case; one record per implementation."""
    spec = case.attack
    records: dict[str, dict[str, Any]] = {}
    active: dict[str, Any] = {}
    for name, impl in impls.items():
        reason = unsupported(impl, spec)
        record = {
            "backend": setup.framework, "device": setup.device, "network": case.network,
            "batch": case.batch, "attack": spec.name, "impl": name,
            "steps": spec.steps, "binary_steps": spec.binary_steps,
            "epsilons": list(spec.epsilons), "times_s": [], "peak_mib": None,
            "added_mib": None,
            "memory": probe.kind, "error": reason, "note": note(impl, spec),
        }
        records[name] = record
        if reason is None:
            active[name] = impl
        else:
            log(f"    {name}: {reason}")

    def call(name: str) -> Any:
        return measure(lambda: active[name](spec, x, y), probe, setup.framework, setup.device)

    for name in list(active):
        try:
            m = call(name)
        except Exception as error:  # a peer failing must not stop the others
            records[name]["error"] = f"{type(error).__name__}: {error}"
            log(f"    {name}: failed: {records[name]['error']}")
            if os.environ.get("BENCHMARKS_TRACEBACK"):
                traceback.print_exc()
            del active[name]
            continue
        records[name]["first_call_s"] = m.seconds
        records[name].update(_quality(m.result, x_np, spec.is_minimization))
    order = list(active)
    repeat = 0
    while order and _more_repeats(repeat, case, [records[n]["times_s"] for n in order]):
        shift = repeat % len(order)
        repeat += 1
        for name in order[shift:] + order[:shift]:
            m = call(name)
            records[name]["times_s"].append(m.seconds)
            for field, value in (("peak_mib", m.peak_mib), ("added_mib", m.added_mib)):
                if value is not None:
                    records[name][field] = max(records[name][field] or 0.0, value)
    for name in order:
        records[name]["median_s"] = statistics.median(records[name]["times_s"])
    log("    " + "  ".join(
        f"{name} {records[name]['median_s']:.3f}s ({records[name]['first_call_s']:.2f}s first, "
        f"{100 * records[name]['success_mean']:.0f}% success)"
        for name in order
    ))
    return list(records.values())


def _more_repeats(done: int, case: Case, times: list[list[float]]) -> bool:
    """Whether to time another round: fewer than ``case.repeats`` rounds done, or some
    implementation still short of ``case.min_seconds`` (up to ``MAX_REPEATS`` rounds)."""
    if done < case.repeats:
        return True
    return done < MAX_REPEATS and min(sum(t) for t in times) < case.min_seconds


def _quality(outcome: Any, x_np: np.ndarray, minimization: bool) -> dict[str, Any]:
    adversarials, success = outcome
    rates = [float(r) for r in np.asarray(success, dtype=np.float64).mean(axis=1)]
    quality: dict[str, Any] = {"success": rates, "success_mean": float(np.mean(rates))}
    if minimization:
        adv = to_numpy(adversarials[0]).reshape(len(x_np), -1)
        norms = np.linalg.norm(adv - x_np.reshape(len(x_np), -1), axis=1)
        found = np.asarray(success[0], dtype=bool)
        quality["median_l2"] = float(np.median(norms[found])) if found.any() else None
    return quality


def run_backend(
    framework: str,
    device: str,
    quick: bool,
    repeats: int,
    networks: list[str] | None = None,
    attacks: list[str] | None = None,
    threads: int | None = None,
    log: Log = _log,
) -> dict[str, Any]:
    """Every case for one backend: ``{"backend", "device", "versions", "messages", "records"}``."""
    result: dict[str, Any] = {"backend": framework, "device": device, "messages": [],
                              "records": []}
    problem = device_problem(framework, device)
    if problem is not None:
        result["messages"].append(f"{framework}: skipped ({problem})")
        log(result["messages"][-1])
        return result
    configure(framework, device, threads)
    result["versions"] = versions(framework)
    result["threads"] = threads
    selected = [
        c for c in cases(quick, repeats, device)
        if (networks is None or c.network in networks)
        and (attacks is None or c.attack.name in attacks)
    ]
    groups: dict[tuple[str, int], list[Case]] = {}
    for case in selected:
        groups.setdefault((case.network, case.batch), []).append(case)
    probe = MemoryProbe(framework, device)
    result["memory"] = probe.kind
    nets: dict[str, Any] = {}
    for (network, batch), group in groups.items():
        if network not in nets:
            nets[network] = _place(framework, device, build_network(framework, network))
        setup = Setup(framework, device, nets[network])
        impls, skipped = implementations(setup, network)
        for message in skipped:
            if f"{framework}: {message}" not in result["messages"]:
                result["messages"].append(f"{framework}: {message}")
                log(result["messages"][-1])
        x, y, x_np = batch_data(setup, network, batch)
        for case in group:
            log(f"[{framework}/{device}] {case.key}")
            result["records"] += run_case(case, impls, x, y, x_np, setup, probe, log)
    return result


def _place(framework: str, device: str, net: Any) -> Any:
    if framework == "torch" and device == "cuda":
        return net.to("cuda")
    return net


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", required=True, choices=sorted(FRAMEWORK_MODULES))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per framework")
    parser.add_argument("--networks", default=None, help="comma-separated subset")
    parser.add_argument("--attacks", default=None, help="comma-separated subset")
    parser.add_argument("--out", required=True, help="where to write this backend's JSON")
    args = parser.parse_args(argv)
    result = run_backend(
        args.backend, args.device, args.quick, args.repeats,
        args.networks.split(",") if args.networks else None,
        args.attacks.split(",") if args.attacks else None,
        args.threads,
    )
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
