"""Count an attack's model calls, whatever the wrapper and whether its steps are compiled.

:class:`CountingModel` is a thin :class:`~advlib.models.Model` around the user's model that
attacks see instead of it. It counts batched forward passes (``model(x)``) and gradient
computations (``model.value_and_grad``); the forward pass a gradient computation makes inside
its loss is part of that gradient call and not counted again.

Compiled steps run their Python body only while being traced (``jax.jit``,
``tf.function``), so counting there would stop after the first call. Instead each compiled step
learns its cost: whenever its body runs (eager, traced or retraced), the calls made inside
are tallied per run, and that per-run cost is added on every later call of the step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import eagerpy as ep
import numpy as np

from ..models.base import LossFn, Model, Restore, StepFn


@dataclass
class Calls:
    """Batched model calls: forward passes and gradient computations.

    (Not samples: a traced step may not know its batch size, e.g. under TF's relaxed shapes.)
    """

    forward: int = 0
    gradient: int = 0

    def add(self, other: Calls, times: float = 1.0) -> None:
        self.forward += round(other.forward * times)
        self.gradient += round(other.gradient * times)

    def copy(self) -> Calls:
        return Calls(self.forward, self.gradient)

    def minus(self, other: Calls) -> Calls:
        return Calls(self.forward - other.forward, self.gradient - other.gradient)


class CountingModel(Model):
    """``model`` with a count of its calls in :attr:`calls`; behaves exactly like ``model``."""

    def __init__(self, model: Model) -> None:
        super().__init__(model.bounds, None, model.compile_enabled)
        self.inner = model
        self.framework = model.framework
        self.has_gradients = model.has_gradients
        self.immutable_tensors = model.immutable_tensors
        self.calls = Calls()
        # Calls made while a compiled step's body runs go to the innermost tally.
        self._tallies: list[Calls] = []
        self._body_runs: list[int] = []
        self._step_costs: dict[Hashable, Calls] = {}
        self._in_gradient = 0

    def __repr__(self) -> str:
        return repr(self.inner)

    # -------------------------------------------------------------- counted calls
    def __call__(self, inputs: ep.Tensor) -> ep.Tensor:
        if not self._in_gradient:
            self._record(Calls(forward=1))
        return self.inner(inputs)

    def value_and_grad(
        self, loss_fn: LossFn, inputs: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor, ep.Tensor]:
        self._record(Calls(gradient=1))
        self._in_gradient += 1
        try:
            return self.inner.value_and_grad(loss_fn, inputs)
        finally:
            self._in_gradient -= 1

    def compiled(self, key: Hashable, factory: Callable[[], StepFn]) -> StepFn:
        def counted_factory() -> StepFn:
            step = factory()

            def body(*args: Any) -> Any:
                self._body_runs[-1] += 1
                return step(*args)

            return body

        compiled_step = super().compiled(key, counted_factory)

        def run(*args: Any) -> Any:
            self._tallies.append(Calls())
            self._body_runs.append(0)
            try:
                result = compiled_step(*args)
            finally:
                tally, runs = self._tallies.pop(), self._body_runs.pop()
            if runs:
                cost = Calls()
                cost.add(tally, 1.0 / runs)
                self._step_costs[key] = cost
            self._record(self._step_costs.get(key, Calls()))
            return result

        return run

    def _record(self, calls: Calls) -> None:
        (self._tallies[-1] if self._tallies else self.calls).add(calls)

    # -------------------------------------------------------------- delegation
    def compile(self, step: StepFn) -> StepFn:
        return self.inner.compile(step)

    def to_tensor(self, value: Any, name: str, *, floating: bool) -> tuple[ep.Tensor, Restore]:
        return self.inner.to_tensor(value, name, floating=floating)

    def host_array(self, t: ep.Tensor) -> np.ndarray | None:
        return self.inner.host_array(t)

    def _forward(self, raw_inputs: Any) -> Any:
        return self.inner._forward(raw_inputs)

    def _from_numpy(self, array: np.ndarray) -> Any:
        return self.inner._from_numpy(array)

    @property
    def _float32(self) -> Any:
        return self.inner._float32
