"""Binary relevance: one independent binary classifier per label."""
from __future__ import annotations

import contextlib
import logging

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from threadpoolctl import ThreadpoolController
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from numbers import Integral

from mltc.models.base import BaseMultilabelClassifier, accepts_sample_weight
from mltc.progress import track
from mltc.runtime import job_cores

log = logging.getLogger(__name__)

__all__ = ["BinaryRelevance", "accepts_sample_weight", "blas_limit"]


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


def _threadable(estimator) -> bool:
    """Whether labels of ``estimator`` can be fitted in threads with the same models as one after another.

    liblinear's solver runs without the GIL (``with nogil`` in scikit-learn's ``_liblinear.pyx``),
    but its dual and L1 solvers shuffle with one random generator shared by the process, which
    concurrent fits would interleave. Its primal L2 solvers (trust-region Newton: logistic
    regression with ``dual=False``, L2 penalty; ``LinearSVC(dual=False)``) draw nothing.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    p = estimator.get_params(deep=False)
    if type(estimator) is LogisticRegression:
        l2 = p.get("penalty") == "l2" or (p.get("penalty") in ("deprecated", None) and not p.get("l1_ratio"))
        return p["solver"] == "liblinear" and p["dual"] is False and l2
    if type(estimator) is LinearSVC:
        return p["dual"] is False and p["penalty"] == "l2"
    return False


def _fit_one(estimator, X, y, sample_weight, label_kwargs, limit_blas=True):
    if y.min() == y.max():
        return _Constant(y[0])
    est = clone(estimator)
    if label_kwargs:
        est.set_params(**label_kwargs)
    with blas_limit(est) if limit_blas else contextlib.nullcontext():
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


class BinaryRelevance(BaseMultilabelClassifier):
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
        Labels fitted in parallel (-1: the cores this process may use, ``OMP_NUM_THREADS`` where a
        launcher set it; None: ``joblib.parallel_config``'s, else 1). liblinear's primal L2 solvers
        (``LogisticRegression(solver="liblinear")``, ``LinearSVC(dual=False)``) fit in threads, which
        share X; other estimators in processes (joblib), used when the data's stored values times the
        labels reach 1e8 (smaller fits are done before the processes would have started). The fitted
        models are the same for any value: every label is fitted alone.

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
        Y = self._validate_fit_input(X, Y, sample_weight)
        L = Y.shape[1]
        per = self.per_label_params or {}
        for k, v in per.items():
            if len(v) != L:
                raise ValueError(f"per_label_params[{k!r}] has {len(v)} values for {L} labels.")
        kwargs = [{k: v[j] for k, v in per.items()} for j in range(L)]
        n_jobs = job_cores() if self.n_jobs == -1 else effective_n_jobs(self.n_jobs)
        if sp.issparse(X) and X.format == "csr" and not X.has_sorted_indices and (n_jobs > 1 and L > 1):
            # liblinear sorts X's indices in place: not beside other threads, and not in workers
            # that get X read-only (memory-mapped)
            X.sort_indices()
        if n_jobs > 1 and L > 1 and not per and _threadable(self.estimator):
            self.estimators_ = self._fit_threads(X, Y, sample_weight, kwargs, n_jobs)
        elif n_jobs == 1 or L < 2 or _work(X) * L < _MIN_PARALLEL_WORK:
            self.estimators_ = [_fit_one(self.estimator, X, np.ascontiguousarray(Y[:, j]), sample_weight, kwargs[j])
                                for j in track(range(L), "per-label fits", min_seconds=1.0)]
        else:
            # a few interleaved label sets per process: one transfer of X per task, and frequent
            # (slow) labels spread over all processes
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

    def _fit_threads(self, X, Y, sample_weight, kwargs, n_jobs):
        """Fit the labels in ``n_jobs`` threads (liblinear's primal solvers: see :func:`_threadable`).

        Threads share X (no copy, no worker start); labels are handed out one at a time, so the
        frequent (slow) labels spread over the threads. BLAS is held to one thread for the whole
        fit: threadpoolctl's limit is process-wide, so it is set here, not per label.
        """
        from concurrent.futures import ThreadPoolExecutor

        L = Y.shape[1]

        def fit(j):
            return _fit_one(self.estimator, X, np.ascontiguousarray(Y[:, j]), sample_weight, kwargs[j],
                            limit_blas=False)

        with blas_limit(self.estimator), ThreadPoolExecutor(max_workers=n_jobs,
                                                            thread_name_prefix="mltc-br") as pool:
            return list(track(pool.map(fit, range(L)), "per-label fits", total=L, min_seconds=1.0))

    def predict_proba(self, X):
        """(n_samples, n_labels) positive-class probabilities."""
        if not hasattr(self.estimator, "predict_proba"):
            raise AttributeError(f"{type(self.estimator).__name__} has no predict_proba; use decision_function.")
        return np.column_stack([e.predict_proba(X)[:, -1] for e in self.estimators_])

    def decision_function(self, X):
        """(n_samples, n_labels) margins (for estimators without probabilities)."""
        return np.column_stack([np.ravel(e.decision_function(X)) for e in self.estimators_])

    def predict(self, X):
        """Labels at the default cut (0.5 on probabilities, 0 on margins)."""
        if self.score_kind_ == "proba":
            return (self.predict_proba(X) >= 0.5).astype(np.int8)
        return (self.decision_function(X) > 0).astype(np.int8)
