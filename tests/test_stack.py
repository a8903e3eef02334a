"""ScoreAverage (late fusion of models fitted on column blocks) and ScoreStack (stacking), checked by hand."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init

from mltc.models import BinaryRelevance
from mltc.models.stack import ScoreAverage, ScoreStack, _logit_scores, _seeded, stack_features
from mltc.model_selection import oof_scores


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


# ScoreStack: stacked generalisation over out-of-fold member scores

class _Recorder(LogisticRegression):
    """A meta-learner that keeps the rows it was fitted on (to check what the stack feeds it)."""

    def fit(self, X, y, sample_weight=None):
        self.rows_, self.y_, self.row_weight_ = np.array(X), np.array(y), sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def test_stack_features_against_a_loop():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(7, 4, 2))
    w, c, s, prior = np.array([0.25, 0.75]), np.array([0.1, -0.2]), np.array([2.0, 0.5]), np.log1p([5, 0, 9, 1])
    F = stack_features(M, w, c, s, prior).reshape(7, 4, -1)
    for i in range(7):
        mean = M[i] @ w
        for j in range(4):
            others = np.delete(mean, j)
            expected = [*(M[i, j] - c) / s, mean[j], np.sum(mean > mean[j]), others.max(), prior[j]]
            np.testing.assert_allclose(F[i, j], expected, rtol=1e-12)


def test_stack_meta_learns_from_out_of_fold_scores(data):
    X, Y = data
    members = [_lr(1.0), BinaryRelevance(LinearSVC(C=0.5))]
    cols = [[0, -3], [-3, None]]
    m = ScoreStack(members, columns=cols, weights=[1, 3], meta=_Recorder(), cv=4, random_state=5).fit(X, Y)
    oof = [oof_scores(est, X[:, sl], Y, n_splits=4, random_state=5, score_fn=_logit_scores)
           for est, sl in zip(members, (slice(0, 5), slice(5, None)))]
    M = np.stack(oof, axis=-1)
    np.testing.assert_allclose(m.meta_.rows_[:, :2] * m.spread_ + m.center_, M.reshape(-1, 2), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(m.meta_.y_, Y.reshape(-1))
    # the members used at prediction time are refitted on all rows: their weighted mean is ScoreAverage's
    avg = ScoreAverage(members, columns=cols, weights=[1, 3], scale="logit").fit(X, Y)
    rows = stack_features(np.stack([_logit_scores(e, X[:, sl])[0] for e, sl in zip(m.estimators_, m.slices_)], -1),
                          m.weights_, m.center_, m.spread_, m.label_prior_)
    np.testing.assert_allclose(rows[:, 2].reshape(Y.shape), avg.decision_function(X), rtol=1e-9)
    np.testing.assert_allclose(m.decision_function(X).ravel(), m.meta_.decision_function(rows), rtol=1e-9)
    assert m.score_kind_ == "margin" and set(m.summary_["meta_feature_importance"]) == set(m.meta_feature_names_)


def test_stack_without_refit_predicts_with_the_mean_of_its_fold_models(data):
    # refit=False: the same out-of-fold rows reach the meta-learner, no member is fitted on all rows, and a
    # member's score on new documents is the mean log-odds of its cv fold models, each fitted on its fold's rows
    from mltc.model_selection import oof_folds

    X, Y = data
    members = [_lr(1.0), BinaryRelevance(LinearSVC(C=0.5))]
    kw = {"columns": [[0, -3], [-3, None]], "weights": [1, 3], "cv": 4, "random_state": 5}
    full = ScoreStack(members, meta=_Recorder(), **kw).fit(X, Y)
    bag = ScoreStack(members, meta=_Recorder(), refit=False, **kw).fit(X, Y)
    np.testing.assert_array_equal(bag.meta_.rows_, full.meta_.rows_)
    np.testing.assert_array_equal(bag.meta_.coef_, full.meta_.coef_)
    folds = oof_folds(Y, n_splits=4, random_state=5)
    M = []
    for est, sl, fitted in zip(members, (slice(0, 5), slice(5, None)), bag.estimators_):
        assert len(fitted.estimators_) == 4
        by_hand = [_seeded(est, 5).fit(X[tr][:, sl], Y[tr]) for tr, _ in folds]
        for mine, ref in zip(fitted.estimators_, by_hand):
            np.testing.assert_array_equal(mine.decision_function(X[:, sl]), ref.decision_function(X[:, sl]))
        M.append(np.mean([_logit_scores(r, X[:, sl])[0] for r in by_hand], axis=0))
    rows = stack_features(np.stack(M, -1), bag.weights_, bag.center_, bag.spread_, bag.label_prior_)
    np.testing.assert_allclose(bag.decision_function(X).ravel(), bag.meta_.decision_function(rows), rtol=1e-9)
    assert not np.allclose(bag.decision_function(X), full.decision_function(X))  # the refit models differ
    assert bag.summary_["refit"] is False and full.summary_["refit"] is True
    two = ScoreStack(members, meta=_Recorder(), refit=False, n_jobs=2, **kw).fit(X, Y)
    np.testing.assert_array_equal(two.decision_function(X), bag.decision_function(X))


def test_stack_without_refit_reuses_kept_fold_models(data, tmp_path, monkeypatch):
    # memory= keeps (scores, fold model) per (member, fold): a second fit with another meta-learner fits no member
    X, Y = data
    kw = {"columns": [[0, -3], [-3, None]], "cv": 3, "random_state": 2, "refit": False, "memory": str(tmp_path)}
    first = ScoreStack([_lr(), _lr(0.1)], meta=LogisticRegression(), **kw).fit(X, Y)
    calls = []
    original = LogisticRegression.fit

    def counting(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", counting)
    second = ScoreStack([_lr(), _lr(0.1)], meta=LogisticRegression(C=0.5), **kw).fit(X, Y)
    monkeypatch.undo()
    assert len(calls) == 1  # the meta-learner only
    for a, b, sl in zip(first.estimators_, second.estimators_, (slice(0, 5), slice(5, None))):
        np.testing.assert_array_equal(a.decision_function(X[:, sl]), b.decision_function(X[:, sl]))


def test_stack_folds_in_parallel_give_the_same_model(data):
    X, Y = data
    kw = {"columns": [[0, -3], [-3, None]], "cv": 3, "random_state": 1}
    a = ScoreStack([_lr(), _lr(0.1)], **kw).fit(X, Y)
    b = ScoreStack([_lr(), _lr(0.1)], n_jobs=2, **kw).fit(X, Y)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_stack_ignores_a_loud_useless_member():
    # the mean is swamped by a member that scores noise at a large scale; the meta-learner learns to ignore it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 6))
    Y = np.column_stack([X[:, 0] > 0.8, X[:, 1] > 1.0, X[:, 0] + X[:, 1] > 1.5]).astype(np.int8)

    class Loud(BinaryRelevance):
        def decision_function(self, X):
            return 50 * super().decision_function(X)

    members = [_lr(), Loud(LinearSVC(C=1.0))]
    cols, w = [[0, 2], [2, None]], [1, 1]
    tr, te = slice(0, 600), slice(600, None)
    mean = ScoreAverage(members, columns=cols, weights=w, scale="logit").fit(X[tr], Y[tr])
    stack = ScoreStack(members, columns=cols, weights=w, cv=5, random_state=0).fit(X[tr], Y[tr])
    f1 = [f1_score(Y[te], (m.decision_function(X[te]) > 0).astype(int), average="micro") for m in (mean, stack)]
    assert f1[1] > f1[0] + 0.1, f1


def test_stack_sample_weights_reach_members_and_meta(data):
    X, Y = data
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(Y))
    m = ScoreStack([_lr()], meta=_Recorder(), cv=3, random_state=0).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(m.meta_.row_weight_, np.repeat(w, Y.shape[1]))
    ref = _lr().fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(m.estimators_[0].predict_proba(X), ref.predict_proba(X), rtol=1e-9)
    with pytest.raises(TypeError, match="sample_weight"):
        ScoreStack([OneVsRestClassifier(LogisticRegression())], cv=3).fit(X, Y, sample_weight=w)


def test_stack_seeds_members_left_unseeded(data):
    # liblinear draws its seed from numpy's global generator when random_state is None, and each fold
    # process has its own: the stack's seed must reach the members so n_jobs does not change the numbers
    X, Y = data
    m = ScoreStack([BinaryRelevance(LinearSVC(C=0.5)), BinaryRelevance(LinearSVC(C=0.5, random_state=3))],
                   columns=[[0, -3], [-3, None]], cv=3, random_state=11).fit(X, Y)
    assert m.estimators_[0].estimator.random_state == 11 and m.estimators_[1].estimator.random_state == 3
    assert m.estimators[0].estimator.random_state is None  # the parameters themselves stay untouched
    a = ScoreStack([BinaryRelevance(LinearSVC(C=0.5))], cv=3, random_state=11).fit(X, Y)
    np.random.seed(99)  # a different global state must not matter
    b = ScoreStack([BinaryRelevance(LinearSVC(C=0.5))], cv=3, random_state=11, n_jobs=2).fit(X, Y)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_stack_with_one_label(data):
    X, Y = data
    m = ScoreStack([_lr(), _lr(0.1)], columns=[[0, -3], [-3, None]], meta=LogisticRegression(), cv=3,
                   random_state=0).fit(X, Y[:, :1])
    S = m.decision_function(X)
    assert S.shape == (len(X), 1) and np.isfinite(S).all()
    assert roc_auc_score(Y[:, 0], S[:, 0]) > 0.9


def test_stack_pool_gives_the_same_numbers_in_one_or_two_processes():
    # the Reuters stack's kinds of members (liblinear SVM, per-label LightGBM with early stopping, logistic
    # regression) on sparse blocks: the pool of (member, fold) tasks and refits must not change a number
    from lightgbm import LGBMClassifier

    from mltc.models.boosting import BoostedBinaryRelevance

    rng = np.random.default_rng(3)
    X = sp.random(240, 40, density=0.2, format="csr", random_state=4)
    Y = np.column_stack([X[:, :5].sum(axis=1).A1 > 0.4, X[:, 5:10].sum(axis=1).A1 > 0.5,
                         rng.random(240) < 0.1]).astype(np.int8)
    members = [BinaryRelevance(LinearSVC(C=0.5)),
               BoostedBinaryRelevance(LGBMClassifier(n_estimators=15, num_leaves=4, min_child_samples=5, verbose=-1,
                                                     n_jobs=1), early_stopping_rounds=3, random_state=0),
               _lr(0.3)]
    kw = {"columns": [[0, 20], [0, 20], [20, None]], "weights": [2, 1, 1], "cv": 3, "random_state": 7,
          "meta": LogisticRegression()}
    one = ScoreStack(members, **kw).fit(X, Y)
    two = ScoreStack(members, n_jobs=2, **kw).fit(X, Y)
    np.testing.assert_array_equal(one.meta_.coef_, two.meta_.coef_)
    np.testing.assert_array_equal(one.decision_function(X), two.decision_function(X))
    # the out-of-fold rows the meta-learner saw are oof_scores' (same folds, same fits)
    oof = np.stack([oof_scores(_seeded(m, 7), X[:, sl], Y, n_splits=3, random_state=7, score_fn=_logit_scores)
                    for m, sl in zip(members, (slice(0, 20), slice(0, 20), slice(20, None)))], axis=-1)
    np.testing.assert_array_equal(one.center_, oof.reshape(-1, 3).mean(axis=0))


def test_oof_folds_partition_the_rows_and_follow_the_seed(data):
    from mltc.model_selection import oof_folds

    _, Y = data
    folds = oof_folds(Y, n_splits=4, random_state=9)
    held = np.sort(np.concatenate([te for _, te in folds]))
    np.testing.assert_array_equal(held, np.arange(len(Y)))  # every row held out exactly once
    for tr, te in folds:
        assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == len(Y)
    again = oof_folds(Y, n_splits=4, random_state=9)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, oof_folds(Y, n_splits=4, random_state=10)))
