"""advlib: adversarial attacks written once, run natively on PyTorch, TensorFlow, JAX and NumPy.

>>> import advlib
>>> model = advlib.PyTorchModel(net.eval(), bounds=(0, 1))          # doctest: +SKIP
>>> raw, clipped, success = advlib.attacks.LinfPGD()(model, x, y, epsilons=[2/255, 8/255])
...                                                                 # doctest: +SKIP

Importing advlib imports no deep-learning framework; a wrapper imports its framework on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import attacks, criteria, norms, utils, zoo
from .attacks import Attack, AttackResult
from .criteria import (
    Criterion,
    Misclassification,
    TargetedMisclassification,
    TopKMisclassification,
)
from .evaluation import RobustnessReport, evaluate
from .models import Model

if TYPE_CHECKING:
    from .models import JAXModel, NumPyModel, PyTorchModel, TensorFlowModel

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "AttackResult",
    "Criterion",
    "JAXModel",
    "Misclassification",
    "Model",
    "NumPyModel",
    "PyTorchModel",
    "RobustnessReport",
    "TargetedMisclassification",
    "TensorFlowModel",
    "TopKMisclassification",
    "__version__",
    "attacks",
    "criteria",
    "evaluate",
    "norms",
    "utils",
    "zoo",
]

_MODELS = ("PyTorchModel", "TensorFlowModel", "JAXModel", "NumPyModel")


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
