"""Metrics, computed on whole arrays (one epoch's outputs or a validation set).

Classification metrics take integer labels (``loss.true_labels`` and
``loss.predicted_labels``); regression metrics take the float targets and the
model's outputs. Both arrays have the same shape: ``(N, k)`` in the common case,
``(N, ..., k)`` for a model with one prediction per time step (or other middle
axes), or ``(N, ...)`` for labels.

The model, ``io`` and the CLI pick metrics by name through ``available``,
``default_names`` and ``check_names``. They look only at ``loss.classification``,
so this module does not import ``losses``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import numpy as np

from . import functional as F
from ._validation import as_float_array


def _same_shape(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both as non-empty arrays of one shape: NumPy would broadcast ``(N,)``
    against ``(N, 1)`` into an ``(N, N)`` comparison without a word."""
    arrays = []
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y is None:
            raise ValueError(f"{name} is required, got None")
        try:
            arrays.append(np.asarray(y))
        except (TypeError, ValueError):     # NumPy's "inhomogeneous shape" for a ragged list
            raise ValueError(f"{name} must be a rectangular array (every sample of one "
                             "shape)") from None
    y_true, y_pred = arrays
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError(f"y_true and y_pred are empty (shape {y_true.shape}): a metric needs "
                         "at least one value")
    return y_true, y_pred


def _regression_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both as finite float64 arrays of one shape, at least 1-D. NaN and infinity
    are refused: the model reports them itself, and a metric of them means nothing."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    shape = y_true.shape or (1,)
    return (as_float_array(y_true.reshape(shape), "y_true", np.float64, min_ndim=1),
            as_float_array(y_pred.reshape(shape), "y_pred", np.float64, min_ndim=1))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of labels predicted exactly, over every position:
    ``mean(y_pred == y_true)``. Shapes: ``(N, ...)``, the same for both."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    try:
        equal = y_true == y_pred
    except (ArithmeticError, TypeError) as error:   # objects such as Decimal("sNaN") refuse ==
        raise TypeError(f"y_true and y_pred must hold labels that compare with ==: "
                        f"{type(error).__name__}") from None
    return float(np.count_nonzero(equal)) / y_true.size


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error over all elements. Shapes: ``(N, ..., k)``, the same for both.
    Computed in float64; ``inf`` only where the true value exceeds the float64 range
    (errors near 1e154 are squared without overflow: ``functional.mean_squared_difference``)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    with np.errstate(over="ignore"):      # an overflow shows as a non-finite sum
        diff = y_pred - y_true
        value = float(np.vdot(diff, diff)) / diff.size
    return value if math.isfinite(value) else F.mean_squared_difference(y_pred, y_true)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over all elements. Shapes: ``(N, ..., k)``, the same for both.
    Computed in float64, finite for every finite input (a mean of values up to
    2 * 1.8e308 can still be beyond the range: then ``inf``)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    with np.errstate(over="ignore"):      # an overflow shows as a non-finite sum
        value = float(np.add.reduce(np.abs(y_pred - y_true), axis=None)) / y_true.size
    return value if math.isfinite(value) else F.mean_absolute_difference(y_pred, y_true)


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged over output
    columns: scikit-learn's ``r2_score`` with ``multioutput="uniform_average"``.

    Shapes: ``(N, ..., k)``, the same for both. Each sample is flattened to one row
    of ``... * k`` columns, so every (position, output) pair is a column of its own,
    with its mean taken over the N samples.

    A column whose true values are all equal has ``SS_tot = 0`` and no finite
    ratio; like scikit-learn (``force_finite=True``) it scores 1.0 if predicted
    exactly and 0.0 otherwise. That includes every column of a single sample,
    where scikit-learn returns NaN with a warning instead. "All equal" is tested
    exactly, where scikit-learn tests ``SS_tot == 0`` after rounding (its
    ``r2_score([0.1] * 3, [0.1, 0.1, 0.2])`` is -1.7e31; here it is 0.0).

    The ratio is scale-invariant, and computed so: each column is divided by a
    power of two near its largest value (exactly, changing no rounding), SS_res
    with the scale of ``y_true`` and ``y_pred`` together and SS_tot with that of
    ``y_true``, so no square overflows and the result is finite for every finite
    input (down to ``-inf`` only where ``SS_res / SS_tot`` itself exceeds 1.8e308).
    """
    y_true, y_pred = _regression_pair(y_true, y_pred)
    t = y_true.reshape(len(y_true), -1)
    p = y_pred.reshape(len(y_pred), -1)
    # The direct sums first; a column whose sums overflowed, or whose SS_tot is so
    # small that its squares may have lost digits to underflow, is redone scaled.
    # Centred on the first sample, a constant column has deviations of exactly 0.
    with np.errstate(over="ignore", invalid="ignore"):
        deviation = t - t[0]
        deviation -= deviation.mean(axis=0)
        ss_tot = np.einsum("ij,ij->j", deviation, deviation)
        residual = t - p
        ss_res = np.einsum("ij,ij->j", residual, residual)
    constant = np.zeros(t.shape[1], dtype=bool)
    maybe = ~(ss_tot > 0)           # 0 (constant, or squares underflowed) or NaN (overflow)
    if maybe.any():
        constant[maybe] = (t[:, maybe] == t[0, maybe]).all(axis=0)
    direct = np.isfinite(ss_tot) & np.isfinite(ss_res) & (constant | (ss_tot >= 1e-250))
    ratio = ss_res / np.where(direct & ~constant, ss_tot, 1.0)
    if not direct.all():
        redo = ~direct
        ss_res[redo], ratio[redo] = _scaled_ratio(t[:, redo], p[:, redo])
    scores = np.where(constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - ratio)
    if not np.isfinite(scores).all():
        return -math.inf
    return F.scaled_mean(scores)


def _scaled_ratio(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(SS_res, SS_res / SS_tot)`` per column, without overflow or underflow: with
    ``2**e`` the column's bound (``np.frexp``; dividing by it is exact), SS_tot is
    summed from ``t / 2**e_tot`` and SS_res from ``(t - p) / 2**e_res``, and the ratio
    is their quotient times ``4**(e_res - e_tot)``. Only SS_res's zero-ness is used
    from the first (constant columns); a ratio beyond the float range is inf."""
    _, e_tot = np.frexp(np.abs(t).max(axis=0))             # |t| < 2**e_tot, column by column
    _, e_res = np.frexp(np.maximum(np.abs(t), np.abs(p)).max(axis=0))
    scaled = np.ldexp(t, -e_tot)                           # in (-1, 1)
    deviation = scaled - scaled.mean(axis=0)
    ss_tot = np.einsum("ij,ij->j", deviation, deviation)
    residual = np.ldexp(t, -e_res) - np.ldexp(p, -e_res)   # in (-2, 2)
    ss_res = np.einsum("ij,ij->j", residual, residual)
    with np.errstate(over="ignore"):      # a ratio beyond the float range: inf, so r2 = -inf
        ratio = np.ldexp(ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 2 * (e_res - e_tot))
    return ss_res, ratio


CLASSIFICATION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
}
REGRESSION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": mse, "mae": mae, "r2": r2,
}


def available(loss) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The metrics that make sense for ``loss``: ``CLASSIFICATION_METRICS`` when
    ``loss.classification`` is true, else ``REGRESSION_METRICS``."""
    return CLASSIFICATION_METRICS if loss.classification else REGRESSION_METRICS


def default_names(loss) -> list[str]:
    """The metrics reported when none are asked for: ``["accuracy"]`` for a
    classification loss, ``["mae", "r2"]`` otherwise."""
    return ["accuracy"] if loss.classification else ["mae", "r2"]


def check_names(names: Optional[Iterable[str]], loss) -> None:
    """Raise ``ValueError`` for a name in ``names`` that is not in
    ``available(loss)``; ``names=None`` (use the defaults) passes."""
    if names is None:
        return
    metrics = available(loss)
    for name in names:
        if name not in metrics:
            raise ValueError(f"metrics must be names from {sorted(metrics)} for "
                             f"{type(loss).__name__}, got {name!r}")
