"""Numerically stable primitives shared by layers and losses.

Every function here is finite and warning-free for every finite input, in
float32 and float64: nothing calls ``np.exp`` on a value that could overflow,
and nothing takes ``np.log`` of a value that could round to zero.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, without overflow.

    With ``e = exp(-|x|)`` (always in (0, 1]) the two branches
    ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` for x < 0 are the same
    function, and neither exponentiates a large positive number.
    """
    e = np.exp(-np.abs(x))
    return np.divide(np.where(x >= 0, 1.0, e), 1.0 + e, out=out)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` computed as ``logaddexp(0, x)``."""
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)``; finite where ``log(sigmoid(x))`` is not."""
    return -softplus(-x)


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """``log(sum(exp(x), axis))``, shifted by the maximum so that no exp overflows."""
    m = np.max(x, axis=axis, keepdims=True)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``; the row maximum is subtracted first."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e
