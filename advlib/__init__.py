"""advlib: adversarial attacks written once, run natively on PyTorch, TensorFlow, JAX and NumPy.

>>> import advlib
>>> model = advlib.PyTorchModel(net.eval(), bounds=(0, 1))          # doctest: +SKIP
>>> raw, clipped, success = advlib.attacks.LinfPGD()(model, x, y, epsilons=[2/255, 8/255])
...                                                                 # doctest: +SKIP

Foolbox's helpers are here too: ``advlib.accuracy``, ``advlib.samples`` (bundled 8x8 digits),
``advlib.distances``, ``advlib.plot`` and ``advlib.types``.

Importing advlib imports no deep-learning framework; a wrapper imports its framework on first use.
"""

import typing as _typing

from . import attacks, criteria, distances, models, norms, plot, types, utils, zoo
from .attacks import Attack, AttackResult
from .criteria import (
    Criterion,
    Misclassification,
    TargetedMisclassification,
    TopKMisclassification,
)
from .distances import Distance
from .evaluation import RobustnessReport, evaluate
from .models import Model
from .utils import accuracy, samples

if _typing.TYPE_CHECKING:
    from .models import JAXModel, NumPyModel, PyTorchModel, TensorFlowModel

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "AttackResult",
    "Criterion",
    "Distance",
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
    "accuracy",
    "attacks",
    "criteria",
    "distances",
    "evaluate",
    "evaluation",
    "models",
    "norms",
    "plot",
    "samples",
    "types",
    "utils",
    "zoo",
]

_MODELS = ("PyTorchModel", "TensorFlowModel", "JAXModel", "NumPyModel")


def __getattr__(name: str) -> _typing.Any:
    if name in _MODELS:
        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names (the lazily imported wrappers included) and the module's own dunders,
    # so completion offers what exists and hides helpers.
    dunders = [name for name in globals() if name.startswith("__") and name.endswith("__")]
    return sorted({*__all__, *dunders})
