"""MLSOL: synthetic oversampling guided by local label imbalance (Liu, Blekas & Tsoumakas)."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.neighbour_cache import neighbours
from mltc.strategies.base import BaseMultilabelSampler, float_features, interpolate, stack_rows

log = logging.getLogger(__name__)

__all__ = ["MLSOL"]

MAJORITY, SAFE, BORDERLINE, RARE, OUTLIER = 0, 1, 2, 3, 4
# label threshold theta per type of the minority-class instance (Algorithm 3)
_THETA = np.array([np.nan, 0.5, 0.75, 1.0 + 1e-5, -1e-5])


class MLSOL(BaseMultilabelSampler):
    """MLSOL: multi-label synthetic oversampling based on local label imbalance.

    For each instance i and label j where i holds the label's minority class,
    C_ij is the share of its ``k_neighbors`` nearest neighbours (over the whole
    data) holding the other class (Eq. 1). Seeds are drawn with replacement
    with probability proportional to ``w_i = sum_j C_ij / sum_m C_mj`` over the
    pairs with C < 1 (Eq. 2); the reference is a random neighbour of the seed;
    features are ``seed + U(0, 1) * (reference - seed)`` per feature. Each
    (instance, label) pair is typed safe (C < 0.3), borderline (< 0.7), rare
    (< 1) or outlier, and rare pairs with a safe or borderline neighbour become
    borderline until nothing changes (Algorithm 2). Where seed and reference
    disagree on a label, the synthetic instance takes the minority-class
    instance's value if its relative distance to it is at most 0.5 (safe),
    0.75 (borderline), always (rare) or never (outlier) (Algorithm 3).

    Rows without any nonzero feature (e.g. a document with no word of the
    TF-IDF vocabulary) are nobody's neighbour and have none (see
    :func:`mltc.strategies.base.bag_neighbours`): they are never seeds or
    references, and their minority-class pairs are typed outlier. (They used
    to be at distance 1 from every unit-length TF-IDF row, and so the
    "nearest" neighbours of most documents.)

    B. Liu, K. Blekas, G. Tsoumakas, "Multi-label sampling based on local label
    imbalance", Pattern Recognition 122 (2022) 108294,
    doi:10.1016/j.patcog.2021.108294 (first version: "Synthetic oversampling of
    multi-label data based on local label distribution", ECML PKDD 2019).

    Parameters
    ----------
    percentage : float, default=30
        Synthetic rows in % of the input size (the paper's P = 0.3).
    k_neighbors : int, default=5
    metric : {"euclidean", "cosine"}, default="euclidean"
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of the neighbour search (None: 1, -1: the job's cores); same results.
    neighbour_cache : NeighbourCache or None, default=None
        Reuses neighbour tables of the same features across runs (same results);
        ``mltc run`` sets it from ``cache.neighbours``.

    Attributes
    ----------
    sample_indices_ : ndarray
        ``arange(n)``: the originals come first; synthetic rows follow.
    weights_ : ndarray of shape (n,)
        Seed weights w.
    types_ : ndarray of int8, shape (n, n_labels)
        0 majority class, 1 safe, 2 borderline, 3 rare, 4 outlier.
    seed_indices_, reference_indices_ : ndarray
    """

    _parameter_constraints = {
        "percentage": [Interval(Real, 0, None, closed="left")],
        "k_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions({"euclidean", "cosine"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "neighbour_cache": [HasMethods(["neighbours"]), None],
    }

    def __init__(self, *, percentage=30.0, k_neighbors=5, metric="euclidean", random_state=None, n_jobs=None,
                 neighbour_cache=None):
        self.percentage = percentage
        self.k_neighbors = k_neighbors
        self.metric = metric
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.neighbour_cache = neighbour_cache

    def _fit_resample(self, X, Y, rng):
        n, L = Y.shape
        X = float_features(X)
        nn = neighbours(self.neighbour_cache, X, k=self.k_neighbors, metric=self.metric, n_jobs=self.n_jobs)
        k = nn.shape[1]
        valid = nn >= 0  # -1: no neighbour (rows without features have none and are none)
        n_valid = valid.sum(axis=1)
        ones = Y.sum(axis=0)
        # the minority class of a label is 1 unless positives outnumber negatives
        min_val = (ones <= n - ones).astype(np.int8)
        is_min = Y == min_val
        C = np.zeros((n, L))
        for j in range(k):
            C += (Y[nn[:, j]] != Y) & valid[:, j, None]
        # a row without neighbours counts as surrounded by the other class: never a seed
        C = np.divide(C, n_valid[:, None], out=np.ones_like(C), where=n_valid[:, None] > 0)
        scored = is_min & (C < 1)
        col = np.where(scored, C, 0.0).sum(axis=0)
        S = np.divide(np.where(scored, C, 0.0), col, out=np.zeros_like(C), where=col > 0)
        w = S.sum(axis=1)
        self.weights_ = w
        self.types_ = self._init_types(C, is_min, nn, valid)
        empty = np.empty(0, dtype=np.intp)
        self.seed_indices_ = self.reference_indices_ = empty
        target = int(n * self.percentage / 100)
        if target == 0 or k == 0 or w.sum() <= 0:
            if target:
                log.warning("MLSOL: nothing to generate: no minority instance has a neighbour of the other class "
                            "(all seed weights are 0).")
            return X, Y, np.arange(n)
        seed = rng.choice(n, size=target, p=w / w.sum())
        ref = nn[seed, (rng.random_sample(target) * n_valid[seed]).astype(np.intp)]
        X_new, cd = interpolate(X, seed, ref, rng, with_ratio=True)
        self.seed_indices_, self.reference_indices_ = seed, ref
        return stack_rows(X, X_new), np.vstack([Y, self._labels(Y, seed, ref, cd)]), np.arange(n)

    @staticmethod
    def _init_types(C, is_min, nn, valid):
        T = np.select([C < 0.3, C < 0.7, C < 1], [SAFE, BORDERLINE, RARE], OUTLIER).astype(np.int8)
        T[~is_min] = MAJORITY
        while nn.shape[1]:
            good = (T == SAFE) | (T == BORDERLINE)
            near_good = np.zeros_like(good)
            for j in range(nn.shape[1]):
                near_good |= good[nn[:, j]] & valid[:, j, None]
            change = (T == RARE) & near_good
            if not change.any():
                break
            T[change] = BORDERLINE
        return T

    def _labels(self, Y, seed, ref, cd):
        ys, yr = Y[seed], Y[ref]
        ts, tr = self.types_[seed], self.types_[ref]
        # judge each disagreeing label from the side of the instance holding its minority class
        swap = ts == MAJORITY
        t = np.where(swap, tr, ts)
        d = np.where(swap, 1.0 - cd[:, None], cd[:, None])
        y_min = np.where(swap, yr, ys)
        y_other = np.where(swap, ys, yr)
        with np.errstate(invalid="ignore"):
            take_min = d <= _THETA[t]
        out = np.where(ys == yr, ys, np.where(take_min, y_min, y_other))
        return out.astype(np.int8)
