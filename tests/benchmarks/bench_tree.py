"""One-vs-rest against the label tree on many labels (a script, not a test).

    nice -n 10 python tests/benchmarks/bench_tree.py [--docs 15000] [--labels 4000] [--models logreg,tree]
        [--workdir DIR] [-- extra overrides for both runs]

Each model is one whole ``mltc run dataset=synthetic dataset.n_docs=N dataset.n_labels=L thresholds=per_label
cache.features=false model=M`` process, one after another, logging to a temporary SQLite MLflow store without
the model artifact (``tracking.log_model=false``: the same for both, and not what is compared). Printed per
model: the process's wall time, the fit stage (the run's ``time_fit``), the peak resident memory of the largest
process (``wait4``'s ``ru_maxrss``: the run itself, not its tracking child added to it), test micro / macro-F1,
and for the tree its depth, nodes and binary training rows against one-vs-rest's documents x labels (read
from the run's ``model.*`` metrics). Thresholds are tuned per label on validation; test scores are printed,
never used to choose.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_model(model: str, a, workdir: Path, store: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "mltc.cli", "run", "dataset=synthetic", f"dataset.n_docs={a.docs}",
           f"dataset.n_labels={a.labels}", "thresholds=per_label", "cache.features=false", f"model={model}",
           f"tracking.uri={store}", "tracking.experiment=bench_tree", "tracking.log_model=false", f"run_name={model}",
           f"hydra.run.dir={workdir}/hydra/{model}", *extra]
    env = dict(os.environ, MLTC_RUNS_DIR=str(workdir / "runs"))
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(workdir / f"{model}.log", "w")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if proc.returncode != 0:
        raise SystemExit(f"model={model} failed (exit {proc.returncode}); see {workdir / f'{model}.log'}:\n"
                         + (workdir / f"{model}.log").read_text()[-3000:])
    import mlflow

    mlflow.set_tracking_uri(store)
    run = mlflow.search_runs(experiment_names=["bench_tree"], filter_string=f"tags.mlflow.runName = '{model}'",
                             order_by=["attributes.start_time DESC"], max_results=1, output_format="list")[0]
    m = run.data.metrics
    nan = float("nan")
    return {"model": model, "wall_s": wall, "fit_s": m.get("time_fit", nan), "peak_gb": usage.ru_maxrss / 2 ** 20,
            "micro": 100 * m.get("micro_f1", nan), "macro": 100 * m.get("macro_f1", nan),
            "val_micro": 100 * m.get("val_micro_f1", nan), "val_macro": 100 * m.get("val_macro_f1", nan),
            "tree": {k[len("model."):]: v for k, v in m.items() if k.startswith("model.")}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=15000)
    p.add_argument("--labels", type=int, default=4000)
    p.add_argument("--models", default="logreg,tree")
    p.add_argument("--workdir", default=None, help="logs, Hydra outputs and the MLflow store (default: a new "
                                                   "temporary directory)")
    p.add_argument("extra", nargs="*", help="overrides for every run, after --")
    a = p.parse_args(argv)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="mltc-bench-tree-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{workdir}/mlflow.db"
    print(f"{a.docs} documents, {a.labels} labels; logs in {workdir}", flush=True)
    rows = []
    for model in a.models.split(","):
        r = run_model(model, a, workdir, store, a.extra)
        rows.append(r)
        print(f"{model:<8} process {r['wall_s']:7.1f} s  fit {r['fit_s']:7.1f} s  peak {r['peak_gb']:.2f} GB  "
              f"validation micro / macro-F1 {r['val_micro']:.2f} / {r['val_macro']:.2f}  test {r['micro']:.2f} / "
              f"{r['macro']:.2f}  load {os.getloadavg()[0]:.1f}", flush=True)
        if r["tree"]:
            t = r["tree"]
            print(f"         depth {t.get('depth', 0):.0f}, {t.get('n_nodes', 0):.0f} nodes, binary training rows "
                  f"{t.get('binary_rows', 0):.0f} = {t.get('binary_rows', 0) / max(t.get('ovr_rows', 1), 1):.1%} of "
                  f"one-vs-rest's {t.get('ovr_rows', 0):.0f}", flush=True)
    print("\n| model | process (s) | fit (s) | peak memory (GB) | validation micro / macro-F1 | test micro / macro-F1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['wall_s']:.1f} | {r['fit_s']:.1f} | {r['peak_gb']:.2f} | "
              f"{r['val_micro']:.2f} / {r['val_macro']:.2f} | {r['micro']:.2f} / {r['macro']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
