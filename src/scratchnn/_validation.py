"""Checks at the public entry points; errors name the argument and what was expected.

Every check here refuses bad input with a ``ValueError`` or ``TypeError`` of its
own, never with whatever NumPy or Python would raise (an ``OverflowError`` for
``float(10**400)``, NumPy's "inhomogeneous shape" for a ragged list), and never
warns: a value is compared before it is cast, so nothing overflows on the way.
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Optional

import numpy as np

#: the dtypes a model computes in
DTYPES = ("float32", "float64")

#: the largest count or size NumPy can index with
INT_MAX = int(np.iinfo(np.intp).max)


def describe(value) -> str:
    """``repr(value)`` for an error message, kept short: an int of 400 digits reads
    ``1e+400 (an int)`` (``repr`` of an int over 4300 digits raises), a long list is cut."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
        if abs(number) >= 10 ** 21:
            exponent = int(math.log10(abs(number)))
            mantissa = abs(number) / 10 ** exponent     # int / int: a float near 1, no overflow
            sign = "-" if number < 0 else ""
            return f"{sign}{mantissa:.6g}e+{exponent} (an int)"
    try:
        text = repr(value)
    except ValueError:      # a Fraction of huge ints: its repr hits the same digit limit
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 80 else text[:77] + "..."


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, if it is one of ``DTYPES``."""
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):        # "data type 'x' not understood"
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {describe(dtype)}")
    return resolved


# ------------------------------------------------------------------------ numbers
def is_real_number(value) -> bool:
    """A real number that is not a bool: int, float, Fraction, Decimal, NumPy scalars."""
    return (isinstance(value, (numbers.Real, decimal.Decimal))
            and not isinstance(value, (bool, np.bool_)))


def is_finite_number(value) -> bool:
    """Whether a real number is finite, without converting it to a float first
    (``math.isfinite(10**400)`` overflows; a longdouble 1e4000 is finite)."""
    if isinstance(value, numbers.Rational):
        return True
    if isinstance(value, decimal.Decimal):
        return value.is_finite()
    return bool(np.isfinite(value))


def _to_float(value) -> float:
    """``float(value)`` for a real number: ``inf`` where it is finite but beyond the
    float range (``10**400``, ``Fraction(10**400, 3)``), NaN for a Decimal sNaN."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    except ValueError:      # float(Decimal("sNaN")) refuses
        return math.nan


def check_number(argument: str, value, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the interval from
    ``low`` to ``high`` (ends excluded when ``*_open``); else a ``ValueError`` naming
    ``argument`` and the interval, such as ``lr must be a number in (0, inf), got 0``.

    Real numbers are ints, floats, ``Fraction``, ``Decimal`` and NumPy's integer and
    float scalars; bools, complex numbers, strings, arrays and None are refused. The
    interval is checked on the float that is returned, so a value whose float is out
    of range (``10**400``, or ``Decimal("1e-400")`` rounding to 0 for ``(0, inf)``) is
    refused too."""
    number = _to_float(value) if is_real_number(value) else math.nan
    ok = math.isfinite(number) and (number > low if low_open else number >= low) \
        and (number < high if high_open else number <= high)
    if not ok:
        left = "(" if low_open or low == -math.inf else "["
        right = ")" if high_open or high == math.inf else "]"
        if not is_real_number(value):
            why = f" ({type(value).__name__}, not a real number)"
        elif math.isinf(number) and is_finite_number(value):
            why = ", beyond the float range (about 1.8e308)"
        else:
            why = ""
        raise ValueError(f"{argument} must be a number in {left}{low:g}, {high:g}{right}, "
                         f"got {describe(value)}{why}")
    return number


def check_positive_int(value, argument: str, allow_none: bool = False):
    """``value`` as an int in ``1..INT_MAX`` (NumPy's largest index), or None when
    ``allow_none``; bools and floats such as ``3.0`` are refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not 1 <= value <= INT_MAX:
        limit = f" up to {INT_MAX}" if isinstance(value, numbers.Integral) and value > INT_MAX else ""
        raise ValueError(f"{argument} must be a positive integer{limit}"
                         f"{' or None' if allow_none else ''}, got {describe(value)}")
    return int(value)


def check_non_negative_int(value, argument: str) -> int:
    """An integer >= 0 (a count such as patience, or an epoch number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{argument} must be an integer >= 0, got {describe(value)}")
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
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, "
                         f"got {describe(seed)}")
    return np.random.default_rng(None if seed is None else int(seed))


# ------------------------------------------------------------------------- arrays
def _sample_of(index: int, shape: tuple) -> str:
    """"sample 3" for the flat (C-order) ``index`` of an array of ``shape``."""
    return f"sample {np.unravel_index(index, shape)[0]}" if shape else "the only value"


def as_real_array(X, argument: str, expected: str = "numbers") -> np.ndarray:
    """``X`` as an array of bools, ints or floats of any width (its dtype kept), or
    an error naming ``argument``: ``ValueError`` for a ragged nested list, ``TypeError``
    for strings, complex numbers (never silently dropping the imaginary part), dates,
    None and other objects. An object array (Python ints beyond int64, Fraction,
    Decimal, a pandas frame of mixed columns) becomes float64, element by element;
    a finite value beyond the float64 range is refused (``ValueError``) rather than
    becoming infinity. ``expected`` says what the values should be, for the messages."""
    if X is None:
        raise ValueError(f"{argument} is required, got None")
    try:
        array = np.asarray(X)
    except ValueError:      # NumPy: "setting an array element with a sequence ... inhomogeneous"
        raise ValueError(f"{argument} must be a rectangular array of {expected}: its rows (or "
                         "samples) have different lengths") from None
    except TypeError:
        raise TypeError(f"{argument} must be an array of {expected}, got "
                        f"{type(X).__name__}") from None
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "O":
        return _objects_as_float(array, argument, expected)
    if kind == "c":
        raise TypeError(f"{argument} must be real numbers, got complex values (dtype "
                        f"{array.dtype}); pass X.real if the imaginary part is meant to go")
    what = "strings" if kind in "US" else "an array"
    raise TypeError(f"{argument} must be numeric{_wanted(expected)}, got {what} of dtype "
                    f"{array.dtype}")


def _wanted(expected: str) -> str:
    return "" if expected == "numbers" else f" ({expected})"


def _objects_as_float(array: np.ndarray, argument: str, expected: str) -> np.ndarray:
    """An object array of real numbers as float64; the first element that is not
    one (or whose finite value is beyond float64) is named in the error."""
    flat = array.ravel()
    values = np.empty(flat.shape, dtype=np.float64)
    for index, value in enumerate(flat):
        if isinstance(value, (bool, np.bool_)):
            values[index] = float(value)
            continue
        if not is_real_number(value):
            where = _sample_of(index, array.shape)
            if isinstance(value, (list, tuple, np.ndarray)):
                raise ValueError(f"{argument} must be a rectangular array of {expected}: {where} "
                                 f"holds a nested {type(value).__name__}") from None
            if not array.shape:
                raise TypeError(f"{argument} must be an array of {expected}, got "
                                f"{type(value).__name__}")
            missing = " (a missing value)" if value is None or repr(value) == "<NA>" else ""
            raise TypeError(f"{argument} must be numeric{_wanted(expected)}: {where} holds "
                            f"{describe(value)} of type {type(value).__name__}{missing}")
        number = _to_float(value)
        if math.isinf(number) and is_finite_number(value):
            raise ValueError(f"{argument} must hold {expected} within the float64 range (about "
                             f"1.8e308): {_sample_of(index, array.shape)} holds {describe(value)}")
        values[index] = number
    return values.reshape(array.shape)


def first_non_finite(array: np.ndarray) -> Optional[int]:
    """The flat (C-order) index of the first NaN or infinity in a float ``array``, or
    None. Cheap when there is none: one float64 sum, finite exactly when every term
    is, unless the sum itself overflows (``[1e308, 1e308]``); only then, or when
    something is not finite, does the exact element-wise scan run."""
    # Silenced: the sum's own overflow (and inf - inf) is what sends us to the exact scan.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(array, axis=None, dtype=np.float64)
    if math.isfinite(total):
        return None
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    return int(np.argmax(bad))      # argmax of a C-ordered bool array: its first True


def as_float_array(X, argument: str, dtype: np.dtype, min_ndim: int = 2) -> np.ndarray:
    """``X`` as a finite array of ``dtype`` with at least one sample and ``min_ndim`` axes.

    Bools and ints of any width are accepted; values that are finite but beyond the
    range of ``dtype`` (1e300 for float32) are refused as "out of float32 range",
    and NaN and infinity as such, naming the first offending sample. An array that
    already has ``dtype`` is returned as it is (no copy; it may be read-only or
    Fortran-ordered)."""
    source = as_real_array(X, argument)
    if source.size == 0:
        raise ValueError(f"{argument} is empty (shape {source.shape}): expected at least one sample")
    if source.ndim < min_ndim:
        raise ValueError(f"{argument} must be a {min_ndim}-D array (n_samples, n_features), got shape "
                         f"{source.shape}; reshape a single feature with X.reshape(-1, 1)")
    dtype = np.dtype(dtype)
    if source.dtype.kind == "f" and source.dtype.itemsize > dtype.itemsize:
        # float64 (or longdouble) to a narrower float: a value beyond its range becomes
        # inf here, silently, and is told apart from a real infinity below.
        with np.errstate(over="ignore"):
            array = source.astype(dtype)
    else:
        array = source.astype(dtype, copy=False)
    if source.dtype.kind != "f":        # bools and ints are finite in either float
        return array
    index = first_non_finite(array)
    if index is not None:
        original = source.flat[index]
        where = _sample_of(index, source.shape)
        if np.isfinite(original):
            raise ValueError(f"{argument} contains a value out of {dtype.name} range (first at "
                             f"{where}: {str(original)}); {dtype.name} holds magnitudes up to "
                             f"{float(np.finfo(dtype).max):.6g}")
        raise ValueError(f"{argument} contains NaN or infinity (first at {where}); "
                         f"values must be finite {dtype.name} numbers")
    return array


def as_class_labels(y, argument: str, n_classes: Optional[int], what: str = "class labels",
                    context: str = "") -> np.ndarray:
    """``y`` as int64 labels in ``[0, n_classes)`` (``n_classes=None``: any
    non-negative label an int64 can hold), checked *before* any cast: a float label
    of 1e300 or 2**63 is named as it is in ``y``, not as whatever a cast to int64
    makes of it. Integral floats (``2.0``) are accepted; bools, NaN, infinity,
    fractions, negative and too large labels are refused, naming the first one and
    its sample. ``what`` names the labels in messages (``"class indices"``), and
    ``context`` follows the range there (``" for a model with 3 outputs"``)."""
    labels = as_real_array(y, argument, f"integer {what}")
    bound = INT_MAX if n_classes is None else n_classes
    in_range = f" in [0, {bound})"
    if labels.dtype.kind == "b":
        raise TypeError(f"{argument} must hold integer {what}{in_range}{context}, got booleans; "
                        "pass y.astype(int) if True and False are meant as 1 and 0")
    if labels.dtype.kind == "f":
        # Compared as floats: NaN fails every test, +-inf and 1e300 fail the bound,
        # so only integral values in range reach the cast below. (float(bound) may
        # round up to 2**63; a float below it is at most 2**63 - 1024, castable.)
        # At least float64: a float16 cannot hold a bound beyond 65504.
        wide = labels if labels.dtype.itemsize >= 8 else labels.astype(np.float64)
        good = (wide >= 0) & (wide < float(bound)) & (np.floor(wide) == wide)
    else:
        good = (labels >= 0) & (labels < bound)
    if not good.all():
        index = int(np.argmin(good.ravel()))          # the first False
        value = labels.flat[index]
        # as in y: a Python int or float (a longdouble stays one, as .item() keeps it)
        shown = describe(value.item())
        where = f"first at {_sample_of(index, labels.shape)}"
        if labels.dtype.kind == "f" and not np.isfinite(value):
            raise ValueError(f"{argument} contains NaN or infinity ({where}); {what} must be "
                             f"integers{in_range}")
        if labels.dtype.kind == "f" and value != np.floor(value):
            raise ValueError(f"{argument} must hold integer {what}{in_range}{context}, got "
                             f"{shown} ({where})")
        raise ValueError(f"{argument} must hold {what}{in_range}{context}, got {shown} ({where})")
    return labels.astype(np.int64, copy=False)


def check_bool(value, argument: str) -> bool:
    """``value`` if it is True or False (a NumPy bool too); else an error naming
    ``argument`` (``bool(np.array([1, 2]))`` would raise NumPy's "ambiguous" error,
    and ``bool("no")`` is True)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{argument} must be True or False, got {describe(value)}")


def check_name(value, argument: str = "name", allow_none: bool = True) -> Optional[str]:
    """``value`` if it is a non-empty string (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"{argument} must be a non-empty string{' or None' if allow_none else ''}, "
                        f"got {describe(value)}")
    return value


def as_sample_weight(sample_weight, n_samples: int, dtype, argument: str = "sample_weight") -> np.ndarray:
    """``sample_weight`` as a new C-contiguous array ``(n_samples,)`` of ``dtype``: one
    finite, non-negative weight per sample, at least one of them non-zero.

    Lists, tuples, arrays and pandas Series of ints or floats are accepted (object
    arrays of exact numbers too, as in ``as_real_array``); bools, strings and other
    objects are refused, and so are a scalar or an array of another shape, another
    length, NaN or infinity, values beyond the range of ``dtype`` and negative
    values, each naming ``argument``. The result is always a copy: the caller's
    array is never written to, and later changes to it do not reach the loss."""
    expected = f"{n_samples} non-negative weights, one per sample"
    weights = as_real_array(sample_weight, argument, "non-negative weights")
    if weights.dtype.kind == "b":
        raise TypeError(f"{argument} must hold numbers ({expected}), got booleans; pass "
                        f"{argument}.astype(float) if True and False are meant as 1 and 0")
    if weights.ndim != 1:
        got = "a scalar" if weights.ndim == 0 else f"shape {weights.shape}"
        raise ValueError(f"{argument} must be a 1-D array ({expected}), got {got}")
    if len(weights) != n_samples:
        raise ValueError(f"{argument} has {len(weights)} values, but X has {n_samples} samples; "
                         "expected one weight per sample")
    weights = as_float_array(weights, argument, dtype, min_ndim=1)
    negative = weights < 0
    if negative.any():
        index = int(np.argmax(negative))
        raise ValueError(f"{argument} must be non-negative, got "
                         f"{str(weights[index])} (first at sample {index})")
    if not weights.any():
        raise ValueError(f"{argument} must contain at least one non-zero weight: all "
                         f"{n_samples} are 0")
    return np.array(weights, dtype=dtype, order="C", copy=True)
