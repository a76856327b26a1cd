"""The Square attack (Andriushchenko et al., 2020): score-based, no gradients.

Random search over localized square-shaped updates. Every query changes one random square
window per sample (Linf: the window is set to ``x0 +- epsilon`` with one random sign per channel;
L2 and L1: mass is moved between two windows with a pseudo-Gaussian pattern, keeping the norm
at epsilon; L1 projects onto the ball and the bounds as AutoAttack does) and keeps the change
when it lowers the margin loss ``z_y - max_{j != y} z_j`` (targeted: ``max_{j != t} z_j - z_t``).
The window covers a fraction ``p`` of the pixels, halved on a fixed schedule of the query count
(AutoAttack's schedule rescaled to ``n_queries``).

Inputs of shape (N, C, H, W) or (N, H, W, C) are images (``channel_axis`` decides which; by
default the smaller of axes 1 and 3 holds the channels); (N, H, W) are one-channel images and
(N, D) vectors, where a "square" is a run of consecutive features. Everything per query runs on
the model's device. The queries run in blocks (up to 50): the window positions, signs and
patterns of a whole block are drawn on the host from the seed (each sample's own stream, read
at the query's position, so the blocks change no number) and moved to the device at once; the
samples already adversarial leave the search between blocks (one transfer per block).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name, flat_batch, scalar_like, unflat_batch
from ..models.base import Model, StepFn
from ..norms import l1, l2, linf
from ._box_projections import l1_box_projection
from ._budgeted import BudgetedSearch, Task
from ._losses import class_mask, masked_margin
from ._minimization import check_float, check_int, check_seed
from ._norm_arg import NormFamily, norm_family
from ._subsets import Subset, host_bool

_INF = float("inf")


class _Constants(NamedTuple):
    """What stays fixed during the search."""

    origin: ep.Tensor  # the inputs, in the 4-d view
    mask: ep.Tensor  # (N, K) bool, True at the label (or the target of a targeted criterion)
    eps: ep.Tensor  # the budget, 0-d
    floor: ep.Tensor  # -inf, 0-d: the score of an adversarial
    upper: ep.Tensor  # origin + eps and origin - eps within the bounds (the Linf vertices)
    lower: ep.Tensor


def _constants(
    origin: ep.Tensor, mask: ep.Tensor, eps: ep.Tensor, bounds: tuple[float, float]
) -> _Constants:
    lower, upper = bounds
    return _Constants(
        origin,
        mask,
        eps,
        -_INF + ep.zeros_like(eps),
        (origin + eps).clip(lower, upper),
        (origin - eps).clip(lower, upper),
    )


class _Block(NamedTuple):
    """A block of queries: their numbers, their random numbers (N, B, k) (see
    ``_SquareAttack._values``), the run's common draws (``_SquareAttack._plan``) and a tensor
    of the inputs' dtype and device."""

    queries: np.ndarray
    values: np.ndarray
    plan: np.ndarray | None
    like: ep.Tensor


class _Run(NamedTuple):
    """What every block of queries of one search shares."""

    task: Task
    layout: _Layout
    eps: ep.Tensor  # the budget, 0-d
    clean: ep.Tensor  # the model's logits for the inputs
    mask: ep.Tensor  # see _Constants
    query: StepFn
    accept: StepFn
    plan: np.ndarray | None  # see _SquareAttack._plan
    stream: SampleRandom  # the per-sample numbers of the queries (a fork)


class _Search(NamedTuple):
    """Per sample: the best point so far (4-d view) and its score: its margin, or -inf once
    it is adversarial (so no candidate replaces it)."""

    x: ep.Tensor
    score: ep.Tensor


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

    def spatial_block(self, masks: ep.Tensor) -> ep.Tensor:
        """(B, N, H, W) -> (B, N, ...) whose slices broadcast against the 4-d view."""
        b, n, h, w = masks.shape
        return masks.reshape((b, n, h, w, 1) if self.channels_last else (b, n, 1, h, w))

    def channel_block(self, values: ep.Tensor) -> ep.Tensor:
        """(B, N, C) -> (B, N, ...) whose slices broadcast against the 4-d view."""
        b, n, c = values.shape
        return values.reshape((b, n, 1, 1, c) if self.channels_last else (b, n, c, 1, 1))

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
        norm: ``"linf"``, ``"l2"`` or ``"l1"``, also spelled as AutoAttack does (``"Linf"``,
            ``"L2"``, ``"L1"``, ``np.inf``, ``2``, ``1``); default None: the class's norm (Linf
            for ``SquareAttack``).
    """

    requires_grad = False
    #: random numbers per sample and query besides one sign per channel
    _positions_per_query = 2
    #: queries whose random numbers are drawn and moved to the device at once (the still
    #: robust samples are also selected once per block)
    _block = 50

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
        model, inputs, _, epsilon, classes, targeted = task
        layout = _Layout(tuple(inputs.shape), self.channel_axis)
        rng = self._generator()
        eps = scalar_like(inputs, epsilon)
        clean = model(inputs)
        mask = class_mask(clean, classes)
        constants = _constants(layout.image(inputs), mask, eps, model.bounds)
        best = self._begin(task, layout, rng, constants, clean)
        shape = (layout.shape[1:], layout.channels_last)
        query = model.compiled(
            self._step_key("query", *shape, targeted, settings=()),
            lambda: self._make_query(model, layout, targeted),
        )
        accept = model.compiled(self._step_key("accept", settings=()), lambda: _accept)
        run = _Run(task, layout, eps, clean, mask, query, accept, self._plan(rng), rng.fork())
        selected = np.ones(inputs.shape[0], dtype=bool)
        for block in _blocks(self.n_queries, self._block_size(layout)):
            active = ~host_bool(best.score == -_INF)  # one transfer per block
            if not active.any():
                break
            # a compiled step traces once per batch size: shrink by quarters only
            if not model.compile_enabled or 4 * active.sum() <= selected.sum():
                selected = active
            best = self._search_block(run, best, block, selected)
        return layout.original(best.x)

    def _begin(
        self,
        task: Task,
        layout: _Layout,
        rng: SampleRandom,
        constants: _Constants,
        clean: ep.Tensor,
    ) -> _Search:
        """The starting points (the inputs where already adversarial), evaluated (query 0)."""
        model, inputs, criterion, _, _, targeted = task
        success = criterion(inputs, clean)
        raw = ep.from_numpy(inputs, self._initial_delta(layout, rng).astype(dtype_name(inputs)))
        start = self._start(constants.origin, raw, constants.eps, model.bounds)
        x = ep.where(atleast_kd(success, 4), constants.origin, start)
        logits = model(layout.original(x))
        success = ep.logical_or(success, criterion(layout.original(x), logits))
        margin = masked_margin(logits, constants.mask, targeted)
        return _Search(x, ep.where(success, constants.floor, margin))

    def _search_block(
        self, run: _Run, best: _Search, block: np.ndarray, selected: np.ndarray
    ) -> _Search:
        """``best`` after the queries of ``block``, run on the ``selected`` samples only (the
        adversarial ones among them keep their point: see :func:`_accept`)."""
        model, inputs, criterion = run.task.model, run.task.inputs, run.task.criterion
        layout = run.layout
        subset = Subset.of_mask(inputs, selected, model.compile_enabled)
        part = _Search(*(subset.take(t) for t in best))
        origin = subset.take(layout.image(inputs))
        constants = _constants(origin, subset.take(run.mask), run.eps, model.bounds)
        judge = subset.criterion(criterion, inputs, run.clean)
        rows = subset.all_rows
        values = self._values(run.stream.take(rows), len(rows), layout, block)
        draws = self._block_draws(layout, _Block(block, values, run.plan, inputs))
        for j in range(min(len(block), self.n_queries - int(block[0]))):
            candidate, logits, loss = run.query(part.x, constants, tuple(d[j] for d in draws))
            success = judge(layout.original(candidate), logits)
            part = run.accept(part, candidate, loss, success, constants.floor)
        return _Search(*(subset.put(t, p) for t, p in zip(best, part)))

    def _block_size(self, layout: _Layout) -> int:
        """Queries per block: at most ``_block``, and blocks of window masks of at most 2**22
        elements (the block size changes no result)."""
        n, h, w = layout.view[0], layout.height, layout.width
        return max(1, min(self._block, 2**22 // max(n * h * w, 1)))

    def _values(
        self, stream: SampleRandom, rows: int, layout: _Layout, block: np.ndarray
    ) -> np.ndarray:
        """(N, B, k) uniform numbers of the block's queries for ``rows`` samples: query ``q``
        reads its own ``k`` numbers of each sample's stream, whatever the blocks."""
        k = self._positions_per_query + layout.channels
        values = stream.random((rows, len(block) * k), at=int(block[0] - 1) * k)
        return values.reshape(rows, len(block), k)

    def _sizes(self, layout: _Layout, block: np.ndarray) -> np.ndarray:
        """(B, 2) window heights and widths of the block's queries."""
        return np.array([self._window(layout, int(q)) for q in block], dtype=np.int64)

    def _window(self, layout: _Layout, query: int) -> tuple[int, int]:
        return layout.window(p_schedule(self.p_init, query, self.n_queries))

    # ------------------------------------------------------------------ per-norm hooks
    @abstractmethod
    def _initial_delta(self, layout: _Layout, rng: SampleRandom) -> np.ndarray:
        """The starting perturbation before :meth:`_start` scales it, shape of the 4-d view."""

    @abstractmethod
    def _start(
        self, origin: ep.Tensor, raw: ep.Tensor, eps: ep.Tensor, bounds: tuple[float, float]
    ) -> ep.Tensor:
        """The starting point from the raw perturbation of :meth:`_initial_delta`."""

    def _plan(self, rng: SampleRandom) -> np.ndarray | None:
        """Draws common to the batch for the whole run, made once (None: none)."""
        return None

    @abstractmethod
    def _block_draws(self, layout: _Layout, block: _Block) -> tuple[ep.Tensor, ...]:
        """The block's window masks, signs and patterns on the device, each with a leading
        query axis; slice ``j`` is what :meth:`_make_candidate`'s candidate gets."""

    @abstractmethod
    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, Any], ep.Tensor]:
        """``candidate(x_best, constants, draws)``: the point a query tries."""

    def _make_query(self, model: Model, layout: _Layout, targeted: bool) -> StepFn:
        """``query(x_best, constants, draws) -> (candidate, its logits, its margin)``."""
        candidate_of = self._make_candidate(layout, model.bounds)

        def query(
            x_best: ep.Tensor, constants: _Constants, draws: Any
        ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
            candidate = candidate_of(x_best, constants, draws)
            logits = model(layout.original(candidate))
            return candidate, logits, masked_margin(logits, constants.mask, targeted)

        return query

    # ------------------------------------------------------------------ shared pieces
    def _corners(
        self, layout: _Layout, sizes: np.ndarray, values: np.ndarray, first: int
    ) -> np.ndarray:
        """(B, N, 2) top-left corners of windows of ``sizes`` (B, 2), uniform over the image,
        from ``values[..., first]`` and ``values[..., first + 1]`` (N, B, k)."""
        span = np.array([layout.height, layout.width])[None, :] - sizes + 1  # (B, 2)
        offsets = np.floor(values[..., first : first + 2] * span[None]).astype(np.int64)
        corners: np.ndarray = np.minimum(offsets, span[None] - 1).transpose(1, 0, 2)
        return corners

    def _signs(self, values: np.ndarray) -> np.ndarray:
        """(B, N, C) signs +-1 from the last ``C`` numbers of ``values`` (N, B, k)."""
        numbers = values[..., self._positions_per_query :]
        return np.where(numbers < 0.5, -1.0, 1.0).transpose(1, 0, 2)


def _blocks(n_queries: int, size: int) -> Iterator[np.ndarray]:
    """Queries 1 .. n_queries - 1 (query 0 evaluated the start) in blocks of ``size``, each a
    portion of the progress bar. The last block runs past the end (the extra queries are
    drawn, not run): every block has one shape, so compiled frameworks trace it once."""
    count = -(-(n_queries - 1) // size)
    for b in progress.steps(count):
        yield np.arange(1 + b * size, 1 + (b + 1) * size)


def _accept(
    best: _Search, candidate: ep.Tensor, loss: ep.Tensor, success: ep.Tensor, floor: ep.Tensor
) -> _Search:
    """The candidate where it lowers the score (a lower margin, or a first success)."""
    score = ep.where(success, floor, loss)
    take = score < best.score
    return _Search(
        ep.where(atleast_kd(take, best.x.ndim), candidate, best.x),
        ep.where(take, score, best.score),
    )


def _window_masks(
    layout: _Layout, corners: ep.Tensor, sizes: ep.Tensor, like: ep.Tensor
) -> ep.Tensor:
    """Bool (B, N, H, W): True inside each window at ``corners`` (B, N, 2) of ``sizes``
    (B, 2)."""
    rows = ep.arange(like, layout.height).astype(like.dtype)[None, None, :]
    cols = ep.arange(like, layout.width).astype(like.dtype)[None, None, :]
    top, left = corners[:, :, :1], corners[:, :, 1:]
    height, width = sizes[:, None, :1], sizes[:, None, 1:]
    in_rows = ep.logical_and(rows >= top, rows < top + height)
    in_cols = ep.logical_and(cols >= left, cols < left + width)
    return ep.logical_and(in_rows[:, :, :, None], in_cols[:, :, None, :])


def _on_device(like: ep.Tensor, *arrays: Any) -> tuple[ep.Tensor, ...]:
    """Host arrays as tensors in the dtype and device of ``like``."""
    dtype = dtype_name(like)
    return tuple(ep.from_numpy(like, np.asarray(a, dtype=dtype)) for a in arrays)


class LinfSquareAttack(_SquareAttack):
    """The Square attack in Linf (default 5000 queries, ``p_init=0.8``); see
    :class:`_SquareAttack`. Starts from vertical stripes of ``+-epsilon``."""

    norm = linf

    def _initial_delta(self, layout: _Layout, rng: SampleRandom) -> np.ndarray:
        n, c, w = layout.view[0], layout.channels, layout.width
        stripes = rng.choice(np.array([-1.0, 1.0]), size=(n, c, 1, w))
        if layout.channels_last:
            stripes = stripes.transpose(0, 2, 3, 1)  # (n, 1, w, c)
        return np.broadcast_to(stripes, layout.view).copy()

    def _start(
        self, origin: ep.Tensor, raw: ep.Tensor, eps: ep.Tensor, bounds: tuple[float, float]
    ) -> ep.Tensor:
        return (origin + eps * raw).clip(*bounds)

    def _block_draws(self, layout: _Layout, block: _Block) -> tuple[ep.Tensor, ...]:
        sizes, values, like = self._sizes(layout, block.queries), block.values, block.like
        corners, sizes_t, signs = _on_device(
            like, self._corners(layout, sizes, values, 0), sizes, self._signs(values)
        )
        masks = layout.spatial_block(_window_masks(layout, corners, sizes_t, like))
        return masks, layout.channel_block(signs) > 0

    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, tuple[ep.Tensor, ...]], ep.Tensor]:
        def candidate(
            x_best: ep.Tensor, constants: _Constants, draws: tuple[ep.Tensor, ...]
        ) -> ep.Tensor:
            window, up = draws
            return ep.where(window, ep.where(up, constants.upper, constants.lower), x_best)

        return candidate


class _MassSquareAttack(_SquareAttack):
    """The L2 and L1 Square attack: mass moves between two windows of odd side, at least 3."""

    _positions_per_query = 4  # two windows
    _style = (2, 2.0)  # the patterns' decay and norm (see _pattern)

    def _initial_delta(self, layout: _Layout, rng: SampleRandom) -> np.ndarray:
        n, c, h, w = layout.view[0], layout.channels, layout.height, layout.width
        th, tw = max(h // 5, 1), max(w // 5, 1)
        delta = np.zeros((n, c, h, w))
        top, left = (h - (h // th) * th) // 2, (w - (w // tw) * tw) // 2
        for i in range(h // th):
            for j in range(w // tw):
                pattern = _pattern(th, tw, rng, style=self._style)
                signs = rng.choice(np.array([-1.0, 1.0]), size=(n, c, 1, 1))
                r, s = top + i * th, left + j * tw
                delta[:, :, r : r + th, s : s + tw] += pattern * signs
        return delta.transpose(0, 2, 3, 1) if layout.channels_last else delta

    def _window(self, layout: _Layout, query: int) -> tuple[int, int]:
        return layout.window(p_schedule(self.p_init, query, self.n_queries), 3, odd=True)

    def _plan(self, rng: SampleRandom) -> np.ndarray:
        """Whether each query's square pattern is transposed (common to the batch)."""
        flips: np.ndarray = rng.shared().random(self.n_queries) > 0.5
        return flips

    def _block_draws(self, layout: _Layout, block: _Block) -> tuple[ep.Tensor, ...]:
        sizes, values, like = self._sizes(layout, block.queries), block.values, block.like
        canvas = np.zeros((len(sizes), layout.height, layout.width))
        for j, (q, (h, w)) in enumerate(zip(block.queries, sizes)):
            plan = block.plan
            flip = plan is not None and q < len(plan) and bool(plan[q])  # past the end: unused
            canvas[j, :h, :w] = _pattern(int(h), int(w), flip=flip, style=self._style)
        first, second, sizes_t, signs, canvas_t = _on_device(
            like,
            self._corners(layout, sizes, values, 0),
            self._corners(layout, sizes, values, 2),
            sizes,
            self._signs(values),
            canvas.reshape(len(sizes), -1),
        )
        first_mask = _window_masks(layout, first, sizes_t, like)
        both = ep.logical_or(first_mask, _window_masks(layout, second, sizes_t, like))
        placed = _place(layout, canvas_t, first, first_mask, like)
        dtype = like.dtype
        return (  # as 0/1 weights: the update multiplies instead of selecting
            layout.spatial_block(first_mask.astype(dtype)),
            layout.spatial_block(both.astype(dtype)),
            layout.spatial_block(ep.logical_not(both).astype(dtype)),
            layout.spatial_block(placed) * layout.channel_block(signs),
        )

    def _make_candidate(
        self, layout: _Layout, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, _Constants, tuple[ep.Tensor, ...]], ep.Tensor]:
        move = self._make_move(layout)
        limit = self._make_limit(bounds)

        def candidate(
            x_best: ep.Tensor, constants: _Constants, draws: tuple[ep.Tensor, ...]
        ) -> ep.Tensor:
            first, both, rest, pattern = draws
            origin, eps = constants.origin, constants.eps
            delta = x_best - origin
            # the new window (zero outside the first window), nothing left in the second
            fresh = move(delta, first, both, pattern, eps)
            return limit(origin, delta * rest + fresh, eps)

        return candidate

    @abstractmethod
    def _make_move(self, layout: _Layout) -> Callable[..., ep.Tensor]:
        """``move(delta, first, both, pattern, eps)``: the new perturbation inside the first
        window (zero outside it), which takes the pattern and the mass of both windows
        (``first``, ``both``: 0/1 weights of the first window and of the two)."""

    @abstractmethod
    def _make_limit(
        self, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]:
        """``limit(origin, delta, eps)``: the candidate, back within the ball and bounds."""


def _squares(t: ep.Tensor, axes: tuple[int, ...]) -> ep.Tensor:
    """The sum of squares over ``axes``, kept as size-1 axes."""
    return t.square().sum(axis=axes, keepdims=True)


def _place(
    layout: _Layout, canvas: ep.Tensor, corners: ep.Tensor, windows: ep.Tensor, like: ep.Tensor
) -> ep.Tensor:
    """(B, N, H, W): each query's pattern, in the top-left corner of its ``canvas`` row
    (B, H * W), moved to each sample's corner (``corners`` (B, N, 2)), zero outside its
    window (``windows`` (B, N, H, W))."""
    b, n = corners.shape[0], corners.shape[1]
    h, w = layout.height, layout.width
    rows = ep.arange(canvas, h).astype(canvas.dtype)[None, None, :, None]
    cols = ep.arange(canvas, w).astype(canvas.dtype)[None, None, None, :]
    rel_rows = ep.minimum(ep.maximum(rows - corners[:, :, 0, None, None], 0.0), h - 1.0)
    rel_cols = ep.minimum(ep.maximum(cols - corners[:, :, 1, None, None], 0.0), w - 1.0)
    index = (rel_rows * w + rel_cols).reshape((b * n, h * w))
    tiled = (canvas[:, None, :] + ep.zeros_like(corners[:, :, :1])).reshape((b * n, h * w))
    index = index.astype(ep.arange(like, 1).dtype)
    values = ep.take_along_axis(tiled, index, axis=-1).reshape((b, n, h, w))
    return ep.where(windows, values, 0.0)


def _pattern(
    height: int,
    width: int,
    rng: SampleRandom | None = None,
    flip: bool = False,
    style: tuple[int, float] = (2, 2.0),
) -> np.ndarray:
    """A pattern of two pseudo-Gaussian bumps of opposite signs (Square's update), split along
    the longer direction, of unit norm; a square pattern is transposed when ``flip`` (or, given
    ``rng``, at random). ``style``: the bumps' decay exponent and the norm (L2's ``(2, 2.0)``,
    AutoAttack's L1 ``(4, 1.0)``)."""
    p = style[1]
    if height >= 2:
        half = height // 2
        top, bottom = _bump(half, width, *style), _bump(height - half, width, *style)
        pattern = np.concatenate([top, -bottom], axis=0)
        if rng is not None:
            flip = bool(rng.shared().random() > 0.5)
        if height == width and flip:
            pattern = pattern.T
    elif width >= 2:
        half = width // 2
        left, right = _bump(1, half, *style), _bump(1, width - half, *style)
        pattern = np.concatenate([left, -right], axis=1)
    else:
        pattern = np.ones((1, 1))
    normalized: np.ndarray = pattern / (np.abs(pattern) ** p).sum() ** (1 / p)
    return normalized


def _bump(height: int, width: int, exponent: int = 2, p: float = 2.0) -> np.ndarray:
    """Concentric rectangles around the centre, of unit Lp norm; ring ``k`` weighs
    ``sum_{j >= k} 1/(j+1)**exponent``."""
    rows = np.abs(np.arange(height) - height // 2)[:, None]
    cols = np.abs(np.arange(width) - width // 2)[None, :]
    ring = np.maximum(rows, cols)
    rings = max(height // 2, width // 2) + 1
    weights = np.cumsum((1.0 / (np.arange(rings) + 1) ** exponent)[::-1])[::-1]
    bump = weights[ring]
    normalized: np.ndarray = bump / (np.abs(bump) ** p).sum() ** (1 / p)
    return normalized


class L2SquareAttack(_MassSquareAttack):
    """The Square attack in L2 (default 5000 queries, ``p_init=0.8``); see
    :class:`_SquareAttack`. Starts from a grid of pseudo-Gaussian patterns with random signs;
    each query moves the L2 mass of two windows into a new pattern in the first, then rescales
    the perturbation to norm epsilon and clips it to the bounds."""

    norm = l2

    def _start(
        self, origin: ep.Tensor, raw: ep.Tensor, eps: ep.Tensor, bounds: tuple[float, float]
    ) -> ep.Tensor:
        size = atleast_kd(l2(raw), raw.ndim)
        return (origin + eps * raw / (size + 1e-12)).clip(*bounds)

    def _make_move(self, layout: _Layout) -> Callable[..., ep.Tensor]:
        spatial, everything, channels = layout.spatial_axes, (1, 2, 3), layout.channels

        def move(
            delta: ep.Tensor, first: ep.Tensor, both: ep.Tensor, pattern: ep.Tensor,
            eps: ep.Tensor,
        ) -> ep.Tensor:
            inside = delta * first
            fresh = pattern + inside / (_squares(inside, spatial).sqrt() + 1e-12)
            free = ep.maximum(eps.square() - _squares(delta, everything), 0.0)
            mass = (free / channels + _squares(delta * both, everything)).sqrt()
            return fresh / (_squares(fresh, spatial).sqrt() + 1e-12) * mass

        return move

    def _make_limit(
        self, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]:
        def limit(origin: ep.Tensor, delta: ep.Tensor, eps: ep.Tensor) -> ep.Tensor:
            scale = eps / (_squares(delta, (1, 2, 3)).sqrt() + 1e-12)
            return (origin + delta * scale).clip(*bounds)

        return limit


class L1SquareAttack(_MassSquareAttack):
    """The Square attack in L1 (default 5000 queries, ``p_init=0.8``), for AutoAttack's L1
    version; see :class:`_SquareAttack`. AutoAttack's L1 update: each query moves the L1 mass
    of two windows (per channel) and the unused budget into a pseudo-Gaussian pattern in the
    first window, then projects the perturbation onto the intersection of the L1 ball and the
    bounds (which makes it sparse); the start is the projection of a grid of patterns."""

    norm = l1
    _style = (4, 1.0)

    def _start(
        self, origin: ep.Tensor, raw: ep.Tensor, eps: ep.Tensor, bounds: tuple[float, float]
    ) -> ep.Tensor:
        return self._make_limit(bounds)(origin, raw, eps)

    def _make_move(self, layout: _Layout) -> Callable[..., ep.Tensor]:
        spatial, channels = layout.spatial_axes, layout.channels

        def mass_over(t: ep.Tensor, axes: tuple[int, ...]) -> ep.Tensor:
            return t.abs().sum(axis=axes, keepdims=True)

        def move(
            delta: ep.Tensor, first: ep.Tensor, both: ep.Tensor, pattern: ep.Tensor,
            eps: ep.Tensor,
        ) -> ep.Tensor:
            inside = delta * first
            fresh = pattern + inside / (mass_over(inside, spatial) + 1e-12)
            free = ep.maximum(eps - mass_over(delta, (1, 2, 3)), 0.0)
            mass = free + channels * mass_over(delta * both, spatial)
            return fresh / (mass_over(fresh, spatial) + 1e-12) * mass

        return move

    def _make_limit(
        self, bounds: tuple[float, float]
    ) -> Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]:
        lower, upper = bounds

        def limit(origin: ep.Tensor, delta: ep.Tensor, eps: ep.Tensor) -> ep.Tensor:
            flat = flat_batch(origin)
            # a hair inside the ball, as AutoAttack: rounding must not leave it
            moved = l1_box_projection(
                flat_batch(delta), eps * (1 - 1e-6), lower - flat, upper - flat
            )
            return (origin + unflat_batch(moved, origin)).clip(lower, upper)

        return limit


LinfSquare = LinfSquareAttack
L2Square = L2SquareAttack
L1Square = L1SquareAttack
SquareAttack = LinfSquareAttack
norm_family(LinfSquareAttack, L2SquareAttack, L1SquareAttack)
