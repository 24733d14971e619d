"""The hardware limit: the matrix products of one training epoch, alone, at NumPy's speed.

    python benchmarks/matmul_limit.py --samples 60000 --threads 2
    python benchmarks/matmul_limit.py --backend torch --threads 2     # the same with PyTorch's BLAS

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


def flops(ops) -> int:
    return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for _, a, b, _ in ops)


def measure(samples: int, batch_size: int = 128, repeats: int = 5, seed: int = 0,
            backend: str = "numpy", threads: int = 1) -> dict:
    import numpy as np
    rng = np.random.default_rng(seed)
    n_full, rest = divmod(samples, batch_size)
    groups = [(n_full, operations(batch_size, rng))] if n_full else []
    if rest:
        groups.append((1, operations(rest, rng)))
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
        start = time.perf_counter()
        for count, ops in groups:
            chosen = ops if select is None else [ops[select]]
            for _ in range(count):
                for _, a, b, out in chosen:
                    matmul(a, b, out=out)
        return time.perf_counter() - start

    epoch()                                          # warm-up: thread pool, caches
    times = [epoch() for _ in range(repeats)]
    epoch_flops = sum(count * flops(ops) for count, ops in groups)
    per_op = []
    for i, (name, *_rest) in enumerate(groups[0][1]):
        best = min(epoch(i) for _ in range(repeats))
        op_flops = sum(count * flops([ops[i]]) for count, ops in groups)
        per_op.append({"op": name, "seconds_per_epoch": best, "gflops": op_flops / best / 1e9})
    best = min(times)
    return {"samples": samples, "batch_size": batch_size, "batches": n_full + bool(rest),
            "last_batch": rest or batch_size, "repeats": repeats,
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
    args = parser.parse_args(argv)
    result = measure(args.samples, args.batch_size, args.repeats, backend=args.backend,
                     threads=args.threads)
    result["threads"] = args.threads
    result["thread_pools"] = benchlib.blas_threads()
    benchlib.emit(result)


if __name__ == "__main__":
    main()
