"""ARCHITECTURE.md's worked example "add an attack" runs as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import cnn_model, to_numpy

from advlib.attacks.base import ATTACKS

DOC = Path(__file__).resolve().parents[1] / "ARCHITECTURE.md"


@pytest.fixture
def example_attack() -> Iterator[type]:
    """The example's class, defined from the document's first code block and unregistered
    afterwards (the contract suite requires an entry for every registered attack)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    cls = namespace["LinfSignedSteps"]
    assert isinstance(cls, type)
    yield cls
    ATTACKS.pop("LinfSignedSteps", None)


def test_add_an_attack_example_runs_within_the_contract(backend: str, example_attack: type) -> None:
    model = cnn_model(backend)
    x = np.random.default_rng(0).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)
    y = to_numpy(model(x)).argmax(-1)
    assert "LinfSignedSteps" in ATTACKS
    _, clipped, success = example_attack(steps=5)(model, x, y, epsilons=[0.05, 0.3])
    for eps, c, s in zip([0.05, 0.3], clipped, to_numpy(success)):
        c = to_numpy(c)
        assert np.abs(c - x).max() <= eps + 1e-6 and c.min() >= 0 and c.max() <= 1
        np.testing.assert_array_equal(s, to_numpy(model(c)).argmax(-1) != y)
    assert to_numpy(success)[1].mean() >= to_numpy(success)[0].mean()
