"""``mltc promote``: refit a sweep's best configuration on training + validation and register it.

    mltc promote --sweep latest                 # best by the runs' validation objective
    mltc promote --run <run id>                 # that run's configuration (e.g. what `mltc advise` recommends)
    mltc predict --model models:/<name>@champion texts.csv

The choice is made on validation metrics only (``val_<objective>``, what each run tuned
against); test metrics of the promoted run are logged for information and decide nothing.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import uuid

log = logging.getLogger("mltc")

__all__ = ["main", "pick_best", "refit_config", "PromoteError"]


class PromoteError(RuntimeError):
    """A sweep that cannot be promoted; the message says why and what to do."""


def _parser():
    p = argparse.ArgumentParser(prog="mltc promote",
                                description="Refit a sweep's best configuration (chosen on validation) on "
                                            "training + validation data, log it with its model and register it.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sweep", help="sweep id, the sweep's parent run id, or latest: promote its best run")
    src.add_argument("--run", help="promote this run's configuration as it is (no selection; its sweep is "
                                   "recorded from the run's tags)")
    p.add_argument("--experiment", action="append", default=None,
                   help="experiment(s) to look in (default: all)")
    p.add_argument("--metric", default=None,
                   help="validation metric to select on (default: val_<the runs' metrics.objective>)")
    p.add_argument("--name", default=None, help="registered model name (default: the sweep's experiment)")
    p.add_argument("--alias", default="champion", help="alias set on the new version (default champion)")
    p.add_argument("--n-splits", type=int, default=5,
                   help="folds for out-of-fold thresholds when the chosen rule was tuned on validation (default 5)")
    p.add_argument("--uri", default=None, help="tracking store (default: $MLFLOW_TRACKING_URI or runs/mlflow.db)")
    p.add_argument("--dry-run", action="store_true", help="only show which run would be promoted")
    return p


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from mltc.compare import CompareError

    try:
        promote(a)
    except (PromoteError, CompareError) as err:
        print(f"mltc promote: {err}", file=sys.stderr)
        return 2
    return 0


def _lower_is_better(metric: str) -> bool:
    return "loss" in metric or metric.endswith(("_error", "coverage", "ranking_loss"))


def pick_best(runs, metric=None):
    """The run with the best validation metric, and the metric's name.

    Runs are FINISHED sweep jobs; of several runs of one configuration (a resumed sweep) the
    latest counts. ``metric`` defaults to ``val_<metrics.objective>``.

    Raises
    ------
    PromoteError
        When no run has the metric (e.g. every run tuned thresholds out of fold, so none has
        validation metrics).
    """
    latest = {}
    for r in sorted(runs, key=lambda r: r.info.start_time or 0):
        latest[r.data.tags.get("mltc.config_hash", r.info.run_id)] = r
    runs = list(latest.values())
    if metric is None:
        objectives = {r.data.params.get("metrics.objective") for r in runs} - {None}
        if len(objectives) != 1:
            raise PromoteError(f"the runs optimise different objectives ({', '.join(sorted(objectives)) or 'none'});"
                               " choose the selection metric with --metric val_<name>.")
        metric = f"val_{objectives.pop()}"
    if metric.startswith("test_") or not metric.startswith("val_"):
        raise PromoteError(f"--metric {metric}: promotion selects on validation metrics only (val_<name>), never "
                           "on test scores.")
    scored = [(r.data.metrics[metric], r) for r in runs
              if metric in r.data.metrics and math.isfinite(r.data.metrics[metric])]
    if not scored:
        raise PromoteError(f"no run of this sweep has {metric}: runs log validation metrics when they tune "
                           "thresholds on a validation split (not with thresholds=per_label_cv, and not without "
                           "split.val_size). Pass --metric with a val_ metric they have.")
    skipped = len(runs) - len(scored)
    if skipped:
        log.warning("%d of %d configurations have no %s and are not candidates.", skipped, len(runs), metric)
    sign = -1.0 if _lower_is_better(metric) else 1.0
    # ties go to the earlier run (stable sort of the start-ordered list)
    best = max(scored, key=lambda t: sign * t[0])[1]
    return best, metric, len(scored)


def refit_config(config_yaml: str, *, n_splits=5):
    """The configuration of a run, refit on training + validation (see :mod:`mltc.serving.refit`)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from mltc.serving.refit import needs_validation

    cfg = OmegaConf.create(config_yaml)
    split = OmegaConf.to_container(cfg.split, resolve=True)
    cfg.split = {"_target_": "mltc.serving.refit.MergeValidation", "splitter": split}
    rule_cfg = cfg.get("thresholds")
    if rule_cfg is not None and needs_validation(instantiate(rule_cfg)):
        cfg.thresholds = {"_target_": "mltc.serving.refit.OutOfFoldRule",
                          "rule": OmegaConf.to_container(rule_cfg, resolve=True), "n_splits": int(n_splits)}
    return cfg


def _tracking_uri(uri):
    from mltc.paths import default_tracking_uri

    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def promote(a):
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from mltc.compare import load_runs

    uri = _tracking_uri(a.uri)
    client = MlflowClient(uri)
    if a.run:
        best, parent = _given_run(client, a, uri), None
        metric, n = None, 1
        log.info("promoting the given run %s (%s)", best.info.run_id, best.info.run_name)
    else:
        runs, parent = load_runs(client, experiments=a.experiment, sweep=a.sweep)
        best, metric, n = pick_best(runs, a.metric)
        log.info("best of %d configurations by %s: run %s (%s = %.4f)", n, metric, best.info.run_id,
                 best.info.run_name, best.data.metrics[metric])
    experiment = client.get_experiment(best.info.experiment_id).name
    sweep_id = best.data.tags.get("mltc.sweep_id", parent.info.run_id if parent else "")
    if a.dry_run:
        print(best.info.run_id)
        return best
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(best.info.run_id, "config.yaml", tmp)
        except Exception as err:  # noqa: BLE001 -- any failure here means the same thing to the user
            raise PromoteError(f"run {best.info.run_id} has no config.yaml artifact ({err}); it was not logged by "
                               "mltc run, or its artifacts were deleted.") from None
        with open(path, encoding="utf-8") as fh:
            cfg = refit_config(fh.read(), n_splits=a.n_splits)
    cfg.tracking = {"_target_": "mltc.tracking.MlflowTracker", "uri": uri, "experiment": experiment,
                    "resume": False, "subprocess": True, "log_model": True}
    name = a.name or experiment
    cfg.run_name = f"promoted {best.info.run_name or best.info.run_id}"[:250]
    promotion = uuid.uuid4().hex
    choices = {k[len("mltc."):]: v for k, v in best.data.tags.items()
               if k.startswith("mltc.") and k[len("mltc."):] in ("dataset", "split", "features", "augment",
                                                                   "strategy", "model", "thresholds", "experiment")}
    tags = {"mltc.role": "promoted", "mltc.promotion_id": promotion, "mltc.promoted_from_sweep": sweep_id,
            "mltc.promoted_from_run": best.info.run_id,
            "mltc.promoted_from_config_hash": best.data.tags.get("mltc.config_hash", ""),
            **({"mltc.selection_metric": metric, "mltc.selection_value": best.data.metrics[metric]} if metric
               else {"mltc.selection_metric": "given (--run)"}),
            "mltc.refit": "train+val" + (" (thresholds out of fold)" if
                                         "OutOfFoldRule" in str(cfg.thresholds.get("_target_", "")) else ""),
            "mltc.registered_model": name}
    from mltc.app import RunFailed, run_from_config

    try:
        run_from_config(cfg, choices=choices, raise_errors=True, extra_tags=tags)
    except RunFailed as err:
        raise PromoteError(f"the refit failed: {err}") from None
    exp_id = best.info.experiment_id
    found = client.search_runs([exp_id], filter_string=f"tags.`mltc.promotion_id` = '{promotion}'", max_results=1)
    if not found:
        raise PromoteError("the refit run is not in the store after it finished; check the tracking URI.")
    run = found[0]
    outputs = getattr(run, "outputs", None)
    if not (outputs and outputs.model_outputs):
        raise PromoteError(f"the refit run {run.info.run_id} logged no model; see the log above for why.")
    version = _register(client, uri, outputs.model_outputs[-1].model_id, name, a.alias, tags)
    why = f"{metric} = {best.data.metrics[metric]:.4f}, best of {n}" if metric else "given with --run"
    print(f"promoted run {best.info.run_id} ({why}) of sweep "
          f"{sweep_id or '-'}\n  refit on train+val as run {run.info.run_id}\n  registered models:/{name}/{version} "
          f"(alias {a.alias})\n  use it: mltc predict --model models:/{name}@{a.alias} texts.csv")
    return run


def _given_run(client, a, uri):
    """The run named by ``--run``, checked to be a finished job run that can be refit."""
    from mlflow.exceptions import MlflowException

    if a.metric or a.experiment:
        raise PromoteError("--metric and --experiment choose among a sweep's runs; with --run nothing is chosen. "
                           "Drop them, or use --sweep instead of --run.")
    try:
        run = client.get_run(a.run)
    except MlflowException:
        raise PromoteError(f"--run {a.run}: no such run in {uri}; copy the id from `mltc advise`, "
                           "`mltc compare` or the MLflow UI, and check --uri.") from None
    role = run.data.tags.get("mltc.role")
    if role == "sweep":
        raise PromoteError(f"--run {a.run} is a sweep's parent run, not a job: use --sweep {a.run} to promote its "
                           "best run, or pass one of its job runs to --run.")
    if role == "promoted":
        raise PromoteError(f"--run {a.run} is already a promoted refit; pass the run it was promoted from "
                           f"({run.data.tags.get('mltc.promoted_from_run', 'see its mltc.promoted_from_run tag')}).")
    if run.info.status != "FINISHED":
        raise PromoteError(f"--run {a.run} is {run.info.status}, not FINISHED; promote a run that completed.")
    return run


def _register(client, uri, model_id, name, alias, tags):
    """Register the logged model ``model_id`` under ``name`` and point ``alias`` at the new version."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client.get_registered_model(name)
    except MlflowException:  # the first promotion under this name
        client.create_registered_model(name, description="Promoted by `mltc promote`: a sweep's best configuration "
                                                         "(by validation), refit on training + validation data.")
    mv = mlflow.register_model(f"models:/{model_id}", name,
                               tags={k: str(v) for k, v in tags.items() if k != "mltc.promotion_id"})
    client.set_registered_model_alias(name, alias, mv.version)
    return mv.version
