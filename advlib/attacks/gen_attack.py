"""GenAttack (Alzantot et al., 2019): a genetic search for Linf adversarials.

Each sample keeps a population of noise patterns within the epsilon box. Every generation
evaluates them all (fitness: the target's logit minus the log-sum-exp of the other logits),
keeps the best (the elite), and breeds the rest from parents drawn with probabilities
``softmax(fitness / sampling_temperature)``: uniform crossover weighted by the parents'
probabilities, then mutation of each value with ``mutation_probability`` by up to
``mutation_range * epsilon``. Both rates grow when the elite stalls for 100 generations.

A sample's result is its first adversarial elite (it stops evolving then), else the last
elite. With ``reduced_dims`` the noise lives on a smaller (h, w) grid and is resized
bilinearly to the images.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .. import _progress as progress
from .._random import SampleRandom
from .._tensors import atleast_kd, dtype_name
from ..criteria import Criterion
from ..models.base import Model
from ..norms import linf
from ._minimization import check_float, check_int, check_seed
from ._signatures import keyword_constructor
from .base import FixedEpsilonAttack
from .blur import Layout, check_channel_axis, separable

# Whether every sample was fooled is read every this many generations (a host sync).
_CHECK_EVERY = 10
_PLATEAU = 100  # generations without a new elite that count as a plateau


def resize_matrix(size: int, source: int) -> np.ndarray:
    """The (size, source) matrix of 1-D bilinear resizing with half-pixel centres and
    edges repeated (Foolbox's ``rescale_images``), float64."""
    rate = size / source
    positions = np.linspace(0.5 / rate, source - 0.5 / rate, size) - 0.5
    low = np.floor(positions)
    matrix = np.zeros((size, source))
    rows = np.arange(size)
    np.add.at(matrix, (rows, np.clip(low, 0, source - 1).astype(int)), low + 1 - positions)
    np.add.at(matrix, (rows, np.clip(low + 1, 0, source - 1).astype(int)), positions - low)
    return matrix


def fitness(logits: ep.Tensor, targets: ep.Tensor) -> ep.Tensor:
    """The target's logit minus the log-sum-exp of the other logits, per sample."""
    hot = ep.onehot_like(logits, targets) > 0
    others = ep.where(hot, -ep.inf, logits)
    top = others.max(axis=-1, keepdims=True)
    spread = (others - top).exp().sum(axis=-1).log() + top[:, 0]
    target = ep.where(hot, logits, ep.zeros_like(logits)).sum(axis=-1)
    return target - spread


class _Search(NamedTuple):
    """What one sample's evolution needs, fixed for the call."""

    model: Model
    inputs: ep.Tensor
    criterion: Criterion
    classes: ep.Tensor  # the targets, or the labels to move away from
    targeted: bool
    epsilon: float
    layout: Layout | None  # with reduced_dims: how to resize the noise to the images


class GenAttack(FixedEpsilonAttack):
    """A genetic black-box search for Linf adversarials; see the module documentation.
    Targeted criteria (TargetedMisclassification) as in Foolbox; labels too (Foolbox refuses
    them): the fitness is then the other logits' log-sum-exp minus the label's logit.

    Args:
        steps: generations at most (default 1000), ``population`` model calls each.
        population: noise patterns per sample (default 10).
        mutation_probability: the smallest chance that a value mutates (default 0.1).
        mutation_range: the smallest mutation, as a fraction of epsilon (default 0.15).
        sampling_temperature: temperature of the parents' softmax (default 0.3).
        channel_axis: with ``reduced_dims``, the channel axis of 4-d images, 1 or 3 / -1;
            default None: from the model's ``data_format``.
        reduced_dims: ``(height, width)`` of the noise grid, resized to the images; default
            None: noise of the inputs' own shape.
        seed: seed of the search; default None draws fresh randomness on every call.
    """

    requires_grad = False
    norm = linf

    __init__ = keyword_constructor(
        steps=1000,
        population=10,
        mutation_probability=0.10,
        mutation_range=0.15,
        sampling_temperature=0.3,
        channel_axis=None,
        reduced_dims=None,
        seed=None,
    )

    def _configure(self, **arguments: Any) -> None:
        self.steps = check_int(arguments["steps"], "steps")
        self.population = check_int(arguments["population"], "population", minimum=2)
        self.mutation_probability = check_float(
            arguments["mutation_probability"], "mutation_probability"
        )
        self.mutation_range = check_float(arguments["mutation_range"], "mutation_range")
        self.sampling_temperature = check_float(
            arguments["sampling_temperature"], "sampling_temperature"
        )
        self.channel_axis = check_channel_axis(arguments["channel_axis"])
        self.reduced_dims = _check_dims(arguments["reduced_dims"])
        self.seed = check_seed(arguments["seed"])

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        classes, targeted = criterion.gradient_target()
        layout = None
        if self.reduced_dims is not None:
            layout = Layout.of(model, inputs, self.channel_axis, self._name())
        search = _Search(model, inputs, criterion, classes, targeted, epsilon, layout)
        return self._evolve(search, self._generator())

    def _noise_shape(self, search: _Search) -> tuple[int, ...]:
        shape = tuple(search.inputs.shape[1:])
        if search.layout is None or self.reduced_dims is None:
            return shape
        channels = shape[-1] if search.layout.channels_last else shape[0]
        return (*self.reduced_dims, channels) if search.layout.channels_last else (
            channels, *self.reduced_dims)  # fmt: skip

    def _apply(self, search: _Search, noise: ep.Tensor) -> ep.Tensor:
        """The inputs plus ``noise`` (resized to them), within epsilon and the bounds."""
        x, layout = search.inputs, search.layout
        if layout is not None:
            height, width = layout.size(x)
            small = layout.first(noise)
            rows, columns = (
                ep.from_numpy(x, resize_matrix(size, source).astype(dtype_name(x)))
                for size, source in ((height, small.shape[2]), (width, small.shape[3]))
            )
            noise = layout.back(separable(small, rows, columns))
        perturbed: ep.Tensor = x + noise.clip(-search.epsilon, search.epsilon)
        return perturbed.clip(*search.model.bounds)

    def _evolve(self, search: _Search, rng: SampleRandom) -> ep.Tensor:
        x, eps, n, size = search.inputs, search.epsilon, search.inputs.shape[0], self.population
        shape = self._noise_shape(search)
        dtype = dtype_name(x)
        pops = [
            ep.from_numpy(x, draw.astype(dtype))
            for draw in np.moveaxis(rng.uniform(-eps, eps, size=(n, size, *shape)), 1, 0)
        ]
        result = self._apply(search, pops[0])
        found = ep.zeros(x, n) > 0
        stalled = ep.zeros(x, n)
        plateaus = ep.zeros(x, n)
        for step in progress.steps(self.steps):
            if step % _CHECK_EVERY == 0 and bool(found.all().item()):
                break
            points = [self._apply(search, p) for p in pops]
            logits = [search.model(p) for p in points]
            sign = 1.0 if search.targeted else -1.0
            scores = ep.stack([sign * fitness(lg, search.classes) for lg in logits], axis=1)
            elite = scores.argmax(axis=1)
            pick = ep.onehot_like(scores, elite) > 0
            best = _select(points, pick)
            fooled = _select(
                [search.criterion(p, lg) for p, lg in zip(points, logits, strict=True)], pick
            )
            new = ep.logical_and(fooled, ep.logical_not(found))
            result = ep.where(atleast_kd(new, x.ndim), best, result)
            found = ep.logical_or(found, fooled)
            stalled = ep.where(elite == 0, stalled + 1, ep.zeros_like(stalled))
            plateaus = ep.where(stalled >= _PLATEAU, plateaus + 1, plateaus)
            stalled = ep.where(stalled >= _PLATEAU, ep.zeros_like(stalled), stalled)
            decay = (math.log(0.9) * plateaus).exp()
            rates = (
                ep.maximum(0.5 * decay, self.mutation_probability),
                ep.maximum(0.4 * decay, self.mutation_range) * eps,
            )
            probs = ep.softmax(scores / self.sampling_temperature, axis=1)
            pops = [_select(pops, pick), *self._children(pops, probs, rates, rng, eps)]
        return ep.where(atleast_kd(found, x.ndim), result, self._apply(search, pops[0]))

    def _children(
        self,
        pops: list[ep.Tensor],
        probs: ep.Tensor,
        rates: tuple[ep.Tensor, ep.Tensor],
        rng: SampleRandom,
        eps: float,
    ) -> list[ep.Tensor]:
        """``population - 1`` children per sample from parents drawn by ``probs`` (N, P)."""
        n, like = probs.shape[0], pops[0]
        shape, dtype = tuple(like.shape), dtype_name(like)
        cumulative = ep.cumsum(probs, axis=1)
        draws = ep.from_numpy(probs, rng.random(size=(n, 2 * self.population - 2)).astype(dtype))
        chosen = (draws[:, :, None] >= cumulative[:, None, :]).astype(probs.dtype).sum(axis=2)
        chosen = ep.minimum(chosen, self.population - 1).astype(ep.argmax(probs, 1).dtype)
        chance, spread = (atleast_kd(r, like.ndim) for r in rates)
        children = []
        for i in range(self.population - 1):
            first = ep.onehot_like(probs, chosen[:, 2 * i]) > 0
            second = ep.onehot_like(probs, chosen[:, 2 * i + 1]) > 0
            p_first, p_second = (ep.where(f, probs, 0.0).sum(axis=1) for f in (first, second))
            weight = atleast_kd(p_first / (p_first + p_second), like.ndim)
            cross, mutate, amount = (
                ep.from_numpy(like, draw.astype(dtype))
                for draw in (
                    rng.random(size=shape),
                    rng.random(size=shape),
                    rng.uniform(-1.0, 1.0, size=shape),
                )
            )
            child = ep.where(cross < weight, _select(pops, first), _select(pops, second))
            child = ep.where(mutate <= chance, child + amount * spread, child)
            children.append(child.clip(-eps, eps))
        return children


def _select(items: list[ep.Tensor], flags: ep.Tensor) -> ep.Tensor:
    """Per sample, the item that the one-hot bool ``flags`` (N, P) mark."""
    chosen = items[-1]
    for i in range(len(items) - 2, -1, -1):
        chosen = ep.where(atleast_kd(flags[:, i], items[i].ndim), items[i], chosen)
    return chosen


def _check_dims(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    dims = tuple(value) if isinstance(value, tuple | list) else ()
    if len(dims) != 2 or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ValueError(f"reduced_dims: expected None or (height, width) ints >= 1, got {value!r}")
    return int(dims[0]), int(dims[1])
