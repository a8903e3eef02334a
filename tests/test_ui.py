"""`mltc ui`: one light server on 127.0.0.1, no deprecation noise, and Ctrl-C stops all of it (issue 19)."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from mltc.ui import ui_command, ui_env


def test_server_command_and_environment():
    cmd = ui_command("sqlite:///x.db", "127.0.0.1", 5001)
    assert cmd[cmd.index("--workers") + 1] == "1" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    env = ui_env({"PYTHONWARNINGS": "error::ResourceWarning"})
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no GenAI job runner
    assert env["PYTHONWARNINGS"].startswith("error::ResourceWarning,")  # the user's own filters kept first
    # Python accepts every filter (an invalid one prints "Invalid -W option ignored")
    proc = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, text=True)
    assert proc.stderr == ""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # starts MLflow's server: 5-30 s on a busy machine
def test_ui_serves_quietly_and_ctrl_c_stops_every_process(tmp_path):
    from mltc.tracking import MlflowTracker

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    MlflowTracker(uri=uri).start(experiment="e").end()
    port = _free_port()
    log = open(tmp_path / "ui.log", "w")
    ui = subprocess.Popen([sys.executable, "-m", "mltc.cli", "ui", "--port", str(port), "--uri", uri],
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                          env={**os.environ, "MLTC_RUNS_DIR": str(tmp_path / "runs")})
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert b"<html" in page.read().lower()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.log").read_text()
                time.sleep(0.3)
        procs = [psutil.Process(ui.pid), *psutil.Process(ui.pid).children(recursive=True)]
        assert len(procs) <= 3  # mltc ui, mlflow server, one uvicorn worker
        os.killpg(ui.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert ui.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(procs, timeout=30)
        assert not alive
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
        log.close()
    text = (tmp_path / "ui.log").read_text()
    assert "DeprecationWarning" not in text and "Traceback" not in text
