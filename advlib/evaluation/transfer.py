"""Transfer evaluation: attack a surrogate model, count how often its adversarials fool a target.

>>> report = transfer(surrogate, target, {"MI": LinfMomentumIterativeAttack()}, (x, y),
...                   epsilons=[0.1, 0.2])                                  # doctest: +SKIP
>>> report.rates["MI"]       # per epsilon, the fraction of samples that fool the target
>>> print(report)            # a table

Only samples that both models classify correctly count, so a rate measures the attack, not
the target's clean errors. The two models may be of different frameworks: inputs and
adversarials pass between them as NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..attacks.base import Attack, check_model, parse_epsilons
from ..models.base import Model
from .data import is_pair, to_numpy


@dataclass(frozen=True)
class TransferReport:
    """What :func:`transfer` measured.

    Attributes:
        epsilons: the budgets, in the order of every list below.
        rates: per attack name, per epsilon, the fraction of the counted samples whose
            adversarial (found on the surrogate, clipped to the epsilon) fools the target.
        white_box: per attack name, per epsilon, the fraction that fools the surrogate.
        counted: how many samples both models classify correctly (the denominator).
        total: how many samples were given.
    """

    epsilons: tuple[float, ...]
    rates: Mapping[str, tuple[float, ...]]
    white_box: Mapping[str, tuple[float, ...]]
    counted: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "epsilons": list(self.epsilons),
            "rates": {k: list(v) for k, v in self.rates.items()},
            "white_box": {k: list(v) for k, v in self.white_box.items()},
            "counted": self.counted,
            "total": self.total,
        }

    def __str__(self) -> str:
        width = max([6, *(len(name) for name in self.rates)])
        head = " ".join(f"eps={e:<7g}" for e in self.epsilons)
        lines = [
            f"transfer success rate ({self.counted} of {self.total} samples correct on both "
            "models; white-box rate on the surrogate in brackets)",
            f"{'attack':<{width}} {head}",
        ]
        for name, rates in self.rates.items():
            cells = (f"{r:.3f} [{w:.2f}]" for r, w in zip(rates, self.white_box[name]))
            lines.append(f"{name:<{width}} " + " ".join(f"{c:<11}" for c in cells))
        return "\n".join(lines)


def transfer(
    surrogate: Model,
    target: Model,
    attacks: Mapping[str, Attack] | Sequence[Attack],
    data: tuple[Any, Any],
    epsilons: float | Sequence[float],
    *,
    batch_size: int | None = None,
) -> TransferReport:
    """Attack ``surrogate`` and measure how often the adversarials fool ``target``.

    Args:
        surrogate: the advlib model the attacks see (gradients for gradient attacks).
        target: the advlib model the adversarials are tested on; never queried by the attacks.
        attacks: attacks by name, or a sequence of attacks (named by their class).
        data: ``(inputs, labels)``, arrays or tensors of any framework, shape (N, ...) and (N,).
        epsilons: a budget in each attack's norm, or a list of them.
        batch_size: attack at most this many samples at a time (default None: all at once).

    Returns:
        A :class:`TransferReport`: per attack and epsilon, the transfer success rate among the
        samples both models classify correctly, and the white-box rate on the surrogate.
    """
    check_model(surrogate, "surrogate")
    check_model(target, "target")
    named = _named(attacks)
    eps, _ = parse_epsilons(epsilons, False, "transfer")
    if not is_pair(data):
        raise TypeError(
            f"data: expected a pair (inputs, labels) of arrays or tensors, got "
            f"{type(data).__name__}; concatenate the batches of a loader first"
        )
    x, y = to_numpy(data[0], "data[0] (inputs)"), to_numpy(data[1], "data[1] (labels)")
    if len(x) != len(y):
        raise ValueError(f"data: {len(x)} inputs but {len(y)} labels; expected one label each")
    correct = (_predict(surrogate, x) == y) & (_predict(target, x) == y)
    x, y = x[correct], y[correct]
    rates, white = {}, {}
    for name, attack in named.items():
        rates[name], white[name] = _rates(attack, surrogate, target, (x, y), eps, batch_size)
    budgets = tuple(float(e) for e in eps if e is not None)
    return TransferReport(budgets, rates, white, int(correct.sum()), len(correct))


def _rates(
    attack: Attack,
    surrogate: Model,
    target: Model,
    data: tuple[np.ndarray, np.ndarray],
    eps: list[float | None],
    batch_size: int | None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x, y = data
    if len(x) == 0:
        nothing = tuple(float("nan") for _ in eps)
        return nothing, nothing
    result = attack(surrogate, x, y, epsilons=eps, batch_size=batch_size)
    fooled = [np.mean(_predict(target, np.asarray(c)) != y) for c in result.clipped]
    white = np.asarray(to_numpy(result.success, "success")).mean(axis=1)
    return tuple(float(f) for f in fooled), tuple(float(w) for w in white)


def _predict(model: Model, x: np.ndarray) -> np.ndarray:
    tensor, _ = model.to_tensor(x, "inputs", floating=True)
    return np.asarray(to_numpy(model(tensor).argmax(axis=-1), "logits"))


def _named(attacks: Mapping[str, Attack] | Sequence[Attack]) -> dict[str, Attack]:
    if isinstance(attacks, Mapping):
        named = dict(attacks)
    elif isinstance(attacks, Sequence) and not isinstance(attacks, str):
        named = {type(a).__name__: a for a in attacks}
        if len(named) != len(attacks):
            raise ValueError(
                "attacks: two attacks of one class; pass a dict {name: attack} to name them"
            )
    else:
        raise TypeError(f"attacks: expected a dict or a list of attacks, got {attacks!r}")
    for name, attack in named.items():
        if not isinstance(attack, Attack):
            raise TypeError(f"attacks[{name!r}]: expected an advlib attack, got {attack!r}")
    if not named:
        raise ValueError("attacks: expected at least one attack, got none")
    return named
