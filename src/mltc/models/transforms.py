"""Problem transformations beyond binary relevance: label powerset, classifier chains, RAkEL.

Each model returns an (n_samples, n_labels) score matrix from ``predict_proba``
(or ``decision_function``) and sets ``score_kind_`` for
:func:`mltc.models.predict_scores`.

References
----------
Read (2008), A pruned problem transformation method for multi-label classification. NZCSRS.
Read, Pfahringer, Holmes, Frank (2011), Classifier chains for multi-label classification. Machine Learning 85.
Tsoumakas, Katakis, Vlahavas (2011), Random k-labelsets for multilabel classification. IEEE TKDE 23.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.models.base import BaseMultilabelClassifier
from mltc.models.binary_relevance import _Constant, blas_limit
from mltc.models.losses import sigmoid

__all__ = ["LabelPowerset", "ClassifierChain", "EnsembleClassifierChains", "RAkEL"]


def _fit(est, X, y, sample_weight):
    with blas_limit(est):
        if sample_weight is not None:
            return est.fit(X, y, sample_weight=sample_weight)
        return est.fit(X, y)


def _class_proba(est, X):
    """Class probabilities of a fitted multi-class estimator (softmax of margins if it has no proba)."""
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    d = np.asarray(est.decision_function(X), dtype=np.float64)
    if d.ndim == 1:  # two classes: the margin favours classes_[1]
        p1 = sigmoid(d)
        return np.column_stack([1 - p1, p1])
    d = d - d.max(axis=1, keepdims=True)
    e = np.exp(d)
    return e / e.sum(axis=1, keepdims=True)


class LabelPowerset(BaseMultilabelClassifier):
    """Each distinct label set is one class of a multi-class problem, with Read's pruning (PPT).

    Label sets seen fewer than ``min_count`` times are pruned; with
    ``max_reintroduce = b > 0``, each pruned document is re-added once for each of
    up to ``b`` frequent label sets that are subsets of its own (largest first,
    then most frequent), so rare combinations still teach their parts (Read 2008).
    Scores are marginals: the probability mass of the classes containing each label.

    Parameters
    ----------
    estimator : multi-class classifier
        With ``predict_proba`` (or ``decision_function``, turned into softmax scores).
    min_count : int, default=1
        Read's pruning threshold ``p``; 1 keeps every label set.
    max_reintroduce : int, default=0
        Read's ``b``; 0 drops pruned documents.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.], [1.], [2.], [3.]]); Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> LabelPowerset(estimator=LogisticRegression()).fit(X, Y).predict_proba(X).shape
    (4, 2)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "max_reintroduce": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, estimator=None, *, min_count=1, max_reintroduce=0):
        self.estimator = estimator
        self.min_count = min_count
        self.max_reintroduce = max_reintroduce

    def fit(self, X, Y, sample_weight=None):
        """Fit the multi-class estimator on (pruned) label-set classes."""
        Y = self._validate_fit_input(X, Y, sample_weight, binarize=True)
        sets, inverse, counts = np.unique(Y, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        frequent = counts >= self.min_count
        if not frequent.any():
            raise ValueError(f"LabelPowerset: no label set occurs {self.min_count} times; lower min_count "
                             f"(the most frequent set occurs {counts.max()} times).")
        new_id = np.full(len(sets), -1)
        new_id[frequent] = np.arange(frequent.sum())
        rows, cls = [], []
        keep = frequent[inverse]
        rows.append(np.flatnonzero(keep))
        cls.append(new_id[inverse[keep]])
        if self.max_reintroduce > 0 and (~keep).any():
            fsets = sets[frequent].astype(bool)
            fsize, fcount = fsets.sum(axis=1), counts[frequent]
            rank = np.lexsort((-fcount, -fsize))  # largest first, then most frequent
            for i in np.flatnonzero(~keep):
                row = Y[i].astype(bool)
                sub = rank[(fsize[rank] > 0) & ~(fsets[rank] & ~row).any(axis=1)][: self.max_reintroduce]
                rows.append(np.full(sub.size, i))
                cls.append(sub)
        rows, cls = np.concatenate(rows), np.concatenate(cls)
        self.n_pruned_ = int((~keep).sum())
        self.n_reintroduced_ = int(rows.size - keep.sum())
        self.label_sets_ = sets[frequent].astype(np.int8)
        self.n_labels_ = Y.shape[1]
        self.score_kind_ = "proba"
        if np.unique(cls).size == 1:
            self.estimator_ = None
            self.constant_class_ = int(cls[0])
            return self
        sw = None if sample_weight is None else np.asarray(sample_weight)[rows]
        self.estimator_ = _fit(clone(self.estimator), X[rows], cls, sw)
        return self

    def predict_proba(self, X):
        """(n_samples, n_labels) marginal label probabilities."""
        if self.estimator_ is None:
            return np.tile(self.label_sets_[self.constant_class_].astype(np.float64), (X.shape[0], 1))
        P = _class_proba(self.estimator_, X)
        return P @ self.label_sets_[np.asarray(self.estimator_.classes_, dtype=int)].astype(np.float64)

    def predict_sets(self, X):
        """The most probable label set of each document (always one seen in training)."""
        if self.estimator_ is None:
            return np.tile(self.label_sets_[self.constant_class_], (X.shape[0], 1))
        P = _class_proba(self.estimator_, X)
        return self.label_sets_[np.asarray(self.estimator_.classes_, dtype=int)[P.argmax(axis=1)]]

    def predict(self, X):
        """Labels at marginal probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)


def _hstack(X, cols):
    if sp.issparse(X):
        return sp.hstack([X, sp.csr_matrix(cols)], format="csr")
    return np.hstack([np.asarray(X), cols])


def _label_score(est, X, proba):
    if proba:
        p = est.predict_proba(X)
        return p[:, -1]
    return np.ravel(est.decision_function(X))


class ClassifierChain(BaseMultilabelClassifier):
    """Classifier chain (Read et al. 2011): label ``k`` in the order sees the labels before it.

    Training appends the true earlier labels to the features; prediction appends
    the predicted ones (0.5 on probabilities, 0 on margins), as in the paper.
    Unlike scikit-learn's ``ClassifierChain`` it passes ``sample_weight`` and keeps
    labels constant in training as constant predictors.

    Parameters
    ----------
    estimator : binary classifier
    order : None, "random" or list of int, default=None
        None: column order; "random": a permutation drawn from ``random_state``.
    random_state : int, RandomState or None
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "order": [None, StrOptions({"random"}), "array-like"],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, order=None, random_state=None):
        self.estimator = estimator
        self.order = order
        self.random_state = random_state

    def fit(self, X, Y, sample_weight=None):
        """Fit one classifier per label along the chain."""
        Y = self._validate_fit_input(X, Y, sample_weight, binarize=True)
        L = Y.shape[1]
        if self.order is None:
            order = np.arange(L)
        elif isinstance(self.order, str):
            order = check_random_state(self.random_state).permutation(L)
        else:
            order = np.asarray(self.order, dtype=int)
            if sorted(order.tolist()) != list(range(L)):
                raise ValueError(f"ClassifierChain: order must be a permutation of 0..{L - 1}, got {self.order}.")
        self.order_ = order
        self.n_labels_ = L
        self.score_kind_ = "proba" if hasattr(self.estimator, "predict_proba") else "margin"
        self.estimators_ = []
        for k, j in enumerate(order):
            y = np.ascontiguousarray(Y[:, j])
            if y.min() == y.max():
                self.estimators_.append(_Constant(y[0]))
                continue
            Xk = _hstack(X, Y[:, order[:k]].astype(np.float64))
            self.estimators_.append(_fit(clone(self.estimator), Xk, y, sample_weight))
        return self

    def _scores(self, X):
        proba = self.score_kind_ == "proba"
        n = X.shape[0]
        S = np.empty((n, self.n_labels_))
        prev = np.empty((n, 0))
        for k, (j, est) in enumerate(zip(self.order_, self.estimators_)):
            s = _label_score(est, _hstack(X, prev), proba)
            S[:, j] = s
            prev = np.column_stack([prev, (s >= 0.5) if proba else (s > 0)]).astype(np.float64)
        return S

    def predict_proba(self, X):
        """(n_samples, n_labels) positive-class probabilities."""
        if self.score_kind_ != "proba":
            raise AttributeError(f"{type(self.estimator).__name__} has no predict_proba; use decision_function.")
        return self._scores(X)

    def decision_function(self, X):
        """(n_samples, n_labels) margins (for estimators without probabilities)."""
        if self.score_kind_ == "proba":
            p = np.clip(self._scores(X), 1e-12, 1 - 1e-12)
            return np.log(p / (1 - p))
        return self._scores(X)

    def predict(self, X):
        """Labels at the default cut."""
        S = self._scores(X)
        return (S >= 0.5 if self.score_kind_ == "proba" else S > 0).astype(np.int8)


def _fit_chain(estimator, X, Y, sample_weight, seed, bootstrap):
    rng = np.random.RandomState(seed)
    n = Y.shape[0]
    rows = rng.randint(0, n, n) if bootstrap else np.arange(n)
    sw = None if sample_weight is None else np.asarray(sample_weight)[rows]
    return ClassifierChain(estimator, order="random", random_state=rng).fit(X[rows], Y[rows], sample_weight=sw)


class EnsembleClassifierChains(BaseMultilabelClassifier):
    """Ensemble of classifier chains (Read et al. 2011): random orders, bootstrap samples, averaged scores.

    Parameters
    ----------
    estimator : binary classifier
    n_chains : int, default=10
    bootstrap : bool, default=True
        Fit each chain on a bootstrap sample of the documents.
    random_state : int, RandomState or None
    n_jobs : int, default=1
        Chains fitted in parallel.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
    }

    def __init__(self, estimator=None, *, n_chains=10, bootstrap=True, random_state=None, n_jobs=1):
        self.estimator = estimator
        self.n_chains = n_chains
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, Y, sample_weight=None):
        """Fit ``n_chains`` chains."""
        Y = self._validate_fit_input(X, Y, sample_weight, binarize=True)
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=self.n_chains)
        self.chains_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_chain)(self.estimator, X, Y, sample_weight, s, self.bootstrap) for s in seeds)
        self.n_labels_ = Y.shape[1]
        self.score_kind_ = self.chains_[0].score_kind_
        return self

    def predict_proba(self, X):
        """Mean over chains of the positive-class probabilities."""
        return np.mean([c.predict_proba(X) for c in self.chains_], axis=0)

    def decision_function(self, X):
        """Mean over chains of the margins."""
        return np.mean([c.decision_function(X) for c in self.chains_], axis=0)

    def predict(self, X):
        """Labels at the default cut."""
        if self.score_kind_ == "proba":
            return (self.predict_proba(X) >= 0.5).astype(np.int8)
        return (self.decision_function(X) > 0).astype(np.int8)


def _fit_lp(lp, X, Y, subset, sample_weight):
    return clone(lp).fit(X, Y[:, subset], sample_weight=sample_weight)


class RAkEL(BaseMultilabelClassifier):
    """Random k-labelsets (Tsoumakas et al. 2011): label powersets on small random label subsets.

    ``mode="distinct"`` (RAkELd) partitions the labels into disjoint subsets of
    size ``labelset_size``; ``mode="overlapping"`` (RAkELo) draws ``n_subsets``
    distinct random subsets (default ``2 L``, the authors' choice), adding one
    subset for any label left uncovered. A label's score is the mean of its
    marginal probability over the subsets containing it.

    Parameters
    ----------
    estimator : multi-class classifier
    labelset_size : int, default=3
    mode : {"distinct", "overlapping"}, default="distinct"
    n_subsets : int, optional
        Number of subsets for ``"overlapping"``.
    min_count, max_reintroduce : int
        Pruning of each subset's label powerset (see :class:`LabelPowerset`).
    random_state : int, RandomState or None
    n_jobs : int, default=1
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "labelset_size": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"distinct", "overlapping"})],
        "n_subsets": [Interval(Integral, 1, None, closed="left"), None],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "max_reintroduce": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
    }

    def __init__(self, estimator=None, *, labelset_size=3, mode="distinct", n_subsets=None, min_count=1,
                 max_reintroduce=0, random_state=None, n_jobs=1):
        self.estimator = estimator
        self.labelset_size = labelset_size
        self.mode = mode
        self.n_subsets = n_subsets
        self.min_count = min_count
        self.max_reintroduce = max_reintroduce
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _draw_subsets(self, L, rng):
        k = min(self.labelset_size, L)
        if self.mode == "distinct":
            perm = rng.permutation(L)
            return [np.sort(perm[i:i + k]) for i in range(0, L, k)]
        from math import comb
        m = min(self.n_subsets or 2 * L, comb(L, k))
        seen, subsets = set(), []
        while len(subsets) < m:
            s = tuple(np.sort(rng.choice(L, size=k, replace=False)))
            if s not in seen:
                seen.add(s)
                subsets.append(np.array(s))
        covered = np.zeros(L, dtype=bool)
        for s in subsets:
            covered[s] = True
        for j in np.flatnonzero(~covered):
            others = rng.choice(np.delete(np.arange(L), j), size=k - 1, replace=False)
            subsets.append(np.sort(np.append(others, j)))
        return subsets

    def fit(self, X, Y, sample_weight=None):
        """Fit one :class:`LabelPowerset` per label subset."""
        Y = self._validate_fit_input(X, Y, sample_weight, binarize=True)
        rng = check_random_state(self.random_state)
        L = Y.shape[1]
        self.subsets_ = self._draw_subsets(L, rng)
        lp = LabelPowerset(self.estimator, min_count=self.min_count, max_reintroduce=self.max_reintroduce)
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_lp)(lp, X, Y, s, sample_weight) for s in self.subsets_)
        self.n_labels_ = L
        self.score_kind_ = "proba"
        return self

    def predict_proba(self, X):
        """(n_samples, n_labels) mean marginal probabilities over the subsets holding each label."""
        total = np.zeros((X.shape[0], self.n_labels_))
        votes = np.zeros(self.n_labels_)
        for s, est in zip(self.subsets_, self.estimators_):
            total[:, s] += est.predict_proba(X)
            votes[s] += 1
        return total / votes

    def predict(self, X):
        """Labels at mean marginal probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
