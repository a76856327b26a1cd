"""The implementations compared: advlib, Foolbox 3.3.4, torchattacks and the native loops.

Each is built once per (backend, network, batch) with :func:`implementations` and called as
``impl(spec, x, y) -> (adversarials, success)`` (see :mod:`benchmarks.native`). Peers that are
not installed, or cannot run a given attack with the same work, are skipped with a reason.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SEED, AttackSpec
from .native import Implementation, JaxNative, Outcome, TensorFlowNative, TorchNative, start_noise


@dataclass
class Setup:
    """Where one backend runs: framework, device, and the native network built for it."""

    framework: str
    device: str  # "cpu" or "cuda"
    net: Any

    @property
    def tf_device(self) -> str | None:
        """The TF device string on GPU; None (TF's own placement) on CPU."""
        return "/GPU:0" if self.device == "cuda" else None


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------- advlib
class Advlib:
    """advlib's attack on its model wrapper (compiled steps: the wrapper's default)."""

    name = "advlib"

    def __init__(self, setup: Setup, **wrapper_kwargs: Any) -> None:
        import advlib

        kwargs: dict[str, Any] = dict(wrapper_kwargs)
        self.model: Any
        if setup.framework == "torch":
            self.model = advlib.PyTorchModel(setup.net, bounds=(0, 1), **kwargs)
        elif setup.framework == "tensorflow":
            if setup.tf_device is not None:
                kwargs.setdefault("device", setup.tf_device)
            self.model = advlib.TensorFlowModel(setup.net, bounds=(0, 1), **kwargs)
        else:
            self.model = advlib.JAXModel(setup.net, bounds=(0, 1), **kwargs)
        self._attacks: dict[AttackSpec, Any] = {}

    @staticmethod
    def attack_class(spec: AttackSpec) -> Any:
        """advlib's class for ``spec`` (by name or alias), or None."""
        from advlib import attacks

        return getattr(attacks, spec.name, None) or attacks.ATTACKS.get(spec.name)

    def supports(self, spec: AttackSpec) -> str | None:
        if self.attack_class(spec) is None:
            return f"advlib has no {spec.name} yet: skipped"
        return None

    def attack(self, spec: AttackSpec) -> Any:
        if spec not in self._attacks:
            cls = self.attack_class(spec)
            if spec.name == "FGSM":
                attack = cls()
            elif spec.is_minimization:
                attack = cls(**_accepted(cls, _carlini_wagner_kwargs(spec)))
            else:
                attack = cls(
                    steps=spec.steps, rel_stepsize=spec.rel_stepsize,
                    random_start=spec.random_start, seed=SEED,
                )
            self._attacks[spec] = attack
        return self._attacks[spec]

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        epsilons = list(spec.epsilons) if spec.epsilons else None
        _, clipped, success = self.attack(spec)(self.model, x, y, epsilons=epsilons)
        return _as_list(clipped), _numpy(success).reshape(-1, x.shape[0])


def _carlini_wagner_kwargs(spec: AttackSpec) -> dict[str, Any]:
    return {
        "binary_search_steps": spec.binary_steps,
        "steps": spec.steps,
        "stepsize": spec.rel_stepsize,
        "confidence": 0.0,
        "initial_const": spec.initial_const,
        "abort_early": False,
    }


def _accepted(cls: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``cls`` accepts (attack signatures differ between libraries)."""
    parameters = inspect.signature(cls).parameters
    return {k: v for k, v in kwargs.items() if k in parameters}


# ------------------------------------------------------------------------------- Foolbox
class Foolbox:
    """Foolbox 3.3.4 on its own model wrapper, with advlib's random start injected."""

    name = "foolbox"

    def __init__(self, setup: Setup) -> None:
        fb: Any = importlib.import_module("foolbox")

        self._fb = fb
        self.model: Any
        if setup.framework == "torch":
            self.model = fb.PyTorchModel(setup.net, bounds=(0, 1), device=_torch_device(setup))
        elif setup.framework == "tensorflow":
            self.model = fb.TensorFlowModel(setup.net, bounds=(0, 1), device=setup.tf_device)
        else:
            self.model = fb.JAXModel(setup.net, bounds=(0, 1))
        self._attacks: dict[AttackSpec, Any] = {}

    def attack(self, spec: AttackSpec) -> Any:
        if spec not in self._attacks:
            self._attacks[spec] = self._make(spec)
        return self._attacks[spec]

    @staticmethod
    def note(spec: AttackSpec) -> str | None:
        """A caveat on comparing this implementation's results for ``spec``."""
        if spec.is_minimization:
            return (
                "Foolbox's C&W returns an all-zero image where it found no adversarial, and "
                "counts it as a success when that image is misclassified: its success rate is "
                "not comparable"
            )
        return None

    def _make(self, spec: AttackSpec) -> Any:
        fb, ep = self._fb, importlib.import_module("eagerpy")
        if spec.is_minimization:
            return fb.attacks.L2CarliniWagnerAttack(**_carlini_wagner_kwargs(spec))
        base = {"linf": fb.attacks.LinfPGD, "l2": fb.attacks.L2PGD}[spec.norm]

        class SeededStart(base):  # type: ignore[misc, valid-type]
            """The same random start as advlib and the native loop."""

            def get_random_start(self, x0: Any, epsilon: float) -> Any:
                return x0 + ep.from_numpy(x0, start_noise(spec, tuple(x0.shape), epsilon))

        return SeededStart(
            rel_stepsize=spec.rel_stepsize, steps=spec.steps, random_start=spec.random_start
        )

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        epsilons = list(spec.epsilons) if spec.epsilons else [None]
        _, clipped, success = self.attack(spec)(self.model, x, y, epsilons=epsilons)
        return list(clipped), _numpy(success).reshape(-1, x.shape[0])


# ------------------------------------------------------------------------------- torchattacks
class TorchAttacks:
    """torchattacks 3.5.1 (PyTorch only); one call per epsilon, like the others.

    Its random start comes from torch's RNG (reseeded per call), not the shared NumPy start.
    """

    name = "torchattacks"

    def __init__(self, setup: Setup) -> None:
        import torchattacks

        self._ta = torchattacks
        self.net = setup.net

    @staticmethod
    def supports(spec: AttackSpec) -> str | None:
        if spec.is_minimization:
            return (
                "torchattacks' CW has no binary search over c and aborts early: "
                "not the same work, skipped"
            )
        return None

    def __call__(self, spec: AttackSpec, x: Any, y: Any) -> Outcome:
        import torch

        torch.manual_seed(SEED)
        adversarials, successes = [], []
        for eps in spec.epsilons:
            if spec.name == "FGSM":
                attack = self._ta.FGSM(self.net, eps=eps)
            elif spec.norm == "linf":
                attack = self._ta.PGD(
                    self.net, eps=eps, alpha=spec.rel_stepsize * eps, steps=spec.steps,
                    random_start=spec.random_start,
                )
            else:
                attack = self._ta.PGDL2(
                    self.net, eps=eps, alpha=spec.rel_stepsize * eps, steps=spec.steps,
                    random_start=spec.random_start,
                )
            adv = attack(x, y)
            with torch.no_grad():
                successes.append(self.net(adv).argmax(-1) != y)
            adversarials.append(adv)
        return adversarials, torch.stack(successes).cpu().numpy()


# ------------------------------------------------------------------------------- assembly
#: Networks whose TensorFlow steps are fastest with XLA (``jit_compile=True``), measured on a
#: 2-core CPU: the MLP's native Linf PGD took 0.58 s with XLA vs 0.69 s without; the digits CNN
#: 1.17 s vs 0.86 s (XLA's CPU convolutions are slow). The native loop and advlib
#: (``TensorFlowModel(..., jit_compile=True)``) both take the faster choice.
TF_XLA_NETWORKS = {"mlp"}


def tf_xla(setup: Setup, network: str) -> bool:
    """Whether TensorFlow steps for ``network`` compile with XLA (CPU only; GPU unmeasured)."""
    return setup.framework == "tensorflow" and network in TF_XLA_NETWORKS and setup.device == "cpu"


def native_loop(setup: Setup, network: str) -> Implementation:
    """The hand-written loop for ``setup``'s framework (see :mod:`benchmarks.native`)."""
    if setup.framework == "torch":
        return TorchNative(setup.net)
    if setup.framework == "tensorflow":
        xla = tf_xla(setup, network)
        return TensorFlowNative(setup.net, jit_compile=xla, device=setup.tf_device)
    return JaxNative(setup.net)


def implementations(setup: Setup, network: str) -> tuple[dict[str, Any], list[str]]:
    """``({name: implementation}, [skip messages])`` for one backend and network."""
    advlib_kwargs = {"jit_compile": True} if tf_xla(setup, network) else {}
    impls: dict[str, Any] = {
        "advlib": Advlib(setup, **advlib_kwargs),
        "native": native_loop(setup, network),
    }
    skipped: list[str] = []
    if installed("foolbox"):
        impls["foolbox"] = Foolbox(setup)
    else:
        skipped.append("foolbox is not installed: skipped")
    if setup.framework == "torch":
        if installed("torchattacks"):
            impls["torchattacks"] = TorchAttacks(setup)
        else:
            skipped.append("torchattacks is not installed: skipped")
    return impls, skipped


def note(impl: Any, spec: AttackSpec) -> str | None:
    """A caveat on comparing ``impl``'s results for ``spec``, or None."""
    explain = getattr(impl, "note", None)
    return explain(spec) if explain is not None else None


def unsupported(impl: Any, spec: AttackSpec) -> str | None:
    """Why ``impl`` cannot run ``spec`` with the same work as the others, or None."""
    check = getattr(impl, "supports", None)
    return check(spec) if check is not None else None


def _torch_device(setup: Setup) -> Any:
    import torch

    return torch.device("cuda" if setup.device == "cuda" else "cpu")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(value)
