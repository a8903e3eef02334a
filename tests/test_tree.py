"""The label tree: its structure, its node training sets, its beam search against a hand computation, and its
accuracy and cost against one-vs-rest on labels with a known cluster structure."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_set_params)

from mltc.models import BinaryRelevance, LabelTree, predict_scores
from mltc.models.losses import sigmoid

GROUPS, PER_GROUP = 6, 8  # 48 labels in 6 known clusters


def _lr():
    return LogisticRegression(C=4.0, solver="liblinear")


def clustered(n=1200, seed=0):
    """Sparse count rows and labels in known groups: a document has a group's words and 1-2 of its labels' words.

    Label j belongs to group j // PER_GROUP; group g owns columns [20 g, 20 g + 20), label j owns 5 columns after
    those; 30 noise columns come last. A document's labels all come from one group.
    """
    rng = np.random.default_rng(seed)
    L = GROUPS * PER_GROUP
    n_features = 20 * GROUPS + 5 * L + 30
    X = sp.lil_matrix((n, n_features))
    Y = np.zeros((n, L), dtype=np.int8)
    for i in range(n):
        g = rng.integers(GROUPS)
        labels = g * PER_GROUP + rng.choice(PER_GROUP, size=rng.integers(1, 3), replace=False)
        Y[i, labels] = 1
        words = list(rng.choice(20, 4) + 20 * g) + list(rng.choice(30, 4) + n_features - 30)
        for j in labels:
            words += list(rng.choice(5, 2) + 20 * GROUPS + 5 * j)
        for w in words:
            X[i, w] += 1
    return sp.csr_matrix(X), Y


@pytest.fixture(scope="module")
def data():
    return clustered()


@pytest.fixture(scope="module")
def deep(data):
    """A tree of three levels at least (4 children per node, 48 labels)."""
    X, Y = data
    return LabelTree(estimator=_lr(), n_clusters=4, beam_width=1000, random_state=0).fit(X[:600], Y[:600])


# ---- structure -------------------------------------------------------------------------------------------------

def test_every_label_is_in_exactly_one_leaf_and_children_partition_their_parent(deep):
    tree = deep.tree_
    leaves = np.concatenate([node.labels for node in tree if node.is_leaf])
    np.testing.assert_array_equal(np.sort(leaves), np.arange(deep.n_labels_))
    for node in tree:
        assert len(node.children) != 1
        if node.children:
            parts = np.concatenate([tree[c].labels for c in node.children])
            np.testing.assert_array_equal(np.sort(parts), node.labels)
            assert all(tree[c].depth == node.depth + 1 for c in node.children)
            assert node.labels.size > deep.n_clusters
        else:
            assert node.labels.size <= deep.n_clusters or node.depth + 1 == deep.max_depth
    depth = 1 + max(node.depth for node in tree)
    assert depth >= 3 and deep.summary_["depth"] == depth and deep.n_nodes_ == len(tree)


def test_depth_stops_at_max_depth(data):
    X, Y = data
    m = LabelTree(estimator=_lr(), n_clusters=2, max_depth=2, random_state=0).fit(X[:300], Y[:300])
    assert m.summary_["depth"] == 2
    # the root's children are leaf clusters, larger than n_clusters because the depth ran out
    assert all(m.tree_[c].is_leaf for c in m.tree_[0].children)
    assert max(node.labels.size for node in m.tree_ if node.is_leaf) > 2


def test_recovers_the_known_label_clusters(data):
    # label representations of one group share its 20 words: k-means with K = groups finds the groups (two
    # levels: the groups of 8 labels are leaf clusters although larger than K, the depth having run out)
    X, Y = data
    m = LabelTree(estimator=_lr(), n_clusters=GROUPS, max_depth=2, random_state=0).fit(X[:600], Y[:600])
    found = sorted(tuple(m.tree_[c].labels) for c in m.tree_[0].children)
    assert found == [tuple(range(g * PER_GROUP, (g + 1) * PER_GROUP)) for g in range(GROUPS)]


def test_balanced_bisection_recovers_two_equal_clusters():
    # two groups of 25 unit rows around two orthogonal directions (plus noise), shuffled: the halves are the groups
    from mltc.models.tree import _bisect

    rng = np.random.default_rng(0)
    base = np.zeros((50, 40))
    base[:25, :20] = rng.random((25, 20)) + 1
    base[25:, 20:] = rng.random((25, 20)) + 1
    base += 0.05 * rng.random((50, 40))
    perm = rng.permutation(50)
    R = sp.csr_matrix(base[perm] / np.linalg.norm(base[perm], axis=1, keepdims=True))
    a, b = _bisect(R, np.random.RandomState(0))
    assert sorted([sorted(perm[a] < 25), sorted(perm[b] < 25)]) == [[False] * 25, [True] * 25]


def test_balanced_split_gives_near_equal_groups_and_a_shallow_tree(data):
    X, Y = data
    m = LabelTree(estimator=_lr(), n_clusters=4, split="balanced", random_state=0).fit(X[:600], Y[:600])
    tree = m.tree_
    leaves = np.concatenate([node.labels for node in tree if node.is_leaf])
    np.testing.assert_array_equal(np.sort(leaves), np.arange(m.n_labels_))
    for node in tree:
        if node.children:
            sizes = [tree[c].labels.size for c in node.children]
            np.testing.assert_array_equal(np.sort(np.concatenate([tree[c].labels for c in node.children])),
                                          node.labels)
            # the largest group is bisected until there are 4: sizes within a factor of two (+1 for odd halves)
            assert len(sizes) == 4 and max(sizes) <= 2 * min(sizes) + 1
    # 48 labels, 4 per node: 48 -> groups of 12 -> groups of 3 (leaves): 3 levels, the least k-ary depth
    assert m.summary_["depth"] == int(np.ceil(np.log(48) / np.log(4)))


# ---- training sets -----------------------------------------------------------------------------------------------

def test_each_node_trains_on_the_documents_with_a_label_in_its_subtree(data, monkeypatch):
    X, Y = data
    X = sp.hstack([X[:600], sp.csr_matrix(np.arange(600.0)[:, None] + 1)]).tocsr()  # last column: document id + 1
    Y = Y[:600]
    seen = []
    fit = BinaryRelevance.fit

    def spy(self, Xn, T, sample_weight=None):
        seen.append((Xn[:, -1].toarray().ravel().astype(int) - 1, np.asarray(T)))
        return fit(self, Xn, T, sample_weight)

    monkeypatch.setattr(BinaryRelevance, "fit", spy)
    m = LabelTree(estimator=_lr(), n_clusters=4, random_state=0).fit(X, Y)
    assert len(seen) == m.n_nodes_
    rows = 0
    for v, (node, (docs, T)) in enumerate(zip(m.tree_, seen)):
        expected = np.arange(600) if v == 0 else np.flatnonzero(Y[:, node.labels].any(1))
        np.testing.assert_array_equal(docs, expected)
        parts = [m.tree_[c].labels for c in node.children] or [[j] for j in node.labels]
        np.testing.assert_array_equal(T, np.column_stack([Y[docs][:, p].any(1) for p in parts]))
        rows += docs.size * len(parts)
    assert m.summary_["binary_rows"] == rows and m.summary_["ovr_rows"] == 600 * Y.shape[1]
    np.testing.assert_allclose(m.summary_["mean_train_rows"], np.mean([d.size for d, _ in seen]))


# ---- scores --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("est", [_lr(), LinearSVC(C=0.5, dual=False)], ids=["logreg", "linear_svc"])
def test_one_level_tree_is_binary_relevance(data, est):
    X, Y = data
    Xtr, Ytr, Xte = X[:400], Y[:400], X[400:600]
    m = LabelTree(estimator=est, n_clusters=Y.shape[1], random_state=0).fit(Xtr, Ytr)
    assert m.n_nodes_ == 1 and m.summary_["depth"] == 1
    br = BinaryRelevance(est).fit(Xtr, Ytr)
    ref = br.predict_proba(Xte) if br.score_kind_ == "proba" else sigmoid(br.decision_function(Xte))
    np.testing.assert_allclose(m.predict_proba(Xte), ref, rtol=0, atol=0)
    S, kind = predict_scores(m, Xte)
    assert kind == "proba" and S.shape == (200, Y.shape[1])
    np.testing.assert_array_equal(m.predict(Xte), (ref >= 0.5).astype(np.int8))


def _exhaustive(model, X):
    """Each label's product of child probabilities from the root to it, straight from the node classifiers."""
    out = np.ones((X.shape[0], model.n_labels_))
    for node, br in zip(model.tree_, model.estimators_):
        P = br.predict_proba(X)
        parts = [model.tree_[c].labels for c in node.children] or [[j] for j in node.labels]
        for k, labels in enumerate(parts):
            out[:, labels] *= P[:, [k]]
    return out


def test_wide_beam_scores_every_label_by_its_path_product(deep, data):
    X = data[0][600:800]
    assert deep.beam_width >= deep.n_nodes_
    np.testing.assert_allclose(deep.predict_proba(X), _exhaustive(deep, X), rtol=1e-12, atol=0)


def test_narrow_beam_keeps_the_best_paths_and_zeroes_the_rest(deep, data):
    X = data[0][600:800]
    full = _exhaustive(deep, X)
    narrow = copy.copy(deep).set_params(beam_width=1)  # the same fitted nodes, searched with a beam of one
    S = narrow.predict_proba(X)
    for i in range(X.shape[0]):
        # beam 1 follows the most probable child at every level down to one leaf cluster
        v = 0
        while deep.tree_[v].children:
            P = deep.estimators_[v].predict_proba(X[i])[0]
            v = deep.tree_[v].children[int(np.argmax(P))]
        reached = deep.tree_[v].labels
        np.testing.assert_allclose(S[i, reached], full[i, reached], rtol=1e-12)
        assert not np.delete(S[i], reached).any()


# ---- reproducibility, persistence, API ---------------------------------------------------------------------------

def test_same_seed_and_any_n_jobs_give_the_same_tree_and_scores(data):
    X, Y = data
    Xtr, Ytr, Xte = X[:400], Y[:400], X[400:500]
    a = LabelTree(estimator=_lr(), n_clusters=4, random_state=3).fit(Xtr, Ytr)
    b = LabelTree(estimator=_lr(), n_clusters=4, random_state=3, n_jobs=2).fit(Xtr, Ytr)
    assert [n.labels.tolist() for n in a.tree_] == [n.labels.tolist() for n in b.tree_]
    np.testing.assert_array_equal(a.predict_proba(Xte), b.predict_proba(Xte))
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.predict_proba(Xte), a.predict_proba(Xte))


def test_scikit_learn_api():
    m = LabelTree(estimator=_lr(), n_clusters=3, beam_width=2)
    check_no_attributes_set_in_init("LabelTree", m)
    check_get_params_invariance("LabelTree", m)
    check_set_params("LabelTree", m)
    c = clone(m)
    assert c.get_params(deep=False).keys() == m.get_params(deep=False).keys()
    assert c.n_clusters == 3 and c.beam_width == 2 and not hasattr(c, "tree_")


def test_default_estimator_and_sample_weight(data):
    X, Y = data
    m = LabelTree(n_clusters=8, random_state=0).fit(X[:300], Y[:300])
    assert type(m.estimators_[0].estimators_[0]).__name__ == "LogisticRegression"
    w = LabelTree(n_clusters=8, random_state=0).fit(X[:300], Y[:300], sample_weight=np.ones(300))
    np.testing.assert_allclose(w.predict_proba(X[300:400]), m.predict_proba(X[300:400]))


def test_bad_input_says_what_is_wrong(data):
    X, Y = data
    with pytest.raises(ValueError, match="2-D label matrix"):
        LabelTree().fit(X[:50], Y[:50, 0])
    with pytest.raises(ValueError, match="one row per sample"):
        LabelTree().fit(X[:50], Y[:40])
    with pytest.raises(InvalidParameterError, match="n_clusters"):
        LabelTree(n_clusters=1).fit(X[:50], Y[:50])
    with pytest.raises(InvalidParameterError, match="beam_width"):
        LabelTree(beam_width=0).fit(X[:50], Y[:50])
    from imblearn.ensemble import EasyEnsembleClassifier
    with pytest.raises(TypeError, match="sample_weight"):
        LabelTree(estimator=EasyEnsembleClassifier()).fit(X[:50], Y[:50], sample_weight=np.ones(50))


# ---- against one-vs-rest ---------------------------------------------------------------------------------------------

def test_close_to_one_vs_rest_with_fewer_training_rows(data):
    """Clustered labels: the tree's micro-F1 within 0.03 of one-vs-rest, on under half of its binary training rows.

    The root sees each group's 20 words, so it picks the right group for nearly every document; what the tree can
    lose is the documents it sends to a wrong group (their labels score 0). 0.03 micro-F1 is roughly 25 of the
    ~900 true labels of the 600 test documents. Rows: the root trains 6 children on every document and each
    group's node trains its 8 labels on the group's ~1/6 of the documents: about 6 n + 8 n against 48 n.
    """
    X, Y = data
    tr, te = slice(0, 600), slice(600, None)
    # two levels: the groups (k-means finds them: see above), then each group's labels
    tree = LabelTree(estimator=_lr(), n_clusters=GROUPS, max_depth=2, random_state=0).fit(X[tr], Y[tr])
    br = BinaryRelevance(_lr()).fit(X[tr], Y[tr])
    f1 = {name: f1_score(Y[te], m.predict(X[te]), average="micro") for name, m in [("tree", tree), ("br", br)]}
    assert f1["br"] > 0.8  # the task is learnable, so the comparison means something
    assert f1["tree"] >= f1["br"] - 0.03, f1
    n, L = 600, Y.shape[1]
    expected = n * GROUPS + PER_GROUP * int(sum(Y[tr][:, g * PER_GROUP:(g + 1) * PER_GROUP].any(1).sum()
                                                for g in range(GROUPS)))
    assert tree.summary_["binary_rows"] == expected < 0.5 * n * L
