"""MLeNN: edited nearest neighbours for multi-label data (Charte et al., 2014)."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.imbalance import irlbl, label_counts, mean_ir
from mltc.neighbour_cache import neighbours
from mltc.strategies.base import BaseMultilabelSampler, take_rows

__all__ = ["MLeNN"]


class MLeNN(BaseMultilabelSampler):
    """MLeNN: remove majority instances whose label sets disagree with their neighbours.

    An instance carrying no minority label (IRLbl > MeanIR) is removed when the
    adjusted Hamming distance between its label set and those of at least half
    of its ``n_neighbors`` nearest neighbours exceeds ``threshold``. The
    adjusted Hamming distance is the number of differing labels divided by the
    number of active labels in both sets, ``|A xor B| / (|A| + |B|)`` (0 for two
    empty sets), as in the authors' mldr.resampling. Instances with a minority
    label are never removed. Neighbours are found once, over all instances.
    Rows without any nonzero feature (e.g. an empty TF-IDF row) are nobody's
    neighbour and have none, so they are kept (see
    :func:`mltc.strategies.base.bag_neighbours`; they used to be most
    documents' nearest neighbours on unit-length TF-IDF rows).
    Deterministic: there is no ``random_state``.

    F. Charte, A. J. Rivera, M. J. del Jesus, F. Herrera, "MLeNN: A first
    approach to heuristic multilabel undersampling", IDEAL 2014, LNCS 8669,
    1-9, doi:10.1007/978-3-319-10840-7_1.

    Parameters
    ----------
    n_neighbors : int, default=3
    threshold : float, default=0.75
        Adjusted Hamming distance above which two label sets differ (HT).
    metric : {"euclidean", "cosine"}, default="euclidean"
    n_jobs : int or None, default=None
        Threads of the neighbour search (None: 1, -1: the job's cores); same results.
    neighbour_cache : NeighbourCache or None, default=None
        Reuses neighbour tables of the same features across runs (same results);
        ``mltc run`` sets it from ``cache.neighbours``.

    Attributes
    ----------
    sample_indices_ : ndarray
        Kept input rows, in input order.
    removed_indices_ : ndarray
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, None, closed="left")],
        "metric": [StrOptions({"euclidean", "cosine"})],
        "n_jobs": [Integral, None],
        "neighbour_cache": [HasMethods(["neighbours"]), None],
    }

    def __init__(self, *, n_neighbors=3, threshold=0.75, metric="euclidean", n_jobs=None, neighbour_cache=None):
        self.n_neighbors = n_neighbors
        self.threshold = threshold
        self.metric = metric
        self.n_jobs = n_jobs
        self.neighbour_cache = neighbour_cache

    def _fit_resample(self, X, Y, rng):
        n = Y.shape[0]
        counts = label_counts(Y)
        ir = irlbl(counts=counts)
        minority = np.flatnonzero(np.isfinite(ir) & (ir > mean_ir(counts=counts)))
        candidates = np.flatnonzero(Y[:, minority].sum(axis=1) == 0)
        nn = neighbours(self.neighbour_cache, X, k=self.n_neighbors, metric=self.metric, queries=candidates,
                        n_jobs=self.n_jobs)
        remove = np.zeros(n, dtype=bool)
        if nn.shape[1]:
            valid = nn >= 0  # -1: no neighbour (rows without features have none and are none)
            n_valid = valid.sum(axis=1)
            Yc = Y[candidates].astype(np.int32)
            size_c = Yc.sum(axis=1)
            n_diff = np.zeros(candidates.size, dtype=np.int64)
            for j in range(nn.shape[1]):
                Yn = Y[nn[:, j]].astype(np.int32)
                differ = (Yc != Yn).sum(axis=1)
                active = size_c + Yn.sum(axis=1)
                dist = np.divide(differ, active, out=np.zeros(differ.shape, dtype=float), where=active > 0)
                n_diff += (dist > self.threshold) & valid[:, j]
            remove[candidates[(n_valid > 0) & (n_diff >= n_valid / 2)]] = True
        self.removed_indices_ = np.flatnonzero(remove)
        idx = np.flatnonzero(~remove)
        return take_rows(X, idx), Y[idx], idx
