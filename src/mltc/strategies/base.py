"""Shared machinery of the multi-label samplers: input checks, row selection, neighbour search.

Every sampler follows imbalanced-learn's shape for a label *matrix*:
``fit_resample(X, Y) -> (X', Y')``. The base class validates the parameters and
the data, turns ``random_state`` into a generator and calls ``_fit_resample``;
subclasses write only that.
"""
from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

try:  # scipy's own sparse product kernels, called with reused buffers (see _product_into)
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - another scipy layout: the public product is used
    _sparsetools = None
from sklearn.utils import check_random_state

from mltc.progress import track
from mltc.runtime import job_cores

log = logging.getLogger(__name__)

__all__ = ["BaseMultilabelSampler", "check_X_Y", "take_rows", "stack_rows", "bag_neighbours"]


def check_X_Y(X, Y):
    """Validate a feature matrix and a binary label matrix for resampling.

    Returns
    -------
    X : CSR matrix or ndarray
        Sparse input comes back as CSR (same dtype), dense input as a 2-D ndarray.
    Y : ndarray of int8, shape (n_samples, n_labels)
    """
    if sp.issparse(X):
        X = X.tocsr()
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D feature matrix (documents x features), got shape {X.shape}.")
    Ya = Y.toarray() if sp.issparse(Y) else np.asarray(Y)
    if Ya.ndim != 2:
        raise ValueError(
            f"Y must be a 2-D binary label matrix (documents x labels), got shape {Ya.shape}; "
            "for a single label pass Y.reshape(-1, 1).")
    if Ya.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Ya.shape[0]}; they must describe the same documents.")
    if Ya.size and not np.isin(Ya, (0, 1)).all():
        bad = np.unique(Ya[~np.isin(Ya, (0, 1))])[:5]
        raise ValueError(f"Y must contain only 0 and 1 (a label indicator matrix); found values such as {bad.tolist()}.")
    return X, Ya.astype(np.int8, copy=False)


def take_rows(X, idx):
    """Rows ``idx`` of X, keeping its container (CSR stays CSR)."""
    return X[np.asarray(idx, dtype=np.intp)]


def stack_rows(X, X_new):
    """X followed by X_new, keeping X's container and dtype."""
    if sp.issparse(X):
        return sp.vstack([X, X_new], format="csr", dtype=X.dtype)
    return np.vstack([X, np.asarray(X_new, dtype=X.dtype)])


def float_features(X):
    """X with a floating dtype (interpolating integer counts would truncate them)."""
    if np.issubdtype(X.dtype, np.floating):
        return X
    return X.astype(np.float64)


def row_label_lists(Y):
    """(indptr, indices) of the positive labels of each row (CSR of Y)."""
    Ys = sp.csr_matrix(Y)
    return Ys.indptr, Ys.indices


def bag_neighbours(X, *, k, metric="euclidean", queries=None, chunk_size=None, return_scores=False, n_jobs=None):
    """Indices of the ``k`` nearest other rows of X, for every row of X (or for rows ``queries``).

    Brute force by blocks of dot products (sparse x sparse for CSR input), so
    that a bag of TF-IDF rows is never densified and memory stays bounded.
    A row is never its own neighbour. Rows with no nonzero feature (an empty
    TF-IDF row: a document without a word of the vocabulary) are never
    neighbours and have none: under ``metric="euclidean"`` they would be at the
    same distance from every unit-length row, and so the "nearest" neighbours of
    most documents. Where fewer than ``k`` rows qualify, the table is padded
    with ``-1`` (score ``-inf``). The top ``k`` of a row are ordered by score,
    then index; which of several rows tied at the k-th place are kept is
    ``numpy.argpartition``'s choice (deterministic for the same data).

    Parameters
    ----------
    X : CSR matrix or ndarray of shape (m, n_features)
    k : int
        Number of neighbours; the table has ``min(k, m - 1)`` columns.
    metric : {"euclidean", "cosine"}
    queries : array of int, optional
        Rows to find neighbours for (default: all rows).
    chunk_size : int, optional
        Query rows per block (default: small blocks for CSR input, which are
        computed row by row in the same arithmetic; blocks of ~64 MB of
        scores for dense input).
    return_scores : bool, default=False
        Also return the ranking score of each neighbour (higher is nearer), as
        :class:`mltc.neighbour_cache.NeighbourCache` needs to reuse a table.
    n_jobs : int, optional
        Threads for CSR input (the sparse products and partitions release the
        GIL); None means 1, -1 the job's cores. The result does not depend on it.

    Returns
    -------
    ndarray of shape (n_queries, min(k, m - 1)), nearest first, -1 for "none"
        (and the scores, same shape, when ``return_scores``).
    """
    m = X.shape[0]
    queries = np.arange(m) if queries is None else np.asarray(queries, dtype=np.intp)
    q = queries.size
    k = min(k, m - 1)
    if k <= 0 or q == 0:
        empty = np.empty((q, max(k, 0)), dtype=np.intp)
        return (empty, np.empty(empty.shape)) if return_scores else empty
    sparse = sp.issparse(X)
    has = _has_features(X)
    if metric == "cosine":
        norms = _row_norms(X)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        X = sp.diags(scale) @ X if sparse else X * scale[:, None]
        bias = None
    else:
        # ||a-b||^2 = ||a||^2 + ||b||^2 - 2ab: ranking by 2ab - ||b||^2 is enough
        bias = _row_norms(X) ** 2
    XT = X.T.tocsr() if sparse else X.T
    out = np.full((q, k), -1, dtype=np.intp)
    scores = np.full((q, k), -np.inf)
    none = np.flatnonzero(~has)
    if sparse:
        # each row's products are the same whatever rows share its block, so the blocks are free:
        # small ones stay in cache; rows without features are skipped (they have no neighbours)
        todo = np.flatnonzero(has[queries])
        chunk_size = chunk_size or max(1, min(64, 1_000_000 // max(m, 1)))
    else:
        # BLAS may round a row differently in another block: the blocks of the original version
        todo = np.arange(q)
        chunk_size = chunk_size or max(1, int(8_000_000 // max(m, 1)))
    blocks = [todo[s:s + chunk_size] for s in range(0, todo.size, chunk_size)]
    local = threading.local()

    direct = sparse and _direct_product_ok(X, XT)

    # rows of scores are cut into segments: the k smallest segment minima bound a row's k-th
    # smallest value, so only a few segments need a closer look (see _smallest)
    seg = min(64, m // (4 * k)) if k < m - 1 else 0
    width = -(-m // seg) * seg if seg >= 2 else m

    def search(pos):
        qi = queries[pos]
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty((chunk_size, width))
        Dp = buf[:pos.size]
        D = Dp[:, :m]
        if direct:
            _product_into(X[qi], XT, Dp, local, chunk_size)
        else:
            P = X[qi] @ XT
            D[...] = P.toarray() if sparse else P
        # D = ||b||^2 - 2ab (or -ab): ascending D is descending score, the same numbers as
        # -(2ab - ||b||^2) bit for bit, so argpartition makes the same choices
        if bias is not None:
            D *= -2.0
            D += bias
        else:
            np.negative(D, out=D)
        D[np.arange(pos.size), qi] = np.inf
        D[:, none] = np.inf
        Dp[:, m:] = np.inf
        if seg >= 2:
            nn, d = _smallest(Dp, m, k, seg)
        else:
            if k < m - 1:
                part = np.argpartition(D, k - 1, axis=1)[:, :k]
            else:
                part = np.argsort(D, axis=1, kind="stable")[:, :k]
            nn, d = _ordered(D, part)
        nn[d == np.inf] = -1
        out[pos] = nn
        scores[pos] = -d

    workers = _threads(n_jobs) if sparse else 1
    if workers > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for _ in track(pool.map(search, blocks), "nearest neighbours", total=len(blocks), min_seconds=1.0):
                pass
    else:
        for pos in track(blocks, "nearest neighbours", min_seconds=1.0):
            search(pos)
    if not sparse:
        out[~has[queries]] = -1
        scores[~has[queries]] = -np.inf
    return (out, scores) if return_scores else out


def _ordered(D, part):
    """Columns ``part`` of each row of D and their values, by value, then column (not argpartition's order)."""
    d = np.take_along_axis(D, part, axis=1)
    order = np.lexsort((part, d), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(d, order, axis=1)


def _smallest(Dp, m, k, seg):
    """``_ordered(D, argpartition(D, k - 1)[:, :k])`` for ``D = Dp[:, :m]``, mostly without a full partition.

    The k-th smallest minimum of the row's segments of ``seg`` columns (``Dp`` is padded with
    +inf to whole segments; a segment takes every ``n_seg``-th column, so that the minima are
    one vectorised pass) is at least the row's k-th smallest value, and every value up to it
    lies in a segment whose minimum is up to it: those few segments hold the k smallest values.
    Where they are unique (the k-th value is below the next), they are argpartition's
    choice; rows with a tie at the k-th place (or NaN, or fewer than k finite values) are
    partitioned in full, so ties are resolved as before.
    """
    n = Dp.shape[0]
    n_seg = Dp.shape[1] // seg
    # segment j holds columns j, j + n_seg, j + 2 n_seg, ...: a minimum over rows of a (seg, n_seg) view
    mins = Dp.reshape(n, seg, n_seg).min(axis=1)
    bound = np.partition(mins, k - 1, axis=1)[:, k - 1]
    rows, segs = np.nonzero(mins <= bound[:, None])
    r = np.repeat(rows, seg)
    cols = (segs[:, None] + n_seg * np.arange(seg)).ravel()
    vals = Dp[r, cols]
    keep = vals <= bound[r]
    r, cols, vals = r[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, vals, r))
    r, cols, vals = r[order], cols[order], vals[order]
    first = np.searchsorted(r, np.arange(n))
    count = np.diff(np.r_[first, r.size])
    full = count < k  # only NaN rows (every row has k values up to its bound)
    at = first[:, None] + np.arange(k)
    at = np.minimum(at, max(r.size - 1, 0))
    nn, d = cols[at], vals[at]
    nxt = vals[np.minimum(first + k, max(r.size - 1, 0))]
    full |= ((count > k) & (nxt == d[:, -1])) | ~np.isfinite(d[:, -1]) | np.isnan(mins).any(axis=1)
    if full.any():
        D = Dp[full, :m]
        nn[full], d[full] = _ordered(D, np.argpartition(D, k - 1, axis=1)[:, :k])
    return nn, d


def _direct_product_ok(X, XT) -> bool:
    """Whether :func:`_product_into` can run: float64 data, one index dtype, scipy's kernels where expected."""
    return (X.dtype == np.float64 and XT.dtype == np.float64
            and X.indices.dtype == X.indptr.dtype == XT.indices.dtype == XT.indptr.dtype and _kernels_work())


@functools.lru_cache(maxsize=1)
def _kernels_work() -> bool:
    """scipy's private kernels give the public product on a small case (else the public product is used)."""
    if _sparsetools is None:
        return False
    try:
        A = sp.random(5, 7, density=0.5, random_state=0, format="csr")
        BT = sp.random(9, 7, density=0.5, random_state=1, format="csr").T.tocsr()
        D = np.empty((5, 9))
        _product_into(A, BT, D, threading.local(), 5)
        return bool(np.array_equal(D, (A @ BT).toarray()))
    except Exception:  # noqa: BLE001 -- another scipy: fall back, never fail the search
        return False


def _product_into(Q, XT, D, local, chunk_size):
    """``D[:, :XT.shape[1]] = (Q @ XT).toarray()`` (zeros after) with the same kernel and numbers, in reused buffers.

    ``Q @ XT`` first counts the nonzeros of the product (a full extra pass) and allocates
    them; a block's product has at most ``D.size`` nonzeros, so buffers of that size
    are allocated once per thread and the counting pass is skipped (~30 % of the search).
    """
    n, m = D.shape
    idx = Q.indices.dtype
    bufs = getattr(local, "product", None)
    if bufs is None or bufs[1].dtype != idx or bufs[1].size < chunk_size * m:
        bufs = local.product = (np.empty(chunk_size + 1, dtype=idx), np.empty(chunk_size * m, dtype=idx),
                                np.empty(chunk_size * m))
    Cp, Cj, Cx = bufs
    _sparsetools.csr_matmat(n, m, Q.indptr, Q.indices, Q.data, XT.indptr, XT.indices, XT.data, Cp, Cj, Cx)
    D.fill(0.0)
    _sparsetools.csr_todense(n, m, Cp, Cj, Cx, D)


def _threads(n_jobs) -> int:
    """Threads for ``n_jobs`` as joblib counts them (-1: all, -2: all but one), over the job's cores
    (:func:`mltc.runtime.job_cores`: a sweep's worker gets its share, as BinaryRelevance's threads do)."""
    if n_jobs is None:
        return 1
    cores = job_cores()
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else min(n_jobs, cores))


def _has_features(X):
    """Whether each row has a nonzero entry (stored zeros do not count)."""
    if sp.issparse(X):
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        return np.bincount(rows[X.data != 0], minlength=X.shape[0]) > 0
    return (np.asarray(X) != 0).any(axis=1)


def _row_norms(X):
    if sp.issparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()).astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))


class BaseMultilabelSampler(BaseEstimator):
    """Base class of the multi-label samplers (imbalanced-learn's shape for a label matrix).

    Subclasses declare ``_parameter_constraints`` and implement
    ``_fit_resample(X, Y, rng) -> (X', Y', sample_indices)``, where ``X`` is CSR
    or a dense ndarray, ``Y`` an int8 ndarray and ``rng`` a ``RandomState``.
    ``sample_indices`` lists the input rows whose features the first
    ``len(sample_indices)`` output rows copy; rows after those are synthetic.
    """

    _parameter_constraints: dict = {}

    def fit_resample(self, X, Y):
        """Resample the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_labels)
            Binary label indicator matrix.

        Returns
        -------
        X_resampled : same container and dtype as X
        Y_resampled : ndarray with Y's dtype
        """
        self._validate_params()
        y_dtype = np.asarray(Y[:0] if not sp.issparse(Y) else Y[:0].toarray()).dtype
        X, Yc = check_X_Y(X, Y)
        rng = check_random_state(getattr(self, "random_state", None))
        X_out, Y_out, idx = self._fit_resample(X, Yc, rng)
        self.sample_indices_ = np.asarray(idx, dtype=np.intp)
        self.n_features_in_ = X.shape[1]
        self.n_labels_in_ = Yc.shape[1]
        return X_out, np.ascontiguousarray(Y_out).astype(y_dtype, copy=False)

    def _fit_resample(self, X, Y, rng):  # pragma: no cover - abstract
        raise NotImplementedError


def interpolate(X, seeds, refs, rng, *, with_ratio=False):
    """Synthetic rows ``x_seed + gap * (x_ref - x_seed)``, one U(0, 1) gap per feature.

    Gaps are drawn only where seed and reference differ, in row-major order, so
    CSR and dense inputs give the same rows for the same generator state.

    Parameters
    ----------
    X : CSR matrix or ndarray (floating dtype)
    seeds, refs : arrays of int
    rng : RandomState
    with_ratio : bool
        Also return ``d(new, seed) / (d(new, seed) + d(new, ref))`` (Euclidean;
        0.5 where seed and reference coincide), as MLSOL needs.
    """
    Xs = take_rows(X, seeds)
    Xr = take_rows(X, refs)
    if sp.issparse(X):
        D = (Xr - Xs).tocsr()
        D.sum_duplicates()
        D.eliminate_zeros()
        D.sort_indices()
        gaps = rng.random_sample(D.nnz).astype(X.dtype, copy=False)
        step = D.copy()
        step.data *= gaps
        new = (Xs + step).tocsr()
        if with_ratio:
            rows = np.repeat(np.arange(D.shape[0]), np.diff(D.indptr))
            d1 = np.sqrt(np.bincount(rows, (step.data.astype(np.float64)) ** 2, minlength=D.shape[0]))
            d2 = np.sqrt(np.bincount(rows, (D.data.astype(np.float64) - step.data) ** 2, minlength=D.shape[0]))
    else:
        D = Xr - Xs
        mask = D != 0
        step = np.zeros_like(D)
        step[mask] = D[mask] * rng.random_sample(int(mask.sum())).astype(X.dtype, copy=False)
        new = Xs + step
        if with_ratio:
            d1 = np.sqrt(np.einsum("ij,ij->i", step, step, dtype=np.float64))
            rest = D - step
            d2 = np.sqrt(np.einsum("ij,ij->i", rest, rest, dtype=np.float64))
    if not with_ratio:
        return new
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = d1 / (d1 + d2)
    return new, np.where(np.isfinite(ratio), ratio, 0.5)
