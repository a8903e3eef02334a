"""The neighbour cache: exactly the neighbours (and resampled data) of a direct search, ties included."""
import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir

from mltc.app import CONF_DIR, run_config, use_neighbour_cache
from mltc.neighbour_cache import NeighbourCache
from mltc.strategies import MLSMOTE, MLSOL, REMEDIAL, MLeNN, SamplerChain
from mltc.strategies.base import bag_neighbours


def _tied_data(n=120, d=30, L=5, seed=0):
    """Sparse rows, some exact duplicates and some at one shared distance (ties), and an imbalanced Y."""
    rng = np.random.RandomState(seed)
    base = sp.random(n - d // 2 - 20, d, density=0.2, random_state=rng, format="csr")
    twins = base[rng.choice(base.shape[0], 20, replace=False)]
    X = sp.vstack([base, twins, sp.csr_matrix(np.eye(d)[: d // 2])], format="csr")
    p = np.array([0.5, 0.3, 0.1, 0.06, 0.03])[:L]
    Y = (rng.rand(n, L) < p).astype(np.int8)
    return X, Y


def test_tables_equal_a_direct_search_for_every_k_and_query_set(tmp_path):
    X, _ = _tied_data()
    cache = NeighbourCache(tmp_path)
    full = cache.neighbours(X, k=5)
    np.testing.assert_array_equal(full, bag_neighbours(X, k=5))
    assert (cache.misses, cache.hits) == (1, 0)
    queries = np.arange(0, X.shape[0], 3)
    for k in (5, 4, 3, 2, 1):
        got = NeighbourCache(tmp_path).neighbours(X, k=k, queries=queries)  # a fresh object: read from disk
        np.testing.assert_array_equal(got, bag_neighbours(X, k=k, queries=queries))
    # the duplicates tie at the k-th rank for some rows: those were searched again, the others reused
    c = NeighbourCache(tmp_path)
    first = c.neighbours(X, k=1)
    assert c.partial == 1 and c.misses == 0
    np.testing.assert_array_equal(c.neighbours(X, k=1), first)  # the assembled table was stored: one read
    assert c.hits == 1 and c.partial == 1
    # cosine and another matrix are other entries
    np.testing.assert_array_equal(cache.neighbours(X, k=3, metric="cosine"), bag_neighbours(X, k=3, metric="cosine"))
    X2 = X.copy()
    X2.data[0] += 1e-9
    np.testing.assert_array_equal(cache.neighbours(X2, k=3), bag_neighbours(X2, k=3))
    assert cache.misses == 3


def test_dense_tables_are_reused_only_for_the_same_request(tmp_path):
    X = np.random.RandomState(1).rand(40, 6)
    cache = NeighbourCache(tmp_path)
    np.testing.assert_array_equal(cache.neighbours(X, k=4), bag_neighbours(X, k=4))
    np.testing.assert_array_equal(cache.neighbours(X, k=4), bag_neighbours(X, k=4))
    np.testing.assert_array_equal(cache.neighbours(X, k=2, queries=[3, 7]), bag_neighbours(X, k=2, queries=[3, 7]))
    assert (cache.hits, cache.misses) == (1, 2)


def _same(a, b):
    (Xa, Ya), (Xb, Yb) = a, b
    assert Xa.shape == Xb.shape and (Xa != Xb).nnz == 0
    np.testing.assert_array_equal(Ya, Yb)


@pytest.mark.parametrize("make", [
    lambda c: MLSOL(random_state=0, neighbour_cache=c),
    lambda c: MLeNN(threshold=0.5, neighbour_cache=c),
    lambda c: MLSMOTE(random_state=0, neighbour_cache=c),
    lambda c: SamplerChain(steps=[REMEDIAL(), MLSMOTE(random_state=0, neighbour_cache=c)]),
], ids=["mlsol", "mlenn", "mlsmote", "remedial_mlsmote"])
def test_samplers_resample_identically_with_and_without_the_cache(make, tmp_path):
    X, Y = _tied_data()
    plain = make(None).fit_resample(X, Y)
    cache = NeighbourCache(tmp_path)
    first = make(cache).fit_resample(X, Y)
    again = make(cache).fit_resample(X, Y)
    _same(plain, first)
    _same(plain, again)
    assert cache.misses >= 1 and cache.hits >= 1
    assert plain[0].shape != X.shape or make(None).__class__ is MLeNN  # the sampler did change the data


def test_mlenn_after_mlsol_reuses_its_table_and_removes_the_same_rows(tmp_path):
    X, Y = _tied_data(n=150, seed=2)
    cache = NeighbourCache(tmp_path)
    MLSOL(random_state=0, neighbour_cache=cache).fit_resample(X, Y)  # k=5 over all rows
    plain, cached = MLeNN(threshold=0.5), MLeNN(threshold=0.5, neighbour_cache=cache)
    _same(plain.fit_resample(X, Y), cached.fit_resample(X, Y))
    np.testing.assert_array_equal(plain.removed_indices_, cached.removed_indices_)
    assert plain.removed_indices_.size > 0
    assert cache.misses == 1 and cache.hits + cache.partial == 1


def test_damaged_entry_is_a_miss_and_the_cap_evicts_old_tables(tmp_path):
    X, _ = _tied_data()
    cache = NeighbourCache(tmp_path)
    cache.neighbours(X, k=3)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"not a table")
    np.testing.assert_array_equal(NeighbourCache(tmp_path).neighbours(X, k=3), bag_neighbours(X, k=3))
    small = NeighbourCache(tmp_path, max_bytes=1)
    for metric in ("euclidean", "cosine"):
        small.neighbours(X, k=2, metric=metric)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # only the newest stays past the cap
    assert not list(tmp_path.glob("*.tmp"))


def _compose(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_app_hands_the_cache_to_samplers_and_runs_give_the_same_metrics(tmp_path):
    small = ["dataset.n_docs=300", "dataset.n_labels=5", "tracking=none", f"cache.dir={tmp_path}",
             "cache.features=false"]
    chain = SamplerChain(steps=[REMEDIAL(), MLSMOTE()])
    use_neighbour_cache(chain, _compose(small).cache)
    assert isinstance(chain.steps[1].get_params()["neighbour_cache"], NeighbourCache)
    off = MLSOL()
    use_neighbour_cache(off, _compose([*small, "cache.neighbours=false"]).cache)
    assert off.neighbour_cache is None
    for strategy in ("mlsol", "mlenn"):
        _, plain = run_config(_compose([*small, f"strategy={strategy}", "cache.neighbours=false"]))
        _, cached = run_config(_compose([*small, f"strategy={strategy}"]))
        assert cached.metrics == plain.metrics and cached.val_metrics == plain.val_metrics
    assert list((tmp_path / "neighbours").glob("*.npz"))


def test_scores_are_the_ranking_scores_nearest_first():
    X, _ = _tied_data()
    nn, sc = bag_neighbours(X, k=4, return_scores=True)
    np.testing.assert_array_equal(nn, bag_neighbours(X, k=4))
    D = X.toarray()
    sq = (D ** 2).sum(axis=1)
    # euclidean: 2 a.b - |b|^2 = |a|^2 - |a - b|^2, larger is nearer
    want = 2 * np.einsum("ij,ikj->ik", D, D[nn]) - sq[nn]
    empty = sq == 0  # rows without features have no neighbours: -1, score -inf
    assert empty.any() and (nn[empty] == -1).all() and (sc[empty] == -np.inf).all()
    np.testing.assert_allclose(sc[~empty], want[~empty], atol=1e-12)
    assert (np.diff(sc[~empty], axis=1) <= 0).all()
