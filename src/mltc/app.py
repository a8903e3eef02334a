"""The Hydra application behind ``mltc run``: config in, objects out, results logged.

This is the only place (with :mod:`mltc.tracking`) that knows about Hydra and MLflow.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mltc.callbacks import current_sweep, progress, record_end, record_skip
from mltc.config_checks import check_values, dataset_name
from mltc.config_guard import ConfigError, check_config
from mltc.keys import THRESHOLD, TIME, VAL
from mltc.paths import runs_dir, tracking_uri
from mltc.runtime import job_cores
from mltc.sweep_report import link_reused, make_run_name
from mltc.tracker_process import TrackerProcess
from mltc.tracking import config_hash, details_metrics, process_tags

log = logging.getLogger("mltc")

__all__ = ["main", "run_from_config", "CONF_DIR", "ConfigError"]


def _conf_dir() -> str:
    here = Path(__file__).resolve().parent
    for cand in (here / "conf", here.parents[1] / "conf"):  # installed wheel, then source checkout
        if (cand / "config.yaml").is_file():
            return str(cand)
    raise RuntimeError("mltc cannot find its configuration directory (conf/config.yaml); reinstall mltc.")


CONF_DIR = _conf_dir()

if not OmegaConf.has_resolver("mltc_runs"):
    OmegaConf.register_new_resolver("mltc_runs", lambda: str(runs_dir()))
if not OmegaConf.has_resolver("mltc_cores"):
    # resolved in the job's process: under the joblib launcher, the cores of one job
    OmegaConf.register_new_resolver("mltc_cores", lambda: job_cores())

GROUPS = ("dataset", "split", "features", "augment", "strategy", "model", "thresholds", "tracking")


def check_targets(cfg) -> None:
    """Refuse any ``_target_`` (anywhere, the ``hydra`` node too) that is not an allowed class or factory.

    See :mod:`mltc.config_guard`; inside a Hydra job the job's ``hydra`` node is checked as well.
    """
    hydra_cfg = None
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # composed outside a Hydra app (tests, Python use)
        pass
    check_config(cfg, hydra_cfg=hydra_cfg)


def _key_of(cfg, param: str) -> str | None:
    """The config key path(s) whose last part is ``param`` (to name it in an error)."""
    hits = [k for k in _leaf_keys(OmegaConf.to_container(cfg, resolve=False)) if k.split(".")[-1] == param]
    hits = [h for h in hits if not h.startswith("hydra")]
    return " / ".join(hits) if hits else None


def _leaf_keys(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaf_keys(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaf_keys(v, f"{prefix}.{i}")
    else:
        yield prefix


def explain(err: BaseException, cfg) -> str:
    """A user-facing message for an error raised while running ``cfg``."""
    from sklearn.utils._param_validation import InvalidParameterError

    root = err
    while root.__cause__ is not None and not isinstance(root, InvalidParameterError):
        root = root.__cause__
    msg = str(root)
    if isinstance(root, InvalidParameterError):
        import re
        m = re.search(r"The '([^']+)' parameter", msg)
        key = _key_of(cfg, m.group(1)) if m else None
        return f"invalid value for {key}: {msg}" if key else f"invalid configuration value: {msg}"
    return f"{type(root).__name__}: {msg}"


def _choices() -> dict:
    try:
        hc = HydraConfig.get()
    except ValueError:  # composed outside a Hydra app (tests, Python use)
        return {}
    return {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}


def _task_overrides() -> list:
    try:
        return [str(o) for o in HydraConfig.get().overrides.task]
    except ValueError:  # composed outside a Hydra app
        return []


def _is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _job_num() -> int:
    try:
        return int(HydraConfig.get().job.num)
    except (ValueError, TypeError):
        return 0


NPZ_COMPRESS_MAX_CELLS = 1_000_000  # predictions.npz is stored uncompressed above this many test scores


def _write_predictions(result, Y):
    import numpy as np

    def write(path):
        idx = np.asarray(result.extra["test_index"], dtype=np.int64)
        P = np.asarray(result.extra["test_pred"]).astype(bool)
        scores = np.asarray(result.extra["test_scores"], dtype=np.float32)
        # zlib gains ~4 % on float32 scores at ~25 MB/s: 1.2 s at 3,000 x 4,000, ~20 s at 200,000 x 500
        save = np.savez if scores.size > NPZ_COMPRESS_MAX_CELLS else np.savez_compressed
        save(path, index=idx, n_labels=P.shape[1], pred=np.packbits(P, axis=1),
             true=np.packbits(np.asarray(Y)[idx].astype(bool), axis=1), scores=scores)
    return write


def load_dataset(node):
    """The data set a ``dataset`` config node loads, with its unlabeled documents if it names a file.

    ``unlabeled_path`` / ``unlabeled_text_column`` / ``unlabeled_format`` (any loader, own loaders
    too) are read here with :func:`mltc.data.files.with_unlabeled`; the loader gets the other keys.
    """
    from mltc.data.files import UNLABELED_KEYS, with_unlabeled

    node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    unlabeled = {arg: node.pop(key) for key, arg in UNLABELED_KEYS.items() if key in node}
    return with_unlabeled(instantiate(node, _convert_="all"), **unlabeled)


def run_config(cfg: DictConfig, on_stage=None, on_fitted=None):
    """Build the configured objects and run the pipeline (no tracking, no printing).

    ``on_stage`` is passed to :func:`~mltc.pipeline.run_pipeline`; so is ``on_fitted``, called
    as ``on_fitted(fitted, dataset, test_index)``.

    Returns
    -------
    dataset : Dataset
    result : RunResult
        With the data loading time added to ``result.timings["load"]``.
    """
    from mltc.pipeline import run_pipeline

    t0 = time.perf_counter()
    dataset = load_dataset(cfg.dataset)
    load_time = time.perf_counter() - t0
    log.info("data: %s (%d documents, %d labels)", dataset.description or dataset.name, len(dataset),
             dataset.n_labels)
    objs = {g: (instantiate(cfg[g], _convert_="all") if cfg.get(g) is not None else None)
            for g in ("split", "features", "augment", "strategy", "model", "thresholds")}
    use_oof_cache(objs["model"], cfg.get("cache"))
    use_neighbour_cache(objs["strategy"], cfg.get("cache"))
    result = run_pipeline(dataset, splitter=objs["split"], featurizer=objs["features"], model=objs["model"],
                          strategy=objs["strategy"], thresholder=objs["thresholds"], augmenter=objs["augment"],
                          head_min=cfg.metrics.get("head_min"), tail_max=cfg.metrics.get("tail_max"),
                          random_state=cfg.seed, on_stage=on_stage, background_transform=job_cores() > 1,
                          extra_metrics=extra_metrics(cfg), feature_cache=feature_cache(cfg.get("cache")),
                          on_fitted=None if on_fitted is None else (lambda f, te: on_fitted(f, dataset, te)))
    result.timings = {"load": load_time, **result.timings}
    return dataset, result


def extra_metrics(cfg) -> dict:
    """``metrics.extra`` resolved against mltc's metric registry (unknown names fail before any work)."""
    from mltc.metrics import AVAILABLE_METRICS, resolve_metrics

    specs = cfg.metrics.get("extra")
    specs = OmegaConf.to_container(specs, resolve=True) if OmegaConf.is_config(specs) else list(specs or [])
    objective = cfg.metrics.get("objective")
    try:
        extra = resolve_metrics(specs)
        if objective and objective not in extra and objective not in AVAILABLE_METRICS:
            try:  # an objective from the registry need not be listed in metrics.extra too
                extra.update(resolve_metrics([objective], key="metrics.objective"))
            except ValueError:
                pass  # a derived metric (tail_macro_f1, ...): checked once the run has computed it
        return extra
    except ValueError as err:
        raise ConfigError(str(err)) from None


def objective_name(cfg) -> str:
    """The logged name of ``metrics.objective`` (``nDCG@5`` is logged as ``ndcg_at_5``)."""
    from mltc.metrics import AVAILABLE_METRICS, resolve_metrics

    objective = str(cfg.metrics.objective)
    if objective in AVAILABLE_METRICS:
        return objective
    try:
        return next(iter(resolve_metrics([objective], key="metrics.objective")), objective)
    except ValueError:
        return objective


def feature_cache(cache_cfg):
    """The :class:`~mltc.feature_cache.FeatureCache` the ``cache:`` config asks for (None: disabled)."""
    from mltc.feature_cache import FeatureCache
    from mltc.paths import feature_cache_dir

    if cache_cfg is None or not cache_cfg.get("features", False):
        return None
    max_gb = cache_cfg.get("max_gb", 5.0)
    if not isinstance(max_gb, (int, float)) or max_gb <= 0:
        raise ConfigError(f"cache.max_gb={max_gb!r} must be a positive number of gigabytes.")
    directory = Path(cache_cfg["dir"]) / "features" if cache_cfg.get("dir") else feature_cache_dir()
    return FeatureCache(directory, max_bytes=int(max_gb * 1024 ** 3))


def use_oof_cache(model, cache_cfg) -> None:
    """Give a model that keeps out-of-fold scores (``memory``, e.g. ScoreStack) the cache directory."""
    if cache_cfg is None or not cache_cfg.get("oof", False) or model is None:
        return
    params = model.get_params(deep=False)
    if "memory" in params and params["memory"] is None:
        from joblib import Memory

        memory = Memory(Path(cache_cfg.get("dir") or runs_dir() / "cache") / "oof", verbose=0)
        memory.reduce_size(bytes_limit=int(float(cache_cfg.get("max_gb", 5.0)) * 1024 ** 3))
        model.set_params(memory=memory)


def use_neighbour_cache(strategy, cache_cfg) -> None:
    """Give samplers that search nearest neighbours (``neighbour_cache``, e.g. MLSOL) the shared cache."""
    if cache_cfg is None or not cache_cfg.get("neighbours", False) or strategy is None:
        return
    from mltc.neighbour_cache import NeighbourCache

    cache = NeighbourCache(Path(cache_cfg.get("dir") or runs_dir() / "cache") / "neighbours",
                           max_bytes=int(float(cache_cfg.get("max_gb", 5.0)) * 1024 ** 3))
    for sampler in [strategy, *(getattr(strategy, "steps", None) or [])]:  # SamplerChain: its steps
        if hasattr(sampler, "get_params") and sampler.get_params(deep=False).get("neighbour_cache", 0) is None:
            sampler.set_params(neighbour_cache=cache)


class _Background:
    """Run ``fn`` once in a background thread; :meth:`wait` joins it and re-raises its error.

    The tracker's start (importing MLflow, opening the store, creating the run, logging
    params) is launched when the model starts fitting: fitting spends its time in
    compiled code that releases the GIL, so this work overlaps it instead of adding to it.
    Logging the model runs the same way while the artifact files are written. ``value``:
    what ``fn`` returned.
    """

    def __init__(self, fn):
        self._fn = fn
        self._thread = None
        self._error = None
        self._lock = threading.Lock()
        self.waited = 0.0
        self.value = None
        self.failed = False

    def on_stage(self, name: str) -> None:
        if name == "fit":
            self.launch()

    def launch(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mltc-tracking", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as err:  # noqa: BLE001 -- handed to the main thread by wait()
            self._error = err
            self.failed = True

    def join(self) -> bool:
        """Wait for ``fn`` and leave its error to :meth:`wait`; True if it succeeded."""
        self.launch()
        self._thread.join()
        return not self.failed

    def wait(self) -> None:
        self.launch()
        t = time.perf_counter()
        self._thread.join()
        self.waited += time.perf_counter() - t
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def run_from_config(cfg: DictConfig, *, choices: dict | None = None, raise_errors: bool | None = None,
                    extra_tags: dict | None = None) -> float:
    """Instantiate the configured objects, run the pipeline, log and print the results.

    Returns
    -------
    float
        The metric named by ``metrics.objective`` (NaN for a failed job of a sweep).
    """
    from mltc.report import print_results, result_artifacts, warm_up
    from mltc.serving.model import TextClassifierModel
    from mltc.serving.track import log_fitted_model, save_model, wants_model
    from mltc.tracking_warm import target_modules

    choices = _choices() if choices is None else choices
    raise_errors = (not _is_multirun()) if raise_errors is None else raise_errors
    check_targets(cfg)
    check_values(cfg)  # seed, metrics.objective: refused before any data is loaded
    tracker = instantiate(cfg.tracking)
    if getattr(tracker, "subprocess", False) is True:
        # the jobs of a sweep that run in this process share one tracking process
        tracker = TrackerProcess(tracker, reuse=_is_multirun())
    sweep = current_sweep() if _is_multirun() else None
    experiment = sweep["experiment"] if sweep else (dataset_name(cfg.dataset, choices.get("dataset")) or "mltc")
    run_name = cfg.get("run_name") or make_run_name(choices, _task_overrides(), cfg.get("seed")) or None
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("tracking", None)
    params.pop("cache", None)  # where work is reused changes no result (and no config hash)
    tags = {f"mltc.{k}": v for k, v in choices.items()}
    tags["mltc.seed"] = cfg.seed
    tags["mltc.config_hash"] = config_hash(params)
    tags.update(process_tags())  # so a run left RUNNING by a killed process can be found and marked KILLED
    tags.update(extra_tags or {})  # e.g. what `mltc promote` records about the run's origin
    if sweep:
        job_num = _job_num()
        tags.update({"mltc.sweep_id": sweep["sweep_id"], "mltc.job_num": job_num,
                     "mltc.blas_threads": os.environ.get("OMP_NUM_THREADS", "")})
        log.info("[mltc] %s", progress(sweep, job_num))
        done = tracker.find_finished(experiment, tags["mltc.config_hash"]) if tracker.resume else None
        if done is not None:
            record_skip(sweep, tags["mltc.config_hash"])
            link_reused(tracker, done, sweep)
            getattr(tracker, "close", lambda: None)()
            log.info("[mltc] skipped: this configuration already has a FINISHED run (%s); tracking.resume=false "
                     "reruns it", done.info.run_id)
            return float(done.data.metrics.get(objective_name(cfg), math.nan))
    logs_artifacts = getattr(tracker, "logs_artifacts", True)

    def start():
        # imports first: with a tracking process, start() waits while the child opens the store
        warm_up(plotting=logs_artifacts and not isinstance(tracker, TrackerProcess))
        tracker.start(experiment=experiment, run_name=run_name, tags=tags, params=params,
                      parent_run_id=sweep["run_id"] if sweep else None)
        if wants_model(tracker, in_sweep=sweep is not None) and hasattr(tracker, "warm_up_model_logging"):
            # MLflow's package scan and the components' imports, beside the fit instead of after it
            tracker.warm_up_model_logging(target_modules(*(params.get(g) for g in GROUPS)))

    background = _Background(start)
    logs_model = wants_model(tracker, in_sweep=sweep is not None)  # tracking.log_model
    model_info = {**tags, "run_name": run_name}
    model_logging = None

    def on_fitted(fitted, dataset, test_index):
        # pickled here, where nothing else touches the fitted objects; the tracking process logs it (MLflow's
        # files, its serving-input check) while this process scores and evaluates the test split
        nonlocal model_logging
        try:
            log_to = save_model(TextClassifierModel.from_fitted(fitted, dataset.label_names, info=model_info),
                                dataset.texts, test_index)
        except Exception as err:  # noqa: BLE001 -- raised where the model is awaited, after the metrics are logged
            def log_to(_tracker, err=err):
                raise err
        model_logging = _Background(lambda: log_to(tracker) if background.join() else {})
        model_logging.launch()

    try:
        dataset, result = run_config(cfg, on_stage=background.on_stage,
                                     on_fitted=on_fitted if logs_model and isinstance(tracker, TrackerProcess)
                                     else None)
        background.wait()
        metrics = {**result.metrics, **{f"{VAL}{k}": v for k, v in result.val_metrics.items()},
                   **{f"{TIME}{k}": v for k, v in result.timings.items()}, **result.sizes,
                   **{f"{THRESHOLD}{k}": v for k, v in result.threshold_summary.items()},
                   **{f"{part}_{k}": v for part, prof in result.profiles.items() for k, v in prof.items()
                      if k != "per_label"},
                   **details_metrics(result.details),
                   "time_tracking_wait": background.waited}
        files = result_artifacts(result, OmegaConf.to_yaml(cfg, resolve=True))
        if all(k in result.extra for k in ("test_index", "test_pred", "test_scores")):
            # per-document test predictions: what paired bootstrap comparisons in `mltc compare` need
            files["predictions.npz"] = _write_predictions(result, dataset.Y)
            from mltc.predictions import writers

            files.update(writers(dataset, result))  # the same, readable: ids, label names, scores
        # first, so that a run whose model or files fail to log keeps its metrics
        tracker.log_metrics(metrics)
        if logs_model and model_logging is None:  # an in-process tracker: here, one call after the other
            tracker.log_metrics(log_fitted_model(tracker, result, dataset.texts, info=model_info))
        tracker.log_artifacts(files)
        if model_logging is not None:
            model_logging.wait()
            tracker.log_metrics(model_logging.value)  # model_log_seconds, model_size_mb
        objective = objective_name(cfg)
        if objective not in result.metrics:
            raise ConfigError(f"metrics.objective={objective!r} is not a computed metric; choose one of "
                              f"{', '.join(sorted(result.metrics))}.")
        print_results(result, [*(cfg.metrics.get("show") or []), *extra_metrics(cfg)],
                      title=f"{dataset.description or dataset.name}", run_id=tracker.run_id,
                      store=tracking_uri(getattr(tracker, "uri", None)) if tracker.run_id else None)
        tracker.end("FINISHED")
        return float(result.metrics[objective])
    except BaseException as err:  # noqa: BLE001 -- every failure is recorded, then re-raised or reported
        message = explain(err, cfg)
        if model_logging is not None:
            model_logging.join()  # its call to the tracker ends before the run does
        try:
            background.wait()  # the run must exist to be marked FAILED
        except BaseException as start_err:  # noqa: BLE001 -- the tracker itself failed: say so
            if start_err is not err:
                log.error("the tracker could not start: %s", explain(start_err, cfg))
        tracker.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED", error=message)
        tracked = getattr(tracker, "run_id", None) is not None  # else no run exists to say FAILED in
        if raise_errors or isinstance(err, KeyboardInterrupt):
            if isinstance(err, Exception) and not isinstance(err, ConfigError):
                log.debug("full traceback", exc_info=err)
                raise RunFailed(message, tracked=tracked) from err
            err.tracked = tracked  # read by the final message (app.main, the CLI's interrupt line)
            raise
        log.error("run failed (%s, the sweep goes on): %s",
                  "marked FAILED in MLflow" if tracked else "no run was recorded", message)
        return math.nan
    finally:
        if sweep:
            record_end(sweep, job_num)


class RunFailed(RuntimeError):
    """A run that failed; the message is meant for users. ``tracked``: a FAILED run exists in the tracker."""

    def __init__(self, message, tracked=False):
        super().__init__(message)
        self.tracked = tracked


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """``mltc run``: one run, or one job of a sweep."""
    try:
        return run_from_config(cfg)
    except (RunFailed, ConfigError) as err:
        log.error("%s", err)
        if getattr(err, "tracked", False):
            log.error("the run is marked FAILED in the tracker; fix the cause above and run again.")
        else:
            log.error("no run was recorded in the tracker; fix the cause above and run again.")
        raise SystemExit(1) from None
