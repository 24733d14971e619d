"""Fully connected (affine) layer."""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from ..initializers import Initializer
from ..regularizers import RegularizerLike
from .._validation import check_bool, check_positive_int
from .activations import get_activation
from .base import Layer


class Dense(Layer):
    """Affine map of each sample: ``y = x W + b``.

    Shapes: x ``(N, in)``, W ``(in, units)``, b ``(units,)``, y ``(N, units)``.
    ``in`` is inferred from the data when the model is built.

    Gradients, with ``g = dL/dy`` of shape ``(N, units)``::

        dL/dW = x^T g          (in, units)
        dL/db = sum_n g[n]     (units,)
        dL/dx = g W^T          (N, in)

    With ``activation="relu"`` (any name of ``ACTIVATIONS``, as in Keras) the layer
    applies that activation to ``x W + b``, and its backward pass applies the
    activation's derivative to ``g`` first: ``Dense(64, activation="relu")`` is
    ``Dense(64), ReLU()`` in one layer.

    Args:
        units: number of outputs.
        activation: an activation's name, or None (default) for none.
        use_bias: add ``b`` (default True).
        kernel_initializer: initializer of ``W`` (default ``"glorot_uniform"``, as in Keras).
        bias_initializer: initializer of ``b`` (default ``"zeros"``).
        kernel_regularizer: a penalty on ``W`` added to the loss (``"l2"``, ``L2(1e-4)``,
            see ``scratchnn.regularizers``), or None (default).
        bias_regularizer: the same for ``b`` (needs ``use_bias``), or None (default).
    """

    #: the constructor's argument that initializes each parameter (named in errors)
    initializer_arguments = {"W": "kernel_initializer", "b": "bias_initializer"}

    def __init__(self, units: int, activation: Optional[str] = None, *, use_bias: bool = True,
                 kernel_initializer: Union[str, Initializer] = "glorot_uniform",
                 bias_initializer: Union[str, Initializer] = "zeros",
                 kernel_regularizer: RegularizerLike = None, bias_regularizer: RegularizerLike = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.activation, self._activation = get_activation(activation)
        self.units = check_positive_int(units, "units")
        self.use_bias = check_bool(use_bias, "use_bias")
        self._set_initializers(kernel_initializer, bias_initializer)
        self._set_regularizers(kernel_regularizer, bias_regularizer, self.use_bias)

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        if len(input_shape) != 1:
            raise ValueError(f"Dense expects inputs of shape (N, features), got samples of "
                             f"shape {tuple(input_shape)}; add a Flatten layer before it")
        fan_in = input_shape[0]
        self.add_param("W", (fan_in, self.units), self._kernel_init, fan_in, self.units)
        if self.use_bias:
            self.add_param("b", (self.units,), self._bias_init, fan_in, self.units)
        return (self.units,)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x
        y = x @ self.W
        if self.use_bias:
            y += self.b
        if self._activation is not None:
            y = self._activation.forward(y, training)
        return y

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        x = self._saved()
        if self._activation is not None:
            grad_out = self._activation.backward(grad_out)
        np.matmul(x.T, grad_out, out=self.dW)
        if self.use_bias:
            np.add.reduce(grad_out, axis=0, out=self.db)
        if not self.needs_input_grad:
            return None
        return grad_out @ self.W.T

    def get_config(self) -> dict:
        config = {"units": self.units, "use_bias": self.use_bias, "name": self.name}
        if self.activation is not None:
            config["activation"] = self.activation
        return {**config, **self._initializer_config(), **self._regularizer_config()}
