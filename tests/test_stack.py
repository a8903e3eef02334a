"""ScoreAverage: late fusion of models fitted on column blocks, against the models fitted by hand."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init

from mltc.models import BinaryRelevance
from mltc.models.stack import ScoreAverage


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    Y = np.column_stack([X[:, 0] + X[:, 5] > 0.5, X[:, 1] - X[:, 6] > 1.0, X[:, 2] > 1.2]).astype(np.int8)
    return X, Y


def _lr(C=1.0):
    return BinaryRelevance(LogisticRegression(C=C))


def test_weighted_mean_of_block_models(data):
    X, Y = data
    m = ScoreAverage(estimators=[_lr(1.0), _lr(0.1)], columns=[[0, -3], [-3, None]], weights=[3, 1]).fit(X, Y)
    a = _lr(1.0).fit(X[:, :5], Y).predict_proba(X[:, :5])
    b = _lr(0.1).fit(X[:, 5:], Y).predict_proba(X[:, 5:])
    np.testing.assert_allclose(m.predict_proba(X), 0.75 * a + 0.25 * b, rtol=1e-12)
    assert m.score_kind_ == "proba"
    np.testing.assert_array_equal(m.predict(X), (0.75 * a + 0.25 * b >= 0.5).astype(np.int8))


def test_margins_are_squashed_and_all_columns_by_default(data):
    X, Y = data
    svm = BinaryRelevance(LinearSVC(C=0.5))
    m = ScoreAverage(estimators=[svm, _lr()]).fit(X, Y)
    margin = BinaryRelevance(LinearSVC(C=0.5)).fit(X, Y).decision_function(X)
    proba = _lr().fit(X, Y).predict_proba(X)
    np.testing.assert_allclose(m.predict_proba(X), (expit(margin) + proba) / 2, rtol=1e-10)


def test_sparse_blocks_equal_dense_and_weights_reach_every_model(data):
    X, Y = data
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    kw = dict(estimators=[_lr(), _lr()], columns=[[0, 4], [4, None]])
    a = ScoreAverage(**kw).fit(Xs, Y).predict_proba(Xs)
    b = ScoreAverage(**kw).fit(Xs.toarray(), Y).predict_proba(Xs.toarray())
    np.testing.assert_allclose(a, b, atol=1e-8)
    w = np.where(Y[:, 0] == 1, 5.0, 1.0)
    weighted = ScoreAverage(**kw).fit(X, Y, sample_weight=w)
    ref = _lr().fit(X[:, :4], Y, sample_weight=w).predict_proba(X[:, :4])
    np.testing.assert_allclose(weighted.estimators_[0].predict_proba(X[:, :4]), ref, rtol=1e-12)


def test_errors_speak_to_users(data):
    X, Y = data
    with pytest.raises(ValueError, match="one block per estimator"):
        ScoreAverage(estimators=[_lr(), _lr()], columns=[[0, 3]]).fit(X, Y)
    with pytest.raises(ValueError, match=r"\[start, stop\]"):
        ScoreAverage(estimators=[_lr()], columns=[[0, 1, 2]]).fit(X, Y)
    with pytest.raises(ValueError, match="selects no column"):
        ScoreAverage(estimators=[_lr()], columns=[[8, None]]).fit(X, Y)
    with pytest.raises(ValueError, match="non-negative"):
        ScoreAverage(estimators=[_lr(), _lr()], weights=[1, -1]).fit(X, Y)
    with pytest.raises(ValueError, match="at least one"):
        ScoreAverage(estimators=[]).fit(X, Y)
    m = ScoreAverage(estimators=[_lr()]).fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        m.predict_proba(X[:, :4])


def test_scikit_learn_api_checks():
    est = ScoreAverage(estimators=[_lr()], columns=[[0, 2]], weights=[1.0])
    check_get_params_invariance("ScoreAverage", est)
    check_no_attributes_set_in_init("ScoreAverage", est)
