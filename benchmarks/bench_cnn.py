"""One benchmark process: train the Fashion-MNIST CNN in one system and print one result line.

    python benchmarks/bench_cnn.py --system scratchnn --epochs 3 --threads 2

The network, the same in every system: conv 32 (3x3, stride 1, no padding: "valid") - ReLU -
max-pool 2 - conv 64 (3x3, valid) - ReLU - max-pool 2 - flatten - dense 128 - ReLU - dense 10,
softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay), batch 128
(the last batch of an epoch is the smaller remainder), reshuffled every epoch, float32.
Images 28x28x1: 28 -> 26 (conv) -> 13 (pool) -> 11 (conv) -> 5 (pool, the odd row and column
dropped) -> 5 * 5 * 64 = 1600 features; 225,034 parameters. Systems:

  scratchnn   Sequential([Conv2D, ReLU, MaxPool2D, ...]).fit(epochs=E) on images (N, 28, 28, 1)
              (channels last); epoch times from a Callback
  torch       nn.Sequential(nn.Conv2d, ...) + torch.optim.Adam on images (N, 1, 28, 28)
              (channels first), a torch.randperm per epoch and index gathering from tensors
              preloaded in memory (no DataLoader)

With one channel, (N, 28, 28, 1) and (N, 1, 28, 28) are the same bytes: both systems train on
the very same array, reshaped without a copy. Weights start from the same distributions:
He-uniform for both convolutions and the hidden dense layer (U(+-sqrt(6 / fan_in)), fan_in =
kh*kw*C for a convolution), Glorot-uniform for the output layer, zero biases. (PyTorch
flattens (C, H, W) and scratchnn (H, W, C): the dense layer's rows are in another order, which
changes nothing for weights drawn independently.) The test accuracy is computed in batches of
1,000 images in both. The run.py orchestrator starts one such process per system and round;
``--help`` lists the options. The result line is ``BENCH_JSON {...}`` (see ``benchlib.emit``),
with the same fields as bench_mlp.py's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import benchlib

SYSTEMS = ("scratchnn", "torch")
IMAGE = (28, 28, 1)             # height, width, channels
CONV = ((32, 3), (64, 3))       # (filters, kernel size) of the two convolutions
HIDDEN = 128
LR = 1e-3
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
BATCH_SIZE = 128
EVAL_BATCH = 1000               # test images per forward pass when computing the accuracy


def as_images(X):
    """Pixels (N, 784) as images (N, 28, 28, 1), channels last: a view, no copy."""
    return X.reshape(-1, *IMAGE)


# ------------------------------------------------------------------ scratchnn
def _scratchnn(threads):
    import numpy as np
    import scratchnn as snn

    class EpochTimer(snn.Callback):
        """Seconds of every epoch, from time.perf_counter() at on_epoch_begin / on_epoch_end."""

        def __init__(self):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    def setup(seed):
        (f1, k1), (f2, k2) = CONV
        return snn.Sequential([
            snn.Conv2D(f1, k1, padding="valid", kernel_initializer="he_uniform"), snn.ReLU(),
            snn.MaxPool2D(2),
            snn.Conv2D(f2, k2, padding="valid", kernel_initializer="he_uniform"), snn.ReLU(),
            snn.MaxPool2D(2),
            snn.Flatten(),
            snn.Dense(HIDDEN, kernel_initializer="he_uniform"), snn.ReLU(),
            snn.Dense(10, kernel_initializer="glorot_uniform")], seed=seed)

    def train(model, X, y, epochs):
        timer = EpochTimer()
        model.fit(as_images(X), y, loss="cross_entropy", optimizer=snn.Adam(lr=LR), epochs=epochs,
                  batch_size=BATCH_SIZE, callbacks=[timer])
        return timer.times

    def accuracy(model, X, y):
        return float(np.mean(model.predict(as_images(X), batch_size=EVAL_BATCH) == y))

    def parameters(model):
        return int(model.count_params())

    return setup, train, accuracy, parameters, {"scratchnn": snn.__version__, "numpy": np.__version__}


# ---------------------------------------------------------------------- torch
def _torch(threads):
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)

    def setup(seed):
        torch.manual_seed(seed)
        (f1, k1), (f2, k2) = CONV
        model = nn.Sequential(
            nn.Conv2d(IMAGE[2], f1, k1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(f1, f2, k2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(5 * 5 * f2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
        layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():   # the initializations of the scratchnn model (He x3, Glorot; zero biases)
            for layer, init in zip(layers, ("he", "he", "he", "glorot")):
                if init == "he":
                    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")   # U(±sqrt(6 / fan_in))
                else:
                    nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        return model

    def to_tensors(X, y):
        # no copies: float32 and int64; (N, 784) -> (N, 1, 28, 28) is a view
        return torch.from_numpy(X).reshape(-1, IMAGE[2], *IMAGE[:2]), torch.from_numpy(y)

    def train(model, X, y, epochs):
        return benchlib.torch_adam_epochs(model, *to_tensors(X, y), epochs, BATCH_SIZE, LR,
                                          (BETA1, BETA2), EPS)

    def accuracy(model, X, y):
        X, y = to_tensors(X, y)
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(X), EVAL_BATCH):
                correct += int((model(X[i:i + EVAL_BATCH]).argmax(1) == y[i:i + EVAL_BATCH]).sum())
        return correct / len(X)

    def parameters(model):
        return sum(p.numel() for p in model.parameters())

    info = {"torch": torch.__version__, "numpy": np.__version__,
            "torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)}
    return setup, train, accuracy, parameters, info


FACTORIES = {"scratchnn": _scratchnn, "torch": _torch}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None, help="first N training samples (default all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true", help="random data of the Fashion-MNIST shapes")
    parser.add_argument("--test-samples", type=int, default=None,
                        help="the accuracy on the first N test images (default all 10,000)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    setup, train, accuracy, parameters, info = FACTORIES[args.system](args.threads)
    X_train, y_train, X_test, y_test = benchlib.load_data(args.synthetic, args.samples, args.seed)
    if args.test_samples is not None:
        X_test, y_test = X_test[:args.test_samples], y_test[:args.test_samples]
    setup_s = time.perf_counter() - start
    peak_setup = benchlib.peak_rss_mib()         # includes the data-loading transient
    rss_setup = benchlib.current_rss_mib()
    reset = benchlib.reset_peak_rss()

    start = time.perf_counter()
    model = setup(args.seed)
    epoch_times = train(model, X_train, y_train, args.epochs)
    train_s = time.perf_counter() - start
    peak_train = benchlib.peak_rss_mib()         # since the reset, when it worked
    ru_maxrss = benchlib.ru_maxrss_mib()
    start = time.perf_counter()
    test_accuracy = accuracy(model, X_test, y_test)
    test_s = time.perf_counter() - start

    result = {
        "system": args.system, "network": "cnn", "epochs": args.epochs, "samples": len(X_train),
        "test_samples": len(X_test), "threads": args.threads, "seed": args.seed,
        "synthetic": args.synthetic, "parameters": parameters(model),
        "epoch_times": epoch_times, "train_s": train_s, "setup_s": setup_s, "test_s": test_s,
        "test_accuracy": test_accuracy,
        "memory": benchlib.memory_figures(peak_setup, rss_setup, reset, peak_train, ru_maxrss),
        "versions": info,
        "python": sys.version.split()[0],
    }
    result["thread_pools"] = benchlib.blas_threads()   # after the measurements: it imports threadpoolctl
    benchlib.emit(result)


if __name__ == "__main__":
    main()
