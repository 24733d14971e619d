"""Helpers shared by the benchmark processes: data, memory, thread checks, output.

Every benchmark child process loads its data with ``load_data`` (Fashion-MNIST through
``scratchnn.datasets.load_fashion_mnist``, or random data of the same shapes with
``--synthetic``), measures memory with ``peak_rss_mib`` and prints exactly one result line
with ``emit``: ``BENCH_JSON {...}``. Only the standard library is imported here; NumPy and
scratchnn are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import resource
import sys

RESULT_PREFIX = "BENCH_JSON "
N_CLASSES = 10
N_FEATURES = 784
TRAIN_SIZE = 60_000
TEST_SIZE = 10_000


def load_data(synthetic: bool = False, samples: int | None = None, seed: int = 0):
    """``(X_train, y_train, X_test, y_test)``: float32 ``(N, 784)`` pixels in [0, 1] and
    int64 labels 0..9; the first ``samples`` training samples when given.

    ``synthetic``: uniform random pixels and labels (``np.random.default_rng(seed)``) of the
    Fashion-MNIST shapes, for machines without the files; accuracy is then chance level (0.1).
    """
    if synthetic:
        import numpy as np
        rng = np.random.default_rng(seed)
        n_train = TRAIN_SIZE if samples is None else samples
        X_train = rng.random((n_train, N_FEATURES), dtype=np.float32)
        y_train = rng.integers(0, N_CLASSES, size=n_train, dtype=np.int64)
        X_test = rng.random((TEST_SIZE, N_FEATURES), dtype=np.float32)
        y_test = rng.integers(0, N_CLASSES, size=TEST_SIZE, dtype=np.int64)
        return X_train, y_train, X_test, y_test
    from scratchnn.datasets import load_fashion_mnist
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    if samples is not None:
        if samples > len(X_train):
            raise ValueError(f"--samples {samples} is more than the {len(X_train)} training samples")
        # Copies, so that the full arrays can be freed and memory is that of the subset.
        X_train, y_train = X_train[:samples].copy(), y_train[:samples].copy()
    return X_train, y_train, X_test, y_test


def _proc_status_mib(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (KiB on Linux, bytes on macOS).

    Not used for the reported peaks on Linux: across ``exec`` the kernel keeps the larger of
    the child's and the *parent's* peak (the forked memory is counted), so a child started
    by a parent that once held 500 MiB reports at least 500 MiB. Kept in the results as a
    cross-check."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB: ``VmHWM`` (the peak of this process's
    own address space, reset by ``reset_peak_rss``) where Linux has it, else ``ru_maxrss``."""
    peak = _proc_status_mib("VmHWM")
    return ru_maxrss_mib() if peak is None else peak


def current_rss_mib() -> float | None:
    """Resident memory now, in MiB (Linux; None elsewhere)."""
    return _proc_status_mib("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the peak-RSS mark (``VmHWM``) of this process to its current RSS (Linux >= 4.0:
    ``echo 5 > /proc/self/clear_refs``), so that ``peak_rss_mib`` then gives the peak since
    now. Loading Fashion-MNIST briefly holds the compressed and decompressed bytes as well;
    without the reset that transient would hide the training's own peak. Returns whether
    it worked."""
    if _proc_status_mib("VmHWM") is None:
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    now = current_rss_mib()
    return now is not None and peak_rss_mib() <= now + 1.0


def memory_figures(peak_setup: float, rss_setup: float | None, reset: bool, peak_train: float,
                   ru_maxrss: float) -> dict:
    """The ``memory`` part of a result line (in MiB), from ``peak_rss_mib`` and
    ``current_rss_mib`` after import and data loading, whether ``reset_peak_rss`` worked, and
    ``peak_rss_mib`` and ``ru_maxrss_mib`` after training. ``train_increment_mib`` is what
    training adds on top of the imported framework and the loaded data."""
    return {
        "peak_rss_mib": max(peak_setup, peak_train),
        "peak_after_setup_mib": peak_setup,
        "rss_after_setup_mib": rss_setup,
        "peak_reset": reset,
        "train_peak_mib": peak_train if reset else None,
        "train_increment_mib": (peak_train - rss_setup) if reset and rss_setup is not None
        else max(0.0, peak_train - peak_setup),
        "ru_maxrss_mib": ru_maxrss,
    }


def torch_adam_epochs(model, X, y, epochs: int, batch_size: int, lr: float, betas: tuple,
                      eps: float) -> list[float]:
    """Train a PyTorch ``model`` on tensors ``X, y`` as both benchmarks do: Adam, softmax
    cross-entropy, each epoch a ``torch.randperm`` (the global generator) and batches
    gathered by indexing, no DataLoader. Returns each epoch's seconds."""
    import time

    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, times = len(X), []
    model.train()
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            index = order[i:i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(X[index]), y[index]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def blas_threads() -> list[dict]:
    """The thread pools loaded in this process (threadpoolctl, when installed): library,
    API and thread count, to check that the requested thread count really applies."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"api": p.get("internal_api"), "prefix": p.get("prefix"),
             "threads": p.get("num_threads"), "version": p.get("version")}
            for p in threadpool_info()]


def rotated(items: list, round_index: int) -> list:
    """``items`` rotated by ``round_index``: interleaved rounds, none always first."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a child process: this one's, with every BLAS/OpenMP pool set to
    ``threads``. OPENBLAS_CORETYPE (and everything else) is passed on unchanged."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def emit(result: dict) -> None:
    """Print the one result line that the orchestrator parses (with the file scratchnn was
    imported from, when it was)."""
    module = sys.modules.get("scratchnn")
    result["scratchnn_imported_from"] = getattr(module, "__file__", None)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def parse_result(stdout: str) -> dict:
    """The result dictionary from a child's stdout (its last ``BENCH_JSON`` line)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise ValueError("no result line (" + RESULT_PREFIX.strip() + ") in the output")
