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
