"""advlib: adversarial attacks written once, run natively on PyTorch, TensorFlow, JAX and NumPy.

>>> import advlib
>>> model = advlib.PyTorchModel(net.eval(), bounds=(0, 1))          # doctest: +SKIP
>>> model = advlib.wrap(net.eval(), bounds=(0, 1))  # the same, from the type  # doctest: +SKIP
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
    LeastLikelyTargetedMisclassification,
    Misclassification,
    RandomTargetedMisclassification,
    TargetedMisclassification,
    TopKMisclassification,
)
from .distances import Distance
from .evaluation import RobustnessReport, evaluate, transfer
from .models import Model, wrap
from .models import registry as _registry
from .utils import accuracy, samples

if _typing.TYPE_CHECKING:
    from .models import JAXModel as JAXModel
    from .models import NumPyModel as NumPyModel
    from .models import PyTorchModel as PyTorchModel
    from .models import TensorFlowModel as TensorFlowModel

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "AttackResult",
    "Criterion",
    "Distance",
    "LeastLikelyTargetedMisclassification",
    "Misclassification",
    "Model",
    "RandomTargetedMisclassification",
    "RobustnessReport",
    "TargetedMisclassification",
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
    "transfer",
    "types",
    "utils",
    "wrap",
    "zoo",
]
_BASE = tuple(__all__)
# The wrapper of every registered model kind (PyTorchModel, TensorFlowModel, JAXModel,
# NumPyModel, ...), imported from advlib.models when first used.
__all__ += sorted(_registry.wrapper_names())


def __getattr__(name: str) -> _typing.Any:
    if name in _registry.wrapper_names():
        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names (the lazily imported wrappers included) and the module's own dunders,
    # so completion offers what exists and hides helpers.
    dunders = [name for name in globals() if name.startswith("__") and name.endswith("__")]
    return sorted({*_BASE, *_registry.wrapper_names(), *dunders})
