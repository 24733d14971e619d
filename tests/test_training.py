"""fit's training experience: validation, callbacks, schedules, progress, divergence, Ctrl-C."""

import io
import math
import os
import signal

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.callbacks import (Callback, EarlyStopping, LambdaCallback, LearningRateScheduler,
                                 ProgressBar, ReduceLROnPlateau)
from scratchnn.model import DivergenceError
from scratchnn.schedules import CosineDecay, ExponentialDecay, StepDecay


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[0, 4], [4, 0], [-4, -4]], dtype=float)
    return centers[y] + rng.normal(size=(n, 2)), y


def mlp(seed=0):
    return snn.Sequential([snn.Dense(16), snn.ReLU(), snn.Dense(3)], seed=seed)


# ------------------------------------------------------------------ validation
def test_validation_split_takes_the_end_and_logs_val_figures():
    X, y = blobs()
    model = mlp()
    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.02), epochs=5,
                        validation_split=0.25)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 5 for v in h.values())
    expected = model.evaluate(X[90:], y[90:])
    assert h["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)
    assert h["val_accuracy"][-1] == pytest.approx(expected["accuracy"])


def test_validation_data_matches_evaluate_and_regression_metrics():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ [1.0, -1.0, 0.5]
    model = snn.Sequential([snn.Dense(1)], seed=0)
    history = model.fit(X[:60], y[:60], loss="mse", optimizer=snn.SGD(lr=0.05), epochs=40,
                        validation_data=(X[60:], y[60:]))
    h = history.history
    assert {"loss", "mae", "r2", "val_loss", "val_mae", "val_r2"} <= set(h)
    scores = model.evaluate(X[60:], y[60:])
    assert h["val_r2"][-1] == pytest.approx(scores["r2"]) and scores["r2"] > 0.99


def test_bad_validation_arguments():
    X, y = blobs()
    with pytest.raises(ValueError, match="validation_split must be a number in"):
        mlp().fit(X, y, loss="cross_entropy", validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        mlp().fit(X, y, loss="cross_entropy", validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match=r"validation_data\[0\] has 1 features"):
        mlp().fit(X, y, loss="cross_entropy", validation_data=(X[:, :1], y))
    with pytest.raises(ValueError, match=r"validation_data\[1\] has 3 samples"):
        mlp().fit(X, y, loss="cross_entropy", validation_data=(X[:4], y[:3]))


# ------------------------------------------------------------------- callbacks
def noisy_regression():
    """A small, noisy problem that a big model overfits quickly."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = X[:, 0] + rng.normal(scale=1.0, size=40)
    return X[:20], y[:20], X[20:], y[20:]


def test_early_stopping_stops_and_restores_the_best_weights():
    X, y, Xv, yv = noisy_regression()
    model = snn.Sequential([snn.Dense(64), snn.Tanh(), snn.Dense(1)], seed=0)
    best_params = {}

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs=None):
            best_params[epoch] = self.model.params.copy()

    stopper = EarlyStopping(patience=3)
    history = model.fit(X, y, loss="mse", optimizer=snn.Adam(lr=0.05), epochs=200, batch_size=None,
                        validation_data=(Xv, yv), callbacks=[Snapshot(), stopper])
    val = history.history["val_loss"]
    assert stopper.stopped_epoch is not None and len(val) == stopper.stopped_epoch + 1 < 200
    assert stopper.best_epoch == int(np.argmin(val)) == len(val) - 4   # patience 3
    np.testing.assert_array_equal(model.params, best_params[stopper.best_epoch])
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(min(val), rel=1e-5)


def test_early_stopping_min_delta_and_missing_monitor():
    X, y = blobs()
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    history = mlp().fit(X, y, loss="cross_entropy", epochs=10, callbacks=[stopper])
    assert len(history.epoch) == 2    # no later epoch improves by 10
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*validation_data or validation_split"):
        mlp().fit(X, y, loss="cross_entropy", epochs=2, callbacks=[EarlyStopping()])


def test_schedules_are_pure_functions():
    assert [StepDecay(1.0, 2, 0.5)(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert ExponentialDecay(2.0, 0.5)(3) == 0.25
    cosine = CosineDecay(1.0, 10, min_lr=0.1)
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.1) and cosine(5) == pytest.approx(0.55)
    assert cosine(20) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepDecay(0.1, 0)


def test_learning_rate_scheduler_sets_and_logs_the_rate():
    X, y = blobs()
    model = mlp()
    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=1.0), epochs=4,
                        callbacks=[LearningRateScheduler(StepDecay(0.1, 2, 0.1))])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert model.optimizer.lr == pytest.approx(0.01)


def test_reduce_lr_on_plateau():
    X, y = blobs()
    model = mlp()

    class Flat(Callback):   # pretend the figure never improves after the first epoch
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0

    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.1), epochs=7,
                        callbacks=[Flat(), ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.02)])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])


def test_custom_and_lambda_callbacks_see_every_hook_in_order():
    X, y = blobs(n=30)
    calls = []

    class Spy(Callback):
        def on_train_begin(self, logs=None): calls.append("train_begin")
        def on_epoch_begin(self, epoch, logs=None): calls.append(f"epoch_begin {epoch}")
        def on_batch_begin(self, batch, logs=None): calls.append(f"batch_begin {batch}")
        def on_batch_end(self, batch, logs=None): calls.append(f"batch_end {batch} {logs['size']}")
        def on_epoch_end(self, epoch, logs=None): calls.append(f"epoch_end {epoch}")
        def on_train_end(self, logs=None): calls.append("train_end")

    ends = []
    history = mlp().fit(X, y, loss="cross_entropy", epochs=2, batch_size=20,
                        callbacks=[Spy(), LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(logs["loss"]))])
    assert calls == ["train_begin",
                     "epoch_begin 0", "batch_begin 0", "batch_end 0 20", "batch_begin 1", "batch_end 1 10", "epoch_end 0",
                     "epoch_begin 1", "batch_begin 0", "batch_end 0 20", "batch_begin 1", "batch_end 1 10", "epoch_end 1",
                     "train_end"]
    assert len(ends) == 2 and all(math.isfinite(v) for v in ends)
    assert ends == history.history["loss"]       # the logs the callback saw are those recorded
    with pytest.raises(ValueError, match="hooks must be among"):
        LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match="callbacks must be Callback instances"):
        mlp().fit(X, y, loss="cross_entropy", callbacks=[print])


# -------------------------------------------------------------------- progress
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def run_bar(stream, epochs=2):
    bar = ProgressBar(epochs=epochs, n_batches=4, stream=stream)
    for epoch in range(epochs):
        bar.on_epoch_begin(epoch)
        for batch in range(4):
            bar._last_draw = -1.0      # draw every batch
            bar.on_batch_end(batch, {"loss": 0.5, "size": 10})
        bar.on_epoch_end(epoch, {"loss": 0.5, "accuracy": 0.75})
    return stream.getvalue()


def test_progress_bar_on_a_terminal_shows_batches_loss_throughput_and_eta():
    out = run_bar(FakeTerminal())
    assert "\r" in out and "2/4 [============>...........]" in out
    assert "samples/s" in out and "ETA" in out and "loss 0.5000" in out
    final_lines = out.split("\n")[:-1]
    assert len(final_lines) == 2 and final_lines[1].rsplit("\r", 1)[-1].startswith("epoch 2/2 4/4 [")
    assert "accuracy 0.7500" in final_lines[1]


def test_progress_bar_in_a_log_prints_one_line_per_epoch():
    out = run_bar(io.StringIO())
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 2
    assert lines[0].startswith("epoch 1/2 4/4 [========================]") and "loss 0.5000" in lines[0]


def test_fit_verbose_1_prints_the_bar(capsys):
    X, y = blobs()
    mlp().fit(X, y, loss="cross_entropy", epochs=2, batch_size=50, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2 3/3 [") and "accuracy" in lines[1]


# ------------------------------------------------------------------ divergence
def test_divergence_names_the_layer_and_step_and_keeps_finite_weights():
    X, y = blobs()
    X = X * 1e18
    model = mlp()
    before = []

    class Keep(Callback):
        def on_batch_begin(self, batch, logs=None):
            before.append(model.params.copy())

    with pytest.raises(DivergenceError, match=r"training diverged in epoch 1, batch (\d+): step \1: "
                                              r"the (output|gradient) of .*layer 'dense_\d'"):
        model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=1.0), callbacks=[Keep()])
    assert np.all(np.isfinite(model.params))
    np.testing.assert_array_equal(model.params, before[-1])


def test_divergence_of_the_loss_names_the_layer():
    X, y = blobs()
    model = mlp()
    model.build((2,))
    model.layers[0].W[...] = 1e30          # outputs overflow float32 in the first layer
    with pytest.raises(DivergenceError, match=r"step 1: the output of layer 'dense_0' \(Dense\) became NaN or infinite"):
        model.fit(X * 1e10, y, loss="cross_entropy")


def test_a_huge_learning_rate_stops_with_an_error_not_nan_weights():
    X, y = blobs()
    model = mlp()
    with pytest.raises(DivergenceError, match="training diverged"):
        model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=1e30), epochs=5)
    assert np.all(np.isfinite(model.params))


def test_fit_silences_overflow_warnings_only_while_it_runs():
    """fit enters np.errstate(over="ignore", invalid="ignore", divide="ignore") once for
    all its steps and callbacks, and gives the caller's settings back, after an error too."""
    X, y = blobs()
    seen = []
    spy = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(np.geterr()))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        mlp().fit(X, y, loss="cross_entropy", epochs=2, callbacks=[spy])
        assert np.geterr() == {"divide": "raise", "over": "raise", "under": "ignore", "invalid": "raise"}
        with pytest.raises(DivergenceError):
            mlp().fit(X * 1e18, y, loss="cross_entropy", optimizer=snn.SGD(lr=1.0))
        assert np.geterr()["over"] == np.geterr()["invalid"] == np.geterr()["divide"] == "raise"
    assert [(s["over"], s["invalid"], s["divide"]) for s in seen] == [("ignore", "ignore", "ignore")] * 2


# --------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_stops_after_the_current_batch_and_the_model_stays_usable(capsys):
    X, y = blobs()
    model = mlp()
    steps = []

    class PressCtrlC(Callback):
        def on_batch_end(self, batch, logs=None):
            steps.append(self.model.optimizer.iterations)
            if self.model.optimizer.iterations == 6:
                os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    history = model.fit(X, y, loss="cross_entropy", epochs=10, batch_size=32, verbose=2,
                        callbacks=[PressCtrlC()])
    assert history.interrupted and steps[-1] == 6 and model.optimizer.iterations == 6
    assert len(history.epoch) == 1                        # epoch 2 was cut short, not logged
    assert (history.completed_epochs, history.interrupted_batches) == (1, 2)
    assert "interrupted in epoch 2 after batch 2 of 4: 1 complete epoch;" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler    # the handler is restored
    assert np.all(np.isfinite(model.predict_proba(X)))
    more = model.fit(X, y, epochs=1)                      # and can go on training
    assert not more.interrupted and model.optimizer.iterations == 10


def test_ctrl_c_message_says_when_early_stopping_restored_other_weights(capsys):
    """EarlyStopping's on_train_end puts back the best epoch's weights after an
    interrupt; the message must not claim the model keeps those of its last step."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), rng.integers(0, 2, 100)
    at_interrupt = []

    class PressCtrlC(Callback):
        def on_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 14:
                at_interrupt.append(self.model.params.copy())
                os.kill(os.getpid(), signal.SIGINT)

    model = mlp()
    history = model.fit(X, y, loss="cross_entropy", epochs=10, batch_size=16, validation_split=0.2,
                        verbose=2, callbacks=[EarlyStopping(patience=50), PressCtrlC()])
    err = capsys.readouterr().err
    assert (history.completed_epochs, history.interrupted_batches) == (2, 4)
    assert not np.array_equal(model.params, at_interrupt[0])      # the best epoch's weights
    assert ("interrupted in epoch 3 after batch 4 of 5: 2 complete epochs; a callback "
            "(EarlyStopping) then restored the weights of an earlier epoch") in err
    assert "keeps the weights of its last step" not in err


# ------------------------------------------------------------------ checkpoints
def test_model_checkpoint_best_only_keeps_the_best_epoch(tmp_path):
    X, y, Xv, yv = noisy_regression()
    model = snn.Sequential([snn.Dense(64), snn.Tanh(), snn.Dense(1)], seed=0)
    path = tmp_path / "best.npz"
    checkpoint = snn.ModelCheckpoint(str(path), save_best_only=True)
    history = model.fit(X, y, loss="mse", optimizer=snn.Adam(lr=0.05), epochs=30, batch_size=None,
                        validation_data=(Xv, yv), callbacks=[checkpoint])
    val = history.history["val_loss"]
    improvements = sum(v < min(val[:i], default=math.inf) for i, v in enumerate(val))
    assert len(checkpoint.saved) == improvements < 30
    best = snn.load(str(path))
    assert best.evaluate(Xv, yv)["loss"] == pytest.approx(min(val), rel=1e-5)


def test_model_checkpoint_every_epoch_formats_the_path(tmp_path):
    X, y = blobs(n=30)
    checkpoint = snn.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{loss:.2f}.npz"), monitor="loss")
    mlp().fit(X, y, loss="cross_entropy", epochs=3, callbacks=[checkpoint])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[0].startswith("m-01-") and names[2].startswith("m-03-")
    with pytest.raises(ValueError, match="could not be formatted"):
        mlp().fit(X, y, loss="cross_entropy", epochs=1,
                  callbacks=[snn.ModelCheckpoint(str(tmp_path / "{nope}.npz"))])


# --------------------------------------------------------------------- History
def test_history_has_a_loss_list_from_the_start_and_after_a_ctrl_c_in_epoch_one(capsys):
    assert snn.History().history == {"loss": []}
    assert repr(snn.History()) == "History(epochs=0, last={})"
    X, y = blobs()

    class PressCtrlC(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    history = mlp().fit(X, y, loss="cross_entropy", epochs=3, batch_size=32, callbacks=[PressCtrlC()])
    assert history.interrupted and history["loss"] == [] and history.epoch == []
    assert (history.completed_epochs, history.interrupted_batches) == (0, 2)


def test_history_copies_and_pickles_as_a_record_without_the_model():
    import copy
    import pickle
    X, y = blobs()
    model = mlp()
    history = model.fit(X, y, loss="cross_entropy", epochs=2, validation_split=0.25)
    assert history.model is model
    for clone in (copy.deepcopy(history), pickle.loads(pickle.dumps(history))):
        assert clone.history == history.history and clone.epoch == [0, 1]
        assert (clone.interrupted, clone.completed_epochs, clone.interrupted_batches) == (False, 2, 0)
        assert clone.model is None
    assert history.model is model                       # the original keeps its model


def test_logged_figures_below_one_hundredth_keep_three_significant_digits():
    from scratchnn.callbacks import EpochLogger, format_number
    assert [format_number(v) for v in (0.12345, 0.0123, 0.00123, 1.2e-05, 0.0, 250.0)] == \
        ["0.1235", "0.0123", "0.00123", "1.2e-05", "0.0000", "250.0000"]
    assert format_number(0.000123, 6) == "0.000123" and format_number(1.5e-7, 6) == "1.5e-07"
    stream = io.StringIO()
    logger = EpochLogger(10, stream=stream)
    logger.on_epoch_begin(0)
    logger.on_epoch_end(0, {"loss": 0.5, "lr": 1.2e-05})
    assert stream.getvalue().endswith("loss 0.5000  lr 1.2e-05\n")   # not "lr 0.0000"
