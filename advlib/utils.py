"""Small user-facing helpers, as in ``foolbox.utils``: :func:`accuracy` and :func:`samples`."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import zoo
from ._warnings import warn_user
from .attacks.base import check_inputs, check_model, check_outputs
from .criteria.base import bind_classes
from .models.base import Model, make_bounds

__all__ = ["accuracy", "samples"]

_FORMATS = ("channels_first", "channels_last")
_DIGITS_SHAPE = (8, 8)


def accuracy(model: Model, inputs: Any, labels: Any) -> float:
    """Top-1 accuracy of ``model`` on ``inputs`` (shape (N, ...)) against ``labels`` (N,)."""
    check_model(model)
    x, _ = model.to_tensor(inputs, "inputs", floating=True)
    check_inputs(x, model)
    if x.shape[0] == 0:
        raise ValueError("inputs: accuracy of an empty batch is undefined")
    outputs = model(x)
    check_outputs(outputs, x.shape[0])
    classes = bind_classes(model, labels, outputs, "labels")
    return float((outputs.argmax(axis=-1) == classes).float32().mean().item())


def samples(
    model: Model,
    dataset: str = "digits",
    index: int = 0,
    batchsize: int = 1,
    shape: tuple[int, int] | None = None,
    data_format: str | None = None,
    bounds: tuple[float, float] | None = None,
) -> tuple[Any, Any]:
    """A batch of test images and their labels, ready for ``model`` (as Foolbox's samples).

    The images are advlib's bundled 8x8 handwritten digits (the test split of
    :func:`advlib.zoo.digits`, 359 images, one grey channel).

    Args:
        model: the advlib model wrapper the samples are for.
        dataset: ``"digits"`` (the default), the only data set advlib ships.
        index: the position of the first image; positions wrap around the 359 images, as
            Foolbox's wrap around its 20. Default 0.
        batchsize: how many images, consecutive from ``index``. Default 1.
        shape: ``None`` or ``(8, 8)``: the digits are not resized. Default None.
        data_format: ``"channels_first"`` for images of shape (N, 1, 8, 8) or
            ``"channels_last"`` for (N, 8, 8, 1). Default None: the model's ``data_format``;
            ``ValueError`` if neither is known or they disagree.
        bounds: ``(lower, upper)`` to scale the images to. Default None: the model's bounds.

    Returns:
        ``(images, labels)`` as the model's native tensors (NumPy arrays for a NumPyModel) on
        its device: images in the model's floating dtype, labels (N,) as integers 0..9.
    """
    check_model(model)
    if dataset != "digits":
        raise ValueError(
            f"dataset: advlib ships only 'digits' (the 8x8 handwritten digits of advlib.zoo), "
            f"got {dataset!r}; it cannot download data sets such as Foolbox's imagenet, "
            "cifar10, cifar100, mnist or fashionMNIST. Load your own images as an array of "
            "shape (N, C, H, W) or (N, H, W, C) scaled to the model's bounds (e.g. with "
            "torchvision.datasets or tensorflow_datasets) and pass them with their labels"
        )
    images, labels = zoo.digits("test")
    rows = _rows(index, batchsize, len(images))
    if shape is not None and tuple(shape) != _DIGITS_SHAPE:
        raise ValueError(
            f"shape: the digits are 8x8 and are not resized, got {shape!r}; pass shape=None "
            "(Foolbox resizes only its imagenet samples)"
        )
    channels_first = _data_format(model, data_format) == "channels_first"
    lower, upper = make_bounds(model.bounds if bounds is None else bounds)
    chosen = images[rows] * np.float32(upper - lower) + np.float32(lower)
    if not channels_first:
        chosen = np.transpose(chosen, (0, 2, 3, 1))
    x, _ = model.to_tensor(chosen, "images", floating=True)
    y, _ = model.to_tensor(labels[rows], "labels", floating=False)
    return x.raw, y.raw


def _rows(index: Any, batchsize: Any, available: int) -> np.ndarray:
    """The positions ``index .. index + batchsize - 1``, wrapped around ``available``."""
    for name, value, least in (("index", index, None), ("batchsize", batchsize, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name}: expected an int, got {value!r}")
        if least is not None and value < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {value}")
    if batchsize > available:
        warn_user(
            f"samples: the digits test split holds {available} images; batchsize={batchsize} "
            "repeats some of them"
        )
    return np.arange(int(index), int(index) + int(batchsize)) % available


def _data_format(model: Model, data_format: str | None) -> str:
    """The layout to return: the argument, else the model's; they must agree when both set."""
    if data_format is not None and data_format not in _FORMATS:
        raise ValueError(
            f"data_format: expected 'channels_first' or 'channels_last', got {data_format!r}"
        )
    own = getattr(model, "data_format", None)
    if data_format is not None and own is not None and data_format != own:
        raise ValueError(
            f"data_format: got {data_format!r} but the model's data_format is {own!r}; "
            "leave data_format=None to use the model's"
        )
    resolved = data_format if data_format is not None else own
    if resolved not in _FORMATS:
        raise ValueError(
            f"data_format: {type(model).__name__} does not say whether it takes channels "
            "first or last; pass data_format='channels_first' (images (N, 1, 8, 8)) or "
            "'channels_last' (images (N, 8, 8, 1))"
        )
    return str(resolved)
