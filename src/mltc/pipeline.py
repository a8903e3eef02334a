"""One run, as one straight line of plain objects.

    load -> split (indices) -> augment texts (train only) -> featurize (fit on train)
         -> strategy.fit_resample (train only) -> model.fit -> thresholds (validation or
         out-of-fold scores) -> predict test -> metrics

No Hydra, no MLflow here: the CLI builds the objects, calls :func:`run_pipeline` and
logs the :class:`RunResult`.
"""
from __future__ import annotations

import inspect
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from mltc.data.base import DataError, Dataset
from mltc.features import feature_blocks
from mltc.imbalance import imbalance_profile, label_counts
from mltc.metrics import evaluate
from mltc.models.binary_relevance import accepts_sample_weight
from mltc.models.scores import predict_scores, score_kind
from mltc.split import duplicate_texts
from mltc.strategies.none import NoStrategy

log = logging.getLogger(__name__)

__all__ = ["RunResult", "run_pipeline", "ResampledModel"]


@dataclass
class RunResult:
    """Everything a run produced, ready to print or log."""

    metrics: dict
    val_metrics: dict
    per_label: pd.DataFrame
    profiles: dict
    thresholds: np.ndarray | None
    threshold_summary: dict
    timings: dict
    sizes: dict
    label_names: list
    dataset_description: str = ""
    extra: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    #: the fitted featurizer, model and decision rule (``featurizer``, ``model``, ``thresholds``), for
    #: :class:`mltc.serving.TextClassifierModel`
    fitted: dict = field(default_factory=dict)


class ResampledModel(BaseEstimator):
    """A strategy followed by a model, as one estimator (used for out-of-fold scores).

    Parameters
    ----------
    strategy : object with ``fit_resample``
    model : multi-label estimator
    """

    def __init__(self, strategy=None, model=None):
        self.strategy = strategy
        self.model = model

    def fit(self, X, Y, feature_blocks=None, resample_params=None):
        """Resample ``(X, Y)`` with the strategy, then fit the model.

        ``resample_params`` (a dict such as ``{"X_unlabeled": ...}``) goes to every
        ``fit_resample`` as is: a dict, so that out-of-fold fitting never slices it by rows.
        """
        strategy = self.strategy if self.strategy is not None else NoStrategy()
        self.model_ = _fit_model(self.model, *_resample(strategy, X, Y, **(resample_params or {})),
                                 feature_blocks=feature_blocks)
        self.score_kind_ = score_kind(self.model_)
        return self

    def predict_proba(self, X):
        return predict_scores(self.model_, X)[0]

    def decision_function(self, X):
        return predict_scores(self.model_, X)[0]


def _resample(strategy, X, Y, **params):
    out = strategy.fit_resample(X, Y, **params)
    if len(out) == 3:
        return out
    X2, Y2 = out
    return X2, Y2, None


def _fit_model(model, X, Y, sample_weight, feature_blocks=None):
    # a model that picks feature blocks by name (ScoreAverage columns) learns where they are from the featurizer
    kw = {"feature_blocks": feature_blocks} if feature_blocks and _takes(model.fit, "feature_blocks") else {}
    if sample_weight is not None:
        if not accepts_sample_weight(model):
            raise TypeError(f"the strategy produced sample weights but {type(model).__name__}.fit does not accept "
                            "sample_weight; pick a resampling strategy or a model that takes weights.")
        return model.fit(X, Y, sample_weight=sample_weight, **kw)
    return model.fit(X, Y, **kw)


def _takes(fn, name) -> bool:
    return name in inspect.signature(fn).parameters


class _Timer(dict):
    def __init__(self, on_stage=None):
        super().__init__()
        self.on_stage = on_stage

    @contextmanager
    def __call__(self, name):
        t = time.perf_counter()
        log.info("%s ...", name)
        if self.on_stage is not None:
            self.on_stage(name)
        yield
        self[name] = self.get(name, 0.0) + time.perf_counter() - t


def _sklearn_only(obj) -> bool:
    """Whether ``obj`` is a scikit-learn transformer, or a Pipeline / FeatureUnion made only of them."""
    parts = getattr(obj, "transformer_list", None) or getattr(obj, "steps", None)
    if parts is not None and type(obj).__module__.startswith("sklearn."):
        return all(_sklearn_only(step) for _, step in parts if step not in (None, "drop", "passthrough"))
    return type(obj).__module__.startswith("sklearn.")


def _transform_held_out(featurizer, parts, background: bool) -> Future:
    """Transform the validation and test texts; in a background thread if ``background``.

    Only for scikit-learn featurizers: their ``transform`` is read-only once fitted and
    mostly Python, so it runs beside a fit that spends its time in compiled code without
    the GIL (liblinear, LightGBM, XGBoost). Other featurizers (encoders with their own
    thread pools, caches) transform here, in order. The result is the same either way:
    ``([X per part], seconds)``.
    """
    def transform():
        t = time.perf_counter()
        return [featurizer.transform(texts) if len(texts) else None for texts in parts], time.perf_counter() - t

    if not background:
        done = Future()
        done.set_result(transform())
        return done
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mltc-featurize")
    try:
        return executor.submit(transform)
    finally:
        executor.shutdown(wait=False)


def _cached_features(cache, featurizer, dataset, texts_tr, Y_tr, va, te, unlabeled):
    """``(key, entry)`` of ``cache`` for this featurization; ``(None, None)`` without a cache."""
    if cache is None:
        return None, None
    key = cache.key(featurizer, train=texts_tr, val=_take(dataset.texts, va), test=_take(dataset.texts, te),
                    unlabeled=None if unlabeled is None else list(unlabeled), Y_train=Y_tr)
    return key, cache.load(key)


def _cache_entry(featurizer, X_tr, X_va, X_te, X_unl):
    from mltc.feature_cache import CachedFeatures

    return CachedFeatures(featurizer=featurizer, X_train=X_tr, X_val=X_va, X_test=X_te, X_unlabeled=X_unl)


def _take(texts, idx):
    return [texts[i] for i in idx]


def _summary(obj):
    """A component's ``summary_`` (a dict), looking inside wrappers (``ResampledModel``, meta-estimators)."""
    s = getattr(obj, "summary_", None)
    if isinstance(s, dict):
        return s
    for attr in ("model_", "strategy", "model", "estimator_", "estimator"):
        inner = getattr(obj, attr, None)
        if inner is not None and inner is not obj:
            s = getattr(inner, "summary_", None)
            if isinstance(s, dict):
                return s
    return None


def collect_details(**components) -> dict:
    """``{component: summary_}`` for the components that expose a ``summary_`` dict after fitting."""
    found = {name: _summary(obj) for name, obj in components.items() if obj is not None}
    return {name: s for name, s in found.items() if s is not None}


def run_pipeline(dataset: Dataset, *, splitter, featurizer, model, strategy=None, thresholder=None,
                 augmenter=None, head_min=None, tail_max=None, random_state=None, on_stage=None,
                 background_transform=True, extra_metrics=None, feature_cache=None, on_fitted=None) -> RunResult:
    """Run one experiment end to end on plain objects.

    Parameters
    ----------
    dataset : Dataset
    splitter : object with ``split(dataset) -> {"train", "val", "test"}``
    featurizer : transformer with ``fit_transform(texts)`` / ``transform(texts)``
        Fitted on the (augmented) training texts only. A model that consumes raw
        texts uses a pass-through featurizer.
    model : multi-label estimator (``fit(X, Y[, sample_weight])``)
    strategy : object with ``fit_resample(X, Y)``, optional
        Applied to training features only; may return sample weights.
    thresholder : threshold strategy (``fit(scores, Y, score_kind=, Y_train=)``, ``predict``)
        Tuned on validation scores, or on out-of-fold training scores when it
        declares ``needs_oof``. Default: the fixed cut.
    augmenter : object with ``fit_resample_texts(texts, Y)``, optional
        Text augmentation applied to training texts before featurization.
    head_min, tail_max : int, optional
        Training-frequency cut-offs of the head / tail label groups.
    random_state : int, optional
        Seed for the out-of-fold folds.
    on_stage : callable, optional
        Called with each stage's name (``"split"``, ``"featurize"``, ``"fit"``, ...) as it
        starts; the CLI uses it to do its tracking work while the model fits.
    background_transform : bool, default=True
        Transform the validation and test texts in a background thread while the model
        fits (scikit-learn featurizers only); False does it before fitting.
    extra_metrics : dict, optional
        ``{name: metric}`` from :func:`mltc.metrics.resolve_metrics`, computed on test and
        validation beside the built-in metrics.
    feature_cache : mltc.feature_cache.FeatureCache, optional
        Reuse the fitted featurizer and feature matrices of an earlier run on the same
        texts with the same featurizer parameters (e.g. another job of a sweep).
    on_fitted : callable, optional
        Called as ``on_fitted(fitted, test_index)`` once the decision rule is tuned, before the
        test split is scored: ``fitted`` is the ``RunResult.fitted`` dict (featurizer, model,
        thresholds; read-only from here on). The CLI logs the model there, beside the scoring.

    Notes
    -----
    ``dataset.unlabeled_texts`` (if any) are featurized with the featurizer fitted on
    the training texts and handed to a strategy whose ``fit_resample`` takes ``X_unlabeled``
    (self-training); they never fit the featurizer and never count as training rows.
    """
    timer = _Timer(on_stage)
    strategy = strategy if strategy is not None else NoStrategy()
    if thresholder is None:
        from mltc.thresholds import FixedThreshold
        thresholder = FixedThreshold()

    with timer("split"):
        parts = splitter.split(dataset)
        # exact copies of training texts in test / validation: warned about, and logged as sizes
        duplicates = duplicate_texts(dataset.texts, parts)
    tr, va, te = parts["train"], parts["val"], parts["test"]
    needs_oof = bool(getattr(thresholder, "needs_oof", False))
    needs_val = not needs_oof and getattr(thresholder, "needs_validation", True)
    if needs_val and len(va) == 0:
        raise DataError(f"thresholds={type(thresholder).__name__} is tuned on validation data but the split has "
                        "no validation part; set split.val_size > 0 or use thresholds=fixed / per_label_cv.")
    Y_tr, Y_va, Y_te = dataset.Y[tr], dataset.Y[va], dataset.Y[te]
    texts_tr = _take(dataset.texts, tr)
    profiles = {"train": imbalance_profile(Y_tr, dataset.label_names),
                "test": imbalance_profile(Y_te, dataset.label_names)}

    if augmenter is not None:
        with timer("augment"):
            texts_tr, Y_tr_aug = augmenter.fit_resample_texts(texts_tr, Y_tr)
    else:
        Y_tr_aug = Y_tr
    unlabeled = getattr(dataset, "unlabeled_texts", None)
    if unlabeled is not None and not _takes(strategy.fit_resample, "X_unlabeled"):
        raise DataError(f"dataset.unlabeled_path gave {len(unlabeled)} unlabeled texts, but strategy "
                        f"{type(strategy).__name__} does not use unlabeled data; use strategy=pseudo_label or "
                        "remove dataset.unlabeled_path.")
    with timer("featurize"):
        cache_key, cached = _cached_features(feature_cache, featurizer, dataset, texts_tr, Y_tr_aug, va, te, unlabeled)
        if cached is not None:
            # the caller's featurizer ends up fitted, as without the cache
            vars(featurizer).update(vars(cached.featurizer))
            X_tr, X_unl = cached.X_train, cached.X_unlabeled
            held_out = Future()
            held_out.set_result(([cached.X_val, cached.X_test], 0.0))
        else:
            X_tr = featurizer.fit_transform(texts_tr)
            # transform only: the vocabulary and idf come from the training texts
            X_unl = featurizer.transform(list(unlabeled)) if unlabeled is not None else None
            held_out = _transform_held_out(featurizer, [_take(dataset.texts, va), _take(dataset.texts, te)],
                                           background=background_transform and _sklearn_only(featurizer))
            if cache_key is not None:
                # stored before anything downstream can touch the matrices in place
                feature_cache.store(cache_key, _cache_entry(featurizer, X_tr, *held_out.result()[0], X_unl))

    # unlabeled rows are data: a fit_resample argument, never a strategy parameter
    resample_params = {"X_unlabeled": X_unl} if X_unl is not None else {}
    with timer("resample"):
        X_fit, Y_fit, w_fit = _resample(strategy, X_tr, Y_tr_aug, **resample_params)
    if X_fit.shape[0] != Y_fit.shape[0]:
        raise ValueError(f"{type(strategy).__name__} returned {X_fit.shape[0]} feature rows but "
                         f"{Y_fit.shape[0]} label rows.")
    profiles["train_resampled"] = imbalance_profile(Y_fit, dataset.label_names)

    with timer("fit"):
        fitted = _fit_model(model, X_fit, Y_fit, w_fit, feature_blocks=feature_blocks(featurizer))

    t_wait = time.perf_counter()
    (X_va, X_te), _ = held_out.result()
    # only the wait counts as featurizing: a transform done inside timer("featurize") is already counted,
    # and one run in the background beside the fit is inside the fit's time (stages add up to wall time)
    timer["featurize"] += time.perf_counter() - t_wait
    with timer("thresholds"):
        if needs_oof:
            from mltc.model_selection import oof_scores
            # out-of-fold scores on the training rows, with the strategy applied inside each fold
            tune_scores = oof_scores(ResampledModel(strategy=clone(strategy), model=clone(model)), X_tr, Y_tr_aug,
                                     n_splits=thresholder.n_splits, random_state=random_state,
                                     fit_params={"feature_blocks": feature_blocks(featurizer),
                                                 "resample_params": resample_params},
                                     score_fn=predict_scores)
            tune_Y = Y_tr_aug
            kind = predict_scores(fitted, X_te[:1])[1]
        elif len(va):
            tune_scores, kind = predict_scores(fitted, X_va)
            tune_Y = Y_va
        else:
            tune_scores, kind = None, predict_scores(fitted, X_te[:1])[1]
            tune_Y = None
        if tune_scores is not None:
            thresholder.fit(tune_scores, tune_Y, score_kind=kind, Y_train=Y_tr)
        else:
            thresholder.fit(np.zeros((0, dataset.n_labels)), np.zeros((0, dataset.n_labels), dtype=np.int8),
                            score_kind=kind, Y_train=Y_tr)

    fitted_objects = {"featurizer": featurizer, "model": fitted, "thresholds": thresholder}
    if on_fitted is not None:
        on_fitted(fitted_objects, te)
    with timer("predict"):
        S_te, _ = predict_scores(fitted, X_te)
        P_te = thresholder.predict(S_te)

    train_counts = label_counts(Y_tr)
    with timer("evaluate"):
        metrics, report = evaluate(Y_te, P_te, S_te, train_counts=train_counts, head_min=head_min,
                                   tail_max=tail_max, label_names=dataset.label_names, extra=extra_metrics)
        val_metrics, val_out = {}, {}
        if len(va) and not needs_oof:
            S_va = tune_scores
            P_va = thresholder.predict(S_va)
            val_metrics, _ = evaluate(Y_va, P_va, S_va, train_counts=train_counts,
                                      head_min=head_min, tail_max=tail_max, extra=extra_metrics)
            val_out = {"val_index": va, "val_pred": P_va, "val_scores": S_va}
    thr = getattr(thresholder, "thresholds_", None)
    if thr is not None:
        report["threshold"] = np.broadcast_to(np.asarray(thr, dtype=float), (dataset.n_labels,))
    summary = getattr(thresholder, "summary_", None) or {}
    summary = summary() if callable(summary) else summary  # a rule written before summary_ was an attribute
    return RunResult(metrics=metrics, val_metrics=val_metrics, per_label=report, profiles=profiles,
                     thresholds=None if thr is None else np.asarray(thr, dtype=float), threshold_summary=summary,
                     timings=dict(timer), label_names=list(dataset.label_names),
                     sizes={"n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te)),
                            "n_train_fit": int(X_fit.shape[0]), "n_features": int(X_tr.shape[1]),
                            "n_labels": int(dataset.n_labels),
                            **({"n_unlabeled": len(unlabeled)} if unlabeled is not None else {}), **duplicates},
                     dataset_description=dataset.description,
                     # per-document test output, for paired bootstrap comparisons between runs
                     extra={"test_index": te, "test_pred": P_te, "test_scores": S_te, **val_out},
                     # the thresholder's summary_ is logged as threshold_* (threshold_summary)
                     details=collect_details(strategy=strategy, model=fitted, augment=augmenter),
                     fitted=fitted_objects)
