"""Flatten and Reshape: the same values per sample, in another shape."""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence

import numpy as np

from .._validation import INT_MAX, describe
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
    """``y = x.reshape((N,) + shape)``;  ``dL/dx = g.reshape(x.shape)``.

    Shapes: x ``(N, d1, d2, ...)``, y ``(N, *shape)``, with as many values per
    sample: ``Reshape((28, 28, 1))`` turns rows of 784 pixels into images (channels
    last). One entry of ``shape`` may be -1: it is inferred from the input when the
    model is built.

    Args:
        shape: the shape of one output sample (no batch axis): positive integers,
            and at most one -1.
    """

    def __init__(self, shape: Sequence[int], name: Optional[str] = None) -> None:
        super().__init__(name)
        if not (isinstance(shape, (tuple, list)) and shape
                and all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
                        and (1 <= s <= INT_MAX or s == -1) for s in shape)
                and sum(s == -1 for s in shape) <= 1):
            raise ValueError(f"shape must be a non-empty tuple of positive integers (up to "
                             f"{INT_MAX}) with at most one -1, such as (28, 28, 1), got {describe(shape)}")
        self.shape = tuple(int(s) for s in shape)

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        size = math.prod(input_shape)             # Python ints: never wraps
        known = math.prod(s for s in self.shape if s != -1)
        if -1 in self.shape and size % known == 0:
            target = tuple(size // known if s == -1 else s for s in self.shape)
        elif -1 not in self.shape and size == known:
            target = self.shape
        else:
            raise ValueError(f"Reshape cannot turn samples of shape {tuple(input_shape)} ({size} "
                             f"values) into samples of shape {self.shape} "
                             f"({'a multiple of ' if -1 in self.shape else ''}{known} values)")
        self._target = target
        return target

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x.shape
        return x.reshape((x.shape[0],) + self._target)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._saved())

    def get_config(self) -> dict:
        return {"shape": list(self.shape), "name": self.name}
