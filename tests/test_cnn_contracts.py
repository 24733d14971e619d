"""The model's contracts, held by a small CNN: Conv2D, BatchNormalization (parameters and
buffers), MaxPool2D, Dropout (the model's random state) and Dense.

Buffers (batch norm's running statistics) are state that is not trained: EarlyStopping
restores them with the weights, astype casts them, copies carry them, the optimizer
never sees them and inference never changes them. The whole network is gradient-checked,
a divergence is named and undone, summary() counts parameters and buffers, and predicting
many images runs in batches no larger in memory than a training step.
"""

from __future__ import annotations

import copy
import pickle
import re
import tracemalloc

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import (SGD, Adam, BatchNormalization, Conv2D, Dense, DivergenceError, Dropout,
                       EarlyStopping, Flatten, MaxPool2D, ReLU, Sequential)
from scratchnn.callbacks import Callback
from scratchnn.optimizers import OPTIMIZERS
from scratchnn.training import quiet_overflow, train_step

SAMPLE = (8, 8, 1)


def small_cnn(dtype="float32", seed=0) -> Sequential:
    """(8, 8, 1) -> Conv2D 3x3 (6, 6, 4) -> BN -> ReLU -> MaxPool (3, 3, 4) -> Dropout -> Dense 3."""
    return Sequential([Conv2D(4, 3), BatchNormalization(), ReLU(), MaxPool2D(2), Dropout(0.25),
                       Flatten(), Dense(3)], seed=seed, dtype=dtype, input_shape=SAMPLE)


def image_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=0.5, scale=2.0, size=(n, *SAMPLE))     # running stats far from 0 and 1
    y = (X[:, :4, :, 0].mean(axis=(1, 2)) > 0.5).astype(int) + (X[:, 4:, 4:, 0].mean(axis=(1, 2)) > 0.7)
    return X, y.astype(int)


def trained(dtype="float32", epochs=2, **fit):
    X, y = image_data()
    model = small_cnn(dtype)
    model.fit(X, y, loss="cross_entropy", optimizer=fit.pop("optimizer", Adam(lr=0.01)), epochs=epochs,
              batch_size=fit.pop("batch_size", 16), **fit)
    return model, X, y


def bn(model) -> BatchNormalization:
    return model[1]


def state(model) -> dict:
    """Copies of everything a step can change: parameters, buffers, optimizer state, rng."""
    return {"params": model.params.copy(), "buffers": model.buffers.copy(),
            "optimizer": {k: (v.copy() if isinstance(v, np.ndarray) else v)
                          for k, v in model.optimizer.state_dict().items()},
            "rng": model.rng.bit_generator.state}


def assert_same_state(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(a["params"], b["params"])
    np.testing.assert_array_equal(a["buffers"], b["buffers"])
    assert a["optimizer"].keys() == b["optimizer"].keys()
    for name in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][name], b["optimizer"][name])
    assert a["rng"] == b["rng"]


def test_the_cnn_has_buffers_that_training_moves():
    model, X, _ = trained()
    assert [name for name, _ in model.named_buffers()] == ["batch_normalization_0.running_mean",
                                                          "batch_normalization_0.running_var"]
    assert model.buffers.size == 2 * 4
    assert np.shares_memory(bn(model).running_mean, model.buffers)
    # far from their initial 0 and 1 (the inputs have mean 0.5 and spread 2)
    assert np.abs(bn(model).running_mean).max() > 0.1
    assert np.abs(bn(model).running_var - 1).max() > 0.1


# ------------------------------------------------------------------ EarlyStopping
class Snapshots(Callback):
    """The model's weights and buffers after every epoch (before EarlyStopping restores any)."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_restores_the_running_statistics_of_the_best_epoch():
    X, y = image_data()
    X_val, y_val = X[:24], (y[:24] + 1) % 3          # labels the training moves away from
    model = small_cnn()
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.02), epochs=30, batch_size=16,
              validation_data=(X_val, y_val), callbacks=[snapshots, stopper])
    assert stopper.stopped_epoch is not None and stopper.best_epoch < stopper.stopped_epoch
    best, last = snapshots.weights[stopper.best_epoch], snapshots.weights[-1]
    for name in ("batch_normalization_0.running_mean", "batch_normalization_0.running_var"):
        assert not np.array_equal(best[name], last[name])     # the buffers moved after the best epoch
    now = model.get_weights()
    assert now.keys() == best.keys()
    for name in best:
        np.testing.assert_array_equal(now[name], best[name], err_msg=name)
    model.check_parameter_views()         # restored in place: still views of the flat vectors
    assert np.shares_memory(bn(model).running_var, model.buffers)
    # the restored model predicts with the best epoch's statistics
    np.testing.assert_array_equal(model.buffers,
                                  np.concatenate([best["batch_normalization_0.running_mean"],
                                                  best["batch_normalization_0.running_var"]]))


# ------------------------------------------------------------------------ astype
def test_astype_keeps_the_running_statistics_both_ways():
    model, X, _ = trained("float32")
    wide = model.astype("float64")
    assert wide.buffers.dtype == np.float64 and bn(wide).running_mean.dtype == np.float64
    np.testing.assert_array_equal(wide.buffers, model.buffers.astype(np.float64))   # exact: widening
    assert np.shares_memory(bn(wide).running_var, wide.buffers)
    wide.check_parameter_views()
    np.testing.assert_allclose(wide.output(X), model.output(X), rtol=1e-4, atol=1e-5)

    back = wide.astype("float32")
    assert back.buffers.dtype == np.float32
    np.testing.assert_array_equal(back.buffers, model.buffers)
    np.testing.assert_array_equal(back.params, model.params)
    np.testing.assert_array_equal(back.output(X), model.output(X))
    # the copies are the model's own: the original is untouched by their training
    before = model.buffers.copy()
    wide.fit(X, image_data()[1], epochs=1, batch_size=16)
    np.testing.assert_array_equal(model.buffers, before)
    assert not np.array_equal(wide.buffers, before.astype(np.float64))

    narrow = small_cnn("float64")
    narrow.fit(X, image_data()[1], loss="cross_entropy", epochs=1, batch_size=16)
    as32 = narrow.astype("float32")
    np.testing.assert_array_equal(as32.buffers, narrow.buffers.astype(np.float32))


# ------------------------------------------------------------------- deepcopy/pickle
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_predict_identically_and_train_on_identically(how):
    model, X, y = trained()
    other = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    assert other.buffers is not model.buffers and not np.shares_memory(other.buffers, model.buffers)
    other.check_parameter_views()
    assert np.shares_memory(bn(other).running_mean, other.buffers)
    np.testing.assert_array_equal(other.output(X), model.output(X))
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    assert_same_state(state(other), state(model))
    # the same next steps: the same dropout masks and shuffles, moments and running statistics
    for m in (model, other):
        m.fit(X, y, epochs=1, batch_size=16)
    assert_same_state(state(other), state(model))


# ----------------------------------------------------------- the optimizer and buffers
# (LBFGS takes no train_step: it needs a closure, and fit gives it one)
@pytest.mark.parametrize("name", sorted(n for n, c in OPTIMIZERS.items() if not getattr(c, "needs_closure", False)))
def test_the_optimizer_never_changes_buffers(name):
    """A step's buffers are what its forward pass made of them, whatever the optimizer
    (weight decay included): the twin runs the same forward without any update."""
    X, y = image_data(16)
    optimizer = OPTIMIZERS[name](lr=0.05, weight_decay=0.1) if name in ("sgd", "adam", "adamw") \
        else OPTIMIZERS[name](lr=0.05)
    model = small_cnn()
    model.compile(loss="cross_entropy", optimizer=optimizer)
    x, target = model.check_data(X, y)
    with quiet_overflow():
        for _ in range(3):
            twin = copy.deepcopy(model)
            params_before = model.params.copy()
            train_step(model, x, target)
            twin.forward(x, training=True)
            np.testing.assert_array_equal(model.buffers, twin.buffers)
            assert not np.array_equal(model.params, params_before)
    assert all(v.shape == model.params.shape for k, v in model.optimizer.state_dict().items()
               if isinstance(v, np.ndarray))


# --------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("training", [False, True])
def test_gradcheck_of_the_whole_cnn(training):
    """In training mode batch norm uses the batch's statistics and dropout one fixed mask;
    in inference the running statistics of the trained model."""
    model, X, y = trained("float32")
    before = state(model)
    errors = snn.gradcheck(model, X[:3], y[:3], training=training)
    assert set(errors) == {name for name, _ in model.named_parameters()} | {"input"}
    if training:
        # Batch norm subtracts the batch's mean of each channel, and with it the conv's bias:
        # dL/db is exactly 0, and the relative error of two roundings of 0 means nothing.
        errors.pop("conv2d_0.b")
        wide = model.astype("float64")
        x, target = wide.check_data(X[:3], y[:3])
        wide.loss.forward(wide.forward(x, training=True), target)
        wide.backward(wide.loss.backward())
        assert np.abs(wide[0].db).max() < 1e-12 * np.abs(wide[0].dW).max()
    assert max(errors.values()) < 1e-6, errors
    assert_same_state(state(model), before)       # the model is not changed (gradcheck copies it)
    assert model.dtype == np.float32


def test_gradcheck_restores_the_buffers_between_evaluations():
    """Every central difference sees the same running statistics: a float64 model's
    gradcheck gives the same errors twice, and leaves its buffers as they were."""
    model, X, y = trained("float64")
    before = model.buffers.copy()
    first = snn.gradcheck(model, X[:2], y[:2], training=True)
    np.testing.assert_array_equal(model.buffers, before)
    assert snn.gradcheck(model, X[:2], y[:2], training=True) == first


# ---------------------------------------------------------------------- divergence
def _finite(model) -> bool:
    return bool(np.isfinite(model.params).all() and np.isfinite(model.buffers).all())


def test_a_huge_learning_rate_is_named_and_undone():
    model, X, y = trained("float32", epochs=1)
    model.optimizer = SGD(lr=1e38)
    twin = copy.deepcopy(model)             # takes the first step alone: the last finite one
    twin.fit(X[:16], y[:16], epochs=1, batch_size=16, shuffle=False)
    with pytest.raises(DivergenceError) as raised:
        model.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    message = str(raised.value)
    # the update itself overflows, or the next step's forward pass does: either is named
    layer = r"layer '(conv2d_0|batch_normalization_0|re_lu_0|max_pool2d_0|dropout_0|flatten_0|dense_0)'"
    assert re.search(rf"epoch 1, batch \d+: step \d+: (the optimizer's update made parameter '\w+' of "
                     rf"{layer} NaN or infinite \(SGD with lr=1e\+38\)|the output of {layer} \(\w+\) "
                     rf"became NaN or infinite|the gradient of '\w+' in {layer})", message), message
    assert _finite(model) and _finite(twin)
    # the second step diverges; the weights and buffers are those after the first
    assert "batch 2:" in message, message
    np.testing.assert_array_equal(model.params, twin.params)
    np.testing.assert_array_equal(model.buffers, twin.buffers)


def test_huge_inputs_are_named_and_leave_finite_weights():
    model, X, y = trained("float32", epochs=1)
    before = state(model)
    with pytest.raises(DivergenceError) as raised:
        model.fit(X * 1e37, y, epochs=1, batch_size=16, shuffle=False)
    message = str(raised.value)
    assert re.search(r"epoch 1, batch 1: step \d+: .*(layer '\w+'|the loss)", message), message
    assert _finite(model)
    np.testing.assert_array_equal(model.params, before["params"])
    np.testing.assert_array_equal(model.buffers, before["buffers"])     # the step's statistics undone


# ------------------------------------------------------------------------- summary
def mnist_cnn() -> Sequential:
    return Sequential([Conv2D(32, 3), BatchNormalization(), ReLU(), MaxPool2D(2), Dropout(0.25), Flatten(),
                       Dense(10)], seed=0, input_shape=(28, 28, 1))


def test_summary_shows_image_shapes_parameters_and_buffers():
    lines = []
    model = mnist_cnn()
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    rows = {m.group(1): (m.group(2), m.group(3))
            for m in re.finditer(r"^(\w+) \(\w+\)\s+(\(None[^)]*\))\s+([\d,]+)$", text, re.M)}
    assert rows == {
        "conv2d_0": ("(None, 26, 26, 32)", f"{3 * 3 * 1 * 32 + 32:,}"),        # kh*kw*C*F + F
        "batch_normalization_0": ("(None, 26, 26, 32)", f"{2 * 32}"),          # gamma, beta: 2C
        "re_lu_0": ("(None, 26, 26, 32)", "0"),
        "max_pool2d_0": ("(None, 13, 13, 32)", "0"),
        "dropout_0": ("(None, 13, 13, 32)", "0"),
        "flatten_0": ("(None, 5408)", "0"),
        "dense_0": ("(None, 10)", f"{13 * 13 * 32 * 10 + 10:,}"),
    }, text
    assert "input (None, 28, 28, 1)" in text
    total = 320 + 64 + 54_090
    assert re.search(rf"Total params: {total:,} \(", text), text
    assert re.search(r"Buffers \(not trained\): 64 \(0\.2 KiB\)", text), text       # running mean, var
    assert model.count_params() == total and model.buffers.size == 64


# ------------------------------------------------------------------------ inference
def _peak(function) -> int:
    tracemalloc.start()
    try:
        with quiet_overflow():
            function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_predicting_10000_images_runs_in_batches():
    model = mnist_cnn()
    model.compile(loss="cross_entropy", optimizer="adam")
    rng = np.random.default_rng(0)
    X = rng.random((10_000, 28, 28, 1), dtype=np.float32)
    calls = []
    forward = model.forward
    model.forward = lambda x, training=False: calls.append(len(x)) or forward(x, training)
    out = model.output(X)
    del model.forward
    assert out.shape == (10_000, 10) and np.isfinite(out).all()
    assert len(calls) > 1 and max(calls) < 10_000 and sum(calls) == 10_000
    np.testing.assert_allclose(out[:7], model.output(X[:7]), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X[-300:]), out[-300:].argmax(axis=1))


def test_predicting_10000_images_needs_no_more_memory_than_a_training_step():
    model = mnist_cnn()
    model.compile(loss="cross_entropy", optimizer="adam")
    rng = np.random.default_rng(0)
    X = rng.random((10_000, 28, 28, 1), dtype=np.float32)
    x, target = model.check_data(X[:128], rng.integers(0, 10, 128))
    _peak(lambda: train_step(model, x, target))          # the optimizer's state and kept copies
    step = _peak(lambda: train_step(model, x, target))
    predict = _peak(lambda: model.output(X))
    assert predict <= step, f"predict on 10,000 images peaked at {predict / 2**20:.1f} MiB, one " \
                            f"training step on 128 at {step / 2**20:.1f} MiB"


def test_inference_never_changes_the_running_statistics(tmp_path):
    model, X, y = trained()
    before = model.buffers.copy()
    params = model.params.copy()
    model.output(X)
    model.predict(X)
    model.predict_proba(X, batch_size=5)
    model.evaluate(X, y)
    model.forward(X[:3].astype(np.float32), training=False)
    snn.gradcheck(model, X[:2], y[:2])
    snn.load(model.save(tmp_path / "m.npz")).predict(X)
    np.testing.assert_array_equal(model.buffers, before)
    np.testing.assert_array_equal(model.params, params)
    # a fit's validation passes do not either: only its training steps move them
    twin = copy.deepcopy(model)
    model.fit(X, y, epochs=1, batch_size=16, validation_data=(X[:10], y[:10]))
    twin.fit(X, y, epochs=1, batch_size=16)
    np.testing.assert_array_equal(model.buffers, twin.buffers)
    assert not np.array_equal(model.buffers, before)
