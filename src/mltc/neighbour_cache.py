"""Reuse nearest-neighbour tables of the training features: a content-addressed, size-capped cache on disk.

MLSOL, MLeNN and MLSMOTE search the k nearest neighbours of training rows
(:func:`mltc.strategies.base.bag_neighbours`, brute force, the bulk of their time). The jobs
of a sweep resample the same training matrix, so :class:`NeighbourCache` keeps every table it
computes, under a key made of the matrix's content (format, dtype, shape, data, indices,
indptr) and the metric, with the table's k and rows in the entry.

A request is answered with exactly what :func:`bag_neighbours` would return:

* the same k and rows as a stored table (or, for sparse X, the same k and other rows): that table (the same code computed it);
* a smaller k: a query row's first k neighbours of a wider table are the same as a direct
  search's only when the k-th score is strictly above the (k+1)-th (then the top-k set is
  unique and both order it by score, then index). Rows with a tie there (which a direct
  search resolves by ``argpartition``) are searched directly, so ties resolve as before.

Rows of a sparse matrix are searched one by one in the same arithmetic whatever the other
query rows are; a dense matrix goes through BLAS, whose rounding may depend on the block,
so dense tables are only reused for the identical request.

Entries are ``.npz`` files written to a temporary file and moved into place with
:func:`os.replace` (parallel jobs read whole entries only); reading one updates its
modification time, and past ``max_bytes`` the least recently used go first.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mltc.disk_cache import atomic_write, read_entry, trim_lru

log = logging.getLogger(__name__)

__all__ = ["NeighbourCache", "neighbours"]

_SUFFIX = ".npz"


def neighbours(cache, X, *, k, metric="euclidean", queries=None, n_jobs=None):
    """:func:`bag_neighbours` through ``cache`` (None: computed directly); ``n_jobs`` threads search."""
    from mltc.strategies.base import bag_neighbours  # here: the samplers import this module

    if cache is None:
        return bag_neighbours(X, k=k, metric=metric, queries=queries, n_jobs=n_jobs)
    return cache.neighbours(X, k=k, metric=metric, queries=queries, n_jobs=n_jobs)


def matrix_key(X, metric) -> str:
    """SHA-256 of the matrix's content and the metric (the part of the key shared by its tables)."""
    h = hashlib.sha256()
    if sp.issparse(X):
        X = X.tocsr()
        h.update(f"csr {X.dtype} {X.shape} {metric}".encode())
        for a in (X.indptr, X.indices, X.data):
            h.update(f"{a.dtype}{a.size}".encode())
            h.update(np.ascontiguousarray(a).data)
    else:
        X = np.ascontiguousarray(X)
        h.update(f"dense {X.dtype} {X.shape} {metric}".encode())
        h.update(X.data)
    return h.hexdigest()[:32]


class NeighbourCache:
    """Nearest-neighbour tables on disk, keyed by the feature matrix, the metric, k and the query rows.

    Parameters
    ----------
    directory : str or Path
        Where entries live (created on first write); ``<runs>/cache/neighbours`` from the CLI.
    max_bytes : int, default=1 GB
        Size cap; the least recently used entries are removed after a write past it.

    Attributes
    ----------
    hits, partial, misses : int
        Requests answered wholly from a table, partly (rows with ties searched again), not at all.

    Examples
    --------
    >>> import tempfile, numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.random.RandomState(0).rand(6, 4))
    >>> cache = NeighbourCache(tempfile.mkdtemp())
    >>> a = cache.neighbours(X, k=3)
    >>> b = cache.neighbours(X, k=2, queries=[1, 4])
    >>> bool((b == a[[1, 4], :2]).all()), cache.misses, cache.hits
    (True, 1, 1)
    """

    def __init__(self, directory, *, max_bytes: int = 1024 ** 3):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.hits = self.partial = self.misses = 0

    def neighbours(self, X, *, k, metric="euclidean", queries=None, n_jobs=None):
        """Exactly :func:`bag_neighbours` ``(X, k=k, metric=metric, queries=queries)``, reusing stored tables.

        ``n_jobs`` only sets the threads of a search (the result does not depend on it).
        """
        from mltc.strategies.base import bag_neighbours

        m = X.shape[0]
        rows = np.arange(m) if queries is None else np.asarray(queries, dtype=np.intp)
        k_eff = min(k, m - 1)
        if k_eff <= 0 or rows.size == 0:
            return bag_neighbours(X, k=k, metric=metric, queries=queries, n_jobs=n_jobs)
        base = matrix_key(X, metric)
        qkey = hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).data).hexdigest()[:16]
        name = f"{base}-k{k_eff}-{qkey}"
        exact = self._load(name)
        if exact is not None:
            self.hits += 1
            return exact[0]
        out = np.full((rows.size, k_eff), -1, dtype=np.intp)
        out_sc = np.empty((rows.size, k_eff))
        todo = np.ones(rows.size, dtype=bool)
        if sp.issparse(X):
            for path in self._tables(base):
                if not todo.any():
                    break
                width = int(path.stem.split("-k")[1].split("-")[0])
                if width < k_eff:
                    continue
                entry = self._load(path.stem)
                if entry is None:
                    continue
                nn, sc, entry_rows = entry
                pos = np.full(m, -1, dtype=np.intp)
                pos[entry_rows] = np.arange(entry_rows.size)
                at = pos[rows]
                ok = todo & (at >= 0)
                if width > k_eff:
                    # the first k are those of a direct search only where the k-th score beats the (k+1)-th
                    ok[ok] = sc[at[ok], k_eff - 1] > sc[at[ok], k_eff]
                out[ok] = nn[at[ok], :k_eff]
                out_sc[ok] = sc[at[ok], :k_eff]
                todo &= ~ok
        if not todo.any():
            self.hits += 1
            return out
        if todo.all():
            self.misses += 1
        else:
            self.partial += 1
        out[todo], out_sc[todo] = bag_neighbours(X, k=k, metric=metric, queries=rows[todo], return_scores=True,
                                               n_jobs=n_jobs)
        # stored under this request's name too: the same request next time is one read
        self._store(name, out, out_sc, rows)
        return out

    # -- storage -------------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}{_SUFFIX}"

    def _tables(self, base: str) -> list[Path]:
        if not self.directory.is_dir():
            return []
        # widest first: it answers the most k
        return sorted(self.directory.glob(f"{base}-k*{_SUFFIX}"),
                      key=lambda p: -int(p.stem.split("-k")[1].split("-")[0]))

    def _load(self, name: str):
        def load(path):
            with np.load(path) as z:
                return z["nn"].astype(np.intp, copy=False), z["scores"], z["rows"].astype(np.intp, copy=False)

        return read_entry(self._path(name), load, log=log, what="neighbour cache", redo="searching again")

    def _store(self, name: str, nn, scores, rows) -> None:
        if atomic_write(self.directory, self._path(name), lambda f: np.savez(f, nn=nn, scores=scores, rows=rows),
                        log=log, what="neighbour cache", switch="cache.neighbours=false"):
            self.trim()

    def trim(self) -> None:
        """Remove least recently used entries until the cache holds at most ``max_bytes``."""
        paths = self.directory.glob(f"*{_SUFFIX}") if self.directory.is_dir() else []
        trim_lru(paths, self.max_bytes, log=log, what="neighbour cache")
