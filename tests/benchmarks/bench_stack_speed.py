"""Reuters (Huang protocol): fit time and scores of ``experiment=reuters_huang_stacked`` under variants, in one run.

Each variant is one whole ``mltc run experiment=reuters_huang_stacked <overrides>`` process, one after another
on the same machine, with the same feature cache (the MiniLM windows and the TF-IDF are read, not refitted: the
issue's goal is the fit) and without the out-of-fold score cache (``cache.oof=false``: every variant fits all of
its members). Printed per variant: the fit stage (``time_fit``), the whole process, the validation micro-F1
(thresholds are tuned on validation, so it is optimistic) and test micro / macro-F1, read from the MLflow run.
Test scores are printed, never used to choose.

Run (idle 2-core machine; the first variant also fills the feature cache if it is empty)::

    MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_stack_speed.py \\
        --variant "refit:model.refit=true,model.cv=5" --variant "cv5-norefit:model.refit=false,model.cv=5"
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_variant(name: str, overrides: list[str], workdir: Path, store: str) -> dict:
    cmd = [sys.executable, "-m", "mltc.cli", "run", "experiment=reuters_huang_stacked", "cache.oof=false",
           f"tracking.uri={store}", f"tracking.experiment=bench_stack_speed", f"run_name={name}",
           f"hydra.run.dir={workdir}/hydra/{name}", *overrides]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t
    (workdir / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"variant {name} failed:\n{proc.stderr[-3000:]}")
    import mlflow

    mlflow.set_tracking_uri(store)
    run = mlflow.search_runs(experiment_names=["bench_stack_speed"], filter_string=f"tags.mlflow.runName = '{name}'",
                             order_by=["attributes.start_time DESC"], max_results=1, output_format="list")[0]
    m = run.data.metrics
    return {"name": name, "overrides": " ".join(overrides), "fit_s": m.get("time_fit", float("nan")), "wall_s": wall,
            "val_micro": 100 * m.get("val_micro_f1", float("nan")), "test_micro": 100 * m.get("micro_f1", float("nan")),
            "test_macro": 100 * m.get("macro_f1", float("nan")), "model_mb": m.get("model_size_mb", float("nan"))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", required=True,
                   help="NAME:override,override (e.g. cv3:model.cv=3,model.refit=false)")
    p.add_argument("--workdir", default=None, help="where runs/ (feature cache) and the store live; reuse it to "
                                                   "keep the MiniLM embeddings between invocations")
    a = p.parse_args(argv)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="mltc-stack-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{workdir}/mlflow.db"
    rows = []
    for spec in a.variant:
        name, _, rest = spec.partition(":")
        rows.append(run_variant(name, [o for o in rest.split(",") if o], workdir, store))
        r = rows[-1]
        print(f"{r['name']:<14} fit {r['fit_s']:7.1f} s  process {r['wall_s']:7.1f} s  val micro {r['val_micro']:.2f}  "
              f"test micro / macro {r['test_micro']:.2f} / {r['test_macro']:.2f}  model {r['model_mb']:.0f} MB  "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| variant | overrides | fit (s) | process (s) | val micro-F1 | test micro-F1 | test macro-F1 | model (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | `{r['overrides']}` | {r['fit_s']:.1f} | {r['wall_s']:.1f} | {r['val_micro']:.2f} | "
              f"{r['test_micro']:.2f} | {r['test_macro']:.2f} | {r['model_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
