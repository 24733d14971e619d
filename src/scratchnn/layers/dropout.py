"""Inverted dropout."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._validation import check_number
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, ``y = x * m / (1 - rate)`` with a fresh mask
    ``m ~ Bernoulli(1 - rate)`` per element and call; ``dL/dx = g * m / (1 - rate)``
    with the same mask. In evaluation (``training=False``) it is the identity, so
    no rescaling is needed at prediction time.

    The mask is drawn from the model's random generator, so a seeded model drops
    the same units every run.

    Args:
        rate: probability of zeroing each element, in [0, 1).
    """

    @property
    def random_in_training(self) -> bool:
        """Whether training-mode outputs are random (an optimizer with a line search refuses it)."""
        return self.rate > 0

    def __init__(self, rate: float = 0.5, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.rate = check_number("rate", rate, 0.0, 1.0, high_open=True)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0:
            self._cache = 1
            return x
        if self.rng is None:
            raise RuntimeError("Dropout has no random generator: add it to a model and build it")
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.rate
        scaled_mask = keep * x.dtype.type(1 / (1 - self.rate))
        self._cache = scaled_mask
        return x * scaled_mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        scaled_mask = self._saved()
        return grad_out * scaled_mask

    def get_config(self) -> dict:
        return {"rate": self.rate, "name": self.name}
