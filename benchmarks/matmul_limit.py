"""The hardware limit: the matrix products of one training epoch, alone, at NumPy's speed.

    python benchmarks/matmul_limit.py --samples 60000 --threads 2
    python benchmarks/matmul_limit.py --backend torch --threads 2     # the same with PyTorch's BLAS
    python benchmarks/matmul_limit.py --network cnn --batches 50      # the CNN's products

One epoch of the 784-256-128-10 MLP with batch size 128 needs, per batch of b samples
(x the layer's input, g the gradient of its output, W its weights):

    forward    x @ W          (b, 784) @ (784, 256),  (b, 256) @ (256, 128),  (b, 128) @ (128, 10)
    dW         x.T @ g        (784, b) @ (b, 256),    (256, b) @ (b, 128),    (128, b) @ (b, 10)
    dX         g @ W.T        (b, 10) @ (10, 128),    (b, 128) @ (128, 256)   (layers 3 and 2; the
                                                                               data needs no gradient)

for ceil(N / 128) batches (for N = 60,000: 468 of 128 and one of 96). This script times exactly
those products in float32, into preallocated ``out=`` arrays, with nothing else in between:
the time that no NumPy implementation of this network can go below on this machine (with the
same BLAS and thread count). Best of ``--repeats`` epochs, after one warm-up epoch. It prints
one ``BENCH_JSON`` result line: seconds per epoch, GFLOP/s, and the same per product.

``--network cnn``: the products of the CNN (conv 32 3x3 valid, ReLU, max-pool 2, conv 64 3x3
valid, ReLU, max-pool 2, flatten, dense 128, ReLU, dense 10; images 28x28x1) as an im2col
implementation computes them. A convolution of images (b, H, W, C) with F filters of kh x kw
and outputs of Ho x Wo is one product of its patches P (b*Ho*Wo, kh*kw*C) with the kernel
(kh*kw*C, F); per batch:

    conv 1 (28x28x1 -> 26x26x32)   forward P @ W  (b*676, 9) @ (9, 32)      dW P.T @ G  (9, b*676) @ (b*676, 32)
                                   (no dX: the data needs no gradient)
    conv 2 (13x13x32 -> 11x11x64)  forward (b*121, 288) @ (288, 64)         dW (288, b*121) @ (b*121, 64)
                                   dX  G @ W.T  (b*121, 64) @ (64, 288)
    dense 1 (1600 -> 128)          forward, dW and dX, as in the MLP
    dense 2 (128 -> 10)            forward, dW and dX

An epoch of the CNN's products takes tens of seconds on a small machine, so ``--batches K``
times the first K batches of each batch size and scales the time to the epoch's count
(every batch of a size does the same products on the same arrays); the default, all of them.

``--backend torch`` times the same products (the same arrays, shared with ``torch.from_numpy``)
with ``torch.matmul(a, b, out=out)`` after ``torch.set_num_threads(threads)``: how fast PyTorch's
own BLAS does the work that NumPy's OpenBLAS does for scratchnn.
"""

from __future__ import annotations

import argparse
import os
import time

import benchlib

SIZES = (784, 256, 128, 10)
#: The CNN's convolutions: (input height, width, channels), kernel (kh, kw), filters; valid
#: padding, stride 1; each followed by a 2x2 max-pool (floor). Then dense layers CNN_DENSE.
CNN_CONVS = (((28, 28, 1), (3, 3), 32), ((13, 13, 32), (3, 3), 64))
CNN_DENSE = (5 * 5 * 64, 128, 10)
NETWORKS = ("mlp", "cnn")


def operations(batch: int, rng):
    """The products of one batch as (name, a, b, out) with a @ b -> out, float32."""
    import numpy as np

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    acts = [rand(batch, n) for n in SIZES[:-1]]                 # the inputs of layers 1..3
    grads = [rand(batch, n) for n in SIZES[1:]]                 # the gradients of their outputs
    weights = [rand(i, o) for i, o in zip(SIZES[:-1], SIZES[1:])]
    ops = []
    for k in range(3):
        ops.append((f"forward {k + 1}: ({batch},{SIZES[k]})@({SIZES[k]},{SIZES[k + 1]})",
                    acts[k], weights[k], np.empty((batch, SIZES[k + 1]), np.float32)))
    for k in range(3):
        ops.append((f"dW {k + 1}: ({SIZES[k]},{batch})@({batch},{SIZES[k + 1]})",
                    acts[k].T, grads[k], np.empty((SIZES[k], SIZES[k + 1]), np.float32)))
    for k in (2, 1):
        ops.append((f"dX {k + 1}: ({batch},{SIZES[k + 1]})@({SIZES[k + 1]},{SIZES[k]})",
                    grads[k], weights[k].T, np.empty((batch, SIZES[k]), np.float32)))
    return ops


def cnn_operations(batch: int, rng):
    """The products of one batch of the CNN as (name, a, b, out) with a @ b -> out, float32,
    at the shapes of an im2col implementation (see the module's docstring)."""
    import numpy as np

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    ops = []
    for k, ((h, w, c), (kh, kw), f) in enumerate(CNN_CONVS):
        rows, cols = batch * (h - kh + 1) * (w - kw + 1), kh * kw * c   # output pixels, patch size
        patches, kernel, grad = rand(rows, cols), rand(cols, f), rand(rows, f)
        ops.append((f"conv {k + 1} forward: ({rows},{cols})@({cols},{f})", patches, kernel,
                    np.empty((rows, f), np.float32)))
        ops.append((f"conv {k + 1} dW: ({cols},{rows})@({rows},{f})", patches.T, grad,
                    np.empty((cols, f), np.float32)))
        if k > 0:                                    # the data needs no gradient
            ops.append((f"conv {k + 1} dX: ({rows},{f})@({f},{cols})", grad, kernel.T,
                        np.empty((rows, cols), np.float32)))
    for k, (n_in, n_out) in enumerate(zip(CNN_DENSE[:-1], CNN_DENSE[1:])):
        x, weights, grad = rand(batch, n_in), rand(n_in, n_out), rand(batch, n_out)
        name = f"dense {k + 1}"
        ops.append((f"{name} forward: ({batch},{n_in})@({n_in},{n_out})", x, weights,
                    np.empty((batch, n_out), np.float32)))
        ops.append((f"{name} dW: ({n_in},{batch})@({batch},{n_out})", x.T, grad,
                    np.empty((n_in, n_out), np.float32)))
        ops.append((f"{name} dX: ({batch},{n_out})@({n_out},{n_in})", grad, weights.T,
                    np.empty((batch, n_in), np.float32)))
    return ops


def flops(ops) -> int:
    return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for _, a, b, _ in ops)


def measure(samples: int, batch_size: int = 128, repeats: int = 5, seed: int = 0,
            backend: str = "numpy", threads: int = 1, network: str = "mlp",
            batches: int | None = None) -> dict:
    """``batches``: time at most that many batches of each batch size and scale to the
    epoch's count of them (None: all)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    make = {"mlp": operations, "cnn": cnn_operations}[network]
    n_full, rest = divmod(samples, batch_size)
    groups = [(n_full, make(batch_size, rng))] if n_full else []
    if rest:
        groups.append((1, make(rest, rng)))
    versions = {"numpy": np.__version__}
    if backend == "torch":
        import torch
        torch.set_num_threads(threads)
        versions["torch"] = torch.__version__
        # the same memory as tensors (a transposed NumPy view becomes a transposed tensor)
        groups = [(count, [(name, *(torch.from_numpy(arr) for arr in arrays)) for name, *arrays in ops])
                  for count, ops in groups]
        matmul = torch.matmul
    else:
        matmul = np.matmul

    def epoch(select=None) -> float:
        """Seconds of one epoch's products (of product ``select`` only, when given)."""
        total = 0.0
        for count, ops in groups:
            chosen = ops if select is None else [ops[select]]
            timed = count if batches is None else min(count, batches)
            start = time.perf_counter()
            for _ in range(timed):
                for _, a, b, out in chosen:
                    matmul(a, b, out=out)
            total += (time.perf_counter() - start) * count / timed
        return total

    epoch()                                          # warm-up: thread pool, caches
    times = [epoch() for _ in range(repeats)]
    epoch_flops = sum(count * flops(ops) for count, ops in groups)
    per_op = []
    for i, (name, *_rest) in enumerate(groups[0][1]):
        best = min(epoch(i) for _ in range(repeats))
        op_flops = sum(count * flops([ops[i]]) for count, ops in groups)
        per_op.append({"op": name, "seconds_per_epoch": best, "gflops": op_flops / best / 1e9})
    best = min(times)
    return {"network": network, "samples": samples, "batch_size": batch_size,
            "batches": n_full + bool(rest), "last_batch": rest or batch_size, "repeats": repeats,
            "timed_batches": sum(count if batches is None else min(count, batches) for count, _ in groups),
            "matmul_seconds_per_epoch": best, "epoch_times": times,
            "gflop_per_epoch": epoch_flops / 1e9, "gflops": epoch_flops / best / 1e9,
            "per_op": per_op, "backend": backend, **versions}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=benchlib.TRAIN_SIZE)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="NumPy: recorded only (set OMP/OPENBLAS/MKL_NUM_THREADS in the "
                             "environment); torch: also passed to torch.set_num_threads")
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--network", choices=NETWORKS, default="mlp")
    parser.add_argument("--batches", type=int, default=None,
                        help="time the first N batches of each batch size and scale to the epoch "
                             "(default: all batches)")
    args = parser.parse_args(argv)
    if args.batches is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    result = measure(args.samples, args.batch_size, args.repeats, backend=args.backend,
                     threads=args.threads, network=args.network, batches=args.batches)
    result["threads"] = args.threads
    result["thread_pools"] = benchlib.blas_threads()
    benchlib.emit(result)


if __name__ == "__main__":
    main()
