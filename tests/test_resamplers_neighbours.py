"""The neighbour search: rows without features are nobody's neighbour, and the faster search gives the old tables."""
import numpy as np
import pytest
import scipy.sparse as sp

from mltc.strategies import MLSMOTE, MLSOL, MLeNN
from mltc.strategies.base import bag_neighbours


def _reference(X, k, metric="euclidean", queries=None):
    """The search as it was before (one block of 64 MB of scores, argpartition on -score), empty rows included."""
    m = X.shape[0]
    queries = np.arange(m) if queries is None else np.asarray(queries)
    k = min(k, m - 1)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()).astype(np.float64)
    if metric == "cosine":
        X = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ X
        bias = None
    else:
        bias = norms ** 2
    S = (X[queries] @ X.T.tocsr()).toarray().astype(np.float64)
    if bias is not None:
        S = 2.0 * S - bias[None, :]
    S[np.arange(queries.size), queries] = -np.inf
    part = (np.argpartition(-S, k - 1, axis=1)[:, :k] if k < m - 1
            else np.argsort(-S, axis=1, kind="stable")[:, :k])
    sc = np.take_along_axis(S, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -sc), axis=1), axis=1)


def _tied_rows(rng, n, d, dtype=np.float64):
    """Sparse rows with coarse values (many equal scores), duplicated rows, unsorted indices, no empty row."""
    X = sp.random(n, d, density=0.3, random_state=rng, format="csr")
    X.data = np.round(X.data * 4) / 4 + 0.25
    X = sp.vstack([X, X[rng.choice(n, n // 3)], sp.eye(min(n, d), d, format="csr")], format="csr")
    X = X[np.diff(X.indptr) > 0]
    perm = np.concatenate([rng.permutation(np.arange(a, b)) for a, b in zip(X.indptr[:-1], X.indptr[1:])])
    X = sp.csr_matrix((X.data[perm], X.indices[perm], X.indptr), shape=X.shape)  # as TfidfVectorizer leaves them
    return X.astype(dtype)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_tables_are_those_of_the_previous_search_ties_included(metric):
    rng = np.random.RandomState(0)
    for trial in range(12):
        X = _tied_rows(rng, rng.randint(10, 150), rng.randint(4, 30), np.float32 if trial % 4 == 3 else np.float64)
        m = X.shape[0]
        queries = rng.choice(m, m // 2, replace=False) if trial % 2 else None
        for k in (1, 3, 5, m - 1, m + 1):
            want = _reference(X, k, metric, queries)
            for chunk, jobs in ((None, None), (3, None), (5, 2)):
                got = bag_neighbours(X, k=k, metric=metric, queries=queries, chunk_size=chunk, n_jobs=jobs)
                np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}, k={k}, chunk {chunk}, jobs {jobs}")
    # the data had rows tied at the k-th place, where argpartition (not the index) decides
    nn, sc = bag_neighbours(X, k=2, return_scores=True)
    assert (sc[:, 1] == bag_neighbours(X, k=3, return_scores=True)[1][:, 2]).any()


def _with_empty_row():
    # a, b, c are unit rows with cosine 0 or 0.6 to each other: farther apart (distance >= 0.89)
    # than a is from the empty row e (distance 1 < sqrt(2))
    return sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0.6, 0.8], [0, 0, 0]]))


def test_rows_without_features_are_no_neighbours_and_have_none():
    X = _with_empty_row()
    assert _reference(X, 1)[0, 0] == 3  # the previous search: a's nearest neighbour was the empty row
    for Xin in (X, X.toarray()):
        nn, sc = bag_neighbours(Xin, k=3, return_scores=True)
        np.testing.assert_array_equal(nn, [[1, 2, -1], [2, 0, -1], [1, 0, -1], [-1, -1, -1]])
        assert (sc[nn == -1] == -np.inf).all() and np.isfinite(sc[nn >= 0]).all()
        np.testing.assert_array_equal(bag_neighbours(Xin, k=1, metric="cosine"), [[1], [2], [1], [-1]])
    # a stored zero is no feature either
    Xz = sp.csr_matrix((np.r_[X.data, 0.0], np.r_[X.indices, 1], np.r_[X.indptr[:-1], X.nnz + 1]), shape=X.shape)
    np.testing.assert_array_equal(bag_neighbours(Xz, k=1), [[1], [2], [1], [-1]])


def _text_like(seed=0, n=200, d=40, n_empty=8):
    """L2-normalised sparse rows (as TF-IDF), some of them empty, and imbalanced labels."""
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=0.08, random_state=rng, format="csr")
    X = X[np.diff(X.indptr) > 0]
    X = sp.diags(1 / np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())) @ X
    X = sp.vstack([X, sp.csr_matrix((n_empty, d))], format="csr")[rng.permutation(X.shape[0] + n_empty)]
    Y = (rng.rand(X.shape[0], 4) < [0.5, 0.2, 0.08, 0.04]).astype(np.int8)
    return X.tocsr(), Y


def test_samplers_neither_use_nor_copy_rows_without_features():
    X, Y = _text_like()
    empty = np.flatnonzero(np.diff(X.indptr) == 0)
    assert empty.size == 8
    s = MLSOL(random_state=0)
    X2, _ = s.fit_resample(X, Y)
    assert X2.shape[0] > X.shape[0]
    assert not np.isin(s.seed_indices_, empty).any() and not np.isin(s.reference_indices_, empty).any()
    assert (s.weights_[empty] == 0).all()
    m = MLSMOTE(random_state=0)
    m.fit_resample(X, Y)
    assert m.seed_indices_.size and not np.isin(np.r_[m.seed_indices_, m.reference_indices_], empty).any()
    e = MLeNN(threshold=0.5)
    e.fit_resample(X, Y)
    assert e.removed_indices_.size and not np.isin(e.removed_indices_, empty).any()


def test_samplers_give_the_same_data_with_threads():
    X, Y = _text_like(seed=1)
    for make in (lambda j: MLSOL(random_state=0, n_jobs=j), lambda j: MLeNN(n_jobs=j),
                 lambda j: MLSMOTE(random_state=0, n_jobs=j)):
        (Xa, Ya), (Xb, Yb) = make(None).fit_resample(X, Y), make(2).fit_resample(X, Y)
        assert (Xa != Xb).nnz == 0
        np.testing.assert_array_equal(Ya, Yb)


def test_neighbour_threads_count_the_jobs_cores(monkeypatch):
    # a sweep's launcher gives each job its share of the cores through OMP_NUM_THREADS; -1 means that share,
    # as for BinaryRelevance's threads, not every core of the machine
    from mltc.strategies.base import _threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads(-1) == 1 and _threads(4) == 1 and _threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _threads(-1) == 3 and _threads(-2) == 2 and _threads(2) == 2
