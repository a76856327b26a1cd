"""Lp norms over a batch and the per-norm operations attacks share.

Each :class:`Norm` measures perturbations per sample, projects them onto an epsilon ball,
gives the unit-norm steepest-ascent direction of a gradient, and draws uniform samples from
the unit ball. Epsilons may be Python floats, 0-d tensors, or per-sample tensors of shape (N,).

L0 counts changed elements (:data:`l0`, as Foolbox) or changed pixels
(:class:`L0PixelNorm`, given the channel axis); its epsilons are counts (``floor(eps)``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import eagerpy as ep
import numpy as np

from ._random import SampleRandom
from ._tensors import atleast_kd, clip_between, dtype_name, flat_batch, l2_rows, unflat_batch

Epsilon = float | ep.Tensor

_TINY = 1e-12


def _per_sample(eps: Epsilon, like: ep.Tensor) -> Epsilon:
    """Broadcast a per-sample epsilon of shape (N,) against ``like``."""
    if isinstance(eps, ep.Tensor) and eps.ndim == 1:
        return atleast_kd(eps, like.ndim)
    return eps


class Norm(ABC):
    """One Lp norm: its name, ``p``, and the hooks of the gradient-descent family."""

    name: str
    p: float
    #: The name of the dual norm (see :attr:`dual`).
    dual_name: str

    def __repr__(self) -> str:
        return self.name

    @abstractmethod
    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        """Per-sample norm of a batch of perturbations, shape (N,)."""

    @abstractmethod
    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        """The perturbation moved into the ``eps`` ball (the identity inside it)."""

    def normalize(self, grad: ep.Tensor) -> ep.Tensor:
        """A steepest-ascent direction of norm 1 for ``grad`` (zero gradients stay zero); by
        default ``grad`` divided by its norm."""
        return grad / atleast_kd(self(grad) + _TINY, grad.ndim)

    @abstractmethod
    def sample_unit_ball(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        """Points drawn uniformly from the unit ball, one per sample, as float64."""

    def largest(self, width: float, size: int) -> float:
        """The largest norm of a perturbation of ``size`` elements each at most ``width`` in
        magnitude (e.g. the width of the bounds): ``width * size ** (1 / p)``."""
        return float(width * size ** (1.0 / self.p))

    @property
    def dual(self) -> Norm:
        """The dual norm: the distance from a point to a hyperplane with normal ``w`` and
        offset ``b`` in this norm is ``|b| / dual(w)``."""
        return NORMS[self.dual_name]

    def path_length(self, origin: ep.Tensor, x: ep.Tensor) -> ep.Tensor:
        """Per sample, the ``t`` at which :meth:`path_point` reaches ``x`` (1 by default)."""
        return ep.ones(origin, (origin.shape[0],))

    def path_point(self, origin: ep.Tensor, x: ep.Tensor, t: ep.Tensor) -> ep.Tensor:
        """The point of the path from ``origin`` (``t = 0``) to ``x`` (``t =``
        :meth:`path_length`) that decision-based attacks bisect, for a per-sample ``t``: by
        default the segment ``(1 - t) * origin + t * x``."""
        w = atleast_kd(t, origin.ndim)
        return (1 - w) * origin + w * x

    def project(self, x: ep.Tensor, origin: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        """``x`` moved into the ``eps`` ball around ``origin``."""
        return origin + self.clip(x - origin, eps)

    def fit(
        self, x: ep.Tensor, origin: ep.Tensor, eps: float, bounds: tuple[float, float]
    ) -> ep.Tensor:
        """``x`` moved into the ``eps`` ball around ``origin`` and into ``bounds`` such that
        ``self(result - origin) <= eps`` holds when computed in ``x``'s own dtype.

        A plain projection can miss by rounding: ``(origin + eps) - origin`` may exceed
        ``eps``. Samples it leaves on the sphere (to the rounding of the norm itself) are
        projected again onto a ball smaller by a bound on the rounding errors of the sum, the
        difference and the norm (a few units in the last place, relative to the values), and
        kept at ``origin`` should even that miss. ``origin`` must lie within ``bounds``. Meant
        for the attack boundary, once per epsilon, not for loops.
        """
        fitted = self.project(x, origin, eps).clip(*bounds)
        delta = fitted - origin
        resolution = float(np.finfo(dtype_name(x)).eps)
        norm_error = (math.prod(x.shape[1:]) + 2) * resolution * eps
        # Within the norm's own rounding of eps counts as over: other implementations of the
        # norm (another summation order) may find such a sample above eps.
        over = self(delta) > eps - norm_error
        margin = 2 * resolution * self(origin.abs() + delta.abs()) + norm_error
        again = self.project(fitted, origin, ep.maximum(eps - margin, 0.0)).clip(*bounds)
        fitted = ep.where(atleast_kd(over, x.ndim), again, fitted)
        missed = self(fitted - origin) > eps - norm_error
        return ep.where(atleast_kd(missed, x.ndim), origin, fitted)

    def ascend(self, x: ep.Tensor, direction: ep.Tensor, stepsize: Epsilon) -> ep.Tensor:
        """``x + stepsize * normalize(direction)``; ``stepsize`` a scalar or one per sample."""
        # The step size folds into the per-sample factor: one full-size product fewer.
        return x + direction * atleast_kd(stepsize / (self(direction) + _TINY), x.ndim)

    def region(
        self, origin: ep.Tensor, eps: Epsilon, bounds: tuple[float, float]
    ) -> tuple[ep.Tensor, ...]:
        """Constants of the feasible set (the ``eps`` ball around ``origin`` within
        ``bounds``) that :meth:`project_region` reuses on every step: its limits
        ``(low, high)`` where the set is a box, none (the default) where it is not."""
        return ()

    def project_region(
        self,
        x: ep.Tensor,
        origin: ep.Tensor,
        eps: Epsilon,
        region: tuple[ep.Tensor, ...],
        bounds: tuple[float, float],
    ) -> ep.Tensor:
        """``x`` moved into the ``eps`` ball around ``origin``, then into ``bounds``.

        ``region`` is what :meth:`region` returned for the same origin, epsilon and bounds.
        """
        if region:  # a box: projecting and clipping is clipping to its limits
            low, high = region
            return clip_between(x, low, high)
        return self.project(x, origin, eps).clip(*bounds)


class L1Norm(Norm):
    """The L1 norm; :meth:`clip` is the exact Euclidean projection onto the L1 ball."""

    name, p, dual_name = "l1", 1.0, "linf"

    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        return flat_batch(delta).abs().sum(axis=-1)

    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        # Duchi et al. (2008): soft-threshold |v| at the theta that makes the L1 norm eps.
        v = flat_batch(delta)
        eps_col = eps[:, None] if isinstance(eps, ep.Tensor) and eps.ndim == 1 else eps
        magnitude = v.abs()
        descending = magnitude.sort(axis=-1).flip(axis=-1)
        cumulative = descending.cumsum(axis=-1)
        ranks = ep.arange(v, 1, v.shape[-1] + 1).astype(v.dtype)[None, :]
        active = descending - (cumulative - eps_col) / ranks > 0
        count = ep.maximum(active.astype(v.dtype).sum(axis=-1, keepdims=True), 1.0)
        index = (count - 1).astype(ep.arange(v, 0, 1).dtype)
        theta = (ep.take_along_axis(cumulative, index, axis=-1) - eps_col) / count
        inside = magnitude.sum(axis=-1, keepdims=True) <= eps_col
        theta = ep.where(inside, ep.zeros_like(theta), ep.maximum(theta, 0.0))
        projected = v.sign() * ep.maximum(magnitude - theta, 0.0)
        return unflat_batch(projected, delta)

    def sample_unit_ball(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        n, d = shape[0], int(np.prod(shape[1:]))
        exponential = rng.exponential(size=(n, d + 1))
        simplex = exponential[:, :d] / exponential.sum(axis=1, keepdims=True)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, d))
        points: np.ndarray = (simplex * signs).reshape(shape)
        return points


class L2Norm(Norm):
    """The Euclidean norm."""

    name, p, dual_name = "l2", 2.0, "l2"

    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        return l2_rows(flat_batch(delta))

    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        norms = self(delta)
        factor = ep.minimum(eps / ep.maximum(norms, _TINY), 1.0)
        return delta * atleast_kd(factor, delta.ndim)

    def sample_unit_ball(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        # Voelker et al. (2017): the first d of d + 2 Gaussian coordinates, normalised.
        n, d = shape[0], int(np.prod(shape[1:]))
        gaussian = rng.standard_normal(size=(n, d + 2))
        gaussian /= np.linalg.norm(gaussian, axis=1, keepdims=True)
        return gaussian[:, :d].reshape(shape)


class LinfNorm(Norm):
    """The maximum norm."""

    name, p, dual_name = "linf", float("inf"), "l1"

    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        return flat_batch(delta).abs().max(axis=-1)

    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        bound = _per_sample(eps, delta)
        return ep.minimum(ep.maximum(delta, -bound), bound)

    def normalize(self, grad: ep.Tensor) -> ep.Tensor:
        return grad.sign()

    def ascend(self, x: ep.Tensor, direction: ep.Tensor, stepsize: Epsilon) -> ep.Tensor:
        return x + _per_sample(stepsize, x) * self.normalize(direction)

    def path_length(self, origin: ep.Tensor, x: ep.Tensor) -> ep.Tensor:
        return self(x - origin)

    def path_point(self, origin: ep.Tensor, x: ep.Tensor, t: ep.Tensor) -> ep.Tensor:
        # The Linf ball of radius t around origin: x's coordinates clipped, not a segment.
        return self.project(x, origin, t)

    def region(
        self, origin: ep.Tensor, eps: Epsilon, bounds: tuple[float, float]
    ) -> tuple[ep.Tensor, ...]:
        # The ball within the bounds is a box: two precomputed limits turn projection and
        # clipping into two elementwise ops per step instead of five.
        bound = _per_sample(eps, origin)
        lower, upper = bounds
        return (origin - bound).clip(lower, upper), (origin + bound).clip(lower, upper)

    def largest(self, width: float, size: int) -> float:
        return width

    def sample_unit_ball(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=shape)


class L0Norm(Norm):
    """The number of changed input elements (as Foolbox counts them: each channel of a pixel
    separately; :class:`L0PixelNorm` counts pixels). Not a norm in the strict sense: there is
    no dual and no uniform sampling of its ball.

    :meth:`clip` keeps the ``floor(eps)`` largest changes of each sample and zeroes the rest:
    the Euclidean projection onto the perturbations with at most ``floor(eps)`` changes (an
    epsilon within 1e-6 below an integer counts as that integer). Which of several equally
    large changes is kept is unspecified.
    """

    name, p, dual_name = "l0", 0.0, ""

    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        return _count_nonzero(flat_batch(delta))

    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        keep = _keep_largest(flat_batch(delta).abs(), eps)
        return ep.where(unflat_batch(keep, delta), delta, ep.zeros_like(delta))

    def normalize(self, grad: ep.Tensor) -> ep.Tensor:
        """The L2-normalised gradient (as Foolbox's L0 FMN): L0 has no steepest direction."""
        return l2.normalize(grad)

    def ascend(self, x: ep.Tensor, direction: ep.Tensor, stepsize: Epsilon) -> ep.Tensor:
        """``x + stepsize * normalize(direction)`` (the L2-normalised step)."""
        return l2.ascend(x, direction, stepsize)

    def fit(
        self, x: ep.Tensor, origin: ep.Tensor, eps: float, bounds: tuple[float, float]
    ) -> ep.Tensor:
        """``x`` moved into the ``eps`` ball around ``origin`` and into ``bounds``: counts have
        no rounding, so this is the projection, clipped."""
        return self.project(x, origin, eps).clip(*bounds)

    def largest(self, width: float, size: int) -> float:
        return float(size)

    @property
    def dual(self) -> Norm:
        raise ValueError("norm: L0 has no dual norm; use an L0 attack's own boundary search")

    def sample_unit_ball(self, rng: SampleRandom, shape: tuple[int, ...]) -> np.ndarray:
        raise ValueError(
            "random_start: there is no uniform random start in an L0 ball; pass random_start=False"
        )


class L0PixelNorm(L0Norm):
    """The number of changed pixels: a location counts once however many of its channels
    changed (as Sparse-RS and sigma-zero report sparsity).

    Args:
        channel_axis: the channel axis of the inputs (default 1: channels first, (N, C, H,
            W); -1 or 3 for channels last, (N, H, W, C)). Not the batch axis.

    :meth:`clip` keeps the ``floor(eps)`` pixels whose change has the largest L2 norm over
    the channels and zeroes the others: the Euclidean projection onto the perturbations that
    change at most ``floor(eps)`` pixels (keeping the largest Linf change instead would not be
    the nearest such perturbation).

    >>> advlib.norms.L0PixelNorm(channel_axis=1)(ep.astensor(x_adv - x))  # pixels changed
    """

    def __init__(self, channel_axis: int = 1) -> None:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, int) or channel_axis == 0:
            raise ValueError(
                f"channel_axis: expected the channel axis of the inputs, a nonzero int (1 for "
                f"(N, C, H, W), -1 for (N, H, W, C)), got {channel_axis!r}"
            )
        self.channel_axis = channel_axis
        self.name = "l0pixels"  # one epsilon grid whatever the layout

    def _axis(self, delta: ep.Tensor) -> int:
        axis = self.channel_axis + delta.ndim if self.channel_axis < 0 else self.channel_axis
        if not 1 <= axis < delta.ndim:
            raise ValueError(
                f"channel_axis: {self.channel_axis} is not an axis other than the batch axis "
                f"of inputs of shape {tuple(delta.shape)}; pass the channel axis of the inputs"
            )
        return axis

    def __call__(self, delta: ep.Tensor) -> ep.Tensor:
        changed = (delta != 0).astype(delta.dtype).max(axis=self._axis(delta))
        return _count_nonzero(flat_batch(changed))

    def clip(self, delta: ep.Tensor, eps: Epsilon) -> ep.Tensor:
        axis = self._axis(delta)
        pixels = delta.square().sum(axis=axis)  # squared L2 over channels: the same order
        keep = unflat_batch(_keep_largest(flat_batch(pixels), eps), pixels)
        return ep.where(keep.expand_dims(axis), delta, ep.zeros_like(delta))


def _count_nonzero(flat: ep.Tensor) -> ep.Tensor:
    """Per row, the number of nonzero values, in the dtype of ``flat``."""
    return (flat != 0).astype(flat.dtype).sum(axis=-1)


def _keep_largest(magnitude: ep.Tensor, eps: Epsilon) -> ep.Tensor:
    """A bool mask of the ``floor(eps)`` largest values of each row of ``magnitude`` (N, d);
    ``eps`` a number, a 0-d tensor or one per row."""
    eps_col = eps[:, None] if isinstance(eps, ep.Tensor) and eps.ndim == 1 else eps
    # rank[i, j]: the place of magnitude[i, j] in its row in descending order (0 = largest).
    rank = (-magnitude).argsort(axis=-1).argsort(axis=-1).astype(magnitude.dtype)
    return rank + 1 <= eps_col + 1e-6


l0 = L0Norm()
l1 = L1Norm()
l2 = L2Norm()
linf = LinfNorm()

NORMS: dict[str, Norm] = {"l0": l0, "l1": l1, "l2": l2, "linf": linf}
