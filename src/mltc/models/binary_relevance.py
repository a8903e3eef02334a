"""Binary relevance: one independent binary classifier per label."""
from __future__ import annotations

import contextlib
import inspect
import logging

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from scipy.special import expit
from threadpoolctl import ThreadpoolController
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from numbers import Integral

log = logging.getLogger(__name__)

__all__ = ["BinaryRelevance", "accepts_sample_weight", "blas_limit"]


def accepts_sample_weight(estimator) -> bool:
    """Whether ``estimator.fit`` takes a ``sample_weight`` argument."""
    fit = getattr(estimator, "fit", None)
    if fit is None:
        return False
    try:
        return "sample_weight" in inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False


def _uses_liblinear(estimator) -> bool:
    from sklearn.svm import LinearSVC, LinearSVR

    if isinstance(estimator, (LinearSVC, LinearSVR)) or getattr(estimator, "solver", None) == "liblinear":
        return True
    inner = getattr(estimator, "estimator", None)  # e.g. CalibratedClassifierCV(LinearSVC())
    return inner is not None and inner is not estimator and _uses_liblinear(inner)


def blas_limit(estimator):
    """One BLAS thread while ``estimator`` fits, if liblinear fits it; otherwise no change.

    liblinear calls level-1 BLAS (dot, axpy) on vectors of n_features thousands of
    times; OpenBLAS splits each call over its threads, which gains nothing and stalls
    every call whenever another process holds a core. On GoEmotions (28 labels, 58k
    TF-IDF features, 2 cores) the fit took the same time with one thread on an idle
    machine, and 18 s instead of 68 s beside one other busy process.
    """
    global _controller
    if _uses_liblinear(estimator):
        if _controller is None:
            # looking the libraries up costs ~4 ms; once per process, not once per label
            _controller = ThreadpoolController()
        return _controller.limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


_controller = None


class _Constant:
    """Stands in for a label that is constant in training (all 0 or all 1)."""

    def __init__(self, value: float):
        self.value = float(value)

    def predict_proba(self, X):
        n = X.shape[0]
        return np.column_stack([np.full(n, 1 - self.value), np.full(n, self.value)])

    def decision_function(self, X):
        return np.full(X.shape[0], 1.0 if self.value else -1.0)


def _fit_one(estimator, X, y, sample_weight, label_kwargs):
    if y.min() == y.max():
        return _Constant(y[0])
    est = clone(estimator)
    if label_kwargs:
        est.set_params(**label_kwargs)
    with blas_limit(est):
        if sample_weight is not None:
            est.fit(X, y, sample_weight=sample_weight)
        else:
            est.fit(X, y)
    return est


def _fit_labels(estimator, X, Y, labels, sample_weight, label_kwargs):
    """Fit ``estimator`` on each label of ``labels`` (one task of a parallel fit)."""
    return [_fit_one(estimator, X, np.ascontiguousarray(Y[:, j]), sample_weight, label_kwargs[j]) for j in labels]


# below this many stored feature values x labels, starting worker processes (seconds on a busy
# machine) costs more than fitting the labels one after another (GoEmotions: 1.1M x 28 = 3e7)
_MIN_PARALLEL_WORK = 1e8


def _work(X) -> float:
    return float(X.nnz if sp.issparse(X) else np.prod(np.shape(X)))


# linear models whose binary scores are X @ coef_.T + intercept_ (probabilities: its logistic)
_LINEAR_SCORES = {"sklearn.linear_model._logistic.LogisticRegression": "proba",
                  "sklearn.svm._classes.LinearSVC": "margin"}
_BLOCK_VALUES = 8_000_000  # coefficients per block of labels scored at once (64 MB)


def _linear_kind(est):
    t = type(est)
    kind = _LINEAR_SCORES.get(f"{t.__module__}.{t.__qualname__}")
    if kind is None or getattr(est, "coef_", None) is None or est.coef_.shape[0] != 1 or len(est.classes_) != 2:
        return None
    return kind if isinstance(est.coef_, np.ndarray) else None


class BinaryRelevance(ClassifierMixin, BaseEstimator):
    """One clone of ``estimator`` per label (one-vs-rest for multi-label data).

    Unlike scikit-learn's ``OneVsRestClassifier`` it passes ``sample_weight`` to
    every label's fit, accepts per-label parameters (e.g. ``scale_pos_weight``
    for boosted trees) and keeps labels that are constant in training as
    constant predictors.

    Parameters
    ----------
    estimator : estimator
        A binary classifier with ``predict_proba`` or ``decision_function``.
    per_label_params : dict of str to array-like, optional
        Parameter name -> one value per label, set on that label's clone.
    n_jobs : int, default=1
        Processes fitting labels in parallel (joblib; None: ``joblib.parallel_config``'s, else 1),
        used when the data's stored values times the labels reach 1e8 (smaller fits are done before
        the processes would have started). The fitted models are the same for any value: every
        label is fitted alone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.], [1.], [2.], [3.]]); Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> BinaryRelevance(estimator=LogisticRegression()).fit(X, Y).predict(X).shape
    (4, 2)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "per_label_params": [dict, None],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
    }

    def __init__(self, estimator=None, *, per_label_params=None, n_jobs=1):
        self.estimator = estimator
        self.per_label_params = per_label_params
        self.n_jobs = n_jobs

    def fit(self, X, Y, sample_weight=None):
        """Fit one classifier per label column of ``Y``."""
        self._validate_params()
        Y = np.asarray(Y)
        if Y.ndim != 2:
            raise ValueError(f"BinaryRelevance needs a 2-D label matrix, got shape {Y.shape}.")
        if sample_weight is not None and not accepts_sample_weight(self.estimator):
            raise TypeError(f"{type(self.estimator).__name__}.fit does not accept sample_weight; choose a "
                            "strategy that resamples instead of weighting, or another model.")
        L = Y.shape[1]
        per = self.per_label_params or {}
        for k, v in per.items():
            if len(v) != L:
                raise ValueError(f"per_label_params[{k!r}] has {len(v)} values for {L} labels.")
        kwargs = [{k: v[j] for k, v in per.items()} for j in range(L)]
        n_jobs = effective_n_jobs(self.n_jobs)
        if n_jobs == 1 or L < 2 or _work(X) * L < _MIN_PARALLEL_WORK:
            self.estimators_ = [_fit_one(self.estimator, X, np.ascontiguousarray(Y[:, j]), sample_weight, kwargs[j])
                                for j in range(L)]
        else:
            # a few interleaved label sets per process: one transfer of X per task, and frequent
            # (slow) labels spread over all processes
            if sp.issparse(X) and X.format == "csr" and not X.has_sorted_indices:
                # the workers get X read-only (memory-mapped); liblinear would sort it in place there,
                # as it does here when fitting in this process
                X.sort_indices()
            n_tasks = min(L, 4 * n_jobs)
            tasks = [list(range(t, L, n_tasks)) for t in range(n_tasks)]
            done = Parallel(n_jobs=n_jobs)(delayed(_fit_labels)(self.estimator, X, Y, labels, sample_weight, kwargs)
                                           for labels in tasks)
            self.estimators_ = [None] * L
            for labels, fitted in zip(tasks, done):
                for j, est in zip(labels, fitted):
                    self.estimators_[j] = est
        self.n_labels_ = L
        self.score_kind_ = "proba" if hasattr(self.estimator, "predict_proba") else "margin"
        return self

    def predict_proba(self, X):
        """(n_samples, n_labels) positive-class probabilities."""
        if not hasattr(self.estimator, "predict_proba"):
            raise AttributeError(f"{type(self.estimator).__name__} has no predict_proba; use decision_function.")
        fast = self._linear_scores(X, "proba")
        if fast is not None:
            return fast
        return np.column_stack([e.predict_proba(X)[:, -1] for e in self.estimators_])

    def decision_function(self, X):
        """(n_samples, n_labels) margins (for estimators without probabilities)."""
        fast = self._linear_scores(X, "margin")
        if fast is not None:
            return fast
        return np.column_stack([np.ravel(e.decision_function(X)) for e in self.estimators_])

    def _linear_scores(self, X, want):
        """All labels' scores from blocks of stacked coefficients, or None where that does not apply.

        Linear members (logistic regression, linear SVM) on sparse float64 input: one sparse x dense
        product per block of labels instead of one validated product per label (4,000 labels: 13 s
        -> under 1 s). The same numbers as the per-label loop: scipy sums every output cell over the
        row's stored entries in the same order for one column or many.
        """
        if not (sp.issparse(X) and X.format == "csr" and X.dtype == np.float64):
            return None
        kinds = {_linear_kind(e) for e in self.estimators_ if not isinstance(e, _Constant)}
        if len(kinds) != 1 or None in kinds or (want == "proba" and kinds != {"proba"}):
            return None
        lin = [j for j, e in enumerate(self.estimators_) if not isinstance(e, _Constant)]
        n_features = self.estimators_[lin[0]].coef_.shape[1]
        if X.shape[1] != n_features:
            return None  # the per-label path raises scikit-learn's error
        out = np.empty((X.shape[0], len(self.estimators_)))
        for j, e in enumerate(self.estimators_):
            if isinstance(e, _Constant):
                out[:, j] = e.predict_proba(X[:1])[0, 1] if want == "proba" else e.decision_function(X[:1])[0]
        block = max(1, _BLOCK_VALUES // max(n_features, 1))
        for start in range(0, len(lin), block):
            cols = lin[start:start + block]
            W = np.empty((n_features, len(cols)))
            for i, j in enumerate(cols):
                W[:, i] = self.estimators_[j].coef_[0]
            b = np.array([self.estimators_[j].intercept_[0] for j in cols])
            S = X @ W + b
            out[:, cols] = expit(S) if want == "proba" else S
        return out

    def predict(self, X):
        """Labels at the default cut (0.5 on probabilities, 0 on margins)."""
        if self.score_kind_ == "proba":
            return (self.predict_proba(X) >= 0.5).astype(np.int8)
        return (self.decision_function(X) > 0).astype(np.int8)
