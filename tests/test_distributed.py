"""The team set-ups of docs/team.md on real engines started here on 127.0.0.1 (`make test-distributed`).

- an MLflow server on PostgreSQL: 16 concurrent `mltc run` writers, a sweep's nesting, compare, resume;
- one Optuna study on PostgreSQL shared by 3 worker processes: exactly n_trials trials, one parent run;
- a 2-node Ray cluster: an 8-job sweep equal to the basic launcher's, and a rerun after a node was killed.

Each test skips, saying why, where its engine is not installed or cannot start here.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from _engines import EngineUnavailable, mlflow_server, postgres, ray_cluster

pytestmark = pytest.mark.distributed

SMALL = ["dataset.n_docs=300", "dataset.n_labels=5"]


def _env(**extra):
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the URI comes from the command line, as a user gives it
    env.update(extra)
    return env


def mltc_cmd(*args):
    return [sys.executable, "-m", "mltc.cli", *args]


def run_mltc(*args, cwd, timeout=600, **env):
    return subprocess.run(mltc_cmd(*args), cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def _skip_unavailable(err: EngineUnavailable):
    pytest.skip(f"engine unavailable here: {err}")


def _running(start, *args, **kwargs):
    """Start an engine (``start(...)`` gives its context manager), yield it, stop it; skip where it cannot start."""
    try:
        ctx = start(*args, **kwargs)
        value = ctx.__enter__()
    except EngineUnavailable as err:
        _skip_unavailable(err)
    try:
        yield value
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="module")
def pg():
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install -e '.[team]'")
    yield from _running(postgres)


@pytest.fixture(scope="module")
def server(pg, tmp_path_factory):
    work = tmp_path_factory.mktemp("mlflow-server")
    yield from _running(mlflow_server, pg["mlflow"], work, workers=2)


def _runs(url, experiment):
    client = MlflowClient(url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} on {url}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("mltc.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    return parents, children


def test_16_concurrent_writers_on_the_postgres_backed_server(server, tmp_path):
    procs = []
    for seed in range(16):
        cmd = mltc_cmd("run", *SMALL, f"seed={seed}", f"tracking.uri={server}", "tracking.experiment=writers",
                       "tracking.subprocess=false")
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    _, runs = _runs(server, "writers")
    # every writer's run arrived, finished, with its own seed and its metrics: no run lost
    assert len(runs) == 16
    assert sorted(int(r.data.tags["mltc.seed"]) for r in runs) == list(range(16))
    assert all(r.info.status == "FINISHED" and 0 < r.data.metrics["macro_f1"] <= 1 for r in runs)
    # `mltc compare` reads them from the server: one configuration over 16 seeds
    cmp = run_mltc("compare", "--uri", server, "--experiment", "writers", "--bootstrap", "0", "--no-log",
                   "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert cmp.returncode == 0, (cmp.stdout + cmp.stderr)[-3000:]
    import csv

    rows = list(csv.DictReader((tmp_path / "cmp" / "leaderboard.csv").open()))
    assert len(rows) == 1 and int(rows[0]["n_seeds"]) == 16, rows


def test_sweep_nesting_and_resume_against_the_server(server, tmp_path):
    sweep = ["run", "-m", *SMALL, f"tracking.uri={server}", "tracking.experiment=nesting", "strategy=none,ml_ros",
             "thresholds=fixed,global"]
    first = run_mltc(*sweep, cwd=tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    parents, children = _runs(server, "nesting")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(children) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in children)
    # the same command again: the same parent reopened, every job skipped, no new run
    again = run_mltc(*sweep, cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "4 jobs, 0 finished, 0 failed, 4 skipped" in again.stdout + again.stderr
    parents2, children2 = _runs(server, "nesting")
    assert [p.info.run_id for p in parents2] == [parents[0].info.run_id]
    assert {r.info.run_id for r in children2} == {r.info.run_id for r in children}


def test_three_optuna_workers_share_one_postgres_study(pg, server, tmp_path):
    import optuna

    from mltc.studies import open_storage

    n_trials = 6
    cmd = ["run", "-m", *SMALL, "hparams_search=logreg_mlsmote", f"hydra.sweeper.n_trials={n_trials}",
           f"hydra.sweeper.storage={pg['optuna']}", "hydra.sweeper.study_name=team-study",
           f"tracking.uri={server}", "tracking.experiment=study"]
    workers = [subprocess.Popen(mltc_cmd(*cmd), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [w.communicate(timeout=900)[0] for w in workers]
    for w, out in zip(workers, outs):
        assert w.returncode == 0, out[-3000:]
    study = optuna.load_study(study_name="team-study", storage=open_storage(pg["optuna"]))
    trials = study.get_trials()
    # exactly n_trials between the three workers, each number once, all complete
    assert sorted(t.number for t in trials) == list(range(n_trials))
    parents, children = _runs(server, "study")
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), \
        ([(t.number, t.state, t.values) for t in trials], [r.data.tags.get("error") for r in children],
         [o[-2000:] for o in outs])
    assert study.user_attrs["mltc.workers"] == 3
    # every trial is a child run of one parent; the children ran exactly the trials' parameters
    assert len(parents) == 1 and len(children) == n_trials
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert parents[0].info.status == "FINISHED"
    assert sorted(float(r.data.params["model.estimator.C"]) for r in children) == \
        sorted(t.params["model.estimator.C"] for t in trials)
    assert sorted(int(r.data.tags["mltc.job_num"]) for r in children) == list(range(n_trials))
    # the workers did not propose the same parameters (distinct sampler seeds)
    assert len({t.params["model.estimator.C"] for t in trials}) == n_trials
    # a fourth worker finds the study complete: it runs nothing and exits cleanly
    late = run_mltc(*cmd, cwd=tmp_path)
    assert late.returncode == 0, (late.stdout + late.stderr)[-3000:]
    assert len(study.get_trials()) == n_trials and len(_runs(server, "study")[1]) == n_trials


# -- Ray --------------------------------------------------------------------------------------------

GRID = [*SMALL, "strategy=none,ml_ros", "seed=0,1,2,3"]  # 8 jobs


@pytest.fixture
def ray2(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    try:
        ctx = ray_cluster(head_cpus=1)
        cluster = ctx.__enter__()
        worker = cluster.add_worker(num_cpus=1)
    except EngineUnavailable as err:
        _skip_unavailable(err)
    try:
        yield cluster, worker
    finally:
        ctx.__exit__(None, None, None)


def _by_config(children, parent_id):
    return {r.data.tags["mltc.config_hash"]: r for r in children if r.data.tags["mlflow.parentRunId"] == parent_id}


def test_ray_two_node_sweep_equals_the_basic_launcher(ray2, tmp_path):
    cluster, _ = ray2
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    common = ["run", "-m", *GRID, f"tracking.uri={uri}", "tracking.experiment=ray", "tracking.resume=false"]
    ray = run_mltc(*common, "hydra/launcher=mltc_ray", f"hydra.launcher.address={cluster.address}", cwd=tmp_path,
                   **cluster.client_env)
    out = ray.stdout + ray.stderr
    assert ray.returncode == 0, out[-3000:]
    basic = run_mltc(*common, cwd=tmp_path)
    assert basic.returncode == 0, (basic.stdout + basic.stderr)[-3000:]
    parents, children = _runs(uri, "ray")
    by_launcher = {p.data.tags["mltc.launcher"]: p.info.run_id for p in parents}
    assert set(by_launcher) == {"mltc_ray", "basic"}
    on_ray, on_basic = (_by_config(children, by_launcher[k]) for k in ("mltc_ray", "basic"))
    assert len(on_ray) == len(on_basic) == 8 and set(on_ray) == set(on_basic)
    for h, r in on_ray.items():
        assert r.info.status == "FINISHED"
        for m in ("macro_f1", "micro_f1", "hamming_loss", "tail_macro_f1"):
            assert r.data.metrics[m] == on_basic[h].data.metrics[m], (m, r.data.tags["mltc.seed"])
    # both nodes took jobs
    nodes = {line.rsplit("on node ", 1)[1].split()[0] for line in out.splitlines() if "on node " in line}
    assert len(nodes) == 2, nodes


def _busy_on(worker_pids) -> bool:
    """Whether a Ray worker process of this node is running a job now (Ray titles it ray::execute_job)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            busy = (d / "cmdline").read_bytes().startswith(b"ray::execute_job")
        except (OSError, ValueError, IndexError):
            continue
        if busy and ppid in worker_pids:
            return True
    return False


def test_ray_rerun_after_a_node_is_killed_completes_only_what_is_missing(ray2, tmp_path):
    cluster, worker = ray2
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    # larger jobs than GRID's: a wider window to kill the node in the middle of one
    grid = ["dataset.n_docs=1200" if a.startswith("dataset.n_docs=") else a for a in GRID]
    cmd = ["run", "-m", *grid, f"tracking.uri={uri}", "tracking.experiment=killed", "hydra/launcher=mltc_ray",
           f"hydra.launcher.address={cluster.address}"]
    sweep = subprocess.Popen(mltc_cmd(*cmd), cwd=tmp_path, env=_env(**cluster.client_env), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 300
    # kill the worker node while it runs a job, once some jobs have finished
    while sweep.poll() is None and time.monotonic() < deadline:
        exp = client.get_experiment_by_name("killed")
        done = exp and client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
        if done and _busy_on(worker):
            cluster.kill_worker(worker)
            break
        time.sleep(0.2)
    else:
        sweep.kill()
        pytest.fail("the sweep ended (or hung) before the worker node could be killed mid-job:\n"
                    + sweep.communicate()[0][-3000:])
    out = sweep.communicate(timeout=600)[0]
    assert sweep.returncode != 0, out[-3000:]  # a lost job fails the sweep, which says so
    assert "was lost" in out and "rerun the same command" in out
    finished = {r.data.tags["mltc.config_hash"] for r in _runs(uri, "killed")[1] if r.info.status == "FINISHED"}
    # usually fewer than 8; all 8 when the lost job had closed its run just before its node died
    assert len(finished) >= 1
    # the same command again, on the head alone: only the missing jobs run
    again = run_mltc(*cmd, cwd=tmp_path, **cluster.client_env)
    text = again.stdout + again.stderr
    assert again.returncode == 0, text[-3000:]
    assert f"8 jobs, {8 - len(finished)} finished, 0 failed, {len(finished)} skipped" in text, text[-3000:]
    parents, children = _runs(uri, "killed")
    assert len(parents) == 1
    final = {r.data.tags["mltc.config_hash"] for r in children if r.info.status == "FINISHED"}
    assert len(final) == 8 and finished <= final
    # no configuration finished twice
    assert sum(r.info.status == "FINISHED" for r in children) == 8
