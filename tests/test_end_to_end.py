"""`mltc run` end to end on the synthetic set, checked through MlflowClient."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from sklearn import metrics as skm

from mltc.app import CONF_DIR, RunFailed, run_from_config

SMALL = ["dataset.n_docs=600", "dataset.n_labels=8"]


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def mltc(*args, cwd, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def only_run(uri, experiment="synthetic", status=None):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    if status:
        runs = [r for r in runs if r.info.status == status]
    return client, runs


def test_cli_run_logs_metrics_and_artifacts(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = mltc("run", *SMALL, f"tracking.uri={uri}", "thresholds=global", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "macro_f1" in proc.stdout and "SYNTHETIC" in proc.stdout
    client, runs = only_run(uri)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    for key in ("micro_f1", "macro_f1", "micro_pr_auc", "hamming_loss", "subset_accuracy", "tail_macro_f1",
                "val_micro_f1", "train_mean_ir", "train_scumble", "test_mean_ir", "time_fit", "threshold_threshold"):
        assert key in m, key
    assert 0 < m["micro_f1"] <= 1
    assert run.data.tags["mltc.model"] == "logreg" and run.data.tags["mltc.thresholds"] == "global"
    assert run.data.params["model.estimator.C"] == "4.0"
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "per_label.csv", "imbalance_profile.json", "per_label_f1.png", "thresholds.json"} <= arts
    # the per-label artifact agrees with the logged macro-F1
    local = client.download_artifacts(run.info.run_id, "per_label.csv", str(tmp_path))
    per_label = pd.read_csv(local)
    assert per_label["f1"].mean() == pytest.approx(m["macro_f1"], abs=1e-9)
    assert len(per_label) == 8
    # outputs go under runs/ (MLTC_RUNS_DIR in tests), not the working directory
    assert not (tmp_path / "outputs").exists()


def test_metrics_agree_with_sklearn_and_seed_reproduces(tmp_path):
    cfg = compose_cfg([*SMALL, "tracking=none", "thresholds=fixed"])
    a = run_from_config(cfg, choices={})
    b = run_from_config(cfg, choices={})
    assert a == b
    c = run_from_config(compose_cfg([*SMALL, "tracking=none", "seed=5"]), choices={})
    assert c != a


def test_pipeline_is_leak_free_and_matches_sklearn():
    from hydra.utils import instantiate

    from mltc.data import make_synthetic
    from mltc.pipeline import run_pipeline
    from mltc.thresholds import FixedThreshold

    ds = make_synthetic(n_docs=600, n_labels=6, random_state=0)
    cfg = compose_cfg(["tracking=none"])
    splitter = instantiate(cfg.split)
    featurizer = instantiate(cfg.features, _convert_="all")
    res = run_pipeline(ds, splitter=splitter, featurizer=featurizer, model=instantiate(cfg.model),
                       thresholder=FixedThreshold())
    parts = splitter.split(ds)
    # the vectorizer's vocabulary comes from training texts only
    train_words = {w for i in parts["train"] for w in ds.texts[i].split()}
    assert set(t for t in featurizer.vocabulary_ if " " not in t) <= train_words
    # recompute test metrics independently from the same split
    from sklearn.linear_model import LogisticRegression
    X_tr = featurizer.transform([ds.texts[i] for i in parts["train"]])
    X_te = featurizer.transform([ds.texts[i] for i in parts["test"]])
    P = np.column_stack([LogisticRegression(C=4.0, solver="liblinear", max_iter=1000, random_state=42)
                         .fit(X_tr, ds.Y[parts["train"], j]).predict(X_te) for j in range(6)])
    assert res.metrics["macro_f1"] == pytest.approx(skm.f1_score(ds.Y[parts["test"]], P, average="macro",
                                                                 zero_division=0), abs=1e-9)


def test_invalid_value_names_key_and_run_is_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = compose_cfg([*SMALL, f"tracking.uri={uri}", "model.estimator.C=-1"])
    with pytest.raises(RunFailed, match=r"model\.estimator\.C.*range"):
        run_from_config(cfg, choices={"dataset": "synthetic"})
    _, runs = only_run(uri)
    assert runs[0].info.status == "FAILED"
    assert "C" in runs[0].data.tags["error"]


def test_cli_errors_are_clear(tmp_path):
    proc = mltc("run", "model=nope", "tracking=none", cwd=tmp_path)
    assert proc.returncode != 0
    assert "model/nope" in proc.stderr and "Available options" in proc.stderr
    proc = mltc("run", *SMALL, "tracking=none", "split.test_size=2.5", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "split.test_size" in out and "range" in out
    assert "Traceback" not in out


def test_sweep_goes_on_after_a_failed_job(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = mltc("run", "-m", *SMALL, f"tracking.uri={uri}", "model.estimator.C=-1,1", cwd=tmp_path)
    # the sweep finishes the other job, then says in its exit status and summary that one failed
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 jobs, 1 finished, 1 failed" in proc.stdout + proc.stderr
    _, runs = only_run(uri)
    runs = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]


def test_help_lists_subcommands(tmp_path):
    proc = mltc("--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert all(w in proc.stdout for w in ("run", "compare", "ui"))
    proc = mltc("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "dataset: " in proc.stdout and "strategy: " in proc.stdout
