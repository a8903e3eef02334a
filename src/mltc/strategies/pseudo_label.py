"""Self-training with pseudo-labels, favouring minority labels (``strategy=pseudo_label``)."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_parameter_constraints

from mltc.imbalance import irlbl, label_counts, mean_ir
from mltc.models.scores import predict_scores
from mltc.strategies.base import check_X_Y, stack_rows, take_rows

__all__ = ["PseudoLabeler"]

log = logging.getLogger(__name__)


def _as_proba(scores, kind):
    return scores if kind == "proba" else 1.0 / (1.0 + np.exp(-scores))


def _as_container(Xu, like):
    """``Xu`` in ``like``'s container: CSR for sparse ``like``, a dense array otherwise.

    The unlabeled rows may come from another source than the training matrix (a user's file
    featurised separately, a dense embedding block), so either form is accepted.
    """
    if sp.issparse(like):
        return sp.csr_matrix(Xu, dtype=like.dtype)
    return Xu.toarray() if sp.issparse(Xu) else np.asarray(Xu, dtype=like.dtype)


class PseudoLabeler(BaseEstimator):
    """Self-training (Yarowsky 1995; Lee 2013, pseudo-labels) for multi-label data.

    A share ``unlabeled_fraction`` of the training rows has its labels hidden and
    forms the unlabeled pool (``X_unlabeled`` given to ``fit_resample`` joins the pool). Each round
    fits ``estimator`` on the labelled rows, predicts the pool and moves the
    confident rows into the labelled set with their predicted labels: label ``j``
    is predicted when its probability reaches ``threshold``, or ``minority_threshold``
    for a minority label (IRLbl above MeanIR of the labelled rows). A row enters
    when it has at least one predicted label; rows predicting minority labels go
    first, then by confidence, at most ``max_per_round`` x pool size per round.
    Where the hidden labels are known, each round logs the precision of what it added.

    Parameters
    ----------
    estimator : multi-label estimator
        Refitted every round (``fit(X, Y)``; scores via ``predict_proba`` or margins,
        which are squashed with the logistic function).
    unlabeled_fraction : float in [0, 1), default=0.5
        Share of training rows whose labels are hidden (0 to keep every training label
        and use only the ``X_unlabeled`` rows given to ``fit_resample``).
    threshold : float, default=0.9
    minority_threshold : float, default=0.7
    max_per_round : float in (0, 1], default=0.2
    n_rounds : int, default=3
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    rounds_ : list of dict
        Per round: ``round``, ``added``, ``pool_left``, ``n_minority_labels``, and where
        labels are known ``precision`` (micro precision of the added labels), ``recall``,
        ``exact_match`` and ``minority_added``.
    summary_ : dict
        Plain-Python digest for the tracker: pool sizes, thresholds, ``n_added``,
        ``added_per_label`` (by label index), overall ``precision`` where labels are
        known, and ``rounds`` (the per-round dicts of ``rounds_``).
    pseudo_indices_ : ndarray
        Training rows (of the hidden share) that entered with pseudo-labels.
    sample_indices_ : ndarray
        Training row of every output row (-1 for rows of ``X_unlabeled``).
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "unlabeled_fraction": [Interval(Real, 0, 1, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "minority_threshold": [Interval(Real, 0, 1, closed="neither")],
        "max_per_round": [Interval(Real, 0, 1, closed="right")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, estimator, unlabeled_fraction=0.5, threshold=0.9,
                 minority_threshold=0.7, max_per_round=0.2, n_rounds=3, random_state=None):
        self.estimator = estimator
        self.unlabeled_fraction = unlabeled_fraction
        self.threshold = threshold
        self.minority_threshold = minority_threshold
        self.max_per_round = max_per_round
        self.n_rounds = n_rounds
        self.random_state = random_state

    def fit_resample(self, X, Y, X_unlabeled=None):
        """Labelled rows plus the pseudo-labelled rows of the pool, with their labels.

        Parameters
        ----------
        X : array or sparse matrix
        Y : (n_samples, n_labels) binary matrix
        X_unlabeled : array or sparse matrix, optional
            Extra unlabeled rows in the same feature space (a featurised unlabeled corpus,
            how a run passes ``dataset.unlabeled_path``), dense or sparse whatever ``X`` is.
            Data, not a setting: it is given here, so it never enters ``get_params``.
        """
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        X, Y = check_X_Y(X, Y)
        rng = check_random_state(self.random_state)
        n = Y.shape[0]
        n_hidden = int(round(n * self.unlabeled_fraction))
        if n_hidden == 0 and X_unlabeled is None:
            raise ValueError("PseudoLabeler has no unlabeled pool: set unlabeled_fraction > 0 or pass X_unlabeled.")
        perm = rng.permutation(n)
        hidden, labelled = np.sort(perm[:n_hidden]), np.sort(perm[n_hidden:])
        X_pool, Y_pool_true = take_rows(X, hidden), Y[hidden]
        pool_src = hidden.copy()
        if X_unlabeled is not None:
            Xu = _as_container(X_unlabeled, like=X)
            if Xu.ndim != 2 or Xu.shape[1] != X.shape[1]:
                raise ValueError(f"X_unlabeled has shape {Xu.shape} but X has {X.shape[1]} features; featurise it "
                                 "with the same fitted featurizer.")
            X_pool = stack_rows(X_pool, Xu)
            Y_pool_true = np.vstack([Y_pool_true, np.full((Xu.shape[0], Y.shape[1]), -1, dtype=np.int8)])
            pool_src = np.concatenate([pool_src, np.full(Xu.shape[0], -1)])

        X_lab, Y_lab, src = take_rows(X, labelled), Y[labelled], labelled.copy()
        left = np.arange(len(pool_src))
        self.rounds_ = []
        added_all = []
        checked = [0, 0]  # true positives and predicted positives among added rows with known labels
        for r in range(self.n_rounds):
            if len(left) == 0:
                break
            model = clone(self.estimator).fit(X_lab, Y_lab)
            S, kind = predict_scores(model, take_rows(X_pool, left))
            P = _as_proba(S, kind)
            counts = label_counts(Y_lab)
            ir, mir = irlbl(counts=counts), mean_ir(counts=counts)
            minority = np.isfinite(ir) & (ir > mir)
            thr = np.where(minority, self.minority_threshold, self.threshold)
            pred = (P >= thr).astype(np.int8)
            cand = np.flatnonzero(pred.any(axis=1))
            # minority rows first, then by the confidence of their least confident predicted label
            has_min = (pred[cand][:, minority].any(axis=1)).astype(float)
            conf = np.where(pred[cand] == 1, P[cand], np.inf).min(axis=1)
            order = cand[np.lexsort((-conf, -has_min))]
            take = order[: max(1, int(self.max_per_round * len(left)))] if len(order) else order
            info = {"round": r, "added": int(len(take)), "pool_left": int(len(left) - len(take)),
                    "n_minority_labels": int(minority.sum())}
            known = Y_pool_true[left[take]]
            ok = (known >= 0).all(axis=1)
            if ok.any():
                yt, yp = known[ok], pred[take][ok]
                tp = int((yt & yp).sum())
                checked[0] += tp
                checked[1] += int(yp.sum())
                info.update(precision=tp / max(int(yp.sum()), 1), recall=tp / max(int(yt.sum()), 1),
                            exact_match=float((yt == yp).all(axis=1).mean()),
                            minority_added=int(yp[:, minority].any(axis=1).sum()))
            self.rounds_.append(info)
            log.info("pseudo-labels round %d: %s", r, info)
            if len(take) == 0:
                break
            X_lab = stack_rows(X_lab, take_rows(X_pool, left[take]))
            Y_lab = np.vstack([Y_lab, pred[take]])
            src = np.concatenate([src, pool_src[left[take]]])
            added_all.append(pool_src[left[take]])
            left = np.delete(left, take)
        added = np.concatenate(added_all) if added_all else np.array([], dtype=np.intp)
        self.pseudo_indices_ = added[added >= 0]
        self.sample_indices_ = src
        Y_added = Y_lab[len(labelled):]
        self.summary_ = {
            "n_labelled": int(len(labelled)), "n_pool": int(len(pool_src)),
            "n_pool_from_X_unlabeled": int((pool_src < 0).sum()),
            "threshold": float(self.threshold), "minority_threshold": float(self.minority_threshold),
            "n_rounds": len(self.rounds_), "n_added": int(Y_added.shape[0]),
            "pool_left": int(len(pool_src) - Y_added.shape[0]),
            "added_per_label": [int(c) for c in Y_added.sum(axis=0)],
            "rounds": [dict(r) for r in self.rounds_]}
        if any("precision" in r for r in self.rounds_):
            self.summary_["precision"] = checked[0] / max(checked[1], 1)
        return X_lab, Y_lab
