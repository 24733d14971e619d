"""One benchmark process: the tutorials' XOR recipe in one system, one result line.

    python benchmarks/bench_xor.py --system numpy --epochs 10000

The recipe: a 2-4-1 network, sigmoid hidden layer, sigmoid output with binary cross-entropy
(mean over the 4 samples), plain gradient descent with lr 0.1 on the full batch, 10,000
epochs, float32. All three systems start from the same weights: standard normal draws from
``np.random.default_rng(seed)`` in scratchnn's order (W1 (2, 4), then W2 (4, 1)), zero biases.

  scratchnn  Sequential([Dense(4, standard_normal), Sigmoid(), Dense(1, standard_normal)])
             .fit(loss="binary_cross_entropy", optimizer=SGD(lr=0.1), batch_size=None)
  numpy      the tutorial loop (forward, A2 - y, backward, update), written correctly
  torch      nn.Linear, nn.Sigmoid, nn.BCEWithLogitsLoss, torch.optim.SGD

Only the training loop is timed (not imports or setup).
"""

from __future__ import annotations

import argparse
import os
import time

import benchlib

SYSTEMS = ("scratchnn", "numpy", "torch")
LR = 0.1


def xor_data():
    import numpy as np
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    return X, y


def initial_weights(seed):
    """scratchnn's standard_normal initialization, drawn in the same order."""
    import numpy as np
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((2, 4)).astype(np.float32)
    W2 = rng.standard_normal((4, 1)).astype(np.float32)
    return W1, np.zeros(4, np.float32), W2, np.zeros(1, np.float32)


def run_scratchnn(X, y, epochs, seed):
    import scratchnn as snn
    model = snn.Sequential([snn.Dense(4, kernel_initializer="standard_normal"), snn.Sigmoid(),
                            snn.Dense(1, kernel_initializer="standard_normal")], seed=seed)
    start = time.perf_counter()
    history = model.fit(X, y, loss="binary_cross_entropy", optimizer=snn.SGD(lr=LR),
                        epochs=epochs, batch_size=None)
    seconds = time.perf_counter() - start
    return seconds, model.predict_proba(X)[:, 0], history.history["loss"][-1]


def run_numpy(X, y, epochs, seed):
    import numpy as np

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    W1, b1, W2, b2 = initial_weights(seed)
    y = y.reshape(-1, 1)
    n = len(X)
    start = time.perf_counter()
    for _ in range(epochs):
        # forward
        A1 = sigmoid(X @ W1 + b1)
        A2 = sigmoid(A1 @ W2 + b2)
        # backward: sigmoid + binary cross-entropy (mean over samples) gives (A2 - y) / n
        dZ2 = (A2 - y) / n
        dW2 = A1.T @ dZ2
        db2 = dZ2.sum(axis=0)
        dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)      # the sigmoid's derivative, of its output
        dW1 = X.T @ dZ1
        db1 = dZ1.sum(axis=0)
        # update
        W1 -= LR * dW1
        b1 -= LR * db1
        W2 -= LR * dW2
        b2 -= LR * db2
    seconds = time.perf_counter() - start
    A2 = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
    loss = float(-np.mean(y * np.log(A2) + (1 - y) * np.log(1 - A2)))
    assert A2.dtype == np.float32
    return seconds, A2[:, 0], loss


def run_torch(X, y, epochs, seed, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    W1, b1, W2, b2 = initial_weights(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
    with torch.no_grad():   # torch keeps W as (out, in)
        model[0].weight.copy_(torch.from_numpy(W1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(W2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(b2))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    start = time.perf_counter()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model(Xt)
        final_loss = float(loss_fn(logits, yt))
        return seconds, torch.sigmoid(logits)[:, 0].numpy(), final_loss


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    X, y = xor_data()
    if args.system == "scratchnn":
        seconds, proba, loss = run_scratchnn(X, y, args.epochs, args.seed)
    elif args.system == "numpy":
        seconds, proba, loss = run_numpy(X, y, args.epochs, args.seed)
    else:
        seconds, proba, loss = run_torch(X, y, args.epochs, args.seed, args.threads)
    predictions = [int(p > 0.5) for p in proba]
    benchlib.emit({"system": args.system, "epochs": args.epochs, "seed": args.seed,
                   "threads": args.threads, "seconds": seconds,
                   "probabilities": [float(p) for p in proba], "predictions": predictions,
                   "correct": predictions == [0, 1, 1, 0], "final_loss": float(loss)})


if __name__ == "__main__":
    main()
