"""`mltc run` against a real `mlflow server` (SQL backend) on 127.0.0.1, as a team would share one."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

SMALL = ["dataset.n_docs=400", "dataset.n_labels=6"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
           "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    log = open(tmp_path / "server.log", "w")
    # its own process group, so stopping it also stops the web workers it forks
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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
