"""Random multi-label resampling: ML-ROS, ML-RUS, LP-ROS and LP-RUS.

All four come from F. Charte, A. J. Rivera, M. J. del Jesus and F. Herrera,
"Addressing imbalance in multilabel classification: Measures and random
resampling algorithms", Neurocomputing 163 (2015) 3-16,
doi:10.1016/j.neucom.2014.08.091. Output rows are copies of input rows, so
``sample_indices_`` describes the whole output: ``X_out == X[sample_indices_]``.
"""
from __future__ import annotations

import logging
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from mltc.imbalance import irlbl, label_counts, mean_ir
from mltc.strategies.base import BaseMultilabelSampler, row_label_lists, take_rows

log = logging.getLogger(__name__)

__all__ = ["MLROS", "MLRUS", "LPROS", "LPRUS"]

_CHUNK = 65536


class _Uniforms:
    """Uniform draws from a RandomState, fetched in blocks (a Python loop asks one at a time)."""

    def __init__(self, rng):
        self.rng, self.buf, self.pos = rng, [], 0

    def __call__(self) -> float:
        if self.pos == len(self.buf):
            self.buf, self.pos = self.rng.random_sample(_CHUNK).tolist(), 0
        self.pos += 1
        return self.buf[self.pos - 1]


class _PercentageSampler(BaseMultilabelSampler):
    """What the four random samplers share: a budget of ``percentage`` % of the input rows, and a seed."""

    @staticmethod
    def constraints(max_percentage):
        """``percentage`` in [0, max_percentage) (None: no upper bound) and ``random_state``."""
        return {"percentage": [Interval(Real, 0, max_percentage, closed="left")], "random_state": ["random_state"]}

    def __init__(self, *, percentage=25.0, random_state=None):
        self.percentage = percentage
        self.random_state = random_state

    def _budget(self, n):
        """Rows to clone or delete: ``percentage`` % of ``n``, rounded down."""
        return int(n * self.percentage / 100)


class MLROS(_PercentageSampler):
    """ML-ROS: random oversampling of the instances of minority labels.

    One bag per minority label (IRLbl > MeanIR of the input). Bags take turns
    (round robin) cloning a random member until ``percentage`` % of the input
    size has been cloned; a bag leaves as soon as its label's IRLbl, recomputed
    after every clone, is no longer above MeanIR. Sampling stops early when every
    bag has left. Charte et al., Neurocomputing 163 (2015), Algorithm 1.

    Parameters
    ----------
    percentage : float, default=25
        Clone budget, in % of the number of input rows.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sample_indices_ : ndarray
        Input row of every output row (originals first, then clones).
    minority_labels_ : ndarray
        Labels that had a bag.

    Examples
    --------
    >>> import numpy as np
    >>> from mltc.strategies.ros_rus import MLROS
    >>> Y = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> X2, Y2 = MLROS(percentage=40, random_state=0).fit_resample(X, Y)
    >>> X2.shape
    (7, 2)
    """

    _parameter_constraints = _PercentageSampler.constraints(max_percentage=None)

    def _fit_resample(self, X, Y, rng):
        n, budget = Y.shape[0], self._budget(Y.shape[0])
        counts, mir, ir = _imbalance(Y)
        minority = np.flatnonzero(np.isfinite(ir) & (ir > mir))
        self.minority_labels_ = minority
        clones = _round_robin_clone(Y, minority, budget, mir, counts, rng)
        idx = np.concatenate([np.arange(n), np.asarray(clones, dtype=np.intp)])
        return take_rows(X, idx), Y[idx], idx


def _imbalance(Y):
    """Positive counts, MeanIR and IRLbl of ``Y``: what decides ML-ROS's and ML-RUS's bags."""
    counts = label_counts(Y)
    return counts, mean_ir(counts=counts), irlbl(counts=counts)


def _bags(Y, labels, counts):
    """The round robin's state, as Python lists: each row's labels, the counts, the bags of ``labels``."""
    indptr, indices = (a.tolist() for a in row_label_lists(Y))
    cnt = counts.tolist()
    bags = [np.flatnonzero(Y[:, lab]).tolist() for lab in labels]
    return indptr, indices, cnt, (max(cnt) if cnt else 0), bags, list(range(len(labels))), labels.tolist()


def _round_robin_clone(Y, labels, budget, mir, counts, rng):
    # a Python loop on purpose: each clone changes the counts that decide the next step
    indptr, indices, cnt, maxc, bags, active, labels = _bags(Y, labels, counts)
    draw = _Uniforms(rng)
    clones = []
    while budget > 0 and active:
        keep = []
        for b in active:
            if budget == 0:
                keep.append(b)
                continue
            bag = bags[b]
            row = bag[int(draw() * len(bag))]
            clones.append(row)
            for j in indices[indptr[row]:indptr[row + 1]]:
                cnt[j] += 1
                if cnt[j] > maxc:
                    maxc = cnt[j]
            budget -= 1
            if maxc / cnt[labels[b]] > mir:
                keep.append(b)
        active = keep
    return clones


class MLRUS(_PercentageSampler):
    """ML-RUS: random undersampling of the instances of majority labels.

    One bag per majority label (IRLbl < MeanIR of the input). Bags take turns
    deleting a random remaining member until ``percentage`` % of the input size
    has been deleted; a bag leaves as soon as its label's recomputed IRLbl
    reaches MeanIR. Charte et al., Neurocomputing 163 (2015), Algorithm 2.

    Deviation from the paper, so that no label disappears: an instance is never
    deleted when it is the last remaining positive of any of its labels (such
    an instance is skipped and another member drawn).

    Parameters
    ----------
    percentage : float, default=25
        Deletion budget, in % of the number of input rows (below 100).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sample_indices_ : ndarray
        Kept input rows, in input order.
    majority_labels_ : ndarray
        Labels that had a bag.
    """

    _parameter_constraints = _PercentageSampler.constraints(max_percentage=100)

    def _fit_resample(self, X, Y, rng):
        n, budget = Y.shape[0], self._budget(Y.shape[0])
        counts, mir, ir = _imbalance(Y)
        majority = np.flatnonzero(np.isfinite(ir) & (ir < mir))
        self.majority_labels_ = majority
        deleted = _round_robin_delete(Y, majority, budget, mir, counts, rng)
        idx = np.flatnonzero(~deleted)
        return take_rows(X, idx), Y[idx], idx


def _round_robin_delete(Y, labels, budget, mir, counts, rng):
    indptr, indices, cnt, maxc, bags, active, labels = _bags(Y, labels, counts)
    deleted = bytearray(Y.shape[0])
    draw = _Uniforms(rng)
    while budget > 0 and active:
        keep = []
        for b in active:
            if budget == 0:
                keep.append(b)
                continue
            if maxc / cnt[labels[b]] >= mir:
                continue
            bag = bags[b]
            row = -1
            while bag:
                pos = int(draw() * len(bag))
                cand = bag[pos]
                # swap-remove: the candidate leaves this bag whether deleted, protected or already gone
                bag[pos] = bag[-1]
                bag.pop()
                if deleted[cand]:
                    continue
                labs = indices[indptr[cand]:indptr[cand + 1]]
                if any(cnt[j] == 1 for j in labs):
                    continue
                row = cand
                break
            if row < 0:
                continue
            deleted[row] = 1
            top = False
            for j in labs:
                top = top or cnt[j] == maxc
                cnt[j] -= 1
            if top:
                maxc = max(cnt)
            budget -= 1
            if maxc / cnt[labels[b]] < mir:
                keep.append(b)
        active = keep
    return np.frombuffer(bytes(deleted), dtype=np.uint8).astype(bool)


def _labelset_ids(Y):
    """Id of each row's label set, and the size of each label set's bag."""
    n, L = Y.shape
    if L == 0:
        return np.zeros(n, dtype=np.intp), np.array([n])
    packed = np.ascontiguousarray(np.packbits(Y.astype(bool), axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, inv, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    return inv.ravel(), sizes


def _share(budget, needs):
    """Split ``budget`` over bags with the given needs, in the given order.

    Each bag gets at most its need and at most an even share of what is left;
    what it does not use goes to the bags after it (the paper's remainder).
    """
    alloc = np.zeros(len(needs), dtype=np.int64)
    left = int(budget)
    for i, need in enumerate(needs):
        share = -(-left // (len(needs) - i))
        alloc[i] = min(int(need), share)
        left -= alloc[i]
    return alloc


class LPROS(_PercentageSampler):
    """LP-ROS: random oversampling of minority label sets (label powerset view).

    Label sets are classes; meanSize = |D| / number of distinct label sets. Bags
    smaller than meanSize share a clone budget of ``percentage`` % of |D|
    evenly; a bag takes at most what brings it to meanSize, and what it leaves
    goes to the remaining bags. Bags are served from the largest (needing
    least) to the smallest, so leftovers reach the rarest label sets. Charte et
    al., Neurocomputing 163 (2015), Algorithm 3.

    Parameters
    ----------
    percentage : float, default=25
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sample_indices_ : ndarray
        Input row of every output row (originals first, then clones).
    mean_size_ : float
    """

    _parameter_constraints = _PercentageSampler.constraints(max_percentage=None)

    def _fit_resample(self, X, Y, rng):
        n, budget = Y.shape[0], self._budget(Y.shape[0])
        ids, sizes = _labelset_ids(Y)
        self.mean_size_ = n / len(sizes)
        small = np.flatnonzero(sizes < self.mean_size_)
        small = small[np.lexsort((small, -sizes[small]))]
        needs = np.ceil(self.mean_size_).astype(np.int64) - sizes[small]
        alloc = _share(budget, needs)
        members = _members(ids, len(sizes))
        clones = [members[s][rng.randint(0, sizes[s], size=a)] for s, a in zip(small, alloc) if a > 0]
        idx = np.concatenate([np.arange(n)] + clones).astype(np.intp)
        return take_rows(X, idx), Y[idx], idx


class LPRUS(_PercentageSampler):
    """LP-RUS: random undersampling of majority label sets (label powerset view).

    Bags larger than meanSize = |D| / number of label sets share a deletion
    budget of ``percentage`` % of |D| evenly; a bag loses at most what brings it
    down to meanSize (so no label set, hence no label, disappears), and what it
    leaves goes to the larger bags. Charte et al., Neurocomputing 163 (2015),
    Algorithm 4.

    Parameters
    ----------
    percentage : float, default=25
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sample_indices_ : ndarray
        Kept input rows, in input order.
    mean_size_ : float
    """

    _parameter_constraints = _PercentageSampler.constraints(max_percentage=100)

    def _fit_resample(self, X, Y, rng):
        n, budget = Y.shape[0], self._budget(Y.shape[0])
        ids, sizes = _labelset_ids(Y)
        self.mean_size_ = n / len(sizes)
        big = np.flatnonzero(sizes > self.mean_size_)
        big = big[np.lexsort((big, sizes[big]))]
        excess = sizes[big] - np.ceil(self.mean_size_).astype(np.int64)
        alloc = _share(budget, np.maximum(excess, 0))
        members = _members(ids, len(sizes))
        keep = np.ones(n, dtype=bool)
        for s, a in zip(big, alloc):
            if a > 0:
                keep[rng.choice(members[s], size=a, replace=False)] = False
        idx = np.flatnonzero(keep)
        return take_rows(X, idx), Y[idx], idx


def _members(ids, n_sets):
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(n_sets + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_sets)]
