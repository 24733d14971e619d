"""The benchmark harness (benchmarks/) runs end to end on tiny settings and writes sane results.

No timing is asserted: the machines that run the tests are shared and noisy. Only the shape
of the results, their consistency (ratios are the per-round quotients, the FLOP count is the
network's) and the correctness of what was timed (the XOR systems agree) are checked.
"""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
SYSTEMS = ["scratchnn", "numpy-tutorial"] + ["torch"] * HAS_TORCH + ["sklearn"] * HAS_SKLEARN
SAMPLES = 1000
# FLOPs of one sample in one epoch: forward and dW products of the 3 layers, dX of layers 2 and 3.
FLOPS_PER_SAMPLE = 4 * (784 * 256 + 256 * 128 + 128 * 10) + 2 * (10 * 128 + 128 * 256)
# The CNN on tiny settings: 2 batches of 128 and one of 44, 2 epochs, 500 test images.
CNN_SYSTEMS = ["scratchnn"] + ["torch"] * HAS_TORCH
CNN_SAMPLES, CNN_EPOCHS, CNN_TEST = 300, 2, 500
CNN_SETTINGS = ["--cnn-samples", str(CNN_SAMPLES), "--cnn-epochs", str(CNN_EPOCHS),
                "--cnn-test-samples", str(CNN_TEST), "--cnn-matmul-batches", "1"]
CNN_PARAMETERS = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (1600 * 128 + 128) + (128 * 10 + 10)
# FLOPs of one sample of the CNN, at im2col's shapes: conv 1 (26x26 outputs, patches of 9,
# 32 filters) forward and dW; conv 2 (11x11 outputs, patches of 3*3*32, 64 filters) forward,
# dW and dX; dense 1600-128 and 128-10 forward, dW and dX.
CNN_FLOPS_PER_SAMPLE = (2 * 2 * 26 * 26 * 9 * 32 + 3 * 2 * 11 * 11 * 288 * 64
                        + 3 * 2 * (1600 * 128 + 128 * 10))


def real_data_available() -> bool:
    from scratchnn.datasets import DatasetNotFoundError, load_fashion_mnist
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run of benchmarks/run.py: (results.json as a dict, the output folder)."""
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, str(BENCH / "run.py"), "--rounds", "1", "--epochs", "2",
               "--samples", str(SAMPLES), "--systems", *SYSTEMS, "--xor-epochs", "200",
               "--process-runs", "1", "--process-samples", str(SAMPLES), "--matmul-repeats", "2",
               *CNN_SETTINGS, "--out", str(out)]
    if not real_data_available():
        command.append("--synthetic")
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads((out / "results.json").read_text()), out



def _check_process_figures(child: dict, summary: dict, results: dict) -> None:
    """What every benchmark process reports, MLP and CNN alike: positive epoch times whose
    figure is the median of epochs 2.. (with two epochs, the second), the run's thread
    count, consistent memory figures, and a summary ordered min <= median <= max."""
    assert all(t > 0 for t in child["epoch_times"])
    assert child["epoch_s"] == child["epoch_times"][1]        # the median of epochs 2..2
    assert child["threads"] == results["machine"]["threads"]
    memory = child["memory"]
    assert 0 < memory["rss_after_setup_mib"] <= memory["peak_rss_mib"]
    assert memory["train_increment_mib"] >= 0
    assert 0 < summary["epoch_s"]["min"] <= summary["epoch_s"]["median"] <= summary["epoch_s"]["max"]

def test_results_have_every_part(run):
    results, out = run
    for key in ("command", "date", "machine", "settings", "systems", "mlp", "cnn", "xor", "process",
                "install", "harness_wall_s", "notes"):
        assert key in results
    assert results["systems"] == SYSTEMS
    # every process imported the copy of scratchnn taken at the start, not the working tree
    snapshot = results["scratchnn_snapshot"]
    assert results["scratchnn_imported_from"]
    assert all(path.startswith(snapshot) for path in results["scratchnn_imported_from"])
    assert results["scratchnn_source"]["sha256"]
    assert not Path(snapshot).exists()                    # removed at the end
    machine = results["machine"]
    assert machine["threads"] >= 1 and machine["cpu"] and machine["numpy"]
    assert results["harness_wall_s"] > 0


def test_mlp_figures_are_sane(run):
    results, _ = run
    (round_,) = results["mlp"]["rounds"]
    summary = results["mlp"]["summary"]["systems"]
    assert list(summary) == SYSTEMS
    for name in SYSTEMS:
        child = round_[name]
        assert child["samples"] == SAMPLES and len(child["epoch_times"]) == 2
        s = summary[name]
        _check_process_figures(child, s, results)
        assert 0 <= s["test_accuracy_mean"] <= 1
        assert s["peak_rss_mib_median"] > 0 and s["matmul_share"] > 0
        if HAS_TORCH:
            ratio = child["epoch_s"] / round_["torch"]["epoch_s"]
            assert s["ratio_to_torch_per_round"] == [pytest.approx(ratio)]
            assert s["ratio_to_torch"]["median"] == pytest.approx(ratio)
            assert s["peak_rss_ratio_to_torch"] == pytest.approx(
                s["peak_rss_mib_median"] / summary["torch"]["peak_rss_mib_median"])
        else:
            assert "ratio_to_torch" not in s
    if HAS_TORCH:
        assert summary["torch"]["ratio_to_torch"]["median"] == 1
        assert round_["torch"]["versions"]["torch_num_threads"] == results["machine"]["threads"]
    if HAS_SKLEARN:
        assert summary["sklearn"]["sklearn_details"]["coefs_dtype"] == "float32"


def test_matmul_limit_counts_the_networks_products(run):
    results, _ = run
    limit = results["mlp"]["summary"]["matmul_limit"]
    assert limit["batches"] == 8 and limit["last_batch"] == SAMPLES - 7 * 128
    assert limit["gflop_per_epoch"] == pytest.approx(SAMPLES * FLOPS_PER_SAMPLE / 1e9)
    assert limit["seconds_per_epoch"] > 0 and limit["gflops"] > 0
    assert len(limit["per_op"]) == 8
    (round_,) = results["mlp"]["rounds"]
    assert round_["matmul-limit"]["backend"] == "numpy"
    if HAS_TORCH:
        # the same products with PyTorch's BLAS, and its ratio within the round
        torch_limit = results["mlp"]["summary"]["matmul_limit_torch"]
        assert round_["matmul-limit-torch"]["backend"] == "torch"
        assert round_["matmul-limit-torch"]["gflop_per_epoch"] == limit["gflop_per_epoch"]
        assert torch_limit["ratio_to_numpy_per_round"] == [pytest.approx(
            torch_limit["seconds_per_epoch"] / limit["seconds_per_epoch"])]
    else:
        assert "matmul_limit_torch" not in results["mlp"]["summary"]


def test_cnn_figures_are_sane(run):
    """The CNN runs in scratchnn and PyTorch, the same network (parameter count), with the
    same figures as the MLP's, and learns something from 300 real images."""
    results, _ = run
    cnn = results["cnn"]
    assert cnn["systems"] == CNN_SYSTEMS and cnn["epochs"] == CNN_EPOCHS and cnn["samples"] == CNN_SAMPLES
    (round_,) = cnn["rounds"]
    assert set(round_) == {*CNN_SYSTEMS, "matmul-limit"} | ({"matmul-limit-torch"} if HAS_TORCH else set())
    summary = cnn["summary"]["systems"]
    assert list(summary) == CNN_SYSTEMS
    for name in CNN_SYSTEMS:
        child = round_[name]
        assert child["network"] == "cnn" and child["system"] == name
        assert child["samples"] == CNN_SAMPLES and child["test_samples"] == CNN_TEST
        assert len(child["epoch_times"]) == CNN_EPOCHS
        assert child["parameters"] == CNN_PARAMETERS == summary[name]["parameters"]
        s = summary[name]
        _check_process_figures(child, s, results)
        assert s["matmul_share"] == pytest.approx(
            cnn["summary"]["matmul_limit"]["seconds_per_epoch"] / child["epoch_s"])
        accuracy = s["test_accuracy_mean"]
        assert 0 <= accuracy <= 1 and accuracy * CNN_TEST == pytest.approx(round(accuracy * CNN_TEST))
        if not results["settings"]["synthetic"]:
            assert accuracy > 0.2, name                 # chance is 0.1
        if HAS_TORCH:
            ratio = child["epoch_s"] / round_["torch"]["epoch_s"]
            assert s["ratio_to_torch"]["median"] == pytest.approx(ratio)
            assert s["peak_rss_ratio_to_torch"] == pytest.approx(
                s["peak_rss_mib_median"] / summary["torch"]["peak_rss_mib_median"])
        else:
            assert "ratio_to_torch" not in s
    if HAS_TORCH:
        assert round_["torch"]["versions"]["torch_num_threads"] == results["machine"]["threads"]
    assert round_["scratchnn"]["scratchnn_imported_from"].startswith(results["scratchnn_snapshot"])


def test_cnn_matmul_limit_counts_im2col_products(run):
    results, _ = run
    summary = results["cnn"]["summary"]
    limit = summary["matmul_limit"]
    assert limit["batches"] == 3 and limit["last_batch"] == CNN_SAMPLES - 2 * 128
    assert limit["timed_batches"] == 2                  # --cnn-matmul-batches 1: one of each size
    assert limit["gflop_per_epoch"] == pytest.approx(CNN_SAMPLES * CNN_FLOPS_PER_SAMPLE / 1e9)
    assert limit["seconds_per_epoch"] > 0 and limit["gflops"] > 0
    assert [op["op"] for op in limit["per_op"]] == [
        "conv 1 forward: (86528,9)@(9,32)", "conv 1 dW: (9,86528)@(86528,32)",
        "conv 2 forward: (15488,288)@(288,64)", "conv 2 dW: (288,15488)@(15488,64)",
        "conv 2 dX: (15488,64)@(64,288)",
        "dense 1 forward: (128,1600)@(1600,128)", "dense 1 dW: (1600,128)@(128,128)",
        "dense 1 dX: (128,128)@(128,1600)",
        "dense 2 forward: (128,128)@(128,10)", "dense 2 dW: (128,128)@(128,10)",
        "dense 2 dX: (128,10)@(10,128)"]
    (round_,) = results["cnn"]["rounds"]
    assert round_["matmul-limit"]["network"] == "cnn" and round_["matmul-limit"]["backend"] == "numpy"
    if HAS_TORCH:
        torch_limit = summary["matmul_limit_torch"]
        assert round_["matmul-limit-torch"]["backend"] == "torch"
        assert torch_limit["gflop_per_epoch"] == limit["gflop_per_epoch"]
        assert torch_limit["ratio_to_numpy_per_round"] == [pytest.approx(
            torch_limit["seconds_per_epoch"] / limit["seconds_per_epoch"])]
    else:
        assert "matmul_limit_torch" not in summary


def test_matmul_limit_of_a_subset_of_batches_scales_to_the_epoch():
    """--batches K times K batches of each size and counts the epoch's FLOPs all the same."""
    sys.path.insert(0, str(BENCH))
    try:
        import matmul_limit
    finally:
        sys.path.remove(str(BENCH))
    full = matmul_limit.measure(700, repeats=1, network="mlp")
    part = matmul_limit.measure(700, repeats=1, network="mlp", batches=2)
    assert full["batches"] == part["batches"] == 6 and full["timed_batches"] == 6
    assert part["timed_batches"] == 3                   # 2 of the 5 of 128, the one of 60
    assert part["gflop_per_epoch"] == full["gflop_per_epoch"] == pytest.approx(700 * FLOPS_PER_SAMPLE / 1e9)
    assert part["matmul_seconds_per_epoch"] > 0


def test_xor_systems_agree(run):
    results, _ = run
    summary = results["xor"]["summary"]
    assert set(summary) == {"scratchnn", "numpy"} | ({"torch"} if HAS_TORCH else set())
    for name, s in summary.items():
        assert s["seconds"]["min"] > 0
        assert all(0 < p < 1 for p in s["probabilities"])
        # the same starting weights and the same float32 arithmetic: the same network
        assert s["max_abs_probability_difference_to_numpy"] < 1e-4, name
        if HAS_TORCH:
            (round_,) = results["xor"]["rounds"]
            assert s["ratio_to_torch"]["median"] == pytest.approx(
                round_[name]["seconds"] / round_["torch"]["seconds"])


def test_process_time_and_install_size(run):
    results, _ = run
    assert set(results["process"]) == {"baseline", *SYSTEMS}
    assert all(p["median_s"] > 0 and len(p["runs"]) == 1 for p in results["process"].values())
    install = results["install"]
    assert set(install) == set(SYSTEMS)
    assert {"scratchnn", "numpy"} <= set(install["scratchnn"]["distributions"])
    assert install["scratchnn"]["bytes"] > install["numpy-tutorial"]["bytes"] > 0
    if HAS_SKLEARN:
        assert {"scikit-learn", "numpy", "scipy"} <= set(install["sklearn"]["distributions"])


def test_markdown_and_chart(run):
    results, out = run
    text = (out / "results.md").read_text()
    assert "| system | s/epoch (median) | s/epoch (min) | × torch (median) |" in text
    assert results["command"] in text
    for name in SYSTEMS:
        assert f"| {name} |" in text
    mlp, cnn = text.split("### CNN conv32-pool-conv64-pool-128-10 on ")
    assert "### MLP 784-256-128-10 on " in mlp
    cnn = cnn.split("### XOR")[0]
    assert f"({CNN_PARAMETERS:,} parameters)" in cnn
    assert "| system | s/epoch (median) | s/epoch (min) | × torch (median) |" in cnn
    for name in CNN_SYSTEMS:
        assert f"| {name} |" in cnn
    assert "timed on the first 2 batches of each size and scaled to the epoch's 3" in cnn
    assert "| conv 2 dX: (15488,64)@(64,288) |" in cnn
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "mlp_epoch_times.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "cnn_epoch_times.png").read_bytes()[:4] == b"\x89PNG"
        assert results["chart"] == "mlp_epoch_times.png" and results["cnn_chart"] == "cnn_epoch_times.png"


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
def test_sklearn_model_reshuffles_every_epoch_and_keeps_adam(monkeypatch):
    """The benchmark's MLPClassifier sees a new sample order every epoch and one Adam
    optimizer throughout; an integer random_state would repeat the first order."""
    import numpy as np
    from sklearn.neural_network import _multilayer_perceptron as mlp

    sys.path.insert(0, str(BENCH))
    try:
        import bench_mlp
    finally:
        sys.path.remove(str(BENCH))
    orders = []
    original = mlp.shuffle

    def recording_shuffle(*arrays, **kwargs):
        shuffled = original(*arrays, **kwargs)
        orders.append(np.array(shuffled, copy=True))
        return shuffled

    monkeypatch.setattr(mlp, "shuffle", recording_shuffle)
    rng = np.random.default_rng(0)
    X = rng.random((300, 784), dtype=np.float32)
    y = rng.integers(0, 10, 300)

    model = bench_mlp.make_sklearn_classifier(seed=0)
    model.partial_fit(X, y, classes=np.arange(10))
    optimizer = model._optimizer
    model.partial_fit(X, y)
    model.partial_fit(X, y)
    assert model._optimizer is optimizer and optimizer.t == 3 * 3     # 3 batches per epoch
    assert len(orders) == 3
    assert not np.array_equal(orders[1], orders[2]) and not np.array_equal(orders[0], orders[1])
    assert model.coefs_[0].dtype == np.float32

    # Why the harness passes an instance: an integer re-seeds at every call, and every epoch
    # after the first (whose draws start with the initial weights) repeats the same order.
    orders.clear()
    model = bench_mlp.make_sklearn_classifier(seed=0).set_params(random_state=0)
    for _ in range(3):
        model.partial_fit(X, y, classes=np.arange(10))
    assert np.array_equal(orders[1], orders[2])


def test_before_measures_another_source_tree_in_the_same_rounds(tmp_path):
    """--before DIR: a second scratchnn (here a copy of this one) runs in every round as
    scratchnn-before, imported from its own snapshot, which is removed at the end."""
    before = tmp_path / "before"
    shutil.copytree(ROOT / "src" / "scratchnn", before / "scratchnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    command = [sys.executable, str(BENCH / "run.py"), "--rounds", "1", "--epochs", "2",
               "--samples", str(SAMPLES), "--systems", "scratchnn", "--xor-epochs", "50",
               "--skip-process", "--matmul-repeats", "1", "--cnn-samples", "130", "--cnn-epochs", "1",
               "--cnn-test-samples", "100", "--cnn-matmul-batches", "1",
               "--before", str(before), "--out", str(out)]
    if not real_data_available():
        command.append("--synthetic")
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["systems"] == ["scratchnn", "scratchnn-before"]
    (round_,) = results["mlp"]["rounds"]
    assert round_["scratchnn"]["test_accuracy"] == round_["scratchnn-before"]["test_accuracy"]
    assert results["cnn"]["systems"] == ["scratchnn", "scratchnn-before"]
    (cnn_round,) = results["cnn"]["rounds"]
    assert cnn_round["scratchnn"]["test_accuracy"] == cnn_round["scratchnn-before"]["test_accuracy"]
    assert cnn_round["scratchnn-before"]["scratchnn_imported_from"] == round_["scratchnn-before"][
        "scratchnn_imported_from"]
    assert set(results["xor"]["summary"]) == {"scratchnn", "scratchnn-before"}
    imported = results["scratchnn_imported_from"]
    assert len(imported) == 2 and any(results["scratchnn_snapshot"] in path for path in imported)
    assert results["scratchnn_before_source"]["sha256"] == results["scratchnn_source"]["sha256"]
    assert not any(Path(path).exists() for path in imported)       # both snapshots removed
    assert not any("outside the snapshot" in note for note in results["notes"])


def test_before_tree_without_the_cnn_is_left_out_of_the_cnn(monkeypatch):
    """A --before tree whose CNN process fails (one from before the CNN layers) is left out of
    the CNN rounds with a note; the other systems' rounds go on. (run_child is replaced: no
    process is started.)"""
    sys.path.insert(0, str(BENCH))
    try:
        import run as harness
    finally:
        sys.path.remove(str(BENCH))

    def fake_child(script, args, threads, first_on_path=None):
        if script == "matmul_limit.py":
            return {"matmul_seconds_per_epoch": 1.0, "gflops": 1.0, "gflop_per_epoch": 1.0, "batches": 3,
                    "last_batch": 44, "samples": 300, "timed_batches": 2, "per_op": []}
        if first_on_path is not None:
            raise harness.ChildFailed("bench_cnn.py failed:\nTraceback\nTypeError: no padding")
        return {"epoch_times": [2.0, 1.0], "test_accuracy": 0.5, "process": {},
                "memory": {"peak_rss_mib": 300.0, "rss_after_setup_mib": 200.0, "train_increment_mib": 10.0}}

    monkeypatch.setattr(harness, "run_child", fake_child)
    args = harness.parse_args(["--rounds", "2", "--cnn-samples", "300"])
    args.before_snapshot = Path("/nonexistent/before")
    notes = []
    part = harness.run_network(args, ["scratchnn", "scratchnn-before", "torch"], "cnn", notes)
    assert part["systems"] == ["scratchnn", "torch"]
    assert all("scratchnn-before" not in round_ for round_ in part["rounds"])
    assert list(part["summary"]["systems"]) == ["scratchnn", "torch"]
    assert notes == ["CNN: scratchnn-before left out: its bench_cnn.py process failed (TypeError: no padding)"]
    with pytest.raises(harness.ChildFailed):                    # the MLP has no such fallback
        harness.run_network(args, ["scratchnn", "scratchnn-before"], "mlp", [])


def test_divergence_guard_measures_three_variants():
    """benchmarks/divergence_guard.py runs and prints each variant and both ratios."""
    completed = subprocess.run([sys.executable, str(BENCH / "divergence_guard.py"), "--rounds", "3",
                                "--steps", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("3 rounds of 2 steps; OPENBLAS_CORETYPE=")
    for name in ("bounded", "copy always", "unguarded"):
        assert any(line.startswith(name) and "ms/step" in line for line in lines[1:4]), lines
    assert [line.split(" per round")[0] for line in lines[4:]] == ["bounded / unguarded",
                                                                  "copy always / unguarded"]


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
def test_sklearn_benchmark_runs_and_reports_a_failing_child(tmp_path):
    """benchmarks/bench_sklearn.py on tiny settings: every (data set, solver) in both systems,
    finite positive figures, the table; then a child that fails (a broken scratchnn) is named
    with its system, data set and solver, and the run ends with a non-zero status."""
    import math
    import os

    datasets = ["diabetes", "fashion-mnist" if real_data_available() else "digits"]
    out = tmp_path / "out"
    command = [sys.executable, str(BENCH / "bench_sklearn.py"), "--rounds", "1", "--max-iter", "2",
               "--datasets", *datasets, "--fashion-samples", "300", "--fashion-test-samples", "300",
               "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "sklearn.json").read_text())
    assert [(c["dataset"], c["solver"]) for c in results["cases"]] == [
        (d, s) for d in datasets for s in ("adam", "lbfgs")]
    threads = results["machine"]["threads"]
    for case in results["cases"]:
        (round_,) = case["rounds"]
        assert set(round_) == {"scratchnn", "sklearn"}
        for name, fit in round_.items():
            assert fit["dataset"] == case["dataset"] and fit["solver"] == case["solver"]
            assert fit["threads"] == threads and fit["seed"] == 0 and fit["params"]["max_iter"] == 2
            assert 0 < fit["fit_s"] < math.inf and 1 <= fit["n_iter"] <= 2
            assert math.isfinite(fit["score"]) and math.isfinite(fit["final_loss"])
            if fit["score_name"] == "accuracy":
                assert 0 < fit["score"] <= 1
        assert round_["scratchnn"]["dtype"] == "float32"
        s = case["summary"]
        assert s["time_ratio"]["median"] == pytest.approx(round_["scratchnn"]["fit_s"] / round_["sklearn"]["fit_s"])
        assert 0 < s["time_ratio"]["min"] < math.inf and math.isfinite(s["score_difference_points"])
        assert s["score_difference_points"] == pytest.approx(
            100 * (round_["scratchnn"]["score"] - round_["sklearn"]["score"]))
        assert s["meets_time_target"] == (s["time_ratio"]["median"] <= 0.5)
        assert s["meets_score_target"] == (s["score_difference_points"] >= -1 - 1e-9)
    assert all(path.startswith(results["scratchnn_snapshot"]) for path in results["scratchnn_imported_from"])
    assert not Path(results["scratchnn_snapshot"]).exists()
    text = (out / "sklearn.md").read_text()
    assert results["command"] in text and "OPENBLAS_CORETYPE=" in text
    assert "| data set | solver | scratchnn score | sklearn score | score difference (points) |" in text
    rows = [line for line in text.splitlines() if line.startswith(tuple(f"| {d} |" for d in datasets))]
    assert len(rows) == len(results["cases"])
    for row, case in zip(rows, results["cases"]):
        s = case["summary"]
        assert ("**score**" in row) != s["meets_score_target"] and ("**time**" in row) != s["meets_time_target"]

    broken = tmp_path / "broken" / "scratchnn"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("a broken scratchnn")\n')
    env = {**os.environ, "PYTHONPATH": str(broken.parent)}
    failed = subprocess.run([*command[:2], "--rounds", "1", "--max-iter", "1", "--datasets", "digits",
                             "--solvers", "adam", "--out", str(tmp_path / "failed")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert failed.returncode == 1
    assert "scratchnn on digits (solver adam, round 1, random_state=0) failed" in failed.stderr
    assert "ImportError: a broken scratchnn" in failed.stderr
    assert not (tmp_path / "failed" / "sklearn.json").exists()


def test_onnx_benchmark_runs_and_checks_the_exported_outputs(tmp_path):
    """benchmarks/bench_onnx.py on tiny settings: each system's figures are positive and
    finite, ONNX Runtime's outputs were compared with scratchnn's (a tiny difference), the
    ratios are to scratchnn's, and the table lists every row."""
    import math

    pytest.importorskip("onnxruntime")
    out = tmp_path / "out"
    command = [sys.executable, str(BENCH / "bench_onnx.py"), "--rounds", "1", "--networks", "mlp",
               "--systems", "scratchnn", "onnxruntime", "--samples", "64", "--batch", "32",
               "--repeats", "1", "--calls", "3", "--synthetic", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "onnx.json").read_text())
    rows = {row["system"]: row for row in results["rows"]}
    assert set(rows) == {"scratchnn", "onnxruntime"}
    for row in rows.values():
        assert 0 < row["throughput_s"] < math.inf and 0 < row["latency_s"] < math.inf
    assert rows["scratchnn"]["throughput_ratio"] == 1.0
    assert rows["onnxruntime"]["throughput_ratio"] == pytest.approx(
        rows["onnxruntime"]["throughput_s"] / rows["scratchnn"]["throughput_s"])
    assert rows["onnxruntime"]["max_relative_difference"] < 1e-5
    text = (out / "onnx.md").read_text()
    assert results["command"] in text and text.count("| mlp |") == 2
