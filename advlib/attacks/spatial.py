"""Adversarial rotations and translations (Engstrom et al., 2019), Foolbox's SpatialAttack.

Every transform is Foolbox's PyTorch one (``grid_sample`` with ``align_corners=True``, zero
padding), written once: output pixel ``(i, j)`` at normalised coordinates ``(u_j, v_i)`` in
[-1, 1] reads the input bilinearly at ``(cos a * u - sin a * v + 2 dx / H,
sin a * u + cos a * v + 2 dy / W)``, outside the image as 0. The sampling positions and weights
depend on the angles and shifts only, so they are computed on the host and the images are
gathered on the model's backend.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any

import eagerpy as ep
import numpy as np

from .._tensors import dtype_name
from ..norms import linf
from ._minimization import Minimizer, Problem, check_bool, check_int, check_seed
from .base import Repeated
from .blur import Layout, check_channel_axis
from .inversion import keep_first


def sampling(
    angles: np.ndarray, shifts: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """For transforms of ``angles`` (degrees, shape (N,)) and ``shifts`` ((N, 2) pixels),
    the bilinear sampling of (H, W) images: flat source indices (N, 4, H * W) of the four
    neighbours of every output pixel, and their weights (N, 4, H * W), 0 outside the image."""
    phi = np.deg2rad(angles)[:, None, None]
    v, u = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    sx = np.cos(phi) * u - np.sin(phi) * v + (shifts[:, 0] / (height / 2))[:, None, None]
    sy = np.sin(phi) * u + np.cos(phi) * v + (shifts[:, 1] / (width / 2))[:, None, None]
    px, py = (sx + 1) / 2 * (width - 1), (sy + 1) / 2 * (height - 1)
    x0, y0 = np.floor(px), np.floor(py)
    indices, weights = [], []
    for cx, cy in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
        weight = (1 - np.abs(px - cx)) * (1 - np.abs(py - cy))
        inside = (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        flat = np.clip(cy, 0, height - 1) * width + np.clip(cx, 0, width - 1)
        indices.append(flat.reshape(len(angles), -1).astype(np.int64))
        weights.append(np.where(inside, weight, 0.0).reshape(len(angles), -1))
    return np.stack(indices, axis=1), np.stack(weights, axis=1)


def transform(images: ep.Tensor, angles: np.ndarray, shifts: np.ndarray) -> ep.Tensor:
    """Images (N, C, H, W) rotated by ``angles`` (degrees, shape (N,)) and shifted by
    ``shifts`` ((N, 2) pixels), one transform per image (see the module documentation)."""
    n, c, h, w = images.shape
    indices, weights = sampling(angles, shifts, h, w)
    flat = images.reshape((n, c, h * w))

    def corner(k: int) -> ep.Tensor:
        where = np.ascontiguousarray(np.broadcast_to(indices[:, None, k], (n, c, h * w)))
        gathered = ep.take_along_axis(flat, ep.from_numpy(images, where), axis=-1)
        return gathered * ep.from_numpy(images, weights[:, None, k].astype(dtype_name(images)))

    out = corner(0) + corner(1) + corner(2) + corner(3)
    return out.reshape((n, c, h, w))


def _check_number(value: Any, name: str) -> float:
    valid = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if not valid or not (math.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


class SpatialAttack(Minimizer):
    """Rotations and translations that fool the model: a grid of angles and shifts, or
    ``random_steps`` random ones per sample, keeping each sample's first adversarial
    transform; samples never fooled are returned unchanged.

    The budget is the transform's range (``max_rotation``, ``max_translation``), not an
    epsilon: call it with ``epsilons=None`` (the default) for Foolbox's results. A numeric
    epsilon measures the change in Linf like any minimization attack (``clipped`` is the
    transformed image projected into the ball; epsilon 1 in bounds (0, 1) keeps it whole).

    Args:
        max_translation: the largest shift in pixels, each direction (default 3).
        max_rotation: the largest rotation in degrees, each direction (default 30).
        num_translations: shifts per axis on the grid, from -max to max (default 5).
        num_rotations: angles on the grid, from -max to max (default 5).
        grid_search: search the grid (default True); False: random transforms.
        random_steps: random transforms per sample when ``grid_search`` is False (default 100).
        channel_axis: the channel axis of 4-d images, 1 or 3 / -1; default None: from the
            model's ``data_format`` (a ValueError when it has none).
        seed: seed of the random transforms; default None draws fresh ones on every call.
    """

    requires_grad = False
    norm = linf

    def __init__(
        self,
        max_translation: float = 3,
        max_rotation: float = 30,
        num_translations: int = 5,
        num_rotations: int = 5,
        grid_search: bool = True,
        random_steps: int = 100,
        *,
        channel_axis: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.max_translation = _check_number(max_translation, "max_translation")
        self.max_rotation = _check_number(max_rotation, "max_rotation")
        self.num_translations = check_int(num_translations, "num_translations")
        self.num_rotations = check_int(num_rotations, "num_rotations")
        self.grid_search = check_bool(grid_search, "grid_search")
        self.random_steps = check_int(random_steps, "random_steps")
        self.channel_axis = check_channel_axis(channel_axis)
        self.seed = check_seed(seed)

    def repeat(self, times: int) -> Repeated:
        """Random search only (as Foolbox): the grid search is deterministic."""
        if self.grid_search:
            raise ValueError(
                "times: SpatialAttack with grid_search=True is deterministic, so repeating it "
                "changes nothing; use grid_search=False (random transforms) to repeat it"
            )
        return super().repeat(times)

    def _transforms(self, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per search step: the angles (N,) and shifts (N, 2) to try."""
        if self.grid_search:
            rotations = np.linspace(-self.max_rotation, self.max_rotation, self.num_rotations)
            shifts = np.linspace(-self.max_translation, self.max_translation, self.num_translations)
            for angle in rotations:
                for dx in shifts:
                    for dy in shifts:
                        yield np.full(n, angle), np.tile([dx, dy], (n, 1))
            return
        rng = self._generator()
        steps = self.random_steps
        angles = rng.uniform(-self.max_rotation, self.max_rotation, size=(n, steps))
        moves = rng.uniform(-self.max_translation, self.max_translation, size=(n, steps, 2))
        for k in range(steps):
            yield angles[:, k], moves[:, k]

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        layout = Layout.of(model, inputs, self.channel_axis, self._name())
        images = layout.first(inputs)
        count = self.num_rotations * self.num_translations**2 if self.grid_search else (
            self.random_steps)  # fmt: skip
        transforms = self._transforms(inputs.shape[0])

        def moved(step: int) -> ep.Tensor:
            angles, shifts = next(transforms)
            return layout.back(transform(images, angles, shifts)).clip(*model.bounds)

        return keep_first(model, criterion, inputs, count, moved)
