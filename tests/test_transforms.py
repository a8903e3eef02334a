"""Label powerset (with Read's pruning), classifier chains and RAkEL against independent expectations."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from mltc.models import BinaryRelevance, predict_scores
from mltc.models.transforms import ClassifierChain, EnsembleClassifierChains, LabelPowerset, RAkEL


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5, (X[:, 0] + X[:, 2]) > 1.2, X[:, 3] > 1.0]).astype(np.int8)
    return X, Y


# rows: {0,1} x3, {0} x2, {0,1,2} x1 (a rare set whose frequent subsets are {0,1} and {0})
Y_PPT = np.array([[1, 1, 0]] * 3 + [[1, 0, 0]] * 2 + [[1, 1, 1]])
X_PPT = np.arange(6, dtype=float)[:, None]


def test_label_powerset_marginals_are_label_frequencies_under_a_prior_classifier(data):
    X, Y = data
    lp = LabelPowerset(DummyClassifier(strategy="prior")).fit(X, Y)
    np.testing.assert_allclose(lp.predict_proba(X[:5]), np.tile(Y.mean(axis=0), (5, 1)))


@pytest.mark.parametrize("b, expected_label1", [(0, 3 / 5), (1, 4 / 6), (2, 4 / 7)])
def test_pruned_problem_transformation_reintroduces_frequent_subsets(b, expected_label1):
    lp = LabelPowerset(DummyClassifier(strategy="prior"), min_count=2, max_reintroduce=b).fit(X_PPT, Y_PPT)
    assert lp.n_pruned_ == 1 and lp.n_reintroduced_ == b
    P = lp.predict_proba(X_PPT[:1])[0]
    np.testing.assert_allclose(P, [1.0, expected_label1, 0.0])  # the pruned set {0,1,2} is never an output


def test_label_powerset_predicts_only_training_label_sets(data):
    X, Y = data
    lp = LabelPowerset(LogisticRegression(max_iter=500)).fit(X, Y)
    seen = {tuple(r) for r in Y}
    assert all(tuple(r) in seen for r in lp.predict_sets(X))


def test_label_powerset_sample_weights_equal_repeated_rows(data):
    X, Y = data
    w = np.where(np.arange(len(Y)) % 4 == 0, 3, 1)
    rep = np.repeat(np.arange(len(Y)), w)
    a = LabelPowerset(DummyClassifier(strategy="prior")).fit(X, Y, sample_weight=w.astype(float))
    b = LabelPowerset(DummyClassifier(strategy="prior")).fit(X[rep], Y[rep])
    np.testing.assert_allclose(a.predict_proba(X[:3]), b.predict_proba(X[:3]))


def test_pruning_everything_is_refused_with_advice():
    with pytest.raises(ValueError, match="lower min_count"):
        LabelPowerset(DummyClassifier(), min_count=10).fit(X_PPT, Y_PPT)


def test_chain_feeds_earlier_labels_to_later_classifiers(data):
    X, Y = data
    order = [2, 0, 3, 1]
    cc = ClassifierChain(LogisticRegression(), order=order).fit(X, Y)
    assert [e.coef_.shape[1] for e in cc.estimators_] == [X.shape[1] + k for k in range(Y.shape[1])]
    # the head of the chain sees only X: it is binary relevance's model for that label
    br = BinaryRelevance(LogisticRegression()).fit(X, Y)
    np.testing.assert_allclose(cc.predict_proba(X)[:, 2], br.predict_proba(X)[:, 2])


def test_chain_learns_a_label_defined_by_earlier_labels(data):
    # label 3 := label 0 AND label 2: not linear in X, but linear in the chained labels
    X, Y = data
    Y2 = Y.copy()
    Y2[:, 3] = Y[:, 0] & Y[:, 2]
    lr = LogisticRegression(C=100.0, max_iter=1000)
    cc = ClassifierChain(lr, order=[0, 2, 3, 1]).fit(X, Y2)
    br = BinaryRelevance(lr).fit(X, Y2)
    acc_cc = (cc.predict(X)[:, 3] == Y2[:, 3]).mean()
    acc_br = (br.predict(X)[:, 3] == Y2[:, 3]).mean()
    assert acc_cc > acc_br


def test_random_order_is_a_seeded_permutation(data):
    X, Y = data
    a = ClassifierChain(LogisticRegression(), order="random", random_state=1).fit(X, Y)
    b = ClassifierChain(LogisticRegression(), order="random", random_state=1).fit(X, Y)
    assert sorted(a.order_.tolist()) == list(range(Y.shape[1])) and a.order_.tolist() == b.order_.tolist()
    with pytest.raises(ValueError, match="permutation"):
        ClassifierChain(LogisticRegression(), order=[0, 0, 1, 2]).fit(X, Y)


def test_ensemble_of_chains_averages_its_chains(data):
    X, Y = data
    ecc = EnsembleClassifierChains(LogisticRegression(), n_chains=3, random_state=0).fit(X, Y)
    np.testing.assert_allclose(ecc.predict_proba(X), np.mean([c.predict_proba(X) for c in ecc.chains_], axis=0))
    assert len({tuple(c.order_) for c in ecc.chains_}) > 1
    again = EnsembleClassifierChains(LogisticRegression(), n_chains=3, random_state=0).fit(X, Y)
    np.testing.assert_allclose(ecc.predict_proba(X), again.predict_proba(X))


def test_margin_learners_give_margins(data):
    from sklearn.svm import LinearSVC
    X, Y = data
    S, kind = predict_scores(ClassifierChain(LinearSVC()).fit(X, Y), X)
    assert kind == "margin" and S.shape == Y.shape and (S < 0).any()


def test_rakel_distinct_partitions_the_labels(data):
    X, Y = data
    m = RAkEL(LogisticRegression(), labelset_size=3, random_state=0).fit(X, Y)
    flat = np.concatenate(m.subsets_)
    assert sorted(flat.tolist()) == list(range(Y.shape[1])) and [len(s) for s in m.subsets_] == [3, 1]


def test_rakel_overlapping_draws_distinct_subsets_covering_every_label(data):
    X, Y = data
    m = RAkEL(LogisticRegression(), labelset_size=2, mode="overlapping", n_subsets=4, random_state=0).fit(X, Y)
    assert len({tuple(s) for s in m.subsets_}) == len(m.subsets_) >= 4
    assert all(len(s) == 2 for s in m.subsets_)
    assert set(np.concatenate(m.subsets_).tolist()) == set(range(Y.shape[1]))


def test_rakel_with_single_labels_is_binary_relevance(data):
    X, Y = data
    m = RAkEL(LogisticRegression(), labelset_size=1, random_state=0).fit(X, Y)
    br = BinaryRelevance(LogisticRegression()).fit(X, Y)
    np.testing.assert_allclose(m.predict_proba(X), br.predict_proba(X), atol=1e-10)


def test_rakel_with_all_labels_is_the_label_powerset(data):
    X, Y = data
    m = RAkEL(LogisticRegression(max_iter=500), labelset_size=Y.shape[1], random_state=0).fit(X, Y)
    lp = LabelPowerset(LogisticRegression(max_iter=500)).fit(X, Y)
    np.testing.assert_allclose(m.predict_proba(X), lp.predict_proba(X), atol=1e-10)
