"""Gradient checks: every layer and loss against central differences in float64
(``scratchnn.gradcheck``), and against PyTorch where it is installed.

The layer cases live in ``LAYER_CASES``, keyed by the class name used in
``scratchnn.layers.LAYERS``; ``test_every_registered_layer_has_a_gradient_case``
fails when a layer is added to the registry without a case here.
"""

from __future__ import annotations

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.layers import LAYERS

TOL = 1e-6

# A few feature sizes and the batch sizes, drawn once from a seeded generator.
_SHAPE_RNG = np.random.default_rng(20240601)
FEATURE_SIZES = sorted(int(f) for f in _SHAPE_RNG.choice(np.arange(2, 9), size=3, replace=False))
BATCH_SIZES = [1, int(_SHAPE_RNG.integers(2, 6))]
SHAPES = [(n, f) for n in BATCH_SIZES for f in FEATURE_SIZES]


def away_from_kinks(x: np.ndarray, margin: float = 1e-2) -> np.ndarray:
    """Push every value at least ``margin`` away from 0 (ReLU, LeakyReLU, ELU kinks),
    far more than gradcheck's step of 1e-6."""
    return np.where(x >= 0, x + margin, x - margin)


def random_input(rng: np.random.Generator, shape: tuple, scale: float = 1.5) -> np.ndarray:
    return away_from_kinks(scale * rng.standard_normal(shape))


def assert_gradients_match(errors: dict, expected_keys: set) -> None:
    assert set(errors) == expected_keys, errors
    for name, error in errors.items():
        assert error < TOL, f"{name}: relative error {error:.3g} >= {TOL} ({errors})"


# ----------------------------------------------------------------------------- layers
# name in LAYERS -> list of (factory, input rank, training, parameter names)
LAYER_CASES = {
    "Dense": [
        (lambda: snn.Dense(4), 2, False, {"W", "b"}),
        (lambda: snn.Dense(3, use_bias=False), 2, False, {"W"}),
        (lambda: snn.Dense(5, kernel_initializer="standard_normal",
                           bias_initializer="standard_normal"), 2, False, {"W", "b"}),
    ],
    "Identity": [(lambda: snn.Identity(), 2, False, set())],
    "Sigmoid": [(lambda: snn.Sigmoid(), 2, False, set())],
    "Tanh": [(lambda: snn.Tanh(), 2, False, set())],
    "ReLU": [(lambda: snn.ReLU(), 2, False, set())],
    "LeakyReLU": [(lambda: snn.LeakyReLU(), 2, False, set()),
                  (lambda: snn.LeakyReLU(alpha=0.3), 2, False, set())],
    "ELU": [(lambda: snn.ELU(), 2, False, set()),
            (lambda: snn.ELU(alpha=0.7), 2, False, set())],
    "GELU": [(lambda: snn.GELU(), 2, False, set())],
    "Softmax": [(lambda: snn.Softmax(), 2, False, set())],
    "Dropout": [(lambda: snn.Dropout(0.5), 2, True, set()),
                (lambda: snn.Dropout(0.2), 2, True, set()),
                (lambda: snn.Dropout(0.5), 2, False, set())],
    "Flatten": [(lambda: snn.Flatten(), 3, False, set()), (lambda: snn.Flatten(), 4, False, set())],
    "Reshape": [(lambda: snn.Reshape((-1, 2)), 3, False, set())],
    # rank 4: images (N, H, W, 2), channels last (tests/test_conv.py has more shapes)
    "Conv2D": [(lambda: snn.Conv2D(3, 3), 4, False, {"W", "b"}),
               (lambda: snn.Conv2D(2, (2, 3), stride=2, padding="same", dilation=(1, 2)), 4, False,
                {"W", "b"}),
               (lambda: snn.Conv2D(2, 3, padding=1, use_bias=False, activation="tanh"), 4, False, {"W"})],
    "MaxPool2D": [(lambda: snn.MaxPool2D(2), 4, False, set()),
                  (lambda: snn.MaxPool2D(3, stride=1, padding=1), 4, False, set())],
    "AvgPool2D": [(lambda: snn.AvgPool2D(2), 4, False, set()),
                  (lambda: snn.AvgPool2D(3, 2, "same", count_include_pad=False), 4, False, set())],
    "GlobalAveragePooling2D": [(lambda: snn.GlobalAveragePooling2D(), 4, False, set())],
    "BatchNormalization": [(lambda: snn.BatchNormalization(), 2, True, {"gamma", "beta"}),
                           (lambda: snn.BatchNormalization(), 4, True, {"gamma", "beta"}),
                           (lambda: snn.BatchNormalization(), 4, False, {"gamma", "beta"})],
    "RandomFlip": [(lambda: snn.RandomFlip(), 4, True, set()),
                   (lambda: snn.RandomFlip("horizontal_and_vertical"), 4, True, set()),
                   (lambda: snn.RandomFlip(), 4, False, set())],
    "RandomTranslation": [(lambda: snn.RandomTranslation(0.3), 4, True, set()),
                          (lambda: snn.RandomTranslation(0.2, 0.4), 4, False, set())],
    "LayerNormalization": [(lambda: snn.LayerNormalization(), 2, False, {"gamma", "beta"}),
                           (lambda: snn.LayerNormalization(), 4, False, {"gamma", "beta"})],
}

LAYER_PARAMS = [
    pytest.param(name, i, shape, id=f"{name}{i}-n{shape[0]}-f{shape[1]}")
    for name, cases in LAYER_CASES.items()
    for i in range(len(cases))
    for shape in SHAPES
]


def test_every_registered_layer_has_a_gradient_case():
    missing = set(LAYERS) - set(LAYER_CASES)
    assert not missing, f"layers without a gradient check: {sorted(missing)}"
    # and every case builds an instance of the registered class
    for name, cases in LAYER_CASES.items():
        assert name in LAYERS, f"gradient case for unregistered layer {name}"
        for factory, *_ in cases:
            assert type(factory()) is LAYERS[name]


@pytest.mark.parametrize("name, case, shape", LAYER_PARAMS)
def test_layer_gradient(name, case, shape):
    factory, rank, training, param_names = LAYER_CASES[name][case]
    n, f = shape
    seed = 1000 * case + 10 * n + f
    rng = np.random.default_rng(seed)
    if rank == 4:
        x = random_input(rng, (n, f + 1, f + 2, 2))
    elif rank == 3:
        x = random_input(rng, (n, f, f + 1))
    else:
        x = random_input(rng, (n, f))
    layer = factory()
    if name.endswith("Normalization"):
        # Normalized axes of 2 values make every output +-1 (a gradient near 0 that
        # central differences cannot resolve): give them 3 values or more.
        if rank == 2:
            x = random_input(rng, (n, f + 2))
        if training and x.size // x.shape[-1] < 3:
            x = np.concatenate([x, x[::-1] * 0.7 + 0.5, x * 0.3 - 0.2])
    # gradcheck's seed draws the loss's weights R: another seed than the input's, else
    # R is close to a multiple of x, a direction normalization removes.
    errors = snn.gradcheck(layer, x, training=training, seed=seed + 1)
    layer_name = f"{layer.kind}_0"
    assert_gradients_match(errors, {"input"} | {f"{layer_name}.{p}" for p in param_names})


def test_gelu_gradient_across_the_clip_at_ten():
    # GELU computes tanh from x clipped to [-10, 10]; the gradient must stay exact
    # on both sides of the clip and in the curved region near 0.
    x = np.array([[-12.0, -10.5, -9.5, -3.0, -0.7, 0.2, 1.1, 4.0, 9.5, 10.5, 12.0]])
    assert_gradients_match(snn.gradcheck(snn.GELU(), x, seed=3), {"input"})


def test_dropout_check_really_drops_units():
    # The dropout gradient checks above would pass trivially if no unit were dropped
    # (or all were). Rebuild the exact model gradcheck builds and look at its mask.
    x = np.ones((4, 8))
    model = snn.Sequential([snn.Dropout(0.5)], seed=7, dtype="float64")
    model.build((8,))
    y = model.forward(x, training=True)
    assert np.any(y == 0) and np.any(y == 2.0)
    assert set(np.unique(y)) <= {0.0, 2.0}
    errors = snn.gradcheck(snn.Dropout(0.5), x, training=True, seed=7)
    assert errors["input"] < TOL


# ----------------------------------------------------------------- checker can fail
class TutorialSigmoid(snn.Sigmoid):
    """The tutorials' bug: the derivative x * (1 - x) applied to the pre-activation."""

    def forward(self, x, training=False):
        y = super().forward(x, training)
        self._x = x
        return y

    def backward(self, grad_out):
        x = self._x
        return grad_out * x * (1 - x)


class MaskIgnoringDropout(snn.Dropout):
    """Backward passes the gradient through as if nothing had been dropped."""

    def backward(self, grad_out):
        self._saved()
        return grad_out


class ZeroNegativeELU(snn.ELU):
    """The bug from STYLE.md: an ELU whose gradient is zero for every negative input."""

    def backward(self, grad_out):
        positive, _ = self._saved()
        return np.where(positive, grad_out, 0.0)


class NoBiasGradDense(snn.Dense):
    """A Dense layer that forgets to write dL/db."""

    def backward(self, grad_out):
        x = self._saved()
        np.matmul(x.T, grad_out, out=self.dW)
        self.db[...] = 0
        return grad_out @ self.W.T


@pytest.mark.parametrize("layer, training, key", [
    (TutorialSigmoid(), False, "input"),
    (MaskIgnoringDropout(0.5), True, "input"),
    (ZeroNegativeELU(), False, "input"),
    (NoBiasGradDense(3, bias_initializer="standard_normal"), False, "no_bias_grad_dense_0.b"),
], ids=["tutorial-sigmoid", "mask-ignoring-dropout", "zero-negative-elu", "dense-without-db"])
def test_gradcheck_catches_wrong_backward(layer, training, key):
    rng = np.random.default_rng(11)
    x = random_input(rng, (3, 5))
    errors = snn.gradcheck(layer, x, training=training, seed=11)
    assert errors[key] > 1e-3, errors


def test_correct_counterparts_of_the_wrong_layers_pass():
    # Same inputs and seeds as above with the library's layers: the failures above
    # come from the injected bugs, not from the inputs.
    rng = np.random.default_rng(11)
    x = random_input(rng, (3, 5))
    for layer, training in ((snn.Sigmoid(), False), (snn.Dropout(0.5), True), (snn.ELU(), False),
                            (snn.Dense(3, bias_initializer="standard_normal"), False)):
        errors = snn.gradcheck(layer, x, training=training, seed=11)
        assert max(errors.values()) < TOL, (layer, errors)


# ------------------------------------------------------------------------------ losses
def _huber_output(rng, n, k, delta):
    """Outputs whose residuals lie on both sides of delta, never within 0.05 * delta of it."""
    magnitude = np.where(rng.random((n, k)) < 0.5, rng.uniform(0.05, 0.9, (n, k)),
                         rng.uniform(1.2, 3.0, (n, k))) * delta
    if n * k >= 2:   # make sure both branches are present
        magnitude.flat[0] = 0.5 * delta
        magnitude.flat[1] = 2.0 * delta
    residual = magnitude * rng.choice([-1.0, 1.0], size=(n, k))
    target = rng.standard_normal((n, k))
    return target + residual, target


def _loss_case(kind, n, rng):
    """(loss, output X, target y) for one loss configuration."""
    if kind == "mse":
        return snn.MSE(), rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    if kind == "mae":
        t = rng.standard_normal((n, 3))
        r = away_from_kinks(rng.standard_normal((n, 3)), 0.1)   # |o - t| >= 0.1
        return snn.MAE(), t + r, t
    if kind.startswith("huber"):
        delta = float(kind.split("-")[1])
        o, t = _huber_output(rng, n, 3, delta)
        return snn.Huber(delta), o, t
    if kind == "bce-labels-1":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal((n, 1)), rng.integers(0, 2, n)
    if kind == "bce-labels-2d-1":
        return (snn.BinaryCrossEntropy(), 2 * rng.standard_normal((n, 1)),
                rng.integers(0, 2, (n, 1)).astype(float))
    if kind == "bce-labels-4":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal((n, 4)), rng.integers(0, 2, (n, 4))
    if kind == "bce-probs-1":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal((n, 1)), rng.random(n)
    if kind == "bce-probs-4":
        return snn.BinaryCrossEntropy(), 2 * rng.standard_normal((n, 4)), rng.random((n, 4))
    if kind == "ce-labels":
        return snn.CrossEntropy(), 2 * rng.standard_normal((n, 5)), rng.integers(0, 5, n)
    if kind == "ce-onehot":
        return snn.CrossEntropy(), 2 * rng.standard_normal((n, 5)), np.eye(5)[rng.integers(0, 5, n)]
    if kind == "ce-probs":
        p = rng.random((n, 5))
        return snn.CrossEntropy(), 2 * rng.standard_normal((n, 5)), p / p.sum(axis=1, keepdims=True)
    if kind == "ce-unnormalized":
        # rows that do not sum to 1 (values in [0, 1), as probabilities must be): the
        # gradient is (p * sum_k t - t) / N
        return snn.CrossEntropy(), 2 * rng.standard_normal((n, 5)), rng.random((n, 5))
    raise AssertionError(kind)


LOSS_KINDS = ["mse", "mae", "huber-1.0", "huber-0.3", "bce-labels-1", "bce-labels-2d-1",
              "bce-labels-4", "bce-probs-1", "bce-probs-4", "ce-labels", "ce-onehot", "ce-probs",
              "ce-unnormalized"]


@pytest.mark.parametrize("n", [1, 6])
@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_loss_gradient(kind, n):
    rng = np.random.default_rng(17 * n + LOSS_KINDS.index(kind))
    loss, output, target = _loss_case(kind, n, rng)
    # Through an Identity layer, the "input" gradient is dL/d(output) from loss.backward().
    errors = snn.gradcheck(snn.Identity(), output, target, loss=loss, seed=1)
    assert_gradients_match(errors, {"input"})


def test_huber_case_has_residuals_on_both_sides_of_delta():
    rng = np.random.default_rng(5)
    for delta in (1.0, 0.3):
        o, t = _huber_output(rng, 6, 3, delta)
        r = np.abs(o - t)
        assert np.any(r < 0.95 * delta) and np.any(r > 1.05 * delta)
        assert np.all(np.abs(r - delta) > 0.05 * delta)


def test_loss_gradcheck_catches_a_wrong_loss_gradient():
    class HalfGradientMSE(snn.MSE):
        def backward(self):
            return super().backward() / 2   # forgets the factor 2 of d(r^2)/dr

    rng = np.random.default_rng(2)
    errors = snn.gradcheck(snn.Identity(), rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
                           loss=HalfGradientMSE())
    assert errors["input"] > 0.1


@pytest.mark.parametrize("n", [1, 4])
def test_loss_values_by_hand(n):
    # Small cases whose values are easy to write down, so a loss that is
    # differentiable but wrong (e.g. summed instead of averaged) fails here.
    o = np.tile([[1.0, -2.0]], (n, 1))
    t = np.tile([[0.5, 1.0]], (n, 1))
    # residuals 0.5 and -3
    assert snn.MSE()(o, t) == pytest.approx((0.25 + 9.0) / 2)
    assert snn.MAE()(o, t) == pytest.approx((0.5 + 3.0) / 2)
    # Huber delta=1: 0.5 * 0.5^2 = 0.125 and 1 * (3 - 0.5) = 2.5
    assert snn.Huber(1.0)(o, t) == pytest.approx((0.125 + 2.5) / 2)
    # BCE with z = 0, t = 1: log 2 per element
    assert snn.BinaryCrossEntropy()(np.zeros((n, 2)), np.ones((n, 2))) == pytest.approx(np.log(2))
    # CE with equal logits over 4 classes: log 4 per sample
    assert snn.CrossEntropy()(np.zeros((n, 4)), np.zeros(n, dtype=np.int64)) == pytest.approx(np.log(4))


def test_cross_entropy_of_logits_in_any_memory_layout():
    """The loss indexes the raveled logits; a Fortran-ordered or strided array
    (a custom layer may return one) gives the same loss and gradient."""
    rng = np.random.default_rng(3)
    z = 3 * rng.standard_normal((7, 4))
    y = rng.integers(0, 4, 7)
    loss = snn.CrossEntropy()
    expected = (loss.forward(z, y), loss.backward())
    # the gradient by hand: (softmax(z) - onehot(y)) / n
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(expected[1], (p - np.eye(4)[y]) / 7, rtol=1e-12, atol=1e-15)
    wide = np.zeros((7, 8))
    wide[:, ::2] = z
    for layout in (np.asfortranarray(z), wide[:, ::2]):
        assert loss.forward(layout, y) == pytest.approx(expected[0], rel=1e-14)
        np.testing.assert_allclose(loss.backward(), expected[1], rtol=1e-14, atol=1e-16)


# ------------------------------------------------------------------------- whole model
def test_whole_model_gradient_with_cross_entropy():
    rng = np.random.default_rng(21)
    model = snn.Sequential([snn.Dense(6), snn.Tanh(), snn.Dense(5), snn.Tanh(), snn.Dense(3)], seed=4)
    X = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, 5)
    model.build((4,))
    before = model.params.copy()
    errors = snn.gradcheck(model, X, y, loss="cross_entropy")
    expected = {"input"} | {f"dense_{i}.{p}" for i in range(3) for p in "Wb"}
    assert_gradients_match(errors, expected)
    # the original model is untouched: still float32, same parameters
    assert model.params.dtype == np.float32
    np.testing.assert_array_equal(model.params, before)


def test_whole_model_gradient_with_every_activation_and_dropout():
    rng = np.random.default_rng(22)
    model = snn.Sequential([
        snn.Flatten(), snn.Dense(7), snn.Sigmoid(), snn.Dense(6), snn.GELU(), snn.Dropout(0.3),
        snn.Dense(6), snn.ELU(), snn.Dense(5), snn.LeakyReLU(0.1), snn.Dense(5), snn.Softmax(),
        snn.Dense(2),
    ], seed=5, dtype="float64")
    X = rng.standard_normal((4, 2, 3))
    y = rng.integers(0, 2, (4, 2))
    errors = snn.gradcheck(model, X, y, loss="binary_cross_entropy", training=True)
    expected = {"input"} | {f"dense_{i}.{p}" for i in range(6) for p in "Wb"}
    assert_gradients_match(errors, expected)


# ----------------------------------------------------------------------- against torch
def _torch():
    return pytest.importorskip("torch")


ACTIVATIONS = {
    "identity": (lambda: snn.Identity(), lambda F, x: x),
    "sigmoid": (lambda: snn.Sigmoid(), lambda F, x: F.sigmoid(x)),
    "tanh": (lambda: snn.Tanh(), lambda F, x: F.tanh(x)),
    "relu": (lambda: snn.ReLU(), lambda F, x: F.relu(x)),
    "leaky_relu": (lambda: snn.LeakyReLU(), lambda F, x: F.leaky_relu(x, 0.01)),
    "leaky_relu_0.2": (lambda: snn.LeakyReLU(0.2), lambda F, x: F.leaky_relu(x, 0.2)),
    "elu": (lambda: snn.ELU(), lambda F, x: F.elu(x)),
    "elu_0.5": (lambda: snn.ELU(0.5), lambda F, x: F.elu(x, alpha=0.5)),
    "gelu": (lambda: snn.GELU(), lambda F, x: F.gelu(x, approximate="tanh")),
    "softmax": (lambda: snn.Softmax(), lambda F, x: F.softmax(x, dim=-1)),
}


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_torch(name, n):
    torch = _torch()
    F = torch.nn.functional
    make, reference = ACTIVATIONS[name]
    rng = np.random.default_rng(31 + n)
    x = away_from_kinks(4 * rng.standard_normal((n, 7)))
    x[0, :3] = [-15.0, 12.0, 25.0]      # beyond GELU's clip, deep in the saturated tails
    g = rng.standard_normal((n, 7))

    layer = make()
    y = layer.forward(x.copy())
    grad_in = layer.backward(g.copy())

    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = reference(F, xt)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad_in, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def _torch_loss(torch, kind):
    F = torch.nn.functional
    if kind == "mse":
        return F.mse_loss
    if kind == "mae":
        return F.l1_loss
    if kind.startswith("huber"):
        return lambda o, t: F.huber_loss(o, t, delta=float(kind.split("-")[1]))
    if kind.startswith("bce"):
        return lambda o, t: F.binary_cross_entropy_with_logits(o, t.reshape(o.shape).to(o.dtype))
    return F.cross_entropy   # integer labels, or probability rows of the same shape


@pytest.mark.parametrize("n", [1, 6])
@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_loss_matches_torch(kind, n):
    torch = _torch()
    rng = np.random.default_rng(41 * n + LOSS_KINDS.index(kind))
    loss, output, target = _loss_case(kind, n, rng)
    target = loss.prepare_target(target, output.shape[1], np.dtype(np.float64))
    value = loss.forward(output.copy(), target)
    grad = loss.backward()

    ot = torch.tensor(output, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(target)
    ref = _torch_loss(torch, kind)(ot, tt)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(grad, ot.grad.numpy(), rtol=1e-10, atol=1e-15)
