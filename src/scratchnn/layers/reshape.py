"""Flatten: from samples of any shape to vectors."""

from __future__ import annotations

import math

import numpy as np

from .base import Layer


class Flatten(Layer):
    """``y = x.reshape(N, -1)``;  ``dL/dx = g.reshape(x.shape)``.

    Shapes: x ``(N, d1, d2, ...)``, y ``(N, d1 * d2 * ...)``.
    """

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        return (math.prod(input_shape),)          # Python ints: never wraps

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._saved())


class Reshape(Layer):
    """Placeholder (being written: see issue 10)."""
