"""Score-level stacking: average the scores of several models, each on its own feature block.

With ``features=tfidf+minilm`` one matrix holds a TF-IDF block and an embedding block.
A single linear model on the concatenation must share one regularisation strength
between a 58k-dimensional sparse block and a 384-dimensional dense one; fitting one
model per block and averaging their probabilities (late fusion) lets each block keep
its own model and strength. The per-label thresholds tuned afterwards on validation
scores absorb the calibration differences of the averaged scores.

Averaging on the log-odds scale (``scale="logit"``) suits members whose scores are
margins, e.g. a linear SVM with boosted trees: their errors differ, so the average
beats each (Schapire & Singer 2000 on Reuters).

References
----------
Wolpert (1992), Stacked generalization. Neural Networks 5(2).
Kittler et al. (1998), On combining classifiers. IEEE TPAMI 20(3) (the mean rule).
Schapire & Singer (2000), BoosTexter: a boosting-based system for text categorization. Machine Learning 39.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from mltc.models.binary_relevance import accepts_sample_weight
from mltc.models.scores import predict_scores

__all__ = ["ScoreAverage"]

# probabilities are clipped before the logit so that one saturated member cannot outvote the others alone
_EPS = 1e-6


def _logit(p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _column_slice(spec, n_features, i):
    """``slice`` of columns from ``None`` (all) or ``[start, stop]`` (Python slice bounds, None = open)."""
    if spec is None:
        return slice(None)
    if not (isinstance(spec, (list, tuple)) and len(spec) == 2
            and all(b is None or isinstance(b, Integral) for b in spec)):
        raise ValueError(f"columns[{i}]={spec!r} must be null (all columns) or [start, stop] with integer or null "
                         "bounds, e.g. [0, -384] for the TF-IDF block and [-384, null] for MiniLM's 384 dims.")
    sl = slice(*spec)
    if len(range(n_features)[sl]) == 0:
        raise ValueError(f"columns[{i}]={list(spec)} selects no column of a {n_features}-column matrix.")
    return sl


class ScoreAverage(ClassifierMixin, BaseEstimator):
    """Weighted mean of several models' label scores, each model on its own column block.

    Every estimator is cloned and fitted on ``X[:, columns[i]]``. With ``scale="proba"``
    margins (a model without ``predict_proba``) are squashed with the logistic function and
    probabilities are averaged; with ``scale="logit"`` probabilities become log-odds (clipped
    to ``[1e-6, 1 - 1e-6]``) and margins are used as they are. The mean rule of
    Kittler et al. (1998) as late fusion (Wolpert 1992 stacks with a learned combiner;
    a fixed mean needs no held-out data and no extra fit).

    Parameters
    ----------
    estimators : list of multi-label estimators
    columns : list of (None or [start, stop]), optional
        Column block of each estimator (Python slice bounds; negative counts from the end).
        None: every estimator sees all columns.
    weights : list of float, optional
        Weight of each estimator's scores (normalised to sum 1); None is the plain mean.
        On the logit scale weights also put scales on a par (an SVM margin of 1 is the edge
        of its margin, a booster's log-odds span tens).
    scale : {"proba", "logit"}, default="proba"
        Average probabilities, or log-odds / margins.

    Attributes
    ----------
    estimators_ : list
        The fitted clones.
    score_kind_ : "proba" or "margin"
        What :func:`mltc.models.predict_scores` returns: the mean probability (``scale="proba"``)
        or the mean log-odds (``scale="logit"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mltc.models import BinaryRelevance
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(120, 6)); Y = (X[:, :2] > 0.5).astype(int)
    >>> m = ScoreAverage(estimators=[BinaryRelevance(LogisticRegression()), BinaryRelevance(LogisticRegression())],
    ...                  columns=[[0, 3], [3, None]]).fit(X, Y)
    >>> m.predict_proba(X).shape
    (120, 2)
    """

    _parameter_constraints = {
        "estimators": [list, tuple],
        "columns": [list, tuple, None],
        "weights": [list, tuple, None],
        "scale": [StrOptions({"proba", "logit"})],
    }

    def __init__(self, estimators=None, *, columns=None, weights=None, scale="proba"):
        self.estimators = estimators
        self.columns = columns
        self.weights = weights
        self.scale = scale

    def _check(self, n_features):
        k = len(self.estimators or ())
        if k == 0:
            raise ValueError("ScoreAverage needs at least one estimator in estimators=[...].")
        cols = self.columns if self.columns is not None else [None] * k
        if len(cols) != k:
            raise ValueError(f"columns has {len(cols)} entries for {k} estimators; give one block per estimator.")
        w = np.ones(k) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights={self.weights} must be {k} non-negative numbers with a positive sum.")
        return [_column_slice(c, n_features, i) for i, c in enumerate(cols)], w / w.sum()

    @staticmethod
    def _block(X, sl):
        if sl == slice(None):
            return X
        return X[:, sl].tocsr() if sp.issparse(X) else np.asarray(X)[:, sl]

    def fit(self, X, Y, sample_weight=None):
        """Fit a clone of every estimator on its column block (``sample_weight`` goes to each)."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        self.slices_, self.weights_ = self._check(X.shape[1])
        self.estimators_ = []
        for i, (est, sl) in enumerate(zip(self.estimators, self.slices_)):
            est = clone(est)
            Xi = self._block(X, sl)
            if sample_weight is None:
                est.fit(Xi, Y)
            elif accepts_sample_weight(est):
                est.fit(Xi, Y, sample_weight=sample_weight)
            else:
                raise TypeError(f"estimators[{i}] ({type(est).__name__}) does not accept sample_weight; use a "
                                "resampling strategy instead of a weighting one, or another estimator.")
            self.estimators_.append(est)
        self.n_features_in_ = X.shape[1]
        self.score_kind_ = "proba" if self.scale == "proba" else "margin"
        return self

    def _mean(self, X):
        check_is_fitted(self, "estimators_")
        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features but ScoreAverage was fitted on {self.n_features_in_}; "
                             "use the featurizer fitted with the model.")
        out = 0.0
        for est, sl, w in zip(self.estimators_, self.slices_, self.weights_):
            S, kind = predict_scores(est, self._block(X, sl))
            if self.scale == "proba":
                S = S if kind == "proba" else expit(S)
            elif kind == "proba":
                S = _logit(S)
            out = out + w * S
        return np.asarray(out, dtype=np.float64)

    def predict_proba(self, X):
        """(n_samples, n_labels) mean probability (``scale="proba"``) or sigmoid of the mean log-odds."""
        out = self._mean(X)
        return out if self.scale == "proba" else expit(out)

    def decision_function(self, X):
        """(n_samples, n_labels) mean log-odds (``scale="logit"``) or log-odds of the mean probability."""
        out = self._mean(X)
        return out if self.scale == "logit" else _logit(out)

    def predict(self, X):
        """Labels whose averaged score is above the midpoint (probability 0.5, log-odds 0)."""
        return (self.decision_function(X) > 0).astype(np.int8)
