"""One benchmark process: train the Fashion-MNIST MLP in one system and print one result line.

    python benchmarks/bench_mlp.py --system scratchnn --epochs 10 --threads 2

The network, the same in every system: 784-256-128-10, ReLU, softmax cross-entropy, Adam
(lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay), batch 128 (the last batch of an epoch
is the smaller remainder), reshuffled every epoch, float32. Systems:

  scratchnn       Sequential(...).fit(epochs=E); epoch times from a Callback
  torch           nn.Sequential + torch.optim.Adam, a torch.randperm per epoch and index
                  gathering from tensors preloaded in memory (no DataLoader)
  sklearn         MLPClassifier(solver="adam", ...).partial_fit once per epoch
  numpy-tutorial  the network written by hand in plain NumPy, tutorial style (below)

Weights start from the same distributions (He-uniform for the two hidden layers,
Glorot-uniform for the output layer, zero biases), except in scikit-learn, which has its own
initialization (Glorot-uniform for every layer, random biases). The run.py orchestrator starts
one such process per system and round; ``--help`` lists the options. The result line is
``BENCH_JSON {...}`` (see ``benchlib.emit``): epoch times in seconds, test accuracy, memory
in MiB and the thread pools seen.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import benchlib

SYSTEMS = ("scratchnn", "torch", "sklearn", "numpy-tutorial")
HIDDEN = (256, 128)
LR = 1e-3
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
BATCH_SIZE = 128


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
        return snn.Sequential([snn.Dense(HIDDEN[0], kernel_initializer="he_uniform"), snn.ReLU(),
                               snn.Dense(HIDDEN[1], kernel_initializer="he_uniform"), snn.ReLU(),
                               snn.Dense(10)], seed=seed)

    def train(model, X, y, epochs):
        timer = EpochTimer()
        model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=LR), epochs=epochs,
                  batch_size=BATCH_SIZE, callbacks=[timer])
        return timer.times

    def accuracy(model, X, y):
        return float(np.mean(model.predict(X) == y))

    return setup, train, accuracy, {"scratchnn": snn.__version__, "numpy": np.__version__}


# ---------------------------------------------------------------------- torch
def _torch(threads):
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)

    def setup(seed):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(784, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]),
                              nn.ReLU(), nn.Linear(HIDDEN[1], 10))
        with torch.no_grad():   # the initializations of the scratchnn model (He, He, Glorot; zero biases)
            for layer, init in zip(model[::2], ("he", "he", "glorot")):
                if init == "he":
                    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")   # U(±sqrt(6 / fan_in))
                else:
                    nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        return model

    def train(model, X, y, epochs):
        # no copies: float32 and int64
        return benchlib.torch_adam_epochs(model, torch.from_numpy(X), torch.from_numpy(y), epochs,
                                          BATCH_SIZE, LR, (BETA1, BETA2), EPS)

    def accuracy(model, X, y):
        model.eval()
        with torch.no_grad():
            return float((model(torch.from_numpy(X)).argmax(1) == torch.from_numpy(y)).float().mean())

    info = {"torch": torch.__version__, "numpy": np.__version__,
            "torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads()}
    return setup, train, accuracy, info


# -------------------------------------------------------------------- sklearn
def make_sklearn_classifier(seed: int):
    """The scikit-learn model of the benchmark.

    ``partial_fit`` runs exactly one epoch per call and keeps the Adam state between calls
    (``fit`` with ``warm_start=True, max_iter=1`` would make a new Adam optimizer, with fresh
    moments and step count, at every call). The random state is a ``RandomState`` *instance*:
    every call re-reads ``random_state`` (``check_random_state``), so an integer would re-seed
    the generator at every call, and every epoch after the first (whose draws begin with the
    initial weights) would see the samples in the same order; an instance carries on, and the
    order changes every epoch (tests/test_benchmarks.py checks both). tol=0 and
    n_iter_no_change=max int: nothing stops or alters training early."""
    import numpy as np
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                         alpha=0.0, batch_size=BATCH_SIZE, learning_rate_init=LR,
                         beta_1=BETA1, beta_2=BETA2, epsilon=EPS, shuffle=True,
                         random_state=np.random.RandomState(seed), tol=0.0,
                         n_iter_no_change=np.iinfo(np.int32).max, early_stopping=False,
                         max_iter=1, verbose=False)


def _sklearn(threads):
    import numpy as np
    import sklearn

    def setup(seed):
        return make_sklearn_classifier(seed)

    def train(model, X, y, epochs):
        classes, times = np.arange(10), []
        for _ in range(epochs):
            start = time.perf_counter()
            model.partial_fit(X, y, classes=classes)
            times.append(time.perf_counter() - start)
        return times

    def accuracy(model, X, y):
        return float(np.mean(model.predict(X) == y))

    return setup, train, accuracy, {"sklearn": sklearn.__version__, "numpy": np.__version__}


def _sklearn_details(model, X) -> dict:
    """What scikit-learn really computed in, and the cost of the input check that every
    partial_fit call repeats (part of its epoch times)."""
    import numpy as np
    from sklearn.utils import check_array
    start = time.perf_counter()
    check_array(X, dtype=(np.float64, np.float32))
    check_s = time.perf_counter() - start
    moments = getattr(getattr(model, "_optimizer", None), "ms", None)   # private: may change
    return {"coefs_dtype": model.coefs_[0].dtype.name,
            "intercepts_dtype": model.intercepts_[0].dtype.name,
            "adam_moment_dtype": moments[0].dtype.name if moments else None,
            "predict_proba_dtype": model.predict_proba(X[:2]).dtype.name,
            "input_check_s_per_call": check_s}


# ------------------------------------------------------------- numpy-tutorial
def _numpy_tutorial(threads):
    """The MLP as a learner writes it by hand after a tutorial: arrays allocated on every
    step, np.dot, Adam applied to each array in turn."""
    import numpy as np

    def relu(z):
        return np.maximum(z, 0)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    class TutorialMLP:
        def __init__(self, seed):
            self.rng = np.random.default_rng(seed)
            sizes = (784, *HIDDEN, 10)
            self.W, self.b = [], []
            for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                last = i == len(sizes) - 2
                limit = np.sqrt(6.0 / (fan_in + fan_out)) if last else np.sqrt(6.0 / fan_in)
                self.W.append(self.rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
                self.b.append(np.zeros(fan_out, dtype=np.float32))
            self.params = self.W + self.b
            self.m = [np.zeros_like(p) for p in self.params]
            self.v = [np.zeros_like(p) for p in self.params]
            self.t = 0

        def forward(self, X):
            z1 = np.dot(X, self.W[0]) + self.b[0]
            a1 = relu(z1)
            z2 = np.dot(a1, self.W[1]) + self.b[1]
            a2 = relu(z2)
            z3 = np.dot(a2, self.W[2]) + self.b[2]
            return z1, a1, z2, a2, z3

        def train_step(self, X, y):
            z1, a1, z2, a2, z3 = self.forward(X)
            p = softmax(z3)
            n = len(X)
            loss = -np.mean(np.log(p[np.arange(n), y] + 1e-12))
            # backward: softmax + cross-entropy gives (p - onehot) / n
            d3 = p.copy()
            d3[np.arange(n), y] -= 1
            d3 /= n
            dW3 = np.dot(a2.T, d3)
            db3 = d3.sum(axis=0)
            d2 = np.dot(d3, self.W[2].T) * (z2 > 0)
            dW2 = np.dot(a1.T, d2)
            db2 = d2.sum(axis=0)
            d1 = np.dot(d2, self.W[1].T) * (z1 > 0)
            dW1 = np.dot(X.T, d1)
            db1 = d1.sum(axis=0)
            grads = [dW1, dW2, dW3, db1, db2, db3]
            # Adam, one array at a time
            self.t += 1
            for i, (param, grad) in enumerate(zip(self.params, grads)):
                self.m[i] = BETA1 * self.m[i] + (1 - BETA1) * grad
                self.v[i] = BETA2 * self.v[i] + (1 - BETA2) * grad ** 2
                m_hat = self.m[i] / (1 - BETA1 ** self.t)
                v_hat = self.v[i] / (1 - BETA2 ** self.t)
                param -= LR * m_hat / (np.sqrt(v_hat) + EPS)
            return loss

    def setup(seed):
        return TutorialMLP(seed)

    def train(model, X, y, epochs):
        n, times = len(X), []
        for _ in range(epochs):
            start = time.perf_counter()
            order = model.rng.permutation(n)
            for i in range(0, n, BATCH_SIZE):
                index = order[i:i + BATCH_SIZE]
                model.train_step(X[index], y[index])
            times.append(time.perf_counter() - start)
        return times

    def accuracy(model, X, y):
        return float(np.mean(np.argmax(model.forward(X)[-1], axis=1) == y))

    return setup, train, accuracy, {"numpy": np.__version__}


FACTORIES = {"scratchnn": _scratchnn, "torch": _torch, "sklearn": _sklearn,
             "numpy-tutorial": _numpy_tutorial}


def short_run(system: str, samples: int, threads: int, synthetic: bool = False, seed: int = 0) -> None:
    """Import ``system``, load the data and train one epoch on the first ``samples``
    samples: the work of the whole-process timing (process_time.py)."""
    setup, train, _, _ = FACTORIES[system](threads)
    X, y, _, _ = benchlib.load_data(synthetic, samples, seed)
    train(setup(seed), X, y, 1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=None, help="first N training samples (default all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true", help="random data of the Fashion-MNIST shapes")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    setup, train, accuracy, info = FACTORIES[args.system](args.threads)
    X_train, y_train, X_test, y_test = benchlib.load_data(args.synthetic, args.samples, args.seed)
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
    test_accuracy = accuracy(model, X_test, y_test)

    result = {
        "system": args.system, "epochs": args.epochs, "samples": len(X_train),
        "test_samples": len(X_test), "threads": args.threads, "seed": args.seed,
        "synthetic": args.synthetic,
        "epoch_times": epoch_times, "train_s": train_s, "setup_s": setup_s,
        "test_accuracy": test_accuracy,
        "memory": benchlib.memory_figures(peak_setup, rss_setup, reset, peak_train, ru_maxrss),
        "versions": info,
        "python": sys.version.split()[0],
    }
    if args.system == "sklearn":
        result["sklearn_details"] = _sklearn_details(model, X_train)
    result["thread_pools"] = benchlib.blas_threads()   # after the measurements: it imports threadpoolctl
    benchlib.emit(result)


if __name__ == "__main__":
    main()
