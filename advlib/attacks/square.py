"""The Square attack (Andriushchenko et al., 2020): score-based, no gradients.

Random search over localized square-shaped updates. Every query changes one random square
window per sample (Linf: the window is set to ``x0 +- epsilon`` with one random sign per channel;
L2: mass is moved between two windows with a pseudo-Gaussian pattern, keeping the norm at
epsilon) and keeps the change when it lowers the margin loss ``z_y - max_{j != y} z_j``
(targeted: ``max_{j != t} z_j - z_t``). The window covers a fraction ``p`` of the pixels, halved
on a fixed schedule of the query count (AutoAttack's schedule rescaled to ``n_queries``).

Inputs of shape (N, C, H, W) or (N, H, W, C) are images (``channel_axis`` decides which; by
default the smaller of axes 1 and 3 holds the channels); (N, H, W) are one-channel images and
(N, D) vectors, where a "square" is a run of consecutive features. Everything per query runs on
the model's device; the window positions and signs are drawn on the host from the seed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name, scalar_like
from ..models.base import Model, StepFn
from ..norms import l2, linf
from ._budgeted import BudgetedSearch, Task
from ._losses import margin
from ._minimization import check_float, check_int, check_seed
from ._norm_arg import NormFamily, norm_family


class _Constants(NamedTuple):
    """What stays fixed during the search."""

    origin: ep.Tensor  # the inputs, in the 4-d view
    classes: ep.Tensor  # the labels, or the targets of a targeted criterion
    eps: ep.Tensor  # the budget, 0-d


class _Search(NamedTuple):
    """Per sample: the best point so far (4-d view), its margin, whether it is adversarial."""

    x: ep.Tensor
    loss: ep.Tensor
    success: ep.Tensor


class _LinfDraws(NamedTuple):
    """The random choices of one Linf query, on the device."""

    corner: ep.Tensor  # (N, 2): each window's top-left corner
    size: ep.Tensor  # (2,): the windows' height and width
    signs: ep.Tensor  # (N, C): the vertex of each channel


class _L2Draws(NamedTuple):
    """The random choices of one L2 query, on the device."""

    corner: ep.Tensor  # (N, 2): the window that receives the mass
    other: ep.Tensor  # (N, 2): the window that gives it
    size: ep.Tensor  # (2,)
    signs: ep.Tensor  # (N, C)
    canvas: ep.Tensor  # (H * W,): the pattern, in the top-left corner


# (query fraction of 10000 after which p is halved once more); AutoAttack's schedule
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, query: int, n_queries: int) -> float:
    """The fraction of pixels a window covers at ``query`` (0-based) out of ``n_queries``."""
    scaled = int(query / n_queries * 10000)
    halvings = sum(scaled > limit for limit in _SCHEDULE)
    return float(p_init / 2**halvings)


class _Layout:
    """How a batch maps to images: a 4-d view (N, C, H, W) or (N, H, W, C) by reshaping."""

    def __init__(self, shape: tuple[int, ...], channel_axis: int | None) -> None:
        self.shape = shape
        if len(shape) == 2:
            self.view, self.channels_last = (shape[0], 1, 1, shape[1]), False
        elif len(shape) == 3:
            self.view, self.channels_last = (shape[0], 1, shape[1], shape[2]), False
        elif len(shape) == 4:
            last = shape[1] > shape[3] if channel_axis is None else channel_axis in (3, -1)
            self.view, self.channels_last = shape, last
        else:
            raise ValueError(
                f"inputs: the Square attack takes vectors (N, D) or images (N, H, W), "
                f"(N, C, H, W), (N, H, W, C); got shape {shape}"
            )
        if self.channels_last:
            self.height, self.width, self.channels = self.view[1], self.view[2], self.view[3]
        else:
            self.channels, self.height, self.width = self.view[1], self.view[2], self.view[3]

    def image(self, x: ep.Tensor) -> ep.Tensor:
        return x.reshape((-1, *self.view[1:]))

    def original(self, x: ep.Tensor) -> ep.Tensor:
        return x.reshape((-1, *self.shape[1:]))

    def spatial(self, mask: ep.Tensor) -> ep.Tensor:
        """(N, H, W) -> broadcastable against the 4-d view."""
        return mask[:, :, :, None] if self.channels_last else mask[:, None, :, :]

    def per_channel(self, values: ep.Tensor) -> ep.Tensor:
        """(N, C) -> broadcastable against the 4-d view."""
        return values[:, None, None, :] if self.channels_last else values[:, :, None, None]

    @property
    def spatial_axes(self) -> tuple[int, int]:
        return (1, 2) if self.channels_last else (2, 3)

    def window(self, fraction: float, minimum: int = 1, odd: bool = False) -> tuple[int, int]:
        """Height and width of a window covering about ``fraction`` of the pixels (a square
        of odd side when ``odd``, as far as the image allows)."""
        if self.height == 1:
            return 1, min(self.width, max(round(fraction * self.width), minimum))
        largest = min(self.height, self.width)
        side = max(round(float(np.sqrt(fraction * self.height * self.width))), minimum)
        if odd and side % 2 == 0:
            side = side + 1 if side < largest else side - 1
        side = max(min(side, largest), 1)
        return side, side


class _SquareAttack(NormFamily, BudgetedSearch):
    """The Square attack in ``self.norm``; see the module documentation.
    ``SquareAttack(norm="l2")`` gives an :class:`L2SquareAttack`.

    Args:
        n_queries: model evaluations per sample, the initial one included (default 5000).
        p_init: fraction of the pixels the first windows cover (default 0.8, AutoAttack's).
        channel_axis: for 4-d inputs, 1 (channels first) or -1 (channels last); default None
            guesses the smaller of axes 1 and 3.
        seed: seed of the random search; None draws fresh randomness on every call.
        norm: ``"linf"`` or ``"l2"``, also spelled as AutoAttack does (``"Linf"``, ``"L2"``,
            ``np.inf``, ``2``); default None: the class's norm (Linf for ``SquareAttack``).
    """

    requires_grad = False

    def __init__(
        self,
        *,
        n_queries: int = 5000,
        p_init: float = 0.8,
        channel_axis: int | None = None,
        seed: int | None = None,
        norm: Any = None,
    ) -> None:
        # ``norm`` chose the class: NormFamily.__new__
        self.n_queries = check_int(n_queries, "n_queries")
        self.p_init = check_float(p_init, "p_init")
        if self.p_init > 1:
            raise ValueError(f"p_init: expected a number in (0, 1], got {p_init!r}")
        if channel_axis not in (None, 1, 3, -1):
            raise ValueError(f"channel_axis: expected None, 1 or -1, got {channel_axis!r}")
        self.channel_axis = channel_axis
        self.seed = check_seed(seed)

    def _search(self, task: Task) -> ep.Tensor:
        model, inputs, criterion, epsilon, classes, targeted = task
        layout = _Layout(tuple(inputs.shape), self.channel_axis)
        rng = self._generator()
        origin = layout.image(inputs)
        eps = scalar_like(inputs, epsilon)
        success = criterion(inputs, model(inputs))
        start = ep.from_numpy(inputs, self._initial_delta(layout, rng).astype(dtype_name(inputs)))
        x_best = ep.where(
            atleast_kd(success, 4), origin, (origin + eps * start).clip(*model.bounds)
        )
        logits = model(layout.original(x_best))
        success = ep.logical_or(success, criterion(layout.original(x_best), logits))
        loss = margin(logits, classes, targeted)

        shape = (layout.shape[1:], layout.channels_last)
        propose = model.compiled(
            self._step_key("propose", *shape, targeted, settings=()),
            lambda: self._make_propose(model, layout, targeted),
        )
        accept = model.compiled(self._step_key("accept", settings=()), lambda: _accept)
        constants = _Constants(origin, classes, eps)
        best = _Search(x_best, loss, success)
        check_every = 50
        for count in progress.steps(self.n_queries - 1):
            query = count + 1  # query 0 evaluated the start
            draws = self._draws(layout, query, rng, inputs)
            candidate, logits, candidate_loss = propose(best.x, constants, draws)
            now = criterion(layout.original(candidate), logits)
            best = accept(best, _Search(candidate, candidate_loss, now))
            if query % check_every == 0 and bool(best.success.all().item()):
                break
        return layout.original(best.x)

    # ------------------------------------------------------------------ per-norm hooks
    @abstractmethod
    def _initial_delta(self, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
        """The starting perturbation for epsilon 1, shape of the 4-d view."""

    @abstractmethod
    def _draws(
        self, layout: _Layout, query: int, rng: np.random.Generator, like: ep.Tensor
    ) -> tuple[ep.Tensor, ...]:
        """The random window positions, sizes and signs of one query, on the device."""

    @abstractmethod
    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, Any], ep.Tensor]:
        """``candidate(x_best, constants, draws)``: the point this query tries."""

    def _make_propose(self, model: Model, layout: _Layout, targeted: bool) -> StepFn:
        """``propose(x_best, constants, draws) -> (candidate, its logits, its margin)``."""
        candidate_of = self._make_candidate(layout, model.bounds)

        def propose(
            x_best: ep.Tensor, constants: _Constants, draws: Any
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
            candidate = candidate_of(x_best, constants, draws)
            logits = model(layout.original(candidate))
            return candidate, logits, margin(logits, constants.classes, targeted)

        return propose

    # ------------------------------------------------------------------ shared pieces
    def _positions(
        self, layout: _Layout, size: tuple[int, int], rng: np.random.Generator
    ) -> np.ndarray:
        n = layout.view[0]
        rows = rng.integers(0, layout.height - size[0] + 1, size=n)
        cols = rng.integers(0, layout.width - size[1] + 1, size=n)
        return np.stack([rows, cols], axis=1)

    def _signs(self, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(np.array([-1.0, 1.0]), size=(layout.view[0], layout.channels))


def _window_mask(layout: _Layout, corner: ep.Tensor, size: ep.Tensor, like: ep.Tensor) -> ep.Tensor:
    """Bool (N, H, W): True inside each sample's window at ``corner`` (N, 2) of ``size`` (2,)."""
    rows = ep.arange(like, layout.height).astype(like.dtype)[None, :]
    cols = ep.arange(like, layout.width).astype(like.dtype)[None, :]
    top, left = corner[:, :1], corner[:, 1:]
    in_rows = ep.logical_and(rows >= top, rows < top + size[0])
    in_cols = ep.logical_and(cols >= left, cols < left + size[1])
    return ep.logical_and(in_rows[:, :, None], in_cols[:, None, :])


def _accept(best: _Search, candidate: _Search) -> _Search:
    """The candidate where it lowers the margin or succeeds, for samples not yet adversarial."""
    active = ep.logical_not(best.success)
    better = ep.logical_or(candidate.loss < best.loss, candidate.success)
    take = ep.logical_and(active, better)
    return _Search(
        ep.where(atleast_kd(take, best.x.ndim), candidate.x, best.x),
        ep.where(take, candidate.loss, best.loss),
        ep.logical_or(best.success, ep.logical_and(active, candidate.success)),
    )


def _on_device(like: ep.Tensor, *arrays: Any) -> tuple[ep.Tensor, ...]:
    """Host arrays as tensors in the dtype and device of ``like``."""
    dtype = dtype_name(like)
    return tuple(ep.from_numpy(like, np.asarray(a, dtype=dtype)) for a in arrays)


class LinfSquareAttack(_SquareAttack):
    """The Square attack in Linf (default 5000 queries, ``p_init=0.8``); see
    :class:`_SquareAttack`. Starts from vertical stripes of ``+-epsilon``."""

    norm = linf

    def _initial_delta(self, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
        n, c, w = layout.view[0], layout.channels, layout.width
        stripes = rng.choice(np.array([-1.0, 1.0]), size=(n, c, 1, w))
        if layout.channels_last:
            stripes = stripes.transpose(0, 2, 3, 1)  # (n, 1, w, c)
        return np.broadcast_to(stripes, layout.view).copy()

    def _draws(
        self, layout: _Layout, query: int, rng: np.random.Generator, like: ep.Tensor
    ) -> tuple[ep.Tensor, ...]:
        size = layout.window(p_schedule(self.p_init, query, self.n_queries))
        corner = self._positions(layout, size, rng)
        return _LinfDraws(*_on_device(like, corner, size, self._signs(layout, rng)))

    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, _LinfDraws], ep.Tensor]:
        def candidate(x_best: ep.Tensor, constants: _Constants, draws: _LinfDraws) -> ep.Tensor:
            window = layout.spatial(_window_mask(layout, draws.corner, draws.size, x_best))
            vertex = constants.origin + constants.eps * layout.per_channel(draws.signs)
            return ep.where(window, vertex, x_best).clip(*bounds)

        return candidate


class L2SquareAttack(_SquareAttack):
    """The Square attack in L2 (default 5000 queries, ``p_init=0.8``); see
    :class:`_SquareAttack`. Starts from a grid of pseudo-Gaussian patterns with random signs."""

    norm = l2

    def _initial_delta(self, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
        n, c, h, w = layout.view[0], layout.channels, layout.height, layout.width
        th, tw = max(h // 5, 1), max(w // 5, 1)
        delta = np.zeros((n, c, h, w))
        top, left = (h - (h // th) * th) // 2, (w - (w // tw) * tw) // 2
        for i in range(h // th):
            for j in range(w // tw):
                pattern = _pattern(th, tw, rng)
                signs = rng.choice(np.array([-1.0, 1.0]), size=(n, c, 1, 1))
                r, s = top + i * th, left + j * tw
                delta[:, :, r : r + th, s : s + tw] += pattern * signs
        delta /= np.sqrt((delta**2).sum(axis=(1, 2, 3), keepdims=True)) + 1e-12
        return delta.transpose(0, 2, 3, 1) if layout.channels_last else delta

    def _draws(
        self, layout: _Layout, query: int, rng: np.random.Generator, like: ep.Tensor
    ) -> tuple[ep.Tensor, ...]:
        size = layout.window(p_schedule(self.p_init, query, self.n_queries), 3, odd=True)
        corner = self._positions(layout, size, rng)
        other = self._positions(layout, size, rng)
        signs = self._signs(layout, rng)
        canvas = np.zeros((layout.height, layout.width))
        canvas[: size[0], : size[1]] = _pattern(size[0], size[1], rng)
        return _L2Draws(*_on_device(like, corner, other, size, signs, canvas.reshape(-1)))

    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, _L2Draws], ep.Tensor]:
        spatial = layout.spatial_axes
        everything = (1, 2, 3)

        def norm_over(t: ep.Tensor, axes: tuple[int, ...]) -> ep.Tensor:
            return t.square().sum(axis=axes, keepdims=True).sqrt()

        def candidate(x_best: ep.Tensor, constants: _Constants, draws: _L2Draws) -> ep.Tensor:
            origin, eps = constants.origin, constants.eps
            first = _window_mask(layout, draws.corner, draws.size, x_best)
            second = _window_mask(layout, draws.other, draws.size, x_best)
            placed = _place(layout, draws.canvas, draws.corner, first, constants.classes)
            first, second = layout.spatial(first), layout.spatial(second)
            first_f = first.astype(x_best.dtype)
            delta = x_best - origin
            window_norm = norm_over(delta * first_f, spatial)
            image_norm = norm_over(delta, everything)
            both = ep.logical_or(first, second).astype(x_best.dtype)
            windows_norm = norm_over(delta * both, everything)
            fresh = layout.spatial(placed) * layout.per_channel(draws.signs)
            fresh = fresh + delta * first_f / (window_norm + 1e-12)
            budget = ep.maximum(eps**2 - image_norm**2, 0.0) / layout.channels
            fresh = fresh / (norm_over(fresh, spatial) + 1e-12) * (budget + windows_norm**2).sqrt()
            zeros = ep.zeros_like(delta)
            new_delta = ep.where(first, fresh, ep.where(second, zeros, delta))
            scale = eps / (norm_over(new_delta, everything) + 1e-12)
            return (origin + new_delta * scale).clip(*bounds)

        return candidate


def _place(
    layout: _Layout, canvas: ep.Tensor, corner: ep.Tensor, window: ep.Tensor, index_like: ep.Tensor
) -> ep.Tensor:
    """(N, H, W): the pattern in the top-left corner of ``canvas`` (H * W,) moved to each
    sample's ``corner``, zero outside its ``window``."""
    h, w = layout.height, layout.width
    rows = ep.arange(canvas, h).astype(canvas.dtype)[None, :, None]
    cols = ep.arange(canvas, w).astype(canvas.dtype)[None, None, :]
    rel_rows = ep.minimum(ep.maximum(rows - corner[:, 0, None, None], 0.0), h - 1.0)
    rel_cols = ep.minimum(ep.maximum(cols - corner[:, 1, None, None], 0.0), w - 1.0)
    index = (rel_rows * w + rel_cols).reshape((-1, h * w)).astype(index_like.dtype)
    tiled = canvas[None, :] + ep.zeros_like(corner[:, :1])
    values = ep.take_along_axis(tiled, index, axis=-1).reshape((-1, h, w))
    return ep.where(window, values, 0.0)


def _pattern(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A unit-norm pattern of two pseudo-Gaussian bumps of opposite signs (Square's L2
    update), split along the longer direction; square patterns are transposed at random."""
    if height >= 2:
        half = height // 2
        pattern = np.concatenate([_bump(half, width), -_bump(height - half, width)], axis=0)
        if height == width and rng.random() > 0.5:
            pattern = pattern.T
    elif width >= 2:
        half = width // 2
        pattern = np.concatenate([_bump(1, half), -_bump(1, width - half)], axis=1)
    else:
        pattern = np.ones((1, 1))
    normalized: np.ndarray = pattern / np.sqrt((pattern**2).sum())
    return normalized


def _bump(height: int, width: int) -> np.ndarray:
    """Concentric rectangles around the centre; ring ``k`` weighs ``sum_{j >= k} 1/(j+1)^2``."""
    rows = np.abs(np.arange(height) - height // 2)[:, None]
    cols = np.abs(np.arange(width) - width // 2)[None, :]
    ring = np.maximum(rows, cols)
    rings = max(height // 2, width // 2) + 1
    weights = np.cumsum((1.0 / (np.arange(rings) + 1) ** 2)[::-1])[::-1]
    bump = weights[ring]
    normalized: np.ndarray = bump / np.sqrt((bump**2).sum())
    return normalized


LinfSquare = LinfSquareAttack
L2Square = L2SquareAttack
SquareAttack = LinfSquareAttack
norm_family(LinfSquareAttack, L2SquareAttack)
