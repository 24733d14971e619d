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

from typing import Callable, Iterable, Optional

import numpy as np


def _same_shape(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both as arrays, refusing shapes that differ: NumPy would broadcast
    ``(N,)`` against ``(N, 1)`` into an ``(N, N)`` comparison without a word."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    return y_true, y_pred


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of labels predicted exactly, over every position:
    ``mean(y_pred == y_true)``. Shapes: ``(N, ...)``, the same for both."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    return float(np.count_nonzero(y_true == y_pred)) / y_true.size


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error over all elements. Shapes: ``(N, ..., k)``, the same for both."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    diff = np.asarray(y_pred, dtype=np.float64) - y_true
    return float(np.mean(diff * diff))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over all elements. Shapes: ``(N, ..., k)``, the same for both."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    return float(np.mean(np.abs(np.asarray(y_pred, dtype=np.float64) - y_true)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged over output
    columns (scikit-learn's ``r2_score``; a constant column scores 1 if predicted
    exactly, else 0).

    Shapes: ``(N, ..., k)``, the same for both. Each sample is flattened to one row
    of ``... * k`` columns, so every (position, output) pair is a column of its own,
    with its mean taken over the N samples.
    """
    y_true, y_pred = _same_shape(y_true, y_pred)
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    scores = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                      np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


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
