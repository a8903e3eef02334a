"""Cross-validation utilities shared by stacks, threshold rules and the pipeline.

:func:`oof_scores` scores every training document with a model that never saw it (multi-label
stratified k-fold), for thresholds tuned without a validation split and for stacks' meta-learners.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _num_samples

from mltc.progress import track

__all__ = ["oof_folds", "oof_scores"]


def oof_scores(model, X, Y, *, n_splits=5, random_state=None, fit_params=None, score_fn, n_jobs=None):
    """Out-of-fold scores of ``model`` on its training data, for thresholds without a validation split.

    Each document is scored once, by a clone of ``model`` fitted on the other folds of a
    multi-label stratified k-fold (Sechidis et al. 2011, via ``iterative-stratification``).

    Parameters
    ----------
    model : estimator
        Unfitted multi-label model; cloned per fold. A resampling strategy belongs inside it
        (a model that resamples its own training data), so that synthetic documents are
        built from one fold's training part only.
    X : array-like or sparse matrix of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_labels)
    n_splits : int, default=5
    random_state : int, RandomState instance or None
        Seeds the fold assignment.
    fit_params : dict, optional
        Keyword arguments for ``model.fit``; arrays with one entry per sample (e.g.
        ``sample_weight``) are split with the folds.
    score_fn : callable
        ``score_fn(fitted_model, X) -> (scores, kind)``, e.g. :func:`mltc.models.scores.predict_scores`.
    n_jobs : int, optional
        Folds fitted in parallel (joblib); None is one at a time.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_labels)
    """
    Y = np.asarray(Y)
    n = _num_samples(X)
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"Y must be a (n_samples, n_labels) matrix matching X's {n} rows; got shape {Y.shape}.")
    if not isinstance(n_splits, Integral) or n_splits < 2 or n_splits > n:
        raise ValueError(f"n_splits must be an integer between 2 and the number of documents ({n}); "
                         f"got {n_splits!r}.")
    fit_params = dict(fit_params or {})
    out = np.full(Y.shape, np.nan)
    kinds = set()

    def fold(train_idx, test_idx):
        params = {k: (_safe_indexing(v, train_idx) if _is_per_sample(v, n) else v) for k, v in fit_params.items()}
        fitted = clone(model).fit(_safe_indexing(X, train_idx), Y[train_idx], **params)
        return score_fn(fitted, _safe_indexing(X, test_idx))

    folds = oof_folds(Y, n_splits=n_splits, random_state=random_state)
    results = Parallel(n_jobs=n_jobs)(delayed(fold)(tr, te) for tr, te in track(folds, "out-of-fold folds"))
    for (_, test_idx), (s, kind) in zip(folds, results):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (test_idx.size, Y.shape[1]):
            raise ValueError(f"score_fn returned shape {s.shape} for a fold of {test_idx.size} documents and "
                             f"{Y.shape[1]} labels; it must return one column per label.")
        kinds.add(kind)
        out[test_idx] = s
    if len(kinds) > 1:
        raise ValueError(f"The folds gave different score kinds {sorted(kinds)}; the model must score consistently.")
    return out


def oof_folds(Y, *, n_splits=5, random_state=None):
    """The (train, test) row indices of :func:`oof_scores`' folds: multi-label stratified k-fold of ``Y``.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_labels)
    n_splits : int, default=5
    random_state : int, RandomState instance or None
        Seeds the fold assignment; the same seed gives the same folds.

    Returns
    -------
    list of (ndarray, ndarray)
        One (train, test) pair per fold; every row is in exactly one test part.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.asarray(Y)
    rng = check_random_state(random_state)
    if Y.shape[1] == 1:
        # iterative stratification needs two labels or more; one label is ordinary stratification
        from sklearn.model_selection import StratifiedKFold

        cv, target = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=rng), Y[:, 0]
    else:
        cv, target = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=rng), Y
    return list(cv.split(np.zeros((Y.shape[0], 1)), target))


def _is_per_sample(v, n) -> bool:
    return hasattr(v, "shape") and getattr(v, "ndim", 0) >= 1 and v.shape[0] == n or (
        isinstance(v, (list, tuple)) and len(v) == n)
