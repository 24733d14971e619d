"""Sequential.fit's options of issue 11: sample_weight, class_weight, regularizers in
the loss, clipnorm per parameter array, and L-BFGS training."""

import numpy as np
import pytest

import scratchnn as snn


def _classification(n=60, seed=0, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.argmax(X[:, :k] + 0.3 * rng.normal(size=(n, k)), axis=1)
    return X, y


def _model(dtype="float64", outputs=3, seed=0):
    return snn.Sequential([snn.Dense(5, activation="tanh"), snn.Dense(outputs)], seed=seed,
                          dtype=dtype, input_shape=(4,))


def test_integer_sample_weights_equal_repeated_samples():
    X, y = _classification()
    w = np.random.default_rng(1).integers(0, 4, size=len(X))
    weighted, repeated = _model(), _model()
    weighted.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.5), epochs=5, batch_size=None,
                 sample_weight=w)
    repeated.fit(X.repeat(w, axis=0), y.repeat(w), loss="cross_entropy", optimizer=snn.SGD(lr=0.5),
                 epochs=5, batch_size=None)
    np.testing.assert_allclose(weighted.params, repeated.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weighted.history["loss"], repeated.history["loss"], rtol=1e-12)


def test_the_epoch_loss_is_the_weighted_mean_over_batches():
    X, y = _classification()
    w = np.random.default_rng(2).uniform(0, 3, size=len(X))
    model = _model()
    seen = []
    batches = snn.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(logs["loss"]))
    model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=1e-300), epochs=1, batch_size=16,
              shuffle=False, sample_weight=w, callbacks=[batches])
    sums = [w[i:i + 16].sum() for i in range(0, len(X), 16)]
    assert model.history["loss"][0] == pytest.approx(np.dot(seen, sums) / w.sum(), rel=1e-12)
    # the lr is too small to move anything: each batch loss is the weighted mean at the start
    output = model.output(X)
    per_sample = -snn.functional.log_softmax(output, axis=-1)[np.arange(len(X)), y]
    assert seen[0] == pytest.approx(np.average(per_sample[:16], weights=w[:16]), rel=1e-12)


def test_class_weight_is_sample_weight_by_class_with_string_labels():
    X, y = _classification()
    labels = np.array(["ant", "bee", "cat"])[y]
    by_class, by_sample = _model(), _model()
    by_class.fit(X, labels, loss="cross_entropy", epochs=3, batch_size=16,
                 class_weight={"ant": 2.0, "cat": 0.5})
    by_sample.fit(X, labels, loss="cross_entropy", epochs=3, batch_size=16,
                  sample_weight=np.select([y == 0, y == 2], [2.0, 0.5], 1.0))
    np.testing.assert_array_equal(by_class.params, by_sample.params)
    balanced = _model()
    balanced.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16, class_weight="balanced")
    explicit = _model()
    counts = np.bincount(y)
    explicit.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16,
                 class_weight={c: len(y) / (3 * counts[c]) for c in range(3)})
    np.testing.assert_allclose(balanced.params, explicit.params, rtol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"class_weight": {"dog": 1.0}}, "class_weight has the class 'dog'"),
    ({"class_weight": {"ant": -1.0}}, r"class_weight\['ant'\]"),
    ({"class_weight": [1, 2, 3]}, "class_weight must be a dict"),
    ({"sample_weight": np.zeros(60)}, "weight"),
    ({"sample_weight": -np.ones(60)}, "sample_weight"),
    ({"sample_weight": np.ones(59)}, "sample_weight"),
])
def test_bad_weights_are_refused_before_training(kwargs, message):
    X, y = _classification()
    labels = np.array(["ant", "bee", "cat"])[y]
    model = _model()
    model.build((4,))
    before = model.params.copy()
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(X, labels, loss="cross_entropy", epochs=1, **kwargs)
    np.testing.assert_array_equal(model.params, before)


def test_class_weight_needs_one_class_per_sample():
    X, _ = _classification()
    model = snn.Sequential([snn.Dense(3)], dtype="float64")
    Y = (X[:, :3] > 0).astype(float)
    with pytest.raises(ValueError, match="one class per sample"):
        model.fit(X, Y, loss="binary_cross_entropy", class_weight={0: 2.0})
    with pytest.raises(ValueError, match="class_weight is for classification"):
        snn.Sequential([snn.Dense(1)]).fit(X, X[:, 0], loss="mse", class_weight={0: 2.0})


def test_regularizer_penalties_are_in_the_loss_and_the_step():
    X, y = _classification()
    model = snn.Sequential([snn.Dense(5, activation="tanh", kernel_regularizer=snn.L2(0.3)),
                            snn.Dense(3, kernel_regularizer=snn.L1(0.2))], seed=0, dtype="float64",
                           input_shape=(4,))
    plain = snn.Sequential([snn.Dense(5, activation="tanh"), snn.Dense(3)], seed=0, dtype="float64",
                           input_shape=(4,))
    W1, W2 = model[0].W.copy(), model[1].W.copy()
    penalty = 0.3 * np.sum(W1 ** 2) + 0.2 * np.sum(np.abs(W2))
    model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.1), epochs=1, batch_size=None)
    plain.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.1), epochs=1, batch_size=None)
    assert model.history["loss"][0] == pytest.approx(plain.history["loss"][0] + penalty, rel=1e-12)
    # the step: plain's update plus lr times the penalty's gradient
    np.testing.assert_allclose(model[0].W, plain[0].W - 0.1 * 2 * 0.3 * W1, rtol=1e-12)
    np.testing.assert_allclose(model[1].W, plain[1].W - 0.1 * 0.2 * np.sign(W2), rtol=1e-12)


def test_clipnorm_in_fit_clips_each_parameter_array():
    X, y = _classification()
    model = _model()
    before = [view.copy() for _, view in model.named_parameters()]
    model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=1.0, clipnorm=1e-3), epochs=1,
              batch_size=None)
    moves = [np.linalg.norm(view - b) for (_, view), b in zip(model.named_parameters(), before)]
    assert all(move == pytest.approx(1e-3, rel=1e-9) for move in moves)   # every gradient is larger


def test_lbfgs_trains_on_the_full_batch_until_it_converges():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    model = snn.Sequential([snn.Dense(8, activation="tanh"), snn.Dense(1)], seed=0, dtype="float64")
    history = model.fit(X, y, loss="mse", optimizer=snn.LBFGS(tolerance_change=1e-7), epochs=2000)
    losses = history["loss"]
    assert all(b <= a for a, b in zip(losses, losses[1:]))          # a descent method
    assert losses[-1] < 0.1 * losses[0]
    assert history.converged in ("gradient", "loss change", "line search") and len(losses) < 2000
    assert losses[-1] == pytest.approx(model.evaluate(X, y)["loss"], rel=1e-12)
    with pytest.raises(ValueError, match="random in training"):
        snn.Sequential([snn.Dense(8), snn.Dropout(0.5), snn.Dense(1)]).fit(
            X, y, loss="mse", optimizer=snn.LBFGS())


def test_class_weight_times_sample_weight_must_fit_the_dtype():
    X, y = _classification()
    model = _model("float32")
    with pytest.raises(ValueError, match="sample_weight times class_weight"):
        model.fit(X, y, loss="cross_entropy", sample_weight=np.full(len(X), 1e30),
                  class_weight={0: 1e20})


def test_lbfgs_fits_a_new_objective_and_saves(tmp_path):
    """A second fit on other data starts from that data's loss (not the kept one of the
    last fit), and a model trained with LBFGS goes through a model file."""
    rng = np.random.default_rng(0)
    X1, X2 = rng.normal(size=(60, 4)), rng.normal(size=(60, 4)) + 3
    model = snn.Sequential([snn.Dense(6, activation="tanh"), snn.Dense(1)], seed=0, dtype="float64")
    model.fit(X1, X1[:, 0], loss="mse", optimizer=snn.LBFGS(), epochs=50)
    start = model.evaluate(X2, 10 * X2[:, 1])["loss"]
    history = model.fit(X2, 10 * X2[:, 1], epochs=1)
    # the loss reported is X2's at the new weights, one step down from X2's own start
    assert history["loss"][0] == pytest.approx(model.evaluate(X2, 10 * X2[:, 1])["loss"], rel=1e-12)
    assert history["loss"][0] < start
    path = model.save(tmp_path / "lbfgs.npz")
    loaded = snn.load(path)
    assert isinstance(loaded.optimizer, snn.LBFGS)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    np.testing.assert_array_equal(loaded.predict(X2), model.predict(X2))
    loaded.fit(X2, 10 * X2[:, 1], epochs=3)                # and trains on
