"""Sequential: building, the flat parameter vector, training, prediction, input checks."""

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import functional as F
from scratchnn.datasets import xor


def blobs(n=60, features=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(scale=8.0, size=(classes, features))
    return centers[y] + rng.normal(size=(n, features)), y


def small_model(seed=0, dtype="float32", dropout=0.0):
    return snn.Sequential([snn.Dense(8), snn.Tanh(), snn.Dropout(dropout), snn.Dense(3)],
                          seed=seed, dtype=dtype)


def seed_recipe(seed):
    """The tutorials' network: 2-4-1 sigmoid, standard-normal weights, zero biases."""
    return snn.Sequential([snn.Dense(4, kernel_initializer="standard_normal"), snn.Sigmoid(),
                           snn.Dense(1, kernel_initializer="standard_normal")], seed=seed)


# ----------------------------------------------------------------------------- XOR
@pytest.mark.parametrize("seed", range(20))
def test_seed_recipe_learns_xor_for_every_seed(seed):
    X, y = xor()
    model = seed_recipe(seed)
    history = model.fit(X, y, loss="binary_cross_entropy", optimizer=snn.SGD(lr=0.1),
                        epochs=10_000, batch_size=None)
    p = model.predict_proba(X)[:, 0]
    assert np.array_equal(p > 0.5, y == 1), p
    assert np.array_equal(model.predict(X), y)
    assert history.history["loss"][-1] < 0.1
    assert history.history["accuracy"][-1] == 1.0


# --------------------------------------------------------------- flat parameters
def test_every_parameter_is_a_view_of_the_flat_vectors():
    X, y = blobs()
    model = small_model()
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16)
    offset = 0
    for name, view in model.named_parameters():
        layer_name, attr = name.split(".")
        layer = next(l for l in model.layers if l.name == layer_name)
        grad = getattr(layer, "d" + attr)
        assert np.shares_memory(view, model.params) and np.shares_memory(grad, model.grads)
        np.testing.assert_array_equal(view.ravel(), model.params[offset:offset + view.size])
        np.testing.assert_array_equal(grad.ravel(), model.grads[offset:offset + view.size])
        offset += view.size
    assert offset == model.params.size == 3 * 8 + 8 + 8 * 3 + 3


def test_writing_the_flat_vector_changes_the_layers():
    model = small_model().build((3,))
    model.params[:] = 0.5
    assert np.all(model.layers[0].W == 0.5) and np.all(model.layers[3].b == 0.5)


class RebindingDense(snn.Dense):
    """A buggy layer: it replaces its weights instead of writing into them."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.W = self.W - 0.0  # detaches W from the model's flat vector
        return grad_in


def test_a_layer_that_rebinds_its_parameters_is_caught():
    X, y = blobs()
    model = snn.Sequential([RebindingDense(4), snn.ReLU(), snn.Dense(3)], seed=0)
    with pytest.raises(RuntimeError, match=r"rebound 'W'.*in place"):
        model.fit(X, y, loss="cross_entropy", epochs=1)


def test_dtype_float32_by_default_and_float64_on_request():
    X, y = blobs()
    for dtype in ("float32", "float64"):
        model = small_model(dtype=dtype) if dtype == "float64" else small_model()
        model.fit(X, y, loss="cross_entropy", epochs=1)
        assert model.params.dtype == np.dtype(dtype) and model.grads.dtype == np.dtype(dtype)
        assert model.predict_proba(X).dtype == np.dtype(dtype)


# ---------------------------------------------------------------- randomness
def trained_params(seed, dropout=0.3):
    X, y = blobs()
    model = small_model(seed=seed, dropout=dropout)
    model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.01), epochs=3, batch_size=8)
    return model.params.copy()


def test_same_seed_same_weights_different_seed_different():
    a, b, c = trained_params(7), trained_params(7), trained_params(8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


class Recorder(snn.Identity):
    """Records the batches it sees in training."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, training=False):
        if training:
            self.seen.append(x[:, 0].copy())
        return super().forward(x, training)


def test_minibatches_are_reshuffled_each_epoch_and_the_last_partial_batch_is_kept():
    X = np.arange(10, dtype=float).reshape(-1, 1)
    y = np.zeros(10)
    recorder = Recorder()
    model = snn.Sequential([recorder, snn.Dense(1)], seed=3)
    model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=0.01), epochs=2, batch_size=4)
    assert [len(b) for b in recorder.seen] == [4, 4, 2, 4, 4, 2]
    first, second = np.concatenate(recorder.seen[:3]), np.concatenate(recorder.seen[3:])
    assert sorted(first) == sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(10))


def test_dropout_is_active_only_in_training():
    X, y = blobs()
    model = small_model(dropout=0.5)
    model.fit(X, y, loss="cross_entropy", epochs=1)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    x = model.check_input(X)
    # at inference the network is the one without its Dropout layer (inverted dropout: no rescaling)
    logits = x
    for layer in model.layers:
        if not isinstance(layer, snn.Dropout):
            logits = layer.forward(logits)
    np.testing.assert_allclose(model.predict_proba(X), F.softmax(logits, axis=1), rtol=1e-6)
    train_a, train_b = model.forward(x, training=True), model.forward(x, training=True)
    assert not np.allclose(train_a, train_b)


# ----------------------------------------------------------------- fit & predict
def test_history_predict_evaluate_on_a_separable_problem():
    X, y = blobs(n=90)
    model = small_model()
    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.05), epochs=30,
                        batch_size=16)
    loss = history.history["loss"]
    assert len(loss) == 30 and history.epoch == list(range(30))
    assert loss[-1] < 0.5 * loss[0]
    assert history.history["accuracy"][-1] > 0.95
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    scores = model.evaluate(X, y)
    manual = -np.mean(np.log(proba[np.arange(len(y)), y]))
    assert scores["loss"] == pytest.approx(manual, rel=1e-4)
    assert scores["accuracy"] == pytest.approx(np.mean(model.predict(X) == y))


def test_regression_history_has_regression_metrics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X @ np.array([1.5, -2.0]) + 0.5
    model = snn.Sequential([snn.Dense(1)], seed=0, dtype="float64")
    history = model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=0.1), epochs=200, batch_size=None)
    assert history.history["loss"][-1] < 1e-6
    assert history.history["r2"][-1] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(model.layers[0].W[:, 0], [1.5, -2.0], atol=1e-3)
    assert model.predict(X).shape == (64, 1)
    np.testing.assert_allclose(model.predict(X)[:, 0], y, atol=1e-3)
    with pytest.raises(ValueError, match="predict_proba"):
        model.predict_proba(X)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs()
    small_model().fit(X, y, loss="cross_entropy", epochs=3, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3") and "loss" in lines[0]


def test_summary_lists_layers_shapes_and_parameter_counts(capsys):
    model = seed_recipe(0).build((2,))
    model.summary()
    out = capsys.readouterr().out
    assert "dense_0 (Dense)" in out and "(None, 4)" in out and "Total params: 17" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("dense")]
    assert [row[-1] for row in rows] == ["12", "5"]


# ----------------------------------------------------------------- bad input
@pytest.fixture
def fitted():
    X, y = blobs()
    model = small_model()
    model.fit(X, y, loss="cross_entropy", epochs=1)
    return model, X, y


def test_wrong_number_of_features(fitted):
    model, X, _ = fitted
    with pytest.raises(ValueError, match=r"X has 2 features per sample, but the model expects 3"):
        model.predict(X[:, :2])


def test_mismatched_lengths(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match=r"y has 59 samples but X has 60"):
        model.fit(X, y[:-1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_in_X(fitted, bad):
    model, X, y = fitted
    X = X.copy()
    X[5, 1] = bad
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at sample 5\)"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="X contains NaN"):
        model.predict(X)


def test_values_beyond_float32_are_rejected(fitted):
    model, X, _ = fitted
    X = X.copy()
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"X contains a value out of float32 range \(first at sample "
                                         r"0: 1e\+300\)"):
        model.predict(X)


@pytest.mark.parametrize("labels, message", [
    ([3], r"y must hold class labels in \[0, 3\).*got 3"),
    ([-1], r"y must hold class labels in \[0, 3\).*got -1"),
    ([0.5], r"y must hold integer class labels"),
])
def test_labels_outside_the_classes(fitted, labels, message):
    model, X, y = fitted
    y = y.astype(float).copy()
    y[:1] = labels
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_binary_labels_outside_0_1():
    X, y = xor()
    with pytest.raises(ValueError, match=r"y must hold labels 0 and 1"):
        seed_recipe(0).fit(X, y * 2, loss="binary_cross_entropy")


def test_nan_in_y_for_regression():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="y contains NaN"):
        snn.Sequential([snn.Dense(1)]).fit(X, [1.0, np.nan, 2.0, 3.0], loss="mse")


@pytest.mark.parametrize("X, error, message", [
    (np.empty((0, 3)), ValueError, r"X is empty"),
    ([["a", "b", "c"]], TypeError, r"X must be numeric"),
    (np.array([[object(), 1, 2]], dtype=object), TypeError, r"X must be numeric"),
    (np.ones(3), ValueError, r"X must be a 2-D array"),
    (None, ValueError, r"X is required"),
])
def test_empty_non_numeric_and_badly_shaped_X(X, error, message):
    model = small_model()
    with pytest.raises(error, match=message):
        model.fit(X, np.zeros(1, dtype=int), loss="cross_entropy")


def test_missing_loss_and_bad_arguments(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="needs a loss"):
        small_model().fit(X, y)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        model.fit(X, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(X, y, batch_size=-4)
    with pytest.raises(ValueError, match="loss must be a Loss or one of"):
        model.fit(X, y, loss="hinge")
    with pytest.raises(ValueError, match="optimizer must be an Optimizer or one of"):
        model.fit(X, y, optimizer="newton")
    with pytest.raises(ValueError, match="metrics must be names from"):
        model.fit(X, y, metrics=["r2"])


def test_construction_errors():
    with pytest.raises(ValueError, match="dtype must be one of"):
        snn.Sequential([snn.Dense(1)], dtype="float16")
    with pytest.raises(ValueError, match="units must be a positive integer"):
        snn.Dense(0)
    with pytest.raises(ValueError, match="kernel_initializer must be"):
        snn.Dense(3, kernel_initializer="orthogonal")
    with pytest.raises(ValueError, match="rate must be a number in"):
        snn.Dropout(1.0)
    relu = snn.ReLU()
    with pytest.raises(ValueError, match="already in the model"):
        snn.Sequential([relu, relu])


def test_backward_before_forward_is_a_clear_error():
    layer = snn.Sigmoid()
    with pytest.raises(RuntimeError, match="backward\\(\\) was called before forward\\(\\)"):
        layer.backward(np.ones((1, 1)))


def test_inputs_that_overflow_inside_the_network_get_an_error_not_a_warning():
    X, y = blobs()
    model = snn.Sequential([snn.Dense(8), snn.ReLU(), snn.Dense(3)], seed=0)
    model.fit(X, y, loss="cross_entropy", epochs=1)
    model.layers[0].W[...] = 10.0
    X = X.copy()
    X[3] = 1e38                                  # finite in float32; x @ W is not
    with pytest.raises(ValueError, match=r"output for sample 3 of X is NaN or infinite"):
        model.predict(X)
    # a saturating network gives finite outputs for the same inputs, without a warning
    model = small_model()
    model.fit(blobs()[0], y, loss="cross_entropy", epochs=1)
    assert np.all(np.isfinite(model.predict_proba(X)))
