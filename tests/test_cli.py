"""The scratchnn command."""

import gzip
import re
import struct
from pathlib import Path

import numpy as np

import pytest

from scratchnn.cli import main


def test_train_xor_runs_the_seed_recipe(capsys):
    assert main(["train", "xor"]) == 0
    out = capsys.readouterr().out.splitlines()
    losses = [float(m.group(1)) for line in out if (m := re.match(r"epoch +\d+ +loss ([\d.]+)", line))]
    assert len(losses) == 10 and losses[-1] < losses[0] and losses[-1] < 0.05
    predictions = [line.split() for line in out[-4:]]
    assert [row[:2] for row in predictions] == [["0", "0"], ["0", "1"], ["1", "0"], ["1", "1"]]
    p = [float(row[2]) for row in predictions]
    assert p[0] < 0.1 and p[1] > 0.9 and p[2] > 0.9 and p[3] < 0.1


def test_train_xor_options(capsys):
    assert main(["train", "xor", "--activation", "tanh", "--optimizer", "adam", "--lr", "0.05",
                 "--epochs", "2000", "--hidden", "8", "--seed", "1", "--print-every", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "MLP 2-8-1, tanh, binary_cross_entropy, adam lr 0.05, 2000 epochs" in out[0]
    assert sum(line.startswith("epoch") for line in out) == 4
    p = [float(line.split()[2]) for line in out[-4:]]
    assert p[0] < 0.5 < p[1] and p[2] > 0.5 > p[3]


def test_bad_option_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "xor", "--epochs", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --epochs: must be a positive integer, got 0" in err
    assert "Traceback" not in err


# ------------------------------------------------------------ the full workflow
def numbers_in(line):
    return [float(x) for x in re.findall(r"\d+\.\d+", line)]


def test_train_spirals_saves_plots_and_the_model_then_evaluate_and_info(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    model_path, plot_dir = tmp_path / "spirals.npz", tmp_path / "plots"
    assert main(["train", "spirals", "--epochs", "150", "--verbose", "0", "--output", str(model_path),
                 "--plots", str(plot_dir)]) == 0
    out = capsys.readouterr().out
    # the validation split is counted apart from the samples that are trained on
    assert out.startswith("spirals: 180 training, 45 validation and 75 test samples; MLP 2-64-64-3, "
                          "relu, cross_entropy, adam lr 0.01")
    test_line = next(line for line in out.splitlines() if line.startswith("test loss"))
    assert "test accuracy" in test_line and numbers_in(test_line)[1] > 0.9
    assert model_path.exists()
    for name in ("history.png", "confusion_matrix.png", "decision_boundary.png"):
        assert (plot_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["evaluate", str(model_path), "spirals"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "spirals: 300 samples" and numbers_in(out[1])[1] > 0.85

    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "dense_0 (Dense)" in out and "Total params: 4,547" in out
    assert "optimizer: Adam(lr=0.01" in out and "dataset: spirals" in out and "test_scores" in out


def write_iris_like(path, n=90, seed=0):
    rng = np.random.default_rng(seed)
    names = np.array(["setosa", "versicolor", "virginica"])
    y = np.arange(n) % 3
    X = np.array([[5.0, 3.4], [6.0, 2.8], [6.6, 3.0]])[y] + rng.normal(scale=0.15, size=(n, 2))
    with open(path, "w") as handle:
        handle.write("sepal_length,species,sepal_width\n")
        for (a, b), label in zip(X, names[y]):
            handle.write(f"{a:.3f},{label},{b:.3f}\n")
    return names[y]


def test_csv_classification_with_text_labels_train_predict_evaluate(tmp_path, capsys):
    data, model_path = tmp_path / "flowers.csv", tmp_path / "flowers.npz"
    labels = write_iris_like(data)
    assert main(["train", str(data), "--target", "species", "--epochs", "100", "--verbose", "0",
                 "--output", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "flowers.csv: 58 training, 14 validation and 18 test samples; MLP 2-64-32-3" in out
    assert numbers_in(next(l for l in out.splitlines() if l.startswith("test loss")))[1] > 0.9

    # predict: the feature columns in another order, plus a column the model ignores
    rows = tmp_path / "new.csv"
    with open(data) as src, open(rows, "w") as dst:
        lines = src.read().splitlines()
        dst.write("sepal_width,note,sepal_length\n")
        for line in lines[1:]:
            a, _, b = line.split(",")
            dst.write(f"{b},x,{a}\n")
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model_path), str(rows), "--output", str(predictions)]) == 0
    assert capsys.readouterr().out == f"wrote 90 predictions to {predictions}\n"
    table = predictions.read_text().splitlines()
    assert table[0] == "prediction,p_setosa,p_versicolor,p_virginica"
    predicted = np.array([line.split(",")[0] for line in table[1:]])
    assert len(predicted) == 90 and np.mean(predicted == labels) > 0.9
    probabilities = np.array([[float(v) for v in line.split(",")[1:]] for line in table[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)

    assert main(["evaluate", str(model_path), str(data)]) == 0
    assert numbers_in(capsys.readouterr().out.splitlines()[1])[1] > 0.9


def test_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [2.0, -1.0, 0.5] + 3
    path = tmp_path / "reg.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,target", comments="")
    assert main(["train", str(path), "--target", "target", "--epochs", "100", "--verbose", "0"]) == 0
    test_line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("test loss"))
    assert "test r2" in test_line and numbers_in(test_line)[-1] > 0.95


@pytest.mark.parametrize("argv, message", [
    (["train", "nope"], "DATASET must be one of xor, spirals, moons, fashion-mnist or a CSV file, got 'nope'"),
    (["train", "missing.csv", "--target", "y"], "missing.csv"),
    (["evaluate", "missing.npz", "xor"], "missing.npz"),
    (["info", "missing.npz"], "missing.npz"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchnn: error: ") and message in err and err.count("\n") == 1


def test_csv_without_target_and_a_corrupt_model_file(tmp_path, capsys):
    data = tmp_path / "d.csv"
    write_iris_like(data)
    assert main(["train", str(data)]) == 2
    assert "needs --target COLUMN" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model at all")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "is not a scratchnn model file" in err and err.count("\n") == 1


def test_fashion_mnist_missing_everywhere_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from scratchnn.datasets import fashion_mnist

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(fashion_mnist, "_urlopen", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SCRATCHNN_DATA", str(tmp_path / "nothing"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    assert main(["train", "fashion-mnist", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchnn: error: ") and "apt-get install dataset-fashion-mnist" in err


def test_help_of_every_command_is_complete(capsys):
    for command in ("train", "evaluate", "predict", "info"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert out.startswith(f"usage: scratchnn {command}")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    # the cnn recipe, layer by layer
    assert "Conv2D(32, 3, padding='same'), BatchNormalization, ReLU, MaxPool2D(2)" in " ".join(out.split())
    for option in ("--model", "--hidden", "--activation", "--dropout", "--loss", "--optimizer", "--lr", "--epochs",
                   "--batch-size", "--validation-split", "--early-stopping", "--schedule", "--seed",
                   "--target", "--output", "--plots", "--verbose"):
        assert option in out


def test_predict_with_several_yes_no_outputs(tmp_path, capsys):
    """binary_cross_entropy on k outputs (multi-label) writes k predictions and k
    probabilities per row (it failed with "cannot reshape array of size 60")."""
    import scratchnn as snn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    Y = (rng.standard_normal((20, 3)) > 0).astype(float)
    model = snn.Sequential([snn.Dense(3)], seed=0)
    model.fit(X, Y, loss="binary_cross_entropy")
    model.save(tmp_path / "m.npz")
    (tmp_path / "in.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in X) + "\n")
    assert main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "in.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "prediction_0,prediction_1,prediction_2,probability_0,probability_1,probability_2"
    values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_array_equal(values[:, :3], model.predict(X))
    np.testing.assert_allclose(values[:, 3:], model.predict_proba(X), atol=1e-6)


def test_predict_with_a_model_saved_without_feature_names(tmp_path, capsys):
    """A model saved from Python (no column names, no scaler) predicts every column of
    the file, read as load_csv reads headers (names stripped, blank lines skipped)."""
    import scratchnn as snn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    model = snn.Sequential([snn.Dense(8), snn.Tanh(), snn.Dense(2)], seed=0)
    model.fit(X, y, loss="cross_entropy", epochs=50, batch_size=None)
    model.save(tmp_path / "m.npz")
    rows = "\n".join(f"{a},{b}" for a, b in X[:5])
    (tmp_path / "in.csv").write_text(f"\nx1, x2\n{rows}\n")
    main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "in.csv")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "prediction,p_0,p_1"
    assert [int(line.split(",")[0]) for line in lines[1:]] == model.predict(X[:5]).tolist()
    proba = model.predict_proba(X[:5])
    for line, p in zip(lines[1:], proba):
        np.testing.assert_allclose([float(v) for v in line.split(",")[1:]], p, atol=1e-6)


# ------------------------------------------------------------ parser errors
def test_version(capsys):
    import scratchnn
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"scratchnn {scratchnn.__version__}\n"


@pytest.mark.parametrize("argv, prog, message", [
    ([], "scratchnn", "missing COMMAND: train, evaluate, predict, info or export"),
    (["trian", "xor"], "scratchnn", "invalid choice: 'trian'"),
    (["train"], "scratchnn train", "the following arguments are required: DATASET"),
    (["train", "xor", "--epoch", "3"], "scratchnn train",
     "unrecognized arguments: --epoch 3; did you mean --epochs?"),
    (["train", "xor", "--hidden", "4,,2"], "scratchnn train", "argument --hidden: must be comma-separated"),
    (["train", "xor", "--hidden", "4,"], "scratchnn train", "argument --hidden: must be comma-separated"),
    (["train", "xor", "--hidden", "99999999999999999999999"], "scratchnn train",
     "layer sizes must be at most 2,147,483,647"),
    (["train", "xor", "--lr", "nan"], "scratchnn train", "argument --lr: must be a positive number, got nan"),
    (["train", "xor", "--lr", "1e400"], "scratchnn train", "argument --lr: must be a positive number"),
    (["train", "xor", "--lr", "1e-400"], "scratchnn train", "argument --lr: must be a positive number"),
    (["train", "xor", "--lr", "-1"], "scratchnn train", "argument --lr: must be a positive number"),
    (["train", "xor", "--epochs", "1e3"], "scratchnn train", "argument --epochs: must be a positive integer"),
    (["train", "xor", "--dropout", "1"], "scratchnn train", "argument --dropout: must be a number in [0, 1)"),
    (["train", "xor", "--validation-split", "inf"], "scratchnn train", "argument --validation-split"),
    (["train", "xor", "--batch-size", "-1"], "scratchnn train", "argument --batch-size: must be an integer >= 0"),
    (["train", "xor", "--seed", "-1"], "scratchnn train", "argument --seed: must be an integer >= 0"),
    (["train", "xor", "--epochs", "1" + "0" * 30], "scratchnn train",
     "argument --epochs: must be at most 9,223,372,036,854,775,807"),
    (["train", "xor", "--early-stopping", "1" + "0" * 400], "scratchnn train", "must be at most"),
    (["train", "xor", "--verbose", "5"], "scratchnn train", "argument --verbose: invalid choice"),
    (["evaluate", "m.npz"], "scratchnn evaluate", "the following arguments are required: DATASET"),
    (["info", "a.npz", "b.npz"], "scratchnn info", "unrecognized arguments: b.npz"),
    (["predict", "m.npz", "x.csv", "--ouput", "p.csv"], "scratchnn predict", "did you mean --output?"),
])
def test_parser_errors_are_one_line_naming_the_command(argv, prog, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{prog}: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "usage:" not in captured.err


# ------------------------------------------------- checks made before training
def write_regression(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ [2.0, -1.0, 0.5] * 50 + 200      # far from 0: float32 outputs like 206.92464
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,target", comments="")
    return path


def refused(argv, capsys, *message):
    """main(argv) fails with one line holding every part of ``message``, having trained nothing."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "training started before the error was found"
    assert captured.err.startswith("scratchnn: error: ") and captured.err.count("\n") == 1
    for part in message:
        assert part in captured.err
    assert "Traceback" not in captured.err and ".tmp" not in captured.err
    return captured.err


def test_the_output_and_plot_paths_are_checked_before_training(tmp_path, capsys):
    missing = tmp_path / "nodir" / "model.npz"
    refused(["train", "xor", "-o", missing], capsys, f"--output '{missing}'", "does not exist")
    # fashion-mnist too: the check comes before its 60,000 images are even loaded
    refused(["train", "fashion-mnist", "-o", missing], capsys, "does not exist")
    refused(["train", "xor", "-o", tmp_path], capsys, "names a directory; give a file name")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    refused(["train", "xor", "--plots", a_file], capsys, "--plots", "is not a directory")
    refused(["train", "xor", "--plots", a_file / "sub"], capsys, "--plots", "is not a directory")
    refused(["predict", "m.npz", "x.csv", "-o", tmp_path / "no" / "p.csv"], capsys, "does not exist")
    refused(["predict", "m.npz", "x.csv", "-o", tmp_path], capsys, "names a directory", "predictions.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_plots_without_matplotlib_are_refused_before_training(tmp_path, monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    refused(["train", "xor", "--plots", tmp_path / "plots", "-o", tmp_path / "m.npz"], capsys,
            "--plots needs matplotlib: pip install 'scratchnn[plots]'")
    assert not any(tmp_path.iterdir())


def test_settings_that_would_be_ignored_are_refused(tmp_path, capsys):
    data = write_regression(tmp_path / "reg.csv")
    refused(["train", "moons", "--loss", "mse"], capsys, "--loss mse does not apply here",
            "classification")
    refused(["train", "xor", "--loss", "huber"], capsys, "xor accepts --loss bce, mse")
    refused(["train", data, "--target", "target", "--loss", "bce"], capsys, "regression task",
            "mse, mae, huber")
    refused(["train", "xor", "--early-stopping", "5"], capsys, "--early-stopping watches the "
            "validation loss", "--validation-split")
    refused(["train", "moons", "--early-stopping", "5", "--validation-split", "0"], capsys,
            "without a validation split")
    refused(["train", "xor", "--target", "y"], capsys, "--target applies to CSV files only, not to xor")
    refused(["train", "xor", "--samples", "10"], capsys,
            "--samples applies to spirals, moons and fashion-mnist only")
    refused(["train", "moons", "--data-dir", tmp_path], capsys, "--data-dir applies to fashion-mnist only")
    refused(["train", "moons", "--task", "regression"], capsys, "--task applies to CSV files only")
    refused(["train", data, "--target", "nope"], capsys, "target column 'nope' not found")
    refused(["train", "moons", "--samples", "2"], capsys, "--validation-split 0.2 (the moons default) "
            "of 1 training sample leaves 0 for validation")
    refused(["train", "spirals", "--samples", "2"], capsys, "--samples must be between 3")
    refused(["train", "moons", "--samples", "10000000000"], capsys, "and 10,000,000 for moons")
    refused(["train", "fashion-mnist", "--data-dir", tmp_path], capsys, "--data-dir", "lacks")
    refused(["train", tmp_path], capsys, "is a directory")
    refused(["train", "xorr"], capsys, "did you mean 'xor'?")
    refused(["evaluate", "m.npz", "xor", "--seed", "3"], capsys, "--seed applies to spirals and moons only")


def test_a_batch_larger_than_the_data_is_the_full_batch(capsys):
    assert main(["train", "moons", "--batch-size", "1" + "0" * 400, "--epochs", "1", "--verbose", "0"]) == 0
    assert ", batch full" in capsys.readouterr().out.splitlines()[0]
    assert main(["train", "moons", "--seed", "1" + "0" * 400, "--epochs", "1", "--verbose", "0"]) == 0


def test_the_csv_recipe_turns_early_stopping_off_without_a_validation_split(tmp_path, capsys):
    data = write_regression(tmp_path / "reg.csv")
    assert main(["train", str(data), "--target", "target", "--validation-split", "0", "--epochs", "2",
                 "--verbose", "0"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("reg.csv: 96 training and 24 test samples;") and "early stopping" not in first


def test_a_network_too_large_for_memory_is_one_line(capsys):
    err = refused_after_describe(["train", "xor", "--hidden", "2147483647,2147483647"], capsys)
    assert "memory" in err


def refused_after_describe(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("scratchnn: error: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    return captured.err


def test_a_diverging_run_is_one_line(capsys):
    err = refused_after_describe(["train", "moons", "--lr", "1e30", "--epochs", "3", "--verbose", "0"],
                                 capsys)
    assert "training diverged in epoch 1" in err and "lower the learning rate" in err


# ------------------------------------------------------------------- Ctrl-C
def press_ctrl_c_at(monkeypatch, step):
    """Have training receive a real SIGINT after optimizer step ``step``."""
    import os
    import signal
    from scratchnn import cli
    from scratchnn.callbacks import Callback

    class PressCtrlC(Callback):
        def on_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == step:
                os.kill(os.getpid(), signal.SIGINT)

    original = cli._callbacks
    monkeypatch.setattr(cli, "_callbacks", lambda *a: [*original(*a), PressCtrlC()])


def test_ctrl_c_saves_the_model_exits_130_and_counts_alike_everywhere(tmp_path, monkeypatch, capsys):
    press_ctrl_c_at(monkeypatch, 6)            # moons: 120 training samples, 4 batches an epoch
    model_path = tmp_path / "m.npz"
    assert main(["train", "moons", "--epochs", "50", "--verbose", "0", "-o", str(model_path)]) == 130
    captured = capsys.readouterr()
    assert "trained 1 epoch and 2 of 4 batches of epoch 2 in " in captured.out
    assert "(interrupted by Ctrl-C)" in captured.out and f"saved {model_path}" in captured.out
    assert captured.err == "scratchnn: interrupted\n"
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "epochs_trained: 1, then 2 of 4 batches of epoch 2 (interrupted by Ctrl-C)" in out
    assert ", 6 steps" in out and "samples: training 120, validation 30, test 50" in out


def test_ctrl_c_between_epochs_counts_whole_epochs(tmp_path, monkeypatch, capsys):
    press_ctrl_c_at(monkeypatch, 3)            # xor: one full batch an epoch
    model_path = tmp_path / "xor.npz"
    assert main(["train", "xor", "--epochs", "100", "-o", str(model_path)]) == 130
    assert "trained 3 epochs in " in capsys.readouterr().out
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "epochs_trained: 3 (interrupted by Ctrl-C after epoch 3)" in out and ", 3 steps" in out


def test_ctrl_c_in_the_first_epoch_still_draws_what_it_can(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    press_ctrl_c_at(monkeypatch, 2)
    plot_dir = tmp_path / "plots"
    assert main(["train", "moons", "--epochs", "5", "--verbose", "2", "--plots", str(plot_dir)]) == 130
    captured = capsys.readouterr()
    assert "trained 0 epochs and 2 of 4 batches of epoch 1 in " in captured.out
    assert "plot history.png skipped: no epoch was completed" in captured.out
    assert "interrupted in epoch 1 after batch 2 of 4: 0 complete epochs" in captured.err
    assert sorted(p.name for p in plot_dir.iterdir()) == ["confusion_matrix.png", "decision_boundary.png"]


def test_a_closed_pipe_ends_quietly(tmp_path):
    """scratchnn train xor | head -1: no error message, the status of a SIGPIPE."""
    import subprocess
    import sys
    with subprocess.Popen([sys.executable, "-m", "scratchnn", "train", "xor"], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.close()                 # the reader is gone before the first line
        err = process.stderr.read()
        assert process.wait(timeout=120) == 141
    assert err == b""


# ---------------------------------------------------------------- cosmetics
def test_regression_predictions_print_without_float32_noise(tmp_path, capsys):
    data = write_regression(tmp_path / "reg.csv")
    model_path = tmp_path / "reg.npz"
    assert main(["train", str(data), "--target", "target", "--epochs", "3", "--verbose", "0",
                 "-o", str(model_path)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model_path), str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prediction" and len(lines) == 121
    import scratchnn as snn
    expected = snn.load(model_path).predict(
        snn.preprocessing.StandardScaler.from_dict(snn.load(model_path).metadata["scaler"]).transform(
            snn.datasets.load_csv(data, "target").X))[:, 0]
    for text, value in zip(lines[1:], expected):
        assert text == str(np.float32(value))          # the shortest text of the float32
        assert np.float32(float(text)) == value


def test_xor_reports_its_training_points_as_training_figures(tmp_path, capsys):
    model_path = tmp_path / "xor.npz"
    assert main(["train", "xor", "--epochs", "10", "-o", str(model_path)]) == 0
    assert capsys.readouterr().out.startswith("xor: 4 training samples; MLP 2-4-1")
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "training_scores: {" in out and "test_scores" not in out


def test_xor_plots_say_they_show_the_training_points(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from scratchnn import plots
    titles = []
    for name in ("plot_confusion_matrix", "plot_decision_boundary"):
        original = getattr(plots, name)

        def spy(*args, _original=original, **kwargs):
            titles.append(kwargs["title"])
            return _original(*args, **kwargs)
        monkeypatch.setattr(plots, name, spy)
    assert main(["train", "xor", "--epochs", "10", "--plots", str(tmp_path)]) == 0
    assert titles == ["xor: training set; xor has no test set",
                      "xor: decision boundary (training set; xor has no test set)"]


def test_evaluate_refuses_a_data_set_the_model_was_not_trained_on(tmp_path, capsys):
    model_path = tmp_path / "xor.npz"
    assert main(["train", "xor", "--epochs", "10", "-o", str(model_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model_path), "moons"]) == 2
    assert capsys.readouterr().err == "scratchnn: error: the model was trained on xor, not on moons\n"


def test_early_stopping_says_which_weights_the_model_kept(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), rng.integers(0, 2, 100)       # labels that cannot be learned
    data = tmp_path / "noise.csv"
    data.write_text("a,b,c,d,label\n" + "".join(
        ",".join(f"{v:.3f}" for v in row) + f",{'ab'[label]}\n" for row, label in zip(X, y)))
    model_path = tmp_path / "noise.npz"
    assert main(["train", str(data), "--target", "label", "--early-stopping", "2", "--lr", "0.01",
                 "--verbose", "0", "-o", str(model_path)]) == 0
    trained = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trained"))
    match = re.fullmatch(r"trained (\d+) epochs in [\d.]+ s \(early stopping: val_loss did not improve "
                         r"for 2 epochs; kept the weights of epoch (\d+), val_loss [\d.]+\)", trained)
    assert match and int(match[2]) == int(match[1]) - 2
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert f"epochs_trained: {match[1]}\n" in out
    assert f"weights_of_epoch: {match[2]} (the best epoch, kept by early stopping)" in out


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_plot_folder_that_cannot_be_created_is_found_before_training(capsys):
    # /proc refuses new entries even to root, for whom os.access says yes
    refused(["train", "xor", "--plots", "/proc/scratchnn-plots"], capsys,
            "--plots '/proc/scratchnn-plots': cannot create it in '/proc'")
    refused(["train", "xor", "-o", "/proc/m.npz"], capsys, "--output '/proc/m.npz': cannot create files")


# ------------------------------------------------------------- fashion-mnist, --model cnn
REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
CNN_LAYERS = ["Conv2D", "BatchNormalization", "ReLU", "MaxPool2D"] * 2 + \
             ["Flatten", "Dense", "ReLU", "Dropout", "Dense"]


def write_idx_gz(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


@pytest.fixture(scope="module")
def small_fashion(tmp_path_factory):
    """A --data-dir of the first 600 training and 200 test images of the real Fashion-MNIST,
    so that training, evaluating and plotting a CNN take seconds; and its test images."""
    from scratchnn.datasets import fashion_mnist as fm
    if not all((REAL_DIR / name).is_file() for name in fm.FILES):
        pytest.skip(f"Fashion-MNIST not installed in {REAL_DIR} (apt-get install dataset-fashion-mnist)")
    X_train, y_train, X_test, y_test = fm.load_fashion_mnist(REAL_DIR, flatten=False,
                                                             normalize=False, download=False)
    directory = tmp_path_factory.mktemp("fashion")
    for name, array in ((fm.TRAIN_IMAGES, X_train[:600]), (fm.TRAIN_LABELS, y_train[:600]),
                        (fm.TEST_IMAGES, X_test[:200]), (fm.TEST_LABELS, y_test[:200])):
        write_idx_gz(directory / name, array)
    return directory, (X_test[:200, :, :, None] / np.float32(255), y_test[:200])


def write_pixel_rows(path, images):
    """A CSV of one row of 784 pixels per image, as `predict` reads images."""
    rows = images.reshape(len(images), -1)
    np.savetxt(path, rows, delimiter=",", fmt="%.9g", comments="",
               header=",".join(f"pixel{i}" for i in range(rows.shape[1])))


def test_cnn_trains_saves_and_the_saved_model_evaluates_predicts_and_shows_info(
        small_fashion, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import scratchnn as snn
    from scratchnn.datasets import CLASS_NAMES
    directory, (X_test, y_test) = small_fashion
    model_path, plots = tmp_path / "cnn.npz", tmp_path / "plots"
    assert main(["train", "fashion-mnist", "--model", "cnn", "--data-dir", str(directory),
                 "--epochs", "1", "--verbose", "0", "-o", str(model_path), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("fashion-mnist: 540 training, 60 validation and 200 test samples; CNN 28x28x1: "
                      "conv3x3 32, batchnorm, relu, maxpool 2, conv3x3 64, batchnorm, relu, maxpool 2, "
                      "flatten, dense 128, relu, dropout 0.3, dense 10, cross_entropy, adam lr 0.001, "
                      "1 epoch, batch 128, cosine schedule")
    assert re.fullmatch(r"trained 1 epoch in \d+\.\d s", out[1])
    test_line = out[2]
    assert re.fullmatch(r"test loss [\d.]+  test accuracy [\d.]+", test_line)
    accuracy = numbers_in(test_line)[1]
    assert accuracy > 0.3                       # 5 steps of Adam; chance is 0.1
    assert out[3] == f"saved {model_path}"
    assert out[4:] == [f"plot {plots / name}" for name in
                       ("history.png", "confusion_matrix.png", "predictions.png", "filters.png")]
    for name in ("filters.png", "predictions.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the file holds the CNN, which takes images; its predictions are the accuracy printed
    model = snn.load(model_path)
    assert model.input_shape == (28, 28, 1)
    assert [type(layer).__name__ for layer in model.layers] == CNN_LAYERS
    assert model.metadata["settings"]["model"] == "cnn" and model.metadata["settings"]["epochs"] == 1
    predicted = model.predict(X_test)
    assert round(float(np.mean(predicted == np.asarray(CLASS_NAMES)[y_test])), 4) == accuracy

    # evaluate loads the test images as the model takes them, and finds the same figures
    assert main(["evaluate", str(model_path), "fashion-mnist", "--data-dir", str(directory)]) == 0
    assert capsys.readouterr().out.splitlines() == ["fashion-mnist: 200 samples",
                                                    test_line.replace("test ", "")]

    # predict reads one row of 784 pixels per image
    write_pixel_rows(tmp_path / "images.csv", X_test[:6])
    assert main(["predict", str(model_path), str(tmp_path / "images.csv")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "prediction," + ",".join(f"p_{name}" for name in CLASS_NAMES)
    assert [row.split(",")[0] for row in table[1:]] == predicted[:6].tolist()
    np.testing.assert_allclose([[float(v) for v in row.split(",")[1:]] for row in table[1:]],
                               model.predict_proba(X_test[:6]), atol=2e-6)
    np.savetxt(tmp_path / "short.csv", np.zeros((2, 5)), delimiter=",", header="a,b,c,d,e",
               comments="")
    refused(["predict", model_path, tmp_path / "short.csv"], capsys, "has 5 values per sample, but "
            "the model takes samples of shape (28, 28, 1) (784 values, read row by row)")

    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "input (None, 28, 28, 1)" in out and "(None, 28, 28, 32)" in out
    assert "conv2d_0 (Conv2D)" in out and "dataset: fashion-mnist" in out
    assert f"Total params: {model.count_params():,}" in out
    # 3x3 kernels of 1 and of 32 channels, Dense 3136-128 and 128-10, batch norms' scale and shift
    assert model.count_params() == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (3136 * 128 + 128) + \
        (128 * 10 + 10) + sum(p.size for name, p in model.named_parameters() if "batch" in name)


def test_mlp_on_a_sample_of_fashion_mnist_plots_its_predictions_as_images(small_fashion, tmp_path,
                                                                           capsys):
    pytest.importorskip("matplotlib")
    directory, _ = small_fashion
    plots, model_path = tmp_path / "plots", tmp_path / "mlp.npz"
    assert main(["train", "fashion-mnist", "--samples", "300", "--data-dir", str(directory),
                 "--epochs", "2", "--verbose", "0", "--plots", str(plots), "-o", str(model_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    # --samples 300 of 600 training images: 300 of them, and half of the 200 test images
    assert out[0].startswith("fashion-mnist: 270 training, 30 validation and 100 test samples; "
                             "MLP 784-512-256-10, relu")
    assert f"plot {plots / 'predictions.png'}" in out and "filters.png" not in " ".join(out)
    assert sorted(path.name for path in plots.iterdir()) == ["confusion_matrix.png", "history.png",
                                                             "predictions.png"]
    # the MLP's file takes rows: evaluate loads the 200 test images as rows
    assert main(["evaluate", str(model_path), "fashion-mnist", "--data-dir", str(directory)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "fashion-mnist: 200 samples" and 0.1 < numbers_in(out[1])[1] <= 1


def test_samples_of_fashion_mnist_are_stratified_and_follow_the_seed():
    from scratchnn.cli import _fashion_subset
    y_train, y_test = np.arange(600) % 10, np.arange(120) % 10
    X_train, X_test = np.arange(600)[:, None] * 1.0, np.arange(120)[:, None] * 1.0
    X, y, Xt, yt = _fashion_subset(X_train, y_train, X_test, y_test, 100, seed=3)
    assert X.shape == (100, 1) and Xt.shape == (20, 1)           # 100 / 600 of 120 test samples
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 10))
    np.testing.assert_array_equal(np.bincount(yt), np.full(10, 2))
    np.testing.assert_array_equal(y_train[X[:, 0].astype(int)], y)  # images keep their labels
    assert np.all(np.diff(X[:, 0]) > 0)                             # in the files' order
    again = _fashion_subset(X_train, y_train, X_test, y_test, 100, seed=3)
    other = _fashion_subset(X_train, y_train, X_test, y_test, 100, seed=4)
    np.testing.assert_array_equal(again[0], X)
    assert not np.array_equal(other[0], X)
    # all of them: the arrays themselves
    everything = _fashion_subset(X_train, y_train, X_test, y_test, 600, seed=3)
    assert everything[0] is X_train and everything[2] is X_test


def test_model_cnn_options_are_checked_before_any_data_is_loaded(tmp_path, capsys):
    data = write_regression(tmp_path / "reg.csv")
    refused(["train", "xor", "--model", "cnn"], capsys,
            "--model cnn applies to fashion-mnist only (images), not to xor")
    refused(["train", "moons", "--model", "cnn", "--samples", "50"], capsys, "not to moons")
    refused(["train", data, "--target", "target", "--model", "cnn"], capsys,
            f"not to the CSV file '{data}'")
    # the data directory is never looked at: these come first
    refused(["train", "fashion-mnist", "--model", "cnn", "--hidden", "64", "--data-dir", tmp_path],
            capsys, "--hidden applies to --model mlp only; the layers of --model cnn are fixed")
    refused(["train", "fashion-mnist", "--model", "cnn", "--activation", "tanh"], capsys,
            "--activation applies to --model mlp only")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "fashion-mnist", "--model", "rnn"])
    assert exit_info.value.code == 2
    assert "argument --model: invalid choice: 'rnn' (choose from" in capsys.readouterr().err
    # --model mlp is what every data set trains anyway
    assert main(["train", "moons", "--model", "mlp", "--epochs", "1", "--verbose", "0"]) == 0
    assert "MLP 2-16-16-2" in capsys.readouterr().out


def test_samples_beyond_the_fashion_mnist_files_are_refused(small_fashion, capsys):
    directory, _ = small_fashion
    refused(["train", "fashion-mnist", "--data-dir", directory, "--samples", "601"], capsys,
            "--samples must be at most 600 for fashion-mnist (its training images), got 601")
