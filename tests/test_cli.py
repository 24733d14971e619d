"""The scratchnn command."""

import re

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
    assert out.startswith("spirals: 225 training samples; MLP 2-64-64-3, relu, cross_entropy, adam lr 0.01")
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
    assert "flowers.csv: 72 training samples; MLP 2-64-32-3" in out
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
    for option in ("--hidden", "--activation", "--dropout", "--loss", "--optimizer", "--lr", "--epochs",
                   "--batch-size", "--validation-split", "--early-stopping", "--schedule", "--seed",
                   "--target", "--output", "--plots", "--verbose"):
        assert option in out


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
