"""Pseudo-labelling and cost-sensitive meta-learning strategies, on small synthetic data."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.utils._param_validation import InvalidParameterError

from mltc.imbalance import irlbl, mean_ir
from mltc.models import BinaryRelevance
from mltc.strategies.meta_cost import MetaCostRelabel, MetaCostWeights, row_weights
from mltc.strategies.pseudo_label import PseudoLabeler


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    Y = np.column_stack([X[:, 0] > -0.5, X[:, 1] > 1.0, X[:, 2] > 1.6]).astype(np.int8)
    return X, Y


def _br():
    return BinaryRelevance(LogisticRegression(C=10.0))


class _Oracle(BaseEstimator):
    """Predicts known probabilities for known rows (by the row's first feature)."""

    def __init__(self, *, table=None):
        self.table = table

    def fit(self, X, Y):
        self.score_kind_ = "proba"
        return self

    def predict_proba(self, X):
        return np.array([self.table[float(x)] for x in np.asarray(X)[:, 0]])


def test_pseudo_labels_rounds_and_precision():
    X, Y = _data()
    pl = PseudoLabeler(estimator=_br(), unlabeled_fraction=0.5, threshold=0.9, minority_threshold=0.7,
                       max_per_round=0.3, n_rounds=3, random_state=0)
    X2, Y2 = pl.fit_resample(X, Y)
    n_lab = len(Y) - int(round(0.5 * len(Y)))
    added = sum(r["added"] for r in pl.rounds_)
    assert X2.shape[0] == Y2.shape[0] == n_lab + added == len(pl.sample_indices_)
    assert 0 < added <= len(Y) - n_lab
    # labelled rows keep their true labels; pseudo rows come from the hidden share
    np.testing.assert_array_equal(X2, X[pl.sample_indices_])
    np.testing.assert_array_equal(Y2[:n_lab], Y[pl.sample_indices_[:n_lab]])
    hidden = set(range(len(Y))) - set(pl.sample_indices_[:n_lab].tolist())
    assert set(pl.pseudo_indices_.tolist()) <= hidden
    # the logged precision is the micro precision of the added labels against the hidden truth
    start = n_lab
    for r in pl.rounds_:
        rows = slice(start, start + r["added"])
        yt, yp = Y[pl.sample_indices_[rows]], Y2[rows]
        if r["added"]:
            assert r["precision"] == pytest.approx((yt & yp).sum() / yp.sum())
            assert r["exact_match"] == pytest.approx((yt == yp).all(axis=1).mean())
        start += r["added"]
    assert pl.rounds_[0]["precision"] > 0.8  # a separable problem: confident predictions are right


def test_pseudo_labels_favour_minority_labels():
    # rows 0..5 labelled, 6..11 hidden; hidden rows 6-8 are minority-label predictions with lower confidence
    X = np.arange(12, dtype=float).reshape(-1, 1)
    Y = np.array([[1, 0]] * 5 + [[1, 1]] + [[0, 1]] * 3 + [[1, 0]] * 3, dtype=np.int8)
    table = {float(i): [0.05, 0.75] for i in range(6, 9)}
    table.update({float(i): [0.99, 0.01] for i in range(9, 12)})
    table.update({float(i): [0.5, 0.5] for i in range(6)})

    pl = PseudoLabeler(estimator=_Oracle(table=table), unlabeled_fraction=0.5, threshold=0.9,
                       minority_threshold=0.7, max_per_round=0.5, n_rounds=1, random_state=0)
    # which rows the seed hides is read back from sample_indices_
    X2, Y2 = pl.fit_resample(X, Y)
    hidden = sorted(set(range(12)) - set(pl.sample_indices_[:6].tolist()))
    minority_hidden = [i for i in hidden if table[float(i)][1] >= 0.7]
    majority_hidden = [i for i in hidden if table[float(i)][0] >= 0.9]
    took = pl.sample_indices_[6:].tolist()
    k = pl.rounds_[0]["added"]
    assert k == 3
    # minority candidates are taken before the (more confident) majority ones
    expect = minority_hidden[:k] + majority_hidden[: max(0, k - len(minority_hidden))]
    assert sorted(took) == sorted(expect)


def test_pseudo_labels_need_a_pool():
    X, Y = _data(40)
    with pytest.raises(ValueError, match="unlabeled pool"):
        PseudoLabeler(estimator=_br(), unlabeled_fraction=0.0).fit_resample(X, Y)
    with pytest.raises(InvalidParameterError, match="threshold"):
        PseudoLabeler(estimator=_br(), threshold=1.5).fit_resample(X, Y)
    with pytest.raises(ValueError, match="same fitted featurizer"):
        PseudoLabeler(estimator=_br()).fit_resample(X, Y, X_unlabeled=np.zeros((3, 2)))


def test_pseudo_labels_keep_sparse_input():
    X, Y = _data(120)
    Xs = sp.csr_matrix(np.abs(X))
    X2, _ = PseudoLabeler(estimator=_br(), random_state=0, n_rounds=1).fit_resample(Xs, Y)
    assert sp.issparse(X2) and X2.format == "csr"


def test_row_weights_formula():
    Y = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(row_weights(Y, [2.0, 3.0, 5.0]), [5.0, 1.0, 3.0])


def test_meta_cost_weights_never_worse_than_uniform_on_inner_holdout():
    X, Y = _data(300)
    mc = MetaCostWeights(estimator=_br(), grid=[1, 2, 4, 8], labels="all", random_state=0, max_samples=None)
    X2, Y2, w = mc.fit_resample(X, Y)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(Y2, Y)
    np.testing.assert_allclose(w, row_weights(Y, mc.label_weights_))
    assert mc.best_score_ >= mc.base_score_
    assert set(mc.label_weights_.tolist()) <= {1.0, 2.0, 4.0, 8.0}
    # history scores increase strictly, and the last one is the best
    scores = [h["score"] for h in mc.history_]
    assert all(b > a for a, b in zip(scores, scores[1:]))
    if scores:
        assert scores[-1] == pytest.approx(mc.best_score_)
    # recompute the reported best score independently
    rng = np.random.RandomState(0)
    sub = rng.permutation(len(Y))
    va, tr = np.sort(sub[:75]), np.sort(sub[75:])
    model = _br().fit(X[tr], Y[tr], sample_weight=row_weights(Y[tr], mc.label_weights_))
    pred = (model.predict_proba(X[va]) >= 0.5).astype(int)
    assert f1_score(Y[va], pred, average="macro", zero_division=0) == pytest.approx(mc.best_score_)


def test_meta_cost_searches_only_minority_labels_by_default():
    X, Y = _data(200)
    mc = MetaCostWeights(estimator=_br(), grid=[1, 4], random_state=0)
    mc.fit_resample(X, Y)
    ir = irlbl(Y)
    majority = np.flatnonzero(ir <= mean_ir(Y))
    np.testing.assert_array_equal(mc.label_weights_[majority], 1.0)
    with pytest.raises(ValueError, match="positive costs"):
        MetaCostWeights(estimator=_br(), grid=[0, 1]).fit_resample(X, Y)


def test_metacost_relabel_rule():
    X, Y = _data(200)
    table_p = np.random.default_rng(1).uniform(size=Y.shape)

    class Fixed(BaseEstimator):
        def fit(self, X, Y):
            self.score_kind_ = "proba"
            return self

        def predict_proba(self, X):
            return table_p[np.asarray(X[:, -1], dtype=int)]

    Xi = np.column_stack([X, np.arange(len(X))])
    mc = MetaCostRelabel(estimator=Fixed(), costs="irlbl", power=1.0, n_estimators=3, random_state=0)
    _, Y_new = mc.fit_resample(Xi, Y)
    counts = Y.sum(axis=0)
    ratios = counts.max() / counts
    np.testing.assert_allclose(mc.cost_ratios_, ratios)
    # every model gives the same probabilities, so the average is table_p whatever the bags
    expected = (table_p * ratios > (1 - table_p)).astype(np.int8)
    np.testing.assert_array_equal(Y_new, expected)
    np.testing.assert_array_equal(mc.n_flipped_, expected.sum(axis=0) - counts)
    mc2 = MetaCostRelabel(estimator=Fixed(), costs=1.0, power=1.0, n_estimators=1, random_state=0)
    np.testing.assert_array_equal(mc2.fit_resample(Xi, Y)[1], (table_p > 0.5).astype(np.int8))


def test_strategies_run_in_the_pipeline_from_configs(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    from mltc.data.synthetic import make_synthetic
    from mltc.pipeline import run_pipeline

    ds = make_synthetic(n_docs=400, n_labels=5, random_state=0)
    for name in ("pseudo_label", "meta_cost", "metacost_relabel"):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("config", overrides=[f"strategy={name}", "tracking=none", "strategy.max_samples=300"
                                               if name == "meta_cost" else f"seed=0"])
        objs = {g: instantiate(cfg[g], _convert_="all") for g in ("split", "features", "strategy", "model")}
        res = run_pipeline(ds, splitter=objs["split"], featurizer=objs["features"], model=objs["model"],
                           strategy=objs["strategy"])
        assert 0 <= res.metrics["macro_f1"] <= 1
        assert res.sizes["n_train_fit"] > 0


def _plain(obj):
    """True when obj is built only from JSON's Python types (no numpy scalars or arrays)."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    return obj is None or type(obj) in (bool, int, float, str)


def test_pseudo_label_summary_matches_the_rows_added():
    import json

    X, Y = _data()
    pl = PseudoLabeler(estimator=_br(), unlabeled_fraction=0.5, max_per_round=0.3, n_rounds=3, random_state=0)
    X2, Y2 = pl.fit_resample(X, Y)
    s = pl.summary_
    assert _plain(s)
    json.dumps(s)
    n_lab = s["n_labelled"]
    assert n_lab == len(Y) - int(round(0.5 * len(Y))) and s["n_pool"] == len(Y) - n_lab
    assert s["n_added"] == X2.shape[0] - n_lab == sum(r["added"] for r in s["rounds"])
    assert s["pool_left"] == s["n_pool"] - s["n_added"]
    # per-label counts are the column sums of the pseudo-labels that were appended
    assert s["added_per_label"] == Y2[n_lab:].sum(axis=0).tolist()
    # overall precision recomputed from the hidden truth of the added rows
    truth = Y[pl.sample_indices_[n_lab:]]
    assert s["precision"] == pytest.approx((truth & Y2[n_lab:]).sum() / Y2[n_lab:].sum())
    assert [r["round"] for r in s["rounds"]] == list(range(len(s["rounds"])))
    assert s["threshold"] == 0.9 and s["minority_threshold"] == 0.7


def test_pseudo_label_pool_from_fit_param_any_container():
    from sklearn.base import clone

    X, Y = _data(200)
    X_extra = _data(60, seed=5)[0]
    for X_in, Xu in ((X, sp.csr_matrix(X_extra)), (sp.csr_matrix(X), X_extra), (X, X_extra.tolist())):
        pl = PseudoLabeler(estimator=_br(), n_rounds=2, max_per_round=1.0, random_state=0)
        pl.set_params(unlabeled_fraction=0.0)
        pl = clone(pl)  # how a sweep or the out-of-fold thresholds copy the strategy
        X2, Y2 = pl.fit_resample(X_in, Y, X_unlabeled=Xu)
        assert sp.issparse(X2) == sp.issparse(X_in)
        s = pl.summary_
        assert s["n_labelled"] == len(Y) and s["n_pool"] == s["n_pool_from_X_unlabeled"] == 60
        assert s["n_added"] > 0 and "precision" not in s  # nothing to check pseudo-labels against
        # the added rows are rows of X_unlabeled, in the order their sample index (-1) says
        assert (pl.sample_indices_[len(Y):] == -1).all() and len(pl.pseudo_indices_) == 0
        dense = X2.toarray() if sp.issparse(X2) else X2
        added = dense[len(Y):]
        assert all(np.isclose(X_extra, row).all(axis=1).any() for row in added)


def test_meta_cost_summaries():
    import json

    X, Y = _data(300)
    mc = MetaCostWeights(estimator=_br(), grid=[1, 4], labels="all", random_state=0, max_samples=None)
    mc.fit_resample(X, Y)
    s = mc.summary_
    assert _plain(s)
    json.dumps(s)
    assert s["label_weights"] == mc.label_weights_.tolist()
    assert s["base_score"] == mc.base_score_ and s["best_score"] == mc.best_score_ >= s["base_score"]
    assert s["n_moves"] == len(s["history"]) == len(mc.history_)
    assert s["searched_labels"] == [0, 1, 2] and s["n_inner_val"] == 75

    rel = MetaCostRelabel(estimator=_br(), costs="irlbl", power=1.0, n_estimators=3, random_state=0)
    _, Y_new = rel.fit_resample(X, Y)
    s = rel.summary_
    assert _plain(s)
    json.dumps(s)
    assert s["cost_ratios"] == pytest.approx(rel.cost_ratios_.tolist())
    assert s["added_per_label"] == ((Y_new == 1) & (Y == 0)).sum(axis=0).tolist()
    assert s["removed_per_label"] == ((Y_new == 0) & (Y == 1)).sum(axis=0).tolist()
    # added minus removed is the net change MetaCostRelabel already reports, and the positive totals agree
    np.testing.assert_array_equal(np.subtract(s["added_per_label"], s["removed_per_label"]), rel.n_flipped_)
    assert s["positives_after"] - s["positives_before"] == s["n_added"] - s["n_removed"]
    assert s["rows_changed"] == int((Y_new != Y).any(axis=1).sum())
