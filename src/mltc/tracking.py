"""Experiment tracking: MLflow (default) or nothing. Only the CLI uses this module.

The one owner of MLflow writes: opening and locking the store, the config hash resume matches on,
process tags and orphan marking, and the tracker; :mod:`mltc.tracker_process` runs it in a child process.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mltc.keys import LATER_OPTIONS
from mltc.paths import tracking_uri

log = logging.getLogger(__name__)

__all__ = ["MlflowTracker", "NullTracker", "TrackerProcess", "flatten", "config_hash", "details_metrics",
           "open_client", "StoreError", "process_tags", "mark_orphans"]

_MAX_PARAM_LEN = 500  # MLflow's limit on a param value
_MAX_PARAMS = 100  # MLflow's limit on params in one log_batch
_MAX_ENTITIES = 1000  # MLflow's limit on metrics + params + tags in one log_batch


def flatten(d, prefix="") -> dict:
    """Flatten nested dicts / lists to ``a.b.c`` keys."""
    out = {}
    if isinstance(d, dict):
        items = d.items()
    elif isinstance(d, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(d))
    else:
        return {prefix: d}
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, (dict, list, tuple)) and len(v):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and bool(np.isfinite(v))


def _steps(v) -> list:
    """``(step, value)`` pairs: a scalar at step 0, a list of numbers at step = index; non-finite dropped."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return [(i, x) for i, x in enumerate(v) if _is_number(x)]
    return [(0, v)] if _is_number(v) else []


def details_metrics(details: dict) -> dict:
    """Metrics from component summaries (``RunResult.details``).

    ``{"strategy": {"rounds": [{"added": 120}, ...], "n_added": 300}}`` gives
    ``strategy.n_added`` (a scalar) and ``strategy.rounds.added`` (a list: one value per
    step). Nested dicts join their keys with ``"."``; a list of numbers is one metric
    over steps; a list of dicts gives one metric over steps per numeric field. Anything
    else (strings, ragged structures) stays in ``details.json`` only.
    """
    out: dict = {}

    def walk(node, key):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}")
        elif isinstance(node, (list, tuple)) and node and all(isinstance(x, dict) for x in node):
            fields = dict.fromkeys(f for x in node for f in x)  # first-seen order
            for f in fields:
                values = [x.get(f) for x in node]
                if any(_is_number(v) for v in values):
                    out[f"{key}.{f}"] = [v if _is_number(v) else float("nan") for v in values]
        elif isinstance(node, (list, tuple)) and node and all(_is_number(x) for x in node):
            out[key] = list(node)
        elif _is_number(node):
            out[key] = node

    for component, summary in (details or {}).items():
        walk(summary, str(component))
    return out


# options added after runs were logged: while at their default they hash as if absent (compare reads them so too)
_HASH_NEUTRAL = LATER_OPTIONS


# Where a component's ``_target_`` pointed when runs were first logged. A class that moves (or gains a second
# import path) hashes under that first path, so resume and compare still match the runs logged before the move.
# Moving a class: add its new path(s) here.
_LOGGED_TARGETS = {
    # src/mltc/{features,feature_union,encoders}.py -> the package src/mltc/features/
    "mltc.features.tfidf.make_tfidf": "mltc.features.make_tfidf",
    "mltc.features.union.TextUnion": "mltc.features.TextUnion",
    "mltc.feature_union.TextUnion": "mltc.features.TextUnion",
    "mltc.features.TitleOnly": "mltc.feature_union.TitleOnly",
    "mltc.features.union.TitleOnly": "mltc.feature_union.TitleOnly",
    "mltc.features.SentenceEncoder": "mltc.encoders.SentenceEncoder",
    "mltc.features.sentence.SentenceEncoder": "mltc.encoders.SentenceEncoder",
    "mltc.features.RawText": "mltc.encoders.RawText",
    "mltc.features.sentence.RawText": "mltc.encoders.RawText",
    "mltc.features.make_tfidf_minilm": "mltc.encoders.make_tfidf_minilm",
    "mltc.features.sentence.make_tfidf_minilm": "mltc.encoders.make_tfidf_minilm",
}


def _logged_targets(node):
    """``node`` with every ``_target_`` (at any depth) spelled as in :data:`_LOGGED_TARGETS`."""
    if isinstance(node, dict):
        return {k: (_LOGGED_TARGETS.get(v, v) if k == "_target_" and isinstance(v, str) else _logged_targets(v))
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_logged_targets(v) for v in node]
    return node


def config_hash(cfg: dict) -> str:
    """A short, stable hash of a resolved run configuration (what resume matches on).

    Tracking settings, the run name and the caches do not change what a run computes, so they are left out.
    A ``_target_`` counts by the class it names, not by the module path it is spelled with today
    (see ``_LOGGED_TARGETS``): moving a class does not orphan the runs logged before the move.
    """
    import hashlib

    body = {k: v for k, v in cfg.items() if k not in ("tracking", "run_name", "hydra", "cache")}
    body = _logged_targets(body)
    for group, neutral in _HASH_NEUTRAL.items():
        if isinstance(body.get(group), dict):
            # so that runs logged before an option existed still match on resume
            body[group] = {k: v for k, v in body[group].items() if neutral.get(k, object()) != v}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StoreError(RuntimeError):
    """The tracking store cannot be opened; the message says how to repair it."""


def open_client(uri: str):
    """An ``MlflowClient`` on ``uri`` whose store is created and migrated by one process at a time.

    MLflow creates the tables of a new SQLite store, then migrates them, when a client first opens
    it; two processes doing that at once (two terminals, a scheduler array) broke the store for
    good. An inter-process file lock (``<db>.lock``) makes the first one create it and the others
    wait, then open the finished store.

    Raises
    ------
    StoreError
        The store was left half-created or half-migrated (by an older mltc, or a process killed
        while creating it); the message says how to repair it.
    """
    from mlflow.tracking import MlflowClient

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    from filelock import FileLock, Timeout

    path = Path(uri[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(f"{path}.lock", timeout=600):
            try:
                client = MlflowClient(tracking_uri=uri)  # opening the store creates and migrates it
                _verify_schema(client)
            except Exception as err:  # noqa: BLE001 -- told apart below
                raise _store_error(path, uri, err) from err
    except Timeout:
        raise StoreError(f"the MLflow store {path} has been locked by another process for 10 minutes "
                         f"({path}.lock); if no mltc or MLflow process is using it, delete that file.") from None
    return client


def _verify_schema(client) -> None:
    store = client._tracking_client.store
    engine = getattr(store, "engine", None)
    try:
        from mlflow.store.db.utils import _verify_schema as verify
    except ImportError:  # an MLflow without this check: its own errors come later
        return
    if engine is not None:
        verify(engine)


def _store_error(path, uri, err) -> Exception:
    text = str(err)
    if not any(s in text.lower() for s in ("alembic", "duplicate column", "already exists", "no such table",
                                           "no such column", "schema", "migration")):
        return err
    return StoreError(
        f"the MLflow store {path} is half-created or half-migrated ({type(err).__name__}: {text.splitlines()[0]}). "
        f"If it holds no runs you need, delete {path} and run again (mltc recreates it). Otherwise back it up, "
        f"drop the leftover tables named _alembic_tmp_* (sqlite3 {path} .tables) and run "
        f"`mlflow db upgrade {uri}`.")


def process_tags() -> dict:
    """Who runs a run: host, pid and the process's start time, so a run left RUNNING by a dead process is found."""
    import socket

    pid = os.getpid()
    return {"mltc.host": socket.gethostname(), "mltc.pid": pid, "mltc.pid_start": _start_time(pid) or ""}


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot on Linux), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name (field 2) may hold spaces: count fields after its closing parenthesis
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        pass
    try:
        import psutil

        return str(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 -- no psutil, or no such process
        return None


def _alive(pid: int, start) -> bool:
    """Whether process ``pid`` still runs and is the same process (same start time) as when it was recorded."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    except OSError:
        return True
    if start:
        now = _start_time(pid)
        return now is None or now == start
    return True


def mark_orphans(client, experiment_ids, keep=()) -> list:
    """Mark KILLED the RUNNING runs of this host whose process is gone (``kill -9``, a crash, a power cut).

    Runs without mltc's process tags, started on another host, or listed in ``keep``, are left as they are.

    Returns
    -------
    list of str
        The run ids marked KILLED.
    """
    import socket

    host = socket.gethostname()
    runs = client.search_runs(list(experiment_ids), max_results=50000,
                              filter_string=f"attributes.status = 'RUNNING' and tags.`mltc.host` = '{host}'")
    marked = []
    for r in runs:
        if r.info.run_id in keep:
            continue
        try:
            pid = int(r.data.tags.get("mltc.pid", ""))
        except ValueError:
            continue
        if _alive(pid, r.data.tags.get("mltc.pid_start")):
            continue
        client.set_tag(r.info.run_id, "error", f"its process (pid {pid} on {host}) ended without closing the run "
                                               f"(killed, or crashed); marked KILLED by mltc")
        client.set_terminated(r.info.run_id, status="KILLED")
        marked.append(r.info.run_id)
    if marked:
        log.warning("marked %d run(s) KILLED: their process is gone (%s)", len(marked), ", ".join(marked))
    return marked


class NullTracker:
    """Tracks nothing (``tracking=none``)."""

    run_id = None
    resume = False
    logs_artifacts = False

    def start(self, *, experiment, run_name=None, tags=None, params=None, parent_run_id=None):
        return self

    def find_finished(self, experiment, config_hash):
        return None

    def log_metrics(self, metrics, prefix=""):
        pass

    def log_artifacts(self, files: dict):
        pass

    def end(self, status="FINISHED", error=None):
        pass


class MlflowTracker:
    """Log one run to MLflow through an explicit client and run id.

    Parameters
    ----------
    uri : str, optional
        Tracking URI; default a SQLite database under ``runs/``.
    experiment : str, optional
        Experiment name; default the data set's name (set by the caller).
    resume : bool, default=True
        In a sweep, skip a job whose configuration already has a FINISHED run
        in the experiment (``tracking.resume=false`` reruns everything).
    subprocess : bool, default=True
        ``mltc run`` talks to MLflow from a child process (:class:`TrackerProcess`),
        so that MLflow's start-up runs beside the model fit instead of slowing it.
    log_model : bool or None, default=None
        Log the fitted model as the run's MLflow model (``runs:/<run id>/model``); None: single
        runs do, the jobs of a sweep do not (see :mod:`mltc.serving`).
    """

    logs_artifacts = True

    def __init__(self, uri=None, experiment=None, resume=True, subprocess=True, log_model=None):
        self.uri = uri
        self.experiment = experiment
        self.resume = resume
        self.subprocess = subprocess
        self.log_model = log_model
        self.run_id = None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            uri = tracking_uri(self.uri)
            self.uri = uri
            self._client = open_client(uri)
        return self._client

    def _experiment_id(self, name):
        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if "mlflow.experimentKind" not in exp.tags:  # made before mltc set it: open it on the runs table too
                client.set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "custom_model_development")
            return exp.experiment_id
        artifact_location = None
        if self.uri.startswith("sqlite:///"):
            # next to the database, not in whatever directory the run started from
            artifact_location = (Path(self.uri[len("sqlite:///"):]).parent / "artifacts" / name).as_uri()
        try:
            # MLflow 3's UI opens experiments of this kind on the runs table, not the GenAI overview
            return client.create_experiment(name, artifact_location=artifact_location,
                                            tags={"mlflow.experimentKind": "custom_model_development"})
        except Exception:  # another job created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def find_finished(self, experiment, config_hash):
        """The latest FINISHED run of ``experiment`` tagged with ``config_hash``, or None."""
        exp = self.client.get_experiment_by_name(self.experiment or experiment)
        if exp is None:
            return None
        runs = self.client.search_runs(
            [exp.experiment_id], max_results=1, order_by=["attributes.end_time DESC"],
            filter_string=f"tags.`mltc.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'")
        return runs[0] if runs else None

    def start(self, *, experiment, run_name=None, tags=None, params=None, parent_run_id=None):
        """Create the run with its tags, and log its params (one batch per 100, MLflow's limit)."""
        from mlflow.entities import Param

        name = self.experiment or experiment
        exp_id = self._experiment_id(name)
        tags = dict(tags or {})
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in tags.items()})
        self.run_id = run.info.run_id
        items = [Param(k, str(v)[:_MAX_PARAM_LEN]) for k, v in flatten(params or {}).items()]
        for i in range(0, len(items), _MAX_PARAMS):
            self.client.log_batch(self.run_id, params=items[i:i + _MAX_PARAMS])
        return self

    def log_metrics(self, metrics: dict, prefix: str = ""):
        """Log finite metrics in as few batches as MLflow allows.

        A value that is a list of numbers is one metric over steps (step = index).
        """
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(prefix + k, float(x), ts, step) for k, v in metrics.items() for step, x in _steps(v)]
        for i in range(0, len(items), _MAX_ENTITIES):
            self.client.log_batch(self.run_id, metrics=items[i:i + _MAX_ENTITIES])

    def log_artifacts(self, files: dict):
        """Log ``{relative name: writer(path)}`` artifacts: written to one temporary directory, logged at once."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, writer in files.items():
                path = Path(tmp) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                writer(path)
            self.client.log_artifacts(self.run_id, tmp)

    def log_artifact_dir(self, path, writers=None):
        """Log every file under ``path`` as the run's artifacts, after running ``{name: writer(path)}`` there."""
        for name, writer in (writers or {}).items():
            writer(Path(path) / name)
        self.client.log_artifacts(self.run_id, str(path))

    def log_pyfunc_model(self, pickle_path, **kwargs):
        """Log a pickled :class:`~mltc.serving.TextClassifierModel` as this run's MLflow model; returns its id."""
        from mltc.serving.mlflow_model import log_pyfunc

        self.client  # noqa: B018 -- resolves self.uri
        return log_pyfunc(self.run_id, pickle_path, tracking_uri=self.uri, **kwargs)

    def warm_up(self):
        """Import MLflow and open the store now, so that :meth:`start` later is quick."""
        self.client.search_experiments(max_results=1)

    def warm_up_model_logging(self, modules=()):
        """Prepare :meth:`log_pyfunc_model` (see :func:`mltc.tracking_warm.warm_up_model_logging`)."""
        from mltc.tracking_warm import warm_up_model_logging

        warm_up_model_logging(modules)

    def set_tags(self, tags: dict):
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v)[:5000])

    def tag_run(self, run_id: str, tags: dict):
        """Tag another run (e.g. link a run found by resume to this sweep), without moving it."""
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v)[:5000])

    def end(self, status="FINISHED", error=None):
        """Close the run; a failed run keeps its error as a tag."""
        if self.run_id is None:
            return
        if error is not None:
            self.client.set_tag(self.run_id, "error", str(error)[:5000])
        self.client.set_terminated(self.run_id, status=status)
