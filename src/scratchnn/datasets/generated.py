"""Small generated data sets: the tutorials' XOR, and seeded toy problems."""

from __future__ import annotations

import numpy as np


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points: ``X`` (4, 2) float64 and ``y`` (4,) int64 = [0, 1, 1, 0]."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y
