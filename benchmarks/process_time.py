"""Whole-process time of a short run, and install size, per system.

    python benchmarks/process_time.py --runs 3 --threads 2

Process time: the wall time of a fresh ``python -c`` process that imports the system, loads
the data (the same way for every system: ``scratchnn.datasets.load_fashion_mnist``, or
``--synthetic``) and trains one epoch on the first 6,000 samples; interpreter start-up
included. The runs are interleaved (the order of the systems rotates), and the median and
minimum over runs are reported. The row ``baseline`` does only the data loading: the part
that every system shares.

Install size: the bytes of every file that the installed distributions list (their RECORD),
for the system's distribution and its dependencies, recursively (requirements that are
installed and apply here; extras left out):

    scratchnn       scratchnn + numpy   (an editable install counts the package's .py files)
    torch           torch + what it requires (numpy is not among them)
    sklearn         scikit-learn + numpy, scipy, joblib, threadpoolctl
    numpy-tutorial  numpy
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib

BENCH_DIR = Path(__file__).resolve().parent
DISTRIBUTIONS = {"scratchnn": "scratchnn", "torch": "torch", "sklearn": "scikit-learn",
                 "numpy-tutorial": "numpy"}


# ------------------------------------------------------------------ process time
def snippet(system: str, samples: int, threads: int, synthetic: bool) -> str:
    """The ``python -c`` program of one short run."""
    head = f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); "
    if system == "baseline":
        return head + f"import benchlib; benchlib.load_data({synthetic!r}, {samples})"
    return head + (f"import bench_mlp; bench_mlp.short_run({system!r}, {samples}, {threads}, "
                   f"synthetic={synthetic!r})")


def time_process(system: str, samples: int, threads: int, synthetic: bool) -> float:
    code = snippet(system, samples, threads, synthetic)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], env=benchlib.thread_env(threads),
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"process-time run of {system} failed:\n{result.stderr[-2000:]}")
    return seconds


def process_times(systems, runs: int = 3, samples: int = 6000, threads: int | None = None,
                  synthetic: bool = False, log=None) -> dict:
    """``{system: {"runs": [...], "median_s": ..., "min_s": ...}}``, runs interleaved."""
    threads = threads or os.cpu_count()
    systems = ["baseline", *systems]
    times = {s: [] for s in systems}
    for run in range(runs):
        for system in benchlib.rotated(systems, run):
            times[system].append(time_process(system, samples, threads, synthetic))
            if log:
                log(f"process time, run {run + 1}/{runs}: {system:<15} {times[system][-1]:.2f} s")
    return {s: {"runs": t, "median_s": statistics.median(t), "min_s": min(t)} for s, t in times.items()}


# ------------------------------------------------------------------ install size
def _requirement_names(dist) -> list[str]:
    """Names of the requirements of ``dist`` that apply here, extras left out."""
    names = []
    for text in dist.requires or []:
        try:
            from packaging.requirements import Requirement
        except ImportError:          # a plain parse: name, and drop requirements of extras
            name, _, marker = text.partition(";")
            if "extra" in marker:
                continue
            names.append(re.match(r"\s*([A-Za-z0-9._-]+)", name).group(1))
            continue
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        names.append(requirement.name)
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(root: str) -> list[str]:
    """``root`` and its installed requirements, recursively (normalized names)."""
    seen, todo = [], [root]
    while todo:
        name = _normalize(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.append(name)
        todo.extend(_requirement_names(dist))
    return seen


def distribution_bytes(name: str) -> tuple[int, str]:
    """Total bytes of the files of an installed distribution, and how they were counted."""
    dist = metadata.distribution(name)
    files = [Path(dist.locate_file(f)) for f in dist.files or []]
    top_level = (dist.read_text("top_level.txt") or "").split()
    package = top_level[0] if top_level else _normalize(name).replace("-", "_")
    has_code = any(p.name == "__init__.py" and p.parent.name == package for p in files)
    if not has_code:
        # An editable install lists only its metadata and a path hook: count the package's
        # source files where Python imports them from.
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            root = Path(list(spec.submodule_search_locations)[0])
            source = [p for p in root.rglob("*.py")]
            return sum(p.stat().st_size for p in source) + sum(
                p.stat().st_size for p in files if p.is_file()), "editable: package .py files + metadata"
    seen, total = set(), 0
    for path in files:
        try:
            resolved = path.resolve()
            if resolved in seen or not resolved.is_file():
                continue
            seen.add(resolved)
            total += resolved.stat().st_size
        except OSError:
            continue
    return total, "installed files (RECORD)"


def install_sizes(systems) -> dict:
    out = {}
    for system in systems:
        root = DISTRIBUTIONS[system]
        dists = dependency_closure(root)
        if not dists:
            out[system] = {"installed": False}
            continue
        parts = {}
        for name in dists:
            size, how = distribution_bytes(name)
            parts[name] = {"bytes": size, "version": metadata.version(name), "counted": how}
        total = sum(p["bytes"] for p in parts.values())
        out[system] = {"installed": True, "bytes": total, "mib": total / 2**20,
                       "distributions": parts}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(DISTRIBUTIONS), choices=list(DISTRIBUTIONS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args(argv)
    result = {"process": process_times(args.systems, args.runs, args.samples, args.threads,
                                       args.synthetic, log=lambda m: print(m, file=sys.stderr)),
              "install": install_sizes(args.systems)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
