"""The examples run as the README says."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run(script, tmp_path, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_xor_example(tmp_path):
    out = run("xor.py", tmp_path)
    assert "epoch  10000  loss" in out and "gradient check, largest relative error" in out
    assert "[0 1] -> 0.9" in out and "[1 1] -> 0.0" in out


def test_spirals_example(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("spirals.py", tmp_path)
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.9
    for name in ("spirals_boundary.png", "spirals_history.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_fashion_mnist_example_quick_run(tmp_path):
    from scratchnn.datasets import DatasetNotFoundError, load_fashion_mnist
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST files not installed")
    out = run("fashion_mnist_mlp.py", tmp_path, "1")
    accuracy = float(out.split("test accuracy")[1].split()[0])
    assert accuracy > 0.8
    first = out.split("first test images: ")[1].splitlines()[0]
    assert first.startswith("['") and "np.str_" not in first      # plain strings
    # the saved file is the trained model: it scores the printed accuracy
    import scratchnn as snn
    _, _, X_test, y_test = load_fashion_mnist()
    saved = snn.load(tmp_path / "fashion_mlp.npz")
    assert saved.evaluate(X_test, y_test)["accuracy"] == pytest.approx(accuracy, abs=1e-4)


def test_fashion_mnist_cnn_example_quick_run(tmp_path):
    from scratchnn.datasets import DatasetNotFoundError, load_fashion_mnist
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST files not installed")
    out = run("fashion_mnist_cnn.py", tmp_path, "1", "3000")
    accuracy = float(out.split("test accuracy")[1].split()[0])
    assert accuracy > 0.7                          # chance is 0.1; one epoch on 3,000 images
    assert "(None, 28, 28, 32)" in out and "Buffers (not trained): 192" in out
    import scratchnn as snn
    _, _, X_test, y_test = load_fashion_mnist(images=True)
    saved = snn.load(tmp_path / "fashion_cnn.npz")
    assert saved.evaluate(X_test, y_test)["accuracy"] == pytest.approx(accuracy, abs=1e-4)
