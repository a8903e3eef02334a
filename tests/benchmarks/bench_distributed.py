"""Distributed benchmarks (a script, not collected by pytest); numbers in docs/benchmarks-distributed.md.

    nice -n 10 python tests/benchmarks/bench_distributed.py writers [--n 16] [--sqlite-created-first]
    nice -n 10 python tests/benchmarks/bench_distributed.py ray [--jobs 12] [--ray-first]

``writers``: N concurrent ``mltc run`` processes (synthetic data, distinct seeds) logging to one
``mlflow server`` on PostgreSQL, then the same N writing straight to one SQLite file; counts the
runs that arrived FINISHED, the writers that failed, and the wall time of each batch.

``ray``: the same sweep of N synthetic jobs (3 strategies x N/3 seeds) with the joblib launcher
(2 workers) on this machine, and with mltc's Ray launcher on a local 2-node cluster (head and one
worker, ``--num-cpus 1`` each: resource-limited nodes on one 2-core machine), then on the head
alone (1 node); plus each node's start-up time and the cluster's resident memory.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_engines.py: the engines the tests start

from _engines import mlflow_server, postgres, ray_cluster  # noqa: E402

SMALL = ["dataset.n_docs=300", "dataset.n_labels=5"]


def _env(**extra):
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra)
    return env


def _mltc(*args):
    return [sys.executable, "-m", "mltc.cli", *args]


def _writers(uri, n, cwd, experiment):
    t0 = time.monotonic()
    procs = [subprocess.Popen(_mltc("run", *SMALL, f"seed={s}", f"tracking.uri={uri}",
                                    f"tracking.experiment={experiment}", "tracking.subprocess=false"),
                              cwd=cwd, env=_env(MLTC_RUNS_DIR=str(Path(cwd) / "runs")), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for s in range(n)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.monotonic() - t0
    failed = [o for p, o in zip(procs, outs) if p.returncode != 0]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    fin = sum(r.info.status == "FINISHED" for r in runs)
    errors = sorted({next((ln for ln in reversed(o.splitlines()) if "Error" in ln), o.splitlines()[-1])[:200]
                     for o in failed})
    return {"writers": n, "runs_finished": fin, "runs_lost": n - fin, "writers_failed": len(failed),
            "wall_s": round(wall, 1), "errors": errors}


def writers(args):
    if args.sqlite_created_first:  # the contrast without the migration race: the store exists before the writers
        with tempfile.TemporaryDirectory() as tmp:
            from mlflow.tracking import MlflowClient

            uri = f"sqlite:///{tmp}/one.db"
            MlflowClient(uri).create_experiment("writers")
            print("sqlite, created first:", _writers(uri, args.n, tmp, "writers"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        with postgres() as urls:
            t_pg = time.monotonic() - t0
            with mlflow_server(urls["mlflow"], tmp, workers=2) as url:
                t_srv = time.monotonic() - t0 - t_pg
                print(f"PostgreSQL up in {t_pg:.1f}s, mlflow server (PostgreSQL backend) up in {t_srv:.1f}s")
                print("server:", _writers(url, args.n, tmp, "writers"))
        print("sqlite, new store:", _writers(f"sqlite:///{tmp}/one.db", args.n, tmp, "writers"))


def _sweep(extra, cwd, env):
    n_seeds = max(1, _jobs // 3)
    cmd = _mltc("run", "-m", *SMALL, "strategy=none,ml_ros,ml_rus", "seed=" + ",".join(map(str, range(n_seeds))),
                f"tracking.uri=sqlite:///{cwd}/store.db", "tracking.resume=false", *extra)
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode:
        raise SystemExit((p.stdout + p.stderr)[-3000:])
    return round(wall, 1)


def _rss_mb(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024)


_jobs = 12


def ray(args):
    """joblib, then Ray on 2 nodes, then Ray on a fresh 1-node cluster (``--ray-first``: joblib last)."""
    global _jobs
    _jobs = args.jobs
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(MLTC_RUNS_DIR=str(Path(tmp) / "runs"))

        def joblib():
            wall = _sweep(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp, env)
            print(f"joblib launcher, 2 workers: {wall}s for {_jobs} jobs", flush=True)
            return wall

        t_joblib = None if args.ray_first else joblib()
        t0 = time.monotonic()
        with ray_cluster(head_cpus=1) as cluster:
            t_head = time.monotonic() - t0
            head_mb = _rss_mb(cluster.pids())
            t1 = time.monotonic()
            cluster.add_worker(num_cpus=1)
            t_worker = time.monotonic() - t1
            print(f"ray head up in {t_head:.1f}s ({head_mb} MB RSS), worker node in {t_worker:.1f}s "
                  f"(cluster {_rss_mb(cluster.pids())} MB RSS before any job)", flush=True)
            renv = {**env, **cluster.client_env}
            two = _sweep(["hydra/launcher=mltc_ray", f"hydra.launcher.address={cluster.address}"], tmp, renv)
            print(f"mltc_ray, 2 nodes x 1 CPU: {two}s for {_jobs} jobs (cluster {_rss_mb(cluster.pids())} MB RSS "
                  "after, idle workers not counted)", flush=True)
        with ray_cluster(head_cpus=1) as cluster:  # a fresh cluster: its workers import mltc anew, as above
            renv = {**env, **cluster.client_env}
            one = _sweep(["hydra/launcher=mltc_ray", f"hydra.launcher.address={cluster.address}"], tmp, renv)
            print(f"mltc_ray, 1 node x 1 CPU: {one}s for {_jobs} jobs; 2 nodes: {one / two:.2f}x the 1-node speed",
                  flush=True)
        if t_joblib is None:
            t_joblib = joblib()
        print(f"ratio mltc_ray (2 nodes) / joblib (2 workers): {two / t_joblib:.2f}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("writers")
    w.add_argument("--n", type=int, default=16)
    w.add_argument("--sqlite-created-first", action="store_true",
                   help="only the SQLite contrast, on a store created (migrated) before the writers start")
    r = sub.add_parser("ray")
    r.add_argument("--jobs", type=int, default=12)
    r.add_argument("--ray-first", action="store_true", help="run the joblib sweep last instead of first")
    a = p.parse_args()
    {"writers": writers, "ray": ray}[a.cmd](a)


if __name__ == "__main__":
    main()
