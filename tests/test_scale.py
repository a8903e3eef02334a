"""Many labels: BinaryRelevance's parallel fit gives the sequential models; faster helpers keep their numbers."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from mltc.models import BinaryRelevance
from mltc.models import binary_relevance as br
from _sparse import with_unsorted_indices


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = sp.random(300, 120, density=0.08, format="csr", random_state=1)
    Y = (rng.random((300, 30)) < np.linspace(0.02, 0.4, 30)).astype(np.int8)
    Y[:, 3] = 0  # a label absent from training: a constant member
    return X, Y


def test_parallel_fit_gives_the_sequential_models(data, monkeypatch):
    X, Y = data
    monkeypatch.setattr(br, "_MIN_PARALLEL_WORK", 0)  # this small problem would be fitted in one process
    est = LinearSVC(C=0.5, random_state=0)  # liblinear's dual solver shuffles: seeds must hold in every process
    one = BinaryRelevance(est, n_jobs=1).fit(X, Y)
    two = BinaryRelevance(est, n_jobs=2).fit(X, Y)
    assert len(two.estimators_) == Y.shape[1]
    for a, b in zip(one.estimators_, two.estimators_):
        assert type(a) is type(b)
        if hasattr(a, "coef_"):
            np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(one.decision_function(X), two.decision_function(X))


def test_scumble_per_instance_matches_its_formula():
    from mltc.imbalance import irlbl, scumble_per_instance
    rng = np.random.default_rng(5)
    Y = (rng.random((200, 9)) < np.linspace(0.02, 0.5, 9)).astype(np.int8)
    Y[:3] = 0
    ir = irlbl(Y)
    want = []
    for row in Y.astype(bool):
        v = ir[row]
        # Charte et al. 2019: 1 - geometric mean / arithmetic mean of the instance's labels' IRLbl
        want.append(0.0 if v.size == 0 else 1 - np.exp(np.log(v).mean()) / v.mean())
    np.testing.assert_allclose(scumble_per_instance(Y), want, rtol=1e-12, atol=1e-15)


def test_synthetic_words_keep_the_random_stream():
    from mltc.data.synthetic import _SYLLABLES, _words

    def reference(n, rng, prefix=""):  # the generator as first written: rng.choice on the list
        out, seen = [], set()
        while len(out) < n:
            k = rng.integers(2, 4)
            w = prefix + "".join(rng.choice(_SYLLABLES, size=k))
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out

    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert list(_words(300, a, prefix="l7")) == reference(300, b, prefix="l7")
    assert a.random() == b.random()  # the same draws consumed: everything generated after is unchanged


def test_parallel_fit_takes_unsorted_sparse_input(monkeypatch):
    # a vectorizer's matrix can have unsorted column indices; liblinear sorts them in place, which the
    # workers' read-only memory map of X (joblib maps arrays over 1 MB) does not allow
    monkeypatch.setattr(br, "_MIN_PARALLEL_WORK", 0)
    X = sp.random(3000, 2000, density=0.03, format="csr", random_state=2)  # 180k values: 1.4 MB
    Y = (np.asarray(X[:, :4].sum(axis=1)) + np.random.default_rng(0).random((3000, 4)) > 0.6).astype(np.int8)
    Xu = with_unsorted_indices(X)
    est = LogisticRegression(solver="liblinear", random_state=0)
    two = BinaryRelevance(est, n_jobs=2).fit(Xu, Y)
    np.testing.assert_array_equal(two.predict_proba(X), BinaryRelevance(est).fit(X, Y).predict_proba(X))


def test_stack_refits_members_in_parallel_with_the_same_numbers():
    from mltc.models.stack import ScoreStack

    rng = np.random.default_rng(1)
    X = rng.normal(size=(240, 6))
    Y = np.column_stack([X[:, 0] > 0.3, X[:, 1] + X[:, 4] > 0.8, X[:, 2] < -0.5]).astype(np.int8)
    w = rng.uniform(0.5, 2.0, size=240)
    kw = dict(estimators=[BinaryRelevance(LinearSVC(C=0.5)), BinaryRelevance(LogisticRegression(C=0.3))],
              columns=[[0, 3], [3, None]], meta=LogisticRegression(), cv=3, random_state=4)
    one = ScoreStack(**kw).fit(X, Y, sample_weight=w)
    two = ScoreStack(**kw, n_jobs=2).fit(X, Y, sample_weight=w)
    assert two.n_features_in_ == 6 and len(two.estimators_) == 2
    for a, b in zip(one.estimators_, two.estimators_):
        for ea, eb in zip(a.estimators_, b.estimators_):
            np.testing.assert_array_equal(ea.coef_, eb.coef_)
    np.testing.assert_array_equal(one.decision_function(X), two.decision_function(X))
