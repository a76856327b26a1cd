"""Hand-written native attack loops: the speed ceiling advlib is measured against.

Each is what a user would write directly in the framework: a ``jax.jit``-compiled step for JAX,
a ``tf.function`` step for TensorFlow, eager PyTorch. They do the same work as advlib: the
same random start (drawn with NumPy from the shared seed, see :func:`start_noise`), the same
steps, projection and clipping, one run per epsilon, and one forward pass per epsilon for the
success mask. C&W follows Carlini & Wagner's L2 attack with a binary search over the constant
(Adam in tanh space, no early abort), as Foolbox implements it.

Every implementation is called as ``impl(spec, x, y) -> (adversarials, success)`` with native
tensors ``x`` (inputs in [0, 1]) and ``y`` (labels); ``success`` is a NumPy bool array of
shape (K, N) (K = 1 for C&W), which makes the call wait for the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from advlib.norms import NORMS

from .config import SEED, AttackSpec

Outcome = tuple[list[Any], np.ndarray]
Implementation = Callable[[AttackSpec, Any, Any], Outcome]

_TINY = 1e-12
_TANH_SHRINK = 0.999999


def start_noise(spec: AttackSpec, shape: tuple[int, ...], epsilon: float) -> np.ndarray:
    """The random start advlib draws for ``spec`` at ``epsilon`` (same seed, same numbers)."""
    sample = NORMS[spec.norm].sample_unit_ball(np.random.default_rng(SEED), shape)
    return np.asarray(sample * epsilon, dtype=np.float32)


class _CarliniWagnerBookkeeping:
    """The binary search over C&W's constant, on the host in NumPy between searches."""

    def __init__(self, n: int, initial_const: float) -> None:
        self.consts = np.full(n, initial_const, dtype=np.float32)
        self.lower = np.zeros(n, dtype=np.float32)
        self.upper = np.full(n, np.inf, dtype=np.float32)

    def update(self, found: np.ndarray) -> None:
        self.upper = np.where(found, np.minimum(self.upper, self.consts), self.upper)
        self.lower = np.where(found, self.lower, np.maximum(self.lower, self.consts))
        unbounded = np.isinf(self.upper)
        self.consts = np.where(
            unbounded, self.consts * 10, (self.lower + self.upper) / 2
        ).astype(np.float32)


class _StepCache:
    """One compiled step per (kind, attack), like advlib's per-attack cache, so that every
    case's first call includes its own compilation."""

    def __init__(self, compiler: Callable[[Any], Any], steps: dict[str, Any]) -> None:
        self._compiler, self._steps = compiler, steps
        self._compiled: dict[tuple[str, AttackSpec], Any] = {}

    def get(self, kind: str, spec: AttackSpec) -> Any:
        if (kind, spec) not in self._compiled:
            self._compiled[kind, spec] = self._compiler(self._steps[kind])
        return self._compiled[kind, spec]


# ------------------------------------------------------------------------------- PyTorch
class TorchNative:
    """Eager PyTorch loops on ``net`` (an ``nn.Module`` in eval mode)."""

    name = "native"

    def __init__(self, net: Any) -> None:
        self.net = net

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        import torch

        if spec.is_minimization:
            return self._carlini_wagner(spec, x, y)
        adversarials, successes = [], []
        for eps in spec.epsilons:
            adv = self._gradient_descent(spec, x, y, eps)
            with torch.no_grad():
                successes.append(self.net(adv).argmax(-1) != y)
            adversarials.append(adv)
        return adversarials, torch.stack(successes).cpu().numpy()

    def _gradient_descent(self, spec: AttackSpec, x: Any, y: Any, eps: float) -> Any:
        import torch
        import torch.nn.functional as F

        alpha = spec.rel_stepsize * eps
        adv = x
        if spec.random_start:
            noise = torch.from_numpy(start_noise(spec, tuple(x.shape), eps)).to(x.device)
            adv = (x + noise).clamp(0, 1)
        for _ in range(spec.steps):
            adv = adv.detach().requires_grad_(True)
            loss = F.cross_entropy(self.net(adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                if spec.norm == "linf":
                    adv = adv + alpha * grad.sign()
                    adv = torch.minimum(torch.maximum(adv, x - eps), x + eps)
                else:
                    norms = grad.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1))
                    adv = adv + alpha * grad / (norms + _TINY)
                    delta = adv - x
                    lengths = delta.flatten(1).norm(dim=1).clamp_min(_TINY)
                    factor = (eps / lengths).clamp(max=1.0).view(-1, *[1] * (x.ndim - 1))
                    adv = x + delta * factor
                adv = adv.clamp(0, 1)
        return adv.detach()

    def _carlini_wagner(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        import torch

        n, classes = x.shape[0], None
        w0 = torch.atanh((x * 2 - 1) * _TANH_SHRINK)
        reconstructed = (torch.tanh(w0) + 1) / 2
        search = _CarliniWagnerBookkeeping(n, spec.initial_const)
        best = x.clone()
        best_norm = torch.full((n,), float("inf"), device=x.device)
        for _ in range(spec.binary_steps):
            consts = torch.from_numpy(search.consts).to(x.device)
            delta = torch.zeros_like(x)
            m, v = torch.zeros_like(x), torch.zeros_like(x)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            for t in range(1, spec.steps + 1):
                delta = delta.detach().requires_grad_(True)
                adv = (torch.tanh(w0 + delta) + 1) / 2
                logits = self.net(adv)
                if classes is None:
                    classes = torch.arange(logits.shape[1], device=x.device)
                true = logits.gather(1, y[:, None])[:, 0]
                other = torch.where(classes[None] == y[:, None], -torch.inf, logits).amax(1)
                margin = (true - other).clamp_min(0)
                sq = (adv - reconstructed).flatten(1).square().sum(1)
                loss = (sq + consts * margin).sum()
                (grad,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    m = 0.9 * m + 0.1 * grad
                    v = 0.999 * v + 0.001 * grad.square()
                    m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
                    delta = delta - spec.rel_stepsize * m_hat / (v_hat.sqrt() + 1e-8)
                    is_adv = logits.argmax(1) != y
                    found |= is_adv
                    norms = (adv - x).flatten(1).norm(dim=1)
                    better = is_adv & (norms < best_norm)
                    best = torch.where(better.view(-1, *[1] * (x.ndim - 1)), adv, best)
                    best_norm = torch.where(better, norms, best_norm)
            search.update(found.cpu().numpy())
        with torch.no_grad():
            success = self.net(best).argmax(-1) != y
        return [best.detach()], success[None].cpu().numpy()


# ------------------------------------------------------------------------------- JAX
class JaxNative:
    """``jax.jit``-compiled steps on ``fn`` (a pure function of a batch), called from Python."""

    name = "native"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        import jax
        import jax.numpy as jnp

        def loss(x: Any, y: Any) -> Any:
            log_probs = jax.nn.log_softmax(fn(x))
            return -jnp.take_along_axis(log_probs, y[:, None], axis=1).sum()

        grad = jax.grad(loss)

        def per_sample(v: Any, like: Any) -> Any:
            return v.reshape((-1,) + (1,) * (like.ndim - 1))

        def linf_step(x: Any, x0: Any, y: Any, eps: Any, alpha: Any) -> Any:
            x = x + alpha * jnp.sign(grad(x, y))
            return jnp.clip(jnp.clip(x, x0 - eps, x0 + eps), 0.0, 1.0)

        def l2_step(x: Any, x0: Any, y: Any, eps: Any, alpha: Any) -> Any:
            g = grad(x, y)
            norms = jnp.sqrt(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1))
            x = x + alpha * g / per_sample(norms + _TINY, g)
            delta = x - x0
            lengths = jnp.sqrt(jnp.sum(delta.reshape(g.shape[0], -1) ** 2, axis=1))
            factor = jnp.minimum(eps / jnp.maximum(lengths, _TINY), 1.0)
            return jnp.clip(x0 + delta * per_sample(factor, x), 0.0, 1.0)

        def cw_step(state: Any, w0: Any, x: Any, reconstructed: Any, y: Any, consts: Any,
                    stepsize: Any) -> Any:
            delta, m, v, t, found, best, best_norm = state

            def cw_loss(d: Any) -> Any:
                adv = (jnp.tanh(w0 + d) + 1) / 2
                logits = fn(adv)
                true = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
                mask = jnp.arange(logits.shape[1])[None] == y[:, None]
                other = jnp.max(jnp.where(mask, -jnp.inf, logits), axis=1)
                sq = jnp.sum((adv - reconstructed).reshape(adv.shape[0], -1) ** 2, axis=1)
                return jnp.sum(sq + consts * jnp.maximum(true - other, 0.0)), (adv, logits)

            (_, (adv, logits)), g = jax.value_and_grad(cw_loss, has_aux=True)(delta)
            t = t + 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
            delta = delta - stepsize * m_hat / (jnp.sqrt(v_hat) + 1e-8)
            is_adv = jnp.argmax(logits, axis=1) != y
            norms = jnp.sqrt(jnp.sum((adv - x).reshape(x.shape[0], -1) ** 2, axis=1))
            better = is_adv & (norms < best_norm)
            best = jnp.where(per_sample(better, x), adv, best)
            best_norm = jnp.where(better, norms, best_norm)
            return delta, m, v, t, found | is_adv, best, best_norm

        self._jnp = jnp
        self._steps = _StepCache(jax.jit, {"linf": linf_step, "l2": l2_step, "cw": cw_step})
        self._wrong = jax.jit(lambda x, y: jnp.argmax(fn(x), axis=-1) != y)

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        jnp = self._jnp
        if spec.is_minimization:
            return self._carlini_wagner(spec, x, y)
        step = self._steps.get(spec.norm, spec)
        adversarials, successes = [], []
        for eps in spec.epsilons:
            eps_t = jnp.asarray(eps, dtype=jnp.float32)
            alpha = jnp.asarray(spec.rel_stepsize * eps, dtype=jnp.float32)
            adv = x
            if spec.random_start:
                adv = jnp.clip(x + jnp.asarray(start_noise(spec, tuple(x.shape), eps)), 0.0, 1.0)
            for _ in range(spec.steps):
                adv = step(adv, x, y, eps_t, alpha)
            adversarials.append(adv)
            successes.append(self._wrong(adv, y))
        return adversarials, np.asarray(jnp.stack(successes))

    def _carlini_wagner(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        jnp = self._jnp
        n = x.shape[0]
        w0 = jnp.arctanh((x * 2 - 1) * _TANH_SHRINK)
        reconstructed = (jnp.tanh(w0) + 1) / 2
        search = _CarliniWagnerBookkeeping(n, spec.initial_const)
        best, best_norm = x, jnp.full((n,), jnp.inf, dtype=x.dtype)
        stepsize = jnp.asarray(spec.rel_stepsize, dtype=jnp.float32)
        cw_step = self._steps.get("cw", spec)
        for _ in range(spec.binary_steps):
            zeros = jnp.zeros_like(x)
            state = (zeros, zeros, zeros, jnp.zeros((), jnp.float32),
                     jnp.zeros(n, dtype=bool), best, best_norm)
            consts = jnp.asarray(search.consts)
            for _ in range(spec.steps):
                state = cw_step(state, w0, x, reconstructed, y, consts, stepsize)
            best, best_norm = state[5], state[6]
            search.update(np.asarray(state[4]))
        return [best], np.asarray(self._wrong(best, y))[None]


# ------------------------------------------------------------------------------- TensorFlow
class TensorFlowNative:
    """``tf.function`` steps on a Keras model (called with ``training=False``).

    Args:
        net: the Keras model.
        jit_compile: compile the steps with XLA (default False).
        device: a TF device string such as ``"/GPU:0"``, or None for TF's placement.
    """

    name = "native"

    def __init__(self, net: Any, jit_compile: bool = False, device: str | None = None) -> None:
        import tensorflow as tf

        self._tf = tf
        self._device = device

        def logits_of(x: Any) -> Any:
            return net(x, training=False)

        def per_sample(v: Any, like: Any) -> Any:
            return tf.reshape(v, [-1] + [1] * (len(like.shape) - 1))

        def gradient(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits_of(x))
                )
            return tape.gradient(loss, x)

        def linf_step(x: Any, x0: Any, y: Any, eps: Any, alpha: Any) -> Any:
            x = x + alpha * tf.sign(gradient(x, y))
            x = tf.minimum(tf.maximum(x, x0 - eps), x0 + eps)
            return tf.clip_by_value(x, 0.0, 1.0)

        def l2_step(x: Any, x0: Any, y: Any, eps: Any, alpha: Any) -> Any:
            g = gradient(x, y)
            n = tf.shape(g)[0]
            norms = tf.norm(tf.reshape(g, [n, -1]), axis=1)
            x = x + alpha * g / per_sample(norms + _TINY, g)
            delta = x - x0
            lengths = tf.norm(tf.reshape(delta, [n, -1]), axis=1)
            factor = tf.minimum(eps / tf.maximum(lengths, _TINY), 1.0)
            return tf.clip_by_value(x0 + delta * per_sample(factor, x), 0.0, 1.0)

        def cw_step(state: Any, w0: Any, x: Any, reconstructed: Any, y: Any, consts: Any,
                    stepsize: Any) -> Any:
            delta, m, v, t, found, best, best_norm = state
            n = tf.shape(x)[0]
            with tf.GradientTape() as tape:
                tape.watch(delta)
                adv = (tf.tanh(w0 + delta) + 1) / 2
                logits = logits_of(adv)
                true = tf.gather(logits, y, batch_dims=1)
                mask = tf.one_hot(y, tf.shape(logits)[1], on_value=True, off_value=False)
                other = tf.reduce_max(tf.where(mask, -np.inf, logits), axis=1)
                sq = tf.reduce_sum(tf.square(tf.reshape(adv - reconstructed, [n, -1])), axis=1)
                loss = tf.reduce_sum(sq + consts * tf.maximum(true - other, 0.0))
            g = tape.gradient(loss, delta)
            t = t + 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * tf.square(g)
            m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
            delta = delta - stepsize * m_hat / (tf.sqrt(v_hat) + 1e-8)
            is_adv = tf.argmax(logits, axis=1, output_type=y.dtype) != y
            norms = tf.norm(tf.reshape(adv - x, [n, -1]), axis=1)
            better = tf.logical_and(is_adv, norms < best_norm)
            best = tf.where(per_sample(better, x), adv, best)
            best_norm = tf.where(better, norms, best_norm)
            return delta, m, v, t, tf.logical_or(found, is_adv), best, best_norm

        def wrong(x: Any, y: Any) -> Any:
            return tf.argmax(logits_of(x), axis=-1, output_type=y.dtype) != y

        self._steps = _StepCache(
            lambda fn: tf.function(fn, jit_compile=jit_compile),
            {"linf": linf_step, "l2": l2_step, "cw": cw_step},
        )
        self._wrong = tf.function(wrong)

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        if self._device is None:
            return self._run(spec, x, y)
        with self._tf.device(self._device):
            return self._run(spec, x, y)

    def _run(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        tf = self._tf
        if spec.is_minimization:
            return self._carlini_wagner(spec, x, y)
        step = self._steps.get(spec.norm, spec)
        adversarials, successes = [], []
        for eps in spec.epsilons:
            eps_t = tf.constant(eps, tf.float32)
            alpha = tf.constant(spec.rel_stepsize * eps, tf.float32)
            adv = x
            if spec.random_start:
                noise = tf.convert_to_tensor(start_noise(spec, tuple(x.shape), eps))
                adv = tf.clip_by_value(x + noise, 0.0, 1.0)
            for _ in range(spec.steps):
                adv = step(adv, x, y, eps_t, alpha)
            adversarials.append(adv)
            successes.append(self._wrong(adv, y))
        return adversarials, tf.stack(successes).numpy()

    def _carlini_wagner(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        tf = self._tf
        n = int(x.shape[0])
        w0 = tf.atanh((x * 2 - 1) * _TANH_SHRINK)
        reconstructed = (tf.tanh(w0) + 1) / 2
        search = _CarliniWagnerBookkeeping(n, spec.initial_const)
        best, best_norm = x, tf.fill([n], np.float32(np.inf))
        stepsize = tf.constant(spec.rel_stepsize, tf.float32)
        cw_step = self._steps.get("cw", spec)
        for _ in range(spec.binary_steps):
            zeros = tf.zeros_like(x)
            state = (zeros, zeros, zeros, tf.constant(0.0), tf.zeros([n], tf.bool),
                     best, best_norm)
            consts = tf.convert_to_tensor(search.consts)
            for _ in range(spec.steps):
                state = cw_step(state, w0, x, reconstructed, y, consts, stepsize)
            best, best_norm = state[5], state[6]
            search.update(state[4].numpy())
        return [best], self._wrong(best, y).numpy()[None]
