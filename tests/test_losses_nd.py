"""Losses on outputs with middle axes, ``(N, ..., k)``, as a recurrent layer with
one prediction per time step will produce them.

Every loss works over the last axis. The element-wise losses average over all
elements; CrossEntropy averages over the ``N * ...`` positions. Each case is
checked three ways: against central differences in float64, against the same
loss on the output reshaped to 2-D ``(positions, k)``, and against PyTorch where
it is installed.
"""

from __future__ import annotations

import ast
import inspect
import math
from types import SimpleNamespace

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import metrics

TOL = 1e-6
SHAPES = [(4, 5, 3), (2, 3, 4, 3)]       # (N, T, k) and (N, H, W, k)
KINDS = ["mse", "mae", "huber-1.0", "huber-0.3", "bce-labels", "bce-probs",
         "ce-labels", "ce-onehot", "ce-probs", "ce-unnormalized",
         # k = 1 with the target missing its last axis: (N, T) for an (N, T, 1) output
         "mse-squeezed", "bce-squeezed"]


def _huber_residuals(rng, shape, delta):
    """Residuals on both sides of delta, never within 0.05 * delta of it (the kink)."""
    magnitude = np.where(rng.random(shape) < 0.5, rng.uniform(0.05, 0.9, shape),
                         rng.uniform(1.2, 3.0, shape)) * delta
    magnitude.flat[0], magnitude.flat[1] = 0.5 * delta, 2.0 * delta   # both branches present
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


def _case(kind, shape, rng):
    """(loss, output z of ``shape`` (k forced to 1 for the *-squeezed kinds), raw target y)."""
    if kind.endswith("squeezed"):
        shape = shape[:-1] + (1,)
    k = shape[-1]
    if kind == "mse":
        return snn.MSE(), rng.standard_normal(shape), rng.standard_normal(shape)
    if kind == "mse-squeezed":
        return snn.MSE(), rng.standard_normal(shape), rng.standard_normal(shape[:-1])
    if kind == "mae":
        t = rng.standard_normal(shape)
        r = rng.standard_normal(shape)
        r = np.where(r >= 0, r + 0.1, r - 0.1)          # |o - t| >= 0.1: away from the kink at 0
        return snn.MAE(), t + r, t
    if kind.startswith("huber"):
        delta = float(kind.split("-")[1])
        t = rng.standard_normal(shape)
        return snn.Huber(delta), t + _huber_residuals(rng, shape, delta), t
    if kind == "bce-labels":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal(shape), rng.integers(0, 2, shape)
    if kind == "bce-probs":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal(shape), rng.random(shape)
    if kind == "bce-squeezed":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal(shape), rng.integers(0, 2, shape[:-1])
    if kind == "ce-labels":
        return snn.CrossEntropy(), 2 * rng.standard_normal(shape), rng.integers(0, k, shape[:-1])
    if kind == "ce-onehot":
        return snn.CrossEntropy(), 2 * rng.standard_normal(shape), np.eye(k)[rng.integers(0, k, shape[:-1])]
    if kind == "ce-probs":
        p = rng.random(shape)
        return snn.CrossEntropy(), 2 * rng.standard_normal(shape), p / p.sum(axis=-1, keepdims=True)
    if kind == "ce-unnormalized":
        # rows that do not sum to 1 (values in [0, 1), as probabilities must be): the
        # gradient is (p * sum_k t - t) / P
        return snn.CrossEntropy(), 2 * rng.standard_normal(shape), rng.random(shape)
    raise AssertionError(kind)


def _prepared_case(kind, shape, seed):
    rng = np.random.default_rng([seed, KINDS.index(kind), len(shape)])
    loss, z, y = _case(kind, shape, rng)
    return loss, z, loss.prepare_target(y, z.shape[1:], np.dtype(np.float64))


def _central_differences(f, x, eps=1e-6):
    """``df/dx`` by ``(f(x + eps) - f(x - eps)) / (2 eps)``, one element at a time."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def _relative_error(a, b):
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_central_differences(kind, shape):
    loss, z, t = _prepared_case(kind, shape, seed=1)
    loss.forward(z.copy(), t)
    grad = loss.backward()
    assert grad.shape == z.shape and grad.dtype == np.float64
    numeric = _central_differences(lambda x: loss.forward(x, t), z.copy())
    error = _relative_error(grad, numeric)
    assert error < TOL, f"{kind} {shape}: relative error {error:.3g}"


# ----------------------------------------------------- N-D equals 2-D rows
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_nd_loss_equals_the_loss_on_2d_rows(kind, shape):
    loss, z, t = _prepared_case(kind, shape, seed=2)
    k = z.shape[-1]
    value = loss.forward(z, t)
    grad = loss.backward()

    rows = z.reshape(-1, k)
    row_targets = t.reshape(-1) if t.ndim < z.ndim else t.reshape(-1, k)
    if isinstance(loss, snn.CrossEntropy) and t.ndim < z.ndim:
        assert row_targets.dtype == np.int64          # labels stay labels
    value_2d = loss.forward(rows, row_targets)
    grad_2d = loss.backward()
    assert value == pytest.approx(value_2d, rel=1e-14, abs=1e-15)
    np.testing.assert_allclose(grad, grad_2d.reshape(z.shape), rtol=1e-14, atol=1e-16)


def test_cross_entropy_averages_over_positions_not_samples():
    # Equal logits over 4 classes: -log(1/4) at every one of the N * T positions.
    z = np.zeros((2, 3, 4))
    labels = np.array([[0, 1, 2], [3, 0, 1]])
    loss = snn.CrossEntropy()
    assert loss(z, labels) == pytest.approx(math.log(4), rel=1e-15)
    # dL/dz = (1/4 - onehot) / 6 at every position
    expected = (np.full((2, 3, 4), 0.25) - np.eye(4)[labels]) / 6
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-15)


def test_cross_entropy_of_a_strided_nd_output():
    """A recurrent layer may hand over a transposed view: (N, k, T) moved to (N, T, k)."""
    rng = np.random.default_rng(3)
    z_nkt = 3 * rng.standard_normal((4, 3, 5))
    view = np.moveaxis(z_nkt, 1, -1)                # (4, 5, 3), not contiguous
    assert not view.flags.c_contiguous
    labels = rng.integers(0, 3, (4, 5))
    loss = snn.CrossEntropy()
    value, grad = loss.forward(view, labels), loss.backward()
    contiguous = np.ascontiguousarray(view)
    assert value == pytest.approx(loss.forward(contiguous, labels), rel=1e-14)
    np.testing.assert_allclose(grad, loss.backward(), rtol=1e-14, atol=1e-16)
    assert grad.shape == (4, 5, 3)


@pytest.mark.parametrize("loss, target", [
    (snn.CrossEntropy(), np.array([[0, 1, 2], [2, 2, 0]])),
    (snn.BinaryCrossEntropy(), np.array([[[1, 0, 1]], [[0, 1, 0]]], dtype=np.float32)),
])
def test_nd_extreme_logits_stay_finite_in_float32(loss, target):
    z = np.array([[[1e30, -1e30, 0.0], [-1000, 1000, 2.0], [0.5, 1e30, -1e30]],
                  [[-1e30, -1e30, -1e30], [1000, 1000, -1000], [3.0, -2.0, 1e30]]],
                 dtype=np.float32)
    if isinstance(loss, snn.BinaryCrossEntropy):
        z = z[:, :1]                                 # (2, 1, 3), targets of the same shape
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow to 0 is fine
        value = loss(z, target)
        grad = loss.backward()
    assert math.isfinite(value) and value > 0
    assert grad.dtype == np.float32 and grad.shape == z.shape and np.all(np.isfinite(grad))
    if isinstance(loss, snn.CrossEntropy):
        np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-7)


# ------------------------------------------------------------------- PyTorch
def _torch_value(torch, kind, loss, o, t):
    """PyTorch's loss of the float64 tensor ``o`` (N, ..., k) and prepared target ``t``."""
    nn = torch.nn
    if kind.startswith("mse"):
        return nn.MSELoss()(o, t)
    if kind == "mae":
        return nn.L1Loss()(o, t)
    if kind.startswith("huber"):
        return nn.HuberLoss(delta=loss.delta)(o, t)
    if kind.startswith("bce"):
        return nn.BCEWithLogitsLoss()(o, t)
    # CrossEntropyLoss wants the classes on axis 1: logits (N, k, ...), labels
    # (N, ...), probability rows (N, k, ...).
    if t.dtype == torch.int64:
        return nn.CrossEntropyLoss()(o.movedim(-1, 1), t)
    return nn.CrossEntropyLoss()(o.movedim(-1, 1), t.movedim(-1, 1))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_nd_loss_matches_torch(kind, shape):
    torch = pytest.importorskip("torch")
    loss, z, t = _prepared_case(kind, shape, seed=4)
    value = loss.forward(z.copy(), t)
    grad = loss.backward()

    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    reference = _torch_value(torch, kind, loss, zt, torch.tensor(t))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ prepare_target
def test_cross_entropy_accepts_labels_per_time_step():
    labels = np.array([[0, 2, 1, 1, 0], [2, 2, 0, 1, 1]])          # (N, T) = (2, 5)
    for output_shape in [(5, 3), [5, 3]]:
        t = snn.CrossEntropy().prepare_target(labels, output_shape, np.dtype(np.float32))
        assert t.dtype == np.int64 and t.shape == (2, 5)
        np.testing.assert_array_equal(t, labels)
    # float labels that are whole numbers are labels too
    t = snn.CrossEntropy().prepare_target(labels.astype(float), (5, 3), np.dtype(np.float32))
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t, labels)


def test_cross_entropy_accepts_probability_rows_per_time_step():
    rows = np.eye(3)[[[0, 2, 1, 1, 0], [2, 2, 0, 1, 1]]]           # (2, 5, 3)
    t = snn.CrossEntropy().prepare_target(rows, (5, 3), np.dtype(np.float32))
    assert t.dtype == np.float32 and t.shape == (2, 5, 3)
    np.testing.assert_array_equal(t, rows)
    assert np.array_equal(snn.CrossEntropy.true_labels(t), [[0, 2, 1, 1, 0], [2, 2, 0, 1, 1]])


@pytest.mark.parametrize("argument", ["y", "y_val"])
def test_cross_entropy_rejects_labels_of_the_wrong_length(argument):
    with pytest.raises(ValueError, match=(
            rf"^{argument} must be integer labels \(n_samples, 5\) or one-hot/probability rows "
            r"\(n_samples, 5, 3\) to match the model's outputs of shape \(5, 3\) per sample, "
            r"got shape \(2, 6\)$")):
        snn.CrossEntropy().prepare_target(np.zeros((2, 6), dtype=int), (5, 3), np.dtype(np.float64),
                                          argument)


@pytest.mark.parametrize("bad, message", [
    (3, r"y must hold class labels in \[0, 3\) for a model with 3 outputs, got 3"),
    (-1, r"y must hold class labels in \[0, 3\) for a model with 3 outputs, got -1"),
    (0.5, r"y must hold integer class labels in \[0, 3\) for a model with 3 outputs, got 0.5 "
          r"\(first at sample 1\)"),
    (np.nan, r"y contains NaN or infinity"),
])
def test_cross_entropy_rejects_bad_labels_per_time_step(bad, message):
    labels = np.zeros((2, 5))
    labels[1, 3] = bad
    with pytest.raises(ValueError, match=message):
        snn.CrossEntropy().prepare_target(labels, (5, 3), np.dtype(np.float64))


def test_cross_entropy_rejects_negative_probabilities_per_time_step():
    rows = np.full((2, 5, 3), 1 / 3)
    rows[0, 4] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match=r"y probabilities must be in \[0, 1\].*got 1.5 "
                                         r"\(first at sample 0\)"):
        snn.CrossEntropy().prepare_target(rows, (5, 3), np.dtype(np.float64))


def test_regression_accepts_targets_without_the_single_last_axis():
    y = np.arange(10.0).reshape(2, 5)                              # (N, T) for a (T, 1) output
    for loss in (snn.MSE(), snn.MAE(), snn.Huber(), snn.BinaryCrossEntropy()):
        t = loss.prepare_target(y / 10, (5, 1), np.dtype(np.float32))
        assert t.dtype == np.float32 and t.shape == (2, 5, 1)
        np.testing.assert_array_equal(t[..., 0], (y / 10).astype(np.float32))
    full = snn.MSE().prepare_target(y[..., None], (5, 1), np.dtype(np.float64))
    np.testing.assert_array_equal(full[..., 0], y)


def test_regression_rejects_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=(
            r"^y must have shape \(n_samples, 5, 1\) or \(n_samples, 5\) to match the model's "
            r"outputs of shape \(5, 1\) per sample, got shape \(2, 6\)$")):
        snn.MSE().prepare_target(np.zeros((2, 6)), (5, 1), np.dtype(np.float64))
    with pytest.raises(ValueError, match=(
            r"^target must have shape \(n_samples, 5, 2\) to match the model's outputs of shape "
            r"\(5, 2\) per sample, got shape \(2, 5\)$")):
        snn.MSE().prepare_target(np.zeros((2, 5)), (5, 2), np.dtype(np.float64), "target")


def test_binary_cross_entropy_rejects_values_outside_0_1_per_time_step():
    y = np.zeros((2, 5))
    y[1, 2] = 2.0
    with pytest.raises(ValueError, match=r"y must hold labels 0 and 1 .* got values in \[0.0, 2.0\]"):
        snn.BinaryCrossEntropy().prepare_target(y, (5, 1), np.dtype(np.float64))


@pytest.mark.parametrize("loss, y", [
    (snn.MSE(), np.array([0.5, 1.0, 2.0])),
    (snn.CrossEntropy(), np.array([0, 2, 1])),
])
def test_an_int_output_shape_means_k_outputs(loss, y):
    k = 1 if isinstance(loss, snn.MSE) else 3
    from_int = loss.prepare_target(y, k, np.dtype(np.float64))
    np.testing.assert_array_equal(from_int, loss.prepare_target(y, (k,), np.dtype(np.float64)))
    assert from_int.shape == ((3, 1) if k == 1 else (3,))


# ------------------------------------------------- labels and probabilities
def test_cross_entropy_labels_and_probabilities_on_3d_outputs():
    z = np.array([[[1.0, 3.0, 2.0], [0.0, -1.0, -2.0]],
                  [[5.0, 5.5, -1.0], [0.1, 0.2, 0.3]]])            # (N, T, k) = (2, 2, 3)
    np.testing.assert_array_equal(snn.CrossEntropy.predicted_labels(z), [[1, 0], [1, 2]])
    p = snn.CrossEntropy.probabilities(z)
    assert p.shape == (2, 2, 3)
    for n in range(2):
        for t in range(2):
            e = np.exp(z[n, t])
            np.testing.assert_allclose(p[n, t], e / e.sum(), rtol=1e-15)
    labels = np.array([[1, 0], [2, 2]])
    assert snn.CrossEntropy.true_labels(labels) is labels
    np.testing.assert_array_equal(snn.CrossEntropy.true_labels(np.eye(3)[labels]), labels)


def test_binary_cross_entropy_labels_and_probabilities_on_3d_outputs():
    z = np.array([[[0.5], [-2.0], [0.0]], [[3.0], [-0.1], [7.0]]])   # (2, 3, 1)
    predicted = snn.BinaryCrossEntropy.predicted_labels(z)
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, [[1, 0, 0], [1, 0, 1]])   # last axis dropped
    t = snn.BinaryCrossEntropy().prepare_target([[1, 0, 1], [0.75, 0.25, 1]], (3, 1),
                                                np.dtype(np.float64))
    np.testing.assert_array_equal(snn.BinaryCrossEntropy.true_labels(t), [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_allclose(snn.BinaryCrossEntropy.probabilities(z), 1 / (1 + np.exp(-z)),
                               rtol=1e-15)
    wide = np.concatenate([z, -z], axis=-1)                          # (2, 3, 2): k = 2 is kept
    np.testing.assert_array_equal(snn.BinaryCrossEntropy.predicted_labels(wide),
                                  np.stack([[[1, 0, 0], [1, 0, 1]], [[0, 1, 0], [0, 1, 0]]], axis=-1))


# -------------------------------------------------------------------- metrics
def test_accuracy_over_all_positions():
    y_true = np.array([[0, 1, 2], [2, 2, 0]])
    y_pred = np.array([[0, 1, 1], [2, 0, 0]])
    assert metrics.accuracy(y_true, y_pred) == 4 / 6
    # the same from logits through the loss
    z = np.eye(3)[y_pred] * 5.0
    assert metrics.accuracy(y_true, snn.CrossEntropy.predicted_labels(z)) == 4 / 6


def test_regression_metrics_on_3d_outputs():
    y_true = np.array([[[1.0], [2.0]], [[3.0], [5.0]]])              # (2, 2, 1)
    y_pred = np.array([[[1.5], [2.0]], [[2.0], [7.0]]])
    # residuals 0.5, 0, -1, 2 over all four elements
    assert metrics.mse(y_true, y_pred) == pytest.approx((0.25 + 0 + 1 + 4) / 4)
    assert metrics.mae(y_true, y_pred) == pytest.approx((0.5 + 0 + 1 + 2) / 4)
    # r2 per flattened column (position 0, position 1), then averaged:
    # column 0: SS_res = 1.25, SS_tot = 2 -> 0.375; column 1: SS_res = 4, SS_tot = 4.5 -> 1/9
    assert metrics.r2(y_true, y_pred) == pytest.approx((0.375 + 1 / 9) / 2)
    assert metrics.r2(y_true, y_pred) == metrics.r2(y_true.reshape(2, 2), y_pred.reshape(2, 2))


@pytest.mark.parametrize("name", ["accuracy", "mse", "mae", "r2"])
def test_metrics_refuse_shapes_that_would_broadcast(name):
    with pytest.raises(ValueError, match=r"y_true and y_pred must have the same shape, got \(4,\) and \(4, 1\)"):
        getattr(metrics, name)(np.zeros(4), np.zeros((4, 1)))


def test_metric_names_for_a_loss():
    for loss in (snn.CrossEntropy(), snn.BinaryCrossEntropy(), SimpleNamespace(classification=True)):
        assert metrics.available(loss) is metrics.CLASSIFICATION_METRICS
        assert metrics.default_names(loss) == ["accuracy"]
    for loss in (snn.MSE(), snn.MAE(), snn.Huber(), SimpleNamespace(classification=False)):
        assert metrics.available(loss) is metrics.REGRESSION_METRICS
        assert metrics.default_names(loss) == ["mae", "r2"]
    assert set(metrics.default_names(snn.MSE())) <= set(metrics.available(snn.MSE()))


def test_check_names():
    metrics.check_names(None, snn.MSE())
    metrics.check_names([], snn.CrossEntropy())
    metrics.check_names(["mse", "r2"], snn.Huber())
    metrics.check_names(("accuracy",), snn.CrossEntropy())
    with pytest.raises(ValueError) as error:
        metrics.check_names(["mae", "accuracy"], snn.MSE())
    assert str(error.value) == "metrics must be names from ['mae', 'mse', 'r2'] for MSE, got 'accuracy'"
    with pytest.raises(ValueError) as error:
        metrics.check_names(["r2"], snn.BinaryCrossEntropy())
    assert str(error.value) == ("metrics must be names from ['accuracy'] for BinaryCrossEntropy, "
                                "got 'r2'")


def test_metrics_module_does_not_import_losses():
    tree = ast.parse(inspect.getsource(metrics))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not any("losses" in name for name in imported), imported
