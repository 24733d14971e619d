"""scratchnn's scikit-learn estimators against scikit-learn's own MLPs, and
benchmarks/results/{sklearn.json, sklearn.md}.

    python benchmarks/bench_sklearn.py --rounds 3

``scratchnn.sklearn.NeuralNetClassifier`` / ``NeuralNetRegressor`` and scikit-learn's
``MLPClassifier`` / ``MLPRegressor``, with the same parameters, fitted on the same arrays:

  digits          classification, 10 classes   (scikit-learn's bundled copy)
  breast_cancer   classification, 2 classes    (bundled)
  diabetes        regression, R^2              (bundled)
  fashion-mnist   classification, 10 classes   (scratchnn.datasets.load_fashion_mnist)

Each bundled data set is split once (``train_test_split(test_size=0.25, random_state=0)``) and
standardized with a ``StandardScaler`` fitted on the training part (diabetes's target too, by
the training part's mean and standard deviation); Fashion-MNIST is used as
loaded (float32 pixels / 255, the official 10,000 test images). Each data set is fitted with
the solvers ``"adam"`` and ``"lbfgs"`` (settings in ``settings``). Every fit runs in its own
process (this script with ``--child``), which prints one ``BENCH_JSON {...}`` line: the fit's
wall time, ``n_iter_``, the test score (accuracy, or R^2), the dtype it computed in. The
parent runs every (data set, solver) in both systems in each round, the order of the two
rotating, with the same thread count (``benchlib.thread_env``), and writes the tables. See
the section "scikit-learn estimators" of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import benchlib
import run as harness

BENCH_DIR = Path(__file__).resolve().parent
SYSTEMS = ("scratchnn", "sklearn")
DATASETS = ("digits", "breast_cancer", "diabetes", "fashion-mnist")
FASHION = "fashion-mnist"
REGRESSION = ("diabetes",)
SOLVERS = ("adam", "lbfgs")
#: The issue's targets: the test score at most this many points (of 100) below scikit-learn's,
#: and the fit time at most this fraction of scikit-learn's (the median of the per-round ratios).
SCORE_TARGET_POINTS = -1.0
TIME_TARGET_RATIO = 0.5


def settings(dataset: str, solver: str, max_iter_cap: int | None = None) -> dict:
    """The estimator parameters of one (data set, solver), the same for both systems
    (``random_state`` is added per round). Fashion-MNIST: a larger network, and fewer
    iterations (an Adam iteration is an epoch over 60,000 images; L-BFGS's are full-batch)."""
    params = {"hidden_layer_sizes": (100,), "activation": "relu", "solver": solver, "alpha": 1e-4,
              "batch_size": "auto", "learning_rate_init": 1e-3, "max_iter": 200,
              "early_stopping": False}
    if dataset == FASHION:
        params["hidden_layer_sizes"] = (256, 128)
        params["max_iter"] = 20 if solver == "adam" else 100
    if max_iter_cap is not None:
        params["max_iter"] = min(params["max_iter"], max_iter_cap)
    return params


# ------------------------------------------------------------------ child
def load_dataset(name: str, fashion_samples: int | None = None, fashion_test_samples: int | None = None):
    """``(X_train, X_test, y_train, y_test)`` of one data set, split and scaled as described
    in the module docstring (the same arrays in every process)."""
    if name == FASHION:
        X_train, y_train, X_test, y_test = benchlib.load_data(samples=fashion_samples)
        if fashion_test_samples is not None:
            X_test, y_test = X_test[:fashion_test_samples], y_test[:fashion_test_samples]
        return X_train, X_test, y_train, y_test
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
              "diabetes": datasets.load_diabetes}[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    if name in REGRESSION:
        # The target too (its mean and spread from the training part; R^2 does not change
        # under this map): diabetes's raw target (25..346) leaves both systems' networks
        # far from fitted after max_iter epochs, and the comparison meaningless.
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def make_estimator(system: str, dataset: str, params: dict):
    if system == "scratchnn":
        from scratchnn.sklearn import NeuralNetClassifier as Classifier, NeuralNetRegressor as Regressor
    else:
        from sklearn.neural_network import MLPClassifier as Classifier, MLPRegressor as Regressor
    return (Regressor if dataset in REGRESSION else Classifier)(**params)


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one fit in one system (started by the parent)")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--solver", required=True, choices=SOLVERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--fashion-samples", type=int, default=None)
    parser.add_argument("--fashion-test-samples", type=int, default=None)
    parser.add_argument("--max-iter", type=int, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import scipy
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    X_train, X_test, y_train, y_test = load_dataset(args.dataset, args.fashion_samples,
                                                    args.fashion_test_samples)
    params = {**settings(args.dataset, args.solver, args.max_iter), "random_state": args.seed}
    estimator = make_estimator(args.system, args.dataset, params)
    # Both systems warn when max_iter ends a fit: recorded (and counted), not printed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        cpu_start, start = time.process_time(), time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    not_converged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in not_converged:
            print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno), file=sys.stderr, end="")
    score = float(estimator.score(X_test, y_test))
    if args.system == "scratchnn":
        import scratchnn
        dtype, version = str(estimator.model_.dtype), scratchnn.__version__
    else:
        dtype, version = str(estimator.coefs_[0].dtype), sklearn.__version__
    result = {
        "system": args.system, "dataset": args.dataset, "solver": args.solver, "seed": args.seed,
        "threads": args.threads,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "n_train": len(X_train), "n_test": len(X_test), "n_features": int(X_train.shape[1]),
        "n_classes": None if args.dataset in REGRESSION else int(len(np.unique(y_train))),
        "input_dtype": str(X_train.dtype), "dtype": dtype,
        "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "n_iter": int(estimator.n_iter_),
        "final_loss": float(estimator.loss_),
        "converged": not not_converged,
        "convergence_warning": str(not_converged[0].message) if not_converged else None,
        "score": score, "score_name": "R2" if args.dataset in REGRESSION else "accuracy",
        "versions": {"system": version, "numpy": np.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__, "python": sys.version.split()[0]},
    }
    result["thread_pools"] = benchlib.blas_threads()
    benchlib.emit(result)


# ----------------------------------------------------------------- parent
def child_args(args, system: str, dataset: str, solver: str, seed: int) -> list[str]:
    extra = ["--child", "--system", system, "--dataset", dataset, "--solver", solver,
             "--seed", str(seed), "--threads", str(args.threads)]
    for name in ("fashion_samples", "fashion_test_samples", "max_iter"):
        if getattr(args, name) is not None:
            extra += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return extra


def run_fit(args, system: str, dataset: str, solver: str, round_index: int) -> dict:
    """One child process; a failure names the system, data set, solver and round."""
    seed = args.seed + round_index
    try:
        return harness.run_child(Path(__file__).name, child_args(args, system, dataset, solver, seed),
                                 args.threads)
    except harness.ChildFailed as error:
        message = str(error).replace("or pass --synthetic", "or pass --skip-fashion")
        raise harness.ChildFailed(f"{system} on {dataset} (solver {solver}, round {round_index + 1}, "
                                  f"random_state={seed}) failed: {message}") from None


def summarize_case(rounds: list[dict]) -> dict:
    """Per system: fit seconds, scores, n_iter; then the comparison and the targets."""
    summary = {"systems": {}}
    for system in SYSTEMS:
        fits = [r[system] for r in rounds]
        seconds = [f["fit_s"] for f in fits]
        summary["systems"][system] = {
            "fit_s": harness._stats(seconds), "fit_s_per_round": seconds,
            "spread_max_over_min": max(seconds) / min(seconds),
            "score_mean": statistics.fmean(f["score"] for f in fits),
            "score_per_round": [f["score"] for f in fits],
            "n_iter_median": statistics.median(f["n_iter"] for f in fits),
            "n_iter_per_round": [f["n_iter"] for f in fits],
            "converged_rounds": sum(f["converged"] for f in fits),
            "dtype": fits[0]["dtype"],
        }
    ours, theirs = summary["systems"]["scratchnn"], summary["systems"]["sklearn"]
    ratios = [r["scratchnn"]["fit_s"] / r["sklearn"]["fit_s"] for r in rounds]
    difference = 100 * (ours["score_mean"] - theirs["score_mean"])
    summary.update({
        "score_difference_points": difference,
        "score_difference_points_per_round": [100 * (r["scratchnn"]["score"] - r["sklearn"]["score"])
                                              for r in rounds],
        "time_ratio": harness._stats(ratios), "time_ratio_per_round": ratios,
        # (a tolerance for rounding: 3 of 300 samples fewer is exactly one point, not 1.0000000000000009)
        "meets_score_target": difference >= SCORE_TARGET_POINTS - 1e-9,
        "meets_time_target": statistics.median(ratios) <= TIME_TARGET_RATIO,
    })
    return summary


def _iterations(entry: dict) -> str:
    values = entry["n_iter_per_round"]
    median = entry["n_iter_median"]
    text = f"{median:g}"
    return text if min(values) == max(values) else f"{text} ({min(values)}-{max(values)})"


def _misses(summary: dict) -> str:
    misses = []
    if not summary["meets_score_target"]:
        misses.append(f"**score** ({summary['score_difference_points']:+.2f} points)")
    if not summary["meets_time_target"]:
        misses.append(f"**time** ({summary['time_ratio']['median']:.2f}×)")
    return ", ".join(misses) or "—"


def notes_of(results: dict) -> list[str]:
    """Dtypes, convergence, thread pools, spread between rounds."""
    notes = []
    for system in SYSTEMS:
        by_dtype = {}
        for case in results["cases"]:
            by_dtype.setdefault(case["summary"]["systems"][system]["dtype"], []).append(
                f"{case['dataset']}/{case['solver']}")
        inputs = {case["dataset"]: case["rounds"][0][system]["input_dtype"] for case in results["cases"]}
        name = "scratchnn" if system == "scratchnn" else "scikit-learn"
        parts = [f"{dtype} ({', '.join(cases)})" for dtype, cases in by_dtype.items()]
        notes.append(f"{name} computed in " + "; in ".join(parts) + ". Input dtypes: "
                     + ", ".join(f"{d} {t}" for d, t in inputs.items()) + "."
                     + (" scratchnn's estimators compute in their dtype (float32 by default) whatever "
                        "the input; scikit-learn's MLPs compute in float64, except adam and sgd on "
                        "float32 input, whose dtype they keep (lbfgs: scipy's L-BFGS-B makes the "
                        "weights float64). The dtype reported is that of the fitted weights."
                        if system == "sklearn" else ""))
    for system in SYSTEMS:
        stopped = [f"{case['dataset']}/{case['solver']} (max_iter {case['params']['max_iter']}: "
                   f"{len(case['rounds']) - entry['converged_rounds']} of {len(case['rounds'])} rounds)"
                   for case in results["cases"]
                   for entry in [case["summary"]["systems"][system]]
                   if entry["converged_rounds"] < len(case["rounds"])]
        if stopped:
            notes.append(f"{system} stopped at max_iter without converging (a ConvergenceWarning) in "
                         + ", ".join(stopped))
    for case in results["cases"]:
        label = f"{case['dataset']}/{case['solver']}"
        for system, entry in case["summary"]["systems"].items():
            if entry["spread_max_over_min"] > 1.5:
                notes.append(f"{label}: {system}'s fit times vary {entry['spread_max_over_min']:.1f}x between "
                             f"rounds ({', '.join(f'{v:.3f}' for v in entry['fit_s_per_round'])} s): the "
                             "machine was busy")
            for pool in case["rounds"][0][system].get("thread_pools", []):
                if pool["threads"] != results["machine"]["threads"]:
                    notes.append(f"{label}: {system}: thread pool {pool['api']} ({pool['prefix']}) has "
                                 f"{pool['threads']} threads, not {results['machine']['threads']}")
    if results["settings"]["max_iter"] is not None:
        notes.append(f"max_iter capped at {results['settings']['max_iter']} (--max-iter): not the issue's "
                     "settings; the figures are for trying the script out")
    return notes


def markdown(results: dict) -> str:
    m = results["machine"]
    f = harness._f
    pools = sorted({f"{p['api']} {p['version']}" for case in results["cases"] for r in case["rounds"]
                    for c in r.values() for p in c.get("thread_pools", []) if p.get("api") == "openblas"})
    lines = [
        "## scikit-learn estimators: scratchnn.sklearn against MLPClassifier / MLPRegressor", "",
        f"`{results['command']}` on {results['date']}; {results['harness_wall_s'] / 60:.1f} minutes in all.", "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores ({m['cpus_usable']} usable), {m['threads']} threads "
        f"in every process (OMP/OPENBLAS/MKL_NUM_THREADS); Python {m['python']}, NumPy {m['numpy']}"
        f"{' (' + ', '.join(pools) + ')' if pools else ''}, SciPy {m['scipy']}, scikit-learn "
        f"{m['scikit-learn']}, scratchnn {m['scratchnn']}{harness._source(results)}; "
        f"OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE'] or '(unset)'}; {m['platform']}.", "",
        f"Both systems get the same parameters: hidden_layer_sizes=(100,) ((256, 128) on Fashion-MNIST), "
        f"activation relu, alpha 1e-4, batch_size 'auto' (min(200, n)), learning_rate_init 1e-3, "
        f"max_iter 200 (Fashion-MNIST: 20 with adam, 100 with lbfgs), tol 1e-4, early_stopping False, "
        f"random_state = round - 1 + {results['settings']['seed']} (the same in both); scratchnn with its "
        f"default dtype (float32). Each fit in its own process; {results['settings']['rounds']} "
        f"round{'s' if results['settings']['rounds'] > 1 else ''}, the "
        "order of the two systems rotating. Score: test accuracy (R² for diabetes), the mean over "
        "rounds; difference in points: 100 × (scratchnn − scikit-learn). Seconds: the fit's wall "
        "time, median (min) over rounds. Time ratio: scratchnn / scikit-learn within each round, "
        "median (min) over rounds.", "",
        f"Targets: a score at most {-SCORE_TARGET_POINTS:g} point below scikit-learn's (or better) and a fit "
        f"time at most {TIME_TARGET_RATIO:g}× scikit-learn's (median ratio); the last column names the "
        "targets a row misses.", "",
        "| data set | solver | scratchnn score | sklearn score | score difference (points) | scratchnn s "
        "| sklearn s | time ratio (scratchnn / sklearn) | n_iter scratchnn / sklearn | misses |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in results["cases"]:
        s = case["summary"]
        ours, theirs = s["systems"]["scratchnn"], s["systems"]["sklearn"]
        lines.append(
            f"| {case['dataset']} | {case['solver']} | {f(ours['score_mean'], 4)} | {f(theirs['score_mean'], 4)} "
            f"| {s['score_difference_points']:+.2f} "
            f"| {f(ours['fit_s']['median'])} ({f(ours['fit_s']['min'])}) "
            f"| {f(theirs['fit_s']['median'])} ({f(theirs['fit_s']['min'])}) "
            f"| {f(s['time_ratio']['median'], 2)} ({f(s['time_ratio']['min'], 2)}) "
            f"| {_iterations(ours)} / {_iterations(theirs)} | {_misses(s)} |")
    met = sum(c["summary"]["meets_score_target"] and c["summary"]["meets_time_target"] for c in results["cases"])
    lines += ["", f"{met} of {len(results['cases'])} rows meet both targets.", ""]
    sizes = {c["dataset"]: c["rounds"][0]["scratchnn"] for c in results["cases"]}
    lines += ["Data: " + "; ".join(
        f"{d}: {c['n_train']:,} training and {c['n_test']:,} test samples, {c['n_features']} features"
        + (f", {c['n_classes']} classes" if c["n_classes"] else ", regression") for d, c in sizes.items())
        + ".", ""]
    if results["notes"]:
        lines += ["Notes:", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads of every process (default: os.cpu_count())")
    parser.add_argument("--seed", type=int, default=0, help="random_state of round 1 (round r: seed + r - 1)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--solvers", nargs="+", choices=SOLVERS, default=list(SOLVERS))
    parser.add_argument("--skip-fashion", action="store_true", help="leave Fashion-MNIST out")
    parser.add_argument("--fashion-samples", type=int, default=None,
                        help=f"the first N Fashion-MNIST training images (default all {benchlib.TRAIN_SIZE:,})")
    parser.add_argument("--fashion-test-samples", type=int, default=None,
                        help=f"the first N Fashion-MNIST test images (default all {benchlib.TEST_SIZE:,})")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="cap every max_iter at N (quick tries; not the issue's settings)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    for name in ("rounds", "threads", "fashion_samples", "fashion_test_samples", "max_iter"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.fashion_samples is not None and args.fashion_samples > benchlib.TRAIN_SIZE:
        parser.error(f"--fashion-samples: Fashion-MNIST has {benchlib.TRAIN_SIZE:,} training images")
    if args.fashion_test_samples is not None and args.fashion_test_samples > benchlib.TEST_SIZE:
        parser.error(f"--fashion-test-samples: Fashion-MNIST has {benchlib.TEST_SIZE:,} test images")
    args.datasets = [d for d in dict.fromkeys(args.datasets) if not (args.skip_fashion and d == FASHION)]
    args.solvers = list(dict.fromkeys(args.solvers))
    if not args.datasets:
        parser.error("no data set left to run")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--child" in argv:
        child_main(argv)
        return 0
    args = parse_args(argv)
    started = time.perf_counter()
    command = shlex.join([sys.executable, __file__, *argv])
    root = harness.scratchnn_root()
    if root is None:
        harness.log("error: scratchnn is not importable (pip install -e '.[bench]')")
        return 2
    snapshot = harness.snapshot_scratchnn(root)     # every child imports the source as it is now
    try:
        return _run(args, command, started, root, snapshot)
    except harness.ChildFailed as error:
        harness.log(f"error: {error}")
        return 1
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def _run(args, command: str, started: float, root: Path, snapshot: Path) -> int:
    machine = harness.machine_info(args.threads)
    machine["scipy"] = harness.version("scipy")
    results = {
        "command": command,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "targets": {"score_difference_points_at_least": SCORE_TARGET_POINTS,
                    "time_ratio_at_most": TIME_TARGET_RATIO},
        "scratchnn_source": harness.scratchnn_source(root),
        "scratchnn_snapshot": str(snapshot / "scratchnn"),
    }
    cases = [(d, s) for d in args.datasets for s in args.solvers]
    rounds = {case: [] for case in cases}
    for r in range(args.rounds):
        for index, (dataset, solver) in enumerate(cases):
            fits = {}
            for system in benchlib.rotated(list(SYSTEMS), r + index):
                fit = run_fit(args, system, dataset, solver, r)
                fit["order"] = len(fits)
                fits[system] = fit
                harness.log(f"[round {r + 1}/{args.rounds}] {dataset:<13} {solver:<5} {system:<9} "
                            f"{fit['fit_s']:8.3f} s, n_iter {fit['n_iter']:>3}, {fit['score_name']} "
                            f"{fit['score']:.4f}{'' if fit['converged'] else ' (max_iter reached)'}")
            rounds[(dataset, solver)].append(fits)
    results["cases"] = [{"dataset": d, "solver": s, "params": rounds[(d, s)][0]["scratchnn"]["params"],
                         "rounds": rounds[(d, s)], "summary": summarize_case(rounds[(d, s)])}
                        for d, s in cases]
    results["harness_wall_s"] = time.perf_counter() - started
    results["notes"] = notes_of(results)
    source, end = results["scratchnn_source"], harness.scratchnn_source(root)
    if source and end and source["sha256"] != end["sha256"]:
        results["notes"].append(f"scratchnn's source changed during the run (from {source['sha256']} to "
                                f"{end['sha256']}); every process imported the copy taken at the start")
    imported = sorted({fit.get("scratchnn_imported_from") for rs in rounds.values() for r in rs
                       for fit in r.values()} - {None})
    results["scratchnn_imported_from"] = imported
    if any(not path.startswith(str(snapshot)) for path in imported):
        results["notes"].append(f"some processes imported scratchnn from outside the snapshot: {imported}")
    for case in results["cases"]:
        for value in (case["summary"]["score_difference_points"], case["summary"]["time_ratio"]["median"]):
            if not math.isfinite(value):
                results["notes"].append(f"{case['dataset']}/{case['solver']}: a figure is not finite ({value})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sklearn.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "sklearn.md").write_text(markdown(results))
    print(markdown(results), end="")
    harness.log(f"wrote {args.out / 'sklearn.json'} and {args.out / 'sklearn.md'} in "
                f"{results['harness_wall_s'] / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
