"""Every EagerPy 0.30.0 operation advlib relies on, on every backend, eager and compiled.

EagerPy is unmaintained; if a framework release breaks one of these ops, this file says which.
"""

from __future__ import annotations

from collections.abc import Callable

import eagerpy as ep
import numpy as np
import pytest
from helpers import native, wrap_model

from advlib import norms

RNG = np.random.default_rng(0)
A = RNG.normal(0, 1, (4, 6)).astype(np.float32)
B = RNG.uniform(0.1, 1, (4, 6)).astype(np.float32)
LABELS = np.array([0, 5, 2, 3])
NANS = np.where(A > 0, np.nan, 0).astype(np.float32)

Op = Callable[[ep.Tensor, ep.Tensor, ep.Tensor], ep.Tensor]


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    return np.log(np.exp(a - a.max(-1, keepdims=True)).sum(-1)) + a.max(-1)


# (name, EagerPy op on (a, b, labels), NumPy reference on the same arrays)
OPS: list[tuple[str, Op, Callable[..., np.ndarray]]] = [
    ("abs", lambda a, b, y: a.abs(), lambda a, b, y: np.abs(a)),
    ("sign", lambda a, b, y: a.sign(), lambda a, b, y: np.sign(a)),
    ("clip", lambda a, b, y: a.clip(-0.5, 0.5), lambda a, b, y: np.clip(a, -0.5, 0.5)),
    (
        "sum",
        lambda a, b, y: a.sum(axis=-1, keepdims=True),
        lambda a, b, y: a.sum(-1, keepdims=True),
    ),
    ("max", lambda a, b, y: a.max(axis=-1), lambda a, b, y: a.max(-1)),
    ("min", lambda a, b, y: a.min(), lambda a, b, y: a.min()),
    ("mean", lambda a, b, y: a.mean(axis=-1), lambda a, b, y: a.mean(-1)),
    ("sqrt", lambda a, b, y: b.sqrt(), lambda a, b, y: np.sqrt(b)),
    ("square", lambda a, b, y: a.square(), lambda a, b, y: a**2),
    ("exp", lambda a, b, y: a.exp(), lambda a, b, y: np.exp(a)),
    ("log", lambda a, b, y: b.log(), lambda a, b, y: np.log(b)),
    ("tanh", lambda a, b, y: ep.tanh(a), lambda a, b, y: np.tanh(a)),
    ("arctanh", lambda a, b, y: ep.arctanh(b * 0.9), lambda a, b, y: np.arctanh(b * 0.9)),
    ("reshape", lambda a, b, y: a.reshape((2, 12)), lambda a, b, y: a.reshape(2, 12)),
    ("flatten", lambda a, b, y: a.reshape((4, 2, 3)).flatten(start=1), lambda a, b, y: a),
    ("flip", lambda a, b, y: a.flip(axis=-1), lambda a, b, y: a[:, ::-1]),
    ("sort", lambda a, b, y: a.sort(axis=-1), lambda a, b, y: np.sort(a, -1)),
    ("cumsum", lambda a, b, y: a.cumsum(axis=-1), lambda a, b, y: np.cumsum(a, -1)),
    ("argmax", lambda a, b, y: a.argmax(axis=-1), lambda a, b, y: a.argmax(-1)),
    ("argmin", lambda a, b, y: a.argmin(axis=-1), lambda a, b, y: a.argmin(-1)),
    ("astype", lambda a, b, y: (a > 0).astype(a.dtype), lambda a, b, y: (a > 0).astype(np.float32)),
    ("where", lambda a, b, y: ep.where(a > 0, a, b), lambda a, b, y: np.where(a > 0, a, b)),
    ("maximum", lambda a, b, y: ep.maximum(a, b), lambda a, b, y: np.maximum(a, b)),
    ("minimum", lambda a, b, y: ep.minimum(a, 0.2), lambda a, b, y: np.minimum(a, 0.2)),
    (
        "logical_and",
        lambda a, b, y: ep.logical_and(a > 0, b > 0.5),
        lambda a, b, y: (a > 0) & (b > 0.5),
    ),
    (
        "logical_or",
        lambda a, b, y: ep.logical_or(a > 0, b > 0.5),
        lambda a, b, y: (a > 0) | (b > 0.5),
    ),
    ("logical_not", lambda a, b, y: ep.logical_not(a > 0), lambda a, b, y: ~(a > 0)),
    (
        "any_all",
        lambda a, b, y: ep.stack([(a > 0).any(), (a > 0).all()]),
        lambda a, b, y: np.array([(a > 0).any(), (a > 0).all()]),
    ),
    ("isnan", lambda a, b, y: ep.isnan(a + ep.from_numpy(a, NANS)), lambda a, b, y: np.isnan(NANS)),
    (
        "take_along_axis",
        lambda a, b, y: ep.take_along_axis(a, y[:, None], axis=1),
        lambda a, b, y: np.take_along_axis(a, y[:, None], 1),
    ),
    (
        "onehot_like",
        lambda a, b, y: ep.onehot_like(a, y, value=2.0),
        lambda a, b, y: 2.0 * np.eye(6, dtype=np.float32)[y],
    ),
    (
        "crossentropy",
        lambda a, b, y: ep.crossentropy(a, y),
        lambda a, b, y: _logsumexp(a) - a[np.arange(4), y],
    ),
    ("softmax", lambda a, b, y: ep.softmax(a, axis=-1), lambda a, b, y: _softmax(a)),
    (
        "log_softmax",
        lambda a, b, y: ep.log_softmax(a, axis=-1),
        lambda a, b, y: np.log(_softmax(a)),
    ),
    ("topk", lambda a, b, y: ep.topk(a, 2)[0], lambda a, b, y: -np.sort(-a, -1)[:, :2]),
    (
        "arange",
        lambda a, b, y: ep.arange(a, 1, 7).astype(a.dtype),
        lambda a, b, y: np.arange(1, 7, dtype=np.float32),
    ),
    ("stack", lambda a, b, y: ep.stack([a, b], axis=0), lambda a, b, y: np.stack([a, b])),
    (
        "concatenate",
        lambda a, b, y: ep.concatenate([a, b], axis=0),
        lambda a, b, y: np.concatenate([a, b]),
    ),
    ("zeros_like", lambda a, b, y: ep.zeros_like(a) + 1, lambda a, b, y: np.ones_like(a)),
    ("full_like", lambda a, b, y: ep.full_like(a, 3.0), lambda a, b, y: np.full_like(a, 3.0)),
    ("from_numpy", lambda a, b, y: a + ep.from_numpy(a, np.float32(0.5)), lambda a, b, y: a + 0.5),
    ("expand_dims", lambda a, b, y: ep.expand_dims(a, 1), lambda a, b, y: a[:, None]),
    ("newaxis_index", lambda a, b, y: a[(Ellipsis, None)], lambda a, b, y: a[..., None]),
    ("transpose", lambda a, b, y: a.transpose((1, 0)), lambda a, b, y: a.T),
    ("matmul", lambda a, b, y: a @ b.T, lambda a, b, y: a @ b.T),
    ("pow", lambda a, b, y: b**1.5, lambda a, b, y: b**1.5),
    ("norm_l1", lambda a, b, y: norms.l1(a), lambda a, b, y: np.abs(a).sum(-1)),
    ("norm_l2", lambda a, b, y: norms.l2(a), lambda a, b, y: np.linalg.norm(a, axis=-1)),
    ("norm_linf", lambda a, b, y: norms.linf(a), lambda a, b, y: np.abs(a).max(-1)),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize(("name", "op", "reference"), OPS, ids=[o[0] for o in OPS])
def test_op(
    name: str, op: Op, reference: Callable[..., np.ndarray], compiled: bool, any_backend: str
) -> None:
    if compiled and any_backend in ("numpy", "torch"):
        pytest.skip("compiled by default only on JAX and TensorFlow")
    a, b = ep.astensor(native(any_backend, A)), ep.astensor(native(any_backend, B))
    y = ep.astensor(native(any_backend, LABELS))
    y = y.astype(a.argmax(axis=-1).dtype)
    fn = op
    if compiled:
        model = wrap_model(any_backend, lambda x: x, compile=True)
        fn = model.compile(op)
    result = fn(a, b, y)
    expected = reference(A, B, LABELS)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5, atol=1e-5, err_msg=name)


def test_norm_projections_land_on_the_ball(any_backend: str) -> None:
    delta = ep.astensor(native(any_backend, A * 3))
    for norm, eps in ((norms.l1, 2.0), (norms.l2, 1.0), (norms.linf, 0.3)):
        clipped = norm.clip(delta, eps)
        sizes = norm(clipped).numpy()
        np.testing.assert_allclose(sizes, eps, rtol=1e-5, err_msg=norm.name)
        inside = norm.clip(clipped * 0.5, eps)
        np.testing.assert_allclose(inside.numpy(), clipped.numpy() * 0.5, atol=1e-6)
