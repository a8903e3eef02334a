"""`mltc run` against a real `mlflow server` (SQL backend) on 127.0.0.1, as a team would share one."""
import os
import subprocess
import sys

import pytest
from _engines import EngineUnavailable
from _engines import mlflow_server as engine_server
from mlflow.tracking import MlflowClient

SMALL = ["dataset.n_docs=400", "dataset.n_labels=6"]


@pytest.fixture
def mlflow_server(tmp_path):
    try:
        with engine_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1) as url:
            yield url
    except EngineUnavailable as err:  # the SQLite-backed server needs nothing outside the venv: a failure is real
        pytest.fail(str(err))


@pytest.mark.slow  # starting mlflow server and one run in a subprocess: ~30 s
def test_run_and_sweep_against_mlflow_server(mlflow_server, tmp_path):
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the URI comes from the config, as a user would set it
    proc = subprocess.run([sys.executable, "-m", "mltc.cli", "run", "-m", *SMALL, f"tracking.uri={mlflow_server}",
                           "strategy=none,ml_ros"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("synthetic")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("mltc.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    for r in children:
        assert r.info.status == "FINISHED" and 0 < r.data.metrics["macro_f1"] <= 1
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        # artifacts went through the server into its artifact store
        assert "per_label.csv" in {a.path for a in client.list_artifacts(r.info.run_id)}
    assert any((tmp_path / "server-artifacts").rglob("per_label.csv"))
    # nothing was written to a local store
    assert not (tmp_path / "runs" / "mlflow.db").exists()
