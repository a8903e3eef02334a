"""Weighted average of several multi-label models' scores on the log-odds scale."""
from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import Interval

from mltc.models.binary_relevance import accepts_sample_weight
from mltc.models.losses import sigmoid
from mltc.models.scores import predict_scores

__all__ = ["ScoreAverage"]

# probabilities are clipped before the logit so that a saturated booster cannot outvote the others alone
_EPS = 1e-6


class ScoreAverage(ClassifierMixin, BaseEstimator):
    """Average of the members' per-label scores, each on a log-odds-like scale.

    Probabilities become ``logit(p)`` (clipped to ``[1e-6, 1 - 1e-6]``), margins (e.g.
    a linear SVM's decision values) are used as they are; ``weights`` put the two
    scales on a par (an SVM margin of 1 is the edge of its margin, a booster's
    log-odds span tens). Combining a linear model with boosted trees helps because
    their errors differ (Schapire & Singer 2000 for boosting on Reuters; Kittler et
    al. 1998 on combining classifiers by score averaging).

    Parameters
    ----------
    estimators : list of estimators
        Multi-label models (fit on ``(X, Y)``, scored by :func:`mltc.models.predict_scores`).
    weights : list of float, optional
        One weight per estimator; None weighs all 1.

    References
    ----------
    R. E. Schapire and Y. Singer. "BoosTexter: a boosting-based system for text categorization." Machine
    Learning 39, 2000.
    J. Kittler, M. Hatef, R. P. W. Duin and J. Matas. "On combining classifiers." IEEE TPAMI 20(3), 1998.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import LinearSVC
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mltc.models import BinaryRelevance
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(80, 3)); Y = (X[:, :2] > 0).astype(int)
    >>> m = ScoreAverage([BinaryRelevance(LinearSVC()), BinaryRelevance(LogisticRegression())], weights=[2, 1])
    >>> m.fit(X, Y).decision_function(X).shape
    (80, 2)
    """

    _parameter_constraints = {
        "estimators": [list],
        "weights": [list, None],
    }

    def __init__(self, estimators=None, *, weights=None):
        self.estimators = estimators
        self.weights = weights

    def fit(self, X, Y, sample_weight=None):
        """Fit a clone of every member; ``sample_weight`` goes to each (all must accept it)."""
        self._validate_params()
        if not self.estimators:
            raise ValueError("ScoreAverage needs at least one estimator in `estimators`.")
        w = np.ones(len(self.estimators)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if w.shape != (len(self.estimators),) or not np.all(w >= 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.estimators)} non-negative numbers, not all 0 "
                             f"(one per estimator); got {self.weights}.")
        self.weights_ = w / w.sum()
        self.estimators_ = []
        for est in self.estimators:
            est = clone(est)
            if sample_weight is not None:
                if not accepts_sample_weight(est):
                    raise TypeError(f"{type(est).__name__}.fit does not accept sample_weight; drop it from the "
                                    "ensemble or use a resampling strategy.")
                est.fit(X, Y, sample_weight=sample_weight)
            else:
                est.fit(X, Y)
            self.estimators_.append(est)
        self.score_kind_ = "margin"
        return self

    def decision_function(self, X):
        """(n_samples, n_labels) weighted mean of the members' log-odds / margins."""
        total = 0.0
        for w, est in zip(self.weights_, self.estimators_):
            s, kind = predict_scores(est, X)
            if kind == "proba":
                s = np.log(np.clip(s, _EPS, 1 - _EPS)) - np.log1p(-np.clip(s, _EPS, 1 - _EPS))
            total = total + w * s
        return total

    def predict_proba(self, X):
        """Sigmoid of :meth:`decision_function` (a score in [0, 1], not a calibrated probability)."""
        return sigmoid(self.decision_function(X))

    def predict(self, X):
        """Labels with a positive averaged score."""
        return (self.decision_function(X) > 0).astype(np.int8)
