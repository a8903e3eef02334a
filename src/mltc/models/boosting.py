"""Gradient boosting per label with per-label class weights and imbalance-aware losses."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.models.binary_relevance import BinaryRelevance, _Constant
from mltc.models.losses import BinaryLoss, sigmoid
from mltc.models.weights import WEIGHT_SCHEMES, scale_pos_weight

log = logging.getLogger(__name__)

__all__ = ["BoostedBinaryRelevance"]

# XGBoost and LightGBM need positive hessians; focal-type losses are not convex everywhere
_MIN_HESSIAN = 1e-12


def _backend(estimator) -> str:
    mod = type(estimator).__module__.split(".")[0]
    if mod in ("xgboost", "lightgbm"):
        return mod
    raise TypeError(f"BoostedBinaryRelevance needs an xgboost.XGBClassifier or lightgbm.LGBMClassifier, got "
                    f"{type(estimator).__name__}; wrap other learners in mltc.models.BinaryRelevance.")


class _Objective:
    """A custom objective for one label: the loss's gradient and |hessian|, times ``scale``.

    Focal-type losses have negative curvature where a positive is badly
    misclassified, and near-zero curvature on easy negatives; the booster's
    regularisers (``min_child_weight``, ``reg_lambda``) are absolute hessian
    sums, so without rescaling a rare label's trees cannot split at all.
    ``scale`` is fixed once per label and only changes the loss's units.
    """

    def __init__(self, loss, weight, label, scale=1.0):
        self.loss = loss
        self.weight = weight
        self.label = label
        self.scale = scale

    def __call__(self, y_true, y_pred):
        g, h = self.loss.grad_hess(np.ravel(y_pred), np.ravel(y_true), weight=self.weight, labels=self.label)
        h = np.maximum(np.abs(h) * self.scale, _MIN_HESSIAN)
        return (g * self.scale).reshape(np.shape(y_pred)), h.reshape(np.shape(y_pred))


def _fit_custom(estimator, backend, X, y, weight, loss, label):
    if y.min() == y.max():
        return _Constant(y[0]), 0.0
    # start from the best constant margin under the loss (the prior log-odds for logloss), as the
    # built-in objectives do, instead of margin 0
    def total(c):
        return float(np.sum(loss.value(np.full(y.shape[0], c), y, weight=weight, labels=label)))
    init = float(minimize_scalar(total, bounds=(-30.0, 30.0), method="bounded",
                                 options={"xatol": 1e-10}).x)
    prior = 1.0 / (1.0 + np.exp(-init))
    # put the loss's curvature at the start on the weighted logloss's scale (see _Objective)
    _, h0 = loss.grad_hess(np.full(y.shape[0], init), y, weight=weight, labels=label)
    scale = float(np.sum(weight) * prior * (1 - prior) / max(np.sum(np.abs(h0)), 1e-300))
    est = clone(estimator).set_params(objective=_Objective(loss, weight, label, scale))
    if backend == "xgboost":
        est.fit(X, y, base_margin=np.full(y.shape[0], init))
    else:
        est.fit(X, y, init_score=np.full(y.shape[0], init))
    return est, init


def _margin(est, backend, X, init):
    if isinstance(est, _Constant):
        return est.decision_function(X) * 30.0
    if backend == "xgboost":
        return np.ravel(est.predict(X, output_margin=True, base_margin=np.full(X.shape[0], init)))
    return np.ravel(est.predict(X, raw_score=True)) + init


class BoostedBinaryRelevance(ClassifierMixin, BaseEstimator):
    """One XGBoost or LightGBM booster per label, with per-label weights and custom losses.

    XGBoost's and LightGBM's ``scale_pos_weight`` is one scalar per booster
    (dmlc/xgboost#2454), so imbalance differing across labels needs one booster
    per label. Without ``loss`` each booster uses the built-in logloss with its
    label's ``scale_pos_weight``; with ``loss`` it uses that loss's numpy
    gradient and hessian as a custom objective (hessians floored at 1e-6), the
    same per-label weight multiplying the positive terms, and starts from the
    best constant margin under the loss. Custom objectives hand the booster ``|hessian|``,
    rescaled per label so that its sum at the start equals the weighted
    logloss's: focal-type losses are not convex everywhere and have tiny
    curvature on easy negatives, which the booster's absolute regularisers
    (``min_child_weight``, ``reg_lambda``) would otherwise turn into no splits.

    Parameters
    ----------
    estimator : xgboost.XGBClassifier or lightgbm.LGBMClassifier
        Binary booster; its ``n_jobs`` is the threads per booster.
    loss : BinaryLoss, optional
        A loss from :mod:`mltc.models.losses`; None for the built-in logloss.
    pos_weight : {"none", "balanced", "effective_number"}, default="none"
        Per-label weight of positives relative to negatives, from training counts
        (see :func:`mltc.models.weights.scale_pos_weight`).
    beta : float in [0, 1], default=0.999
        For ``pos_weight="effective_number"`` (Cui et al. 2019).
    n_jobs : int, default=1
        Labels fitted in parallel; total threads are ``n_jobs`` times the booster's.

    Examples
    --------
    >>> import numpy as np
    >>> from xgboost import XGBClassifier
    >>> from mltc.models.losses import FocalLoss
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 3)); Y = (X[:, :2] > 0.5).astype(int)
    >>> m = BoostedBinaryRelevance(XGBClassifier(n_estimators=5, n_jobs=1), loss=FocalLoss(gamma=2.0))
    >>> m.fit(X, Y).predict_proba(X).shape
    (60, 2)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "loss": [BinaryLoss, None],
        "pos_weight": [StrOptions(set(WEIGHT_SCHEMES))],
        "beta": [Interval(Real, 0, 1, closed="both")],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
    }

    def __init__(self, estimator=None, *, loss=None, pos_weight="none", beta=0.999, n_jobs=1):
        self.estimator = estimator
        self.loss = loss
        self.pos_weight = pos_weight
        self.beta = beta
        self.n_jobs = n_jobs

    def fit(self, X, Y, sample_weight=None):
        """Fit one booster per column of ``Y``; ``sample_weight`` multiplies every label's loss."""
        self._validate_params()
        backend = _backend(self.estimator)
        Y = np.asarray(Y)
        if Y.ndim != 2:
            raise ValueError(f"BoostedBinaryRelevance needs a 2-D label matrix, got shape {Y.shape}.")
        n, L = Y.shape
        self.scale_pos_weight_ = scale_pos_weight(Y.sum(axis=0), n, scheme=self.pos_weight, beta=self.beta)
        self.backend_ = backend
        self.n_labels_ = L
        self.score_kind_ = "proba"
        if self.loss is None:
            self.model_ = BinaryRelevance(self.estimator, per_label_params={"scale_pos_weight": self.scale_pos_weight_},
                                          n_jobs=self.n_jobs).fit(X, Y, sample_weight=sample_weight)
            return self
        self.loss_ = clone(self.loss).fit(Y)
        W = self.loss_.element_weights(Y) * np.where(Y > 0, self.scale_pos_weight_[None, :], 1.0)
        if sample_weight is not None:
            W = W * np.asarray(sample_weight, dtype=np.float64)[:, None]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_custom)(self.estimator, backend, X, np.ascontiguousarray(Y[:, j]),
                                 np.ascontiguousarray(W[:, j]), self.loss_, j)
            for j in range(L))
        self.estimators_ = [f[0] for f in fitted]
        self.init_margins_ = np.array([f[1] for f in fitted])
        return self

    def decision_function(self, X):
        """(n_samples, n_labels) margins (log-odds under the training loss)."""
        if self.loss is None:
            return np.log(np.clip(self.model_.predict_proba(X), 1e-12, None)) - np.log(
                np.clip(1 - self.model_.predict_proba(X), 1e-12, None))
        return np.column_stack([_margin(e, self.backend_, X, b) for e, b in zip(self.estimators_, self.init_margins_)])

    def predict_proba(self, X):
        """(n_samples, n_labels) positive-class scores in [0, 1] (sigmoid of the margins)."""
        if self.loss is None:
            return self.model_.predict_proba(X)
        return sigmoid(self.decision_function(X))

    def predict(self, X):
        """Labels at probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
