"""Sweep benchmarks (run as a script; not collected by pytest).

    python tests/benchmarks/bench_sweeps.py overhead --data /work/shared/data/goemotions
    python tests/benchmarks/bench_sweeps.py sweep [--n-jobs 2] [--n-docs 3000]

``overhead``: wall time of one ``mltc run`` on GoEmotions (TF-IDF, binary-relevance logistic
regression, fixed 0.5 cut, MLflow logging to SQLite) against a bare scikit-learn script doing the
same work; both are whole processes, imports included. Target: mltc at most 10% slower.

``sweep``: the same 12-job sweep (3 strategies x 4 seeds) with Hydra's basic launcher and with the
joblib launcher. Target: joblib at least 1.6x faster on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BARE = textwrap.dedent('''
    import csv, sys, time
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    d = sys.argv[1]
    L = len(open(f"{d}/labels.txt").read().split())
    def read(name):
        texts, Y = [], []
        with open(f"{d}/{name}.tsv", newline="", encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\\t", quoting=csv.QUOTE_NONE):
                y = np.zeros(L, dtype=np.int8)
                y[[int(i) for i in row[1].split(",")]] = 1
                texts.append(row[0]); Y.append(y)
        return texts, np.array(Y)
    tr, Ytr = read("train"); te, Yte = read("test")
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200000,
                          lowercase=True, strip_accents="unicode")
    Xtr = vec.fit_transform(tr); Xte = vec.transform(te)
    P = np.column_stack([LogisticRegression(C=4.0, solver="liblinear", max_iter=1000, random_state=42)
                         .fit(Xtr, Ytr[:, j]).predict_proba(Xte)[:, 1] >= 0.5 for j in range(L)])
    print("macro_f1", f1_score(Yte, P, average="macro", zero_division=0),
          "micro_f1", f1_score(Yte, P, average="micro", zero_division=0))
''')


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, cwd, env=None, pin=None) -> tuple[float, str, float]:
    """Wall time, stdout and CPU time (user + system, all threads) of one whole process."""
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    c, t = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, _child_cpu() - c
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout, cpu


def overhead(a) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mltc-bench-"))
    env = dict(os.environ, MLTC_RUNS_DIR=str(tmp / "runs"))
    env.pop("MLFLOW_TRACKING_URI", None)
    (tmp / "bare.py").write_text(BARE)
    mltc_cmd = [sys.executable, "-m", "mltc.cli", "run", "dataset=goemotions", f"dataset.data_dir={a.data}",
                "dataset.download=false", "thresholds=fixed", "model=logreg"]
    # the first run creates the SQLite store (schema migrations, seconds); a user pays that once, not per run
    timed(mltc_cmd + ["tracking.experiment=warm_up", "model.estimator.max_iter=1"],
          tmp, env, a.pin)
    rows = []
    for rep in range(a.repeat):
        w_bare, out_bare, c_bare = timed([sys.executable, str(tmp / "bare.py"), a.data], tmp, env, a.pin)
        w_mltc, out_mltc, c_mltc = timed(mltc_cmd, tmp, env, a.pin)
        rows.append((w_bare, w_mltc, c_bare, c_mltc))
        print(f"repeat {rep + 1}: bare scikit-learn {w_bare:.1f}s (cpu {c_bare:.1f}s), mltc run {w_mltc:.1f}s "
              f"(cpu {c_mltc:.1f}s): {100 * (w_mltc / w_bare - 1):+.1f}% wall, {100 * (c_mltc / c_bare - 1):+.1f}% cpu; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("bare:", out_bare.strip())
    best = [min(r[i] for r in rows) for i in range(4)]
    print(f"best of {a.repeat}{f' (pinned to CPUs {a.pin})' if a.pin else ''}: bare {best[0]:.1f}s, mltc "
          f"{best[1]:.1f}s, overhead {100 * (best[1] / best[0] - 1):+.1f}% wall (target <= +10%); cpu time bare "
          f"{best[2]:.1f}s, mltc {best[3]:.1f}s ({100 * (best[3] / best[2] - 1):+.1f}%)")


def sweep(a) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mltc-bench-"))
    grid = [f"dataset.n_docs={a.n_docs}", "dataset.n_labels=10", "strategy=none,ml_ros,ml_rus", "seed=1,2,3,4",
            "tracking.resume=false"]
    walls = {}
    for name, extra in (("basic", []), ("joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={a.n_jobs}"])):
        env = dict(os.environ, MLTC_RUNS_DIR=str(tmp / name))
        env.pop("MLFLOW_TRACKING_URI", None)
        walls[name], _ = timed([sys.executable, "-m", "mltc.cli", "run", "-m", *grid, *extra], tmp, env)
        print(f"{name}: 12 jobs in {walls[name]:.1f}s", flush=True)
    print(f"joblib (n_jobs={a.n_jobs}) speed-up over basic: {walls['basic'] / walls['joblib']:.2f}x "
          f"(target >= 1.6x on 2 cores); cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--data", default="/work/shared/data/goemotions")
    o.add_argument("--repeat", type=int, default=1)
    o.add_argument("--pin", default=None, help="run both processes on these CPUs only (taskset -c), e.g. 0")
    s = sub.add_parser("sweep")
    s.add_argument("--n-jobs", type=int, default=2)
    s.add_argument("--n-docs", type=int, default=3000)
    a = p.parse_args(argv)
    {"overhead": overhead, "sweep": sweep}[a.cmd](a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
