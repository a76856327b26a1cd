"""Per-sample random numbers: a sample's draws depend on the seed and its id, nothing else.

A sharded or resumed evaluation attacks a sample in whatever batch it lands in, with whatever
batch size. So every draw is keyed by ``(seed, stream, sample id, draw number)`` with a
counter-based generator (splitmix64), evaluated for the whole batch in one vectorised call:
row ``i`` of a draw is the same whichever other samples share the batch, and in whichever order.

Attacks get a :class:`SampleRandom` from ``Attack._generator()``. Its methods take NumPy's
``Generator`` arguments; ``size[0]`` must be the number of samples (one row per sample). The
draw number counts calls, so a sample's numbers also depend on which draws came before: an
attack makes the same sequence of calls whatever the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_DRAW = np.uint64(0xD1B54A32D192ED03)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> _SHIFTS[0])) * _MUL1
    z = (z ^ (z >> _SHIFTS[1])) * _MUL2
    mixed: np.ndarray = z ^ (z >> _SHIFTS[2])
    return mixed


def _word(value: int) -> np.ndarray:
    return np.array([value & _MASK], dtype=np.uint64)


class SampleRandom:
    """Random numbers for a batch of samples with global ``ids``.

    Args:
        seed: the attack's seed; None draws fresh entropy once (the numbers then differ from
            call to call but stay consistent within one).
        ids: one integer id per sample of the batch; None: each draw's rows are samples
            0, 1, ... (the positions in the batch).
        stream: separates independent uses of one seed (e.g. the runs of a repeated attack).
    """

    def __init__(self, seed: int | None, ids: Any, stream: int = 0) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy) & _MASK  # type: ignore[arg-type]
        self._base = _mix(_mix(_word(seed)) ^ _word(stream * 0x2545F4914F6CDD1D + 1))
        self._ids = None if ids is None else check_ids(ids, "ids")
        self._count = [0]  # shared with views from take(): one sequence of draws
        self._fixed: int | None = None  # a fork's one draw number
        self._copies = 1  # see take()

    @property
    def ids(self) -> np.ndarray | None:
        """The samples' ids, one per row (None: positions)."""
        return self._ids

    def take(self, rows: Any, copies: int = 1) -> SampleRandom:
        """The generator of a subset of the samples (``rows``: positions in this batch, repeats
        allowed); it shares the draw count, so draws stay in step with the whole batch's.

        ``copies``: the rows repeated that many times (a batch of ``copies * len(rows)`` rows,
        copy ``j`` after copy ``j - 1``); one draw then gives copy ``j`` the numbers that the
        ``j``-th of ``copies`` successive draws on ``rows`` would give, so runs stacked in one
        batch draw what they would draw one after the other."""
        rows = np.asarray(rows, dtype=np.int64)
        view = object.__new__(SampleRandom)
        view._base = self._base
        ids = rows if self._ids is None else self._ids[rows]
        view._ids = np.tile(ids, copies) if copies > 1 else ids
        view._count = self._count
        view._fixed = self._fixed
        view._copies = copies
        return view

    def fork(self) -> SampleRandom:
        """One long stream per sample, read in pieces: every draw of the fork uses the same
        draw number (taken from this generator), and ``at=`` says where in the stream a
        piece starts, so how a long draw is split into pieces changes no number."""
        fork = object.__new__(SampleRandom)
        fork._base, fork._ids, fork._count = self._base, self._ids, [0]
        fork._fixed = self._next()
        fork._copies = 1
        return fork

    def shared(self) -> np.random.Generator:
        """A NumPy generator for draws common to the whole batch (not per sample): it
        depends on the seed, the stream and the draw number only."""
        draw = self._next()
        return np.random.default_rng([int(self._base[0]), draw])

    # ------------------------------------------------------------------ draws
    def random(self, size: int | Sequence[int], at: int = 0) -> np.ndarray:
        """Uniform floats in [0, 1), float64; ``at``: where a fork's piece starts, in values
        per sample (see :meth:`fork`)."""
        return (self._bits(size, at) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def uniform(
        self, low: Any = 0.0, high: Any = 1.0, size: int | Sequence[int] = (), at: int = 0
    ) -> np.ndarray:
        """Uniform floats in [low, high), float64."""
        random = self.random(size, at)
        return np.asarray(low + (np.asarray(high) - low) * random, dtype=np.float64)

    def standard_normal(self, size: int | Sequence[int], at: int = 0) -> np.ndarray:
        """Standard normal floats (Box-Muller), float64."""
        shape = _shape(size)
        both = self.random((*shape, 2), 2 * at)
        radius = np.sqrt(-2.0 * np.log1p(-both[..., 0]))
        return np.asarray(radius * np.cos(2.0 * np.pi * both[..., 1]))

    def normal(
        self, loc: Any = 0.0, scale: Any = 1.0, size: int | Sequence[int] = ()
    ) -> np.ndarray:
        """Normal floats with mean ``loc`` and standard deviation ``scale``, float64."""
        return np.asarray(loc + np.asarray(scale) * self.standard_normal(size), np.float64)

    def exponential(self, size: int | Sequence[int]) -> np.ndarray:
        """Exponential floats with scale 1, float64."""
        return np.asarray(-np.log1p(-self.random(size)))

    def integers(self, low: Any, high: Any = None, size: int | Sequence[int] = ()) -> np.ndarray:
        """Integers in [low, high) (``high`` None: in [0, low)), int64; bounds may be arrays
        that broadcast against ``size``."""
        if high is None:
            low, high = 0, low
        span = np.asarray(high) - np.asarray(low)
        offset = np.floor(self.random(size) * span).astype(np.int64)
        return np.asarray(np.asarray(low) + np.minimum(offset, span - 1), dtype=np.int64)

    def choice(self, a: Any, size: int | Sequence[int]) -> np.ndarray:
        """Elements of the 1-D array ``a`` drawn uniformly with replacement."""
        values = np.asarray(a)
        return np.asarray(values[self.integers(0, len(values), size)])

    def permutations(self, k: int) -> np.ndarray:
        """One random permutation of ``range(k)`` per sample, shape (N, k)."""
        if self._ids is None:
            raise ValueError("permutations: the number of samples is unknown; use random((n, k))")
        return np.argsort(self.random((len(self._ids), k)), axis=1, kind="stable")

    # ------------------------------------------------------------------ internals
    def _next(self) -> int:
        if self._fixed is not None:
            return self._fixed
        draw = self._count[0]
        self._count[0] += 1
        return draw

    def _bits(self, size: int | Sequence[int], at: int = 0) -> np.ndarray:
        shape = _shape(size)
        ids = np.arange(shape[0] if shape else 0) if self._ids is None else self._ids
        if not shape or shape[0] != len(ids):
            raise ValueError(
                f"size: per-sample draws need size[0] == the number of samples "
                f"({len(ids)}), got {shape}; use take(rows) for a subset or shared() "
                "for draws common to the batch"
            )
        draw: np.ndarray = _word(self._next())
        if self._copies > 1:  # copy j: the draw number j places later
            if self._fixed is None:
                self._count[0] += self._copies - 1
            copy = np.arange(len(ids), dtype=np.uint64) // np.uint64(len(ids) // self._copies)
            draw = draw + copy
        rows = _mix(self._base ^ (ids.astype(np.uint64) * _GOLDEN))
        keys = _mix(rows ^ _mix(draw * _DRAW + _GOLDEN))
        count = int(np.prod(shape[1:], dtype=np.int64))
        steps = (np.arange(at + 1, at + count + 1, dtype=np.uint64) * _GOLDEN)[None, :]
        return _mix(keys[:, None] + steps).reshape(shape)


def check_ids(ids: Any, name: str, n: int | None = None) -> np.ndarray:
    """``ids`` as a 1-D int64 array of ``n`` non-negative sample ids, else a ValueError."""
    array = np.asarray(ids)
    if array.ndim != 1 or array.dtype.kind not in "iu" or (n is not None and len(array) != n):
        expected = "one" if n is None else f"{n}"
        raise ValueError(
            f"{name}: expected a 1-D integer array with {expected} id per sample, got "
            f"{array.dtype} of shape {array.shape}; default None numbers the samples 0..N-1"
        )
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: sample ids must be >= 0, got {int(array.min())}")
    return array.astype(np.int64)


def _shape(size: int | Sequence[int]) -> tuple[int, ...]:
    return (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
