"""Shared test helpers: framework conversion, one CNN in every framework, a linear oracle.

Frameworks are model kinds of the registry (:mod:`advlib.models.registry`): "torch",
"tensorflow", "jax", "numpy" and every other registered kind; nothing here lists them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import advlib
from advlib.models import registry
from advlib.zoo.architectures import Layer, build, cnn_layers

KINDS = registry.kinds()
#: The module each kind needs installed, by kind name.
FRAMEWORK_MODULES = {
    name: kind.requires[0] if kind.requires else registry.backends()[kind.backend_name()].requires
    for name, kind in KINDS.items()
}
#: The wrapper class name of each kind.
WRAPPERS = {name: kind.wrapper.partition(":")[2] for name, kind in KINDS.items()}


def kind_of(framework: str) -> registry.ModelKind:
    """The registered model kind ``framework`` (registered now, so tests may add kinds)."""
    return registry.kinds()[framework]


def backend_of(framework: str) -> registry.Backend:
    """The tensor framework the kind ``framework`` computes in."""
    return registry.backends()[kind_of(framework).backend_name()]


def available(framework: str) -> bool:
    """Whether everything the kind needs is installed (without importing it)."""
    return kind_of(framework).available() and backend_of(framework).available()


def native(framework: str, array: np.ndarray) -> Any:
    """A NumPy array as a tensor of the kind's backend."""
    return backend_of(framework).from_numpy(array)


def to_numpy(value: Any) -> np.ndarray:
    """Any framework tensor (or EagerPy tensor, or list of them) as a NumPy array."""
    import eagerpy as ep

    if isinstance(value, list):
        return np.stack([to_numpy(v) for v in value])
    if isinstance(value, ep.Tensor):
        return np.asarray(value.numpy())
    found = registry.backend_of_type(type(value))
    return np.asarray(value if found is None else found.to_numpy(value))


def wrap_model(framework: str, net: Any, bounds: tuple[float, float] = (0, 1), **kw: Any) -> Any:
    """``net`` in the kind's wrapper class."""
    return kind_of(framework).wrapper_class()(net, bounds=bounds, **kw)


@contextlib.contextmanager
def host_memory(model: Any, visible: bool) -> Iterator[None]:
    """With ``visible=False``, hide the model's host memory (``host_array`` returns None), so
    boundary checks take the compiled device path a GPU would take."""
    if visible:
        yield
        return
    model.host_array = lambda t: None
    try:
        yield
    finally:
        del model.host_array


def cnn_weights(seed: int = 0, channels: int = 1, classes: int = 10) -> dict[str, np.ndarray]:
    """Random weights of a small 8x8 CNN (two 3x3 convs, two dense layers)."""
    rng = np.random.default_rng(seed)
    return {
        "conv1.w": rng.normal(0, 0.3, (8, channels, 3, 3)),
        "conv1.b": rng.normal(0, 0.1, 8),
        "conv2.w": rng.normal(0, 0.1, (16, 8, 3, 3)),
        "conv2.b": rng.normal(0, 0.1, 16),
        "fc1.w": rng.normal(0, 0.03, (16 * 64, 32)),
        "fc1.b": np.zeros(32),
        "fc2.w": rng.normal(0, 0.2, (32, classes)),
        "fc2.b": np.zeros(classes),
    }


CNN_LAYERS: list[Layer] = cnn_layers(2, 2)


def cnn_model(framework: str, seed: int = 0, **kw: Any) -> Any:
    """The same small CNN, on (N, 1, 8, 8) inputs in [0, 1], wrapped for the kind
    ``framework`` with ``kw``. Kinds beyond the core four also get their ``wrap_kwargs``
    (Equinox's ``batched=False``); the core wrappers keep their defaults, which the tests of
    ``data_format`` check."""
    net = build(framework, CNN_LAYERS, cnn_weights(seed), (1, 8, 8))
    found = kind_of(framework)
    return wrap_model(framework, net, **{**({} if found.core else found.wrap_kwargs), **kw})


class LinearOracle:
    """z = W x + b on inputs well inside the box, with closed-form minimal perturbations.

    The minimal perturbation in norm p to reach class j is (z_y - z_j) / ||w_y - w_j||_q
    with q the dual norm; the optimum is the minimum over j != y. The box constraint is not
    active because inputs are sampled far from the bounds relative to the optimum.
    """

    def __init__(
        self,
        n: int = 64,
        shape: tuple[int, ...] = (20,),
        classes: int = 5,
        seed: int = 0,
        scale: float = 1.0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.shape = shape
        d = int(np.prod(shape))
        self.w = rng.normal(0, 1, (d, classes)).astype(np.float32)
        self.b = rng.normal(0, 0.1, classes).astype(np.float32)
        self.x = rng.uniform(0.4, 0.6, (n, *shape)).astype(np.float32)
        self.layers: list[Layer] = [("flatten",), ("dense", "fc1")]
        self.weights = {"fc1.w": self.w * scale, "fc1.b": self.b * scale}
        logits = self.x.reshape(n, d) @ self.weights["fc1.w"] + self.weights["fc1.b"]
        self.labels = logits.argmax(-1)
        self.logits = logits

    def model(self, framework: str, **kw: Any) -> Any:
        layers = self.layers
        if framework == "tensorflow" and len(self.shape) > 1:
            layers = [("flatten",), ("dense", "fc1")]
        net = build(framework, layers, self.weights, self.shape)
        return wrap_model(framework, net, bounds=(0, 1), **kw)

    def optimal(self, p: float, targets: np.ndarray | None = None) -> np.ndarray:
        """Minimal perturbation size in the Lp norm (p in {1, 2, inf}) per sample."""
        q = {1.0: np.inf, 2.0: 2.0, np.inf: 1.0}[float(p)]
        w = self.weights["fc1.w"]
        n = len(self.labels)
        z_y = self.logits[np.arange(n), self.labels]
        best = np.full(n, np.inf)
        for j in range(w.shape[1]):
            mask = targets == j if targets is not None else self.labels != j
            diff = w[:, self.labels] - w[:, [j]]  # (d, n)
            dual = np.linalg.norm(diff, ord=q, axis=0)
            dist = (z_y - self.logits[:, j]) / np.maximum(dual, 1e-12)
            best = np.where(mask, np.minimum(best, dist), best)
        return best


class ChannelsLast(advlib.Model):
    """A channels-first model fed channels-last images (any framework's tensors), with
    ``data_format`` "channels_last"."""

    data_format = "channels_last"

    def __init__(self, model: Any) -> None:
        super().__init__(bounds=model.bounds)
        self.model = model

    def __call__(self, inputs: Any) -> Any:
        return self.model(inputs.transpose((0, 3, 1, 2)))


def foolbox_digits(n: int = 100) -> tuple[Any, Any, Any, Any]:
    """``(foolbox, net, x, y)``: Foolbox 3 (the test is skipped without it or PyTorch), the
    bundled digits CNN in PyTorch (eval mode) and the first ``n`` test digits and labels as
    torch tensors."""
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fb = pytest.importorskip("foolbox")
    net = advlib.zoo.digits_cnn_network("torch").eval()
    x, y = (torch.as_tensor(a[:n]) for a in advlib.zoo.digits("test"))
    return fb, net, x, y


def rival_classes(
    w: np.ndarray, x: np.ndarray, logits: np.ndarray, labels: np.ndarray, targets: Any = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray, float]]:
    """For a linear model ``x @ w + b`` on rows ``x`` in [0, 1] with these ``logits``: per
    sample ``i`` and class ``j`` other than its label (only its target where ``targets`` is
    given), ``(i, gain, room, need)``: moving element ``k`` by ``t <= room[k]`` towards the
    bound that helps ``j`` closes the margin ``need`` (label's logit minus ``j``'s) by
    ``gain[k] * t``."""
    for i, label in enumerate(labels):
        for j in range(w.shape[1]):
            if j == label or (targets is not None and j != targets[i]):
                continue
            a = w[:, j] - w[:, label]
            yield i, np.abs(a), np.where(a > 0, 1 - x[i], x[i]), logits[i, label] - logits[i, j]


def minimal_l0(
    w: np.ndarray, x: np.ndarray, logits: np.ndarray, labels: np.ndarray, targets: Any = None
) -> np.ndarray:
    """The exact minimal number of changed elements within [0, 1] that fools the linear
    model, per sample (inf where none does): for each rival class the elements of the
    largest ``gain * room`` first (see :func:`rival_classes`), the fewest over the classes."""
    best = np.full(len(x), np.inf)
    for i, gain, room, need in rival_classes(w, x, logits, labels, targets):
        reach = np.cumsum(np.sort(gain * room)[::-1])
        if reach[-1] > need:
            best[i] = min(best[i], int(np.argmax(reach > need)) + 1)
    return best
