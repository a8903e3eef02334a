"""Faults a real user meets: processes killed mid-run, several first writers of one store, a broken store.

Everything runs for real: `mltc run` in subprocesses, signals sent by the test, a fresh SQLite store
per test. The config bypasses are in tests/test_security.py. Heavier cases are marked slow.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from mltc.tracking import StoreError, mark_orphans, open_client, process_tags

SMALL = ["dataset.n_docs=300", "dataset.n_labels=5"]


def start(tmp_path, *args, multirun=False, db="x.db"):
    cmd = [sys.executable, "-m", "mltc.cli", "run", *(["-m"] if multirun else []),
           *([f"tracking.uri=sqlite:///{tmp_path / db}"] if db else []), *args]
    env = dict(os.environ, MLTC_RUNS_DIR=str(tmp_path / "runs"))
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def all_runs(client):
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, max_results=1000) if exps else []


def wait_for_running_child(client, proc, timeout=240):
    """The first job run of a sweep (or a single run) seen RUNNING in the store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            found = [r for r in all_runs(client) if r.info.status == "RUNNING"
                     and r.data.tags.get("mltc.role") != "sweep"]
        except Exception:  # noqa: BLE001 -- the store is still being created
            found = []
        if found:
            return found[0]
        time.sleep(0.3)
    out = proc.communicate()[0] if proc.poll() is not None else ""
    raise AssertionError(f"no run showed up as RUNNING\n{out[-3000:]}")


# ---------------------------------------------------------------- concurrent first use of a new store
OPEN_AND_WRITE = """
import sys
from mltc.tracking import open_client
client = open_client(sys.argv[1])
run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
client.set_terminated(run.info.run_id, "FINISHED")
"""


@pytest.mark.slow  # the same class runs in the default suite through two real `mltc run`s (below)
def test_concurrent_first_open_of_a_new_store(tmp_path):
    # without the lock, two processes creating the tables at once broke the store for good
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_WRITE, uri], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 3, "\n".join(o[-2000:] for o in outs)
    runs = all_runs(MlflowClient(uri))
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}


def _concurrent_writers(tmp_path, n):
    procs = [start(tmp_path, *SMALL, f"seed={i}", db="new.db") for i in range(n)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, "\n".join(o[-2000:] for o in outs)
    runs = all_runs(MlflowClient(f"sqlite:///{tmp_path / 'new.db'}"))
    assert sorted(r.data.tags["mltc.seed"] for r in runs) == sorted(str(i) for i in range(n))
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_two_runs_start_together_on_a_new_store(tmp_path):
    _concurrent_writers(tmp_path, 2)


@pytest.mark.slow
def test_eight_runs_start_together_on_a_new_store(tmp_path):
    _concurrent_writers(tmp_path, 8)


def _half_migrate(path):
    open_client(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:  # what a migration stopped midway leaves: an older schema version
        db.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")


def test_half_migrated_store_gets_a_clear_message(tmp_path):
    path = tmp_path / "half.db"
    _half_migrate(path)
    with pytest.raises(StoreError, match="half-created or half-migrated") as err:
        open_client(f"sqlite:///{path}")
    assert f"delete {path}" in str(err.value) and "mlflow db upgrade" in str(err.value)


def test_a_run_on_a_broken_store_says_no_run_was_recorded(tmp_path):
    _half_migrate(tmp_path / "x.db")
    proc = start(tmp_path, *SMALL)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out[-3000:]
    assert "half-created or half-migrated" in out and "no run was recorded" in out, out[-3000:]
    assert "marked FAILED" not in out


# ---------------------------------------------------------------- processes that die
def test_runs_of_dead_processes_are_marked_killed(tmp_path):
    client = open_client(f"sqlite:///{tmp_path / 'x.db'}")
    exp = client.get_experiment_by_name("Default").experiment_id

    def run_of(pid, start_time):
        tags = {**{k: str(v) for k, v in process_tags().items()}, "mltc.pid": str(pid),
                "mltc.pid_start": start_time}
        return client.create_run(exp, tags=tags).info.run_id

    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    from mltc.tracking import _start_time

    dead_start = _start_time(dead.pid)
    killed = run_of(dead.pid, dead_start)
    dead.kill()  # kill -9: nothing in it can close its run
    dead.wait()
    alive = run_of(os.getpid(), _start_time(os.getpid()))
    reused = run_of(os.getpid(), "1")  # this pid, but not the process that started the run
    untagged = client.create_run(exp).info.run_id  # not started by mltc: left alone
    other_host = client.create_run(exp, tags={"mltc.host": "elsewhere", "mltc.pid": str(dead.pid)}).info.run_id

    assert sorted(mark_orphans(client, [exp])) == sorted([killed, reused])
    status = {r: client.get_run(r).info.status for r in (killed, alive, reused, untagged, other_host)}
    assert status == {killed: "KILLED", alive: "RUNNING", reused: "KILLED", untagged: "RUNNING",
                      other_host: "RUNNING"}
    assert "pid" in client.get_run(killed).data.tags["error"]


def test_compare_marks_runs_of_dead_processes_killed(tmp_path):
    from mltc.compare import load_runs
    from mltc.tracking import _start_time

    client = open_client(f"sqlite:///{tmp_path / 'x.db'}")
    exp = client.create_experiment("e")
    done = client.create_run(exp, tags={k: str(v) for k, v in process_tags().items()}).info.run_id
    client.set_terminated(done, "FINISHED")
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    tags = {**{k: str(v) for k, v in process_tags().items()}, "mltc.pid": str(dead.pid),
            "mltc.pid_start": _start_time(dead.pid)}
    orphan = client.create_run(exp, tags=tags).info.run_id
    dead.kill()
    dead.wait()
    runs, _ = load_runs(client, experiments=["e"])
    assert [r.info.run_id for r in runs] == [done]
    assert client.get_run(orphan).info.status == "KILLED"


def test_a_failure_without_tracking_does_not_claim_a_failed_run(tmp_path):
    proc = start(tmp_path, *SMALL, "tracking=none", "metrics.objective=nope", db=None)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out[-3000:]
    assert "metrics.objective='nope'" in out and "no run was recorded" in out, out[-3000:]
    assert "marked FAILED" not in out


def test_sigterm_to_a_sweep_closes_its_parent(tmp_path):
    proc = start(tmp_path, "dataset.n_docs=8000", "seed=1,2,3", multirun=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'x.db'}")
    child = wait_for_running_child(client, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 143, out[-3000:]
    assert "Traceback" not in out and "stopped by SIGTERM" in out, out[-3000:]
    runs = all_runs(client)
    assert "RUNNING" not in {r.info.status for r in runs}, [(r.info.run_id, r.info.status) for r in runs]
    assert client.get_run(child.info.run_id).info.status == "KILLED"
    (parent,) = [r for r in runs if r.data.tags.get("mltc.role") == "sweep"]
    assert parent.info.status == "KILLED" and child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    summary = parent.data.tags["mltc.summary"]
    assert "stopped early (stopped by SIGTERM)" in summary and "1 killed" in summary, summary
    assert "resume" in summary


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path):
    args = ["dataset.n_docs=20000", "dataset.n_labels=5", "seed=1,2,3"]
    proc = start(tmp_path, *args, multirun=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'x.db'}")
    victim = wait_for_running_child(client, proc)
    proc.kill()  # kill -9 of the sweep: nothing gets to close its runs
    proc.wait()
    assert client.get_run(victim.info.run_id).info.status == "RUNNING"  # what the store said before the fix

    again = start(tmp_path, *args, multirun=True)
    out = again.communicate(timeout=900)[0]
    assert again.returncode == 0, out[-3000:]
    runs = all_runs(client)
    assert not [r for r in runs if r.info.status == "RUNNING"], out[-3000:]
    assert client.get_run(victim.info.run_id).info.status == "KILLED"
    jobs = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    finished = [r for r in jobs if r.info.status == "FINISHED"]
    # every configuration finished exactly once: nothing lost, nothing run twice
    assert sorted(r.data.tags["mltc.seed"] for r in finished) == ["1", "2", "3"], out[-3000:]
    assert len({r.data.tags["mltc.config_hash"] for r in finished}) == 3
    (parent,) = [r for r in runs if r.data.tags.get("mltc.role") == "sweep"]
    assert parent.info.status == "FINISHED"
