"""Keras 3 models on any Keras backend (jax, torch or tensorflow).

A Keras 3 model computes in the tensors of the backend Keras was configured with
(``KERAS_BACKEND``, or ``~/.keras/keras.json``), and only that backend's autodiff can
differentiate it: on jax only through a stateless call, on torch only through autograd.
:class:`KerasModel` therefore builds the backend's own wrapper (:class:`KerasJAXModel`,
:class:`KerasTorchModel` or :class:`KerasTensorFlowModel`), which reports that backend's
framework and takes its tensors.

Importing this module imports no framework: Keras and its backend are imported when a model is
wrapped or built.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .base import FrameworkModel, check_data_format
from .jax import JAXModel
from .pytorch import PyTorchModel
from .registry import ModelKind, register_kind
from .tensorflow import TensorFlowModel
from .tensorflow import build_cnn as build_keras_cnn


class KerasModel(FrameworkModel):
    """Wrap a Keras 3 model (``keras.Model`` or ``keras.Layer``) returning logits, on the backend
    Keras runs on.

    ``KerasModel(model, ...)`` returns a :class:`KerasJAXModel`, :class:`KerasTorchModel` or
    :class:`KerasTensorFlowModel` (all instances of ``KerasModel``): its ``framework`` is the
    Keras backend, ``model(x)`` takes that backend's tensors, NumPy arrays or EagerPy tensors
    and returns logits of the same type. The model is called with ``training=False``; its
    weights are never changed.

    Args:
        model: a built Keras 3 model (call it once, or ``model.build(input_shape)``, first).
        bounds: ``(lower, upper)`` of valid input values.
        preprocessing: ``dict(mean=..., std=..., axis=None, flip_axis=None)`` applied inside
            the forward pass. Default: none.
        data_format: ``"channels_first"`` or ``"channels_last"``. Default None: Keras'
            ``image_data_format()``, read when asked.
        device: where NumPy inputs are placed, in the backend's own terms (a ``jax.Device`` or
            ``"cpu:0"``; a torch device such as ``"cuda:0"``; a TF device such as ``"/GPU:0"``).
            Default: the backend's (on torch: the device of the model's weights).
        compile: compile attack steps with the backend's compiler. Default None: the backend
            wrapper's default (jax: ``jax.jit``, tensorflow: ``tf.function``, torch: eager).
        output_key / output_index: pick the logits when the model returns a dict / tuple.

    On jax the wrapper reads the weights once, when it is created (a pure function of the
    inputs): wrap the model again after changing its weights. The wrapped model is the
    attribute ``keras_model``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> KerasModel:
        # Only KerasModel(...) picks the backend; copy.copy calls cls.__new__(cls) bare.
        if cls is KerasModel:
            backend = configured_backend()
            if backend not in _BACKEND_WRAPPERS:
                raise ValueError(
                    f"model: Keras runs on the {backend!r} backend, which has no gradients in "
                    f"advlib; set KERAS_BACKEND to one of {sorted(_BACKEND_WRAPPERS)} before "
                    "importing keras"
                )
            cls = _BACKEND_WRAPPERS[backend]
        return super().__new__(cls)

    def __init__(
        self,
        model: Any,
        bounds: Any,
        preprocessing: Mapping[str, Any] | None = None,
        data_format: str | None = None,
        device: Any = None,
        compile: bool | None = None,
        output_key: str | None = None,
        output_index: int | None = None,
    ) -> None:
        _check_keras_model(model)
        options = dict(
            preprocessing=preprocessing,
            device=device,
            compile=compile,
            output_key=output_key,
            output_index=output_index,
        )
        self._wrap(model, bounds, options)
        self._data_format = check_data_format(data_format)
        self.keras_model = model

    def _wrap(self, model: Any, bounds: Any, options: dict[str, Any]) -> None:
        """Initialise the backend's wrapper around ``model`` (each backend subclass)."""
        raise NotImplementedError

    @property
    def data_format(self) -> str:
        """The given data format, else Keras' ``image_data_format()``."""
        if self._data_format is not None:
            return self._data_format
        import keras

        return str(keras.config.image_data_format())


class KerasJAXModel(KerasModel, JAXModel):
    """A Keras 3 model on the jax backend (see :class:`KerasModel`): a pure function
    ``model.stateless_call(weights, x, training=False)`` differentiated and compiled by JAX."""

    def _wrap(self, model: Any, bounds: Any, options: dict[str, Any]) -> None:
        JAXModel.__init__(self, _stateless_forward(model), bounds, **options)


# PyTorchModel's data_format is a constant (torch is channels first); Keras' is configurable.
class KerasTorchModel(KerasModel, PyTorchModel):  # type: ignore[override]
    """A Keras 3 model on the torch backend (see :class:`KerasModel`), differentiated by
    autograd; NumPy inputs go to the device of the model's weights."""

    def _wrap(self, model: Any, bounds: Any, options: dict[str, Any]) -> None:
        # A callable, not the module: torch's own `training` flag means nothing to Keras
        # (it takes training=False per call), so PyTorchModel must not warn about it.
        if options["device"] is None:
            options["device"] = next((v.value.device for v in model.variables), None)
        PyTorchModel.__init__(self, _inference_call(model), bounds, **options)
        floating = (v.value.dtype for v in model.variables if v.value.is_floating_point())
        self._variable_dtype = next(floating, None)

    def _model_dtype(self) -> Any:
        return self._variable_dtype


class KerasTensorFlowModel(KerasModel, TensorFlowModel):
    """A Keras 3 model on the tensorflow backend (see :class:`KerasModel`)."""

    def _wrap(self, model: Any, bounds: Any, options: dict[str, Any]) -> None:
        TensorFlowModel.__init__(self, model, bounds, **options)


_BACKEND_WRAPPERS: dict[str, type[KerasModel]] = {
    "jax": KerasJAXModel,
    "torch": KerasTorchModel,
    "tensorflow": KerasTensorFlowModel,
}


def configured_backend() -> str:
    """The backend Keras runs on: ``keras.backend.backend()`` once keras is imported, else
    what Keras will read when it is (``KERAS_BACKEND``, then ``$KERAS_HOME/keras.json`` or
    ``~/.keras/keras.json``, then ``"tensorflow"``), without importing it."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return str(keras.backend.backend())
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as file:
            return str(json.load(file)["backend"])
    except (OSError, ValueError, KeyError, TypeError):
        return "tensorflow"


def is_keras3_model(model: Any) -> bool:
    """Whether ``model`` is a Keras 3 layer or model (by its types' modules; imports nothing)."""
    keras = sys.modules.get("keras")
    version = str(getattr(keras, "__version__", "0"))
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 3:
        return False
    return any(
        cls.__name__ == "Layer" and cls.__module__.startswith("keras.")
        for cls in type(model).__mro__
    )


def _check_keras_model(model: Any) -> None:
    if not is_keras3_model(model):
        raise TypeError(
            "model: expected a Keras 3 model (keras.Model or keras.Layer), got "
            f"{type(model).__module__}.{type(model).__name__}; wrap other models with "
            "advlib.wrap or their framework's wrapper"
        )
    if not model.built:
        raise ValueError(
            f"model: the Keras model {model.name!r} is not built (it has no weights yet); call "
            "model.build(input_shape) or call it once on a batch before wrapping it"
        )


def _stateless_forward(model: Any) -> Callable[[Any], Any]:
    """A pure function of a batch: the model's weights as they are now, passed explicitly."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(x: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return outputs

    return forward


def _inference_call(model: Any) -> Callable[[Any], Any]:
    return lambda x: model(x, training=False)


KIND = register_kind(
    ModelKind(
        name="keras",
        wrapper="advlib.models.keras:KerasModel",
        backend=configured_backend,
        recognizes=is_keras3_model,
        # the reference CNN as a keras.Sequential: the same on every Keras backend
        build=build_keras_cnn,
        requires=("keras",),
        wrap_kwargs={"data_format": "channels_first"},
    )
)
