"""TrackerProcess: MLflow calls forwarded to a child process give the same store as the tracker itself."""
from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mltc.report import PerLabelPlot
from mltc.tracker_process import TrackerProcess
from mltc.tracking import MlflowTracker


def _log(tracker, uri):
    tracker.start(experiment="e", run_name="r", tags={"mltc.model": "logreg"}, params={"model": {"C": 4.0}})
    tracker.log_metrics({"macro_f1": 0.5, "loss": [3.0, 2.0, 1.0]})
    per_label = pd.DataFrame({"label": ["a", "b"], "train_count": [10, 2], "f1": [0.9, 0.1],
                              "group": ["head", "tail"]})
    tracker.log_artifacts({"notes.txt": lambda p: p.write_text("hello"), "per_label_f1.png": PerLabelPlot(per_label)})
    tracker.end("FINISHED")
    client = MlflowClient(uri)
    run = client.get_run(tracker.run_id)
    history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)]
    arts = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id)}
    return run, history, arts


def test_process_tracker_writes_what_the_tracker_writes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    direct, h1, a1 = _log(MlflowTracker(uri=uri, subprocess=False), uri)
    proc = TrackerProcess(MlflowTracker(uri=uri))
    remote, h2, a2 = _log(proc, uri)
    assert remote.info.run_id != direct.info.run_id and remote.info.status == "FINISHED"
    assert remote.data.params == direct.data.params and remote.data.tags["mltc.model"] == "logreg"
    assert remote.data.metrics == direct.data.metrics and h1 == h2 == [3.0, 2.0, 1.0]
    assert a1.keys() == a2.keys() == {"notes.txt", "per_label_f1.png"}
    assert a2["per_label_f1.png"] > 1000  # drawn by the child
    assert proc._proc.wait(timeout=30) == 0  # the child exits once the run has ended


def test_process_tracker_reports_the_child_s_errors(tmp_path):
    proc = TrackerProcess(MlflowTracker(uri=f"sqlite:///{tmp_path / 'store.db'}"))
    with pytest.raises(RuntimeError, match="TypeError"):
        proc.log_metrics({"x": 1.0})  # no run started: the child's error, raised here
    proc.start(experiment="e")
    assert proc.run_id is not None and proc.resume is True  # configuration attributes come from the tracker
    proc.end("FAILED", error="boom")
    run = MlflowClient(f"sqlite:///{tmp_path / 'store.db'}").get_run(proc.run_id)
    assert run.info.status == "FAILED" and run.data.tags["error"] == "boom"


def test_reused_tracking_process_serves_the_next_run_and_its_store(tmp_path):
    # a sweep's jobs in one process share the child: same pid, each run complete, each store its own
    uri1, uri2 = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
    first = TrackerProcess(MlflowTracker(uri=uri1), reuse=True)
    run1, h1, a1 = _log(first, uri1)
    second = TrackerProcess(MlflowTracker(uri=uri2), reuse=True)
    assert second._proc is first._proc and second._proc.poll() is None
    assert second.run_id is None  # nothing of the first run leaks into the second
    run2, h2, a2 = _log(second, uri2)
    assert run1.info.status == run2.info.status == "FINISHED" and run1.info.run_id != run2.info.run_id
    assert run1.data.metrics == run2.data.metrics and h1 == h2 and a1.keys() == a2.keys()
    client2 = MlflowClient(uri2)
    runs2 = client2.search_runs([e.experiment_id for e in client2.search_experiments()])
    assert [r.info.run_id for r in runs2] == [run2.info.run_id]
    # a child that died while idle is replaced, not handed out
    idle = second._proc
    idle.kill()
    idle.wait(timeout=30)
    third = TrackerProcess(MlflowTracker(uri=uri1), reuse=True)
    assert third._proc is not idle and third._proc.poll() is None
    third.start(experiment="e")
    third.end("FINISHED")
    from mltc.tracker_process import _stop_idle

    _stop_idle()
    assert third._proc.wait(timeout=30) == 0

