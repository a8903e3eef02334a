"""Log a run's fitted model through mltc's tracker (called by :mod:`mltc.app`)."""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from mltc.serving.model import NotLoggableError, TextClassifierModel

log = logging.getLogger("mltc")

__all__ = ["log_fitted_model", "save_model", "wants_model"]

_EXAMPLE_CHARS = 300


def wants_model(tracker, in_sweep: bool) -> bool:
    """``tracking.log_model``: true / false, or null = single runs log a model, sweep jobs do not."""
    if not hasattr(tracker, "log_pyfunc_model"):
        return False
    choice = getattr(tracker, "log_model", None)
    return (not in_sweep) if choice is None else bool(choice)


def log_fitted_model(tracker, result, texts, info=None) -> dict:
    """Save ``result``'s fitted objects and log them as the run's MLflow model.

    Parameters
    ----------
    tracker : MlflowTracker or TrackerProcess (started)
    result : RunResult
    texts : sequence of str
        The data set's texts (two test texts become the model's input example).
    info : dict, optional
        Provenance kept in the model (config hash, choices).

    Returns
    -------
    dict
        ``model_log_seconds`` and ``model_size_mb`` (empty when the model cannot be saved).
    """
    clf = TextClassifierModel.from_result(result, info=info)
    return save_model(clf, texts, result.extra.get("test_index", []))(tracker)


def save_model(clf, texts, test_index):
    """Pickle ``clf`` now; return ``log_to(tracker) -> dict`` that logs the pickle as the run's model.

    The two steps let the CLI pickle in the run's thread (nothing else touches the fitted
    objects meanwhile) and log from another thread while the run goes on. The pickle lives
    in a temporary directory that ``log_to`` removes.
    """
    t0 = time.perf_counter()
    idx = list(test_index)[:2] or [0]
    example = [str(texts[i])[:_EXAMPLE_CHARS] for i in idx]
    tmp = tempfile.TemporaryDirectory(prefix="mltc-model-")
    path = Path(tmp.name) / "mltc_model.pkl"
    try:
        saved = clf.save(path)
    except NotLoggableError as err:
        tmp.cleanup()
        log.warning("no model logged: %s", err)
        return lambda tracker: {}
    except BaseException:
        tmp.cleanup()
        raise
    size = path.stat().st_size
    pickling = time.perf_counter() - t0

    def log_to(tracker) -> dict:
        t = time.perf_counter()
        try:
            tracker.log_pyfunc_model(str(path), label_names=clf.label_names, input_example=example,
                                     packages=saved["packages"],
                                     metadata={"mltc": {k.removeprefix("mltc."): str(v) for k, v in clf.info.items()},
                                               "classes": saved["classes"]})
        finally:
            tmp.cleanup()
        seconds = pickling + time.perf_counter() - t
        log.info("model logged (runs:/%s/model): %.1f MB in %.1f s", tracker.run_id, size / 1e6, seconds)
        return {"model_log_seconds": seconds, "model_size_mb": size / 1e6}

    return log_to
