"""Numerically stable primitives shared by layers and losses.

Every function here is finite and warning-free for every finite input, in
float32 and float64: nothing calls ``np.exp`` on a value that could overflow,
and nothing takes ``np.log`` of a value that could round to zero.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def max_abs(x: np.ndarray) -> float:
    """``max |x|``, without a temporary array (0 for an empty array)."""
    return float(max(x.max(), -x.min())) if x.size else 0.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, without overflow.

    With ``e = exp(-|x|)`` (always in (0, 1]) the two branches
    ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` for x < 0 are the same
    function, and neither exponentiates a large positive number.
    """
    return sigmoid_from_exp(x, exp_minus_abs(x))


def exp_minus_abs(x: np.ndarray) -> np.ndarray:
    """``exp(-|x|)``, in (0, 1]: the one exponential that sigmoid and softplus need.
    (``copysign(x, -1)`` is ``-|x|`` in one pass.)"""
    e = np.copysign(x, -1.0)
    return np.exp(e, out=e)


def sigmoid_from_exp(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``sigmoid(x)`` given ``e = exp(-|x|)`` (which a loss may have computed already)."""
    numerator = np.maximum(e, x >= 0)    # 1 where x >= 0 (True counts as 1), e elsewhere
    return np.divide(numerator, e + 1, out=numerator)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` computed as ``logaddexp(0, x)``."""
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)``; finite where ``log(sigmoid(x))`` is not."""
    return -softplus(-x)


def _minus_max(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x - m`` for ``m`` the maximum of ``x`` along an axis: every value is <= 0.

    For inputs near both ends of the float range (a row holding ``+max`` and
    ``-max``) the difference rounds to ``-inf``, which is harmless: ``exp(-inf)``
    is exactly 0, the correctly rounded value. Only that overflow is silenced.
    """
    with np.errstate(over="ignore"):
        return x - m


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """``log(sum(exp(x), axis))``, shifted by the maximum so that no exp overflows."""
    m = np.max(x, axis=axis, keepdims=True)
    s = np.log(np.sum(np.exp(_minus_max(x, m)), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``, computed as ``(x - m) - log(sum(exp(x - m)))``
    with ``m`` the maximum: forming ``m + log(...)`` first would round the small
    term away beside a large ``m`` (in float32, ``1000 + log 4`` keeps only 4 digits
    of ``log 4``; ``1e30 + log 2`` keeps none).

    The one finite input without a finite result: a row holding values near both
    ends of the float range, whose smallest log-probability is below ``-max``;
    it comes out as ``-inf``, the correctly rounded value."""
    shifted = _minus_max(x, np.max(x, axis=axis, keepdims=True))
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``; the row maximum is subtracted first."""
    e = np.exp(_minus_max(x, np.max(x, axis=axis, keepdims=True)))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


# ------------------------------------------------------------------ exact means
# The fast formulas of the losses and metrics overflow only near the ends of the
# float range (a residual of 1e20 squared in float32, a float64 sum of 1e308 and
# 1e308). They detect that from a non-finite result and fall back to these, which
# compute the same mean in float64 from values scaled into [-1, 1]. Each returns
# inf only where the true mean is beyond the float64 range.

def half_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / 2`` in float64, computed as ``a/2 - b/2``: for finite a and b
    that cannot overflow (``a - b`` can: ``1e308 - (-1e308)``), and halving is exact."""
    half = np.multiply(a, 0.5, dtype=np.float64)
    half -= np.multiply(b, 0.5, dtype=np.float64)
    return half


def scaled_mean(values: np.ndarray) -> float:
    """The mean of finite float ``values``, as ``m * mean(values / m)`` with ``m`` the
    largest magnitude: every term is in [-1, 1], so the sum cannot overflow, and
    ``|mean| <= m`` keeps the product finite."""
    values = np.asarray(values, dtype=np.float64)
    m = float(np.max(np.abs(values)))
    if m == 0.0:
        return 0.0
    return m * (float(np.add.reduce((values / m).ravel())) / values.size)


def mean_squared_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``mean((a - b)^2)`` for finite a and b of one shape, without overflow: with
    ``h = (a - b)/2`` and ``m = max|h|`` it is ``4 m^2 mean((h/m)^2)``. Only the last
    product can overflow, and only when the true mean exceeds the float64 range."""
    h = half_difference(a, b)
    m = float(np.max(np.abs(h)))
    if m == 0.0:
        return 0.0
    h /= m
    return m * (m * (4.0 * float(np.vdot(h, h)) / h.size))     # Python floats: inf, no error


def mean_absolute_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``mean(|a - b|)`` for finite a and b of one shape, without overflow: twice the
    mean of ``|a/2 - b/2|``, which is at most the largest float."""
    return 2.0 * scaled_mean(np.abs(half_difference(a, b)))


#: how many values a row of the wide view in ``sum_rows`` holds
_WIDE_ROW = 1024


def sum_rows(a: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``np.add.reduce(a, axis=0, out=out)`` of a 2-D array ``(m, C)``, faster for few
    channels. NumPy adds such an array one row of C values at a time, and for
    C = 32 the per-row overhead costs more than the additions; a C-contiguous ``a``
    is instead viewed as rows of ``k * C`` values (k rows side by side), reduced,
    and the k partial sums added up. Those are k separate accumulators too, so
    float32 rounds less."""
    m, c = a.shape
    k = min(m, _WIDE_ROW // c)
    if k < 2 or not a.flags.c_contiguous:
        return np.add.reduce(a, axis=0, out=out)
    full = m - m % k
    partial = np.add.reduce(a[:full].reshape(-1, k * c), axis=0).reshape(k, c)
    if full < m:
        partial[:m - full] += a[full:]
    return np.add.reduce(partial, axis=0, out=out)
