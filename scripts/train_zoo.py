"""Build advlib's model zoo: the 8x8 digits data and two small CNNs, from one seed.

Writes into ``advlib/zoo/data/``:

- ``digits.npz``: scikit-learn's bundled 8x8 digits, split 80/20 per class, pixel values kept
  as the original integers 0..16 (uint8) so the file stays small; ``advlib.zoo.digits`` scales
  them to float32 in [0, 1].
- ``digits_cnn.npz``: a CNN (two 3x3 convolutions, two dense layers) trained on clean inputs.
- ``digits_cnn_robust.npz``: the same network trained adversarially (Madry et al., 2018): each
  batch is replaced by advlib's own ``LinfPGD`` adversarials against the current weights.
- ``digits_mlp.npz``: a second architecture on the same data, an MLP (one hidden layer of 128
  units), trained on clean inputs: the target of transfer attacks from the CNN.

Needs scikit-learn (for the data only) and PyTorch (CPU). Runs in about a minute on 2 cores:

    python scripts/train_zoo.py [--seed 0] [--out advlib/zoo/data] [--only digits_mlp ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import advlib
import advlib.zoo
from advlib.zoo.architectures import build, cnn_layers

LAYERS = cnn_layers(2, 2)
MLP_LAYERS = cnn_layers(0, 2)
CONV_CHANNELS = (8, 16)
HIDDEN = 32
MLP_HIDDEN = 128
CLASSES = 10
TEST_FRACTION = 0.2


def split_digits(seed: int) -> dict[str, np.ndarray]:
    """The digits data as uint8 images 0..16, split per class into train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # (N, 8, 8), integer grey levels 0..16
    labels = digits.target.astype(np.uint8)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(TEST_FRACTION * len(members))]] = True
    train_order = rng.permutation(np.flatnonzero(~test))
    test_order = np.flatnonzero(test)
    return {
        "x_train": images[train_order],
        "y_train": labels[train_order],
        "x_test": images[test_order],
        "y_test": labels[test_order],
    }


def as_float(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(images[:, None].astype(np.float32) / 16.0)


def initial_weights(seed: int, mlp: bool = False) -> dict[str, np.ndarray]:
    """He-initialised weights in the zoo's layout (conv OIHW, dense (in, out)): the CNN's, or
    the MLP's with ``mlp``."""
    rng = np.random.default_rng(seed)

    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)

    if mlp:
        return {
            "fc1.w": he((64, MLP_HIDDEN), 64),
            "fc1.b": np.zeros(MLP_HIDDEN, np.float32),
            "fc2.w": he((MLP_HIDDEN, CLASSES), MLP_HIDDEN) / 4,
            "fc2.b": np.zeros(CLASSES, np.float32),
        }
    c1, c2 = CONV_CHANNELS
    return {
        "conv1.w": he((c1, 1, 3, 3), 9),
        "conv1.b": np.zeros(c1, np.float32),
        "conv2.w": he((c2, c1, 3, 3), 9 * c1),
        "conv2.b": np.zeros(c2, np.float32),
        "fc1.w": he((c2 * 64, HIDDEN), c2 * 64),
        "fc1.b": np.zeros(HIDDEN, np.float32),
        "fc2.w": he((HIDDEN, CLASSES), HIDDEN) / 4,
        "fc2.b": np.zeros(CLASSES, np.float32),
    }


def export(net: torch.nn.Sequential, layers: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    """The torch network's parameters back in the zoo's layout."""
    weights: dict[str, np.ndarray] = {}
    names = [layer[1] for layer in layers if layer[0] in ("conv", "dense")]
    modules = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    for name, module in zip(names, modules, strict=True):
        w = module.weight.detach().numpy()
        weights[f"{name}.w"] = (w if isinstance(module, torch.nn.Conv2d) else w.T).copy()
        weights[f"{name}.b"] = module.bias.detach().numpy().copy()
    return weights


def train(
    data: dict[str, np.ndarray],
    seed: int,
    epochs: int,
    adversarial_eps: float | None,
    pgd_steps: int,
    mlp: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    torch.manual_seed(seed)
    layers = MLP_LAYERS if mlp else LAYERS
    net = build("torch", layers, initial_weights(seed, mlp), (1, 8, 8))
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    x_train, y_train = as_float(data["x_train"]), torch.as_tensor(data["y_train"].astype(np.int64))
    wrapped = advlib.PyTorchModel(net, bounds=(0, 1))
    rng = np.random.default_rng(seed)
    batch = 64
    for epoch in range(epochs):
        order = torch.as_tensor(rng.permutation(len(y_train)))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            x, y = x_train[idx], y_train[idx]
            if adversarial_eps is not None:
                # A fresh seed per batch, so the random starts differ from batch to batch.
                pgd = advlib.attacks.LinfPGD(
                    steps=pgd_steps, rel_stepsize=2.5 / pgd_steps, seed=epoch * 10_000 + start
                )
                net.eval()
                x = pgd(wrapped, x, y, epsilons=adversarial_eps).clipped
            net.train()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    net.eval()
    x_test, y_test = as_float(data["x_test"]), data["y_test"].astype(np.int64)
    with torch.no_grad():
        test_accuracy = float((net(x_test).argmax(1).numpy() == y_test).mean())
    info: dict[str, Any] = {
        "seed": seed,
        "epochs": epochs,
        "optimizer": "Adam(lr=2e-3), cosine schedule, batch 64",
        "clean_test_accuracy": round(test_accuracy, 4),
    }
    if adversarial_eps is not None:
        info["adversarial_training"] = {
            "attack": "advlib.attacks.LinfPGD",
            "epsilon": adversarial_eps,
            "steps": pgd_steps,
            "rel_stepsize": 2.5 / pgd_steps,
        }
        pgd = advlib.attacks.LinfPGD(seed=seed)
        success = pgd(wrapped, x_test, y_test, epsilons=adversarial_eps).success.numpy()
        info["pgd40_test_accuracy"] = round(float(1 - success.mean()), 4)
    return export(net, layers), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(advlib.zoo.__file__).parent / "data")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--robust-epochs", type=int, default=30)
    parser.add_argument("--eps", type=float, default=0.1, help="Linf budget of PGD training")
    parser.add_argument("--pgd-steps", type=int, default=7)
    parser.add_argument(
        "--only", nargs="+", help="write only these files (names without .npz); default all"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # 2 threads on 2 busy cores ran 20x slower
    torch.use_deterministic_algorithms(True)

    args.out.mkdir(parents=True, exist_ok=True)
    if args.only is None or "digits" in args.only:
        data = split_digits(args.seed)
        np.savez_compressed(args.out / "digits.npz", **data)
    else:  # the split already written (from the same seed): no scikit-learn needed
        with np.load(args.out / "digits.npz") as archive:
            data = {key: archive[key] for key in archive.files}
    runs = [
        ("digits_cnn", args.epochs, None, False),
        ("digits_cnn_robust", args.robust_epochs, args.eps, False),
        ("digits_mlp", args.epochs, None, True),
    ]
    for name, epochs, eps, mlp in runs:
        if args.only is not None and name not in args.only:
            continue
        start = time.perf_counter()
        weights, info = train(data, args.seed, epochs, eps, args.pgd_steps, mlp)
        if mlp:
            info["architecture"] = f"MLP 64-{MLP_HIDDEN}-{CLASSES}, ReLU"
        info["training_seconds"] = round(time.perf_counter() - start, 1)
        np.savez_compressed(args.out / f"{name}.npz", **weights, meta=np.array(json.dumps(info)))
        print(name, json.dumps(info))


if __name__ == "__main__":
    main()
