"""Sparse-RS (Croce, Andriushchenko, Singh, Flammarion & Hein, AAAI 2022, arXiv 2006.12834),
the L0 version: a score-based black-box attack that changes at most ``k = floor(epsilon)``
pixels (a pixel counts once however many of its channels change, :class:`L0PixelNorm`).

As the authors' code (github.com/fra31/sparse-rs, ``RSAttack`` with ``norm='L0'``): the start
sets ``k`` random pixels of each input to random vertices of the box (each channel at the lower
or the upper bound). Each query swaps ``m`` of the changed pixels back to the input and ``m``
unchanged pixels to random vertices, ``m = max(floor(p * k), 1)``, and keeps the swap when it
lowers the loss (the logit margin; cross-entropy for targeted criteria) or makes the sample
adversarial; adversarial samples stop. ``p`` starts at ``p_init`` and falls on the authors'
piecewise-constant schedule of the query count (rescaled to ``n_queries``).

Batched: per query, one model call for the whole batch; the changed pixels, the search state
and the swaps live on the device, and only the random choices (drawn per sample from the
seed) travel. Patches and frames, the paper's other threat models, are not implemented.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name
from ..models.base import Model, StepFn
from ..norms import L0PixelNorm
from ._budgeted import BudgetedSearch, Task
from ._flexible import check_channel_axis
from ._losses import class_logit, margin
from ._minimization import check_bool, check_float, check_int, check_seed

# The authors' schedule: (query fraction of 10000 above which p_init is divided, divisor).
_SCHEDULE = ((8000, 20), (6000, 15), (4000, 12), (2000, 10), (1000, 8), (500, 6), (200, 5),
             (50, 4), (0, 2))  # fmt: skip
_LOSSES = ("margin", "ce")
_CHECK_EVERY = 50  # queries between two checks whether every sample is adversarial


def p_schedule(p_init: float, query: int, n_queries: int, constant: bool = False) -> float:
    """The fraction of the ``k`` changed pixels swapped at ``query`` (1-based) out of
    ``n_queries`` (the authors' ``p_selection`` for L0)."""
    if constant:
        return p_init / 2
    scaled = int(query / n_queries * 10000)
    return p_init / next((d for limit, d in _SCHEDULE if scaled > limit), 1)


class _Pixels:
    """Inputs as a flat (N, P * C) tensor of P pixels of C channels each, channels last."""

    def __init__(self, shape: tuple[int, ...], channel_axis: int) -> None:
        axis = channel_axis + len(shape) if channel_axis < 0 else channel_axis
        if len(shape) < 3 or not 1 <= axis < len(shape):
            raise ValueError(
                f"inputs: Sparse-RS takes images with a channel axis, e.g. (N, C, H, W) for "
                f"channel_axis=1 or (N, H, W, C) for channel_axis=-1; got shape {shape} with "
                f"channel_axis={channel_axis} (reshape vectors to (N, 1, D))"
            )
        self.order = (0, *(i for i in range(1, len(shape)) if i != axis), axis)
        self.inverse = tuple(int(i) for i in np.argsort(self.order))
        self.moved = tuple(shape[i] for i in self.order)
        self.channels = shape[axis]
        self.count = math.prod(shape[1:]) // self.channels

    def flat(self, x: ep.Tensor) -> ep.Tensor:
        return x.transpose(self.order).reshape((-1, self.count * self.channels))

    def image(self, flat: ep.Tensor) -> ep.Tensor:
        return flat.reshape((-1, *self.moved[1:])).transpose(self.inverse)

    def columns(self, pixels: ep.Tensor) -> ep.Tensor:
        """(N, m) pixel ids -> (N, m * C) positions of their values in the flat tensor."""
        c = self.channels
        offsets = ep.arange(pixels, c).astype(pixels.dtype)[None, None, :]
        return (pixels[:, :, None] * c + offsets).reshape((pixels.shape[0], -1))


class _State(NamedTuple):
    """Per sample: the best point (flat), which pixels it changes, its loss, its success."""

    x: ep.Tensor  # (N, P * C)
    changed: ep.Tensor  # (N, P) float: 1 at the k changed pixels
    loss: ep.Tensor
    success: ep.Tensor


class _Draws(NamedTuple):
    """One query's random choices, on the device, as ranks: the changed pixels are numbered
    0..k-1 and the unchanged ones 0..P-k-1, each in pixel order."""

    out: ep.Tensor  # (N, m): ranks of the changed pixels that return to the input
    into: ep.Tensor  # (N, m): ranks of the unchanged pixels that get new values
    values: ep.Tensor  # (N, m * C): the new pixels' vertices, in pixel order


class SparseRSAttack(BudgetedSearch):
    """Sparse-RS in L0 (pixels), a fixed-epsilon attack: ``epsilon`` is the number of pixels
    that may change. See the module documentation.

    Args:
        n_queries: model evaluations per sample, the start included (default 10000, the
            paper's untargeted setting; it uses 100000 with ``p_init=0.1`` for targeted ones).
        p_init: the initial fraction of the changed pixels swapped per query (default 0.3).
        loss: ``"margin"`` (default: the true class's logit minus the largest other) or
            ``"ce"`` (minus the cross-entropy) for untargeted criteria; targeted criteria always
            minimise the cross-entropy of the target, as the authors' code does.
        channel_axis: the channel axis of the inputs (default 1: (N, C, H, W); -1 for
            (N, H, W, C)); a pixel is one position of the other axes.
        constant_schedule: keep ``p = p_init / 2`` throughout (default False).
        seed: seed of the random search; None draws fresh randomness on every call.
    """

    requires_grad = False
    returns_projected = True
    norm = L0PixelNorm(channel_axis=1)

    def __init__(
        self,
        *,
        n_queries: int = 10000,
        p_init: float = 0.3,
        loss: str = "margin",
        channel_axis: int = 1,
        constant_schedule: bool = False,
        seed: int | None = None,
    ) -> None:
        self.n_queries = check_int(n_queries, "n_queries")
        self.p_init = check_float(p_init, "p_init")
        if self.p_init > 1:
            raise ValueError(f"p_init: expected a number in (0, 1], got {p_init!r}")
        if loss not in _LOSSES:
            raise ValueError(f"loss: expected 'margin' or 'ce', got {loss!r}")
        self.loss = loss
        axis = check_channel_axis(channel_axis)
        if axis is None:
            raise ValueError("channel_axis: expected 1 (channels first) or -1 (channels last)")
        self.channel_axis = axis
        vars(self)["norm"] = L0PixelNorm(channel_axis=axis)
        self.constant_schedule = check_bool(constant_schedule, "constant_schedule")
        self.seed = check_seed(seed)

    def _search(self, task: Task) -> ep.Tensor:
        model, inputs, criterion, epsilon, classes, targeted = task
        pixels = _Pixels(tuple(inputs.shape), self.channel_axis)
        k = min(math.floor(epsilon + 1e-6), pixels.count)
        if k == 0:
            return inputs
        rng = self._generator()
        origin = pixels.flat(inputs)
        loss_of = _loss(self.loss, targeted)
        state = self._start(model, origin, pixels, k, rng)
        logits = model(pixels.image(state.x))
        already = criterion(inputs, model(inputs))
        success = criterion(pixels.image(state.x), logits)
        state = _State(
            ep.where(atleast_kd(already, 2), origin, state.x), state.changed,
            loss_of(logits, classes), ep.logical_or(already, success),
        )  # fmt: skip
        if k == pixels.count:  # every pixel changed: there is nothing to swap
            return pixels.image(state.x)
        key = (tuple(inputs.shape), self.channel_axis, self.loss, targeted)
        propose = model.compiled(
            self._step_key("propose", *key, settings=()),
            lambda: _make_propose(model, pixels, loss_of),
        )
        accept = model.compiled(self._step_key("accept", settings=()), lambda: _accept)
        for count in progress.steps(self.n_queries - 1):
            query = count + 1  # query 0 evaluated the start
            draws = self._draws(model, pixels, k, query, rng, origin)
            candidate, logits, loss = propose(state, origin, classes, draws)
            now = criterion(pixels.image(candidate.x), logits)
            state = accept(state, candidate._replace(loss=loss, success=now))
            if query % _CHECK_EVERY == 0 and bool(state.success.all().item()):
                break
        return pixels.image(state.x)

    def _start(
        self, model: Model, origin: ep.Tensor, pixels: _Pixels, k: int, rng: SampleRandom
    ) -> _State:
        """``k`` random pixels per sample set to random vertices of the box."""
        n, count, c = origin.shape[0], pixels.count, pixels.channels
        keys = rng.random(size=(n, count))
        chosen = np.zeros((n, count))
        np.put_along_axis(chosen, np.argsort(keys, axis=1, kind="stable")[:, :k], 1.0, axis=1)
        changed = ep.from_numpy(origin, chosen.astype(dtype_name(origin)))
        values = _vertices(model, rng, (n, count * c), origin)
        x = ep.where(_per_channel(changed, c) > 0, values, origin)
        return _State(x, changed, ep.zeros(origin, (n,)), ep.zeros(origin, (n,)).bool())

    def _draws(
        self, model: Model, pixels: _Pixels, k: int, query: int, rng: SampleRandom,
        like: ep.Tensor,
    ) -> _Draws:  # fmt: skip
        """The changed pixels to reset, the unchanged ones to set and their values."""
        p = p_schedule(self.p_init, query, self.n_queries, self.constant_schedule)
        spare = pixels.count - k
        m = min(max(int(p * k), 1), k, spare)
        n, dtype = like.shape[0], dtype_name(like)
        out = _distinct(rng, n, k, m).astype(dtype)
        into = _distinct(rng, n, spare, m).astype(dtype)
        values = _vertices(model, rng, (n, m * pixels.channels), like)
        return _Draws(ep.from_numpy(like, out), ep.from_numpy(like, into), values)


def _distinct(rng: SampleRandom, n: int, population: int, size: int) -> np.ndarray:
    """Per sample ``size`` distinct integers of ``range(population)``, (n, size) int64: Floyd's
    algorithm on one uniform draw (a uniformly random subset)."""
    u = rng.random(size=(n, size))
    chosen = np.empty((n, size), dtype=np.int64)
    for j in range(size):
        top = population - size + j
        pick = np.minimum(np.floor(u[:, j] * (top + 1)).astype(np.int64), top)
        seen = (chosen[:, :j] == pick[:, None]).any(axis=1)
        chosen[:, j] = np.where(seen, top, pick)
    return chosen


def _vertices(
    model: Model, rng: SampleRandom, shape: tuple[int, int], like: ep.Tensor
) -> ep.Tensor:
    """Values at the lower or the upper bound, each with probability 1/2."""
    lower, upper = model.bounds
    bits = rng.integers(0, 2, size=shape)
    return ep.from_numpy(like, (lower + (upper - lower) * bits).astype(dtype_name(like)))


def _per_channel(mask: ep.Tensor, channels: int) -> ep.Tensor:
    """(N, P) -> (N, P * C): each pixel's entry repeated for its channels."""
    if channels == 1:
        return mask
    repeated = ep.tile(mask[:, :, None], (1, 1, channels))
    return repeated.reshape((mask.shape[0], -1))


def _make_propose(model: Model, pixels: _Pixels, loss_of: Any) -> StepFn:
    """``propose(state, origin, classes, draws) -> (candidate state, logits, loss)``: the
    state's point with the drawn changed pixels reset to the input and the drawn unchanged
    ones set to the drawn vertices."""
    c = pixels.channels

    def propose(
        state: _State, origin: ep.Tensor, classes: ep.Tensor, draws: _Draws
    ) -> tuple[_State, ep.Tensor, ep.Tensor]:
        unchanged = 1 - state.changed
        leaving = _picked(state.changed, draws.out)
        entering = _picked(unchanged, draws.into)
        # The j-th entering pixel (in pixel order) takes the j-th drawn values.
        slot = ep.maximum(entering.astype(origin.dtype).cumsum(axis=-1) - 1, 0.0)
        columns = _per_channel(slot, c) * c + _channel_offsets(origin, pixels)
        new = ep.take_along_axis(draws.values, columns.astype(_index_dtype(origin)), axis=-1)
        x = ep.where(_per_channel(entering, c), new, state.x)
        x = ep.where(_per_channel(leaving, c), origin, x)
        changed = ep.where(entering, 1.0, ep.where(leaving, 0.0, state.changed))
        logits = model(pixels.image(x))
        candidate = _State(x, changed, state.loss, state.success)
        return candidate, logits, loss_of(logits, classes)

    return propose


def _picked(members: ep.Tensor, ranks: ep.Tensor) -> ep.Tensor:
    """Bool (N, P): the ``members`` (a 0/1 mask) whose rank among the members of their row
    (0, 1, ... in pixel order) is one of ``ranks`` (N, m)."""
    rank = members.cumsum(axis=-1) - 1
    hit = (rank[:, :, None] == ranks[:, None, :]).any(axis=-1)
    return ep.logical_and(members > 0, hit)


def _channel_offsets(like: ep.Tensor, pixels: _Pixels) -> ep.Tensor:
    """(1, P * C): the channel of each value of the flat layout."""
    channels = ep.arange(like, pixels.channels).astype(like.dtype)
    return (ep.zeros(like, (pixels.count, 1)) + channels[None, :]).reshape((1, -1))


def _index_dtype(like: ep.Tensor) -> Any:
    """The dtype the backend's ``argsort`` returns: what its gathers take."""
    return ep.arange(like, 1).dtype


def _loss(kind: str, targeted: bool) -> Any:
    """The loss the search lowers: the margin, or the cross-entropy (targeted: of the
    target; untargeted: its negative, of the label)."""

    def loss(logits: ep.Tensor, classes: ep.Tensor) -> ep.Tensor:
        if kind == "margin" and not targeted:
            return margin(logits, classes, False)
        entropy = -class_logit(ep.log_softmax(logits, axis=-1), classes)
        return entropy if targeted else -entropy

    return loss


def _accept(best: _State, candidate: _State) -> _State:
    """The candidate where it lowers the loss or succeeds, for samples not yet adversarial."""
    active = ep.logical_not(best.success)
    take = ep.logical_and(active, ep.logical_or(candidate.loss < best.loss, candidate.success))
    rows = atleast_kd(take, 2)
    return _State(
        ep.where(rows, candidate.x, best.x),
        ep.where(rows, candidate.changed, best.changed),
        ep.where(take, candidate.loss, best.loss),
        ep.logical_or(best.success, ep.logical_and(active, candidate.success)),
    )
