"""What the training step's guard against an overflowing update costs.

    python benchmarks/divergence_guard.py --rounds 40

Since issue 9, ``training.train_step`` keeps the weights of the last good step when the
optimizer's update overflows them. On a step where the optimizer's ``update_bound``
cannot rule an overflow out, it copies the parameters before the update and checks them
after it (one copy, one BLAS pass); otherwise it only computes that bound. This script
times the Fashion-MNIST MLP's training step (784-256-128-10, ReLU, Adam, batch 128,
float32, random data of that shape) three ways, in the same process: ``train_step`` as it
is ("bounded"), with the copy and the check forced on every step ("copy always"), and
without any guard ("unguarded"); three models trained on the same batches, the order
rotating every round, ``--steps`` steps a round. It prints each variant's median and
minimum time per step and the ratios to "unguarded" per round, with their medians: the
costs, measured side by side (the machine is shared, so single rounds vary by 10% or
more; the median over many rounds is what to read).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

import scratchnn as snn
from scratchnn import training


def unguarded_step(model, x, target):
    """``train_step`` as it was before the guard: no copy, no check after the update."""
    output = model.forward(x, training=True)
    loss = model.loss.forward(output, target)
    if not math.isfinite(loss):
        raise snn.DivergenceError("loss")
    model.backward(model.loss.backward())
    if not math.isfinite(float(np.dot(model.grads, model.grads))):
        raise snn.DivergenceError("gradients")
    model.optimizer.step(model.params, model.grads, overwrite_grads=True)
    return loss, output


class Unbounded(snn.Adam):
    """Adam without its bound: ``train_step`` then copies and checks on every step."""

    def update_bound(self, params_max, grads_norm):
        return math.inf


def mlp(optimizer) -> snn.Sequential:
    model = snn.Sequential([snn.Dense(256, activation="relu", kernel_initializer="he_uniform"),
                            snn.Dense(128, activation="relu", kernel_initializer="he_uniform"),
                            snn.Dense(10)], seed=0, input_shape=(784,))
    return model.compile("cross_entropy", optimizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.random((128 * args.steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    variants = {"bounded": training.train_step, "copy always": training.train_step,
                "unguarded": unguarded_step}
    models = {"bounded": mlp(snn.Adam(lr=1e-3)), "copy always": mlp(Unbounded(lr=1e-3)),
              "unguarded": mlp(snn.Adam(lr=1e-3))}
    batches = {name: models[name].check_data(X, y) for name in variants}
    seconds = {name: [] for name in variants}
    with training.quiet_overflow():
        for r in range(args.rounds):
            names = list(variants)
            for name in names[r % 3:] + names[:r % 3]:
                step, model, (Xc, target) = variants[name], models[name], batches[name]
                start = time.perf_counter()
                for i in range(0, len(Xc), 128):
                    step(model, Xc[i:i + 128], target[i:i + 128])
                seconds[name].append(time.perf_counter() - start)
    print(f"{args.rounds} rounds of {args.steps} steps; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    for name, values in seconds.items():
        print(f"{name:12s} median {statistics.median(values) / args.steps * 1e3:.3f} ms/step, "
              f"min {min(values) / args.steps * 1e3:.3f} ms/step")
    for name in ("bounded", "copy always"):
        ratios = [g / u for g, u in zip(seconds[name], seconds["unguarded"])]
        quartiles = statistics.quantiles(ratios, n=4)
        print(f"{name} / unguarded per round: median {statistics.median(ratios):.3f} "
              f"(quartiles {quartiles[0]:.3f}, {quartiles[2]:.3f})")


if __name__ == "__main__":
    main()
