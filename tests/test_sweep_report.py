"""A sweep's report covers every configuration of the sweep, runs found by resume included (issue 19)."""
import os
import subprocess
import sys

import pandas as pd
from mlflow.tracking import MlflowClient

from mltc.compare import compare

SMALL = ["dataset.n_docs=300", "dataset.n_labels=5"]


def mltc(*args, cwd):
    env = {**os.environ, "MLTC_RUNS_DIR": str(cwd / "runs")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_sweep_report_includes_runs_reused_by_resume(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    one = mltc("run", *SMALL, f"tracking.uri={uri}", cwd=tmp_path)  # strategy=none, the default
    assert one.returncode == 0, (one.stdout + one.stderr)[-3000:]
    client = MlflowClient(uri)
    (single,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    # the end-of-run summary says where the run is, how to see it, and what "validation" means
    assert f"run {single.info.run_id} in {uri}" in one.stdout and f"mltc ui --uri {uri}" in one.stdout
    assert "the one the thresholds were tuned on" in " ".join(one.stdout.split())
    # the run's name says what was chosen, and its seed; the experiment opens on the training runs table
    assert single.info.run_name == "strategy=none model=logreg thresholds=per_label_global n_docs=300 n_labels=5 seed=42"
    assert client.get_experiment_by_name("synthetic").tags["mlflow.experimentKind"] == "custom_model_development"
    sweep = mltc("run", "-m", *SMALL, f"tracking.uri={uri}", "strategy=none,ml_ros", cwd=tmp_path)
    out = sweep.stdout + sweep.stderr
    assert sweep.returncode == 0, out[-3000:]
    assert "1 skipped" in out  # strategy=none already had a FINISHED run
    exp = client.get_experiment_by_name("synthetic").experiment_id
    (parent,) = client.search_runs([exp], filter_string="tags.`mltc.role` = 'sweep'")
    sid = parent.data.tags["mltc.sweep_id"]
    # the reused run is linked by tag, not moved: it keeps having no parent
    reused = client.get_run(single.info.run_id)
    assert reused.data.tags[f"mltc.sweep.{sid}"] == "reused"
    assert "mlflow.parentRunId" not in reused.data.tags
    # the report stored on the parent run has both configurations
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "compare/leaderboard.csv", str(tmp_path)))
    assert sorted(board["strategy"]) == ["ml_ros", "none"]
    assert set(board["n_seeds"]) == {1}
    # so does an ad-hoc comparison of the sweep, and the parent run counts and names them
    report, _, _ = compare(uri=uri, sweep="latest", bootstrap=0, out=str(tmp_path / "cmp"))
    assert sorted(report.board["strategy"]) == ["ml_ros", "none"]
    assert "1 of them found by resume" in report.markdown()
    parent = client.get_run(parent.info.run_id)
    assert parent.data.metrics["sweep_n_configs"] == 2
    assert parent.data.tags["mltc.reused_runs"] == single.info.run_id
    best = client.get_run(parent.data.tags["mltc.best_run_id"])
    assert parent.data.metrics["best_val_macro_f1"] == max(
        client.get_run(r).data.metrics["val_macro_f1"] for r in (single.info.run_id, best.info.run_id))


def test_run_names_say_what_differs():
    from mltc.sweep_report import make_run_name

    choices = {"dataset": "goemotions", "strategy": "mlsmote", "model": "logreg", "thresholds": "fixed",
               "features": "tfidf_minilm"}
    name = make_run_name(choices, ["dataset=goemotions", "features=tfidf_minilm", "strategy=mlsmote",
                                   "model.estimator.C=10", "tracking.uri=sqlite:///x.db", "seed=3"], seed=3)
    assert name == "strategy=mlsmote model=logreg thresholds=fixed dataset=goemotions features=tfidf_minilm C=10 seed=3"
    overlay = make_run_name({"experiment": "reuters_huang_svm", "strategy": "none", "model": "linear_svc"},
                            ["experiment=reuters_huang_svm"], seed=42)
    assert overlay == "reuters_huang_svm strategy=none model=linear_svc seed=42"
    assert len(make_run_name(choices, [f"k{i}=v" for i in range(200)], seed=1)) == 250
