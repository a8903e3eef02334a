"""The README's 11-strategy GoEmotions sweep with and without the feature and neighbour caches (a script, not a test).

    python tests/benchmarks/bench_feature_cache.py --data ../shared/data \
        [--strategies none,ml_ros,...] [--order cached-first] [--warm] [--baseline-src /path/to/old/src]

Runs the sweep twice as whole ``mltc run -m`` processes (Hydra's basic launcher, one job at a
time), each with its own empty MLflow store and, for the cached sweep, an empty cache directory:
``cache.features=false cache.neighbours=false`` first, then both ``true`` (``--order
cached-first`` swaps them, to see the machine's drift); ``--warm`` runs the cached sweep once
more on the cache the first one filled (a rerun, or a sweep over models / thresholds);
``--baseline-src`` first runs the uncached sweep with another version's ``src`` folder on
``PYTHONPATH`` (e.g. ``git archive <commit> src | tar -x -C /tmp/base``), to compare with the code
before a change in the same run. Prints the wall time and the CPU time (user + sys of the sweep's
processes: far less sensitive to other work on a shared machine) of each sweep, the speed-ups, the
load average, the sum of each stage's time over the jobs (``time_*`` metrics), and checks that every
job's logged test and validation metrics are identical in the cached, uncached and warm sweeps (exit
status 1 if not; differences from the baseline are listed, not checked).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STRATEGIES = "none,ml_ros,ml_rus,lp_ros,lp_rus,mlsmote,remedial,mlsol,mlenn,remedial_mlsmote,mlrus_mlros"
RESULT_KEYS = ("micro_f1", "macro_f1", "samples_f1", "micro_pr_auc", "macro_pr_auc", "hamming_loss",
               "subset_accuracy", "head_macro_f1", "medium_macro_f1", "tail_macro_f1", "tail_micro_f1")


def sweep(tmp: Path, name: str, data: str, strategies: str, cached: bool, extra: list[str],
          cache_dir: str | None = None, src: str | None = None) -> tuple[float, float]:
    """Run one sweep; return its wall and CPU seconds."""
    uri = f"sqlite:///{tmp / name}.db"
    on = str(cached).lower()
    cmd = [sys.executable, "-m", "mltc.cli", "run", "-m", "experiment=goemotions_logreg", f"strategy={strategies}",
           f"tracking.uri={uri}", f"cache.features={on}", f"cache.neighbours={on}",
           f"cache.dir={tmp / (cache_dir or name)}-cache", *extra]
    env = dict(os.environ, MLTC_DATA_DIR=data, MLTC_RUNS_DIR=str(tmp / f"{name}-runs"))
    if src:
        env["PYTHONPATH"] = src
    print("$", " ".join(cmd), f"  (load average {os.getloadavg()[0]:.1f})", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{name} sweep failed:\n{proc.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def runs(tmp: Path, name: str) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp / name}.db")
    exp = client.get_experiment_by_name("goemotions")
    out = {}
    for r in client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'"):
        if "mltc.strategy" in r.data.tags and "mltc.sweep_id" in r.data.tags:
            out[r.data.tags["mltc.strategy"]] = r.data.metrics
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MLTC_DATA_DIR", "../shared/data"))
    ap.add_argument("--strategies", default=STRATEGIES)
    ap.add_argument("--order", choices=["uncached-first", "cached-first"], default="uncached-first")
    ap.add_argument("--warm", action="store_true", help="then the cached sweep again on the filled cache")
    ap.add_argument("--baseline-src", help="first an uncached sweep with this src folder on PYTHONPATH")
    ap.add_argument("extra", nargs="*", help="more overrides for both sweeps")
    args = ap.parse_args(argv)
    data = str(Path(args.data).resolve())
    with tempfile.TemporaryDirectory(prefix="bench-fcache-") as d:
        tmp = Path(d)
        order = [False, True] if args.order == "uncached-first" else [True, False]
        wall, cpu = {}, {}
        if args.baseline_src:
            src = str(Path(args.baseline_src).resolve())
            wall["baseline"], cpu["baseline"] = sweep(tmp, "baseline", data, args.strategies, False, args.extra,
                                                      src=src)
            print(f"baseline ({src}): {wall['baseline']:.1f} s, CPU {cpu['baseline']:.1f} s", flush=True)
        for cached in order:
            name = "cached" if cached else "uncached"
            wall[name], cpu[name] = sweep(tmp, name, data, args.strategies, cached, args.extra)
            print(f"{name}: {wall[name]:.1f} s, CPU {cpu[name]:.1f} s", flush=True)
        if args.warm:
            wall["warm"], cpu["warm"] = sweep(tmp, "warm", data, args.strategies, True, args.extra,
                                              cache_dir="cached")
            print(f"warm: {wall['warm']:.1f} s, CPU {cpu['warm']:.1f} s", flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        got = {name: runs(tmp, name) for name in wall}
        a, b = got["uncached"], got["cached"]
        n = len(args.strategies.split(","))
        if any(len(r) != n for r in got.values()):
            print(f"expected {n} finished jobs in each sweep, got", {k: len(r) for k, r in got.items()})
            return 1
        stages = sorted({k for m in a.values() for k in m if k.startswith("time_")})
        print(f"\n| {n} jobs | wall s | CPU s | wall speed-up vs uncached | CPU speed-up vs uncached |"
              + (" wall vs baseline | CPU vs baseline |" if "baseline" in wall else "")
              + "\n|---|---|---|---|---|" + ("---|---|" if "baseline" in wall else ""))
        for name in wall:
            row = (f"| {name} | {wall[name]:.1f} | {cpu[name]:.1f} | {wall['uncached'] / wall[name]:.2f}x "
                   f"| {cpu['uncached'] / cpu[name]:.2f}x |")
            if "baseline" in wall:
                row += f" {wall['baseline'] / wall[name]:.2f}x | {cpu['baseline'] / cpu[name]:.2f}x |"
            print(row)
        print("\n| stage (sum over jobs, s) | " + " | ".join(got) + " |\n" + "|---" * (len(got) + 1) + "|")
        for s in stages:
            print(f"| {s[5:]} | " + " | ".join(f"{sum(m.get(s, 0) for m in r.values()):.1f}" for r in got.values())
                  + " |")
        keys = RESULT_KEYS + tuple(f"val_{k}" for k in RESULT_KEYS)
        diff = [(name, s, k, a[s].get(k), r[s].get(k)) for name, r in got.items() for s in a for k in keys
                if a[s].get(k) != r[s].get(k)]
        checked = [row for row in diff if row[0] != "baseline"]
        print("\nper-job metrics identical in", ", ".join(x for x in got if x != "baseline"),
              "(test and validation, to the last digit):", not checked)
        for row in diff:
            print("  differs:" if row[0] != "baseline" else "  baseline differs (not checked):", *row)
        diff = checked
        shown = ["uncached"] + (["baseline"] if "baseline" in got else [])
        print("\n| strategy | sweep | micro-F1 | macro-F1 | tail macro-F1 | validation macro-F1 |\n"
              "|---|---|---|---|---|---|")
        for s in args.strategies.split(","):
            for name in shown:
                m = got[name][s]
                print(f"| {s} | {name} | {100 * m['micro_f1']:.2f} | {100 * m['macro_f1']:.2f} "
                      f"| {100 * m['tail_macro_f1']:.2f} | {100 * m['val_macro_f1']:.2f} |")
        return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
