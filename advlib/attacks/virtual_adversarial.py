"""The virtual adversarial attack (Miyato et al., 2015), an untargeted L2 attack, as Foolbox
3.3.4 runs it.

Power iteration for the direction that changes the model's prediction most: from a random
direction ``d``, ``steps`` times ``d <- (upper - lower) * grad_d KL(softmax(f(x)) ||
softmax(f(x + xi * d / |d|)))``; the result is ``clip(x + epsilon * d / |d|)``. The
labels are not used (the clean prediction is the reference).
"""

from __future__ import annotations

import eagerpy as ep

from .. import _progress as progress
from .._tensors import atleast_kd, dtype_name, flat_batch, l2_rows
from ..criteria import Criterion
from ..models.base import Model, StepFn
from ..norms import l2
from ._minimization import check_float, check_int, check_seed
from .base import FixedEpsilonAttack


class VirtualAdversarialAttack(FixedEpsilonAttack):
    """Virtual adversarial perturbations with Foolbox's signature and defaults.

    Args:
        steps: power iterations (required, as in Foolbox; 1 is the paper's choice).
        xi: L2 length of the probe perturbation whose gradient gives the next direction
            (default 1e-6).
        seed: seed of the random first direction (drawn per sample); None draws fresh
            randomness on every call.
    """

    norm = l2
    supports_targeted = False
    returns_projected = True

    def __init__(self, steps: int, xi: float = 1e-6, *, seed: int | None = None) -> None:
        self.steps = check_int(steps, "steps")
        self.xi = check_float(xi, "xi")
        self.seed = check_seed(seed)

    def perturb(
        self, model: Model, inputs: ep.Tensor, criterion: Criterion, epsilon: float
    ) -> ep.Tensor:
        criterion.gradient_target()  # refuses criteria without labels
        if epsilon == 0:
            return inputs
        draw = self._generator().standard_normal(size=tuple(inputs.shape))
        d = ep.from_numpy(inputs, draw.astype(dtype_name(inputs)))
        step = model.compiled(self._step_key("step"), lambda: _make_step(model))
        clean = model(inputs)
        xi, eps = model.scalars(inputs, self.xi, epsilon)
        vanished = ep.zeros(inputs, (inputs.shape[0],)) > 0
        for _ in progress.steps(self.steps):
            d, vanished = step(d, vanished, inputs, clean, xi)
        if bool(vanished.any().item()):
            raise RuntimeError(
                f"VirtualAdversarialAttack: the gradient vanished for some samples; xi={self.xi}"
                " is too small for this model (try a larger xi, e.g. 1e-3)"
            )
        norms = atleast_kd(l2_rows(flat_batch(d)), d.ndim)
        return (inputs + eps * d / norms).clip(*model.bounds)


def _make_step(model: Model) -> StepFn:
    """``step(d, vanished, x, clean, xi) -> (d, vanished)``: one power iteration from the
    direction ``d``; ``vanished`` accumulates samples whose new direction is zero or not
    finite."""
    lower, upper = model.bounds

    def step(
        d: ep.Tensor, vanished: ep.Tensor, x: ep.Tensor, clean: ep.Tensor, xi: ep.Tensor
    ) -> tuple[ep.Tensor, ep.Tensor]:
        probe = d * atleast_kd(xi / l2_rows(flat_batch(d)), d.ndim)

        def divergence(delta: ep.Tensor) -> tuple[ep.Tensor, ep.Tensor]:
            logits = model(x + delta)
            return ep.kl_div_with_logits(clean, logits).sum(), logits

        _, _, grad = model.value_and_grad(divergence, probe)
        d = (upper - lower) * grad
        norms = l2_rows(flat_batch(d))
        return d, ep.logical_or(vanished, ep.logical_not(norms > 0))

    return step
