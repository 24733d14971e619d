"""Checks at the public entry points; errors name the argument and what was expected."""

from __future__ import annotations

import math
import numbers

import numpy as np

#: the dtypes a model computes in
DTYPES = ("float32", "float64")


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, if it is one of ``DTYPES``."""
    if np.dtype(dtype).name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return np.dtype(dtype)


def as_float_array(X, argument: str, dtype: np.dtype, min_ndim: int = 2) -> np.ndarray:
    """``X`` as a finite array of ``dtype`` with at least one sample and ``min_ndim`` axes."""
    if X is None:
        raise ValueError(f"{argument} is required, got None")
    try:
        array = np.asarray(X)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{argument} must be a rectangular array of numbers: {error}") from None
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{argument} must be numeric, got an array of Python objects") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{argument} must be numeric, got an array of dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{argument} is empty (shape {array.shape}): expected at least one sample")
    if array.ndim < min_ndim:
        raise ValueError(f"{argument} must be a {min_ndim}-D array (n_samples, n_features), got shape "
                         f"{array.shape}; reshape a single feature with X.reshape(-1, 1)")
    with np.errstate(over="ignore", invalid="ignore"):
        array = array.astype(dtype, copy=False)
    # A float64 sum is NaN or infinite exactly when some value is (a float32 array
    # cannot overflow it), and it needs no (N, features) boolean array; only when it
    # is not finite do we look for the culprit (a float64 sum can overflow by itself).
    total = np.add.reduce(array, axis=None, dtype=np.float64)
    finite = None if math.isfinite(total) else np.isfinite(array)
    if finite is not None and not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise ValueError(f"{argument} contains NaN or infinity (first at sample {row}); "
                         f"values must be finite {np.dtype(dtype).name} numbers")
    return array


def check_positive_int(value, argument: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{argument} must be a positive integer{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return int(value)


def check_same_length(X: np.ndarray, y: np.ndarray, x_name: str = "X", y_name: str = "y") -> None:
    if len(X) != len(y):
        raise ValueError(f"{y_name} has {len(y)} samples but {x_name} has {len(X)}; "
                         "they must have the same length")


def make_rng(seed) -> np.random.Generator:
    """``seed``: None (fresh entropy), a non-negative int, or a ``np.random.Generator`` (used
    as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, "
                         f"got {seed!r}")
    return np.random.default_rng(seed)


def check_number(argument: str, value, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the interval from
    ``low`` to ``high`` (ends excluded when ``*_open``); else an error naming
    ``argument`` and the interval, such as ``lr must be a number in (0, inf), got 0``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open or low == -math.inf else "["
        right = ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{argument} must be a number in {left}{low:g}, {high:g}{right}, got {value!r}")
    return float(value)
