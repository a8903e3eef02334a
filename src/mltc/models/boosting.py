"""Gradient boosting per label with per-label class weights and imbalance-aware losses."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.models.base import BaseMultilabelClassifier
from mltc.models.binary_relevance import _Constant
from mltc.models.losses import BinaryLoss, sigmoid
from mltc.models.weights import WEIGHT_SCHEMES, scale_pos_weight
from mltc.progress import track

log = logging.getLogger(__name__)

__all__ = ["BoostedBinaryRelevance", "chi2_per_label"]

# XGBoost and LightGBM need positive hessians; focal-type losses are not convex everywhere
_MIN_HESSIAN = 1e-12
# margin standing in for a label constant in training (sigmoid(30) is 1 in float32)
_CONSTANT_MARGIN = 30.0


def _backend(estimator) -> str:
    mod = type(estimator).__module__.split(".")[0]
    if mod in ("xgboost", "lightgbm"):
        return mod
    raise TypeError(f"BoostedBinaryRelevance needs an xgboost.XGBClassifier or lightgbm.LGBMClassifier, got "
                    f"{type(estimator).__name__}; wrap other learners in mltc.models.BinaryRelevance.")


def chi2_per_label(X, Y):
    """Chi-squared statistic of every (label, feature) pair, as :func:`sklearn.feature_selection.chi2`.

    One sparse product for all labels instead of one call per label.

    Parameters
    ----------
    X : {array, sparse matrix} of shape (n_samples, n_features), non-negative
    Y : array of shape (n_samples, n_labels), 0/1

    Returns
    -------
    scores : ndarray of shape (n_labels, n_features); 0 where a feature or label is constant.
    """
    Y = np.asarray(Y, dtype=np.float64)
    pos = Y.T @ X if not sp.issparse(X) else (X.T @ Y).T  # feature mass in each label's positives
    pos = np.asarray(pos, dtype=np.float64)
    total = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
    prior = Y.mean(axis=0)
    # two classes per label: positives (observed pos, expected prior * total), negatives (the rest)
    exp_pos = prior[:, None] * total[None, :]
    exp_neg = total[None, :] - exp_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (np.where(exp_pos > 0, (pos - exp_pos) ** 2 / exp_pos, 0.0)
             + np.where(exp_neg > 0, ((total - pos) - exp_neg) ** 2 / exp_neg, 0.0))
    return np.nan_to_num(c)


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


def _best_constant(loss, y, weight, label):
    """The constant margin minimising the (weighted) loss: where the booster starts."""
    if loss is None:
        p = float(np.sum(weight * y) / np.sum(weight))
        return float(np.log(p) - np.log1p(-p))

    def total(c):
        return float(np.sum(loss.value(np.full(y.shape[0], c), y, weight=weight, labels=label)))
    return float(minimize_scalar(total, bounds=(-30.0, 30.0), method="bounded", options={"xatol": 1e-10}).x)


def _stratified_holdout(y, fraction, min_positives, rng):
    """Indices of a held-out slice with ``fraction`` of each class, or None if it gets too few positives."""
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y <= 0)
    k_pos, k_neg = int(round(fraction * pos.size)), int(round(fraction * neg.size))
    if k_pos < min_positives or k_neg < 1 or k_pos == pos.size:
        return None
    return np.sort(np.concatenate([rng.choice(pos, k_pos, replace=False), rng.choice(neg, k_neg, replace=False)]))


def _fit_label(estimator, backend, X, y, weight, loss, label, early_stopping_rounds, validation_fraction,
               min_positives, seed):
    """One label's booster; returns (booster, start margin, trees kept)."""
    if y.min() == y.max():
        return _Constant(y[0]), 0.0, 0
    est = clone(estimator)
    # Both backends start from a constant margin; we hand it over explicitly because LightGBM's
    # boost_from_average ignores scale_pos_weight / is_unbalance (it averages the raw labels): a rare label
    # then starts at its unweighted log-odds (-7 for 8 of 6,770), the first trees jump its positives' leaves
    # by ~scale_pos_weight logits, the negatives sharing those leaves saturate at p = 1 with zero hessian and
    # no later leaf can meet min_sum_hessian_in_leaf to pull them back. Class weights therefore go in as
    # sample weights and every booster starts at the weighted optimum.
    init = _best_constant(loss, y, weight, label)
    if loss is not None:
        prior = 1.0 / (1.0 + np.exp(-init))
        # put the loss's curvature at the start on the weighted logloss's scale (see _Objective)
        _, h0 = loss.grad_hess(np.full(y.shape[0], init), y, weight=weight, labels=label)
        scale = float(np.sum(weight) * prior * (1 - prior) / max(np.sum(np.abs(h0)), 1e-300))
    fit_idx, eval_idx = np.arange(y.shape[0]), None
    if early_stopping_rounds is not None:
        held = _stratified_holdout(y, validation_fraction, min_positives, np.random.default_rng(seed))
        if held is not None:
            eval_idx = held
            fit_idx = np.setdiff1d(fit_idx, held, assume_unique=True)
    if loss is not None:
        est.set_params(objective=_Objective(loss, weight[fit_idx], label, scale))
    kw = {}
    if eval_idx is not None:
        # average precision ranks the held-out documents: unaffected by class weights, losses and the start margin
        if backend == "xgboost":
            est.set_params(eval_metric="aucpr", early_stopping_rounds=early_stopping_rounds)
            kw = dict(eval_set=[(X[eval_idx], y[eval_idx])], base_margin_eval_set=[np.full(eval_idx.size, init)],
                      verbose=False)
        else:
            import lightgbm
            est.set_params(metric="average_precision")
            kw = dict(eval_X=(X[eval_idx],), eval_y=(y[eval_idx],), eval_init_score=[np.full(eval_idx.size, init)],
                      callbacks=[lightgbm.early_stopping(early_stopping_rounds, first_metric_only=True,
                                                         verbose=False)])
    X_fit = X if eval_idx is None else X[fit_idx]
    start = np.full(fit_idx.size, init)
    # a custom objective carries the weights itself
    w_fit = weight[fit_idx] if loss is None else None
    if backend == "xgboost":
        est.fit(X_fit, y[fit_idx], sample_weight=w_fit, base_margin=start, **kw)
        n_trees = (est.best_iteration + 1) if eval_idx is not None else est.n_estimators
    else:
        est.fit(X_fit, y[fit_idx], sample_weight=w_fit, init_score=start, **kw)
        n_trees = est.best_iteration_ if eval_idx is not None and est.best_iteration_ else est.n_estimators
    return est, init, int(n_trees)


def _margin(est, backend, X, init):
    if isinstance(est, _Constant):
        return est.decision_function(X) * _CONSTANT_MARGIN
    if backend == "xgboost":
        return np.ravel(est.predict(X, output_margin=True, base_margin=np.full(X.shape[0], init)))
    # LightGBM's raw score leaves out the init_score given at fit
    return np.ravel(est.predict(X, raw_score=True)) + init


class BoostedBinaryRelevance(BaseMultilabelClassifier):
    """One XGBoost or LightGBM booster per label, with per-label weights and custom losses.

    XGBoost's and LightGBM's ``scale_pos_weight`` is one scalar per booster
    (dmlc/xgboost#2454), so imbalance differing across labels needs one booster
    per label. The per-label weight of positives enters as sample weights (not
    ``scale_pos_weight``, whose start margin LightGBM computes without it), and
    every booster starts from the best constant margin under its weighted loss:
    the weighted log-odds for the built-in logloss. With ``loss``, the booster
    uses that loss's numpy gradient and ``|hessian|`` as a custom objective,
    rescaled per label so that its sum at the start equals the weighted
    logloss's: focal-type losses are not convex everywhere and have tiny
    curvature on easy negatives, which the booster's absolute regularisers
    (``min_child_weight``, ``reg_lambda``) would otherwise turn into no splits.

    Speed: split finding costs time per feature and node, so on a text
    vocabulary ``max_features_per_label`` keeps each label's top features by
    chi-squared (Yang & Pedersen 1997), and ``early_stopping_rounds`` stops a
    label's booster when the average precision of a stratified held-out slice of
    its training rows has not improved for that many trees.

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
    max_features_per_label : int, optional
        Features kept for each label's booster, by chi-squared against that label
        (needs non-negative features, e.g. TF-IDF); None keeps all.
    early_stopping_rounds : int, optional
        Stop a label's booster after this many trees without a better held-out
        average precision; None trains ``n_estimators`` trees on all rows.
    validation_fraction : float in (0, 1), default=0.1
        Share of each label's positives and negatives held out for early stopping.
    min_val_positives : int, default=3
        Labels whose held-out slice would get fewer positives train on all rows
        with ``n_estimators`` trees (too few to rank on).
    random_state : int, RandomState or None
        Draws the held-out slices.
    n_jobs : int, default=1
        Labels fitted in parallel; total threads are ``n_jobs`` times the booster's.

    Attributes
    ----------
    scale_pos_weight_ : ndarray of shape (n_labels,)
        Weight of each label's positives relative to its negatives.
    features_ : list of ndarray or None
        Column indices each label's booster sees.
    n_trees_ : ndarray of shape (n_labels,)
        Trees kept per label (0 for a label constant in training).

    References
    ----------
    Y. Yang and J. O. Pedersen. "A comparative study on feature selection in text categorization." ICML 1997.
    Y. Cui et al. "Class-balanced loss based on effective number of samples." CVPR 2019.

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
        "max_features_per_label": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "min_val_positives": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
    }

    def __init__(self, estimator=None, *, loss=None, pos_weight="none", beta=0.999, max_features_per_label=None,
                 early_stopping_rounds=None, validation_fraction=0.1, min_val_positives=3, random_state=None,
                 n_jobs=1):
        self.estimator = estimator
        self.loss = loss
        self.pos_weight = pos_weight
        self.beta = beta
        self.max_features_per_label = max_features_per_label
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.min_val_positives = min_val_positives
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _select_features(self, X, Y):
        k = self.max_features_per_label
        if k is None or k >= X.shape[1]:
            return None
        if (X.min() if not sp.issparse(X) else min(X.data.min(initial=0.0), 0.0)) < 0:
            raise ValueError("max_features_per_label ranks features by chi-squared, which needs non-negative "
                             "features (counts, TF-IDF); set model.max_features_per_label=null for these features.")
        scores = chi2_per_label(X, Y)
        # sorted indices keep the columns in their original order (same trees as on the full matrix)
        return [np.sort(np.argpartition(-s, k - 1)[:k]) for s in scores]

    def _columns(self, X, j):
        if self.features_ is None:
            return X
        return X[:, self.features_[j]]

    def fit(self, X, Y, sample_weight=None):
        """Fit one booster per column of ``Y``; ``sample_weight`` multiplies every label's loss."""
        # the weights go into each label's loss, not to a fit that could refuse them
        Y = self._validate_fit_input(X, Y, sample_weight, weighted={})
        backend = _backend(self.estimator)
        if sp.issparse(X):
            # column slicing and both boosters' sparse readers want CSR
            X = X.tocsr()
        n, L = Y.shape
        rng = check_random_state(self.random_state)
        self.scale_pos_weight_ = scale_pos_weight(Y.sum(axis=0), n, scheme=self.pos_weight, beta=self.beta)
        self.backend_ = backend
        self.n_labels_ = L
        self.score_kind_ = "proba"
        self.features_ = self._select_features(X, Y)
        self.loss_ = clone(self.loss).fit(Y) if self.loss is not None else None
        W = np.where(Y > 0, self.scale_pos_weight_[None, :], 1.0)
        if self.loss_ is not None:
            W = W * self.loss_.element_weights(Y)
        if sample_weight is not None:
            W = W * np.asarray(sample_weight, dtype=np.float64)[:, None]
        seeds = rng.randint(np.iinfo(np.int32).max, size=L)
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_label)(self.estimator, backend, self._columns(X, j), np.ascontiguousarray(Y[:, j]),
                                np.ascontiguousarray(W[:, j]), self.loss_, j, self.early_stopping_rounds,
                                self.validation_fraction, self.min_val_positives, seeds[j])
            for j in track(range(L), "per-label fits", min_seconds=1.0))
        self.estimators_ = [f[0] for f in fitted]
        self.init_margins_ = np.array([f[1] for f in fitted])
        self.n_trees_ = np.array([f[2] for f in fitted])
        return self

    def decision_function(self, X):
        """(n_samples, n_labels) margins (log-odds under the weighted training loss)."""
        if sp.issparse(X):
            X = X.tocsr()
        return np.column_stack([_margin(e, self.backend_, self._columns(X, j), b)
                                for j, (e, b) in enumerate(zip(self.estimators_, self.init_margins_))])

    def predict_proba(self, X):
        """(n_samples, n_labels) positive-class scores in [0, 1] (sigmoid of the margins)."""
        return sigmoid(self.decision_function(X))

    def predict(self, X):
        """Labels at probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
