"""Cost-sensitive meta-learning: learned per-label costs (``strategy=meta_cost``) and
MetaCost relabelling (``strategy=metacost_relabel``)."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import f1_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints

from mltc.imbalance import irlbl, label_counts
from mltc.models.scores import predict_scores
from mltc.strategies.base import check_X_Y, take_rows

__all__ = ["MetaCostWeights", "MetaCostRelabel", "row_weights"]

log = logging.getLogger(__name__)


def row_weights(Y, label_weights) -> np.ndarray:
    """Weight of each row: the largest cost among its positive labels (1 for a row with none)."""
    W = np.where(np.asarray(Y) == 1, np.asarray(label_weights, dtype=np.float64)[None, :], 0.0)
    return np.maximum(W.max(axis=1), np.where(np.asarray(Y).any(axis=1), 0.0, 1.0))


def _fit_weighted(est, X, Y, w):
    return clone(est).fit(X, Y, sample_weight=w)


def _cut(S, kind):
    return S >= (0.5 if kind == "proba" else 0.0)


class MetaCostWeights(BaseEstimator):
    """Per-label misclassification costs learned by coordinate ascent on held-out performance.

    An outer loop in the spirit of cost-sensitive meta-learning (Domingos 1999;
    Sheng & Ling 2006, thresholding and weighting as wrappers): the training rows are
    split into an inner training and an inner validation part; starting from cost 1
    for every label, each label's cost in turn takes the value of ``grid`` that
    maximises ``metric`` on the inner validation part, the inner ``estimator`` being
    refitted with the implied row weights (a row weighs the largest cost of its
    labels); ``n_sweeps`` passes over the labels. The learned costs then weight the
    full training set. Only training rows are used: the pipeline's validation split
    stays for thresholds.

    Parameters
    ----------
    estimator : multi-label estimator accepting ``sample_weight``
        The inner model (the configs use the run's own model).
    grid : list of float, default=(1, 2, 4, 8)
    n_sweeps : int, default=1
    labels : {"minority", "all"}, default="minority"
        Which labels' costs are searched (others keep 1): minority = IRLbl > MeanIR.
    metric : {"macro_f1", "micro_f1"}, default="macro_f1"
        Inner validation objective at the default cut.
    val_fraction : float, default=0.25
    max_samples : int or None, default=20000
        Subsample for the inner loop (bounds its cost on large corpora).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    label_weights_ : ndarray of shape (n_labels,)
        The learned costs (logged by the run's report).
    history_ : list of dict
        ``label``, ``weight`` and ``score`` of each accepted move.
    base_score_ : float
        Inner validation score with all costs 1.
    best_score_ : float
        Inner validation score with the learned costs.
    summary_ : dict
        Plain-Python digest for the tracker: ``base_score``, ``best_score``,
        ``label_weights`` (by label index), ``searched_labels``, ``n_moves``, ``history``.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "grid": ["array-like"],
        "n_sweeps": [Interval(Integral, 1, None, closed="left")],
        "labels": [StrOptions({"minority", "all"})],
        "metric": [StrOptions({"macro_f1", "micro_f1"})],
        "val_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_samples": [Interval(Integral, 10, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, estimator, grid=(1.0, 2.0, 4.0, 8.0), n_sweeps=1, labels="minority", metric="macro_f1",
                 val_fraction=0.25, max_samples=20000, random_state=None):
        self.estimator = estimator
        self.grid = grid
        self.n_sweeps = n_sweeps
        self.labels = labels
        self.metric = metric
        self.val_fraction = val_fraction
        self.max_samples = max_samples
        self.random_state = random_state

    def _score(self, X_in, Y_in, X_out, Y_out, w_lab):
        model = _fit_weighted(self.estimator, X_in, Y_in, row_weights(Y_in, w_lab))
        S, kind = predict_scores(model, X_out)
        avg = "macro" if self.metric == "macro_f1" else "micro"
        return f1_score(Y_out, _cut(S, kind).astype(np.int8), average=avg, zero_division=0)

    def fit_resample(self, X, Y):
        """The training rows unchanged, their labels, and row weights from the learned costs."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        X, Y = check_X_Y(X, Y)
        grid = np.asarray(self.grid, dtype=float)
        if grid.size == 0 or (grid <= 0).any():
            raise ValueError(f"grid={list(self.grid)} must hold positive costs, e.g. [1, 2, 4, 8].")
        rng = check_random_state(self.random_state)
        n, L = Y.shape
        sub = rng.permutation(n)[: self.max_samples] if self.max_samples else rng.permutation(n)
        n_val = max(1, int(len(sub) * self.val_fraction))
        va, tr = np.sort(sub[:n_val]), np.sort(sub[n_val:])
        X_in, Y_in, X_out, Y_out = take_rows(X, tr), Y[tr], take_rows(X, va), Y[va]
        ir = irlbl(counts=label_counts(Y))
        search = np.flatnonzero(np.isfinite(ir) & (ir > np.nanmean(ir[np.isfinite(ir)]))) \
            if self.labels == "minority" else np.arange(L)
        w = np.ones(L)
        best = self.base_score_ = self._score(X_in, Y_in, X_out, Y_out, w)
        self.history_ = []
        for _ in range(self.n_sweeps):
            for j in search:
                for g in grid:
                    if g == w[j]:
                        continue
                    trial = w.copy()
                    trial[j] = g
                    s = self._score(X_in, Y_in, X_out, Y_out, trial)
                    if s > best + 1e-12:  # strict: ties keep the cheaper, earlier setting
                        best, w = s, trial
                        self.history_.append({"label": int(j), "weight": float(g), "score": float(s)})
        self.label_weights_ = w
        self.best_score_ = best
        self.summary_ = {"metric": self.metric, "base_score": float(self.base_score_), "best_score": float(best),
                         "n_inner_train": int(len(tr)), "n_inner_val": int(len(va)),
                         "searched_labels": [int(j) for j in search], "n_moves": len(self.history_),
                         "label_weights": [float(x) for x in w], "history": [dict(h) for h in self.history_]}
        log.info("meta_cost: inner %s %.4f -> %.4f; learned costs %s", self.metric, self.base_score_, best,
                 np.round(w, 2).tolist())
        return X, Y, row_weights(Y, w)


class MetaCostRelabel(BaseEstimator):
    """MetaCost (Domingos 1999) for binary relevance: relabel training rows to their minimum-cost labels.

    ``n_estimators`` copies of ``estimator`` are fitted on bootstrap samples; each
    training row's probability for label ``j`` is averaged over the models that did
    not see it (out-of-bag, all models where none). Label ``j`` of a row becomes 1
    when ``p_j * C_FN_j > (1 - p_j) * C_FP_j``, i.e. ``p_j > 1 / (1 + r_j)`` with cost
    ratio ``r_j = C_FN_j / C_FP_j``. The model is then fitted on the relabelled rows.

    Parameters
    ----------
    estimator : multi-label estimator
    costs : {"irlbl", "balanced"} or float, default="irlbl"
        Cost ratio per label: ``"irlbl"`` uses IRLbl (the majority label's count over
        the label's), ``"balanced"`` negatives over positives, a float the same ratio
        for all labels.
    power : float, default=0.5
        The ratio is raised to this power (1 is the full ratio; 0.5 tempers it).
    n_estimators : int, default=5
    max_samples : float in (0, 1], default=1.0
        Bootstrap size as a share of the rows.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    cost_ratios_ : ndarray of shape (n_labels,)
        The costs used (logged by the run's report).
    n_flipped_ : ndarray of shape (n_labels,)
        Labels changed per label (positive = 0 -> 1 flips net of 1 -> 0).
    summary_ : dict
        Plain-Python digest for the tracker: ``cost_ratios``, ``added_per_label`` (0 -> 1),
        ``removed_per_label`` (1 -> 0), their totals, positives before and after, rows changed.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "costs": [StrOptions({"irlbl", "balanced"}), Interval(Real, 0, None, closed="neither")],
        "power": [Interval(Real, 0, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Real, 0, 1, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, estimator, costs="irlbl", power=0.5, n_estimators=5, max_samples=1.0,
                 random_state=None):
        self.estimator = estimator
        self.costs = costs
        self.power = power
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def _ratios(self, Y):
        counts = label_counts(Y).astype(float)
        safe = np.maximum(counts, 1.0)
        if self.costs == "irlbl":
            r = counts.max() / safe
        elif self.costs == "balanced":
            r = (Y.shape[0] - counts) / safe
        else:
            r = np.full(Y.shape[1], float(self.costs))
        return r ** self.power

    def fit_resample(self, X, Y):
        """The training rows with relabelled targets."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        X, Y = check_X_Y(X, Y)
        rng = check_random_state(self.random_state)
        n, L = Y.shape
        m = max(1, int(round(self.max_samples * n)))
        total, seen = np.zeros((n, L)), np.zeros(n)
        full_total = np.zeros((n, L))
        for _ in range(self.n_estimators):
            idx = rng.randint(n, size=m)
            model = clone(self.estimator).fit(take_rows(X, idx), Y[idx])
            S, kind = predict_scores(model, X)
            P = S if kind == "proba" else 1.0 / (1.0 + np.exp(-S))
            oob = np.ones(n, dtype=bool)
            oob[idx] = False
            total[oob] += P[oob]
            seen[oob] += 1
            full_total += P
        P = np.where(seen[:, None] > 0, total / np.maximum(seen, 1)[:, None], full_total / self.n_estimators)
        self.cost_ratios_ = self._ratios(Y)
        Y_new = (P > 1.0 / (1.0 + self.cost_ratios_)[None, :]).astype(np.int8)
        self.n_flipped_ = (Y_new.astype(int) - Y).sum(axis=0)
        self.probabilities_ = P
        added = ((Y_new == 1) & (Y == 0)).sum(axis=0)
        removed = ((Y_new == 0) & (Y == 1)).sum(axis=0)
        self.summary_ = {"cost_ratios": [float(r) for r in self.cost_ratios_],
                         "added_per_label": [int(c) for c in added], "removed_per_label": [int(c) for c in removed],
                         "n_added": int(added.sum()), "n_removed": int(removed.sum()),
                         "positives_before": int(Y.sum()), "positives_after": int(Y_new.sum()),
                         "rows_changed": int((Y_new != Y).any(axis=1).sum())}
        log.info("MetaCost relabelling: cost ratios %s; net positives added per label %s",
                 np.round(self.cost_ratios_, 2).tolist(), self.n_flipped_.tolist())
        return X, Y_new
