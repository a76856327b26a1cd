"""Image grids with matplotlib: Foolbox's ``plot.images`` and a clean / adversarial /
perturbation overview.

>>> advlib.plot.images(x, n=8)                                   # doctest: +SKIP
>>> fig = advlib.plot.adversarials(x, clipped, n=8)             # doctest: +SKIP
>>> fig.savefig("adversarials.png")                             # doctest: +SKIP

Images may be PyTorch, TensorFlow, JAX or EagerPy tensors or NumPy arrays of shape
(N, C, H, W) or (N, H, W, C). matplotlib is imported on the first call, through pyplot, so
``plt.show()`` and notebooks display the figures as they do Foolbox's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import eagerpy as ep
import numpy as np

from ._tensors import framework_of
from .models.base import make_bounds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["adversarials", "images"]

_FORMATS = ("channels_first", "channels_last")


def images(
    images: Any,
    *,
    n: int | None = None,
    data_format: str | None = None,
    bounds: tuple[float, float] = (0, 1),
    ncols: int | None = None,
    nrows: int | None = None,
    figsize: tuple[float, float] | None = None,
    scale: float = 1,
    **kwargs: Any,
) -> Figure:
    """Show a batch of images in a grid, one image per cell (as ``foolbox.plot.images``).

    Args:
        images: a batch of shape (N, C, H, W) or (N, H, W, C) with 1 or 3 channels.
        n: show only the first ``n`` images. Default None: all of them.
        data_format: ``"channels_first"`` or ``"channels_last"``. Default None: inferred from
            which of axis 1 and the last axis has size 1 or 3 (``ValueError`` if both or
            neither do).
        bounds: the ``(lower, upper)`` range of the values, mapped to black..white.
            Default (0, 1).
        ncols, nrows: the grid's shape. Default: one row; given one of them, the other
            fits all images.
        figsize: the figure's size in inches. Default ``(ncols * scale, nrows * scale)``.
        scale: inches per grid cell when ``figsize`` is None. Default 1.
        **kwargs: passed on to ``matplotlib.pyplot.subplots``.

    Returns:
        The matplotlib Figure (Foolbox returns None).
    """
    batch = _batch(images, "images")
    x = _normalized(batch, n, _resolve_format(batch, "images", data_format), bounds)
    nrows, ncols = _grid(len(x), nrows, ncols)
    if figsize is None:
        figsize = (ncols * scale, nrows * scale)
    figure, axes = _subplots(nrows, ncols, figsize, kwargs)
    for index, ax in enumerate(axes.flat):
        if index < len(x):
            _show(ax, x[index])
    return figure


def adversarials(
    clean: Any,
    adversarial: Any,
    *,
    n: int | None = 8,
    data_format: str | None = None,
    bounds: tuple[float, float] = (0, 1),
    figsize: tuple[float, float] | None = None,
    scale: float = 1.5,
    **kwargs: Any,
) -> Figure:
    """Three rows: clean images, their adversarial versions, and the perturbations.

    The perturbations ``adversarial - clean`` are rescaled together so the largest absolute
    value among the shown images maps to black or white and zero to mid-grey; the third
    row's title gives that value in input units.

    Args:
        clean: a batch of shape (N, C, H, W) or (N, H, W, C) with 1 or 3 channels.
        adversarial: a batch of the same shape and kind, e.g. one entry of an attack's
            ``clipped`` result.
        n: show the first ``n`` pairs. Default 8; None shows all.
        data_format: as for :func:`images`; inferred from ``clean`` by default.
        bounds: the ``(lower, upper)`` range of the values. Default (0, 1).
        figsize: the figure's size in inches. Default ``(columns * scale, 3 * scale)``.
        scale: inches per image when ``figsize`` is None. Default 1.5.
        **kwargs: passed on to ``matplotlib.pyplot.subplots``.

    Returns:
        The matplotlib Figure.
    """
    clean_batch, adversarial_batch = _batch(clean, "clean"), _batch(adversarial, "adversarial")
    if clean_batch.shape != adversarial_batch.shape:
        raise ValueError(
            f"adversarial: expected the shape of clean, {tuple(clean_batch.shape)}, got "
            f"{tuple(adversarial_batch.shape)}"
        )
    channels_first = _resolve_format(clean_batch, "clean", data_format)
    x = _normalized(clean_batch, n, channels_first, bounds)
    x_adv = _normalized(adversarial_batch, n, channels_first, bounds)
    delta = x_adv - x
    largest = float(np.abs(delta).max())
    shown = 0.5 + delta / (2 * largest) if largest > 0 else np.full_like(delta, 0.5)
    lower, upper = make_bounds(bounds)
    columns = len(x)
    figure, axes = _subplots(3, columns, figsize or (columns * scale, 3 * scale), kwargs)
    titles = ("clean", "adversarial", f"perturbation (±{largest * (upper - lower):.3g})")
    for row, (batch, title) in enumerate(zip((x, x_adv, shown), titles)):
        axes[row][0].set_title(title, loc="left", fontsize="small")
        for column in range(columns):
            _show(axes[row][column], batch[column])
    return figure


def _subplots(
    nrows: int, ncols: int, figsize: tuple[float, float], kwargs: dict[str, Any]
) -> tuple[Figure, Any]:
    """A pyplot grid of blank cells (no ticks, no frame)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        nrows=nrows,
        ncols=ncols,
        figsize=figsize,
        squeeze=False,
        constrained_layout=True,
        **kwargs,
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    return figure, axes


def _show(ax: Axes, image: np.ndarray) -> None:
    """One (H, W, C) image with values in [0, 1]; one channel shown in greys."""
    if image.shape[-1] == 1:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(image, 0, 1))


def _grid(count: int, nrows: int | None, ncols: int | None) -> tuple[int, int]:
    for name, value in (("nrows", nrows), ("ncols", ncols)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}: expected a positive int or None, got {value!r}")
    if ncols is None:
        rows = 1 if nrows is None else nrows
        return rows, -(-count // rows)
    return (-(-count // ncols) if nrows is None else nrows), ncols


def _normalized(
    batch: ep.Tensor, n: int | None, channels_first: bool, bounds: tuple[float, float]
) -> np.ndarray:
    """The first ``n`` images as a NumPy (N, H, W, C) array with ``bounds`` mapped to [0, 1]."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected a positive int or None, got {n!r}")
    lower, upper = make_bounds(bounds)
    # float32 first: NumPy has no bfloat16, and integer images (uint8) scale like floats.
    x = batch[:n].float32().numpy()
    if channels_first:
        x = np.transpose(x, (0, 2, 3, 1))
    normalized: np.ndarray = (x.astype(np.float64) - lower) / (upper - lower)
    return normalized


def _resolve_format(batch: ep.Tensor, name: str, data_format: str | None) -> bool:
    """Whether the images are channels first, as given or inferred from the shape."""
    if data_format is not None:
        if data_format not in _FORMATS:
            raise ValueError(
                f"data_format: expected 'channels_first' or 'channels_last', got {data_format!r}"
            )
        return data_format == "channels_first"
    shape = batch.shape
    first, last = shape[1] in (1, 3), shape[-1] in (1, 3)
    if first == last:
        raise ValueError(
            f"data_format: cannot tell from {name}'s shape {tuple(shape)} whether channels "
            "come first or last (axis 1 and the last axis must not both or neither have size "
            "1 or 3); pass data_format='channels_first' or 'channels_last'"
        )
    return first


def _batch(images: Any, name: str) -> ep.Tensor:
    """A 4-d batch of images as an EagerPy tensor on its own framework."""
    if isinstance(images, ep.Tensor):
        x = images
    elif framework_of(images) is not None:
        x = ep.astensor(images)
    elif isinstance(images, list | tuple) and images and framework_of(images[0]) is not None:
        raise TypeError(
            f"{name}: expected one batch of images, got a {type(images).__name__} of "
            f"{len(images)} tensors (one per epsilon?); pass one of them, e.g. clipped[0]"
        )
    else:
        x = ep.astensor(np.asarray(images))
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty batch of shape (N, C, H, W) or (N, H, W, C), got "
            f"shape {tuple(x.shape)}"
        )
    return x
