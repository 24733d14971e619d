"""Hostile numbers at every entry point of the checks, losses, metrics and preprocessing.

The promises tested here, one class of bug per test:

* bad input gets our ``ValueError``/``TypeError`` naming the argument, never
  OverflowError (``float(10**400)``), ZeroDivisionError, or NumPy's own
  "inhomogeneous shape" error;
* no ``RuntimeWarning`` on finite input, float32 or float64 (the suite turns
  warnings into errors; ``strict()`` below also makes NumPy raise on overflow,
  invalid operations and division by zero outside our own handled spots);
* no NaN where the true answer is a number, and the number is right: each value
  claimed is compared with an exact reference (``fractions.Fraction`` from the
  very float inputs, or ``decimal`` at 60 digits for logarithms).
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import scratchnn as snn
from scratchnn import functional as F
from scratchnn import metrics
from scratchnn.losses import get_loss
from scratchnn._validation import (as_class_labels, as_float_array, check_dtype, check_number,
                                   check_positive_int, describe, first_non_finite, make_rng)
from scratchnn.preprocessing import LabelEncoder, StandardScaler, one_hot, train_test_split

F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
INT_MAX = int(np.iinfo(np.intp).max)
LONGDOUBLE_IS_WIDER = np.finfo(np.longdouble).max > np.finfo(np.float64).max


def strict():
    """Overflow, invalid operations and division by zero raise FloatingPointError."""
    return np.errstate(over="raise", invalid="raise", divide="raise")


def exact_mean(values) -> Fraction:
    """The exact mean of floats (each converted exactly to a Fraction) or Fractions."""
    values = [v if isinstance(v, Fraction) else Fraction(float(v)) for v in np.ravel(values)]
    return sum(values, Fraction(0)) / len(values)


def as_float(value: Fraction) -> float:
    """A Fraction rounded to the nearest float, inf beyond the range (float() raises)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


# ================================================================ scalar checks
@pytest.mark.parametrize("value, why", [
    (10 ** 400, r"got 1e\+400 \(an int\), beyond the float range"),
    (-10 ** 400, r"got -1e\+400 \(an int\), beyond the float range"),
    (Fraction(10 ** 400, 3), r"got Fraction\(1000.*\.\.\., beyond the float range"),
    (Decimal("1e400"), r"got Decimal\('1E\+400'\), beyond the float range"),
    (Decimal("NaN"), r"got Decimal\('NaN'\)$"),
    (Decimal("sNaN"), r"got Decimal\('sNaN'\)$"),       # float() of it raises ValueError
    (math.nan, "got nan$"),
    (math.inf, "got inf$"),
    (True, r"got True \(bool, not a real number\)"),
    (np.bool_(True), r"got np.True_ \(bool, not a real number\)"),
    (1j, r"got 1j \(complex, not a real number\)"),
    ("0.1", r"got '0.1' \(str, not a real number\)"),
    (None, r"got None \(NoneType, not a real number\)"),
    ([0.1], r"got \[0.1\] \(list, not a real number\)"),
    (np.array(0.1), r"got array\(0.1\) \(ndarray, not a real number\)"),
    (0, "got 0$"),                                         # outside (0, inf)
    (Decimal("1e-400"), r"got Decimal\('1E-400'\)$"),      # rounds to 0.0 as a float
])
def test_check_number_refuses_with_our_error(value, why):
    with pytest.raises(ValueError, match=r"^lr must be a number in \(0, inf\), " + why):
        check_number("lr", value, 0.0, low_open=True)


@pytest.mark.skipif(not LONGDOUBLE_IS_WIDER, reason="longdouble is float64 here")
def test_check_number_refuses_a_finite_longdouble_beyond_float64():
    with pytest.raises(ValueError, match=r"got np.longdouble\('1e\+400'\), beyond the float range"):
        check_number("lr", np.longdouble("1e400"), 0.0, low_open=True)


@pytest.mark.parametrize("value, expected", [
    (Fraction(1, 3), 1 / 3), (Decimal("0.1"), 0.1), (np.float32(0.5), 0.5),
    (np.int64(3), 3.0), (np.uint8(200), 200.0), (10 ** 20, 1e20), (np.float16(0.25), 0.25),
])
def test_check_number_accepts_every_kind_of_real_number(value, expected):
    result = check_number("lr", value, 0.0, low_open=True)
    assert type(result) is float and result == expected


@pytest.mark.parametrize("make, message", [
    (lambda: snn.SGD(lr=10 ** 400), r"^lr must be a number in \(0, inf\), got 1e\+400 \(an int\)"),
    (lambda: snn.Dropout(rate=10 ** 400), r"^rate must be a number in \[0, 1\), got 1e\+400"),
    (lambda: snn.Adam(beta1=Fraction(10 ** 400, 3)), "^beta1 must be a number in"),
    (lambda: snn.Huber(delta=Decimal("nan")), r"^delta must be a number in \(0, inf\)"),
])
def test_public_hyperparameters_refuse_huge_numbers(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_fit_refuses_a_huge_validation_split():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    model = snn.Sequential([snn.Dense(2)], seed=0)
    with pytest.raises(ValueError, match=r"^validation_split must be a number in \[0, 1\), got 1e\+400"):
        model.fit(X, y, loss="cross_entropy", validation_split=10 ** 400)


@pytest.mark.parametrize("value, message", [
    (10 ** 400, rf"^n must be a positive integer up to {INT_MAX}, got 1e\+400 \(an int\)$"),
    (2 ** 63, rf"^n must be a positive integer up to {INT_MAX}, got 9223372036854775808$"),
    (-10 ** 5000, r"^n must be a positive integer, got -1e\+5000 \(an int\)$"),  # repr would raise
    (0, "^n must be a positive integer, got 0$"),
    (3.0, "^n must be a positive integer, got 3.0$"),
    (True, "^n must be a positive integer, got True$"),
    ("3", "^n must be a positive integer, got '3'$"),
], ids=lambda value: describe(value) if isinstance(value, int) else None)   # str(-10**5000) raises
def test_check_positive_int_refuses_with_our_error(value, message):
    with pytest.raises(ValueError, match=message):
        check_positive_int(value, "n")


def test_check_positive_int_accepts_numpy_ints_up_to_the_index_limit():
    assert check_positive_int(np.int64(3), "n") == 3
    assert check_positive_int(INT_MAX, "n") == INT_MAX
    assert check_positive_int(None, "n", allow_none=True) is None


def test_make_rng_and_check_dtype_name_their_argument():
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer.*got -1e\+400 \(an int\)"):
        make_rng(-10 ** 400)
    assert make_rng(10 ** 400).integers(10) == make_rng(10 ** 400).integers(10)   # seeds any int
    for bad in ("foo", None, 32, object, "float16"):
        with pytest.raises(ValueError, match="^dtype must be one of"):
            check_dtype(bad)
    with pytest.raises(ValueError, match=r"^dtype must be one of .*got 'nonsense'"):
        snn.Sequential([snn.Dense(1)], dtype="nonsense")
    assert check_dtype("float32") == np.float32


def test_describe_keeps_messages_short_for_huge_values():
    assert describe(10 ** 400) == "1e+400 (an int)"
    assert describe(-3 * 10 ** 5000) == "-3e+5000 (an int)"     # str() of it raises
    assert describe(12) == "12"
    assert len(describe(list(range(1000)))) == 80


# ================================================================ float arrays
def test_finite_float64_values_whose_sum_overflows_are_accepted():
    model = snn.Sequential([snn.Dense(1)], dtype="float64")
    X = model.check_input([[1e308], [1e308]])
    np.testing.assert_array_equal(X, [[1e308], [1e308]])
    assert first_non_finite(np.array([F64_MAX, F64_MAX, -F64_MAX])) is None
    assert first_non_finite(np.array([1.0, 2.0, np.inf, np.nan])) == 2


@pytest.mark.parametrize("X, where", [([[1e300, -1e300]], r"sample 0: 1e\+300"),
                                      ([[0.0, 1.0], [2.0, -1e39]], r"sample 1: -1e\+39")])
def test_values_beyond_float32_are_out_of_range_not_nan(X, where):
    model = snn.Sequential([snn.Dense(1)], dtype="float32")
    with pytest.raises(ValueError, match=rf"^X contains a value out of float32 range \(first at "
                                         rf"{where}\); float32 holds magnitudes up to 3.40282e\+38$"):
        model.check_input(X)


def test_nan_and_infinity_are_still_named_as_such_and_the_first_sample_wins():
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity \(first at sample 1\)"):
        as_float_array([[1.0, 2.0], [np.inf, -np.inf]], "X", np.float64)   # inf - inf: no warning
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity \(first at sample 0\)"):
        as_float_array([[np.nan], [1e300]], "X", np.float32)
    with pytest.raises(ValueError, match=r"^X contains a value out of float32 range \(first at sample 0"):
        as_float_array([[1e300], [np.nan]], "X", np.float32)


@pytest.mark.parametrize("X, error, message", [
    ([[1.0, 2.0], [3.0]], ValueError, r"^X must be a rectangular array of numbers: its rows"),
    ([[1.0], [10 ** 400]], ValueError, r"^X must hold numbers within the float64 range .*sample 1 "
                                       r"holds 1e\+400 \(an int\)"),
    ([[Fraction(10 ** 400, 3)]], ValueError, "within the float64 range"),
    ([[1 + 2j]], TypeError, r"^X must be real numbers, got complex values \(dtype complex128\)"),
    (np.array([[1 + 0j]], dtype=object), TypeError, r"^X must be numeric: sample 0 holds \(1\+0j\) "
                                                    "of type complex"),
    ([["1.5"]], TypeError, r"^X must be numeric, got strings of dtype <U3"),
    (np.array([[1.0, "1.5"]], dtype=object), TypeError, r"holds '1.5' of type str"),
    ([[1.0], [None]], TypeError, r"^X must be numeric: sample 1 holds None of type NoneType "
                                 r"\(a missing value\)"),
    (pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": ["x", "y"]}), TypeError,
     "sample 0 holds 'x' of type str"),
    (pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]}).astype(object),
     TypeError, r"sample 1 holds <NA> of type NAType \(a missing value\)"),
    (np.array([["2020-01-01"]], dtype="datetime64[D]"), TypeError, "dtype datetime64"),
    ({"a": 1}, TypeError, "^X must be an array of numbers, got dict"),
    (np.array([[1.0, object()]], dtype=object), TypeError, "^X must be numeric: sample 0 holds "
                                                          "<object object at"),
])
def test_bad_arrays_get_our_error_naming_the_argument(X, error, message):
    with pytest.raises(error, match=message):
        as_float_array(X, "X", np.float64)


def test_object_arrays_of_nested_lists_are_ragged_input():
    X = np.empty((2,), dtype=object)
    X[0], X[1] = [1.0, 2.0], [3.0]
    with pytest.raises(ValueError, match=r"^X must be a rectangular array of numbers: sample 0 "
                                         "holds a nested list"):
        as_float_array(X, "X", np.float64, min_ndim=1)


@pytest.mark.skipif(not LONGDOUBLE_IS_WIDER, reason="longdouble is float64 here")
def test_a_finite_longdouble_beyond_float64_is_out_of_range():
    with pytest.raises(ValueError, match=r"out of float64 range \(first at sample 1: 1e\+4000\)"):
        as_float_array(np.array([[1.0], [np.longdouble("1e4000")]]), "X", np.float64)


def test_exact_numbers_bools_and_layouts_are_accepted():
    X = as_float_array([[Fraction(1, 3), Decimal("0.1"), True, 2 ** 70]], "X", np.float64)
    np.testing.assert_array_equal(X, [[1 / 3, 0.1, 1.0, 2.0 ** 70]])
    assert as_float_array(np.array([[127, -128]], dtype=np.int8), "X", np.float32).tolist() == \
        [[127.0, -128.0]]
    frozen = np.arange(6.0).reshape(2, 3)
    frozen.flags.writeable = False
    assert as_float_array(frozen, "X", np.float64) is frozen          # no copy
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(as_float_array(fortran, "X", np.float32), fortran)
    frame = pd.DataFrame({"a": [1.5, 2.5], "b": [1, 2]})
    np.testing.assert_array_equal(as_float_array(frame, "X", np.float64), [[1.5, 1], [2.5, 2]])


# ====================================================================== labels
@pytest.mark.parametrize("labels, message", [
    ([0.0, 1.0, 1e300], r"class labels in \[0, 3\) for a model with 3 outputs, got 1e\+300 "
                        r"\(first at sample 2\)$"),
    ([2.0 ** 63, 0.0], r"got 9.223372036854776e\+18 \(first at sample 0\)$"),
    ([2.0 ** 64, 0.0], r"got 1.8446744073709552e\+19 \(first at sample 0\)$"),
    ([0.0, -1.0], r"class labels in \[0, 3\) .*got -1.0 \(first at sample 1\)$"),
    ([0.0, -0.5], r"^y must hold integer class labels in \[0, 3\) .*got -0.5"),
    ([0.0, 2.5], r"^y must hold integer class labels in \[0, 3\) .*got 2.5 \(first at sample 1\)$"),
    ([0.0, np.nan], r"^y contains NaN or infinity \(first at sample 1\); class labels must be "
                    r"integers in \[0, 3\)$"),
    ([-np.inf, 0.0], r"^y contains NaN or infinity \(first at sample 0\)"),
    (np.array([0, 2 ** 64 - 1], dtype=np.uint64), r"got 18446744073709551615 \(first at sample 1\)$"),
    ([0, 10 ** 400], r"^y must hold numbers within the float64 range .*sample 1 holds 1e\+400"),
])
def test_cross_entropy_labels_are_checked_before_the_cast(labels, message):
    with pytest.raises(ValueError, match=message):
        snn.CrossEntropy().prepare_target(labels, 3, np.dtype(np.float32))


def test_fit_names_a_huge_float_label_as_it_is():
    X = np.zeros((3, 2), dtype=np.float32)
    model = snn.Sequential([snn.Dense(2), snn.Dense(3)], seed=0)
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 3\) for a model with 3 "
                                         r"outputs, got 1e\+300 \(first at sample 2\)$"):
        model.fit(X, [0.0, 1.0, 1e300], loss="cross_entropy")


@pytest.mark.parametrize("labels, error, message", [
    ([True, False], TypeError, r"^y must hold integer class labels in \[0, 3\) for a model with 3 "
                               "outputs, got booleans"),
    (["0", "1"], TypeError, r"^y must be numeric, got strings of dtype <U1$"),
    ([[0, 1], [2]], ValueError, r"^y must be a rectangular array of numbers"),
    ([0, None], TypeError, r"sample 1 holds None"),
])
def test_cross_entropy_labels_of_the_wrong_type(labels, error, message):
    with pytest.raises(error, match=message):
        snn.CrossEntropy().prepare_target(labels, 3, np.dtype(np.float32))


def test_integral_labels_of_every_type_are_accepted():
    for labels in ([0.0, 2.0, 1.0], np.array([0, 2, 1], dtype=np.uint64), [0, 2, np.int8(1)],
                   pd.Series([0, 2, 1]), np.array([0, 2, 1], dtype=object)):
        prepared = snn.CrossEntropy().prepare_target(labels, 3, np.dtype(np.float32))
        assert prepared.dtype == np.int64 and prepared.tolist() == [0, 2, 1]


def test_as_class_labels_of_none_checks_only_what_an_int64_holds():
    assert as_class_labels([3.0, 2 ** 40], "y", None).tolist() == [3, 2 ** 40]
    with pytest.raises(ValueError, match=rf"in \[0, {INT_MAX}\), got 1e\+300"):
        as_class_labels([1e300], "y", None)


@pytest.mark.parametrize("y, n_classes, message", [
    ([1e300, 0.0], 3, r"^y must hold class indices in \[0, 3\), got 1e\+300 \(first at sample 0\)$"),
    ([1e300, 0.0], None, r"got 1e\+300 \(first at sample 0\)$"),
    (np.array([2 ** 64 - 1], dtype=np.uint64), 3, r"got 18446744073709551615"),
    ([0.0, np.nan], 3, r"^y contains NaN or infinity \(first at sample 1\)"),
    ([0.0, 2.5], 3, r"^y must hold integer class indices in \[0, 3\), got 2.5"),
    ([True, False], 3, r"got booleans"),
    (["a"], 3, r"^y must be numeric \(integer class indices\), got strings"),
    ([[0], [1, 2]], 3, r"^y must be a rectangular array of integer class indices"),
    ([0, 1], 10 ** 400, rf"^n_classes must be a positive integer up to {INT_MAX}"),
    ([0, 2, 1], 2 ** 40, r"^one_hot of 3 labels with n_classes=1099511627776 needs 13194139533312 "
                         "bytes"),
])
def test_one_hot_refuses_hostile_labels_with_their_value(y, n_classes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        one_hot(y, n_classes)


def test_one_hot_dtype_is_checked_and_integral_floats_work():
    for bad in ("foo", str, object, None, "U3"):
        with pytest.raises(ValueError, match="^dtype must be a bool, integer or float dtype"):
            one_hot([0, 1], 2, dtype=bad)
    np.testing.assert_array_equal(one_hot([2.0, 0.0], dtype=np.int8), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1], dtype=np.uint64), 2, dtype=bool).tolist() == [[False, True]]


# ======================================================================= losses
def check_loss(loss, output, target, expected_loss, expected_grad=None, rel=1e-12):
    """``loss`` forward and backward under strict(), against exact references."""
    with strict():
        value = loss(output, target)
        grad = loss.backward()
    assert grad.dtype == output.dtype and grad.shape == output.shape
    if math.isinf(expected_loss):
        assert value == expected_loss
    else:
        assert value == pytest.approx(expected_loss, rel=rel)
    assert not np.isnan(grad).any()
    if expected_grad is not None:
        np.testing.assert_allclose(grad.astype(np.float64), expected_grad, rtol=1e-6, atol=0)
    return value, grad


def exact_mse(o, t):
    return exact_mean([(Fraction(float(a)) - Fraction(float(b))) ** 2
                       for a, b in zip(np.ravel(o), np.ravel(t))])


def exact_huber(o, t, delta):
    delta = Fraction(delta)
    values = []
    for a, b in zip(np.ravel(o), np.ravel(t)):
        r = abs(Fraction(float(a)) - Fraction(float(b)))
        values.append(r * r / 2 if r <= delta else delta * (r - delta / 2))
    return sum(values, Fraction(0)) / len(values)


F32 = np.float32


def test_huber_of_a_huge_float32_residual_does_not_square_it():
    o, t = np.array([[1e20], [0.5]], F32), np.zeros((2, 1), F32)
    # the fast path: per element in float32, so float32's rounding of 1e20 - 0.5
    check_loss(snn.Huber(), o, t, float(exact_huber(o, t, 1.0)), [[0.5], [0.25]], rel=1e-7)


def test_huber_with_a_delta_beyond_float32_is_quadratic_and_exact():
    o, t = np.array([[3e38], [1.0]], F32), np.array([[-3e38], [0.0]], F32)
    expected = exact_huber(o, t, 1e300)          # 0.5 * (6e38)^2 / 2: beyond float32, not float64
    grad = [[float(Fraction(float(o[0, 0])) - Fraction(float(t[0, 0]))) / 2], [0.5]]   # r / size
    check_loss(snn.Huber(delta=1e300), o, t, float(expected), grad)
    assert float(expected) > F32_MAX


def test_huber_whose_float32_mean_fits_though_the_squares_do_not():
    o = np.zeros((1000, 1), F32)
    o[0] = 3e19                      # (3e19)^2 / 2 overflows float32; / 1000 does not
    t = np.zeros_like(o)
    expected = exact_huber(o, t, 1e30)
    check_loss(snn.Huber(delta=1e30), o, t, float(expected), rel=1e-12)


def test_huber_float64_at_the_ends_of_the_range():
    o = np.array([[1e308], [0.0], [0.0], [0.0]])
    t = np.array([[-1e308], [0.0], [0.0], [0.0]])
    # per element: delta (2e308 - delta/2), mean 5e307: finite though 2e308 is not
    check_loss(snn.Huber(), o, t, float(exact_huber(o, t, 1.0)), [[0.25], [0], [0], [0]])
    # delta (2e308 - delta/2) / 4 = 3.75e615: inf, the gradient delta / 4 finite
    check_loss(snn.Huber(delta=1e308), o, t, as_float(exact_huber(o, t, 1e308)), [[2.5e307], [0], [0], [0]])


def test_mse_whose_mean_fits_though_the_squares_overflow():
    o, t = np.zeros((100, 1)), np.zeros((100, 1))
    t[0] = 1e155                    # 1e310 / 100 = 1e308
    value, grad = check_loss(snn.MSE(), o, t, float(exact_mse(o, t)))
    assert value == pytest.approx(1e308, rel=1e-12)
    assert grad[0, 0] == pytest.approx(-2e155 / 100, rel=1e-15) and not grad[1:].any()

    o32, t32 = np.zeros((10, 1), F32), np.zeros((10, 1), F32)
    o32[3] = 2e19                   # (2e19)^2 = 4e38 overflows float32
    check_loss(snn.MSE(), o32, t32, float(exact_mse(o32, t32)))


def test_mse_of_float32_residuals_beyond_the_float32_range():
    o, t = np.array([[3e38], [0], [0], [0]], F32), np.array([[-3e38], [0], [0], [0]], F32)
    residual = Fraction(float(o[0, 0])) - Fraction(float(t[0, 0]))          # 6e38, beyond float32
    # the loss 9e76 is a float64 number; the gradient 2 r / 4 = 3e38 fits float32
    check_loss(snn.MSE(), o, t, float(exact_mse(o, t)), [[float(residual) / 2], [0], [0], [0]])
    # with one element, 2 r = 1.2e39 does not: inf is the correctly rounded gradient
    one = snn.MSE()
    with strict():
        assert one(o[:1], t[:1]) == pytest.approx(float(residual ** 2), rel=1e-12)
        assert one.backward().tolist() == [[math.inf]]


def test_mse_beyond_float64_is_inf_without_a_warning():
    o, t = np.zeros((2, 1)), np.array([[1e200], [0.0]])
    value, grad = check_loss(snn.MSE(), o, t, math.inf)      # the true mean is 5e399
    assert grad.tolist() == [[-1e200], [0.0]]


def test_mae_near_the_largest_float():
    o, t = np.array([[1.7e308], [0.0]]), np.array([[-1.7e308], [0.0]])
    expected = exact_mean([abs(Fraction(1.7e308) * 2), 0])
    check_loss(snn.MAE(), o, t, float(expected), [[0.5], [0.0]])
    o32, t32 = np.array([[3e38], [1]], F32), np.array([[-3e38], [1]], F32)
    expected32 = exact_mean([abs(Fraction(float(o32[0, 0])) - Fraction(float(t32[0, 0]))), 0])
    check_loss(snn.MAE(), o32, t32, float(expected32), [[0.5], [0.0]])


def exact_cross_entropy(z_rows, t_rows) -> float:
    """-(1/n) sum t log softmax(z), in 60-digit decimal from the exact float logits."""
    with decimal.localcontext() as context:
        context.prec = 60
        total = Decimal(0)
        for z, t in zip(z_rows, t_rows):
            z = [Decimal(float(v)) for v in z]
            m = max(z)
            lse = m + sum((v - m).exp() for v in z).ln()
            total += sum(Decimal(float(w)) * (lse - v) for v, w in zip(z, t))
        return float(total / len(z_rows))


@pytest.mark.parametrize("target, expected", [
    ([[1, 0, 0]], 0.0),                      # 0 * -inf would be NaN: the true loss is 0
    ([[0.5, 0.5, 0]], None),                 # 0.5 (z0 - z1) = 3e38
    ([[0, 1, 0]], None),                     # 6e38: beyond float32, a float64 number
])
def test_cross_entropy_with_probability_targets_at_the_float32_limit(target, expected):
    z = np.array([[3e38, -3e38, 0.0]], F32)
    t = np.array(target, F32)
    exact = exact_cross_entropy(z, t) if expected is None else expected
    p = np.array([[1.0, 0.0, 0.0]])
    value, grad = check_loss(snn.CrossEntropy(), z, t, exact, p * t.sum() - t)
    assert value == exact or value == pytest.approx(exact, rel=1e-12)


def test_cross_entropy_with_labels_at_both_ends_of_the_range():
    z = np.array([[3e38, -3e38, 0.0], [1.0, 2.0, 3.0]], F32)
    labels = np.array([1, 0])
    onehot = np.eye(3)[labels]
    check_loss(snn.CrossEntropy(), z, labels, exact_cross_entropy(z, onehot))
    z64 = np.array([[F64_MAX, -F64_MAX, 0.0]] * 4)
    labels64 = np.array([1, 0, 0, 0])
    # -log p = 2 * max for the first row: the mean, max / 2, is finite
    value, grad = check_loss(snn.CrossEntropy(), z64, labels64, F64_MAX / 2)
    np.testing.assert_array_equal(grad[0], [0.25, -0.25, 0.0])


def test_binary_cross_entropy_float64_terms_whose_sum_overflows():
    z, t = np.array([[1.7e308], [1.7e308]]), np.zeros((2, 1))
    check_loss(snn.BinaryCrossEntropy(), z, t, 1.7e308, [[0.5], [0.5]])
    z32 = np.array([[F32_MAX], [-F32_MAX]], F32)
    check_loss(snn.BinaryCrossEntropy(), z32, np.array([[0.0], [1.0]], F32),
               float(np.float32(F32_MAX)), [[0.5], [-0.5]])


def test_cross_entropy_probability_targets_must_be_in_0_1():
    with pytest.raises(ValueError, match=r"^y probabilities must be in \[0, 1\] .*got 3e\+38 "
                                         r"\(first at sample 1\)$"):
        snn.CrossEntropy().prepare_target([[0.5, 0.5], [3e38, 0.0]], 2, np.dtype(np.float32))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "bce", "cross_entropy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_loss_is_quiet_and_finite_at_the_largest_float(loss, dtype):
    """The corners: +-max in output and target, each combination, one call each."""
    big = float(np.finfo(dtype).max)
    corners = np.array([[big, -big], [-big, big], [big, big], [0.0, -big]], dtype=dtype)
    instance = get_loss(loss)
    if loss == "cross_entropy":
        target = instance.prepare_target([0, 1, 1, 0], 2, np.dtype(dtype))
    elif loss == "bce":
        target = instance.prepare_target(np.array([[1, 0], [0.5, 1], [0, 0], [1, 1]]), 2, np.dtype(dtype))
    else:
        target = instance.prepare_target(corners[::-1].copy(), 2, np.dtype(dtype))
    with strict():
        value = instance(corners, target)
        grad = instance.backward()
    assert not math.isnan(value) and value > 0
    assert not np.isnan(grad).any()
    if loss in ("bce", "cross_entropy", "mae", "huber"):    # gradients bounded by 1 / size
        assert np.isfinite(grad).all() and np.abs(grad).max() <= 1.0


# ====================================================================== metrics
def test_regression_metrics_at_the_ends_of_the_range():
    t, p = np.zeros(100), np.zeros(100)
    t[0] = 1e155
    assert metrics.mse(t, p) == pytest.approx(1e308, rel=1e-12)
    assert metrics.mse([1e200, 0.0], [0.0, 0.0]) == math.inf          # true value 5e399
    assert metrics.mae([1.7e308, 0.0], [-1.7e308, 0.0]) == pytest.approx(1.7e308, rel=1e-15)
    assert metrics.mae([1.7e308], [-1.7e308]) == math.inf             # 3.4e308
    # int8 arithmetic would wrap 127 - (-128) to -1
    assert metrics.mse(np.int8([127]), np.int8([-128])) == 255.0 ** 2
    assert metrics.mae(np.float16([1.0]), np.float16([65504.0])) == 65503.0


def test_r2_is_scale_invariant():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(20, 3))
    p = t + rng.normal(scale=0.3, size=(20, 3))
    from sklearn.metrics import r2_score
    base = metrics.r2(t, p)
    assert base == pytest.approx(r2_score(t, p), rel=1e-12)
    # scaling by 2**k is exact, so only the summation order (einsum's) may differ
    for scale in (2.0 ** 1000, 2.0 ** -1000, 2.0 ** 1020):
        assert metrics.r2(t * scale, p * scale) == pytest.approx(base, rel=1e-15)
    assert metrics.r2(t * 1e300, p * 1e300) == pytest.approx(base, rel=1e-13)


def test_r2_of_huge_values_matches_the_exact_ratio():
    t, p = [1e200, 0.0, -1e200], [0.9e200, 0.0, -1e200]
    ts = [Fraction(v) for v in t]
    mean = sum(ts) / 3
    ss_tot = sum((v - mean) ** 2 for v in ts)
    ss_res = sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(t, p))
    assert metrics.r2(t, p) == pytest.approx(float(1 - ss_res / ss_tot), rel=1e-15)


def test_r2_beyond_the_float_range_is_minus_inf_not_nan():
    # SS_tot ~ 1e-600 against SS_res ~ 1e600: the true score is about -1e1200
    assert metrics.r2([1e-300, -1e-300], [1e300, -1e300]) == -math.inf


def test_r2_of_constant_columns_follows_scikit_learn():
    assert metrics.r2([0.1] * 3, [0.1] * 3) == 1.0
    assert metrics.r2([0.1] * 3, [0.1, 0.1, 0.2]) == 0.0       # scikit-learn: -1.7e31
    assert metrics.r2([5.0], [5.0]) == 1.0 and metrics.r2([5.0], [4.0]) == 0.0   # one sample
    # columns averaged: a perfect constant column (1), a constant miss (0), a real one
    t = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 2.0]])
    p = np.array([[1.0, 3.0, 0.0], [1.0, 2.0, 1.0]])
    assert metrics.r2(t, p) == pytest.approx((1.0 + 0.0 + (1 - 1 / 2)) / 3, rel=1e-15)


@pytest.mark.parametrize("name", ["accuracy", "mse", "mae", "r2"])
def test_metrics_refuse_empty_ragged_and_non_numeric_input(name):
    metric = getattr(metrics, name)
    with pytest.raises(ValueError, match=r"^y_true and y_pred are empty \(shape \(0,\)\)"):
        metric([], [])
    with pytest.raises(ValueError, match=r"^y_true must be a rectangular array"):
        metric([[1, 2], [3]], [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"^y_pred must be a rectangular array"):
        metric([[1, 2], [3, 4]], [[1, 2], [3]])
    if name != "accuracy":
        with pytest.raises(ValueError, match=r"^y_pred contains NaN or infinity \(first at sample 1\)"):
            metric([1.0, 2.0], [1.0, np.nan])
        with pytest.raises(TypeError, match="^y_true must be numeric"):
            metric(["a", "b"], [1.0, 2.0])
        with pytest.raises(TypeError, match="^y_pred must be real numbers"):
            metric([1.0, 2.0], [1j, 2.0])


def test_metrics_of_a_single_number():
    assert metrics.mse(3.0, 1.0) == 4.0
    assert metrics.accuracy(np.int64(2), np.int64(2)) == 1.0


# ================================================================ preprocessing
def exact_mean_and_std(column):
    """The mean and population std of floats, exactly (the variance of 1e308s is
    beyond the float range, so its square root is taken in 40-digit decimal)."""
    values = [Fraction(float(v)) for v in column]
    mean = sum(values, Fraction(0)) / len(values)
    variance = sum(((v - mean) ** 2 for v in values), Fraction(0)) / len(values)
    with decimal.localcontext() as context:
        context.prec = 40
        std = (Decimal(variance.numerator) / Decimal(variance.denominator)).sqrt()
    return float(mean), float(std)


@pytest.mark.parametrize("column", [
    [1e200, -1e200, 3e200],              # squares of 1e200 overflow
    [1.7e308, -1.7e308],                 # the difference overflows
    [1e308, 5e307, -1.5e308, 1.6e308],
    [1e-300, 3e-300, 2e-300],            # small: scaled up, exactly
])
def test_standard_scaler_is_right_near_the_ends_of_the_range(column, monkeypatch):
    import scratchnn.preprocessing as preprocessing
    monkeypatch.setattr(preprocessing, "_VARIANCE_CHUNK", 1)     # every block path too
    X = np.array(column).reshape(-1, 1)
    with strict():
        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        back = scaler.inverse_transform(Z)
    mean, std = exact_mean_and_std(column)
    assert scaler.mean_[0] == pytest.approx(mean, rel=1e-14, abs=1e-320)
    assert scaler.scale_[0] == pytest.approx(std, rel=1e-14)
    expected = [float((Fraction(v) - Fraction(mean)) / Fraction(std)) for v in column]
    np.testing.assert_allclose(Z[:, 0], expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(back, X, rtol=1e-13)


def test_standard_scaler_matches_scikit_learn_on_ordinary_data():
    from sklearn.preprocessing import StandardScaler as Reference
    rng = np.random.default_rng(3)
    X = rng.normal([1.0, -5.0, 1e6], [1.0, 1e-3, 10.0], size=(200, 3))
    X[:, 1] = 7.0                                              # constant: scale 1 in both
    ours, theirs = StandardScaler().fit(X), Reference().fit(X)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-14)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-12)
    assert ours.scale_[1] == 1.0 and theirs.scale_[1] == 1.0
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-10, atol=1e-12)


def test_standard_scaler_constant_columns_at_the_largest_float():
    with strict():
        scaler = StandardScaler().fit([[1e308], [1e308]])
        assert scaler.mean_.tolist() == [1e308] and scaler.scale_.tolist() == [1.0]
        assert scaler.transform([[1e308]]).tolist() == [[0.0]]
        scaler32 = StandardScaler().fit(np.array([[3e38], [-3e38]], F32))
    assert scaler32.scale_[0] == float(np.float32(3e38))


def test_standard_scaler_transform_recomputes_an_overflowing_difference():
    scaler = StandardScaler().fit([[1.7e308], [1.6e308]])    # mean 1.65e308, scale 5e306
    with strict():
        Z = scaler.transform([[-1.7e308]])                   # x - mean = -3.35e308 overflows
    expected = (Fraction(-1.7e308) - Fraction(scaler.mean_[0])) / Fraction(scaler.scale_[0])
    assert Z[0, 0] == pytest.approx(float(expected), rel=1e-14)


def test_standard_scaler_refuses_a_result_beyond_the_range_naming_the_sample():
    scaler = StandardScaler().fit([[0.0], [1e-300]])
    with pytest.raises(ValueError, match=r"^X\[1, 0\] = 1e\+300 gives \(X - mean_\) / scale_ beyond "
                                         r"the float64 range"):
        scaler.transform([[0.0], [1e300]])
    # statistics of float64 data that do not fit float32: computed in float64, then refused
    with pytest.raises(ValueError, match=r"^X\[0, 0\] = 1.0 gives .* beyond the float32 range"):
        StandardScaler().fit([[0.0], [1e-50]]).transform(np.array([[1.0]], F32))
    big = StandardScaler().fit([[1e300], [-1e300]])
    assert big.transform(np.array([[1.0]], F32)).tolist() == [[0.0]]   # 1e-300 underflows to 0


def test_standard_scaler_from_dict_refuses_hostile_values():
    for mean, message in [([10 ** 400], r"state\['mean'\] must hold numbers within the float64 range"),
                          ([None], r"state\['mean'\] must be a list of numbers"),
                          ([[1.0], [2.0, 3.0]], r"state\['mean'\] must be a rectangular array"),
                          ([[1.0]], r"state\['mean'\] must be a non-empty list of finite numbers")]:
        with pytest.raises(ValueError, match=message):
            StandardScaler.from_dict({"type": "StandardScaler", "mean": mean, "scale": [1.0]})


@pytest.mark.parametrize("labels, error, message", [
    ([1, "a"], TypeError, r"^y must hold labels of one kind, all strings or all numbers; got 1 "
                          r"\(number\) and 'a' \(string\)$"),
    (pd.Series([1, "a"]), TypeError, "one kind"),
    (["a", None], TypeError, r"^y must hold strings or numbers, got None of type NoneType "
                             r"\(a missing label\)$"),
    ([{"a": 1}, {"b": 2}], TypeError, "got {'a': 1} of type dict"),
    ([[1], [2, 3]], ValueError, "^y must be a 1-D array of labels, got a ragged nested sequence$"),
    ([1.0, np.nan], ValueError, "^y contains NaN or infinity"),
    (np.array([1, Decimal("NaN")], dtype=object), ValueError, "^y contains NaN or infinity"),
    ([1 + 2j], TypeError, "^y must hold strings or numbers, got dtype complex128$"),
])
def test_label_encoder_refuses_mixed_missing_and_unhashable_labels(labels, error, message):
    with pytest.raises(error, match=message):
        LabelEncoder().fit(labels)


def test_label_encoder_huge_ints_and_hostile_codes():
    encoder = LabelEncoder()
    assert encoder.fit_transform([10 ** 400, 1, 10 ** 400]).tolist() == [1, 0, 1]
    assert encoder.inverse_transform([1]).tolist() == [10 ** 400]
    with pytest.raises(ValueError, match=r"^y contains label -1e\+400 \(an int\) not seen in fit"):
        encoder.transform([-10 ** 400])
    encoder.fit(["a", "b"])
    with pytest.raises(ValueError, match=r"^codes must hold class codes in \[0, 2\), got 1e\+300"):
        encoder.inverse_transform([1e300])
    with pytest.raises(ValueError, match=r"got 18446744073709551615 \(first at sample 0\)$"):
        encoder.inverse_transform(np.array([2 ** 64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"^y contains label 1.0 not seen in fit .*y holds float64"):
        encoder.transform([1.0])                      # numbers against strings: no comparison
    assert encoder.inverse_transform([]).tolist() == []


def test_train_test_split_names_ragged_and_mixed_input():
    with pytest.raises(ValueError, match="^X must be an array of samples of one shape, got a ragged"):
        train_test_split([[1, 2], [3]], [0, 1])
    with pytest.raises(ValueError, match="^y must be an array of samples of one shape, got a ragged"):
        train_test_split([[1], [3]], [[0], [1, 2]])
    with pytest.raises(TypeError, match="^y must hold labels of one kind"):
        train_test_split(np.zeros((4, 1)), [1, "a", 1, "a"], stratify=True)
    _, _, y_train, y_test = train_test_split(np.zeros((4, 1)), [1, "a", 2, "b"], test_size=2, seed=0)
    assert sorted(map(repr, list(y_train) + list(y_test))) == ["'a'", "'b'", "1", "2"]  # not "1"


@pytest.mark.parametrize("test_size, message", [
    (10 ** 400, r"^test_size=1e\+400 \(an int\) as a count must be in 1..9"),
    (math.nan, r"^test_size must be a number in \(0, 1\), got nan$"),
    (Fraction(10 ** 400, 3), r"^test_size must be a number in \(0, 1\)"),
    (1j, r"^test_size must be a number in \(0, 1\), got 1j \(complex"),
])
def test_train_test_split_test_size_edges(test_size, message):
    with pytest.raises(ValueError, match=message):
        train_test_split(np.zeros((10, 1)), np.zeros(10), test_size=test_size)


def test_train_test_split_takes_exact_fractions():
    # ceil(test_size * 10): 10/3 -> 4; 0.3 -> 3; float32(0.3) is 0.30000001 -> 4
    for test_size, n_test in ((Fraction(1, 3), 4), (Decimal("0.3"), 3), (np.float32(0.3), 4)):
        X_train, X_test, _, _ = train_test_split(np.zeros((10, 1)), np.zeros(10),
                                                 test_size=test_size, seed=0)
        assert (len(X_train), len(X_test)) == (10 - n_test, n_test)


# ======================================================== functional primitives
def test_exact_means_against_fractions():
    a = np.array([1.7e308, -1.7e308, 3.0, 1e-300])
    b = np.array([-1.7e308, 1.7e308, -2.0, 0.0])
    squares = exact_mean([(Fraction(x) - Fraction(y)) ** 2 for x, y in zip(a, b)])
    assert F.mean_squared_difference(a, b) == as_float(squares) == math.inf
    one_big = np.zeros(100)
    one_big[0] = -1e155                      # its square overflows, the mean (1e308) does not
    assert F.mean_squared_difference(one_big, np.zeros(100)) == pytest.approx(
        float(exact_mean([Fraction(x) ** 2 for x in one_big])), rel=1e-15)
    absolute = exact_mean([abs(Fraction(x) - Fraction(y)) for x, y in zip(a / 2, b / 2)])
    assert F.mean_absolute_difference(a / 2, b / 2) == pytest.approx(float(absolute), rel=1e-15)
    values = np.array([F64_MAX, F64_MAX, -F64_MAX / 2])
    assert F.scaled_mean(values) == pytest.approx(float(exact_mean(values)), rel=1e-15)
    assert F.scaled_mean(np.zeros(3)) == 0.0
    np.testing.assert_array_equal(F.half_difference(np.array([F64_MAX]), np.array([-F64_MAX])),
                                  [F64_MAX])


# ================================================================ small corners
@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "bce", "cross_entropy"])
def test_losses_refuse_an_empty_output_and_forget_the_last_batch(loss):
    instance = get_loss(loss)
    target = np.array([0, 1]) if loss == "cross_entropy" else np.zeros((2, 3))
    instance(np.ones((2, 3)), target)
    empty_target = np.zeros(0, dtype=int) if loss == "cross_entropy" else np.zeros((0, 3))
    with pytest.raises(ValueError, match=r"output is empty \(shape \(0, 3\)\)"):   # not 0 / 0
        instance(np.ones((0, 3)), empty_target)
    with pytest.raises(RuntimeError, match="before forward"):   # not the gradient of (2, 3)
        instance.backward()


def test_float16_labels_are_compared_in_float64():
    # float16 holds at most 65504: a bound of 2**63 compared in float16 would overflow
    assert one_hot(np.array([1.0, 0.0], dtype=np.float16)).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="y is empty; pass n_classes"):
        one_hot(np.array([], dtype=np.float16))
    prepared = snn.CrossEntropy().prepare_target(np.array([2.0, 0.0], np.float16), 3, np.dtype(F32))
    assert prepared.tolist() == [2, 0]


def test_accuracy_of_labels_that_refuse_equality():
    with pytest.raises(TypeError, match="^y_true and y_pred must hold labels that compare with ==: "
                                        "InvalidOperation$"):
        metrics.accuracy(np.array([Decimal("sNaN")], dtype=object), np.array([1], dtype=object))
    assert metrics.accuracy(["a", "b"], ["a", "c"]) == 0.5
    assert metrics.accuracy(["a", "b"], [1, 2]) == 0.0           # strings never equal numbers


@pytest.mark.parametrize("column, mean, scale", [
    ([1e-170, 2e-170], 1.5e-170, 5e-171),        # squares of 5e-171 underflow to 0 in float64
    ([5e-324, 0.0], 0.0, 1.0),                   # a std of 2.5e-324 is below every float
    ([1e-323, 0.0], 5e-324, 5e-324),
])
def test_standard_scaler_columns_of_tiny_spread(column, mean, scale):
    X = np.array([column, [1.0, 2.0]]).T           # beside an ordinary column
    with strict():
        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
    assert scaler.mean_[0] == pytest.approx(mean, rel=1e-15, abs=0)
    assert scaler.scale_[0] == pytest.approx(scale, rel=1e-15, abs=0)
    assert scaler.scale_[1] == 0.5 and np.isfinite(Z).all()
    if scale != 1.0:
        np.testing.assert_allclose(Z[:, 0], np.sign(np.subtract(column, mean)), rtol=1e-15)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "bce", "cross_entropy"])
def test_losses_of_read_only_fortran_and_strided_arrays_equal_the_plain_ones(loss):
    rng = np.random.default_rng(5)
    output = rng.normal(size=(6, 3)) * 3
    target = (rng.integers(0, 3, 6) if loss == "cross_entropy" else
              rng.random((6, 3)) if loss == "bce" else rng.normal(size=(6, 3)))
    plain = get_loss(loss)
    expected, expected_grad = plain(output, target), plain.backward()
    frozen = output.copy()
    frozen.flags.writeable = False
    wide = np.repeat(output, 2, axis=1)[:, ::2]
    for layout in (frozen, np.asfortranarray(output), wide):
        instance = get_loss(loss)
        assert instance(layout, target) == pytest.approx(expected, rel=1e-15)
        np.testing.assert_allclose(instance.backward(), expected_grad, rtol=1e-15, atol=1e-17)
    np.testing.assert_array_equal(frozen, output)                 # never written
