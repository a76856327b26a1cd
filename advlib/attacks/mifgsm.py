"""Momentum iterative fast gradient methods (Dong et al., 2018).

Two update rules:

- Foolbox's ``L1/L2/LinfMomentumIterativeFastGradientMethod`` (``MIFGSM`` is the Linf one):
  the accumulator is ``momentum * accumulator + normalize(gradient)``, with the norm's own
  normalisation (L1 or L2 norm 1, the sign for Linf), and each step is the accumulator
  normalised again. Defaults ``momentum=1.0``, ``rel_stepsize=0.2``, ``steps=10``.
- advlib's :class:`LinfMomentumIterativeAttack`, the paper's rule: the accumulator adds the
  L1-normalised gradient, ``decay * accumulator + gradient / mean|gradient|``, and each step is
  its sign. Defaults ``decay=1.0``, ``rel_stepsize=0.1`` (epsilon / steps), ``steps=10``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import eagerpy as ep

from .._tensors import atleast_kd, flat_batch
from ..norms import l1, l2, linf
from .gradient_descent import GradientDescentAttack, State, family_constructor


class _MomentumIterative(GradientDescentAttack):
    """Gradient steps along an accumulated gradient; ``_mu`` weighs the past."""

    @property
    @abstractmethod
    def _mu(self) -> float:
        """The weight of the accumulated past gradients."""

    def _initial_state(self, inputs: ep.Tensor) -> State:
        return (ep.zeros_like(inputs),)

    def _direction(self, grad: ep.Tensor, state: State) -> tuple[ep.Tensor, State]:
        accumulated = self._mu * state[0] + self._scaled(grad)
        return accumulated, (accumulated,)  # the norm's step normalizes it

    def _scaled(self, grad: ep.Tensor) -> ep.Tensor:
        """The gradient as it enters the accumulator (Foolbox: normalised in the norm)."""
        return self.norm.normalize(grad)


class _MomentumIterativeFastGradientMethod(_MomentumIterative):
    """Foolbox's MI-FGM in ``self.norm``; see the module documentation.

    Args:
        momentum: weight of the accumulated past gradients (default 1.0).
        rel_stepsize: step size relative to epsilon (default 0.2).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        random_start: start from a random point of the ball (default False).
        decay: another name for ``momentum`` (advlib's earlier ``MIFGSM`` argument); default
            None: use ``momentum``.
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    __init__ = family_constructor(
        rel_stepsize=0.2, steps=10, random_start=False, momentum=1.0, decay=None
    )

    def _configure(self, **arguments: Any) -> None:
        momentum, decay = arguments.pop("momentum"), arguments.pop("decay")
        super()._configure(**arguments)
        if decay is not None and momentum != 1.0 and decay != momentum:
            raise ValueError(
                f"decay: another name for momentum; got momentum={momentum!r} and "
                f"decay={decay!r}, pass only one of them"
            )
        if decay is None:
            self.momentum = _weight(momentum, "momentum")
        else:
            self.momentum = _weight(decay, "decay")

    @property
    def _mu(self) -> float:
        return self.momentum


class L1MomentumIterativeFastGradientMethod(_MomentumIterativeFastGradientMethod):
    """Foolbox's MI-FGM in L1: the accumulator of L1-normalised gradients, L1-normalised."""

    norm = l1


class L2MomentumIterativeFastGradientMethod(_MomentumIterativeFastGradientMethod):
    """Foolbox's MI-FGM in L2: the accumulator of L2-normalised gradients, L2-normalised."""

    norm = l2


class LinfMomentumIterativeFastGradientMethod(_MomentumIterativeFastGradientMethod):
    """Foolbox's MI-FGSM (``MIFGSM``): sign steps along the accumulated gradient signs."""

    norm = linf


class LinfMomentumIterativeAttack(_MomentumIterative):
    """MI-FGSM as in the paper: sign steps along an accumulated, L1-normalised gradient.

    Args:
        rel_stepsize: step size relative to epsilon (default 0.1, i.e. epsilon / steps).
        abs_stepsize: step size in input units, overrides ``rel_stepsize`` (default None).
        steps: number of steps (default 10).
        decay: momentum decay factor mu (default 1.0, as in the paper).
        random_start: start from a random point of the ball (default False).
        seed: seed of the random start; None draws fresh randomness on every call.
    """

    norm = linf

    __init__ = family_constructor(rel_stepsize=0.1, steps=10, random_start=False, decay=1.0)

    def _configure(self, **arguments: Any) -> None:
        decay = arguments.pop("decay")
        super()._configure(**arguments)
        self.decay = _weight(decay, "decay")

    @property
    def _mu(self) -> float:
        return self.decay

    def _scaled(self, grad: ep.Tensor) -> ep.Tensor:
        scale = flat_batch(grad).abs().mean(axis=-1)
        return grad / atleast_kd(scale + 1e-12, grad.ndim)


def _weight(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


MIFGSM = LinfMomentumIterativeFastGradientMethod
