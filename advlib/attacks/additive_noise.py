"""Additive random noise of a fixed size: Foolbox's ten noise attacks, one family.

Each attack draws noise per sample (Gaussian or uniform in [-1, 1], the distribution hook),
scales it to the budget (the norm hook) and clips it into the bounds:

- L2: scaled to L2 norm epsilon before clipping;
- L2 clipping-aware: scaled so that the L2 norm after clipping is epsilon, or the largest
  reachable (Rauber & Bethge, 2020);
- Linf: scaled to Linf norm epsilon (largest absolute value; Foolbox divides by the signed
  maximum, which can leave values beyond epsilon).

The ``Repeated`` variants draw up to ``repeats`` times and keep each sample's first draw that
is adversarial; samples never fooled are returned unchanged, and with ``check_trivial`` samples
already adversarial are too.
"""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np

from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name, flat_batch
from ..criteria import Criterion
from ..models.base import Model
from ..norms import l2, linf
from ._minimization import check_bool, check_int, check_seed
from ._signatures import keyword_constructor
from .base import FixedEpsilonAttack
from .inversion import keep_first

# Guards the divisions by a squared noise value (as Rauber & Bethge).
_TINY = 1e-20


def clipping_aware_scale(
    x: ep.Tensor, delta: ep.Tensor, eps: float, bounds: tuple[float, float]
) -> ep.Tensor:
    """Per sample (shape (N, 1, ...)), the ``eta`` with
    ``||clip(x + eta * delta, bounds) - x||_2 == eps``, or the one maximising the left side
    when ``eps`` is out of reach (Rauber & Bethge, 2020).

    The squared norm after clipping is piecewise linear in ``eta ** 2``: coordinate ``i``
    grows as ``eta ** 2 * delta_i ** 2`` until it hits its bound at ``eta ** 2 = f_i``.
    Sorting the ``f_i`` gives the pieces; the solution lies on the first piece whose end
    reaches ``eps ** 2``."""
    lower, upper = bounds
    d2 = flat_batch(delta.square())
    room = flat_batch(ep.where(delta >= 0, upper - x, x - lower))
    f2 = room.square() / ep.maximum(d2, _TINY)
    order = f2.argsort(axis=-1)
    f2 = ep.take_along_axis(f2, order, axis=-1)
    # slope[j]: the squared values of the coordinates still growing on piece j
    slope = ep.cumsum(ep.take_along_axis(d2, order, axis=-1).flip(axis=-1), axis=-1).flip(axis=-1)
    widths = ep.concatenate([f2[:, :1], f2[:, 1:] - f2[:, :-1]], axis=-1)
    reached = ep.cumsum(slope * widths, axis=-1)  # the squared norm at the end of each piece
    enough = reached >= eps**2
    # enough is monotone along a row: the first piece that reaches eps follows all that do not
    size = f2.shape[-1]
    piece = ep.minimum((1 - enough.astype(f2.dtype)).sum(axis=-1), size - 1).astype(order.dtype)
    at = piece[:, None]
    end, total, rate = (ep.take_along_axis(t, at, axis=-1)[:, 0] for t in (f2, reached, slope))
    eta2 = end - (total - eps**2) / ep.maximum(rate, _TINY)
    eta2 = ep.where(enough[:, -1], eta2, f2[:, -1])
    return atleast_kd(ep.maximum(eta2, 0.0).sqrt(), x.ndim)


class _AdditiveNoise(FixedEpsilonAttack):
    """The family's hooks: :meth:`_noise` draws the direction, :meth:`_scale` sizes it."""

    requires_grad = False

    def _noise(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError  # set by the distribution mixins

    def _scale(
        self, x: ep.Tensor, noise: ep.Tensor, epsilon: float, bounds: tuple[float, float]
    ) -> ep.Tensor:
        """The factor per sample that gives ``noise`` the size ``epsilon`` in the attack's
        norm (before clipping to ``bounds``)."""
        return atleast_kd(epsilon / ep.maximum(self.norm(noise), _TINY), x.ndim)

    def _draw(self, model: Model, x: ep.Tensor, epsilon: float, rng: SampleRandom) -> ep.Tensor:
        """One noisy copy of ``x`` of size ``epsilon``, within the bounds."""
        noise = ep.from_numpy(x, self._noise(rng, tuple(x.shape)).astype(dtype_name(x)))
        bounds = model.bounds
        perturbed: ep.Tensor = x + self._scale(x, noise, epsilon, bounds) * noise
        return perturbed.clip(*bounds)


class _Gaussian(_AdditiveNoise):
    def _noise(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(size=shape)


class _Uniform(_AdditiveNoise):
    def _noise(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=shape)


class _L2(_AdditiveNoise):
    norm = l2


class _L2ClippingAware(_AdditiveNoise):
    norm = l2

    def _scale(
        self, x: ep.Tensor, noise: ep.Tensor, epsilon: float, bounds: tuple[float, float]
    ) -> ep.Tensor:
        return clipping_aware_scale(x, noise, epsilon, bounds)


class _Linf(_AdditiveNoise):
    norm = linf


class _Once(_AdditiveNoise):
    """One draw per sample.

    Args:
        seed: seed of the noise; default None draws fresh noise on every call.
    """

    __init__ = keyword_constructor(seed=None)

    def _configure(self, *, seed: Any) -> None:
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        return self._draw(model, inputs, epsilon, self._generator())


class _Repeated(_AdditiveNoise):
    """Up to ``repeats`` draws per sample; the first adversarial one is kept.

    Args:
        repeats: how many draws at most (default 100).
        check_trivial: leave samples that are adversarial already unchanged (default True).
        seed: seed of the noise; default None draws fresh noise on every call.
    """

    __init__ = keyword_constructor(repeats=100, check_trivial=True, seed=None)

    def _configure(self, *, repeats: Any, check_trivial: Any, seed: Any) -> None:
        self.repeats = check_int(repeats, "repeats")
        self.check_trivial = check_bool(check_trivial, "check_trivial")
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        rng = self._generator()
        found = None if self.check_trivial else ep.zeros(inputs, inputs.shape[0]) > 0
        return keep_first(
            model, criterion, inputs, self.repeats,
            lambda _: self._draw(model, inputs, epsilon, rng), found,
        )  # fmt: skip


class L2AdditiveGaussianNoiseAttack(_L2, _Gaussian, _Once):
    """Gaussian noise of L2 norm epsilon (before clipping to the bounds)."""


class L2AdditiveUniformNoiseAttack(_L2, _Uniform, _Once):
    """Uniform noise of L2 norm epsilon (before clipping to the bounds)."""


class L2ClippingAwareAdditiveGaussianNoiseAttack(_L2ClippingAware, _Gaussian, _Once):
    """Gaussian noise of L2 norm epsilon after clipping to the bounds (Rauber & Bethge,
    2020)."""


class L2ClippingAwareAdditiveUniformNoiseAttack(_L2ClippingAware, _Uniform, _Once):
    """Uniform noise of L2 norm epsilon after clipping to the bounds (Rauber & Bethge,
    2020)."""


class LinfAdditiveUniformNoiseAttack(_Linf, _Uniform, _Once):
    """Uniform noise of Linf norm epsilon."""


class L2RepeatedAdditiveGaussianNoiseAttack(_L2, _Gaussian, _Repeated):
    """Repeated Gaussian noise of L2 norm epsilon; the first adversarial draw is kept."""


class L2RepeatedAdditiveUniformNoiseAttack(_L2, _Uniform, _Repeated):
    """Repeated uniform noise of L2 norm epsilon; the first adversarial draw is kept."""


class L2ClippingAwareRepeatedAdditiveGaussianNoiseAttack(_L2ClippingAware, _Gaussian, _Repeated):
    """Repeated Gaussian noise of L2 norm epsilon after clipping; the first adversarial draw
    is kept."""


class L2ClippingAwareRepeatedAdditiveUniformNoiseAttack(_L2ClippingAware, _Uniform, _Repeated):
    """Repeated uniform noise of L2 norm epsilon after clipping; the first adversarial draw
    is kept."""


class LinfRepeatedAdditiveUniformNoiseAttack(_Linf, _Uniform, _Repeated):
    """Repeated uniform noise of Linf norm epsilon; the first adversarial draw is kept."""
