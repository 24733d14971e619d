"""Run every benchmark and write benchmarks/results/{results.json, results.md,
mlp_epoch_times.png, cnn_epoch_times.png}.

    python benchmarks/run.py --rounds 3

1. MLP: the Fashion-MNIST MLP (784-256-128-10, ReLU, softmax cross-entropy, Adam lr 1e-3,
   batch 128, reshuffled every epoch, float32) in scratchnn, PyTorch, scikit-learn and a
   hand-written NumPy tutorial network (bench_mlp.py), and the matrix products of one epoch
   alone (matmul_limit.py), with NumPy's BLAS and, when PyTorch is benchmarked, with PyTorch's:
   each in its own process, with the same thread count, interleaved in rounds whose order rotates.
2. CNN: the Fashion-MNIST CNN (conv 32 3x3 - ReLU - max-pool 2 - conv 64 3x3 - ReLU - max-pool
   2 - dense 128 - ReLU - dense 10, the same training) in scratchnn and PyTorch (bench_cnn.py),
   and its matrix products at im2col's shapes alone (matmul_limit.py --network cnn), the same way
   (--skip-cnn leaves it out).
3. XOR: the tutorials' 2-4-1 recipe, 10,000 full-batch epochs, in scratchnn, a plain NumPy
   loop and PyTorch (bench_xor.py), interleaved in rounds.
4. Whole process: a fresh python process that imports the system and trains one epoch on
   6,000 samples, and the install size of each system (process_time.py).

Only the standard library is imported here; the systems run in child processes. See
benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib
import process_time

BENCH_DIR = Path(__file__).resolve().parent
SYSTEMS = ("scratchnn", "torch", "sklearn", "numpy-tutorial")
MODULES = {"scratchnn": "scratchnn", "torch": "torch", "sklearn": "sklearn", "numpy-tutorial": "numpy"}
XOR_SYSTEMS = {"scratchnn": "scratchnn", "numpy-tutorial": "numpy", "torch": "torch"}   # MLP name -> XOR name
CNN_SYSTEMS = ("scratchnn", "torch")    # the systems that have the CNN (and scratchnn-before)
#: ``--before DIR``: another scratchnn source tree, measured in the same rounds under this name
BEFORE = "scratchnn-before"
MATMUL = "matmul-limit"
MATMUL_TORCH = "matmul-limit-torch"     # the same products with PyTorch's BLAS
REFERENCE = "torch"


class ChildFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ machine
def _proc_stat() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine_info(threads: int) -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": affinity,
        "threads": threads, "platform": platform.platform(), "python": platform.python_version(),
        "numpy": version("numpy"), "torch": version("torch"), "scikit-learn": version("scikit-learn"),
        "scratchnn": version("scratchnn"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def scratchnn_root() -> Path | None:
    """The directory of the scratchnn package that Python would import (nothing is imported)."""
    spec = importlib.util.find_spec("scratchnn")
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


def scratchnn_source(root: Path | None) -> dict | None:
    """A hash of the package's .py files and, in a git checkout, the commit and whether the
    package has uncommitted changes."""
    if root is None:
        return None
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    info = {"path": str(root), "sha256": digest.hexdigest()[:16], "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "."],
                                capture_output=True, text=True)
    except OSError:
        return info
    if commit.returncode == 0 and status.returncode == 0:
        info["git_commit"], info["git_dirty"] = commit.stdout.strip(), bool(status.stdout.strip())
    return info


def snapshot_scratchnn(root: Path, first_on_path: bool = True) -> Path:
    """Copy the scratchnn package into a new temporary directory and (``first_on_path``) put
    that directory first on every child's PYTHONPATH, so that the whole run measures the
    source as it was at its start. (An editable install imports the working tree, which may
    change while a run goes on: someone is working on it.)"""
    directory = Path(tempfile.mkdtemp(prefix="scratchnn-bench-"))
    shutil.copytree(root, directory / "scratchnn", ignore=shutil.ignore_patterns("__pycache__"))
    if first_on_path:
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(directory) + (os.pathsep + previous if previous else "")
    return directory


# ------------------------------------------------------------------ children
def run_child(script: str, args: list[str], threads: int, first_on_path: Path | None = None) -> dict:
    """Run one benchmark process; return its result with the process's own figures added:
    wall and CPU seconds, and what else the machine did meanwhile (steal: time the hypervisor
    gave to others; other_busy: CPU seconds of other processes on this machine).
    ``first_on_path``: a directory put before everything else on the child's PYTHONPATH."""
    command = [sys.executable, str(BENCH_DIR / script), *args]
    env = benchlib.thread_env(threads)
    if first_on_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(first_on_path), env.get("PYTHONPATH")) if p)
    stat_before, usage_before = _proc_stat(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    stat_after, usage_after = _proc_stat(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        hint = ""
        if "DatasetNotFoundError" in completed.stderr:
            hint = "\n(the Fashion-MNIST files were not found: install them, or pass --synthetic)"
        raise ChildFailed(f"{shlex.join(command)} failed with exit status {completed.returncode}:\n"
                          f"{completed.stderr[-3000:]}{hint}")
    result = benchlib.parse_result(completed.stdout)
    user = usage_after.ru_utime - usage_before.ru_utime
    system = usage_after.ru_stime - usage_before.ru_stime
    process = {"wall_s": wall, "cpu_user_s": user, "cpu_sys_s": system}
    if stat_before and stat_after:
        process["steal_s"] = stat_after[1] - stat_before[1]
        process["other_busy_s"] = max(0.0, stat_after[0] - stat_before[0] - user - system)
    result["process"] = process
    return result


def steady_epoch(epoch_times: list[float]) -> float:
    """Seconds per epoch: the median of epochs 2..E (the first one warms up), or the only one."""
    return statistics.median(epoch_times[1:]) if len(epoch_times) > 1 else epoch_times[0]


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# ---------------------------------------------------------- MLP and CNN
#: The two trained networks: their label, script and title.
NETWORKS = {
    "mlp": {"label": "MLP", "script": "bench_mlp.py", "title": "MLP 784-256-128-10"},
    "cnn": {"label": "CNN", "script": "bench_cnn.py",
            "title": "CNN conv32-pool-conv64-pool-128-10"},
}


def network_settings(args, network: str) -> dict:
    """Epochs, samples and the extra arguments of the children of ``network``."""
    if network == "mlp":
        return {"epochs": args.epochs, "samples": args.samples, "child_args": [], "matmul_args": []}
    child_args = [] if args.cnn_test_samples is None else ["--test-samples", str(args.cnn_test_samples)]
    return {"epochs": args.cnn_epochs, "samples": args.cnn_samples, "child_args": child_args,
            "matmul_args": ["--network", "cnn", "--batches", str(args.cnn_matmul_batches)]}


def run_network(args, systems: list[str], network: str = "mlp", notes: list[str] | None = None) -> dict:
    """The rounds of one network: every system and the matmul limits (NumPy's and, with
    PyTorch among the systems, PyTorch's BLAS), each in its own process, the order rotating
    from round to round. For the CNN, a ``--before`` tree whose CNN fails (one from before the
    CNN layers existed) is left out with a note instead of failing the run."""
    label, script = NETWORKS[network]["label"], NETWORKS[network]["script"]
    settings = network_settings(args, network)
    systems = list(systems)
    rounds = []
    for r in range(args.rounds):
        results = {}
        limits = [MATMUL] + [MATMUL_TORCH] * (REFERENCE in systems)
        for name in benchlib.rotated([*systems, *limits], r):
            if name in limits:
                samples = settings["samples"] or benchlib.TRAIN_SIZE
                backend = "torch" if name == MATMUL_TORCH else "numpy"
                res = run_child("matmul_limit.py", ["--samples", str(samples),
                                                    "--repeats", str(args.matmul_repeats),
                                                    "--threads", str(args.threads),
                                                    "--backend", backend, *settings["matmul_args"]],
                                args.threads)
                log(f"[{label} round {r + 1}/{args.rounds}] {name:<15} {res['matmul_seconds_per_epoch']:.3f} "
                    f"s/epoch ({res['gflops']:.0f} GFLOP/s)")
            else:
                system = "scratchnn" if name == BEFORE else name
                child_args = ["--system", system, "--epochs", str(settings["epochs"]),
                              "--threads", str(args.threads), "--seed", str(args.seed + r),
                              *settings["child_args"]]
                if settings["samples"]:
                    child_args += ["--samples", str(settings["samples"])]
                if args.synthetic:
                    child_args.append("--synthetic")
                try:
                    res = run_child(script, child_args, args.threads,
                                    args.before_snapshot if name == BEFORE else None)
                except ChildFailed as error:
                    if network == "mlp" or name != BEFORE:
                        raise
                    last = str(error).strip().splitlines()[-1]
                    message = f"{label}: {BEFORE} left out: its {script} process failed ({last})"
                    log(message)
                    if notes is not None:
                        notes.append(message)
                    systems.remove(BEFORE)
                    for previous in rounds:
                        previous.pop(BEFORE, None)
                    continue
                res["epoch_s"] = steady_epoch(res["epoch_times"])
                log(f"[{label} round {r + 1}/{args.rounds}] {name:<15} {res['epoch_s']:.3f} s/epoch, test "
                    f"accuracy {res['test_accuracy']:.4f}, peak {res['memory']['peak_rss_mib']:.0f} MiB "
                    f"(steal {res['process'].get('steal_s', 0):.1f} s)")
            res["order"] = len(results)
            results[name] = res
        rounds.append(results)
    return {"network": network, "systems": systems, "epochs": settings["epochs"],
            "samples": settings["samples"] or benchlib.TRAIN_SIZE,
            "rounds": rounds, "summary": summarize(rounds, systems)}


def _matmul_summary(limits: list[dict]) -> dict:
    best = min(limits, key=lambda m: m["matmul_seconds_per_epoch"])
    return {"seconds_per_epoch": best["matmul_seconds_per_epoch"], "gflops": best["gflops"],
            "gflop_per_epoch": best["gflop_per_epoch"], "batches": best["batches"],
            "last_batch": best["last_batch"], "samples": best["samples"],
            "timed_batches": best.get("timed_batches", best["batches"]),
            "per_round_s": [m["matmul_seconds_per_epoch"] for m in limits], "per_op": best["per_op"]}


def summarize(rounds: list[dict], systems: list[str]) -> dict:
    """Per system: seconds per epoch, ratios to PyTorch, accuracy, memory, matmul share."""
    matmul = [r[MATMUL] for r in rounds]
    summary = {"matmul_limit": _matmul_summary(matmul), "systems": {}}
    if MATMUL_TORCH in rounds[0]:
        torch_matmul = [r[MATMUL_TORCH] for r in rounds]
        summary["matmul_limit_torch"] = {
            **_matmul_summary(torch_matmul),
            "ratio_to_numpy_per_round": [t["matmul_seconds_per_epoch"] / n["matmul_seconds_per_epoch"]
                                         for t, n in zip(torch_matmul, matmul)]}
    has_reference = REFERENCE in systems
    for name in systems:
        per_round = [r[name]["epoch_s"] for r in rounds]
        entry = {
            "epoch_s": _stats(per_round), "epoch_s_per_round": per_round,
            "first_epoch_s_median": statistics.median(r[name]["epoch_times"][0] for r in rounds),
            "spread_max_over_min": max(per_round) / min(per_round),
            "test_accuracy_mean": statistics.fmean(r[name]["test_accuracy"] for r in rounds),
            "test_accuracy_per_round": [r[name]["test_accuracy"] for r in rounds],
            "peak_rss_mib_median": statistics.median(r[name]["memory"]["peak_rss_mib"] for r in rounds),
            "rss_after_setup_mib_median": statistics.median(r[name]["memory"]["rss_after_setup_mib"] or 0
                                                            for r in rounds),
            "train_increment_mib_median": statistics.median(r[name]["memory"]["train_increment_mib"]
                                                            for r in rounds),
            "matmul_share": summary["matmul_limit"]["seconds_per_epoch"] / statistics.median(per_round),
            "steal_s_per_round": [r[name]["process"].get("steal_s") for r in rounds],
            "thread_pools": rounds[0][name].get("thread_pools", []),
            "versions": rounds[0][name].get("versions", {}),
        }
        if has_reference:
            ratios = [r[name]["epoch_s"] / r[REFERENCE]["epoch_s"] for r in rounds]
            entry["ratio_to_torch_per_round"] = ratios
            entry["ratio_to_torch"] = _stats(ratios)
        if name == "sklearn":
            entry["sklearn_details"] = rounds[0][name]["sklearn_details"]
        if "parameters" in rounds[0][name]:
            entry["parameters"] = rounds[0][name]["parameters"]
        summary["systems"][name] = entry
    if has_reference:
        torch_peak = summary["systems"][REFERENCE]["peak_rss_mib_median"]
        for entry in summary["systems"].values():
            entry["peak_rss_ratio_to_torch"] = entry["peak_rss_mib_median"] / torch_peak
    return summary


def network_notes(part: dict, threads: int, prefix: str = "") -> list[str]:
    """Notes on one network's results: thread pools of another size, epochs that get slower
    during training, seconds per epoch that vary much between rounds."""
    notes = []
    for name, entry in part["summary"]["systems"].items():
        for pool in entry["thread_pools"]:
            if pool["threads"] != threads:
                notes.append(f"{prefix}{name}: thread pool {pool['api']} ({pool['prefix']}) has "
                             f"{pool['threads']} threads, not {threads}")
        drift = [r[name]["epoch_times"][-1] / r[name]["epoch_times"][1] for r in part["rounds"]
                 if len(r[name]["epoch_times"]) > 2]
        if drift and statistics.median(drift) > 1.15:
            notes.append(f"{prefix}{name}: epochs get slower during training (last epoch / epoch 2: "
                         f"{statistics.median(drift):.2f}x, median over rounds); see the per-epoch times "
                         "in results.json and the README's caveats")
        if entry["spread_max_over_min"] > 1.5:
            notes.append(f"{prefix}{name}: seconds per epoch vary {entry['spread_max_over_min']:.1f}x between "
                         f"rounds ({', '.join(f'{v:.3f}' for v in entry['epoch_s_per_round'])}): the machine "
                         "was busy")
    return notes


# ---------------------------------------------------------------------- XOR
def run_xor(args, systems: list[str]) -> dict:
    names = [{**XOR_SYSTEMS, BEFORE: BEFORE}[s] for s in systems if s in XOR_SYSTEMS or s == BEFORE]
    rounds = []
    for r in range(args.rounds):
        results = {}
        for name in benchlib.rotated(names, r):
            system = "scratchnn" if name == BEFORE else name
            res = run_child("bench_xor.py", ["--system", system, "--epochs", str(args.xor_epochs),
                                             "--threads", str(args.threads)], args.threads,
                            args.before_snapshot if name == BEFORE else None)
            log(f"[XOR round {r + 1}/{args.rounds}] {name:<10} {res['seconds']:.3f} s, predictions "
                f"{res['predictions']} ({'correct' if res['correct'] else 'WRONG'})")
            results[name] = res
        rounds.append(results)
    summary = {}
    for name in names:
        seconds = [r[name]["seconds"] for r in rounds]
        entry = {"seconds": _stats(seconds), "seconds_per_round": seconds,
                 "correct_all_rounds": all(r[name]["correct"] for r in rounds),
                 "predictions": rounds[0][name]["predictions"],
                 "probabilities": rounds[0][name]["probabilities"],
                 "final_loss": rounds[0][name]["final_loss"]}
        for other in ("torch", "numpy"):
            if other in names:
                entry[f"ratio_to_{other}"] = _stats([r[name]["seconds"] / r[other]["seconds"] for r in rounds])
        if "numpy" in names:
            entry["max_abs_probability_difference_to_numpy"] = max(
                abs(a - b) for a, b in zip(rounds[0][name]["probabilities"], rounds[0]["numpy"]["probabilities"]))
        summary[name] = entry
    return {"epochs": args.xor_epochs, "rounds": rounds, "summary": summary}


# ------------------------------------------------------------------ outputs
def _f(value, digits=3, suffix=""):
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _source(results: dict) -> str:
    source = results.get("scratchnn_source")
    if not source:
        return ""
    if source["git_commit"]:
        return f" (git {source['git_commit']}{', with uncommitted changes' if source['git_dirty'] else ''})"
    return f" (source {source['sha256']})"


def _epochs_phrase(epochs: int) -> str:
    return "the time of the one epoch" if epochs == 1 else f"median of epochs 2 to {epochs}"


def network_markdown(results: dict, network: str, data: str) -> list[str]:
    """The section of results.md of the MLP or the CNN: the table of the systems, the matmul
    limit and, for the CNN, the products one by one."""
    a, part = results["settings"], results[network]
    summary, limit = part["summary"], part["summary"]["matmul_limit"]
    epochs, samples = part.get("epochs", a["epochs"]), part.get("samples", a["samples"] or 60000)
    if network == "mlp":
        lines = [f"### MLP 784-256-128-10 on {data}", "",
                 "ReLU, softmax cross-entropy, Adam (lr 1e-3), batch 128 reshuffled every epoch, float32; "]
    else:
        params = {s["parameters"] for s in summary["systems"].values() if "parameters" in s}
        count = ", ".join(f"{n:,}" for n in sorted(params)) or "n/a"
        lines = [f"### CNN conv32-pool-conv64-pool-128-10 on {data}", "",
                 "Conv 32 (3x3, valid) - ReLU - max-pool 2 - conv 64 (3x3, valid) - ReLU - max-pool 2 - "
                 f"flatten - dense 128 - ReLU - dense 10 ({count} parameters); images 28x28x1 "
                 "(scratchnn channels last, PyTorch channels first); softmax cross-entropy, Adam "
                 "(lr 1e-3), batch 128 reshuffled every epoch, float32; "]
    lines[-1] += (
        f"{samples} training samples, {epochs} epochs, {a['rounds']} rounds. "
        f"Seconds per epoch: {_epochs_phrase(epochs)} in each round, then the median and the minimum "
        "over rounds; × torch: the ratio to PyTorch in the same round (median, min over rounds); peak: "
        "the process's peak resident memory; training: what training adds to the memory after import "
        "and data loading; matmul share: the matmul limit over the system's seconds per epoch.")
    lines += [
        "",
        "| system | s/epoch (median) | s/epoch (min) | × torch (median) | × torch (min) | first epoch s "
        "| test accuracy | peak MiB | training MiB | peak × torch | matmul share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary["systems"].items():
        r = s.get("ratio_to_torch", {})
        lines.append(f"| {name} | {_f(s['epoch_s']['median'])} | {_f(s['epoch_s']['min'])} "
                     f"| {_f(r.get('median'), 2)} | {_f(r.get('min'), 2)} | {_f(s['first_epoch_s_median'])} "
                     f"| {_f(s['test_accuracy_mean'], 4)} | {_f(s['peak_rss_mib_median'], 0)} "
                     f"| {_f(s['train_increment_mib_median'], 0)} | {_f(s.get('peak_rss_ratio_to_torch'), 2)} "
                     f"| {_f(100 * s['matmul_share'], 0, '%')} |")
    timed = ""
    if limit["timed_batches"] < limit["batches"]:
        timed = (f"; timed on the first {limit['timed_batches']} batches of each size and scaled to the "
                 f"epoch's {limit['batches']}")
    what = "matrix products" if network == "mlp" else "matrix products at im2col's shapes"
    lines += ["", f"Matmul limit: the {limit['batches']} batches' {what} "
                  f"({limit['batches'] - 1} of 128 and one of {limit['last_batch']}; {limit['gflop_per_epoch']:.1f} "
                  f"GFLOP per epoch) take {limit['seconds_per_epoch']:.3f} s per epoch at "
                  f"{limit['gflops']:.0f} GFLOP/s (NumPy, float32, best of all repeats and rounds{timed}; "
                  "per round: " + ", ".join(f"{v:.3f}" for v in limit["per_round_s"]) + " s).", ""]
    torch_limit = summary.get("matmul_limit_torch")
    if torch_limit:
        t = torch_limit
        lines += [f"PyTorch's own BLAS does the same products in {t['seconds_per_epoch']:.3f} s per epoch "
                  f"({t['gflops']:.0f} GFLOP/s; per round: " + ", ".join(f"{v:.3f}" for v in t["per_round_s"])
                  + f" s): {statistics.median(t['ratio_to_numpy_per_round']):.2f}× NumPy's time "
                  "(median over rounds of the ratio within a round).", ""]
    if network == "cnn":
        head = "| product (the shapes of one batch) | NumPy s/epoch | NumPy GFLOP/s |"
        rule = "|---|---:|---:|"
        if torch_limit:
            head += " PyTorch s/epoch | PyTorch GFLOP/s |"
            rule += "---:|---:|"
        lines += ["The products one by one (each alone, best of its repeats):", "", head, rule]
        torch_ops = torch_limit["per_op"] if torch_limit else [None] * len(limit["per_op"])
        for op, top in zip(limit["per_op"], torch_ops):
            row = f"| {op['op']} | {_f(op['seconds_per_epoch'])} | {_f(op['gflops'], 0)} |"
            if top:
                row += f" {_f(top['seconds_per_epoch'])} | {_f(top['gflops'], 0)} |"
            lines.append(row)
        lines.append("")
    if "sklearn" in summary["systems"]:
        d = summary["systems"]["sklearn"]["sklearn_details"]
        lines += [f"scikit-learn, given float32 input, trained in {d['coefs_dtype']} (weights "
                  f"{d['coefs_dtype']}, Adam moments {d['adam_moment_dtype']}, probabilities "
                  f"{d['predict_proba_dtype']}); its epoch times include the input check that every "
                  f"partial_fit call repeats ({d['input_check_s_per_call'] * 1000:.0f} ms).", ""]
    return lines


def markdown(results: dict) -> str:
    m, a = results["machine"], results["settings"]
    lines = [
        "## Benchmarks", "",
        f"`{results['command']}` on {results['date']}; {results['harness_wall_s'] / 60:.1f} minutes in all.", "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores ({m['cpus_usable']} usable), {m['threads']} threads "
        f"everywhere (OMP/OPENBLAS/MKL_NUM_THREADS, torch.set_num_threads); Python {m['python']}, "
        f"NumPy {m['numpy']} ({results.get('blas', 'BLAS unknown')}), PyTorch {m['torch']}, "
        f"scikit-learn {m['scikit-learn']}, scratchnn {m['scratchnn']}{_source(results)}; "
        f"OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE'] or '(unset)'}; {m['platform']}.", "",
    ]
    data = "random synthetic data of the Fashion-MNIST shapes (accuracy is chance level)" \
        if a["synthetic"] else "Fashion-MNIST"
    lines += network_markdown(results, "mlp", data)
    if "cnn" in results:
        lines += network_markdown(results, "cnn", data)
    if "xor" in results:
        x = results["xor"]["summary"]
        lines += [f"### XOR, the tutorials' recipe: 2-4-1 sigmoid, BCE, SGD lr 0.1, {results['xor']['epochs']:,} "
                  "full-batch epochs", "",
                  "Seconds for all epochs (median, min over rounds); ratios per round, then their median. "
                  "All systems start from the same weights.", "",
                  "| system | seconds (median) | seconds (min) | × torch | × numpy | final probabilities | "
                  "right in every round | final loss |",
                  "|---|---:|---:|---:|---:|---|---|---:|"]
        for name, s in x.items():
            lines.append(f"| {name} | {_f(s['seconds']['median'])} | {_f(s['seconds']['min'])} "
                         f"| {_f(s.get('ratio_to_torch', {}).get('median'), 2)} "
                         f"| {_f(s.get('ratio_to_numpy', {}).get('median'), 2)} "
                         f"| {' '.join(f'{p:.3f}' for p in s['probabilities'])} "
                         f"| {'yes' if s['correct_all_rounds'] else 'NO'} | {_f(s['final_loss'], 4)} |")
        lines.append("")
    if "process" in results:
        p, inst = results["process"], results["install"]
        lines += ["### Whole process and install size", "",
                  f"Wall time of a fresh `python -c` that imports the system, loads the data and trains one "
                  f"epoch on {a['process_samples']:,} samples (median, min of {a['process_runs']} runs); "
                  "baseline: the data loading alone. Install size: the installed files of the system's "
                  "distribution and its dependencies.", "",
                  "| system | seconds (median) | seconds (min) | install MiB | distributions |",
                  "|---|---:|---:|---:|---|"]
        for name, s in p.items():
            size = inst.get(name, {})
            dists = ", ".join(f"{d} {v['version']}" for d, v in size.get("distributions", {}).items())
            lines.append(f"| {name} | {_f(s['median_s'], 2)} | {_f(s['min_s'], 2)} "
                         f"| {_f(size.get('mib'), 1)} | {dists} |")
        lines.append("")
    if results["notes"]:
        lines += ["Notes:", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path, network: str = "mlp") -> str | None:
    """The bar chart of seconds per epoch of ``network``; None, or the reason it was not drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart"
    summary = results[network]["summary"]
    names = list(summary["systems"])
    med = [summary["systems"][n]["epoch_s"]["median"] for n in names]
    low = [m - summary["systems"][n]["epoch_s"]["min"] for m, n in zip(med, names)]
    high = [summary["systems"][n]["epoch_s"]["max"] - m for m, n in zip(med, names)]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(names, med, yerr=[low, high], capsize=6, color="#4c72b0")
    for bar, value in zip(bars, med):
        ax.annotate(f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, value), xytext=(12, 3),
                    textcoords="offset points", ha="left", fontsize=9)
    limit = summary["matmul_limit"]["seconds_per_epoch"]
    ax.axhline(limit, color="#c44e52", linestyle="--", label=f"matmul limit (NumPy) {limit:.3f} s")
    if "matmul_limit_torch" in summary:
        torch_limit = summary["matmul_limit_torch"]["seconds_per_epoch"]
        ax.axhline(torch_limit, color="#dd8452", linestyle=":",
                   label=f"the same products with PyTorch's BLAS {torch_limit:.3f} s")
    epochs = results[network].get("epochs", results["settings"]["epochs"])
    ax.set_ylabel("seconds per epoch" + (" (median of epochs 2+)" if epochs > 1 else ""))
    ax.set_title(f"{NETWORKS[network]['title']}, batch 128, {results['machine']['threads']} threads: "
                 f"median, min-max over {results['settings']['rounds']} rounds", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# --------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads of every system (default: os.cpu_count())")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--samples", type=int, default=None, help="first N training samples (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of round 1 (round r uses seed + r - 1)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random data of the Fashion-MNIST shapes instead of the real files")
    parser.add_argument("--matmul-repeats", type=int, default=5)
    parser.add_argument("--skip-cnn", action="store_true")
    parser.add_argument("--cnn-epochs", type=int, default=3)
    parser.add_argument("--cnn-samples", type=int, default=None,
                        help="first N training samples of the CNN (default all)")
    parser.add_argument("--cnn-test-samples", type=int, default=None,
                        help="first N test images of the CNN's accuracy (default all 10,000)")
    parser.add_argument("--cnn-matmul-batches", type=int, default=20,
                        help="the CNN's matmul limit times the first N batches of each batch size and "
                             "scales to the epoch (default 20)")
    parser.add_argument("--skip-xor", action="store_true")
    parser.add_argument("--xor-epochs", type=int, default=10_000)
    parser.add_argument("--skip-process", action="store_true")
    parser.add_argument("--process-runs", type=int, default=5)
    parser.add_argument("--process-samples", type=int, default=6000)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="a directory holding another scratchnn package (such as an older "
                             "checkout's src/), measured in the same rounds as the system "
                             f"'{BEFORE}', for before/after comparisons")
    args = parser.parse_args(argv)
    for name in ("rounds", "epochs", "threads", "matmul_repeats", "cnn_epochs", "cnn_matmul_batches",
                 "xor_epochs", "process_runs", "process_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("samples", "cnn_samples", "cnn_test_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.systems = list(dict.fromkeys(args.systems))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    notes = []
    systems = []
    for name in args.systems:
        if importlib.util.find_spec(MODULES[name]) is None:
            notes.append(f"{name} skipped: {MODULES[name]} is not installed")
            log(notes[-1])
        else:
            systems.append(name)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    root = scratchnn_root()
    snapshot = snapshot_scratchnn(root) if root is not None else None
    args.before_snapshot = None
    if args.before is not None:
        if not (args.before / "scratchnn" / "__init__.py").is_file():
            log(f"error: --before {args.before}: no scratchnn package in that directory")
            return 2
        args.before_snapshot = snapshot_scratchnn(args.before / "scratchnn", first_on_path=False)
        index = systems.index("scratchnn") + 1 if "scratchnn" in systems else len(systems)
        systems.insert(index, BEFORE)
    try:
        return _run(args, command, systems, notes, started, root, snapshot)
    except ChildFailed as error:
        log(f"error: {error}")
        return 1
    finally:
        for directory in (snapshot, args.before_snapshot):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


def _run(args, command, systems, notes, started, root, snapshot) -> int:
    results = {
        "command": command,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(args.threads),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "scratchnn_before_source": None if args.before is None else scratchnn_source(args.before / "scratchnn"),
        "systems": systems, "notes": notes, "scratchnn_source": scratchnn_source(root),
        "scratchnn_snapshot": None if snapshot is None else str(snapshot / "scratchnn"),
    }
    if not systems:
        log("no system to run")
        return 2

    results["mlp"] = run_network(args, systems, "mlp", notes)
    first = results["mlp"]["rounds"][0]
    pools = first[MATMUL].get("thread_pools", [])
    if pools:
        results["blas"] = ", ".join(f"{p['api']} {p['version']}" for p in pools)
    if not args.skip_cnn:
        cnn_systems = [s for s in systems if s in CNN_SYSTEMS or s == BEFORE]
        if cnn_systems:
            results["cnn"] = run_network(args, cnn_systems, "cnn", notes)
        else:
            notes.append("CNN skipped: it runs in " + " and ".join(CNN_SYSTEMS) + ", none of them selected")
    for network in ("mlp", "cnn"):
        if network in results:
            notes += network_notes(results[network], args.threads, "" if network == "mlp" else "CNN: ")
    if not args.skip_xor:
        results["xor"] = run_xor(args, systems)
        for name, entry in results["xor"]["summary"].items():
            if not entry["correct_all_rounds"]:
                notes.append(f"XOR: {name} did not learn XOR in every round")
    if not args.skip_process:
        results["process"] = process_time.process_times(systems, args.process_runs, args.process_samples,
                                                        args.threads, args.synthetic, log=log)
        results["install"] = process_time.install_sizes(systems)
    results["harness_wall_s"] = time.perf_counter() - started
    source, end = results["scratchnn_source"], scratchnn_source(root)
    if source and end and source["sha256"] != end["sha256"]:
        notes.append(f"scratchnn's source changed during the run (from {source['sha256']} to "
                     f"{end['sha256']}); every process imported the copy taken at the start")
    imported = {child.get("scratchnn_imported_from") for part in ("mlp", "cnn", "xor")
                for round_ in results.get(part, {}).get("rounds", []) for child in round_.values()} - {None}
    results["scratchnn_imported_from"] = sorted(imported)
    snapshots = tuple(str(d) for d in (snapshot, args.before_snapshot) if d is not None)
    if snapshot is not None and any(not path.startswith(snapshots) for path in imported):
        notes.append(f"some processes imported scratchnn from outside the snapshot: {sorted(imported)}")

    charts = []
    for network, key in (("mlp", "chart"), ("cnn", "cnn_chart")):
        if network not in results:
            continue
        chart = args.out / f"{network}_epoch_times.png"
        problem = plot(results, chart, network)
        if problem:
            if problem not in notes:
                notes.append(problem)
        else:
            results[key] = chart.name
            charts.append(str(chart))
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    log(f"wrote {', '.join([str(args.out / 'results.json'), str(args.out / 'results.md'), *charts])} "
        f"in {results['harness_wall_s'] / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
