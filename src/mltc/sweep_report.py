"""What a sweep's parent run says about its configurations: runs reused by resume, the best child, counts.

Called by the runner (:mod:`mltc.app`) and the sweep callback (:mod:`mltc.callbacks`) with a few lines each.
"""
from __future__ import annotations

import logging
import math
import time

from mltc.keys import VAL, sweep_link_tag

log = logging.getLogger("mltc")

__all__ = ["link_reused", "summarize_parent"]


def link_reused(tracker, run, sweep: dict) -> None:
    """Tag ``run`` (a FINISHED run found by resume) as part of ``sweep``: ``mltc.sweep.<id> = reused``.

    The run stays where it is (its own parent, if any); ``mltc compare --sweep`` and the sweep's report
    include it through the tag. A failure to tag is a warning: the job itself is done.
    """
    try:
        tracker.tag_run(run.info.run_id, {sweep_link_tag(sweep["sweep_id"]): "reused"})
    except Exception as err:  # noqa: BLE001 -- linking is bookkeeping; the sweep goes on
        log.warning("could not link the reused run %s to sweep %s: %s", run.info.run_id, sweep["sweep_id"], err)


def summarize_parent(client, info: dict, objective: str) -> None:
    """Log on the sweep's parent run what a collapsed sweep row in the UI should show.

    Metrics ``sweep_n_configs`` (configurations with a FINISHED run, made now or reused),
    ``best_<objective>`` and ``best_val_<objective>`` of the best configuration by validation score
    (test score where runs logged no validation); tags ``mltc.best_run_id`` and ``mltc.reused_runs``.
    """
    from mlflow.entities import Metric

    from mltc.compare.runs import load_runs

    try:
        runs, _ = load_runs(client, None, info["run_id"])
    except Exception as err:  # noqa: BLE001 -- no FINISHED run: nothing to summarise
        log.info("sweep summary: %s", err)
        return
    latest = {}
    for r in sorted(runs, key=lambda r: r.info.start_time or 0):
        latest[r.data.tags.get("mltc.config_hash", r.info.run_id)] = r
    key = f"{VAL}{objective}" if all(f"{VAL}{objective}" in r.data.metrics for r in latest.values()) else objective
    scored = [r for r in latest.values() if math.isfinite(r.data.metrics.get(key, math.nan))]
    ts = int(time.time() * 1000)
    metrics = [Metric("sweep_n_configs", len(latest), ts, 0)]
    tags = {"mltc.reused_runs": ",".join(r.info.run_id for r in latest.values()
                                         if r.data.tags.get("mlflow.parentRunId") != info["run_id"])}
    if scored:
        best = max(scored, key=lambda r: r.data.metrics[key])
        for name in (objective, f"{VAL}{objective}"):
            if name in best.data.metrics:
                metrics.append(Metric(f"best_{name}", best.data.metrics[name], ts, 0))
        tags["mltc.best_run_id"] = best.info.run_id
        tags["mltc.best_run"] = best.info.run_name or best.info.run_id
        tags["mltc.best_by"] = key
    client.log_batch(info["run_id"], metrics=metrics)
    for k, v in tags.items():
        client.set_tag(info["run_id"], k, v[:5000])


# groups every run name shows; other groups only where chosen on the command line
_NAMED_GROUPS = ("strategy", "model", "thresholds")
_NOT_NAMED = ("tracking", "hydra", "seed", "run_name", "metrics")


def make_run_name(choices: dict, overrides=(), seed=None, limit: int = 250) -> str:
    """A run name that says what differs: the overlay (``experiment=``), the chosen options, other
    command-line settings, the seed.

    Examples
    --------
    >>> make_run_name({"strategy": "mlsmote", "model": "logreg", "thresholds": "fixed", "dataset": "synthetic"},
    ...               ["strategy=mlsmote", "model.estimator.C=10", "tracking.uri=sqlite:///x.db"], seed=1)
    'strategy=mlsmote model=logreg thresholds=fixed C=10 seed=1'
    >>> make_run_name({"experiment": "reuters_huang_svm", "strategy": "none"}, [], seed=42)
    'reuters_huang_svm strategy=none seed=42'
    """
    parts = [choices["experiment"]] if choices.get("experiment") else []
    given = {}
    for o in overrides:
        key, sep, value = str(o).lstrip("+~").partition("=")
        if sep and key.split(".")[0].split("/")[0] not in _NOT_NAMED and key != "experiment":
            given[key] = value
    parts += [f"{g}={choices[g]}" for g in _NAMED_GROUPS if g in choices]
    parts += [f"{g}={choices[g]}" for g in given if g in choices and g not in _NAMED_GROUPS and g != "experiment"]
    # a setting inside a group: its last key is enough to read (model.estimator.C=10 -> C=10)
    parts += [f"{k.split('.')[-1]}={v}" for k, v in given.items() if k not in choices]
    if seed is not None:
        parts.append(f"seed={seed}")
    return " ".join(parts)[:limit]
