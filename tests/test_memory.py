"""Bounded memory: attacking 20,000 inputs in chunks of 512 peaks like attacking one chunk."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, resource, sys
import numpy as np
import torch
import advlib

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

torch.manual_seed(0)
torch.set_num_threads(1)
layers = [torch.nn.Linear(20, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10)]
net = torch.nn.Sequential(*layers).eval()
model = advlib.PyTorchModel(net, bounds=(0, 1))
n = int(sys.argv[1])
x = np.random.default_rng(0).uniform(0, 1, (n, 20)).astype(np.float32)
y = np.zeros(n, dtype=np.int64)
attack = advlib.attacks.LinfPGD(steps=2, seed=0)
attack(model, x[:2], y[:2], epsilons=0.1)  # warm-up: imports and allocator
base = rss_mb()
attack(model, x, y, epsilons=0.1, batch_size=512)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"increase_mb": peak - base}))
"""


def _peak_increase(n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(n)], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["increase_mb"])


@pytest.mark.torch
def test_chunked_attack_memory_is_bounded_by_one_chunk() -> None:
    pytest.importorskip("torch")
    one_chunk = _peak_increase(512)
    many_chunks = _peak_increase(20_000)
    # One chunk's activations are 512 x 4096 floats (8 MiB per layer); all 20,000 inputs at
    # once would need 40x that. The results themselves (2 x 20,000 x 20 floats) are 3 MiB.
    assert one_chunk > 4, "the measurement should see the chunk's activations"
    assert many_chunks <= 2 * one_chunk + 4, (one_chunk, many_chunks)
