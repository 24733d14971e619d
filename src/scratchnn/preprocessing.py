"""Preparing data for a model: scaling, label encoding, one-hot targets, train/test splits.

Learned state ends in ``_`` (``mean_``, ``classes_``), as in scikit-learn. Fit on the training
data only, then apply the same transform to validation, test and new data.
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Optional

import numpy as np

from ._validation import (as_class_labels, as_float_array, as_real_array, check_number,
                          check_positive_int, check_same_length, describe, first_non_finite,
                          is_finite_number, make_rng)

_VARIANCE_CHUNK = 8192   # rows per block when summing squared deviations
_BELOW_HALF = float(np.nextafter(0.5, 0.0))


class StandardScaler:
    """Standardize each feature to zero mean and unit variance.

    ``fit(X)`` learns, per column ``j`` of the training data ``X`` (n_samples, n_features)::

        mean_[j]  = mean(X[:, j])
        scale_[j] = sqrt(mean((X[:, j] - mean_[j])^2))   (population std; 1 for a constant column)

    and ``transform(X) = (X - mean_) / scale_``, ``inverse_transform(Z) = Z * scale_ + mean_``.
    Statistics are computed in float64; ``transform`` returns float32 for float32 input and
    float64 otherwise.

    A constant column is one whose values are all exactly equal; its mean is that value and
    its scale 1, so it transforms to exact zeros. scikit-learn also keeps scale 1 there, and
    treats a column whose variance is within rounding of 0 as constant too; here such a
    column is scaled by its tiny true spread (down to a std below the smallest float,
    5e-324, which leaves nothing to divide by and is left unscaled).

    Values anywhere in the float range are handled. Data beyond 1e100, and columns whose
    spread is below 1e-100, are divided column by column by a power of two near their
    largest magnitude before summing (exact: it only moves the binary point), so the
    two-pass variance cannot overflow nor lose its squares to underflow, and ``scale_`` is
    finite and right even for values near 1.8e308. ``transform`` and ``inverse_transform``
    recompute from halves any entry whose direct formula overflows (``x - mean_`` of
    -1e308 and 1e308), and refuse, naming the sample, an entry whose true result is beyond
    the output's float range (new data 1e300 from a column of spread 1e-10).
    """

    def __init__(self) -> None:
        self.mean_: Optional[np.ndarray] = None
        self.scale_: Optional[np.ndarray] = None
        self.n_features_in_: Optional[int] = None

    def fit(self, X) -> "StandardScaler":
        """Learn ``mean_`` and ``scale_`` (each (n_features,) float64) from ``X`` (n, n_features)."""
        X = _as_features(X, "X")
        if max(float(X.max()), -float(X.min())) <= 1e100:
            # Ordinary magnitudes: no sum or square can overflow in float64. Only a
            # column of tiny spread may have squared its deviations to 0; redo those.
            mean, scale, constant = _moments(X, None)
            tiny = ~constant & (scale < 1e-100)
            if tiny.any():
                mean[tiny], scale[tiny], _ = _moments(X[:, tiny], _exponents(X[:, tiny]))
        else:
            mean, scale, constant = _moments(X, _exponents(X))
        mean[constant] = X[0, constant]
        # A spread below the smallest float (values 5e-324 apart) has no std to divide
        # by: left unscaled like a constant column.
        scale[constant | (scale == 0)] = 1.0
        self.mean_, self.scale_, self.n_features_in_ = mean, scale, X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - mean_) / scale_``, shape of ``X`` (n, n_features)."""
        return self._apply(self._check(X), inverse=False)

    def fit_transform(self, X) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """``X * scale_ + mean_``: back to the original units."""
        return self._apply(self._check(X), inverse=True)

    def _apply(self, X: np.ndarray, inverse: bool) -> np.ndarray:
        """The transform (or its inverse) of a checked X, in X's dtype. Where the
        direct formula overflows, the entry is recomputed in float64 from halves
        (``(x/2 - mean/2) / scale * 2``, ``(x * scale/2 + mean/2) * 2``); an entry whose
        true result is beyond X's float range is refused, naming its sample."""
        dtype, mean, scale = X.dtype, self.mean_, self.scale_
        info = np.finfo(dtype)
        # Statistics learned from float64 data may not fit a float32 X (a mean of
        # 1e300, a scale of 1e-50 that would become 0): then compute in float64.
        fits = dtype == np.float64 or (np.abs(mean).max() <= info.max and scale.max() <= info.max
                                       and scale.min() >= info.tiny)
        work = X if fits else X.astype(np.float64)
        m, s = mean.astype(work.dtype), scale.astype(work.dtype)
        with np.errstate(over="ignore"):      # an overflow shows as a non-finite entry
            out = work * s + m if inverse else (work - m) / s
        index = first_non_finite(out)
        if index is not None:
            broken = ~np.isfinite(out)
            column = np.nonzero(broken)[1]
            x = work[broken].astype(np.float64)
            half_mean, col_scale = mean[column] * 0.5, scale[column]
            with np.errstate(over="ignore"):  # still beyond the range: refused below
                redo = (x * (col_scale * 0.5) + half_mean) if inverse else \
                    (x * 0.5 - half_mean) / col_scale
                out[broken] = redo * 2.0
        cast = out.dtype != dtype
        if cast:
            with np.errstate(over="ignore"):
                out = out.astype(dtype)
        if index is not None or cast:         # else the scan above still holds
            index = first_non_finite(out)
        if index is not None:
            row, col = np.unravel_index(index, out.shape)
            formula = "X * scale_ + mean_" if inverse else "(X - mean_) / scale_"
            raise ValueError(f"X[{row}, {col}] = {str(X[row, col])} gives {formula} beyond the "
                             f"{dtype.name} range (mean_ {mean[col]:.6g}, scale_ {scale[col]:.6g} "
                             f"for that column); values must stay within about "
                             f"{float(info.max):.3g}")
        return out

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
            if key not in state:
                raise ValueError(f"state lacks the key {key!r}")
            try:
                value = as_float_array(state[key], f"state[{key!r}]", np.float64, min_ndim=1)
            except TypeError as error:       # strings, None, nested lists: not numbers
                raise ValueError(f"state[{key!r}] must be a list of numbers: {error}") from None
            if value.ndim != 1:
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


def _exponents(X: np.ndarray) -> np.ndarray:
    """Per column, the power of two with ``|X[:, j]| < 2**(e[j] - 1)`` (``np.frexp``)."""
    peak = np.maximum(X.max(axis=0), -X.min(axis=0)).astype(np.float64)
    return np.frexp(peak)[1] + 1


def _moments(X: np.ndarray, exponent: Optional[np.ndarray]):
    """``(mean, std, constant)`` of each column (two passes, block by block, in
    float64). With ``exponent``, each column is first divided by ``2**exponent``
    (exact: it only moves the binary point), which puts every value in (-1/2, 1/2)
    so that no sum or square overflows and values near 1e-300 keep their digits;
    the results are scaled back, exactly again."""
    n, width = X.shape
    if exponent is None:
        mean = X.mean(axis=0, dtype=np.float64)
    else:
        totals = np.zeros(width, dtype=np.float64)
        for start in range(0, n, _VARIANCE_CHUNK):        # bounded memory for a large X
            totals += _scaled(X[start:start + _VARIANCE_CHUNK], exponent).sum(axis=0)
        # The true mean lies in (-1/2, 1/2) here; the clip only undoes a last-bit
        # rounding up to 1/2, whose ldexp back could overflow (2**1024).
        mean = np.clip(totals / n, -_BELOW_HALF, _BELOW_HALF)
    squares = np.zeros(width, dtype=np.float64)
    # A constant column (every value equal) is centered exactly and left unscaled by
    # fit; its computed std could be a rounding residue like 1e-17 that would blow up noise.
    constant = np.ones(width, dtype=bool)
    for start in range(0, n, _VARIANCE_CHUNK):
        block = X[start:start + _VARIANCE_CHUNK]
        deviation = _scaled(block, exponent)
        deviation -= mean
        squares += np.einsum("ij,ij->j", deviation, deviation)
        constant &= (block == X[0]).all(axis=0)
    std = np.sqrt(squares / n)
    if exponent is not None:     # a std is at most the largest |value|, below 1/2 here
        std = np.ldexp(np.minimum(std, _BELOW_HALF), exponent)
        mean = np.ldexp(mean, exponent)
    return mean, std, constant


def _scaled(block: np.ndarray, exponent: Optional[np.ndarray]) -> np.ndarray:
    """``block / 2**exponent`` (per column) as a new float64 array; ``exponent=None``
    leaves the values as they are."""
    block = block.astype(np.float64)
    return block if exponent is None else np.ldexp(block, -exponent, out=block)


def _as_features(X, argument: str) -> np.ndarray:
    """``X`` as a finite 2-D array, float32 kept as float32 and anything else as float64."""
    dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
    X = as_float_array(X, argument, dtype)
    if X.ndim != 2:
        raise ValueError(f"{argument} must be a 2-D array (n_samples, n_features), got shape "
                         f"{X.shape}; flatten images first with X.reshape(len(X), -1)")
    return X


class LabelEncoder:
    """Map labels of one kind (all strings, or all numbers) to int64 codes ``0..n_classes-1``.

    ``classes_`` is the sorted array of distinct labels seen by ``fit``; the code of a label is
    its index there, so ``inverse_transform(transform(y)) == y``.

    Labels mixing strings and numbers (``[1, "a"]``, which NumPy would silently turn into
    ``["1", "a"]``) are refused with a ``TypeError``, as scikit-learn's encoders do; so are
    None, NaN and infinity (missing labels: drop or fill them first), complex numbers and
    other objects such as lists or dicts. Bools count as numbers (``True == 1``).
    """

    def __init__(self) -> None:
        self.classes_: Optional[np.ndarray] = None

    def fit(self, y, _argument: str = "y") -> "LabelEncoder":
        """Learn ``classes_`` from the labels ``y`` (n_samples,)."""
        y = _as_labels(y, _argument)
        if y.size == 0:
            raise ValueError(f"{_argument} is empty: expected at least one label")
        self.classes_ = np.unique(y)   # one kind of label (see _as_labels): they compare
        return self

    def transform(self, y) -> np.ndarray:
        """The int64 codes (n_samples,) of the labels ``y``; every label must be in ``classes_``."""
        if self.classes_ is None:
            raise RuntimeError("this LabelEncoder is not fitted yet; call fit(y_train) first")
        y = _as_labels(y, "y")
        if _kind(y) == _kind(self.classes_):
            codes = np.searchsorted(self.classes_, y)
            np.minimum(codes, len(self.classes_) - 1, out=codes)
            known = self.classes_[codes] == y
        else:   # strings against numbers: nothing matches (and they do not compare)
            codes, known = np.zeros(y.shape, dtype=np.int64), np.zeros(y.shape, dtype=bool)
        if not known.all():
            unknown = y[~known]
            hint = ""
            if _kind(y) != _kind(self.classes_):
                hint = (f" (y holds {y.dtype} values but the encoder was fitted on "
                        f"{self.classes_.dtype} labels)")
            raise ValueError(f"y contains label {describe(unknown[:1].tolist()[0])} not seen in fit "
                             f"({unknown.size} unknown in all){hint}; known classes: "
                             f"{_preview(self.classes_)}")
        return codes.astype(np.int64)

    def fit_transform(self, y) -> np.ndarray:
        """``fit(y)`` then ``transform(y)``."""
        return self.fit(y).transform(y)

    def inverse_transform(self, codes) -> np.ndarray:
        """The labels (n_samples,) of int codes in ``0..n_classes-1``."""
        if self.classes_ is None:
            raise RuntimeError("this LabelEncoder is not fitted yet; call fit(y_train) first")
        codes = _as_codes(codes, "codes", len(self.classes_), "class codes")
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
        encoder = cls().fit(classes, "state['classes']")
        if len(encoder.classes_) != len(classes):
            raise ValueError("state['classes'] has repeated labels")
        return encoder

    def __repr__(self) -> str:
        fitted = f"classes_={_preview(self.classes_)}" if self.classes_ is not None else "not fitted"
        return f"LabelEncoder({fitted})"


def _asarray(data, argument: str, expected: str) -> np.ndarray:
    """``np.asarray(data)``, or an error naming ``argument`` for None and for a ragged
    nested list (NumPy's "inhomogeneous shape")."""
    if data is None:
        raise ValueError(f"{argument} is required, got None")
    try:
        return np.asarray(data)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be {expected}, got a ragged nested sequence") from None


def _as_labels(y, argument: str) -> np.ndarray:
    """``y`` as a 1-D array of labels of one kind: strings (a str array), or numbers
    (a bool, int or float array; an object array for ints beyond int64, Fractions...)."""
    array = _asarray(y, argument, "a 1-D array of labels")
    if array.dtype.kind == "O" or (array.dtype.kind in "US" and not isinstance(y, np.ndarray)):
        # A list [1, "a"] arrives as the strings ["1", "a"]; look at what it held.
        array = _one_kind(np.asarray(y, dtype=object) if array.dtype.kind != "O" else array,
                          argument)
    if array.ndim != 1:
        raise ValueError(f"{argument} must be a 1-D array of labels, got shape {array.shape}"
                         + ("; use y.ravel()" if array.ndim == 2 and array.shape[1] == 1 else ""))
    if array.dtype.kind not in "biufUSO":
        raise TypeError(f"{argument} must hold strings or numbers, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{argument} contains NaN or infinity; labels must be finite")
    return array


def _one_kind(array: np.ndarray, argument: str) -> np.ndarray:
    """An object array of labels as a str array or a number array, or an error naming
    the first label that is neither, or the first pair of a string and a number."""
    items = array.ravel().tolist()
    first = {}
    for item in items:
        if isinstance(item, (str, np.str_)):
            kind = "string"
        elif isinstance(item, (bytes, np.bytes_)):
            kind = "bytes"
        elif isinstance(item, (bool, np.bool_, numbers.Real, decimal.Decimal)):
            if not isinstance(item, (bool, np.bool_)) and not is_finite_number(item):
                raise ValueError(f"{argument} contains NaN or infinity ({describe(item)}); "
                                 "labels must be finite")
            kind = "number"
        else:
            missing = " (a missing label)" if item is None or repr(item) == "<NA>" else ""
            raise TypeError(f"{argument} must hold strings or numbers, got {describe(item)} of "
                            f"type {type(item).__name__}{missing}")
        first.setdefault(kind, item)
    if len(first) > 1:
        shown = " and ".join(f"{describe(v)} ({k})" for k, v in first.items())
        raise TypeError(f"{argument} must hold labels of one kind, all strings or all numbers; "
                        f"got {shown}")
    if not items:
        return array.astype(np.float64)
    # str or bytes; or ints, floats, bools (object for 10**400)
    return np.array(items).reshape(array.shape)


def _as_codes(codes, argument: str, n_classes: Optional[int], what: str) -> np.ndarray:
    """Integer class indices, 1-D, in ``[0, n_classes)``; integral floats are accepted.
    Checked before any cast (see ``as_class_labels``)."""
    array = as_real_array(codes, argument, f"integer {what}")
    if array.ndim != 1:
        raise ValueError(f"{argument} must be a 1-D array of {what}, got shape {array.shape}")
    return as_class_labels(array, argument, n_classes, what)


def _kind(array: np.ndarray) -> str:
    """"text", "bytes" or "number" (an object array from ``_as_labels`` holds numbers)."""
    return {"U": "text", "S": "bytes"}.get(array.dtype.kind, "number")


def _preview(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(describe(v) for v in values[:limit].tolist())
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)} classes)"


def _describe(value) -> str:
    return f"{type(value).__name__} with type {value.get('type')!r}" if isinstance(value, dict) \
        else type(value).__name__


#: the most classes ``one_hot`` infers from the largest label
MAX_INFERRED_CLASSES = 65536


def one_hot(y, n_classes: Optional[int] = None, dtype=np.float32) -> np.ndarray:
    """One-hot rows: ``out[i, y[i]] = 1``, all else 0.

    Args:
        y: (n_samples,) integer class indices ``0..n_classes-1`` (integral floats such
            as ``2.0`` are accepted; bools, fractions, NaN and negative or too large
            indices are refused, naming the first one as it is in ``y``).
        n_classes: number of columns; ``None`` uses ``y.max() + 1`` (up to
            ``MAX_INFERRED_CLASSES``, 65,536; give more explicitly).
        dtype: of the result (float32 by default): a bool, integer or float dtype.

    Returns:
        (n_samples, n_classes) array of ``dtype``.
    """
    try:
        out_dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        out_dtype = None
    if dtype is None or out_dtype is None or out_dtype.kind not in "biuf":
        raise ValueError(f"dtype must be a bool, integer or float dtype, got {describe(dtype)}")
    if n_classes is not None:
        n_classes = check_positive_int(n_classes, "n_classes")
    labels = _as_codes(y, "y", n_classes, "class indices")
    if n_classes is None:
        if labels.size == 0:
            raise ValueError("y is empty; pass n_classes to one-hot encode an empty array")
        n_classes = int(labels.max()) + 1
        if n_classes > MAX_INFERRED_CLASSES:     # one stray id would take all the memory
            raise ValueError(f"y's largest label is {n_classes - 1}, so one_hot would infer "
                             f"{n_classes:,} classes; above {MAX_INFERRED_CLASSES:,} pass "
                             "n_classes= explicitly")
    try:
        out = np.zeros((len(labels), n_classes), dtype=out_dtype)
    except (MemoryError, ValueError):           # ValueError: "array is too big"
        raise ValueError(f"one_hot of {len(labels)} labels with n_classes={n_classes} needs "
                         f"{len(labels) * n_classes * out_dtype.itemsize} bytes, more than this "
                         "machine can allocate") from None
    out[np.arange(len(labels)), labels] = 1
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
    X, y = _as_samples(X, "X"), _as_samples(y, "y")
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
        test = _stratified_test_mask(_as_labels(y, "y"), n_test, rng)   # one kind of label
        train_index = rng.permutation(np.flatnonzero(~test))
        test_index = rng.permutation(np.flatnonzero(test))
    else:
        order = rng.permutation(n)
        test_index, train_index = order[:n_test], order[n_test:]
    return X[train_index], X[test_index], y[train_index], y[test_index]


def _as_samples(data, argument: str) -> np.ndarray:
    """``data`` as an array of samples of any dtype (kept), or an error naming
    ``argument`` for None and ragged nested lists. A list mixing strings and other
    values stays an object array (NumPy would make ``[1, "a"]`` the strings ``["1", "a"]``)."""
    array = _asarray(data, argument, "an array of samples of one shape")
    if array.dtype.kind in "US" and not isinstance(data, np.ndarray):
        objects = np.asarray(data, dtype=object)
        if objects.shape == array.shape and not all(
                isinstance(item, (str, bytes)) for item in objects.ravel().tolist()):
            return objects
    return array


def _test_count(test_size, n: int) -> int:
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, (bool, np.bool_)):
        if not 1 <= test_size <= n - 1:
            raise ValueError(f"test_size={describe(test_size)} as a count must be in 1..{n - 1} "
                             f"(n_samples={n})")
        return int(test_size)
    fraction = check_number("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    n_test = math.ceil(fraction * n)
    if n_test > n - 1:
        raise ValueError(f"test_size={describe(test_size)} of n_samples={n} leaves no training "
                         "sample")
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
