"""``mltc ui``: MLflow's UI on mltc's store, as light as the runs table needs.

``mlflow ui`` starts four uvicorn workers and a job runner for GenAI features (trace rollups, scorers): a minute
and gigabytes before the first page on a laptop. mltc's store holds training runs, so one worker serves it and the
job runner stays off; Ctrl-C stops the whole process group at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

__all__ = ["serve", "ui_command", "ui_env"]

# Starlette's deprecation warnings that MLflow's server triggers; they say nothing to an mltc user. The
# environment variable cannot name their category (it is read before site-packages can be imported) and
# matches a message by its start, literally: so each is named by how it begins (starlette 0.4x/1.x).
_QUIET = ("ignore::DeprecationWarning", "ignore:starlette.middleware.wsgi is deprecated",
          "ignore:`FormMessage` is deprecated", "ignore:async generator function lifespans are deprecated",
          "ignore:generator function lifespans are deprecated", "ignore:run_until_first_complete is deprecated",
          "ignore:'HTTP_", "ignore:The `name` is not the first parameter anymore")


def ui_env(environ=None) -> dict:
    """The server's environment: no job runner, no periodic jobs, no deprecation noise, no telemetry."""
    env = dict(os.environ if environ is None else environ)
    env.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), *_QUIET]))
    return env


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000) -> list:
    """``mlflow server`` with one worker on ``uri``."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port", str(port),
            "--workers", "1"]


def serve(uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the UI until Ctrl-C (or SIGTERM); returns the server's exit status (0 when stopped by the user)."""
    proc = subprocess.Popen(ui_command(uri, host, port), env=ui_env(), start_new_session=True)

    def stop(signum=None, frame=None):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(proc, grace: float = 2.0) -> None:
    """SIGTERM the server's process group (uvicorn and its worker), SIGKILL what is left after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
