"""``python -m benchmarks.sparse``: Brendel-Bethge (L2, L0) and Sparse-RS, advlib vs Foolbox.

The zoo's digits CNN on ``--samples`` test digits. Every Brendel-Bethge run starts from the same
starting points (per sample the first of 200 seeded uniform-noise images that the network
misclassifies) with Foolbox's defaults (1000 steps) and Foolbox 3's trust region for the batch
(advlib's ``lr`` is per sample: ``lr = 1e-3 * N`` is Foolbox 3's radius for a batch of N).
Both libraries run on every framework given by ``--frameworks``, each on its own wrapper of the
same network (Foolbox's Brendel-Bethge solvers run in numba on the host whatever the
framework). Foolbox's first call compiles its numba solvers: a warm-up call on two samples
comes first and is not timed. Sizes are compared with Foolbox's on the first framework.

Sparse-RS (black-box, L0 in pixels) has no Foolbox counterpart: the table gives its success
within k pixels and the median number of queries to success (queries are forward passes per
sample), next to Foolbox's black-box L0 attack, ``PointwiseAttack`` (from salt-and-pepper
starts), whose success is read at the same k.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
from typing import Any

import numpy as np

BB = ("L2BrendelBethgeAttack", "L0BrendelBethgeAttack")


def starts(x: np.ndarray, y: np.ndarray, predict: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per sample the first of 200 seeded uniform-noise images the network misclassifies."""
    rng = np.random.default_rng(0)
    points, found = x.copy(), predict(x) != y
    for _ in range(200):
        noise = rng.uniform(0, 1, x.shape).astype(np.float32)
        new = (predict(noise) != y) & ~found
        points[new], found = noise[new], found | new
    return points, found


def sizes(name: str, x: np.ndarray, adv: np.ndarray) -> np.ndarray:
    delta = (adv - x).reshape(len(x), -1)
    if name.startswith("L0"):
        return (delta != 0).sum(axis=1).astype(float)
    return np.linalg.norm(delta, axis=1)


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def brendel_bethge(n: int, frameworks: list[str]) -> list[dict[str, Any]]:
    import foolbox as fb
    import torch

    import advlib

    x, y = advlib.zoo.digits("test")
    net = advlib.zoo.digits_cnn_network("torch").eval()

    def predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(net(torch.from_numpy(a)).argmax(-1))

    x, y = x[:n], y[:n]
    points, found = starts(x, y, predict)
    x, y, points = x[found], y[found], points[found]
    rows = []
    for name in BB:
        reference = None
        for framework in frameworks:
            native = advlib.zoo.digits_cnn_network(framework)
            fmodel = _foolbox_model(fb, framework, native)
            tx, ty, tp = (_native(framework, a) for a in (x, y, points))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                getattr(fb.attacks, name)(steps=2).run(
                    fmodel, tx[:2], ty[:2], starting_points=tp[:2]
                )
                theirs_attack = getattr(fb.attacks, name)()
                seconds, theirs = timed(
                    functools.partial(theirs_attack.run, fmodel, tx, ty, starting_points=tp)
                )
            theirs = np.asarray(theirs)
            model = advlib.zoo.digits_cnn(framework)
            their_sizes = sizes(name, x, theirs)
            if reference is None:
                reference = their_sizes
            fooled = np.asarray(model(theirs)).argmax(-1) != y
            rows.append(_row(name, f"foolbox ({framework})", seconds, fooled, their_sizes))
            attack = getattr(advlib.attacks, name)(lr=1e-3 * len(x))
            seconds, ours = timed(
                functools.partial(attack.run, model, x, y, starting_points=points)
            )
            ours = np.asarray(ours)
            # Judged by the framework's own model: the points lie on the boundary, where
            # frameworks' float32 logits may disagree.
            fooled = np.asarray(model(ours)).argmax(-1) != y
            row = _row(name, f"advlib ({framework})", seconds, fooled,
                       sizes(name, x, ours))  # fmt: skip
            row["median vs foolbox"] = row["median"] / float(np.median(reference))
            rows.append(row)
    return rows


def _foolbox_model(fb: Any, framework: str, native: Any) -> Any:
    """Foolbox's wrapper of the zoo's native network for ``framework``."""
    wrappers = {"torch": fb.PyTorchModel, "tensorflow": fb.TensorFlowModel, "jax": fb.JAXModel}
    return wrappers[framework](native, bounds=(0, 1))


def _native(framework: str, array: np.ndarray) -> Any:
    """``array`` as a tensor of ``framework`` (on its default device)."""
    if framework == "torch":
        import torch

        return torch.from_numpy(array)
    if framework == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    import jax.numpy as jnp

    return jnp.asarray(array)


def _row(name: str, impl: str, seconds: float, success: np.ndarray, size: np.ndarray) -> dict:
    return {
        "attack": name,
        "implementation": impl,
        "seconds": seconds,
        "success": float(success.mean()),
        "median": float(np.median(size[success])),
    }


def sparse_rs(n: int, ks: tuple[int, ...], queries: int) -> list[dict[str, Any]]:
    import foolbox as fb
    import torch

    import advlib

    x, y = advlib.zoo.digits("test")
    x, y = x[:n], y[:n]
    model = advlib.zoo.digits_cnn("torch")
    counting = advlib.evaluation.counting.CountingModel(model)
    rows = []
    for k in ks:
        attack = advlib.attacks.SparseRSAttack(n_queries=queries, seed=0)
        before = counting.calls.copy()
        seconds, result = timed(functools.partial(attack, counting, x, y, epsilons=float(k)))
        calls = counting.calls.minus(before)
        rows.append({
            "attack": "SparseRSAttack", "k": k, "seconds": seconds,
            "success": float(np.asarray(result.success).mean()),
            "forward calls (batched)": calls.forward,
        })  # fmt: skip
    net = advlib.zoo.digits_cnn_network("torch").eval()
    fmodel = fb.PyTorchModel(net, bounds=(0, 1))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, adv = timed(lambda: fb.attacks.PointwiseAttack().run(fmodel, tx, ty))
    adv = adv.numpy()
    pixels = ((adv - x) != 0).reshape(len(x), -1).sum(axis=1)
    fooled = np.asarray(net(torch.from_numpy(adv)).argmax(-1) != ty)
    for k in ks:
        rows.append({"attack": "foolbox PointwiseAttack", "k": k, "seconds": seconds,
                     "success": float((fooled & (pixels <= k)).mean())})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--frameworks", default="torch,tensorflow,jax")
    parser.add_argument("--queries", type=int, default=1000, help="Sparse-RS queries")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for row in brendel_bethge(args.samples, args.frameworks.split(",")):
        print(row)
    for row in sparse_rs(args.samples, (1, 2, 4, 8), args.queries):
        print(row)


if __name__ == "__main__":
    main()
