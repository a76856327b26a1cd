"""Gaussian blur of growing strength, and the image layout the corruption attacks share.

The blur is ``scipy.ndimage.gaussian_filter`` (mode "reflect", truncated at 4 sigma) over
the two spatial axes, written once: each 1-D pass is a matrix product with a banded matrix
built on the host, so it runs on every backend and device without a framework branch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import eagerpy as ep
import numpy as np

from .._tensors import dtype_name
from ..models.base import Model
from ._minimization import Problem, check_float, check_int
from ._signatures import keyword_constructor
from .inversion import _FlexibleMinimizer, keep_first

_TRUNCATE = 4.0  # scipy's default: the kernel reaches 4 sigma


def check_channel_axis(value: Any) -> int | None:
    """``channel_axis``: None, 1 (channels first) or 3 / -1 (channels last), as given."""
    if value is not None and (isinstance(value, bool) or value not in (1, 3, -1)):
        raise ValueError(
            f"channel_axis: expected None, 1 (channels first) or 3 / -1 (channels last), "
            f"got {value!r}"
        )
    return value


class Layout(NamedTuple):
    """Where the channels of a batch of images (N, C, H, W) or (N, H, W, C) are."""

    channels_last: bool

    @classmethod
    def of(cls, model: Model, inputs: ep.Tensor, channel_axis: int | None, attack: str) -> Layout:
        """The layout from ``channel_axis`` (1, 3 or -1), else from ``model.data_format``;
        a ValueError when the inputs are not 4-d or the layout cannot be known."""
        if inputs.ndim != 4:
            raise ValueError(
                f"inputs: {attack} needs images of shape (N, C, H, W) or (N, H, W, C), got "
                f"shape {tuple(inputs.shape)}"
            )
        if channel_axis is not None:
            return cls(channel_axis != 1)
        try:
            data_format = getattr(model, "data_format", None)
        except AttributeError:
            data_format = None
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(
                f"channel_axis: {attack} needs to know which axis of the images holds the "
                f"channels, and {type(model).__name__} has no data_format; pass "
                f"channel_axis=1 (channels first) or -1 (channels last) to {attack}(...), or "
                "data_format='channels_first' or 'channels_last' to the model wrapper"
            )
        return cls(data_format == "channels_last")

    def first(self, x: ep.Tensor) -> ep.Tensor:
        """``x`` as (N, C, H, W)."""
        return x.transpose((0, 3, 1, 2)) if self.channels_last else x

    def back(self, x: ep.Tensor) -> ep.Tensor:
        """(N, C, H, W) back to this layout."""
        return x.transpose((0, 2, 3, 1)) if self.channels_last else x

    def size(self, x: ep.Tensor) -> tuple[int, int]:
        """``(height, width)`` of the images."""
        return (x.shape[1], x.shape[2]) if self.channels_last else (x.shape[2], x.shape[3])


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """The (size, size) matrix of scipy's 1-D Gaussian filter (mode "reflect": the signal
    mirrored about its edges, ``d c b a | a b c d | d c b a``), float64."""
    if sigma <= 0:
        return np.eye(size)
    radius = int(_TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    positions = np.arange(size)[:, None] + offsets[None, :]
    period = np.mod(positions, 2 * size)
    sources = np.where(period < size, period, 2 * size - 1 - period)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.repeat(np.arange(size), len(offsets)), sources.ravel()),
              np.tile(weights, size))  # fmt: skip
    return matrix


def separable(images: ep.Tensor, rows: ep.Tensor, columns: ep.Tensor) -> ep.Tensor:
    """Images (N, C, H, W) mapped linearly along H by ``rows`` (H', H) and along W by
    ``columns`` (W', W): ``rows @ image @ columns.T`` for every image, as two 2-d products;
    shape (N, C, H', W')."""
    n, c, h, w = images.shape
    out_h, out_w = rows.shape[0], columns.shape[0]
    along_w = ep.matmul(images.reshape((-1, w)), columns.transpose())
    stacked = along_w.reshape((n, c, h, out_w)).transpose((2, 0, 1, 3)).reshape((h, -1))
    mapped = ep.matmul(rows, stacked).reshape((out_h, n, c, out_w))
    return mapped.transpose((1, 2, 0, 3))


class GaussianBlurAttack(_FlexibleMinimizer):
    """Blurs the inputs with a Gaussian filter of growing standard deviation,
    ``sigma = k / steps * max_sigma`` for ``k = 1, 2, ...``, keeping each sample's first
    adversarial blur (as ``scipy.ndimage.gaussian_filter`` over the spatial axes, clipped to
    the bounds). Samples never fooled are returned unchanged.

    Args:
        distance: how epsilons are measured (``advlib.distances.l2``, ...); default None:
            only ``epsilons=None`` works (see :class:`FlexibleDistanceMinimizationAttack`).
        steps: how many sigmas to try, one model call each (default 1000).
        channel_axis: the channel axis of 4-d images, 1 or 3 / -1; default None: from the
            model's ``data_format`` (a ValueError when it has none).
        max_sigma: the largest sigma, in pixels; default None: the larger of height and
            width.
    """

    __init__ = keyword_constructor(distance=None, steps=1000, channel_axis=None, max_sigma=None)

    def _configure(self, *, distance: Any, steps: Any, channel_axis: Any, max_sigma: Any) -> None:
        self._set_distance(distance)
        self.steps = check_int(steps, "steps")
        self.channel_axis = check_channel_axis(channel_axis)
        self.max_sigma = None if max_sigma is None else check_float(max_sigma, "max_sigma")

    def _minimize(self, problem: Problem) -> ep.Tensor:
        model, inputs, criterion, _ = problem
        layout = Layout.of(model, inputs, self.channel_axis, self._name())
        height, width = layout.size(inputs)
        max_sigma = float(max(height, width)) if self.max_sigma is None else self.max_sigma
        images = layout.first(inputs)

        def blurred(step: int) -> ep.Tensor:
            sigma = (step + 1) / self.steps * max_sigma
            rows, columns = (
                ep.from_numpy(inputs, gaussian_matrix(size, sigma).astype(dtype_name(inputs)))
                for size in (height, width)
            )
            return layout.back(separable(images, rows, columns)).clip(*model.bounds)

        return keep_first(model, criterion, inputs, self.steps, blurred)
