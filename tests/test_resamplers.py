"""Behaviour of each multi-label sampler against independent expectations (formulas, naive loops, sklearn)."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from mltc.strategies.base import bag_neighbours
from mltc.strategies.chain import SamplerChain
from mltc.strategies.mlenn import MLeNN
from mltc.strategies.mlsmote import MLSMOTE
from mltc.strategies.mlsol import MLSOL
from mltc.strategies.remedial import REMEDIAL
from mltc.strategies.ros_rus import LPROS, LPRUS, MLROS, MLRUS

GOLDEN = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]], dtype=np.int8)


def _irlbl(Y):
    c = Y.sum(axis=0).astype(float)
    return c.max() / c


def _minority(Y):
    c = Y.sum(axis=0).astype(float)
    present = c > 0
    ir = np.full(c.shape, np.inf)
    ir[present] = c.max() / c[present]
    return np.flatnonzero(present & (ir > ir[present].mean()))


def _data(n=240, L=6, F=12, seed=0, rates=(0.5, 0.3, 0.12, 0.06, 0.04, 0.02)):
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, L) < np.asarray(rates)[:L]).astype(np.int8)
    X = rng.rand(n, F)
    return X, Y


# ---------------------------------------------------------------- REMEDIAL


def test_remedial_golden_vector():
    X = np.arange(10.0).reshape(5, 2)
    sampler = REMEDIAL()
    X2, Y2 = sampler.fit_resample(X, GOLDEN)
    # IRLbl = [1, 2, 4, 4], MeanIR = 2.75: labels 3 and 4 (0-based 2, 3) are minority
    np.testing.assert_array_equal(sampler.minority_labels_, [2, 3])
    np.testing.assert_array_equal(sampler.split_indices_, [0, 3])
    assert Y2.shape == (7, 4)
    np.testing.assert_array_equal(Y2.sum(axis=0), GOLDEN.sum(axis=0))
    np.testing.assert_array_equal(Y2[[0, 3]], [[1, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(Y2[5:], [[0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(X2[5:], X[[0, 3]])
    # only rows {1, 2} (IRLbl 1 and 2) still mix labels: SCUMBLE = 2 * (1 - sqrt(1*2) / 1.5) / 7
    from mltc.imbalance import scumble
    expected = 2 * (1 - math.sqrt(2) / 1.5) / 7
    assert scumble(Y2) == pytest.approx(expected, rel=1e-9)
    assert scumble(Y2) == pytest.approx(0.01634, abs=1e-5)


# ---------------------------------------------------------------- neighbours


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("sparse", [False, True])
def test_bag_neighbours_match_sklearn(metric, sparse):
    rng = np.random.RandomState(1)
    X = rng.rand(60, 9) * (rng.rand(60, 9) < 0.6)
    Xin = sp.csr_matrix(X) if sparse else X
    got = bag_neighbours(Xin, k=4, metric=metric, chunk_size=7)
    nn = NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(X)
    ref = nn.kneighbors(X, return_distance=False)
    for i in range(60):
        expected = [r for r in ref[i] if r != i][:4]
        np.testing.assert_array_equal(got[i], expected)


def test_bag_neighbours_small_bag_returns_all_others():
    X = np.array([[1.0], [2.0], [4.0]])  # no all-zero row: those have no neighbours
    got = bag_neighbours(X, k=5)
    np.testing.assert_array_equal(got, [[1, 2], [0, 2], [1, 0]])


# ---------------------------------------------------------------- MLSMOTE


def _expected_labels(Y, seed, nbrs, rule):
    rows = np.vstack([Y[seed], Y[nbrs]])
    cnt = rows.sum(axis=0)
    if rule == "ranking":
        return (cnt > rows.shape[0] / 2).astype(np.int8)
    if rule == "union":
        return (cnt > 0).astype(np.int8)
    return (cnt == rows.shape[0]).astype(np.int8)


@pytest.mark.parametrize("rule", ["ranking", "union", "intersection"])
def test_mlsmote_natural_size_interpolation_and_label_rule(rule):
    X, Y = _data(seed=2)
    Y[:, 5] = 0
    Y[7, 5] = 1  # a minority bag of one: skipped
    k = 3
    sampler = MLSMOTE(k_neighbors=k, label_generation=rule, random_state=0)
    X2, Y2 = sampler.fit_resample(X, Y)
    minority = _minority(Y)
    sizes = Y[:, minority].sum(axis=0)
    assert X2.shape[0] == len(X) + sizes[sizes >= 2].sum()
    np.testing.assert_array_equal(sampler.skipped_labels_, [5])
    np.testing.assert_array_equal(X2[: len(X)], X)
    seeds, refs = sampler.seed_indices_, sampler.reference_indices_
    new = X2[len(X):]
    lo, hi = np.minimum(X[seeds], X[refs]), np.maximum(X[seeds], X[refs])
    assert np.all(new >= lo - 1e-12) and np.all(new <= hi + 1e-12)
    for r in range(new.shape[0]):
        lab = sampler.bag_labels_[r]
        bag = np.flatnonzero(Y[:, lab])
        nn = NearestNeighbors(n_neighbors=min(k + 1, bag.size)).fit(X[bag])
        idx = bag[nn.kneighbors(X[[seeds[r]]], return_distance=False)[0]]
        nbrs = idx[idx != seeds[r]][:k]
        assert refs[r] in nbrs
        np.testing.assert_array_equal(Y2[len(X) + r], _expected_labels(Y, seeds[r], nbrs, rule))
        assert Y2[len(X) + r, lab] == 1


def test_mlsmote_features_vary_per_feature():
    X, Y = _data(seed=3)
    sampler = MLSMOTE(random_state=0)
    X2, _ = sampler.fit_resample(X, Y)
    s, r = sampler.seed_indices_, sampler.reference_indices_
    gaps = (X2[len(X):] - X[s]) / (X[r] - X[s])
    # one uniform draw per feature: the gaps of a row are not all equal
    assert np.mean(np.ptp(gaps, axis=1) > 1e-3) > 0.9
    assert gaps.min() >= 0 and gaps.max() < 1


@pytest.mark.parametrize("pct", [5, 25, 180])
def test_mlsmote_budget(pct):
    X, Y = _data(seed=4)
    sampler = MLSMOTE(percentage=pct, random_state=1)
    X2, Y2 = sampler.fit_resample(X, Y)
    assert X2.shape[0] - len(X) == int(len(X) * pct / 100)
    # seeds cycle over (label, instance) pairs: each pair is used floor or ceil of budget / pairs times
    minority = _minority(Y)
    pairs = Y[:, minority].sum()
    pair_ids = sampler.bag_labels_ * len(X) + sampler.seed_indices_
    _, uses = np.unique(pair_ids, return_counts=True)
    budget = int(len(X) * pct / 100)
    assert uses.max() <= -(-budget // pairs)
    if budget >= pairs:
        assert len(uses) == pairs and uses.min() >= budget // pairs


def test_mlsmote_skips_small_bags_with_a_note(caplog):
    X = np.random.RandomState(0).rand(10, 3)
    Y = np.zeros((10, 2), dtype=np.int8)
    Y[:, 0] = 1
    Y[4, 1] = 1
    with caplog.at_level(logging.WARNING):
        X2, Y2 = MLSMOTE(random_state=0).fit_resample(X, Y)
    assert X2.shape == X.shape
    assert "fewer than 2" in caplog.text


def test_mlsmote_sparse_matches_dense():
    X, Y = _data(seed=5)
    X = X * (np.random.RandomState(0).rand(*X.shape) < 0.4)
    Xd, Yd = MLSMOTE(metric="cosine", percentage=30, random_state=7).fit_resample(X, Y)
    Xs, Ys = MLSMOTE(metric="cosine", percentage=30, random_state=7).fit_resample(sp.csr_matrix(X), Y)
    assert sp.issparse(Xs)
    np.testing.assert_allclose(Xs.toarray(), Xd, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(Ys, Yd)


# ---------------------------------------------------------------- ML-ROS / ML-RUS


def test_mlros_budget_is_exact_when_bags_stay():
    # three minority labels of about 20 rows, each needing about 20 clones: more than the budget
    X, Y = _data(seed=6, n=1000, rates=(0.6, 0.5, 0.4, 0.02, 0.02, 0.02))
    n = len(X)
    X2, Y2 = MLROS(percentage=3, random_state=0).fit_resample(X, Y)
    assert X2.shape[0] == n + int(n * 3 / 100)
    # every clone carries a minority label
    minority = _minority(Y)
    assert np.all(Y2[n:, minority].sum(axis=1) > 0)


def test_mlros_stop_condition_single_minority_label():
    # label 2 never co-occurs: clones of its bag change only its count
    n = 200
    Y = np.zeros((n, 3), dtype=np.int8)
    Y[:100, 0] = 1
    Y[100:180, 1] = 1
    Y[180:185, 2] = 1
    X = np.arange(n, dtype=float)[:, None]
    mean_ir = np.mean(100 / np.array([100, 80, 5]))
    sampler = MLROS(percentage=500, random_state=0)
    X2, Y2 = sampler.fit_resample(X, Y)
    np.testing.assert_array_equal(sampler.minority_labels_, [2])
    # the bag leaves at the first count c with 100 / c <= MeanIR
    need = math.ceil(100 / mean_ir) - 5
    assert X2.shape[0] == n + need
    assert np.all(np.isin(sampler.sample_indices_[n:], np.arange(180, 185)))


def test_mlrus_budget_and_stop():
    # labels never co-occur: 100 rows of label 0, 14 of label 1, 2 of label 2
    Y = np.zeros((116, 3), dtype=np.int8)
    Y[:100, 0] = 1
    Y[100:114, 1] = 1
    Y[114:, 2] = 1
    n = len(Y)
    X = np.arange(n, dtype=float)[:, None]
    X2, _ = MLRUS(percentage=5, random_state=0).fit_resample(X, Y)
    assert X2.shape[0] == n - int(n * 5 / 100)
    mean_ir = np.mean(100 / np.array([100, 14, 2]))
    # round robin deletes one row of each majority bag per round; bag 1 leaves after
    # the first round t where IRLbl_1 = (100 - t) / (14 - t) reaches MeanIR
    t = next(t for t in range(1, 14) if (100 - t) / (14 - t) >= mean_ir)
    budget = int(n * 50 / 100)
    _, Y3 = MLRUS(percentage=50, random_state=0).fit_resample(X, Y)
    np.testing.assert_array_equal(Y3.sum(axis=0), [100 - (budget - t), 14 - t, 2])


def test_mlrus_never_deletes_the_last_positive():
    rng = np.random.RandomState(0)
    n = 300
    Y = np.zeros((n, 4), dtype=np.int8)
    Y[:, 0] = rng.rand(n) < 0.9
    Y[:, 1] = rng.rand(n) < 0.8
    Y[5, 2] = 1  # label 2 lives only on a majority-label row
    Y[5, 0] = 1
    Y[6:9, 3] = 1
    for seed in range(20):
        _, Y2 = MLRUS(percentage=60, random_state=seed).fit_resample(np.zeros((n, 1)), Y)
        assert np.all(Y2.sum(axis=0) >= 1)


# ---------------------------------------------------------------- LP-ROS / LP-RUS


def _labelset_sizes(Y):
    _, inv, cnt = np.unique(Y, axis=0, return_inverse=True, return_counts=True)
    return inv.ravel(), cnt


def test_lpros_bags_fill_towards_mean_size():
    X, Y = _data(seed=8, n=300)
    n = len(X)
    inv, cnt = _labelset_sizes(Y)
    mean_size = n / len(cnt)
    need = np.maximum(np.ceil(mean_size) - cnt, 0).sum()
    for pct in (2, 1000):
        sampler = LPROS(percentage=pct, random_state=0)
        X2, Y2 = sampler.fit_resample(X, Y)
        added = X2.shape[0] - n
        assert added == min(int(n * pct / 100), need)
        new_cnt = np.bincount(inv[sampler.sample_indices_], minlength=len(cnt))
        grown = new_cnt > cnt
        assert np.all(cnt[grown] < mean_size)
        assert np.all(new_cnt[grown] <= np.ceil(mean_size))
    assert np.all(new_cnt[cnt < mean_size] == np.ceil(mean_size))


def test_lprus_bags_shrink_towards_mean_size():
    X, Y = _data(seed=9, n=300)
    n = len(X)
    inv, cnt = _labelset_sizes(Y)
    mean_size = n / len(cnt)
    excess = np.maximum(cnt - np.ceil(mean_size), 0).sum()
    for pct in (3, 99):
        sampler = LPRUS(percentage=pct, random_state=0)
        X2, Y2 = sampler.fit_resample(X, Y)
        assert n - X2.shape[0] == min(int(n * pct / 100), excess)
        new_cnt = np.bincount(inv[sampler.sample_indices_], minlength=len(cnt))
        shrunk = new_cnt < cnt
        assert np.all(cnt[shrunk] > mean_size)
        assert np.all(new_cnt[shrunk] >= np.ceil(mean_size))
        assert np.all(Y2.sum(axis=0) >= (Y.sum(axis=0) > 0))


# ---------------------------------------------------------------- MLSOL


def _naive_mlsol_weights(Y, knn):
    n, L = Y.shape
    k = knn.shape[1]
    C = np.full((n, L), np.nan)
    for j in range(L):
        minority_class = 1 if Y[:, j].sum() <= n - Y[:, j].sum() else 0
        for i in range(n):
            if Y[i, j] == minority_class:
                C[i, j] = sum(Y[m, j] != Y[i, j] for m in knn[i]) / k
    w = np.zeros(n)
    for j in range(L):
        ok = ~np.isnan(C[:, j]) & (C[:, j] < 1)
        total = C[ok, j].sum()
        if total > 0:
            w[ok] += C[ok, j] / total
    return C, w


def test_mlsol_weights_types_and_labels():
    X, Y = _data(seed=10, n=150)
    sampler = MLSOL(percentage=40, k_neighbors=5, random_state=0)
    X2, Y2 = sampler.fit_resample(X, Y)
    n = len(X)
    knn = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    C, w = _naive_mlsol_weights(Y, knn)
    np.testing.assert_allclose(sampler.weights_, w, atol=1e-12)
    T = sampler.types_
    minority = ~np.isnan(C)
    assert np.all(T[~minority] == 0)
    assert np.all(T[minority & (C < 0.3)] == 1)
    assert np.all(np.isin(T[minority & (C >= 0.3) & (C < 0.7)], [2]))
    assert np.all(T[minority & (C == 1)] == 4)
    # rare pairs stay rare only if no neighbour is safe or borderline for that label
    for i, j in zip(*np.nonzero(T == 3)):
        assert not np.any(np.isin(T[knn[i], j], [1, 2]))
    assert X2.shape[0] == n + int(n * 40 / 100)
    seeds, refs = sampler.seed_indices_, sampler.reference_indices_
    assert np.all(w[seeds] > 0)
    assert all(r in knn[s] for s, r in zip(seeds, refs))
    new = Y2[n:]
    agree = Y[seeds] == Y[refs]
    np.testing.assert_array_equal(new[agree], Y[seeds][agree])
    # a rare minority seed always passes its minority value on; an outlier never does
    rare = (T[seeds] == 3) & ~agree
    np.testing.assert_array_equal(new[rare], Y[seeds][rare])
    outl = (T[seeds] == 4) & ~agree
    np.testing.assert_array_equal(new[outl], Y[refs][outl])


# ---------------------------------------------------------------- MLeNN


def test_mlenn_matches_naive_loop_and_keeps_minority():
    X, Y = _data(seed=11, n=200)
    sampler = MLeNN(n_neighbors=3, threshold=0.5)
    X2, Y2 = sampler.fit_resample(X, Y)
    minority = _minority(Y)
    knn = NearestNeighbors(n_neighbors=4).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    expected = []
    for i in range(len(X)):
        if Y[i, minority].any():
            continue
        diffs = 0
        for m in knn[i]:
            active = Y[i].sum() + Y[m].sum()
            d = (Y[i] != Y[m]).sum() / active if active else 0.0
            diffs += d > 0.5
        if diffs >= 1.5:
            expected.append(i)
    np.testing.assert_array_equal(sampler.removed_indices_, expected)
    assert len(expected) > 0
    np.testing.assert_array_equal(Y2[:, minority].sum(axis=0), Y[:, minority].sum(axis=0))


# ---------------------------------------------------------------- chains


def test_chain_equals_steps_applied_by_hand():
    X, Y = _data(seed=12)
    chain = SamplerChain(steps=[REMEDIAL(), MLSMOTE(random_state=3)])
    Xc, Yc = chain.fit_resample(X, Y)
    X1, Y1 = REMEDIAL().fit_resample(X, Y)
    X2, Y2 = MLSMOTE(random_state=3).fit_resample(X1, Y1)
    np.testing.assert_array_equal(Xc, X2)
    np.testing.assert_array_equal(Yc, Y2)
    m = len(chain.sample_indices_)
    np.testing.assert_array_equal(Xc[:m], X[chain.sample_indices_])


def test_chain_rejects_non_samplers():
    with pytest.raises(TypeError, match="fit_resample"):
        SamplerChain(steps=[REMEDIAL(), "mlsmote"]).fit_resample(np.zeros((3, 1)), np.eye(3, dtype=np.int8))
    with pytest.raises(ValueError, match="at least one step"):
        SamplerChain(steps=[]).fit_resample(np.zeros((3, 1)), np.eye(3, dtype=np.int8))
