"""Hydra callbacks: one MLflow parent run per sweep, created once before any job starts.

Parallel jobs that each created the experiment (and their own idea of a parent) would race;
the callback runs in the launching process, so the experiment and the parent exist before
the first job, and every job finds them through ``MLTC_SWEEP`` (an environment variable that
joblib's workers inherit) or the ``mltc_sweep.json`` file in the sweep directory.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mltc.studies import SharedStudy

log = logging.getLogger("mltc")

__all__ = ["SweepCallback", "SweepSummary", "abort_sweep", "current_sweep", "last_summary", "SWEEP_ENV",
           "SWEEP_FILE"]

SWEEP_ENV = "MLTC_SWEEP"
SWEEP_FILE = "mltc_sweep.json"
_LAST: list = []  # the summary of the last sweep of this process (read by the CLI for its exit status)


@dataclass
class SweepSummary:
    """What a sweep did; ``n_failed > 0`` makes ``mltc run -m`` exit with status 1."""

    sweep_id: str
    run_id: str | None
    n_jobs: int
    n_finished: int
    n_failed: int
    n_skipped: int
    stopped: str = ""  # why the sweep stopped early (SIGTERM, Ctrl-C), and what became of its jobs

    def line(self) -> str:
        s = (f"mltc sweep {self.sweep_id}: {self.n_jobs} jobs, {self.n_finished} finished, "
             f"{self.n_failed} failed, {self.n_skipped} skipped (already finished)")
        if self.stopped:
            return f"{s}; {self.stopped}"
        if self.n_failed:
            s += " -- failed runs are marked FAILED with their error tag; fix them and rerun the same command"
        return s


def last_summary() -> SweepSummary | None:
    """The summary of the last sweep run in this process, if any."""
    return _LAST[-1] if _LAST else None


def current_sweep() -> dict | None:
    """The sweep this job belongs to (parent run id, experiment, ...), or None outside a sweep."""
    raw = os.environ.get(SWEEP_ENV)
    if raw:
        return json.loads(raw)
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None
        path = Path(hc.sweep.dir) / SWEEP_FILE
    except (ValueError, ImportError):
        return None
    return json.loads(path.read_text()) if path.is_file() else None


def _overrides(config: DictConfig) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    return OverridesParser.create().parse_overrides(task)


def count_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will launch (the grid's size, or Optuna's ``n_trials``)."""
    sweeper = config.hydra.get("sweeper") or {}
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    n = 1
    given = _overrides(config)
    for o in given:
        if o.is_sweep_override():
            n *= len(list(o.sweep_string_iterator()))
    # a config's `hydra.sweeper.params` (e.g. +portfolio=imbalance) sweeps too, unless the command line sets the key
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {o.get_key_element() for o in given}
    params = sweeper.get("params") or {}
    for o in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]):
        if o.is_sweep_override() and o.get_key_element() not in keys:
            n *= len(list(o.sweep_string_iterator()))
    return n


def sweep_experiment(config: DictConfig) -> str:
    """One experiment per sweep: the data set's name, or ``mltc`` for a sweep over data sets."""
    if config.tracking.get("experiment"):
        return str(config.tracking.experiment)
    if any(o.is_sweep_override() and o.key_or_group in ("dataset", "experiment") for o in _overrides(config)):
        return "mltc"
    from mltc.config_checks import dataset_name

    return str(dataset_name(config.dataset, config.hydra.runtime.choices.get("dataset")) or "mltc")


def sweep_id(config: DictConfig, experiment: str) -> str:
    """A stable id for a sweep: the same command gives the same id, so a rerun resumes it."""
    task = sorted(str(x) for x in OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    body = json.dumps({"experiment": experiment, "overrides": task,
                       "sweeper": str(config.hydra.get("sweeper", {}).get("_target_", ""))}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


class SweepCallback(Callback):
    """Create the experiment and the sweep's parent run at multirun start; close it with a summary at the end.

    Rerunning the same command (same overrides) with ``tracking.resume=true`` reopens the same
    parent, and jobs whose configuration already has a FINISHED run are skipped.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        os.environ.pop(SWEEP_ENV, None)
        if config.get("tracking") is None or "MlflowTracker" not in str(config.tracking.get("_target_", "")):
            return
        from hydra.utils import instantiate

        from mltc.config_guard import check_config
        from mltc.tracking import mark_orphans, process_tags

        check_config(config)  # before anything in it is built (also where the loader check is not installed)
        tracker = instantiate(config.tracking)
        experiment = sweep_experiment(config)
        sid = sweep_id(config, experiment)
        shared = SharedStudy.from_config(config)  # Optuna workers sharing a study: one sweep, one parent run
        if shared is not None:
            sid = shared.sweep_id
        elif not tracker.resume:  # a forced rerun is a new sweep
            sid = f"{sid}-{int(time.time())}"
        exp_id = tracker._experiment_id(experiment)
        client = tracker.client
        task = [str(x) for x in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
        n_jobs = count_jobs(config)
        # the study's lock: the first worker creates the parent run, the others find it
        with shared.lock() if shared is not None else contextlib.nullcontext():
            found = client.search_runs([exp_id], max_results=1, order_by=["attributes.start_time DESC"],
                                       filter_string=f"tags.`mltc.sweep_id` = '{sid}' and tags.`mltc.role` = 'sweep'")
            # runs left RUNNING by a killed process (kill -9, a crash) are marked KILLED, so resuming reruns them
            mark_orphans(client, [exp_id], keep={r.info.run_id for r in found})
            if found:
                run_id = found[0].info.run_id
                client.update_run(run_id, status="RUNNING")
                for k, v in process_tags().items():
                    client.set_tag(run_id, k, str(v))
                log.info("resuming sweep %s (parent run %s): finished jobs are skipped", sid, run_id)
            else:
                name = "sweep " + " ".join(t for t in task if not t.startswith("hydra"))
                tags = {"mltc.role": "sweep", "mltc.sweep_id": sid, "mltc.sweep_overrides": " ".join(task),
                        "mltc.launcher": str(config.hydra.runtime.choices.get("hydra/launcher", "basic")),
                        "mltc.sweeper": str(config.hydra.runtime.choices.get("hydra/sweeper", "basic")),
                        **process_tags()}
                run_id = tracker.start(experiment=experiment, run_name=name[:250], tags=tags).run_id
        info = {"run_id": run_id, "experiment": experiment, "experiment_id": exp_id, "sweep_id": sid,
                "uri": tracker.uri, "n_jobs": n_jobs, "started": time.time()}
        os.environ[SWEEP_ENV] = json.dumps(info)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(info, indent=2))
        log.info("sweep %s: %s jobs, parent run %s in experiment %r", sid, n_jobs if n_jobs else "?", run_id,
                 experiment)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        raw = os.environ.pop(SWEEP_ENV, None)
        if not raw:
            return
        info = json.loads(raw)
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(info["uri"])
        children = child_runs(client, info["experiment_id"], info["run_id"])
        started_ms = info["started"] * 1000
        now = [r for r in children if (r.info.start_time or 0) >= started_ms - 1000]
        # the latest run of each configuration decides whether it finished
        latest = {}
        for r in sorted(children, key=lambda r: r.info.start_time or 0):
            latest[r.data.tags.get("mltc.config_hash", r.info.run_id)] = r
        n_failed = sum(r.info.status == "FAILED" for r in now)
        summary = SweepSummary(sweep_id=info["sweep_id"], run_id=info["run_id"], n_jobs=info["n_jobs"] or len(now),
                               n_finished=sum(r.info.status == "FINISHED" for r in now), n_failed=n_failed,
                               n_skipped=_count_skips(info))
        ts = int(time.time() * 1000)
        client.log_batch(info["run_id"], metrics=[
            Metric("sweep_n_jobs", summary.n_jobs, ts, 0), Metric("sweep_n_finished", summary.n_finished, ts, 0),
            Metric("sweep_n_failed", summary.n_failed, ts, 0), Metric("sweep_n_skipped", summary.n_skipped, ts, 0),
            Metric("sweep_n_configs_finished", sum(r.info.status == "FINISHED" for r in latest.values()), ts, 0),
            Metric("sweep_wall_time", time.time() - info["started"], ts, 0)])
        client.set_tag(info["run_id"], "mltc.summary", summary.line())
        from mltc.sweep_report import summarize_parent

        summarize_parent(client, info, str(config.get("metrics", {}).get("objective", "macro_f1")))
        if summary.n_finished or summary.n_skipped:
            from mltc.compare import report_sweep

            # the leaderboard (md/csv/html) becomes an artifact of the parent run; never fails the sweep
            report_sweep(info["run_id"], uri=info["uri"], out=Path(str(config.hydra.sweep.dir)) / "compare")
        shared = SharedStudy.from_config(config)
        if shared is None or shared.all_done(summary.n_jobs):  # else other workers of the study still run
            client.set_terminated(info["run_id"], status="FAILED" if n_failed else "FINISHED")
        _LAST.append(summary)
        (log.warning if n_failed else log.info)("%s", summary.line())


def abort_sweep(status: str = "KILLED", reason: str = "") -> SweepSummary | None:
    """Close the parent run of a sweep this process started, when the sweep stops early (SIGTERM, Ctrl-C).

    Its children still RUNNING are marked KILLED (a parallel launcher's workers die with the sweep);
    the parent gets the summary tag and metrics and ends with ``status``.

    Returns
    -------
    SweepSummary or None
        None when no sweep was in progress in this process.
    """
    raw = os.environ.pop(SWEEP_ENV, None)
    if not raw:
        return None
    info = json.loads(raw)
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(info["uri"])
        children = child_runs(client, info["experiment_id"], info["run_id"])
        for r in children:
            if r.info.status == "RUNNING":
                client.set_tag(r.info.run_id, "error", f"the sweep was stopped ({reason})")
                client.set_terminated(r.info.run_id, status="KILLED")
        children = child_runs(client, info["experiment_id"], info["run_id"])
        now = [r for r in children if (r.info.start_time or 0) >= info["started"] * 1000 - 1000]
        summary = SweepSummary(sweep_id=info["sweep_id"], run_id=info["run_id"], n_jobs=info["n_jobs"] or len(now),
                               n_finished=sum(r.info.status == "FINISHED" for r in now),
                               n_failed=sum(r.info.status == "FAILED" for r in now), n_skipped=_count_skips(info))
        n_killed = sum(r.info.status == "KILLED" for r in now)
        ts = int(time.time() * 1000)
        client.log_batch(info["run_id"], metrics=[
            Metric("sweep_n_jobs", summary.n_jobs, ts, 0), Metric("sweep_n_finished", summary.n_finished, ts, 0),
            Metric("sweep_n_failed", summary.n_failed, ts, 0), Metric("sweep_n_skipped", summary.n_skipped, ts, 0),
            Metric("sweep_n_killed", n_killed, ts, 0), Metric("sweep_wall_time", time.time() - info["started"], ts, 0)])
        summary.stopped = (f"stopped early ({reason}): {n_killed} killed, "
                           f"{max(summary.n_jobs - len(now) - summary.n_skipped, 0)} without a run -- rerun the "
                           f"same command to resume (finished jobs are skipped)")
        client.set_tag(info["run_id"], "mltc.summary", summary.line())
        client.set_tag(info["run_id"], "error", f"the sweep was stopped ({reason})")
        client.set_terminated(info["run_id"], status=status)
    except Exception as err:  # noqa: BLE001 -- closing the sweep is best effort: the process is stopping
        log.warning("could not close the sweep's parent run %s: %s", info.get("run_id"), err)
        return None
    _LAST.append(summary)
    return summary


def child_runs(client, experiment_id: str, parent_run_id: str) -> list:
    """All runs nested under ``parent_run_id``."""
    return client.search_runs([experiment_id], max_results=50000,
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


# Skipped jobs leave no run; each writes a marker next to the sweep so the summary can count them.
def _skip_dir(info: dict) -> Path:
    from mltc.paths import runs_dir

    return runs_dir() / "sweeps" / f"{info['sweep_id']}-{int(info['started'])}"


def record_skip(info: dict, config_hash: str) -> None:
    """Note that this sweep skipped the job with ``config_hash`` (it had a FINISHED run)."""
    d = _skip_dir(info)
    d.mkdir(parents=True, exist_ok=True)
    (d / config_hash).touch()


def record_end(info: dict, job_num: int) -> None:
    """Note that job ``job_num`` of this sweep has ended (finished or failed); :func:`progress` counts these."""
    d = _skip_dir(info) / "ended"
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / str(job_num)).touch()
    except OSError as err:  # progress is best effort, never a reason to fail a job
        log.debug("cannot record the end of job %s: %s", job_num, err)


def _count_files(d: Path) -> int:
    return sum(1 for f in d.iterdir() if f.is_file()) if d.is_dir() else 0


def _count_skips(info: dict) -> int:
    return _count_files(_skip_dir(info))


def progress(info: dict, job_num: int) -> str:
    """``job i/N`` with a rough time left, from the jobs of this sweep that have ended so far.

    Counted from marker files, not from MLflow: a parallel job's worker process would otherwise
    import MLflow and open the store (~4 s of CPU) before its first job could start.
    """
    n = info.get("n_jobs")
    head = f"job {job_num + 1}/{n}" if n else f"job {job_num + 1}"
    try:
        done = _count_files(_skip_dir(info) / "ended") + _count_skips(info)
    except OSError:  # progress is best effort, never a reason to fail a job
        return head
    elapsed = time.time() - info["started"]
    if not n or not done:
        return f"{head}, {elapsed:.0f}s elapsed"
    left = max(n - done, 0) * elapsed / done
    return f"{head}, {done} done, {elapsed:.0f}s elapsed, about {_fmt(left)} left"


def _fmt(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
