"""Expectation over transformation (EOT, Athalye et al., 2018) for randomized models.

Two ways to attack a model whose outputs are random (noise layers, random transformations):

- :class:`ExpectationOverTransformationWrapper` (Foolbox's): the model's logits averaged over
  ``n_steps`` forward passes; gradients are those of the averaged logits.
- ``eot_samples=n`` on every gradient attack: each gradient the attack takes is averaged over
  ``n`` forward and backward passes (the loss and its auxiliary outputs too), as AutoAttack's
  ``eot_iter`` does; plain forward passes (success checks) stay single draws of the model.
  It is :func:`averaged_gradients`, applied to the model of each ``perturb`` call.

Both run their ``n`` passes inside the attack's compiled step. Where the randomness comes from:

- PyTorch: draws inside ``forward`` (``torch.randn``, dropout in training mode) are fresh on
  every pass, compiled or not.
- TensorFlow: stateful random ops (``tf.random.normal``, ``tf.random.Generator``) are fresh on
  every run of a ``tf.function``, and each of the ``n`` traced passes draws its own numbers.
- JAX: functions are pure, so a model must take its randomness from Python state (e.g. a key
  split on every call). ``jax.jit`` runs that Python once, freezing the draws into the compiled
  step: wrap randomized JAX models with ``JAXModel(..., compile=False)`` (a warning says so).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import eagerpy as ep

from .._warnings import warn_user
from .base import LossFn, Model, StepFn, TransformBoundsWrapper


class ExpectationOverTransformationWrapper(TransformBoundsWrapper):
    """``model`` with its logits averaged over ``n_steps`` calls on the same inputs (Foolbox's
    wrapper): a randomized model's expected logits. Gradients flow through all ``n_steps``
    passes. Bounds, gradients, compilation and conversions are the inner model's.

    Args:
        model: an advlib model (e.g. a ``PyTorchModel`` of a network with a noise layer).
        n_steps: forward passes averaged per call, an int >= 1 (default 16).
    """

    def __init__(self, model: Model, n_steps: int = 16) -> None:
        super().__init__(model, model.bounds if isinstance(model, Model) else None)
        self._n_steps = check_samples(n_steps, "n_steps")
        _warn_frozen_draws(model, self._n_steps)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._model!r}, n_steps={self._n_steps})"

    def __call__(self, inputs: Any) -> Any:
        x, restore = ep.astensor_(inputs)
        total = ep.astensor(self._model(x))
        for _ in range(self._n_steps - 1):
            total = total + ep.astensor(self._model(x))
        return restore(total / self._n_steps)

    def transform_bounds(self, bounds: Any, inplace: bool = False) -> Model:
        """The inner model taking inputs in ``bounds``, averaged as this one.

        Args:
            bounds: the new ``(lower, upper)``.
            inplace: not supported here (a ValueError); default False.
        """
        if inplace:
            raise ValueError(
                "inplace: an ExpectationOverTransformationWrapper is not changed "
                "in place; use the returned model"
            )
        inner = self._model.transform_bounds(bounds)
        return ExpectationOverTransformationWrapper(inner, self._n_steps)


class _AveragedGradients(TransformBoundsWrapper):
    """``model`` whose gradients are averaged over ``samples`` passes (see
    :func:`averaged_gradients`); forward passes are the model's own. Compiled steps live in
    the inner model's cache, so every attack call with the same ``samples`` reuses them."""

    def __init__(self, model: Model, samples: int) -> None:
        super().__init__(model, model.bounds)
        self._samples = samples

    def __repr__(self) -> str:
        return f"averaged_gradients({self._model!r}, {self._samples})"

    def __call__(self, inputs: Any) -> Any:
        return self._model(inputs)

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        loss, aux, grad = self._model.value_and_grad(loss_fn, inputs)
        for _ in range(self._samples - 1):
            more = self._model.value_and_grad(loss_fn, inputs)
            loss, aux, grad = loss + more[0], aux + more[1], grad + more[2]
        n = self._samples
        return loss / n, aux / n, grad / n

    def compiled(self, key: Hashable, factory: Callable[[], StepFn]) -> StepFn:
        return self._model.compiled(("advlib.eot", self._samples, key), factory)

    def scalars(self, like: ep.Tensor, *values: float) -> tuple[ep.Tensor, ...]:
        return self._model.scalars(like, *values)


def averaged_gradients(model: Model, samples: int) -> Model:
    """``model`` for an attack with ``eot_samples=samples``: every ``value_and_grad`` averages
    the loss, its auxiliary output (the logits) and the gradient over ``samples`` passes;
    forward passes stay single draws. ``samples == 1`` returns ``model`` itself."""
    if samples == 1:
        return model
    _warn_frozen_draws(model, samples)
    return _AveragedGradients(model, samples)


def check_samples(value: Any, name: str) -> int:
    """An int >= 1, else a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name}: expected an int >= 1 (the number of passes averaged), got {value!r}"
        )
    return value


_warned: set[int] = set()


def _warn_frozen_draws(model: Model, samples: int) -> None:
    """Once per model: compiled JAX steps repeat the same draws (see the module notes)."""
    if samples == 1 or model.framework != "jax" or not model.compile_enabled:
        return
    if id(model) in _warned:
        return
    _warned.add(id(model))
    warn_user(
        "EOT on a compiled JAX model: jax.jit freezes a model's random draws into the "
        "compiled step, so every pass sees the same randomness. For a randomized JAX model "
        "(randomness from Python state, e.g. a key split per call) wrap it with "
        "JAXModel(..., compile=False)"
    )
