"""Inference speed of exported models: ONNX Runtime against scratchnn's ``predict`` and
PyTorch's eager inference, on the Fashion-MNIST MLP and CNN of ``benchmarks/run.py``.

    python benchmarks/bench_onnx.py --rounds 3 [--out DIR]

For each network (mlp: 784-256-128-10 ReLU; cnn: conv 32 3x3 - ReLU - max-pool 2 - conv 64
3x3 - ReLU - max-pool 2 - dense 128 - ReLU - dense 10, channels last) and each system, a child
process (this script with ``--child``, the same thread count everywhere) builds the network
with random weights (speed does not depend on the weights' values), and measures, on the
first ``--samples`` Fashion-MNIST test images (random images of the same shape with
``--synthetic``):

* throughput: seconds to compute the outputs of all of them in batches of ``--batch`` (1000),
  the median of ``--repeats`` passes after one warm-up pass;
* latency: the median seconds of one sample's outputs over ``--calls`` calls.

scratchnn is ``model.output``; onnxruntime is an ``InferenceSession`` of the model exported by
``scratchnn.onnx.export_onnx`` (intra-op threads = ``--threads``, inter-op 1), whose outputs the
child first checks against scratchnn's (the largest relative difference is reported);
PyTorch is the same architecture in ``torch.nn`` under ``torch.inference_mode()`` (NCHW for the
CNN), with ``torch.set_num_threads``. Results: benchmarks/results/onnx.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib
import run as harness

BENCH_DIR = Path(__file__).resolve().parent
SYSTEMS = ("scratchnn", "onnxruntime", "torch")
NETWORKS = ("mlp", "cnn")


def scratchnn_model(network: str, seed: int):
    import scratchnn as snn
    if network == "mlp":
        layers = [snn.Dense(256, activation="relu"), snn.Dense(128, activation="relu"), snn.Dense(10)]
        shape = (784,)
    else:
        layers = [snn.Conv2D(32, 3, activation="relu"), snn.MaxPool2D(2),
                  snn.Conv2D(64, 3, activation="relu"), snn.MaxPool2D(2), snn.Flatten(),
                  snn.Dense(128, activation="relu"), snn.Dense(10)]
        shape = (28, 28, 1)
    model = snn.Sequential(layers, seed=seed, input_shape=shape)
    model.compile(loss="cross_entropy")
    return model


def torch_model(network: str):
    import torch
    nn = torch.nn
    if network == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10)).eval()
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128),
                         nn.ReLU(), nn.Linear(128, 10)).eval()


def images(network: str, samples: int, synthetic: bool, seed: int):
    import numpy as np
    if synthetic:
        X = np.random.default_rng(seed).random((samples, 784), dtype=np.float32)
    else:
        _, _, X, _ = benchlib.load_data()
        X = X[:samples]
    return X if network == "mlp" else X.reshape(-1, 28, 28, 1)


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one system's inference (started by the parent)")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--network", required=True, choices=NETWORKS)
    for name, default in (("threads", os.cpu_count()), ("samples", 10000), ("batch", 1000),
                          ("repeats", 5), ("calls", 200), ("seed", 0)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np
    X = images(args.network, args.samples, args.synthetic, args.seed)
    versions = {"numpy": np.__version__, "python": sys.version.split()[0]}
    difference = None
    if args.system == "scratchnn":
        import scratchnn
        model = scratchnn_model(args.network, args.seed)
        versions["scratchnn"] = scratchnn.__version__

        def infer(x):
            return model.output(x, batch_size=args.batch)
    elif args.system == "onnxruntime":
        import onnxruntime as ort
        import scratchnn
        from scratchnn.onnx import export_onnx
        model = scratchnn_model(args.network, args.seed)
        folder = Path(tempfile.mkdtemp())
        try:
            path = export_onnx(model, folder / "model.onnx")
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        versions.update(onnxruntime=ort.__version__, scratchnn=scratchnn.__version__)

        def infer(x):
            return np.concatenate([session.run(None, {"input": x[i:i + args.batch]})[0]
                                   for i in range(0, len(x), args.batch)])
        expected, got = model.output(X[:256]), infer(X[:256])
        difference = float(np.max(np.abs(got - expected)) / max(float(np.max(np.abs(expected))), 1e-30))
    else:
        import torch
        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        net = torch_model(args.network)
        versions["torch"] = torch.__version__
        X = np.ascontiguousarray(X.transpose(0, 3, 1, 2)) if args.network == "cnn" else X

        def infer(x):
            with torch.inference_mode():
                t = torch.from_numpy(x)
                return torch.cat([net(t[i:i + args.batch]) for i in range(0, len(t), args.batch)]).numpy()

    infer(X)                                            # warm-up
    passes = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        infer(X)
        passes.append(time.perf_counter() - start)
    one = X[:1]
    infer(one)
    calls = []
    for _ in range(args.calls):
        start = time.perf_counter()
        infer(one)
        calls.append(time.perf_counter() - start)
    benchlib.emit({"system": args.system, "network": args.network, "threads": args.threads,
                   "samples": len(X), "batch": args.batch, "throughput_s": statistics.median(passes),
                   "throughput_min_s": min(passes), "latency_s": statistics.median(calls),
                   "max_relative_difference": difference, "versions": versions,
                   "thread_pools": benchlib.blas_threads()})


# ----------------------------------------------------------------- parent
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--synthetic", action="store_true", help="random images instead of the real files")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    for name in ("rounds", "threads", "samples", "batch", "repeats", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def child_args(args, system: str, network: str) -> list[str]:
    extra = ["--child", "--system", system, "--network", network]
    for name in ("threads", "samples", "batch", "repeats", "calls", "seed"):
        extra += [f"--{name}", str(getattr(args, name))]
    return extra + (["--synthetic"] if args.synthetic else [])


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["## Inference: ONNX Runtime against scratchnn and PyTorch", "",
             f"`{results['command']}` on {results['date']}; {results['wall_s'] / 60:.1f} minutes.", "",
             f"Machine: {m.get('cpu', '?')}, {m.get('threads', '?')} threads in every process; "
             f"OPENBLAS_CORETYPE={m.get('openblas_coretype') or '(unset)'}.", "",
             f"Outputs of {results['settings']['samples']:,} images in batches of "
             f"{results['settings']['batch']} (median of the passes, then of the rounds) and of one "
             "image (median of the calls, then of the rounds); float32; ratios to scratchnn "
             "within each round, then the median.", "",
             "| network | system | s for all | × scratchnn | ms for one | × scratchnn | max rel. difference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        diff = row["max_relative_difference"]
        lines.append(f"| {row['network']} | {row['system']} | {row['throughput_s']:.3f} | "
                     f"{row['throughput_ratio']:.2f} | {row['latency_s'] * 1e3:.3f} | "
                     f"{row['latency_ratio']:.2f} | {'' if diff is None else f'{diff:.1e}'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--child" in argv:
        child_main(argv)
        return 0
    args = parse_args(argv)
    started = time.perf_counter()
    root = harness.scratchnn_root()
    if root is None:
        harness.log("error: scratchnn is not importable (pip install -e '.[bench,onnx]')")
        return 2
    snapshot = harness.snapshot_scratchnn(root)
    try:
        rounds = {(n, s): [] for n in args.networks for s in args.systems}
        for r in range(args.rounds):
            for index, network in enumerate(args.networks):
                for system in benchlib.rotated(list(args.systems), r + index):
                    try:
                        result = harness.run_child(Path(__file__).name, child_args(args, system, network),
                                                   args.threads)
                    except harness.ChildFailed as error:
                        harness.log(f"error: {system} on the {network} (round {r + 1}) failed: {error}")
                        return 1
                    rounds[(network, system)].append(result)
                    harness.log(f"[round {r + 1}/{args.rounds}] {network} {system:<11} "
                                f"{result['throughput_s']:.3f} s for all, "
                                f"{result['latency_s'] * 1e3:.3f} ms for one")
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    rows = []
    for (network, system), results in rounds.items():
        base = rounds.get((network, "scratchnn"))
        ratio = (lambda key: statistics.median(x[key] / b[key] for x, b in zip(results, base))
                 if base else float("nan"))
        diffs = [x["max_relative_difference"] for x in results if x["max_relative_difference"] is not None]
        rows.append({"network": network, "system": system,
                     "throughput_s": statistics.median(x["throughput_s"] for x in results),
                     "latency_s": statistics.median(x["latency_s"] for x in results),
                     "throughput_ratio": ratio("throughput_s"), "latency_ratio": ratio("latency_s"),
                     "max_relative_difference": max(diffs) if diffs else None})
    results = {"command": shlex.join([sys.executable, __file__, *argv]),
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": harness.machine_info(args.threads),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "rounds": {f"{n}/{s}": v for (n, s), v in rounds.items()}, "rows": rows,
               "wall_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "onnx.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "onnx.md").write_text(markdown(results))
    print(markdown(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
