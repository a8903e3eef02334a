"""The tracker in a child process: MLflow's imports, store and writes run beside the job, not inside it.

:class:`TrackerProcess` pickles an unstarted tracker (:class:`mltc.tracking.MlflowTracker`) to a
low-priority child and forwards each call; the jobs of a sweep run in one process share one child.
"""
from __future__ import annotations

import atexit
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["TrackerProcess"]


# children whose run has ended, kept for the next job of a sweep run by this process
_IDLE: list = []
_IDLE_LOCK = threading.Lock()


def _stop_idle() -> None:
    """Let the idle tracking processes exit (end of input) and wait for them."""
    with _IDLE_LOCK:
        procs, _IDLE[:] = list(_IDLE), []
    for proc in procs:
        _stop(proc)


def _stop(proc) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.wait(timeout=60)


atexit.register(_stop_idle)


class TrackerProcess:
    """Run a tracker in a child process and forward calls to it.

    Importing MLflow and opening its SQLite store cost seconds of CPU that, in a
    thread, would hold the GIL and slow the model fit; in a child process started with
    the run they happen on another core while the data loads and the model fits.

    Parameters
    ----------
    tracker : MlflowTracker
        A tracker that has not started (it is pickled to the child).
    reuse : bool, default=False
        Take an idle child left by an earlier run of this process, and leave this one idle
        for the next run when it closes. In a sweep every job then pays MLflow's start-up
        (~3 s of CPU) once per worker process instead of once per job, which matters when
        the jobs run in parallel and no core is idle.
    """

    logs_artifacts = True

    def __init__(self, tracker, *, reuse=False):
        self.tracker = tracker
        self.reuse = reuse
        self.run_id = None
        self._lock = threading.Lock()
        self._closed = False
        self._proc = None
        self._pending = []  # completion callbacks of posted calls whose answers are unread
        while reuse and self._proc is None:
            with _IDLE_LOCK:
                if not _IDLE:
                    break
                self._proc = _IDLE.pop()
            try:
                self._call("__next__", tracker)
                return
            except RuntimeError:  # it died while idle: try the next one, or start a new one
                _stop(self._proc)
                self._proc = None
        self._proc = subprocess.Popen([sys.executable, "-c", "from mltc.tracker_process import _serve; _serve()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._send(tracker)

    def __getattr__(self, name):
        # configuration attributes (resume, uri, experiment) are the wrapped tracker's
        if name.startswith("_") or name == "tracker":
            raise AttributeError(name)
        return getattr(self.tracker, name)

    def _send(self, obj):
        pickle.dump(obj, self._proc.stdin)
        self._proc.stdin.flush()

    def _call(self, method, *args, **kwargs):
        with self._lock:
            self._collect()
            try:
                self._send((method, args, kwargs))
            except (BrokenPipeError, OSError) as err:
                raise RuntimeError(f"the MLflow tracking process exited ({err!r}); its error is printed above.") \
                    from None
            return self._answer()

    def _post(self, method, *args, done=None):
        """Send a call without waiting: its answer is read, and its error raised, by the next call.

        ``done()`` runs once the answer is in (e.g. removing the files the call logs).
        """
        with self._lock:
            self._collect()
            try:
                self._send((method, args, {}))
            except (BrokenPipeError, OSError) as err:
                raise RuntimeError(f"the MLflow tracking process exited ({err!r}); its error is printed above.") \
                    from None
            self._pending.append(done)

    def _collect(self):
        """Read the answers of posted calls (caller holds the lock); the first error is raised."""
        errors = []
        while self._pending:
            done = self._pending.pop(0)
            try:
                self._answer()
            except RuntimeError as err:
                errors.append(err)
            finally:
                if done is not None:
                    done()
        if errors:
            raise errors[0]

    def _answer(self):
        try:
            ok, value, run_id = pickle.load(self._proc.stdout)
        except (EOFError, BrokenPipeError, OSError) as err:
            raise RuntimeError(f"the MLflow tracking process exited ({err!r}); its error is printed above.") \
                from None
        if run_id is not None:
            self.run_id = run_id
        if not ok:
            raise RuntimeError(value)
        return value

    def start(self, **kwargs):
        self._call("start", **kwargs)
        return self

    def log_metrics(self, metrics, prefix=""):
        self._call("log_metrics", metrics, prefix)

    def log_artifacts(self, files: dict):
        """Write the artifacts here, except writers marked ``portable`` (e.g. plots): the child runs those.

        Returns once the files are written; the child logs them (and draws the plots) while this
        process goes on, e.g. saving the model. An error comes back with the next call.
        """
        portable = {k: w for k, w in files.items() if getattr(w, "portable", False) and "/" not in k}
        tmp = tempfile.TemporaryDirectory()
        try:
            for name, writer in files.items():
                if name in portable:
                    continue
                path = Path(tmp.name) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                writer(path)
            self._post("log_artifact_dir", tmp.name, portable, done=tmp.cleanup)
        except BaseException:
            tmp.cleanup()
            raise

    def set_tags(self, tags):
        self._call("set_tags", tags)

    def log_pyfunc_model(self, pickle_path, **kwargs):
        return self._call("log_pyfunc_model", pickle_path, **kwargs)

    def warm_up_model_logging(self, modules=()):
        self._call("warm_up_model_logging", modules)

    def find_finished(self, experiment, config_hash):
        return self._call("find_finished", experiment, config_hash)

    def tag_run(self, run_id, tags):
        self._call("tag_run", run_id, tags)

    def end(self, status="FINISHED", error=None):
        if self._closed:  # ended already (a failed end is followed by the caller's end("FAILED"))
            return
        try:
            try:
                with self._lock:
                    self._collect()
            except RuntimeError as err:  # a posted call failed: the run did not finish
                if status == "FINISHED":
                    self._call("end", "FAILED", str(err))
                    raise
                error = error or str(err)
            self._call("end", status, error)
        except BaseException:
            self.reuse = False  # a child that failed to end a run is not handed to the next one
            raise
        finally:
            self.close()

    def close(self):
        """Stop the child, or with ``reuse`` leave it idle for the next run of this process."""
        if self._closed:
            return
        try:
            with self._lock:
                self._collect()  # a child handed to the next run must owe no answers
        except RuntimeError:
            self.reuse = False
        self._closed, proc = True, self._proc
        if self.reuse and proc.poll() is None:
            with _IDLE_LOCK:
                _IDLE.append(proc)
        else:
            _stop(proc)


def _serve() -> None:
    """Child side of :class:`TrackerProcess`: read pickled calls on stdin, answer on stdout."""
    # the answers travel on the original stdout; anything printed goes to stderr
    import signal

    # Ctrl-C and a scheduler's SIGTERM reach the whole process group: this process must outlive them
    # so the parent can still mark its run KILLED; it exits when the parent closes its input
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    # default priority, not nice 19: on a busy machine (a parallel sweep, another user) a niced
    # process gets almost no CPU, and the run then waits for it after the model has fitted
    tracker = pickle.load(inp)
    try:
        tracker.warm_up()
        if getattr(tracker, "logs_artifacts", False):
            from mltc.report import warm_up

            warm_up(plotting=True)  # this process draws the plots
    except Exception:  # noqa: BLE001 -- the same error comes back on the first call
        pass
    while True:
        try:
            method, args, kwargs = pickle.load(inp)
        except EOFError:
            # everything is committed to the store; skip the interpreter's slow teardown of MLflow
            out.flush()
            os._exit(0)
        try:
            if method == "__next__":  # the next job of a sweep: a new tracker, MLflow already imported
                tracker, value, ok = args[0], None, True
                try:
                    tracker.warm_up()
                except Exception:  # noqa: BLE001 -- the same error comes back on the first call
                    pass
            else:
                value, ok = getattr(tracker, method)(*args, **kwargs), True
            if value is tracker:
                value = None
        except Exception as err:  # noqa: BLE001 -- handed to the parent, which reports it
            log.debug("tracker call %s failed", method, exc_info=True)
            value, ok = f"{type(err).__name__}: {err}", False
        try:
            pickle.dump((ok, value, tracker.run_id), out)
        except Exception as err:  # noqa: BLE001 -- an unpicklable result (e.g. an MLflow entity)
            pickle.dump((False, f"unpicklable result of {method}: {err}", tracker.run_id), out)
        out.flush()
