"""Extreme inputs: logits of +-1000, +-1e30 and the ends of the float range.

Everything here must be finite, agree with a float64 reference computed by an
independent formula, and raise no floating-point error (the suite runs with
``-W error``; the calls are also wrapped in ``np.errstate`` that turns overflow,
invalid operations and division by zero into exceptions). Underflow to 0 is
expected and allowed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import functional as F

F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
# values below the smallest normal number carry few significant bits; compare them absolutely
TINY = {np.float32: float(np.finfo(np.float32).tiny), np.float64: float(np.finfo(np.float64).tiny)}
RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def strict():
    """Overflow, invalid operations and division by zero raise FloatingPointError."""
    return np.errstate(over="raise", invalid="raise", divide="raise")


def assert_close(actual, expected, dtype, atol=None):
    actual = np.asarray(actual)
    assert actual.dtype == dtype
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=RTOL[dtype],
                               atol=TINY[dtype] if atol is None else atol)


def grad_atol(size):
    """A fused gradient ``(p - t) / size`` is computed from p rounded to float32,
    so it is exact only to about ``eps32 / size`` in absolute terms: for z = 20,
    t = 1, sigmoid(z) rounds to 1 and the gradient to 0 instead of -1.7e-10 / size."""
    return float(np.finfo(np.float32).eps) / size


def extreme_values(dtype):
    big = F32_MAX if dtype == np.float32 else F64_MAX
    huge = 1e30 if dtype == np.float32 else 1e300
    return np.array([-big, -huge, -1000, -100, -20, -1, -1e-3, 0, 1e-3, 1, 20, 100, 1000,
                     huge, big], dtype=dtype)


def extreme_rows(dtype):
    """Rows of logits for softmax/logsumexp, each row's true results representable."""
    big = F32_MAX if dtype == np.float32 else F64_MAX
    huge = 1e30 if dtype == np.float32 else 1e300
    return np.array([
        [1000, -1000, 0, 1],
        [-1000, 1000, 500, 999],
        [-1000, -1000, -1000, -1000],
        [1000, 1000, 1000, 1000],
        [huge, -huge, 0, huge],
        [-huge, -huge, -huge, 3],
        [big, 0, -1000, 1],
        [big, big, 0, -big],
        [-big, -big, -big, -big],
        [big, -big, -big, -big],
    ], dtype=dtype)


# --------------------------------------------------------- float64 references
def ref_sigmoid(x):
    def one(v):
        if v >= 0:
            return 1.0 / (1.0 + math.exp(-v))
        e = math.exp(v)
        return e / (1.0 + e)
    return np.array([one(float(v)) for v in np.ravel(x)]).reshape(np.shape(x))


def ref_softplus(x):
    # log(1 + exp(v)) = max(v, 0) + log1p(exp(-|v|))
    return np.array([max(float(v), 0.0) + math.log1p(math.exp(-abs(float(v))))
                     for v in np.ravel(x)]).reshape(np.shape(x))


def ref_logsumexp(rows):
    with np.errstate(all="ignore"):   # the reference only has to be right
        return np.logaddexp.reduce(np.asarray(rows, dtype=np.float64), axis=-1)


def ref_log_softmax(rows):
    """``z - logsumexp(z)`` row by row in float64, from the shifted row ``z - max(z)``
    (so ``log 2`` is not lost beside 1e30: ties at 1e30 get log-probability -log 2)."""
    z = np.asarray(rows, dtype=np.float64)
    with np.errstate(all="ignore"):   # z - max may be -inf for float64 rows of +-max
        shifted = z - z.max(axis=-1, keepdims=True)
        return shifted - np.logaddexp.reduce(shifted, axis=-1, keepdims=True)


# ------------------------------------------------------------------ functional
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sigmoid_extremes(dtype):
    x = extreme_values(dtype)
    with strict():
        y = F.sigmoid(x)
    assert_close(y, ref_sigmoid(x), dtype)
    assert y[0] == 0 and y[-1] == 1 and y[7] == 0.5


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_softplus_and_log_sigmoid_extremes(dtype):
    x = extreme_values(dtype)
    with strict():
        sp = F.softplus(x)
        ls = F.log_sigmoid(x)
    assert_close(sp, ref_softplus(x), dtype)
    assert_close(ls, -ref_softplus(-x.astype(np.float64)), dtype)
    # the tutorials' np.log(sigmoid(-100)) is -inf in float32; log_sigmoid is -100
    assert ls[3] == pytest.approx(-100.0, rel=1e-7)
    assert sp[-1] == x[-1] and ls[0] == x[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_softmax_extremes(dtype):
    rows = extreme_rows(dtype)
    with strict():
        p = F.softmax(rows, axis=-1)
    expected = np.exp(ref_log_softmax(rows))
    assert_close(p, expected, dtype)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=RTOL[dtype])
    # and along the other axis
    with strict():
        q = F.softmax(rows.T, axis=0)
    np.testing.assert_array_equal(q, p.T)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_logsumexp_extremes(dtype):
    rows = extreme_rows(dtype)
    with strict():
        lse = F.logsumexp(rows, axis=-1)
        lse_keep = F.logsumexp(rows, axis=-1, keepdims=True)
        lse_cols = F.logsumexp(rows.T, axis=0)
    assert_close(lse, ref_logsumexp(rows), dtype)
    assert lse_keep.shape == (len(rows), 1)
    np.testing.assert_array_equal(lse_keep[:, 0], lse)
    np.testing.assert_array_equal(lse_cols, lse)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_log_softmax_extremes(dtype):
    # Rows whose log-probabilities are representable (a row holding both +max and
    # -max has a log-probability of -2 max, which no float of that type can hold).
    rows = extreme_rows(dtype)[:7]
    with strict():
        logp = F.log_softmax(rows, axis=-1)
    assert_close(logp, ref_log_softmax(rows), dtype)
    assert logp[0, 1] == pytest.approx(-2000.0, rel=1e-7)


# ----------------------------------------------------------------------- losses
SCALES = [1000.0, 1e30]


def _bce_case(scale):
    z = np.array([[scale, -scale, 0.5],
                  [-scale, scale, -2.0],
                  [scale, scale, -scale],
                  [-scale, -scale, 20.0]], dtype=np.float32)
    t = np.array([[1, 1, 0],
                  [1, 0, 1],
                  [0.3, 1, 0.25],
                  [0, 0.9, 1]], dtype=np.float32)
    return z, t


def ref_bce(z, t):
    z = z.astype(np.float64)
    t = t.astype(np.float64)
    # l = max(z, 0) - t z + log1p(exp(-|z|))
    per_element = np.array([max(a, 0.0) - b * a + math.log1p(math.exp(-abs(a)))
                            for a, b in zip(z.ravel(), t.ravel())])
    grad = (ref_sigmoid(z) - t) / z.size
    return per_element.mean(), grad


def check_loss_against_reference(loss, z, t, reference):
    """Run ``loss`` on ``(z, t)`` with floating-point warnings as errors; its value and
    gradient must match ``reference(z, t)`` (computed in float64). Returns the gradient."""
    with strict():
        value = loss(z, t)
        grad = loss.backward()
    expected_value, expected_grad = reference(z, t)
    assert math.isfinite(value)
    assert value == pytest.approx(expected_value, rel=1e-6)
    assert_close(grad, expected_grad, np.float32, grad_atol(z.size))
    return grad


@pytest.mark.parametrize("scale", SCALES)
def test_binary_cross_entropy_extreme_logits(scale):
    z, t = _bce_case(scale)
    check_loss_against_reference(snn.BinaryCrossEntropy(), z, t, ref_bce)
    # confidently wrong: z = -scale with t = 1 costs scale; right costs nothing
    one = snn.BinaryCrossEntropy()
    with strict():
        assert one(np.float32([[-scale]]), np.float32([[1]])) == pytest.approx(scale, rel=1e-6)
        assert one(np.float32([[scale]]), np.float32([[1]])) == 0.0
        np.testing.assert_array_equal(one.backward(), np.float32([[0.0]]))


def test_binary_cross_entropy_at_the_float32_limit():
    z = np.array([[F32_MAX, -F32_MAX], [-F32_MAX, F32_MAX]], dtype=np.float32)
    t = np.array([[1, 0], [0.5, 0.25]], dtype=np.float32)
    check_loss_against_reference(snn.BinaryCrossEntropy(), z, t, ref_bce)


def _ce_case(scale):
    z = np.array([[scale, -scale, 0.0],
                  [-scale, scale, scale / 2],
                  [scale, scale, -scale],
                  [-scale, -scale, -scale],
                  [-scale, 1.0, 2.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 2, 0])
    probs = np.array([[1, 0, 0],
                      [0.2, 0.5, 0.3],
                      [0.5, 0.5, 0],
                      [0.1, 0.1, 0.8],
                      [0, 0.25, 0.75]], dtype=np.float32)
    return z, labels, probs


def ref_cross_entropy(z, t):
    z = z.astype(np.float64)
    n, k = z.shape
    t = np.eye(k)[t] if t.ndim == 1 else t.astype(np.float64)
    log_p = ref_log_softmax(z)
    value = -np.sum(t * log_p) / n
    grad = (np.exp(log_p) * t.sum(axis=1, keepdims=True) - t) / n
    return value, grad


@pytest.mark.parametrize("targets", ["labels", "probabilities"])
@pytest.mark.parametrize("scale", SCALES)
def test_cross_entropy_extreme_logits(scale, targets):
    z, labels, probs = _ce_case(scale)
    t = labels if targets == "labels" else probs
    grad = check_loss_against_reference(snn.CrossEntropy(), z, t, ref_cross_entropy)
    # probabilities of each row still sum to one, so the gradient rows sum to 0
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-7)


# ---------------------------------------------------------- activation layers
def _layer_inputs(include_max):
    x = np.array([[-1e30, -1000, 1000, 1e30],
                  [1000, -1e30, 1e30, -1000]], dtype=np.float32)
    if include_max:
        x = np.vstack([x, np.float32([[F32_MAX, -F32_MAX, -1000, 1e30]])])
    return x


def _elementwise_expectations():
    """layer factory -> (y, dL/dx) expected for |x| >= 1000 and upstream gradient g."""
    return {
        "identity": (snn.Identity, lambda x: x, lambda x, g: g),
        "sigmoid": (snn.Sigmoid, lambda x: (x > 0).astype(x.dtype), lambda x, g: 0 * g),
        "tanh": (snn.Tanh, np.sign, lambda x, g: 0 * g),
        "relu": (snn.ReLU, lambda x: np.maximum(x, 0), lambda x, g: g * (x > 0)),
        "leaky_relu": (lambda: snn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, np.float32(0.2) * x),
                       lambda x, g: np.where(x > 0, g, np.float32(0.2) * g)),
        "elu": (lambda: snn.ELU(0.5), lambda x: np.where(x > 0, x, np.float32(-0.5)),
                lambda x, g: g * (x > 0)),
        "gelu": (snn.GELU, lambda x: np.maximum(x, 0), lambda x, g: g * (x > 0)),
    }


@pytest.mark.parametrize("include_max", [False, True], ids=["1e30", "float32-max"])
@pytest.mark.parametrize("name", list(_elementwise_expectations()))
def test_elementwise_activation_extremes(name, include_max):
    make, expected_y, expected_grad = _elementwise_expectations()[name]
    x = _layer_inputs(include_max)
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    layer = make()
    with strict():
        y = layer.forward(x.copy())
        grad_in = layer.backward(g.copy())
    assert y.dtype == np.float32 and grad_in.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad_in))
    np.testing.assert_array_equal(y, expected_y(x))
    np.testing.assert_array_equal(grad_in, expected_grad(x, g))


@pytest.mark.parametrize("include_max", [False, True], ids=["1e30", "float32-max"])
def test_softmax_layer_extremes(include_max):
    x = _layer_inputs(include_max)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    layer = snn.Softmax()
    with strict():
        y = layer.forward(x.copy())
        grad_in = layer.backward(g.copy())
    # each row has one clear maximum: y is its one-hot row, and the gradient of a
    # saturated softmax is y * (g - sum(g * y)) = 0
    np.testing.assert_array_equal(y, np.eye(4, dtype=np.float32)[np.argmax(x, axis=1)])
    assert grad_in.dtype == np.float32
    np.testing.assert_array_equal(grad_in, np.zeros_like(x))


def test_dropout_and_flatten_extremes():
    x = _layer_inputs(False)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    model = snn.Sequential([snn.Dropout(0.5)], seed=3).build((4,))
    dropout = model.layers[0]
    with strict():
        y = dropout.forward(x.copy(), training=True)
        grad_in = dropout.backward(g.copy())
    kept = y != 0
    assert np.any(kept) and not np.all(kept)
    np.testing.assert_array_equal(y, np.where(kept, 2 * x, 0))
    np.testing.assert_array_equal(grad_in, np.where(kept, 2 * g, 0))

    x3 = np.stack([x, -x], axis=1)      # (2, 2, 4)
    flatten = snn.Flatten()
    with strict():
        y = flatten.forward(x3)
        grad_in = flatten.backward(y * np.float32(2))
    np.testing.assert_array_equal(y, x3.reshape(2, 8))
    np.testing.assert_array_equal(grad_in, 2 * x3)
