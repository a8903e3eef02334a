"""The `mltc` command: tab completion and `--cfg job` behave as Hydra users expect."""
import os
import subprocess
import sys


def mltc(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_tab_completion_lists_group_options(tmp_path):
    proc = mltc("-sc", "query=bash", env_extra={"COMP_LINE": "mltc run strategy=ml"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert "strategy=mlsmote" in words and "strategy=ml_ros" in words
    assert all(w.startswith("strategy=ml") for w in words)
    install = mltc("run", "-sc", "install=bash", cwd=tmp_path)
    assert "hydra_bash_completion mltc" in install.stdout


def test_cfg_job_prints_composed_config(tmp_path):
    proc = mltc("run", "--cfg", "job", "--resolve", "model=linear_svc", "seed=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sklearn.svm.LinearSVC" in proc.stdout and "random_state: 3" in proc.stdout


def test_hydra_mode_named_on_the_command_line_is_still_honoured(tmp_path):
    # mltc skips Hydra's mode probe unless hydra.mode is named: named, a sweep without -m still sweeps
    proc = mltc("run", "hydra.mode=MULTIRUN", "seed=1,2", "tracking=none", "dataset.n_docs=300", "dataset.n_labels=5",
                env_extra={"MLTC_RUNS_DIR": str(tmp_path / "runs")}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "#0 : " in out and "#1 : " in out  # Hydra's multirun job listing
    plain = mltc("run", "seed=1", "tracking=none", "dataset.n_docs=300", "dataset.n_labels=5",
                 env_extra={"MLTC_RUNS_DIR": str(tmp_path / "runs")}, cwd=tmp_path)
    assert plain.returncode == 0 and "#0 : " not in plain.stdout + plain.stderr


def test_a_run_ends_without_teardown_and_loses_nothing(tmp_path):
    # `mltc run` leaves through os._exit (skipping the interpreter's teardown): the printed table,
    # Hydra's log file and the finished MLflow run must all be complete when the process is gone
    from mlflow.tracking import MlflowClient

    runs = tmp_path / "runs"
    proc = mltc("run", "seed=1", "dataset.n_docs=300", "dataset.n_labels=5", "model=logreg",
                env_extra={"MLTC_RUNS_DIR": str(runs)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mltc results" in proc.stdout and "macro_f1" in proc.stdout
    (log,) = runs.glob("hydra/*/*/*.log")
    assert "evaluate ..." in log.read_text()
    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name != "Default"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and "macro_f1" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"per_label_f1.png", "predictions.npz"}


def test_sigterm_marks_the_run_killed(tmp_path):
    # a scheduler's time limit sends SIGTERM: the run must not stay RUNNING in the store
    import signal
    import time

    from mlflow.tracking import MlflowClient

    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "mltc.cli", "run", "dataset.n_docs=100000", "model=logreg"],
                            env=dict(os.environ, MLTC_RUNS_DIR=str(runs)), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    deadline, running = time.monotonic() + 120, None
    while running is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            exps = [e.experiment_id for e in client.search_experiments() if e.name != "Default"]
            found = client.search_runs(exps) if exps else []
        except Exception:  # noqa: BLE001 -- the store is still being created
            found = []
        running = next((r for r in found if r.info.status == "RUNNING"), None)
    assert running is not None, "the run never showed up as RUNNING"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    run = client.get_run(running.info.run_id)
    assert run.info.status == "KILLED", out[-2000:]
    # one line says what happened, not a traceback
    assert "Traceback" not in out and "mltc: stopped by SIGTERM; the run is marked KILLED" in out, out[-2000:]
