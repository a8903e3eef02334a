"""Sweeps: one parent run per sweep, nested children, parallel jobs on SQLite, resume by config hash."""
import os
import subprocess
import sys

import joblib
from pathlib import Path
import pytest
from hydra import initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mltc.app import CONF_DIR
from mltc.callbacks import count_jobs, sweep_experiment, sweep_id
from mltc.tracking import config_hash

SMALL = ["dataset.n_docs=400", "dataset.n_labels=6"]


def mltc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)


def runs_by_role(uri, experiment="synthetic"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("mltc.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    return parents, children


@pytest.mark.slow  # three sweeps in subprocesses: about a minute on 2 idle cores
def test_parallel_sweep_nests_children_loses_no_run_and_resumes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    sweep = ["run", "-m", *SMALL, f"tracking.uri={uri}", "strategy=none,ml_ros", "model.estimator.C=-1,1"]
    # 4 jobs, 2 at a time, all writing to one SQLite store; C=-1 makes two of them fail
    proc = mltc(*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "4 jobs, 2 finished, 2 failed" in out
    parents, children = runs_by_role(uri)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep_n_jobs"] == 4 and parent.data.metrics["sweep_n_failed"] == 2
    # the sweep-end callback logs mltc compare's leaderboard to the parent run
    report = {Path(a.path).name for a in MlflowClient(uri).list_artifacts(parent.info.run_id, "compare")}
    assert {"leaderboard.md", "leaderboard.csv", "report.html"} <= report, report
    for r in children:
        t = r.data.tags
        assert t["mlflow.parentRunId"] == parent.info.run_id
        assert t["mltc.sweep_id"] == parent.data.tags["mltc.sweep_id"]
        assert {"mltc.strategy", "mltc.model", "mltc.seed", "mltc.config_hash"} <= set(t)
        # loky gives each of the 2 workers its share of the cores for BLAS / OpenMP
        assert t["mltc.blas_threads"] == str(max(joblib.cpu_count() // 2, 1))
        assert (r.info.status == "FAILED") == (float(r.data.params["model.estimator.C"]) < 0)
    assert len({r.data.tags["mltc.config_hash"] for r in children}) == 4
    assert sorted(r.data.tags["mltc.strategy"] for r in children) == ["ml_ros", "ml_ros", "none", "none"]
    assert all("C" in r.data.tags["error"] for r in children if r.info.status == "FAILED")
    first = {r.data.tags["mltc.config_hash"]: r for r in children if r.info.status == "FINISHED"}

    # the same command again: the same parent, FINISHED jobs skipped, FAILED jobs run again
    proc = mltc(*sweep, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "4 jobs, 0 finished, 2 failed, 2 skipped" in out
    parents, children = runs_by_role(uri)
    assert [p.info.run_id for p in parents] == [parent.info.run_id]
    assert sum(r.info.status == "FINISHED" for r in children) == 2
    assert sum(r.info.status == "FAILED" for r in children) == 4

    # resume off: a new parent, every job runs, and the basic launcher reproduces the parallel results
    proc = mltc("run", "-m", *SMALL, f"tracking.uri={uri}", "strategy=none,ml_ros", "model.estimator.C=1",
                "tracking.resume=false", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    parents, children = runs_by_role(uri)
    assert len(parents) == 2
    new = [r for r in children if r.data.tags["mlflow.parentRunId"] != parent.info.run_id]
    assert len(new) == 2 and all(r.info.status == "FINISHED" for r in new)
    for r in new:
        old = first[r.data.tags["mltc.config_hash"]]
        assert r.data.metrics["macro_f1"] == old.data.metrics["macro_f1"]
        assert r.data.metrics["micro_f1"] == old.data.metrics["micro_f1"]


def compose_multirun(overrides):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        # composed as `mltc run -m` composes it: sweep lists stay in hydra.overrides.task
        return GlobalHydra.instance().hydra.compose_config("config", list(overrides), run_mode=RunMode.MULTIRUN)


def test_sweep_identity_and_size():
    a = compose_multirun(["strategy=none,ml_ros", "seed=1,2,3", "model=logreg"])
    b = compose_multirun(["seed=1,2,3", "model=logreg", "strategy=none,ml_ros"])
    c = compose_multirun(["strategy=none,ml_ros", "seed=1,2"])
    assert count_jobs(a) == 6 and count_jobs(c) == 4
    assert sweep_experiment(a) == "synthetic"
    # the order of the overrides does not matter; a different grid is a different sweep
    assert sweep_id(a, "synthetic") == sweep_id(b, "synthetic") != sweep_id(c, "synthetic")
    assert sweep_experiment(compose_multirun(["dataset=synthetic,files"])) == "mltc"


def test_config_hash_ignores_tracking_only():
    base = {"seed": 1, "model": {"C": 1.0}, "tracking": {"uri": "a"}, "run_name": None}
    assert config_hash(base) == config_hash({**base, "tracking": {"uri": "b"}, "run_name": "x"})
    assert config_hash(base) != config_hash({**base, "seed": 2})
    assert config_hash(base) != config_hash({**base, "model": {"C": 2.0}})


HPARAMS = sorted(p.stem for p in (Path(CONF_DIR) / "hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("name", HPARAMS)
def test_hparams_search_overlays_name_real_keys_and_options(name):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_multirun([f"hparams_search={name}"])
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower() and sweeper.direction == "maximize"
    for key, spec in sweeper.params.items():
        override = OverridesParser.create().parse_override(f"{key}={spec}")
        if key in cfg.hydra.runtime.choices:  # a config group: every option must exist and compose
            for option in override.sweep_string_iterator():
                compose_multirun([f"hparams_search={name}", f"{key}={option}"])
        else:
            assert OmegaConf.select(cfg, key) is not None, f"{name}: {key} is not a key of the composed config"


@pytest.mark.slow  # a two-trial study in a subprocess: ~20 s idle, more on a shared machine
def test_optuna_trials_are_child_runs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = mltc("run", "-m", *SMALL, f"tracking.uri={uri}", "hparams_search=logreg_mlsmote",
                "hydra.sweeper.n_trials=2", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Best value" in out and "job 2/2" in out
    parents, children = runs_by_role(uri)
    assert len(parents) == 1 and parents[0].data.tags["mltc.sweeper"] == "mltc_optuna"
    assert len(children) == 2 and all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all(r.data.tags["mltc.strategy"] == "mlsmote" for r in children)
    # each trial ran the parameters Optuna proposed
    assert len({r.data.params["model.estimator.C"] for r in children}) == 2


@pytest.mark.slow  # starts a local Ray instance (a 2-node cluster: tests/test_distributed.py)
def test_ray_launcher_matches_basic_launcher(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="pip install 'mltc[ray]' for the Ray launcher")
    # a local instance's own token, not one written to ~/.ray
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    grid = [*SMALL, f"tracking.uri={uri}", "strategy=none,ml_ros", "tracking.resume=false"]
    # a local Ray instance with two worker CPUs, then the basic launcher on the same grid
    ray = mltc("run", "-m", *grid, "hydra/launcher=mltc_ray", "+hydra.launcher.init.num_cpus=2", cwd=tmp_path)
    assert ray.returncode == 0, (ray.stdout + ray.stderr)[-3000:]
    basic = mltc("run", "-m", *grid, cwd=tmp_path)
    assert basic.returncode == 0, (basic.stdout + basic.stderr)[-3000:]
    parents, children = runs_by_role(uri)
    assert len(parents) == 2 and len(children) == 4
    by_launcher = {p.data.tags["mltc.launcher"]: p.info.run_id for p in parents}
    assert set(by_launcher) == {"mltc_ray", "basic"}
    results = {}
    for r in children:
        launcher = next(k for k, v in by_launcher.items() if v == r.data.tags["mlflow.parentRunId"])
        results.setdefault(r.data.tags["mltc.config_hash"], {})[launcher] = r.data.metrics
    assert len(results) == 2
    for pair in results.values():
        for m in ("macro_f1", "micro_f1", "hamming_loss"):
            assert pair["mltc_ray"][m] == pair["basic"][m]


def test_config_hash_ignores_unlabeled_options_at_their_defaults():
    # options added later must not make older FINISHED runs look different to resume
    base = {"seed": 1, "dataset": {"_target_": "x", "n_docs": 10}}
    with_defaults = {"seed": 1, "dataset": {"_target_": "x", "n_docs": 10, "unlabeled_path": None,
                                            "unlabeled_text_column": "text", "unlabeled_format": None}}
    assert config_hash(base) == config_hash(with_defaults)
    used = {"seed": 1, "dataset": {**with_defaults["dataset"], "unlabeled_path": "u.csv"}}
    assert config_hash(used) != config_hash(base)
    split = {"seed": 1, "split": {"val_size": 0.1}}
    assert config_hash(split) == config_hash({"seed": 1, "split": {"val_size": 0.1, "train_size": None,
                                                                   "train_method": "iterative"}})
    assert config_hash(split) != config_hash({"seed": 1, "split": {"val_size": 0.1, "train_size": 6000,
                                                                   "train_method": "random"}})


def test_progress_counts_ended_and_skipped_jobs_without_mlflow(tmp_path, monkeypatch):
    # a parallel job's worker must not import MLflow just to print its progress line
    import sys
    import time as _time

    from mltc.callbacks import progress, record_end, record_skip

    monkeypatch.setenv("MLTC_RUNS_DIR", str(tmp_path))
    info = {"sweep_id": "s1", "started": _time.time() - 60, "n_jobs": 6}
    assert progress(info, 0) == "job 1/6, 60s elapsed"
    record_end(info, 0)
    record_end(info, 1)
    record_end(info, 1)  # the same job twice (a retry) counts once
    record_skip(info, "abc123")
    line = progress(info, 3)
    assert line.startswith("job 4/6, 3 done, 60s elapsed, about ")
    left = line.split("about ")[1].removesuffix(" left")
    assert left in ("1m00s", "59s", "1m01s")  # 3 of 6 done in 60 s: about as long again
    other = {**info, "sweep_id": "s2"}
    assert progress(other, 0) == "job 1/6, 60s elapsed"  # another sweep's markers are its own
    code = ("import sys; from mltc.callbacks import progress; "
            f"progress({{'sweep_id': 's1', 'started': {info['started']}, 'n_jobs': 6}}, 3); "
            "print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, MLTC_RUNS_DIR=str(tmp_path)),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
