"""Sample weights in every loss, and ``_validation.as_sample_weight``.

A weighted loss is ``L = sum_n w_n l_n / sum_n w_n`` with ``l_n`` the mean loss of
sample n's elements (CrossEntropy: of its positions). Each loss is checked against
central differences, against PyTorch's unreduced losses weighted the same way
(and PyTorch's class weights, which are exactly such a weighted mean), against
repeated samples, and at the extremes against per-sample references.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import scratchnn as snn
from scratchnn._validation import as_sample_weight
from scratchnn.gradcheck import numerical_gradient, relative_error

KINDS = ["mse", "mae", "huber", "bce-labels", "bce-probs", "ce-labels", "ce-onehot", "ce-probs"]
ELEMENTWISE = [kind for kind in KINDS if not kind.startswith("ce")]
SHAPES = [(6, 3), (6, 1), (4, 3, 3)]          # (N, k); (N, 1) with targets (N,); (N, T, k)
# every (kind, shape) pair; CrossEntropy of one class is left out (its loss is 0)
CASES = [(kind, shape) for kind in KINDS for shape in SHAPES
         if not (kind.startswith("ce") and shape[-1] == 1)]
DELTA = 0.7
F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)


def strict():
    """Overflow, invalid operations and division by zero raise FloatingPointError."""
    return np.errstate(over="raise", invalid="raise", divide="raise")


def _raw_case(kind, shape, rng):
    """(loss, output z, raw target) with residuals away from the kinks of MAE and Huber."""
    k = shape[-1]
    z = 2 * rng.standard_normal(shape)
    if kind == "mse":
        return snn.MSE(), z, rng.standard_normal(shape)
    if kind == "mae":
        t = rng.standard_normal(shape)
        r = rng.standard_normal(shape)
        return snn.MAE(), t + np.where(r >= 0, r + 0.1, r - 0.1), t     # |r| >= 0.1
    if kind == "huber":
        t = rng.standard_normal(shape)
        magnitude = np.where(rng.random(shape) < 0.5, rng.uniform(0.05, 0.9, shape),
                             rng.uniform(1.2, 3.0, shape)) * DELTA       # never near delta
        magnitude.flat[0], magnitude.flat[1] = 0.5 * DELTA, 2.0 * DELTA  # both branches
        return snn.Huber(DELTA), t + magnitude * rng.choice([-1.0, 1.0], size=shape), t
    if kind == "bce-labels":
        return snn.BinaryCrossEntropy(), z, rng.integers(0, 2, shape)
    if kind == "bce-probs":
        return snn.BinaryCrossEntropy(), z, rng.random(shape)
    labels = rng.integers(0, k, shape[:-1])
    if kind == "ce-labels":
        return snn.CrossEntropy(), z, labels
    if kind == "ce-onehot":
        return snn.CrossEntropy(), z, np.eye(k)[labels]
    p = rng.random(shape)
    return snn.CrossEntropy(), z, p / p.sum(axis=-1, keepdims=True)


def make_case(kind, shape, seed, dtype=np.float64):
    """(loss, z, prepared target, weights): weights in [0.2, 3] with two zeros."""
    rng = np.random.default_rng([seed, KINDS.index(kind), *shape])
    loss, z, y = _raw_case(kind, shape, rng)
    if shape[-1] == 1:
        y = y[..., 0]                              # targets (N,) for an (N, 1) output
    target = loss.prepare_target(y, shape[1:], np.dtype(dtype))
    w = rng.uniform(0.2, 3.0, shape[0])
    w[1] = w[-1] = 0.0
    return loss, z.astype(dtype), target, w.astype(dtype)


def value_and_grad(loss, z, t, w=None):
    with strict():
        value = loss.forward(z, t) if w is None else loss.forward(z, t, w)
        grad = loss.backward()
    assert grad.shape == z.shape and grad.dtype == z.dtype
    return value, grad


# ------------------------------------------------------------------- gradients
@pytest.mark.parametrize("kind, shape", CASES)
def test_weighted_gradient_matches_central_differences(kind, shape):
    loss, z, t, w = make_case(kind, shape, seed=1)
    _, grad = value_and_grad(loss, z.copy(), t, w)
    x = z.copy()
    numeric = numerical_gradient(lambda: loss.forward(x, t, w), x)
    error = relative_error(grad, numeric)
    assert error < 1e-6, f"{kind} {shape}: relative error {error:.3g}"
    # the samples of weight 0 get no gradient; every other sample does
    assert not grad[1].any() and not grad[-1].any()
    assert all(np.abs(grad[n]).max() > 0 for n in range(2, len(z) - 1))


# --------------------------------------------------------------------- PyTorch
def torch_weighted(torch, kind, loss, z, t, w):
    """sum_n w_n l_n / sum w with l_n PyTorch's unreduced loss averaged over sample n."""
    functional = torch.nn.functional
    o = torch.tensor(z, requires_grad=True)
    target = torch.tensor(t)
    if kind == "mse":
        per_element = functional.mse_loss(o, target, reduction="none")
    elif kind == "mae":
        per_element = functional.l1_loss(o, target, reduction="none")
    elif kind == "huber":
        per_element = functional.huber_loss(o, target, reduction="none", delta=loss.delta)
    elif kind.startswith("bce"):
        per_element = functional.binary_cross_entropy_with_logits(o, target, reduction="none")
    else:      # classes on axis 1: logits (N, k, ...), labels (N, ...) or rows (N, k, ...)
        rows = target if target.dtype == torch.int64 else target.movedim(-1, 1)
        per_element = functional.cross_entropy(o.movedim(-1, 1), rows, reduction="none")
    weights = torch.tensor(w)
    value = (per_element.reshape(len(z), -1).mean(dim=1) * weights).sum() / weights.sum()
    value.backward()
    return value.item(), o.grad.numpy()


@pytest.mark.parametrize("kind, shape", CASES)
def test_weighted_loss_matches_torch(kind, shape):
    torch = pytest.importorskip("torch")
    loss, z, t, w = make_case(kind, shape, seed=2)
    value, grad = value_and_grad(loss, z, t, w)
    expected_value, expected_grad = torch_weighted(torch, kind, loss, z, t, w)
    assert value == pytest.approx(expected_value, rel=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-15)


def test_cross_entropy_sample_weights_are_torch_class_weights():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = 3 * rng.standard_normal((40, 4))
    labels = rng.integers(0, 4, 40)
    class_weight = np.array([0.5, 2.0, 0.0, 1.3])          # class 2 weighs nothing
    loss = snn.CrossEntropy()
    value, grad = value_and_grad(loss, z, labels, class_weight[labels])

    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(labels),
                                                 weight=torch.tensor(class_weight))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert not grad[labels == 2].any() and (labels == 2).any()


# ---------------------------------------------------- what a weight means
@pytest.mark.parametrize("kind, shape", CASES)
def test_integer_weights_are_repeated_samples(kind, shape):
    loss, z, t, _ = make_case(kind, (3,) + shape[1:], seed=4)
    value, grad = value_and_grad(loss, z, t, np.array([2.0, 0.0, 3.0]))
    rows = [0, 0, 2, 2, 2]
    repeated_value, repeated_grad = value_and_grad(loss, z[rows], t[rows])
    assert value == pytest.approx(repeated_value, rel=1e-12)
    # the gradient of a repeated sample is the sum over its copies
    np.testing.assert_allclose(grad[0], repeated_grad[:2].sum(axis=0), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(grad[2], repeated_grad[2:].sum(axis=0), rtol=1e-12, atol=1e-16)
    assert not grad[1].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, shape", CASES)
def test_unit_weights_are_the_unweighted_loss(kind, shape, dtype):
    loss, z, t, _ = make_case(kind, shape, seed=5, dtype=dtype)
    value, grad = value_and_grad(loss, z, t)
    for weight in (1.0, 1e-30, 1e30):              # only the ratios of the weights matter
        weighted_value, weighted_grad = value_and_grad(loss, z, t, np.full(len(z), weight, dtype))
        assert weighted_value == pytest.approx(value, rel=1e-12 if dtype == np.float64 else 1e-6)
        np.testing.assert_array_equal(weighted_grad, grad)   # the same coefficient, bit for bit


@pytest.mark.parametrize("kind, shape", CASES)
def test_scaling_every_weight_changes_nothing(kind, shape):
    loss, z, t, w = make_case(kind, shape, seed=6)
    value, grad = value_and_grad(loss, z, t, w)
    for c in (1e-300, 1e-3, 7.5, 1e300):
        scaled_value, scaled_grad = value_and_grad(loss, z, t, w * c)
        assert scaled_value == pytest.approx(value, rel=1e-13)
        np.testing.assert_allclose(scaled_grad, grad, rtol=1e-13, atol=1e-18)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, shape", CASES)
def test_all_zero_weights_weigh_nothing(kind, shape, dtype):
    loss, z, t, _ = make_case(kind, shape, seed=7, dtype=dtype)
    value, grad = value_and_grad(loss, z, t, np.zeros(len(z), dtype))
    assert value == 0.0 and not grad.any()


def test_a_weighted_call_leaves_no_trace_in_the_next_one():
    loss, z, t, w = make_case("ce-labels", (6, 3), seed=8)
    value, grad = value_and_grad(loss, z, t)
    value_and_grad(loss, z, t, w)
    again_value, again_grad = value_and_grad(loss, z, t)
    assert again_value == value
    np.testing.assert_array_equal(again_grad, grad)
    assert value_and_grad(loss, z, t, w)[0] != value       # the weights did change the loss


def test_weights_are_read_not_written_and_must_have_one_per_sample():
    loss, z, t, w = make_case("mse", (6, 3), seed=9)
    before = w.copy()
    w.flags.writeable = False
    value_and_grad(loss, z, t, w)
    np.testing.assert_array_equal(w, before)
    with pytest.raises(ValueError, match=r"^sample_weight must have shape \(6,\), one weight "
                                         r"per sample, got shape \(1,\)$"):
        loss.forward(z, t, np.ones(1))
    with pytest.raises(RuntimeError, match="before forward"):   # not the earlier batch's
        loss.backward()


def test_a_loss_written_without_sample_weight_is_still_callable():
    class Sum(snn.losses.Loss):
        def forward(self, output, target):
            return float(np.sum(output - target))

    assert Sum()(np.ones((2, 1)), np.zeros((2, 1))) == 2.0


# -------------------------------------------------------------------- extremes
@pytest.mark.parametrize("loss", [snn.BinaryCrossEntropy(), snn.CrossEntropy()])
def test_float32_logits_of_1000_with_extreme_weights(loss):
    z64 = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 2.0], [1000.0, 1000.0, -1000.0],
                    [0.5, -1000.0, 1000.0], [3.0, -2.0, 1.0]])
    if isinstance(loss, snn.CrossEntropy):
        y = np.array([1, 1, 2, 0, 0])
    else:
        y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [1, 0, 0], [0.5, 0.5, 0.5]])
    for w in ([1e-30, 1e30, 1.0, 0.0, 1e30], [1e30, 1, 1, 1, 1], [1e-30] * 5, [1e30] * 5):
        w64 = np.array(w)
        expected_value, expected_grad = value_and_grad(loss, z64, loss.prepare_target(
            y, 3, np.dtype(np.float64)), w64)
        value, grad = value_and_grad(loss, z64.astype(np.float32), loss.prepare_target(
            y, 3, np.dtype(np.float32)), w64.astype(np.float32))
        assert math.isfinite(value) and value > 0
        assert value == pytest.approx(expected_value, rel=1e-6)
        assert np.isfinite(grad).all()
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-5,
                                   atol=1e-7 * np.abs(expected_grad).max())


def test_one_huge_weight_dominates():
    loss, z, t, _ = make_case("ce-labels", (5, 3), seed=10)
    w = np.array([1e30, 1.0, 1.0, 1.0, 1.0])
    single = [loss.forward(z[n:n + 1], t[n:n + 1]) for n in range(5)]
    expected = sum(Fraction(a) * Fraction(b) for a, b in zip(w, single)) / sum(map(Fraction, w))
    for dtype, rel in ((np.float64, 1e-14), (np.float32, 1e-6)):
        value, grad = value_and_grad(loss, z.astype(dtype), t, w.astype(dtype))
        assert value == pytest.approx(float(expected), rel=rel)
        assert value == pytest.approx(single[0], rel=1e-6)
        assert np.isfinite(grad).all() and np.abs(grad[1:]).max() < 1e-29


def exact_ratio(weights, n):
    """w_n / sum(w) as a Fraction."""
    return Fraction(float(weights[n])) / sum(Fraction(float(v)) for v in weights)


def as_float(value: Fraction) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


@pytest.mark.parametrize("weights", [[1e-30, 1e30, 1.0, 0.0], [1.0, 1.0, 1.0, 1e30],
                                     [0.0, 0.0, 1.0, 0.0], [1e-30] * 4, [0.0, 1.0, 1.0, 1.0]])
@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "cross_entropy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_largest_floats_match_per_sample_references(name, dtype, weights):
    """+-max in outputs and targets. The reference is each sample's own unweighted
    loss, computed in float64 (and exactly, for the unbounded MSE gradient), combined
    with the exact weight ratios."""
    big = float(np.finfo(dtype).max)
    corners = np.array([[big, -big], [-big, big], [big, big], [0.0, -big]])
    loss = snn.losses.get_loss(name)
    if name == "cross_entropy":
        y = [0, 1, 1, 0]
    elif name == "bce":
        y = np.array([[1, 0], [0.5, 1], [0, 0], [1, 1]])
    else:
        y = corners[::-1].copy()
    z, t = corners.astype(dtype), loss.prepare_target(y, 2, np.dtype(dtype))
    w = np.array(weights, dtype)
    value, grad = value_and_grad(loss, z, t, w)

    z64, t64 = z.astype(np.float64), (t.astype(np.float64) if t.dtype.kind == "f" else t)
    ratios = [exact_ratio(w, n) for n in range(4)]
    single = [value_and_grad(loss, z64[n:n + 1], t64[n:n + 1]) for n in range(4)]
    if any(math.isinf(s[0]) for s, r in zip(single, ratios) if r):
        expected = math.inf
    else:
        expected = as_float(sum(r * Fraction(s[0]) for s, r in zip(single, ratios) if r))
    rel = 1e-12 if dtype == np.float64 else 1e-6
    assert value == expected or value == pytest.approx(expected, rel=rel)
    if name == "mse":       # 2 r w_n / (K sum(w)), exactly; inf only beyond the float range
        residual = [[Fraction(float(a)) - Fraction(float(b)) for a, b in zip(row, target)]
                    for row, target in zip(z, t)]
        expected_grad = np.array([[as_float(2 * r * ratios[n] / 2) for r in residual[n]]
                                  for n in range(4)])
    else:
        expected_grad = np.array([float(ratios[n]) * s[1][0] for n, s in enumerate(single)])
    with np.errstate(over="ignore"):                 # float32: overflow to inf is the truth
        expected_grad = expected_grad.astype(dtype)
    assert not np.isnan(grad).any()
    np.testing.assert_allclose(grad, expected_grad, rtol=rel, atol=0)


def _exp(x: Decimal) -> Decimal:
    """``x.exp()``, 0 far below the float range (Decimal's exp of -3.6e308 overflows)."""
    return Decimal(0) if x < -2000 else x.exp()


def exact_cross_entropy_rows(z_rows, t_rows) -> tuple[list[Fraction], np.ndarray]:
    """-sum_k t log softmax(z) of each row and softmax(z), in 60-digit decimal from
    the exact floats."""
    losses, probabilities = [], []
    with decimal.localcontext() as context:
        context.prec = 60
        for z, t in zip(z_rows, t_rows):
            z = [Decimal(float(v)) for v in z]
            m = max(z)
            total = sum(_exp(v - m) for v in z)
            lse = m + total.ln()
            losses.append(Fraction(sum(Decimal(float(w)) * (lse - v) for v, w in zip(z, t))))
            probabilities.append([float(_exp(v - m) / total) for v in z])
    return losses, np.array(probabilities)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("targets", ["labels", "rows"])
@pytest.mark.parametrize("positions", [1, 2])            # (N, k) and (N, T, k) outputs
def test_cross_entropy_at_both_ends_of_the_range_with_weights(dtype, targets, positions):
    big = float(np.finfo(dtype).max)
    z = np.array([[big, -big, 0.0], [1.0, 2.0, 3.0], [-big, 0.0, big], [0.5, big, -big]], dtype)
    labels = np.array([1, 0, 0, 2])          # -log p = 2 max (beyond the float range) for three
    rows = np.eye(3)[labels] if targets == "labels" else np.array(
        [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    t = labels if targets == "labels" else rows.astype(dtype)
    per_row, softmax = exact_cross_entropy_rows(z, rows.astype(dtype))
    for weights in ([0.25, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1e-30, 1.0, 1e30, 1.0]):
        w = np.array(weights[: 4 // positions], dtype)
        # positions 2: samples of two consecutive rows, each sample's loss their mean
        per_sample = [sum(per_row[n * positions:(n + 1) * positions]) / positions
                      for n in range(len(w))]
        ratios = [exact_ratio(w, n) for n in range(len(w))]
        expected = as_float(sum(r * l for r, l in zip(ratios, per_sample)))
        output = z.reshape(len(w), positions, 3) if positions > 1 else z
        target = t.reshape((len(w), positions) + t.shape[1:]) if positions > 1 else t
        value, grad = value_and_grad(snn.CrossEntropy(), output, target, w)
        assert value == pytest.approx(expected, rel=1e-12 if dtype == np.float64 else 1e-6)
        # dl/dz = (p sum_k t - t) / positions for each row of a sample
        coefficient = np.repeat([float(r) / positions for r in ratios], positions)[:, None]
        expected_grad = coefficient * (softmax * rows.sum(axis=1, keepdims=True) - rows)
        np.testing.assert_allclose(grad.reshape(4, 3), expected_grad, rtol=1e-6,
                                   atol=float(np.finfo(dtype).eps))


def test_mse_of_a_sample_beyond_float64_whose_weighted_share_fits():
    # l_1 = (1e200)^2 = 1e400 is beyond float64; weighted by 1e-300 it is 1e100
    z, t = np.array([[0.0], [1e200]]), np.zeros((2, 1))
    value, grad = value_and_grad(snn.MSE(), z, t, np.array([1.0, 1e-300]))
    assert value == pytest.approx(1e100, rel=1e-12)
    assert grad[0, 0] == 0.0 and grad[1, 0] == pytest.approx(2e-100, rel=1e-12)


@pytest.mark.parametrize("loss", [snn.MSE(), snn.MAE(), snn.Huber(), snn.Huber(delta=1e300)])
def test_an_overflowed_residual_of_weight_zero_is_ignored(loss):
    z = np.array([[3e38], [0.5], [0.0]], np.float32)
    t = np.array([[-3e38], [0.0], [0.0]], np.float32)
    value, grad = value_and_grad(loss, z, t, np.array([0.0, 1.0, 1.0], np.float32))
    rest_value, rest_grad = value_and_grad(loss, z[1:], t[1:])
    assert value == pytest.approx(rest_value, rel=1e-12)
    assert grad[0, 0] == 0.0
    np.testing.assert_array_equal(grad[1:], rest_grad)
    zero_value, zero_grad = value_and_grad(loss, z, t, np.zeros(3, np.float32))
    assert zero_value == 0.0 and not zero_grad.any()


# ------------------------------------------------------------ as_sample_weight
def test_as_sample_weight_accepts_sequences_and_series():
    pandas = pytest.importorskip("pandas")
    for value in ([1, 0, 2.5], (1, 0, 2.5), np.array([1, 0, 2.5]), pandas.Series([1, 0, 2.5]),
                  np.array([Fraction(1), 0, Fraction(5, 2)], dtype=object),
                  np.array([1.0, 9.0, 0.0, 9.0, 2.5])[::2]):
        for dtype in (np.float32, np.float64):
            w = as_sample_weight(value, 3, np.dtype(dtype))
            assert w.dtype == dtype and w.shape == (3,) and w.flags.c_contiguous
            np.testing.assert_array_equal(w, [1.0, 0.0, 2.5])
    assert as_sample_weight([1e-30, 1e30], 2, np.float32).tolist() == [
        float(np.float32(1e-30)), float(np.float32(1e30))]
    assert as_sample_weight(np.array([1, 2], np.int8), 2, np.float64).tolist() == [1.0, 2.0]


def test_as_sample_weight_never_hands_back_the_callers_array():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    result = as_sample_weight(w, 3, np.float32)
    assert not np.shares_memory(result, w)
    result[0] = 99.0
    assert w.tolist() == [1.0, 2.0, 3.0]
    read_only = np.array([1.0, 2.0])
    read_only.flags.writeable = False
    assert as_sample_weight(read_only, 2, np.float64).flags.writeable


@pytest.mark.parametrize("value, error, message", [
    (np.ones((10, 2)), ValueError,
     r"^sample_weight must be a 1-D array \(10 non-negative weights, one per sample\), "
     r"got shape \(10, 2\)$"),
    (3.0, ValueError, r"^sample_weight must be a 1-D array .*got a scalar$"),
    (np.ones(20), ValueError,
     r"^sample_weight has 20 values, but X has 10 samples; expected one weight per sample$"),
    ([1.0] * 9 + [math.nan], ValueError, r"^sample_weight contains NaN or infinity \(first at sample 9\)"),
    ([1.0] * 9 + [-math.inf], ValueError, r"^sample_weight contains NaN or infinity"),
    ([1.0] * 8 + [-0.5, -1], ValueError,
     r"^sample_weight must be non-negative, got -0.5 \(first at sample 8\)$"),
    ([1.0] * 9 + [1e39], ValueError, r"^sample_weight contains a value out of float32 range "
                                     r"\(first at sample 9: 1e\+39\)"),
    ([1.0] * 9 + [10 ** 400], ValueError, r"^sample_weight must hold non-negative weights within "
                                          r"the float64 range"),
    (np.zeros(10), ValueError, r"^sample_weight must contain at least one non-zero weight: "
                               r"all 10 are 0$"),
    ([-0.0] * 10, ValueError, r"non-zero weight"),
    ([True] * 10, TypeError, r"^sample_weight must hold numbers .*got booleans"),
    (["1"] * 10, TypeError, r"^sample_weight must be numeric"),
    ([1.0] * 9 + [None], TypeError, r"^sample_weight must be numeric .*sample 9 holds None"),
    ([[1.0], [1.0, 2.0]] * 5, ValueError, r"^sample_weight must be a rectangular array"),
])
def test_as_sample_weight_refusals_name_the_argument(value, error, message):
    with pytest.raises(error, match=message):
        as_sample_weight(value, 10, np.dtype(np.float32))
    with pytest.raises(error, match=r"^w\b"):
        as_sample_weight(value, 10, np.dtype(np.float32), argument="w")


def test_all_zero_weights_message_says_weight_and_zero():
    with pytest.raises(ValueError) as refused:
        as_sample_weight([0, 0, 0], 3, np.float64)
    assert re.search(r"(.*weight.*zero.*)|(.*zero.*weight.*)", str(refused.value))
