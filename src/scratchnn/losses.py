"""Losses. Each takes the model's raw output and the targets and returns the mean
loss; ``backward()`` then returns dL/d(output), same shape and dtype as the output.

The classification losses take logits and fuse the last activation into the
loss, which is both stable and cheap: for sigmoid + binary cross-entropy and
softmax + cross-entropy the gradient is ``(p - y) / n``.

``prepare_target`` is where targets are validated, once per ``fit`` or
``evaluate``; ``forward`` trusts what it returns.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from . import functional as F
from ._validation import as_float_array, check_number


class Loss:
    """Base class. ``classification`` tells the model whether outputs are class scores."""

    classification = False

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def _saved(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        return self._cache

    def get_config(self) -> dict:
        return {}

    def prepare_target(self, y, n_outputs: int, dtype: np.dtype, argument: str = "y") -> np.ndarray:
        """Check ``y`` against an output of ``n_outputs`` columns; return it as
        ``forward`` expects it: float ``(N, n_outputs)`` for regression losses."""
        y = _as_numeric(y, argument)
        if y.ndim == 1 and n_outputs == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{argument} must have shape (n_samples, {n_outputs})"
                             f"{' or (n_samples,)' if n_outputs == 1 else ''} to match the "
                             f"model's {n_outputs} output(s), got shape {y.shape}")
        return as_float_array(y, argument, dtype, min_ndim=1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _as_numeric(y, argument: str) -> np.ndarray:
    if y is None:
        raise ValueError(f"{argument} is required")
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{argument} must be numeric, got an array of dtype {y.dtype}")
    if y.size == 0:
        raise ValueError(f"{argument} is empty: expected at least one sample")
    return y


def _mean(values: np.ndarray) -> float:
    """The mean of all elements, accumulated in float64 (``np.add.reduce`` skips
    the Python-level wrappers of ``np.mean``, which cost more than the sum here)."""
    return float(np.add.reduce(values.ravel(), dtype=np.float64)) / values.size


# ---------------------------------------------------------------------- regression
class MSE(Loss):
    """Mean squared error over all elements: ``L = mean((o - t)^2)``;
    ``dL/do = 2 (o - t) / size``. Shapes: o, t ``(N, k)``."""

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        diff = output - target
        self._cache = diff
        return float(np.vdot(diff, diff)) / diff.size

    def backward(self) -> np.ndarray:
        diff = self._saved()
        return diff * diff.dtype.type(2.0 / diff.size)


class MAE(Loss):
    """Mean absolute error over all elements: ``L = mean(|o - t|)``;
    ``dL/do = sign(o - t) / size`` (0 where o = t)."""

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        diff = output - target
        self._cache = diff
        return _mean(np.abs(diff))

    def backward(self) -> np.ndarray:
        diff = self._saved()
        return np.sign(diff) * diff.dtype.type(1.0 / diff.size)


class Huber(Loss):
    """Huber loss over all elements, with ``r = o - t``::

        l(r) = r^2 / 2                     if |r| <= delta
               delta (|r| - delta / 2)     otherwise
        L = mean(l(r)),   dL/do = clip(r, -delta, delta) / size

    Args:
        delta: where the loss turns from quadratic to linear (default 1.0).
    """

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = check_number("delta", delta, 0.0, low_open=True)

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        r = output - target
        self._cache = r
        a = np.abs(r)
        small = a <= self.delta
        per_element = np.where(small, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        return _mean(per_element)

    def backward(self) -> np.ndarray:
        r = self._saved()
        return np.clip(r, -self.delta, self.delta) * r.dtype.type(1.0 / r.size)

    def get_config(self) -> dict:
        return {"delta": self.delta}


# ------------------------------------------------------------------ classification
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits z, with targets t in [0, 1], over all elements::

        l = -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] = softplus(z) - t z
        L = mean(l),    dL/dz = (sigmoid(z) - t) / size

    ``softplus(z) = max(z, 0) + log1p(exp(-|z|))`` never overflows, so logits of
    +-1000 give finite losses and gradients. Shapes: z, t ``(N, k)``; t may be
    ``(N,)`` when k = 1. Targets may be probabilities (label smoothing).
    """

    classification = True

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        e = F.exp_minus_abs(output)
        self._cache = (output, target, e)
        # softplus(z) - t z, written so that a confident right answer keeps its
        # small loss (softplus(20) - 20 rounds to 0 in float32; log1p(exp(-20)) does not).
        per_element = np.maximum(output, 0) - target * output + np.log1p(e)
        return _mean(per_element)

    def backward(self) -> np.ndarray:
        output, target, e = self._saved()
        grad = F.sigmoid_from_exp(output, e)
        grad -= target
        grad *= output.dtype.type(1.0 / output.size)
        return grad

    def prepare_target(self, y, n_outputs: int, dtype: np.dtype, argument: str = "y") -> np.ndarray:
        t = super().prepare_target(y, n_outputs, dtype, argument)
        if np.any((t < 0) | (t > 1)):
            raise ValueError(f"{argument} must hold labels 0 and 1 (or probabilities in [0, 1]) "
                             f"for binary cross-entropy, got values in [{t.min()}, {t.max()}]")
        return t

    @staticmethod
    def probabilities(output: np.ndarray) -> np.ndarray:
        return F.sigmoid(output)

    @staticmethod
    def predicted_labels(output: np.ndarray) -> np.ndarray:
        labels = (output > 0).astype(np.int64)
        return labels[:, 0] if labels.shape[1] == 1 else labels

    @staticmethod
    def true_labels(target: np.ndarray) -> np.ndarray:
        labels = (target > 0.5).astype(np.int64)
        return labels[:, 0] if labels.shape[1] == 1 else labels


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits z ``(N, k)``, averaged over samples::

        log p = z - logsumexp(z)                   (row-wise, max subtracted)
        L = -mean_n sum_k t[n,k] log p[n,k]
        dL/dz = (p * sum_k t[n,k] - t) / N         = (p - t) / N for rows summing to 1

    Targets are either integer class labels ``(N,)`` in ``[0, k)`` (``t`` is then
    their one-hot encoding) or ``(N, k)`` one-hot rows or probabilities.
    """

    classification = True

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        n, k = output.shape
        # Element [i, j] of these C-ordered (n, k) arrays is element i*k + j of
        # their ravel(): indexing that with one vector is cheaper than [rows, cols].
        row_starts = np.arange(0, n * k, k)
        # The row maximum, picked at its argmax: for rows of a few logits this is
        # several times faster than a max-reduction along the row.
        row_max = output.ravel()[row_starts + output.argmax(axis=1)]
        shifted = F._minus_max(output, row_max[:, None])
        exp = np.exp(shifted)
        sum_exp = np.add.reduce(exp, axis=1, keepdims=True)
        p = np.divide(exp, sum_exp, out=exp)
        log_sum = np.log(sum_exp)
        if target.ndim == 1:
            # -log p[i, y_i] = log(sum exp) - shifted[i, y_i]
            picked = row_starts + target
            per_sample = log_sum.ravel()
            per_sample -= shifted.ravel()[picked]
            loss = float(np.add.reduce(per_sample, dtype=np.float64)) / n
        else:
            picked = None
            log_p = shifted - log_sum
            loss = -float(np.add.reduce(target * log_p, axis=None, dtype=np.float64)) / n
        self._cache = (p, target, picked)
        return loss

    def backward(self) -> np.ndarray:
        p, target, picked = self._saved()
        grad = p.copy()
        if target.ndim == 1:
            grad.ravel()[picked] -= 1          # grad[i, y_i] -= 1
        else:
            grad *= np.add.reduce(target, axis=1, keepdims=True)
            grad -= target
        grad *= grad.dtype.type(1.0 / len(p))
        return grad

    def prepare_target(self, y, n_outputs: int, dtype: np.dtype, argument: str = "y") -> np.ndarray:
        y = _as_numeric(y, argument)
        if y.ndim == 1:
            if y.dtype.kind == "f":
                if not np.all(np.isfinite(y)):
                    raise ValueError(f"{argument} contains NaN or infinity")
                if np.any(y != np.round(y)):
                    raise ValueError(f"{argument} must hold integer class labels in [0, {n_outputs}), "
                                     "got non-integer values")
            labels = y.astype(np.int64)
            bad = (labels < 0) | (labels >= n_outputs)
            if np.any(bad):
                raise ValueError(f"{argument} must hold class labels in [0, {n_outputs}) for a model "
                                 f"with {n_outputs} outputs, got {y[bad][0].item()!r}")
            return labels
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{argument} must be integer labels (n_samples,) or one-hot/probability "
                             f"rows (n_samples, {n_outputs}), got shape {y.shape}")
        t = as_float_array(y, argument, dtype, min_ndim=1)
        if np.any(t < 0):
            raise ValueError(f"{argument} probabilities must be >= 0")
        return t

    @staticmethod
    def probabilities(output: np.ndarray) -> np.ndarray:
        return F.softmax(output, axis=1)

    @staticmethod
    def predicted_labels(output: np.ndarray) -> np.ndarray:
        return np.argmax(output, axis=1)

    @staticmethod
    def true_labels(target: np.ndarray) -> np.ndarray:
        return target if target.ndim == 1 else np.argmax(target, axis=1)


LOSSES: dict[str, type[Loss]] = {
    "mse": MSE, "mean_squared_error": MSE,
    "mae": MAE, "mean_absolute_error": MAE,
    "huber": Huber,
    "binary_cross_entropy": BinaryCrossEntropy, "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "cross_entropy": CrossEntropy, "categorical_crossentropy": CrossEntropy,
    "sparse_categorical_crossentropy": CrossEntropy,
}


def get_loss(loss: Union[str, Loss, None], argument: str = "loss") -> Optional[Loss]:
    """Return a Loss instance for a name in ``LOSSES`` or a Loss (returned as is)."""
    if loss is None or isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]()
    raise ValueError(f"{argument} must be a Loss or one of {sorted(LOSSES)}, got {loss!r}")
