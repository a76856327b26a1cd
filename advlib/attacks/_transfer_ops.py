"""Image operations of the transfer attacks, as linear maps along the two spatial axes.

Input diversity (a random bilinear resize and zero pad) and translation-invariant smoothing
(a depthwise convolution with a separable kernel) both act on each spatial axis by a matrix:
``out = A @ x @ B.T`` per channel. The matrices are built on the host in NumPy (per sample for
diversity, one pair for smoothing) and applied with two batched matrix products, which every
backend differentiates and compiles. Image layout comes from the attack's ``channel_axis`` or
the model's ``data_format``.
"""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import numpy as np

from .._random import SampleRandom
from .._tensors import dtype_name
from ..models.base import Model

#: The smoothing kernels of TI-FGSM (torchattacks' ``kernel_name``).
KERNELS = ("gaussian", "linear", "uniform")


def spatial_axes(model: Model, inputs: ep.Tensor, channel_axis: int | None) -> tuple[int, int]:
    """The (height, width) axes of a batch of images ``inputs`` (N, C, H, W) or (N, H, W, C).

    ``channel_axis``: 1 or 3 (-1); None reads the model's ``data_format``."""
    if inputs.ndim != 4:
        raise ValueError(
            f"inputs: input diversity and gradient smoothing need images of shape (N, C, H, W) "
            f"or (N, H, W, C), got shape {tuple(inputs.shape)}"
        )
    if channel_axis is None:
        try:
            data_format = model.data_format  # type: ignore[attr-defined]
        except AttributeError:
            raise ValueError(
                f"channel_axis: the image layout is unknown, {type(model).__name__} has no "
                "data_format; pass channel_axis=1 (channels first) or channel_axis=3 (channels "
                "last) to the attack, or data_format= to the model"
            ) from None
        channel_axis = 1 if data_format == "channels_first" else 3
    return (2, 3) if channel_axis == 1 else (1, 2)


def check_channel_axis(value: Any) -> int | None:
    """``channel_axis``: None, 1 or 3 (-1 means 3), else a ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, 3, -1):
        raise ValueError(
            f"channel_axis: expected 1 (channels first), 3 or -1 (channels last) or None (the "
            f"model's data_format), got {value!r}"
        )
    return 3 if value == -1 else value


def linear_map(x: ep.Tensor, matrix: ep.Tensor, axis: int) -> ep.Tensor:
    """``x`` with ``matrix`` (B, L_out, L), B = 1 or N, applied along ``axis`` (length L)."""
    order = (0, axis, *(a for a in range(1, x.ndim) if a != axis))
    moved = x.transpose(order)
    shape = moved.shape
    # The batch size as -1: compiled TensorFlow steps may leave it unknown (None).
    flat = moved.reshape((-1, shape[1], int(np.prod(shape[2:]))))
    # EagerPy's matmul takes 2-D tensors only; every backend's own @ batches (and broadcasts).
    product = type(flat)(matrix.raw @ flat.raw)
    out = product.reshape((-1, matrix.shape[-2], *shape[2:]))
    return out.transpose(tuple(int(a) for a in np.argsort(order)))


def separable_map(
    x: ep.Tensor, maps: tuple[ep.Tensor, ep.Tensor], axes: tuple[int, int]
) -> ep.Tensor:
    """``x`` with ``maps[0]`` applied along ``axes[0]`` and ``maps[1]`` along ``axes[1]``."""
    return linear_map(linear_map(x, maps[0], axes[0]), maps[1], axes[1])


def as_maps(like: ep.Tensor, maps: list[np.ndarray]) -> tuple[ep.Tensor, ep.Tensor]:
    """Host matrices as tensors in ``like``'s backend and dtype."""
    rows, cols = (ep.from_numpy(like, m.astype(dtype_name(like))) for m in maps)
    return rows, cols


# ---------------------------------------------------------------------- input diversity
def check_resize_lengths(lengths: tuple[int, int], resize_rate: float) -> None:
    """Every axis must keep at least one pixel after shrinking by ``resize_rate``."""
    if min(int(length * resize_rate) for length in lengths) < 1:
        raise ValueError(
            f"resize_rate: {resize_rate} shrinks images of size {lengths} to no pixel; use a "
            f"rate of at least {1 / min(lengths):.3g}"
        )


def diversity_maps(
    rng: SampleRandom, n: int, lengths: tuple[int, int], resize_rate: float, probability: float
) -> list[np.ndarray]:
    """Per sample and spatial axis, the (N, L, L) matrices of DI-FGSM's transform: with
    probability ``probability`` resize the image to ``s`` pixels, ``s`` uniform in
    ``[int(L * resize_rate), L)`` (one draw for both axes), and zero-pad it back to ``L`` at a
    uniform random offset in ``[0, L - s)`` per axis; otherwise the identity."""
    fraction = rng.random(size=(n,))
    applied = rng.random(size=(n,)) < probability
    maps = []
    for length in lengths:
        low = int(length * resize_rate)
        span = length - low
        sizes = low + np.minimum(np.floor(fraction * span).astype(np.int64), span - 1)
        offsets = rng.integers(0, length - sizes, size=(n,))
        matrices = resize_pad_matrices(sizes, offsets, length)
        matrices[~applied] = np.eye(length)
        maps.append(matrices)
    return maps


def resize_pad_matrices(sizes: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """(N, length, length) float64: a bilinear resize of ``length`` pixels to ``sizes[i]``
    (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``) written at output rows
    ``offsets[i] .. offsets[i] + sizes[i] - 1``, zero elsewhere."""
    target = np.arange(length)[None, :] - offsets[:, None]  # the row within the resized image
    inside = (target >= 0) & (target < sizes[:, None])
    source = np.maximum((target + 0.5) * (length / sizes[:, None]) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), length - 1)
    high = np.minimum(low + 1, length - 1)
    weight = source - low
    columns = np.arange(length)[None, None, :]
    matrices = (1 - weight)[..., None] * (columns == low[..., None]) + weight[..., None] * (
        columns == high[..., None]
    )
    return np.asarray(matrices * inside[..., None], dtype=np.float64)


# ---------------------------------------------------------------------- smoothing
def kernel_1d(name: str, length: int, nsig: float) -> np.ndarray:
    """TI-FGSM's kernel along one axis, summing to 1; the 2-D kernel is its outer product
    (torchattacks' ``gkern``, ``lkern``, ``ukern``)."""
    if name == "gaussian":
        x = np.linspace(-nsig, nsig, length)
        kernel = np.exp(-0.5 * x * x)
    elif name == "linear":
        half = (length - 1) / 2
        kernel = 1 - np.abs(np.linspace(-half, half, length) / (length + 1) * 2)
    else:
        kernel = np.ones(length)
    return np.asarray(kernel / kernel.sum())


def smoothing_matrix(kernel: np.ndarray, length: int) -> np.ndarray:
    """(1, L, L): the convolution with ``kernel`` along an axis of ``length`` pixels, zero
    padded to the same size (PyTorch's ``conv2d(padding="same")``: the extra pixel of an
    even kernel pads the end)."""
    left = (len(kernel) - 1) // 2
    index = np.arange(length)[None, :] - np.arange(length)[:, None] + left
    valid = (index >= 0) & (index < len(kernel))
    return np.where(valid, kernel[np.clip(index, 0, len(kernel) - 1)], 0.0)[None]
