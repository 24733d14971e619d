"""``scratchnn export MODEL OUT``: the ONNX file it writes, run in ONNX Runtime, and its errors."""

import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from scratchnn import Dense, Layer, ReLU, Sequential, Tanh   # noqa: E402
from scratchnn.layers import LAYERS                            # noqa: E402
from scratchnn.cli import main                                # noqa: E402
from scratchnn.optimizers import Adam                          # noqa: E402
from scratchnn.preprocessing import StandardScaler             # noqa: E402

CLASSES = ["cat", "dog", "eel"]


def three_blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = np.array([[0.0, 0.0, 1.0], [3.0, 0.0, -1.0], [0.0, 3.0, 0.0]])[y] + rng.normal(size=(n, 3))
    return X.astype(np.float32), y


@pytest.fixture
def trained(tmp_path):
    """A small classifier with class labels, trained and saved with the Python API."""
    X, y = three_blobs()
    model = Sequential([Dense(8), Tanh(), Dense(8), ReLU(), Dense(3)], seed=1)
    model.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=20, batch_size=16,
              verbose=0)
    model.classes = CLASSES
    path = tmp_path / "blobs.npz"
    model.save(path)
    return model, path, X


def run_onnx(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": X})))


def one_line_error(capsys, *parts):
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("scratchnn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and captured.out == ""
    for part in parts:
        assert part in err, err
    return err


def test_help_says_what_is_written(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: scratchnn export")
    text = " ".join(out.split())
    for part in ("'input'", "'output'", "'label'", "channels last", "dynamic batch",
                 "--probabilities", "--opset", "--overwrite", "pip install 'scratchnn[onnx]'"):
        assert part in text, part
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "export" in capsys.readouterr().out


def test_export_runs_in_onnx_runtime_as_in_scratchnn(trained, tmp_path, capsys):
    model, path, X = trained
    out = tmp_path / "blobs.onnx"
    assert main(["export", str(path), str(out)]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and line.startswith(f"wrote {out}: ONNX opset 17, input 'input' ")
    assert "'output'" in line and "raw outputs" in line and "'label'" not in line
    for batch in (X[:1], X[:7], X):
        got = run_onnx(out, batch)
        assert list(got) == ["output"]
        assert got["output"].dtype == np.float32
        np.testing.assert_allclose(got["output"], model.output(batch), rtol=1e-5, atol=1e-6)


def test_probabilities_add_the_label_output(trained, tmp_path, capsys):
    model, path, X = trained
    out = tmp_path / "p.onnx"
    assert main(["export", str(path), str(out), "--probabilities", "--opset", "18"]) == 0
    line = capsys.readouterr().out
    assert "ONNX opset 18" in line and "(probabilities)" in line and "'label'" in line
    got = run_onnx(out, X[:10])
    assert set(got) == {"output", "label"}
    np.testing.assert_allclose(got["output"], model.predict_proba(X[:10]), rtol=1e-5, atol=1e-6)
    assert got["label"].ravel().tolist() == np.asarray(model.predict(X[:10])).ravel().tolist()


def test_the_scaler_of_a_trained_model_is_folded_into_the_graph(tmp_path, capsys):
    """A model file from 'scratchnn train' holds a scaler: the graph takes raw features."""
    X, y = three_blobs(seed=3)
    X = X * np.float32(50) + np.float32(100)
    scaler = StandardScaler().fit(X)
    model = Sequential([Dense(6), ReLU(), Dense(3)], seed=2)
    model.fit(scaler.transform(X), y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=5,
              verbose=0)
    path, out = tmp_path / "scaled.npz", tmp_path / "scaled.onnx"
    model.save(path, metadata={"scaler": scaler.to_dict()})
    assert main(["export", str(path), str(out)]) == 0
    assert "the graph takes raw features" in capsys.readouterr().out
    np.testing.assert_allclose(run_onnx(out, X)["output"], model.output(scaler.transform(X)),
                               rtol=1e-4, atol=1e-4)
    # without class labels, 'label' holds class indices
    assert main(["export", str(path), str(out), "--probabilities", "--overwrite"]) == 0
    assert "'label' int64" in capsys.readouterr().out
    got = run_onnx(out, X)
    np.testing.assert_allclose(got["output"], model.predict_proba(scaler.transform(X)),
                               rtol=1e-4, atol=1e-5)
    assert (got["label"] == model.predict(scaler.transform(X))).mean() > 0.95   # rounding of the fold may flip a near tie


def test_an_existing_file_is_kept_unless_overwrite(trained, tmp_path, capsys):
    _, path, X = trained
    out = tmp_path / "taken.onnx"
    out.write_bytes(b"precious")
    assert main(["export", str(path), str(out)]) == 2
    one_line_error(capsys, f"OUT '{out}' exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    assert main(["export", str(path), str(out), "--overwrite"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    assert run_onnx(out, X[:2])["output"].shape == (2, 3)


def test_missing_and_corrupt_model_files_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "never.onnx"
    assert main(["export", str(tmp_path / "missing.npz"), str(out)]) == 2
    one_line_error(capsys, "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model at all")
    assert main(["export", str(bad), str(out)]) == 2
    one_line_error(capsys, "is not a scratchnn model file")
    assert not out.exists()


def test_bad_opset_and_bad_out(trained, tmp_path, capsys):
    _, path, _ = trained
    out = tmp_path / "o.onnx"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(path), str(out), "--opset", "0"])
    assert exit_info.value.code == 2
    assert "argument --opset: must be a positive integer, got 0" in capsys.readouterr().err
    for opset in ("16", "1000"):
        assert main(["export", str(path), str(out), "--opset", opset]) == 2
        one_line_error(capsys, "--opset must be from 17 to ", f"got {opset}")
    assert main(["export", str(path), str(tmp_path / "no" / "o.onnx")]) == 2
    one_line_error(capsys, "does not exist")
    assert main(["export", str(path), str(tmp_path)]) == 2
    one_line_error(capsys, "names a directory")
    assert not out.exists()


class Doubling(Layer):
    """A layer of one's own: model files can hold it once registered, ONNX has no form of it."""

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad_out):
        return 2 * grad_out


def test_a_layer_without_an_onnx_form_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(LAYERS, "Doubling", Doubling)
    model = Sequential([Dense(2), Doubling(name="twice")], seed=0)
    model.build((3,))
    path, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    model.save(path)
    assert main(["export", str(path), str(out)]) == 2
    one_line_error(capsys, "'twice'", "Doubling", "no ONNX form")
    assert not out.exists()


def test_regression_with_probabilities_is_refused(tmp_path, capsys):
    X, _ = three_blobs()
    model = Sequential([Dense(1)], seed=0)
    model.fit(X, X[:, :1], loss="mse", optimizer=Adam(lr=0.01), epochs=1, verbose=0)
    path, out = tmp_path / "r.npz", tmp_path / "r.onnx"
    model.save(path)
    assert main(["export", str(path), str(out), "--probabilities"]) == 2
    one_line_error(capsys)
    assert not out.exists()


def test_without_the_onnx_package_says_how_to_install_it(trained, tmp_path, capsys, monkeypatch):
    _, path, _ = trained
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(path), str(tmp_path / "x.onnx")]) == 2
    one_line_error(capsys, "onnx", "pip install 'scratchnn[onnx]'")


def test_the_cli_starts_without_importing_onnx():
    import subprocess
    code = "import sys, scratchnn.cli; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
