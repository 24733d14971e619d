"""Element-wise activations and softmax, each with its derivative.

Every activation keeps what its derivative needs from the latest forward call:
the output ``y`` where the derivative is cheapest in terms of ``y`` (sigmoid,
tanh, ELU), the input ``x`` otherwise. ``g`` is dL/dy throughout; all shapes
are ``(N, ...)`` in and out.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import functional as F
from .._validation import check_number
from .base import Layer


class Identity(Layer):
    """``y = x``;  ``dL/dx = g``."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = True
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._saved()
        return grad_out


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``;  ``dL/dx = g * y * (1 - y)`` (from the output y)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = F.sigmoid(x)
        self._cache = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._saved()
        return grad_out * y * (1 - y)


class Tanh(Layer):
    """``y = tanh(x)``;  ``dL/dx = g * (1 - y^2)`` (from the output y)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = np.tanh(x)
        self._cache = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._saved()
        return grad_out * (1 - y * y)


class ReLU(Layer):
    """``y = max(x, 0)``;  ``dL/dx = g * [x > 0]`` (the derivative at 0 is taken as 0)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = np.maximum(x, 0)
        self._cache = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._saved()
        # y > 0 exactly where x > 0.
        return grad_out * (y > 0)


class LeakyReLU(Layer):
    """``y = x`` for x > 0, ``alpha * x`` otherwise;
    ``dL/dx = g`` for x > 0, ``alpha * g`` otherwise.

    Args:
        alpha: slope for negative inputs (default 0.01, as in PyTorch).
    """

    def __init__(self, alpha: float = 0.01, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.alpha = check_number("alpha", alpha, 0.0)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        positive = x > 0
        self._cache = positive
        return np.where(positive, x, self.alpha * x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        positive = self._saved()
        return np.where(positive, grad_out, self.alpha * grad_out)

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "name": self.name}


class ELU(Layer):
    """``y = x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise;
    ``dL/dx = g`` for x > 0, ``g * (y + alpha)`` otherwise (from the output y).

    ``exp`` is applied to ``min(x, 0)`` only, so large inputs cannot overflow.

    Args:
        alpha: the value that ``y`` approaches as x goes to minus infinity is ``-alpha``
            (default 1.0).
    """

    def __init__(self, alpha: float = 1.0, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.alpha = check_number("alpha", alpha, 0.0, low_open=True)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        positive = x > 0
        y = np.where(positive, x, self.alpha * np.expm1(np.minimum(x, 0)))
        self._cache = (positive, y)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        positive, y = self._saved()
        return np.where(positive, grad_out, grad_out * (y + self.alpha))

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "name": self.name}


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


class GELU(Layer):
    """Gaussian error linear unit, in its tanh form (PyTorch's ``approximate="tanh"``)::

        u = c (x + k x^3),  c = sqrt(2/pi),  k = 0.044715,   t = tanh(u)
        y = x (1 + t) / 2
        dL/dx = g * [ (1 + t) / 2  +  x (1 - t^2) c (1 + 3 k x^2) / 2 ]

    For |x| > 10, t is exactly +-1 in float32 and float64, so u is computed from
    x clipped to [-10, 10]; this changes no value and keeps ``x^3`` from
    overflowing for huge inputs.
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        xc = np.clip(x, -10, 10)
        t = np.tanh(_GELU_C * (xc + _GELU_K * xc * xc * xc))
        self._cache = (xc, t)
        return 0.5 * x * (1 + t)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        xc, t = self._saved()
        # Where x was clipped, 1 - t^2 is exactly 0, so using xc there is exact.
        slope = 0.5 * (1 + t) + 0.5 * xc * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_K * xc * xc)
        return grad_out * slope


class Softmax(Layer):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` over the last axis;
    ``dL/dx = y * (g - sum_j g_j y_j)``.

    For classification, prefer raw outputs with ``CrossEntropy``, which fuses
    softmax into the loss; this layer is for models that need probabilities
    inside the network.
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = F.softmax(x, axis=-1)
        self._cache = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._saved()
        return y * (grad_out - np.sum(grad_out * y, axis=-1, keepdims=True))


# Activations by the names users type in configurations, ``Dense(activation=...)``
# and on the command line.
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity, "linear": Identity, "sigmoid": Sigmoid, "tanh": Tanh,
    "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU, "softmax": Softmax,
}


def get_activation(name: Optional[str]) -> tuple[Optional[str], Optional[Layer]]:
    """``(name, layer)`` of a layer's ``activation=`` argument: an activation's name
    (any case) as its lower-case key of ``ACTIVATIONS`` and a new instance, or
    ``(None, None)``."""
    if name is None:
        return None, None
    if not (isinstance(name, str) and name.lower() in ACTIVATIONS):
        raise ValueError(f"activation must be None or one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name.lower(), ACTIVATIONS[name.lower()]()
