"""Preparing data for a model: scaling, label encoding, one-hot targets, train/test splits.

Learned state ends in ``_`` (``mean_``, ``classes_``), as in scikit-learn. Fit on the training
data only, then apply the same transform to validation, test and new data.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from ._validation import as_float_array, check_positive_int, check_same_length
from ._validation import make_rng

_VARIANCE_CHUNK = 8192   # rows per block when summing squared deviations


class StandardScaler:
    """Standardize each feature to zero mean and unit variance.

    ``fit(X)`` learns, per column ``j`` of the training data ``X`` (n_samples, n_features)::

        mean_[j]  = mean(X[:, j])
        scale_[j] = sqrt(mean((X[:, j] - mean_[j])^2))   (population std; 1 for a constant column)

    and ``transform(X) = (X - mean_) / scale_``, ``inverse_transform(Z) = Z * scale_ + mean_``.
    Statistics are computed in float64; ``transform`` returns float32 for float32 input and
    float64 otherwise.
    """

    def __init__(self) -> None:
        self.mean_: Optional[np.ndarray] = None
        self.scale_: Optional[np.ndarray] = None
        self.n_features_in_: Optional[int] = None

    def fit(self, X) -> "StandardScaler":
        """Learn ``mean_`` and ``scale_`` (each (n_features,) float64) from ``X`` (n, n_features)."""
        X = _as_features(X, "X")
        mean = X.mean(axis=0, dtype=np.float64)
        squares = np.zeros(X.shape[1], dtype=np.float64)
        # A constant column (every value equal) is centered exactly and left unscaled; its
        # computed std could be a rounding residue like 1e-17 that would blow up noise.
        constant = np.ones(X.shape[1], dtype=bool)
        for start in range(0, len(X), _VARIANCE_CHUNK):   # bounded memory for a large X
            block = X[start:start + _VARIANCE_CHUNK]
            deviation = block.astype(np.float64) - mean
            squares += np.einsum("ij,ij->j", deviation, deviation)
            constant &= (block == X[0]).all(axis=0)
        scale = np.sqrt(squares / len(X))
        mean[constant] = X[0, constant]
        scale[constant] = 1.0
        self.mean_, self.scale_, self.n_features_in_ = mean, scale, X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - mean_) / scale_``, shape of ``X`` (n, n_features)."""
        X = self._check(X)
        return (X - self.mean_.astype(X.dtype)) / self.scale_.astype(X.dtype)

    def fit_transform(self, X) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """``X * scale_ + mean_``: back to the original units."""
        X = self._check(X)
        return X * self.scale_.astype(X.dtype) + self.mean_.astype(X.dtype)

    def _check(self, X) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("this StandardScaler is not fitted yet; call fit(X_train) first")
        X = _as_features(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this StandardScaler was fitted "
                             f"on {self.n_features_in_}")
        return X

    def to_dict(self) -> dict:
        """The fitted state as JSON-compatible values (to save beside a model)."""
        if self.mean_ is None:
            raise RuntimeError("this StandardScaler is not fitted yet; nothing to save")
        return {"type": "StandardScaler", "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> "StandardScaler":
        """A fitted scaler from ``to_dict()``'s output, checked field by field."""
        if not isinstance(state, dict) or state.get("type") != "StandardScaler":
            raise ValueError("state must be a dict from StandardScaler.to_dict() with "
                             f"type 'StandardScaler', got {_describe(state)}")
        arrays = {}
        for key in ("mean", "scale"):
            try:
                value = np.asarray(state[key], dtype=np.float64)
            except KeyError:
                raise ValueError(f"state lacks the key {key!r}") from None
            except (TypeError, ValueError):
                raise ValueError(f"state[{key!r}] must be a list of numbers") from None
            if value.ndim != 1 or value.size == 0 or not np.isfinite(value).all():
                raise ValueError(f"state[{key!r}] must be a non-empty list of finite numbers, "
                                 f"got shape {value.shape}")
            arrays[key] = value
        if arrays["mean"].shape != arrays["scale"].shape:
            raise ValueError(f"state['mean'] has {arrays['mean'].size} values but state['scale'] "
                             f"has {arrays['scale'].size}; they must match")
        if (arrays["scale"] <= 0).any():
            raise ValueError("state['scale'] values must be > 0")
        scaler = cls()
        scaler.mean_, scaler.scale_ = arrays["mean"], arrays["scale"]
        scaler.n_features_in_ = arrays["mean"].size
        return scaler

    def __repr__(self) -> str:
        fitted = f"n_features_in_={self.n_features_in_}" if self.mean_ is not None else "not fitted"
        return f"StandardScaler({fitted})"


def _as_features(X, argument: str) -> np.ndarray:
    """``X`` as a finite 2-D array, float32 kept as float32 and anything else as float64."""
    dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
    X = as_float_array(X, argument, dtype)
    if X.ndim != 2:
        raise ValueError(f"{argument} must be a 2-D array (n_samples, n_features), got shape "
                         f"{X.shape}; flatten images first with X.reshape(len(X), -1)")
    return X


class LabelEncoder:
    """Map labels of any type (strings, ints, floats) to int64 codes ``0..n_classes-1``.

    ``classes_`` is the sorted array of distinct labels seen by ``fit``; the code of a label is
    its index there, so ``inverse_transform(transform(y)) == y``.
    """

    def __init__(self) -> None:
        self.classes_: Optional[np.ndarray] = None

    def fit(self, y) -> "LabelEncoder":
        """Learn ``classes_`` from the labels ``y`` (n_samples,)."""
        y = _as_labels(y, "y")
        if y.size == 0:
            raise ValueError("y is empty: expected at least one label")
        try:
            self.classes_ = np.unique(y)
        except TypeError as error:   # an object array mixing types that do not compare
            raise TypeError(f"y's labels must be mutually comparable (all strings or all "
                            f"numbers): {error}") from None
        return self

    def transform(self, y) -> np.ndarray:
        """The int64 codes (n_samples,) of the labels ``y``; every label must be in ``classes_``."""
        if self.classes_ is None:
            raise RuntimeError("this LabelEncoder is not fitted yet; call fit(y_train) first")
        y = _as_labels(y, "y")
        codes = np.searchsorted(self.classes_, y)
        np.minimum(codes, len(self.classes_) - 1, out=codes)
        if _kind(y) == _kind(self.classes_):
            known = self.classes_[codes] == y
        else:   # strings against numbers: nothing matches
            known = np.zeros(y.shape, dtype=bool)
        if not known.all():
            unknown = y[~known]
            hint = ""
            if _kind(y) != _kind(self.classes_):
                hint = (f" (y holds {y.dtype} values but the encoder was fitted on "
                        f"{self.classes_.dtype} labels)")
            raise ValueError(f"y contains label {unknown[:1].tolist()[0]!r} not seen in fit ({unknown.size} "
                             f"unknown in all){hint}; known classes: {_preview(self.classes_)}")
        return codes.astype(np.int64)

    def fit_transform(self, y) -> np.ndarray:
        """``fit(y)`` then ``transform(y)``."""
        return self.fit(y).transform(y)

    def inverse_transform(self, codes) -> np.ndarray:
        """The labels (n_samples,) of int codes in ``0..n_classes-1``."""
        if self.classes_ is None:
            raise RuntimeError("this LabelEncoder is not fitted yet; call fit(y_train) first")
        codes = _as_codes(codes, "codes")
        bad = (codes < 0) | (codes >= len(self.classes_))
        if bad.any():
            raise ValueError(f"codes must be in 0..{len(self.classes_) - 1}, found "
                             f"{int(codes[bad][0])}")
        return self.classes_[codes]

    def to_dict(self) -> dict:
        """The classes as JSON-compatible values (to save beside a model)."""
        if self.classes_ is None:
            raise RuntimeError("this LabelEncoder is not fitted yet; nothing to save")
        return {"type": "LabelEncoder", "classes": self.classes_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> "LabelEncoder":
        """A fitted encoder from ``to_dict()``'s output."""
        if not isinstance(state, dict) or state.get("type") != "LabelEncoder":
            raise ValueError("state must be a dict from LabelEncoder.to_dict() with type "
                             f"'LabelEncoder', got {_describe(state)}")
        classes = state.get("classes")
        if not isinstance(classes, list) or not classes:
            raise ValueError("state['classes'] must be a non-empty list of labels")
        encoder = cls().fit(classes)
        if len(encoder.classes_) != len(classes):
            raise ValueError("state['classes'] has repeated labels")
        return encoder

    def __repr__(self) -> str:
        fitted = f"classes_={_preview(self.classes_)}" if self.classes_ is not None else "not fitted"
        return f"LabelEncoder({fitted})"


def _as_labels(y, argument: str) -> np.ndarray:
    if y is None:
        raise ValueError(f"{argument} is required, got None")
    y = np.asarray(y)
    if y.dtype.kind == "O":   # e.g. from pandas: let numpy infer str or a number type
        y = np.array(y.tolist())
    if y.ndim != 1:
        raise ValueError(f"{argument} must be a 1-D array of labels, got shape {y.shape}"
                         + ("; use y.ravel()" if y.ndim == 2 and y.shape[1] == 1 else ""))
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{argument} contains NaN or infinity; labels must be finite")
    if y.dtype.kind not in "biufUSO":
        raise TypeError(f"{argument} must hold strings or numbers, got dtype {y.dtype}")
    return y


def _as_codes(codes, argument: str) -> np.ndarray:
    """Integer class indices, 1-D; integral floats are accepted."""
    codes = np.asarray(codes)
    if codes.ndim != 1:
        raise ValueError(f"{argument} must be a 1-D array of class indices, got shape {codes.shape}")
    if codes.dtype.kind == "f":
        if not (np.isfinite(codes).all() and (codes == np.round(codes)).all()):
            raise ValueError(f"{argument} must hold integers, got non-integral floats")
        codes = codes.astype(np.int64)
    elif codes.dtype.kind not in "iu" and codes.size:
        raise TypeError(f"{argument} must hold integer class indices, got dtype {codes.dtype}")
    return codes.astype(np.int64, copy=False)


def _kind(array: np.ndarray) -> str:
    return "text" if array.dtype.kind in "US" else "object" if array.dtype.kind == "O" else "number"


def _preview(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit].tolist())
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)} classes)"


def _describe(value) -> str:
    return f"{type(value).__name__} with type {value.get('type')!r}" if isinstance(value, dict) \
        else type(value).__name__


def one_hot(y, n_classes: Optional[int] = None, dtype=np.float32) -> np.ndarray:
    """One-hot rows: ``out[i, y[i]] = 1``, all else 0.

    Args:
        y: (n_samples,) integer class indices ``0..n_classes-1``.
        n_classes: number of columns; ``None`` uses ``y.max() + 1``.
        dtype: of the result (float32 by default).

    Returns:
        (n_samples, n_classes) array of ``dtype``.
    """
    y = _as_codes(y, "y")
    if n_classes is None:
        if y.size == 0:
            raise ValueError("y is empty; pass n_classes to one-hot encode an empty array")
        n_classes = int(y.max()) + 1
    n_classes = check_positive_int(n_classes, "n_classes")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        raise ValueError(f"y must hold class indices in 0..{n_classes - 1} (n_classes={n_classes}), "
                         f"found {int(y[bad][0])}")
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def train_test_split(X, y, *, test_size=0.2, stratify: bool = False, seed=None):
    """Shuffle and split ``X`` and ``y`` into a training and a test part.

    Args:
        X: (n_samples, ...) array (features, images: any shape; its dtype is kept).
        y: (n_samples, ...) targets.
        test_size: a fraction in (0, 1), the test part being ``ceil(test_size * n_samples)``
            samples, or an int count in ``1..n_samples-1``.
        stratify: split each class of ``y`` (1-D labels) separately so that both parts keep the
            class proportions: class ``c`` with ``n_c`` samples gives about
            ``n_test * n_c / n_samples`` to the test part (largest remainders decide the
            rounding, the total is exactly ``n_test``), and every class with at least 2 samples
            gets at least one sample on each side when ``n_test`` and ``n_train`` allow it.
            A class with a single sample goes to the training part when possible.
        seed: None, a non-negative int, or a ``np.random.Generator``.

    Returns:
        ``X_train, X_test, y_train, y_test``, each part in shuffled order.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"X and y must be arrays of samples, got shapes {X.shape} and {y.shape}")
    check_same_length(X, y)
    n = len(X)
    if n < 2:
        raise ValueError(f"X has {n} sample(s); splitting needs at least 2")
    n_test = _test_count(test_size, n)
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"stratify must be True or False, got {stratify!r}")
    rng = make_rng(seed)
    if stratify:
        test = _stratified_test_mask(_as_labels(y, "y"), n_test, rng)
        train_index = rng.permutation(np.flatnonzero(~test))
        test_index = rng.permutation(np.flatnonzero(test))
    else:
        order = rng.permutation(n)
        test_index, train_index = order[:n_test], order[n_test:]
    return X[train_index], X[test_index], y[train_index], y[test_index]


def _test_count(test_size, n: int) -> int:
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise ValueError(f"test_size must be a fraction in (0, 1) or an int count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        if not 1 <= test_size <= n - 1:
            raise ValueError(f"test_size={test_size} as a count must be in 1..{n - 1} "
                             f"(n_samples={n})")
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size={test_size!r} as a fraction must be strictly between 0 and 1")
    n_test = math.ceil(float(test_size) * n)
    if n_test > n - 1:
        raise ValueError(f"test_size={test_size!r} of n_samples={n} leaves no training sample")
    return n_test


def _stratified_test_mask(y: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask (n,) choosing ``n_test`` samples, class by class (see train_test_split)."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    exact = n_test * counts / len(y)
    # largest-remainder rounding: floor everywhere, then one more for the largest remainders
    quota = np.floor(exact).astype(np.int64)
    extra = n_test - int(quota.sum())
    quota[np.argsort(quota - exact, kind="stable")[:extra]] += 1
    # each side gets at least one sample of every class that has two; singletons stay in train
    low = (counts >= 2).astype(np.int64)
    quota = _fill(np.clip(quota, low, counts - 1), exact, low, counts - 1, n_test)
    if quota.sum() != n_test:   # impossible with both guarantees (too many classes): relax them
        quota = _fill(quota, exact, np.zeros_like(counts), counts, n_test)

    # shuffle, then group by class keeping the shuffled order: the first quota[c] of class c
    order = rng.permutation(len(y))
    order = order[np.argsort(inverse[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(y)) - np.repeat(starts, counts)
    test = np.zeros(len(y), dtype=bool)
    test[order] = rank < np.repeat(quota, counts)
    return test


def _fill(quota: np.ndarray, exact: np.ndarray, low: np.ndarray, high: np.ndarray,
          total: int) -> np.ndarray:
    """Move ``quota`` one unit per class at a time towards summing to ``total`` within
    ``low <= quota <= high``, taking from (giving to) the classes furthest above (below) their
    exact share first. Stops early if the bounds do not allow ``total``."""
    quota = quota.copy()
    while (difference := total - int(quota.sum())) != 0:
        if difference > 0:
            room = np.flatnonzero(quota < high)
            chosen = room[np.argsort(quota[room] - exact[room], kind="stable")][:difference]
            quota[chosen] += 1
        else:
            room = np.flatnonzero(quota > low)
            chosen = room[np.argsort(exact[room] - quota[room], kind="stable")][:-difference]
            quota[chosen] -= 1
        if room.size == 0:
            break
    return quota
