"""Per-label boosting, class weights flowing into fit, and every model option of the real config."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_set_params)
from xgboost import XGBClassifier

from _optional import skip_if_needs_missing_extra
from mltc.models import BinaryRelevance, predict_scores
from mltc.models.boosting import BoostedBinaryRelevance, chi2_per_label
from mltc.models.stack import ScoreAverage
from mltc.models.losses import (AsymmetricLoss, ClassBalancedFocalLoss, DistributionBalancedLoss, FocalLoss,
                                LabelSmoothingBCE, WeightedBCE)
from mltc.models.transforms import ClassifierChain, EnsembleClassifierChains, LabelPowerset, RAkEL
from mltc.models.weights import scale_pos_weight


@pytest.fixture(scope="module")
def small():
    """Integer-valued features (histogram bins are exact) and three labels of decreasing frequency."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, size=(300, 4)).astype(np.float64)
    logits = np.column_stack([X[:, 0] - 2.5, X[:, 1] - 4.0, X[:, 2] + X[:, 3] - 9.0])
    Y = (logits + rng.logistic(size=logits.shape) > 0).astype(np.int8)
    return X, Y


def _xgb(**kw):
    return XGBClassifier(n_estimators=15, max_depth=2, learning_rate=0.3, n_jobs=1, **kw)


def _lgbm(**kw):
    return LGBMClassifier(n_estimators=15, num_leaves=4, learning_rate=0.3, n_jobs=1, verbose=-1,
                          min_child_samples=1, **kw)


@pytest.mark.parametrize("make", [_xgb, _lgbm], ids=["xgboost", "lightgbm"])
def test_bce_objective_reproduces_the_builtin_logloss(small, make):
    # same loss, same start (the prior log-odds): the custom objective must grow the same trees
    X, Y = small
    custom = BoostedBinaryRelevance(make(), loss=WeightedBCE()).fit(X, Y)
    for j in range(Y.shape[1]):
        prior = Y[:, j].mean()
        ref = make(base_score=prior) if make is _xgb else make()
        ref.fit(X, Y[:, j])
        m = ref.predict(X, output_margin=True) if make is _xgb else ref.predict(X, raw_score=True)
        np.testing.assert_allclose(custom.decision_function(X)[:, j], m, rtol=1e-4, atol=1e-4)


def test_builtin_balanced_equals_scale_pos_weight_started_at_the_weighted_optimum(small):
    # balanced weights make the weighted prior 1/2, so the weighted optimum start is margin 0: XGBoost's
    # scale_pos_weight with base_score 0.5, and LightGBM's without boost_from_average, must grow the same trees
    X, Y = small
    expected = (len(Y) - Y.sum(0)) / Y.sum(0)
    for make, kw in [(_xgb, dict(base_score=0.5)), (_lgbm, dict(boost_from_average=False))]:
        m = BoostedBinaryRelevance(make(), pos_weight="balanced").fit(X, Y)
        np.testing.assert_allclose(m.scale_pos_weight_, expected)
        np.testing.assert_allclose(m.init_margins_, 0.0, atol=1e-12)
        for j in range(Y.shape[1]):
            ref = make(scale_pos_weight=expected[j], **kw).fit(X, Y[:, j])
            r = ref.predict(X, output_margin=True) if make is _xgb else ref.predict(X, raw_score=True)
            np.testing.assert_allclose(m.decision_function(X)[:, j], r, rtol=1e-4, atol=1e-4)
    assert predict_scores(m, X)[0].shape == Y.shape


@pytest.fixture(scope="module")
def rare_sparse():
    """Sparse TF-IDF-like rows and labels with 8-40 positives among 1,200 documents (Reuters' tail)."""
    rng = np.random.default_rng(0)
    X = sp.random(1200, 100, density=0.05, random_state=1, format="csr", data_rvs=lambda k: rng.uniform(0.1, 1, k))
    Y = np.zeros((1200, 4), dtype=np.int8)
    for j, k in enumerate([8, 12, 20, 40]):
        # positives use the label's own term: learnable, but only a handful of them
        Y[rng.choice(np.flatnonzero(X[:, j].toarray().ravel() > 0), k, replace=False), j] = 1
    return X, Y


def test_balanced_lightgbm_is_not_worse_than_unweighted_on_rare_labels(rare_sparse):
    """Regression: LightGBM with balanced per-label weights used to rank its own training rows at chance.

    With ``scale_pos_weight`` LightGBM starts from the unweighted log-odds (about -5 for 8 of 1,200), the
    first tree moves its positives' leaves by ~scale_pos_weight logits, and the negatives sharing those
    leaves stay at probability 1 (zero hessian, no leaf can reach ``min_sum_hessian_in_leaf``).
    """
    from sklearn.metrics import average_precision_score
    X, Y = rare_sparse
    lgbm = lambda: LGBMClassifier(n_estimators=50, learning_rate=0.2, min_child_samples=5, verbose=-1, n_jobs=1)
    scores = {w: BoostedBinaryRelevance(lgbm(), pos_weight=w).fit(X, Y).predict_proba(X) for w in ("none", "balanced")}
    xgb = BoostedBinaryRelevance(XGBClassifier(n_estimators=50, learning_rate=0.2, n_jobs=1),
                                 pos_weight="balanced").fit(X, Y).predict_proba(X)
    for j in range(Y.shape[1]):
        ap = {w: average_precision_score(Y[:, j], s[:, j]) for w, s in scores.items()}
        assert ap["balanced"] >= ap["none"] - 0.05
        assert ap["balanced"] >= average_precision_score(Y[:, j], xgb[:, j]) - 0.05
        # a balanced booster may lift uncertain negatives, not most of them
        assert np.mean(scores["balanced"][Y[:, j] == 0, j] > 0.5) < 0.05


@pytest.mark.parametrize("make", [_xgb, _lgbm], ids=["xgboost", "lightgbm"])
def test_per_label_pos_weight_multiplies_positive_terms_of_a_custom_loss(small, make):
    X, Y = small
    j = 2
    spw = scale_pos_weight(Y.sum(0), len(Y), scheme="balanced")[j]
    a = BoostedBinaryRelevance(make(), loss=WeightedBCE(), pos_weight="balanced").fit(X, Y[:, [j]])
    b = BoostedBinaryRelevance(make(), loss=WeightedBCE(pos_weight=spw)).fit(X, Y[:, [j]])
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", [None, FocalLoss()], ids=["builtin", "focal"])
def test_integer_sample_weights_equal_repeated_rows(small, loss):
    X, Y = small
    w = np.where(np.arange(len(Y)) % 3 == 0, 2.0, 1.0)
    rep = np.repeat(np.arange(len(Y)), w.astype(int))
    a = BoostedBinaryRelevance(_lgbm(), loss=loss).fit(X, Y, sample_weight=w)
    b = BoostedBinaryRelevance(_lgbm(), loss=loss).fit(X[rep], Y[rep])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_chi2_per_label_matches_scikit_learn(rare_sparse):
    from sklearn.feature_selection import chi2
    X, Y = rare_sparse
    ours = chi2_per_label(X, Y)
    for j in range(Y.shape[1]):
        np.testing.assert_allclose(ours[j], np.nan_to_num(chi2(X, Y[:, j])[0]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chi2_per_label(X.toarray(), Y), ours, rtol=1e-10)


def test_feature_selection_keeps_each_labels_top_chi2_columns(rare_sparse):
    X, Y = rare_sparse
    m = BoostedBinaryRelevance(_lgbm(), max_features_per_label=10).fit(X, Y)
    chi = chi2_per_label(X, Y)
    for j, cols in enumerate(m.features_):
        assert len(cols) == 10 and j in cols  # the label's own term is the most informative
        assert chi[j, cols].min() >= np.sort(chi[j])[-10]
    # a booster seeing only its selected columns scores like one given the full matrix restricted to them
    ref = BoostedBinaryRelevance(_lgbm()).fit(X[:, m.features_[1]], Y[:, [1]])
    np.testing.assert_allclose(m.decision_function(X)[:, 1], ref.decision_function(X[:, m.features_[1]])[:, 0])
    with pytest.raises(ValueError, match="non-negative"):
        BoostedBinaryRelevance(_lgbm(), max_features_per_label=2).fit(-X.toarray(), Y)


@pytest.mark.parametrize("make", [_xgb, _lgbm], ids=["xgboost", "lightgbm"])
@pytest.mark.parametrize("loss", [None, FocalLoss(alpha=None)], ids=["builtin", "focal"])
def test_early_stopping_holds_out_a_stratified_slice_and_keeps_the_best_trees(rare_sparse, make, loss):
    X, Y = rare_sparse
    kw = dict(loss=loss, pos_weight="balanced", early_stopping_rounds=3, validation_fraction=0.25,
              min_val_positives=3, random_state=0)
    big = make().set_params(n_estimators=200)
    m = BoostedBinaryRelevance(big, **kw).fit(X, Y)
    # 8 positives x 0.25 = 2 held out: too few to rank on, so that label trains all 200 trees on every row
    assert m.n_trees_[0] == 200
    # the label's own term separates it perfectly: held-out precision stops improving long before 200 trees
    assert 0 < m.n_trees_[3] < 200
    again = BoostedBinaryRelevance(big, **kw).fit(X, Y)
    np.testing.assert_array_equal(m.n_trees_, again.n_trees_)
    np.testing.assert_allclose(m.decision_function(X), again.decision_function(X))


def test_stratified_holdout_takes_the_fraction_of_each_class():
    from mltc.models.boosting import _stratified_holdout
    y = np.r_[np.ones(40), np.zeros(360)]
    held = _stratified_holdout(y, 0.1, 3, np.random.default_rng(0))
    assert y[held].sum() == 4 and (y[held] == 0).sum() == 36 and len(np.unique(held)) == 40
    assert _stratified_holdout(np.r_[np.ones(20), np.zeros(100)], 0.1, 3, np.random.default_rng(0)) is None


@pytest.mark.parametrize("loss", [FocalLoss(gamma=2.0, alpha=None), LabelSmoothingBCE(), ClassBalancedFocalLoss(),
                                  DistributionBalancedLoss(), AsymmetricLoss()],
                         ids=lambda l: type(l).__name__)
def test_every_loss_trains_a_better_than_chance_booster(small, loss):
    from sklearn.metrics import roc_auc_score
    X, Y = small
    m = BoostedBinaryRelevance(_xgb(), loss=loss).fit(X, Y)
    S, kind = predict_scores(m, X)
    assert kind == "proba" and np.all((S >= 0) & (S <= 1))
    assert min(roc_auc_score(Y[:, j], S[:, j]) for j in range(Y.shape[1])) > 0.75


def test_constant_label_gives_constant_scores(small):
    X, Y = small
    Y = np.column_stack([Y, np.zeros(len(Y), dtype=np.int8)])
    m = BoostedBinaryRelevance(_xgb(), loss=FocalLoss()).fit(X, Y)
    assert np.all(m.predict_proba(X)[:, -1] < 1e-6)


def test_boosting_refuses_other_learners(small):
    with pytest.raises(TypeError, match="BinaryRelevance"):
        BoostedBinaryRelevance(LogisticRegression()).fit(*small)


def test_learner_without_sample_weight_says_so(small):
    from imblearn.ensemble import EasyEnsembleClassifier
    X, Y = small
    with pytest.raises(TypeError, match="sample_weight"):
        BinaryRelevance(EasyEnsembleClassifier(n_estimators=2)).fit(X, Y, sample_weight=np.ones(len(Y)))


@pytest.mark.parametrize("obj", [
    BoostedBinaryRelevance(_xgb()), ScoreAverage([BinaryRelevance(LogisticRegression())], scale="logit"),
    LabelPowerset(LogisticRegression()), ClassifierChain(LogisticRegression()),
    EnsembleClassifierChains(LogisticRegression()), RAkEL(LogisticRegression()), FocalLoss(),
    DistributionBalancedLoss(), ClassBalancedFocalLoss(), AsymmetricLoss(), WeightedBCE(), LabelSmoothingBCE(),
], ids=lambda o: type(o).__name__)
def test_scikit_learn_api_checks(obj):
    name = type(obj).__name__
    check_no_attributes_set_in_init(name, obj)
    check_get_params_invariance(name, obj)
    check_set_params(name, obj)


# ---- every model option of the real config fits and scores --------------------------------------------------

# models that read raw texts (features=raw) are fitted on texts in their own tests (tests/test_finetune.py)
_TEXT_MODELS = {"finetune"}


def _model_options():
    from mltc.app import CONF_DIR
    return sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml") if p.stem not in _TEXT_MODELS)


_SHRINK = {"n_estimators": 5, "n_chains": 2, "cv": 2}


def _shrink(node, path="model"):
    """Overrides making every ensemble tiny (the test checks wiring, not accuracy)."""
    from omegaconf import DictConfig
    out = []
    for k in node.keys():
        v = node[k]
        if isinstance(v, DictConfig):
            out += _shrink(v, f"{path}.{k}")
        elif k in _SHRINK:
            out.append(f"{path}.{k}={_SHRINK[k]}")
    return out


@pytest.fixture(scope="module")
def synthetic_features():
    from mltc.data.synthetic import make_synthetic
    from sklearn.feature_extraction.text import TfidfVectorizer
    ds = make_synthetic(n_docs=250, n_labels=6, random_state=0)
    X = TfidfVectorizer(min_df=2).fit_transform(ds.texts)
    return X, ds.Y


@pytest.mark.parametrize("option", _model_options())
def test_every_model_option_fits_and_scores(option, synthetic_features):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={option}"])
        cfg = compose(config_name="config", overrides=[f"model={option}", *_shrink(cfg.model)])
    skip_if_needs_missing_extra(cfg.model)
    model = instantiate(cfg.model, _convert_="all")
    X, Y = synthetic_features
    model.fit(X[:200], Y[:200])
    S, kind = predict_scores(model, X[200:])
    assert S.shape == (X.shape[0] - 200, Y.shape[1]) and np.all(np.isfinite(S))
    assert kind in ("proba", "margin")


@pytest.mark.parametrize("loss", ["bce", "focal", "label_smoothing", "cb_focal", "db", "asl"])
def test_loss_options_compose_under_boosted_models(loss):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=lgbm", f"model/loss={loss}"])
    model = instantiate(cfg.model, _convert_="all")
    assert model.loss is not None and type(model.loss).__module__ == "mltc.models.losses"


# ---- the invariant the issue asks for ------------------------------------------------------------------

@pytest.mark.slow
def test_focal_loss_improves_tail_f1_over_bce_on_synthetic_data():
    """At the default cut (0.5), focal loss lifts the rare labels that BCE leaves under-predicted."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mltc.data.synthetic import make_synthetic
    from mltc.metrics import evaluate
    ds = make_synthetic(n_docs=3000, n_labels=20, random_state=0)
    idx = np.random.default_rng(0).permutation(len(ds))
    tr, te = idx[:2000], idx[2000:]
    vec = TfidfVectorizer(min_df=2, sublinear_tf=True)
    Xtr = vec.fit_transform([ds.texts[i] for i in tr])
    Xte = vec.transform([ds.texts[i] for i in te])
    tail = {}
    for name, loss in [("bce", None), ("focal", FocalLoss(gamma=2.0, alpha=None))]:
        est = XGBClassifier(n_estimators=100, max_depth=4, learning_rate=0.1, n_jobs=1)
        P = BoostedBinaryRelevance(est, loss=loss).fit(Xtr, ds.Y[tr]).predict_proba(Xte)
        m, _ = evaluate(ds.Y[te], P >= 0.5, P, train_counts=ds.Y[tr].sum(0))
        tail[name] = m["tail_macro_f1"]
    assert tail["focal"] > tail["bce"]


# ---- score averaging (linear + boosted) ----------------------------------------------------------------

def test_score_average_is_the_weighted_mean_of_logits_and_margins(small):
    from scipy.special import logit
    from sklearn.svm import LinearSVC

    X, Y = small
    svm, boost = BinaryRelevance(LinearSVC()), BoostedBinaryRelevance(_lgbm(), pos_weight="balanced")
    m = ScoreAverage([svm, boost], weights=[3.0, 1.0], scale="logit").fit(X, Y)
    margin = svm.fit(X, Y).decision_function(X)
    p = np.clip(boost.fit(X, Y).predict_proba(X), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(m.decision_function(X), 0.75 * margin + 0.25 * logit(p), rtol=1e-6, atol=1e-9)
    S, kind = predict_scores(m, X)
    assert kind == "margin" and S.shape == Y.shape
    # a single member gives back its own scores
    one = ScoreAverage([BinaryRelevance(LinearSVC())], scale="logit").fit(X, Y)
    np.testing.assert_allclose(one.decision_function(X), margin)


def test_score_average_checks_weights_and_sample_weight_support(small):
    from sklearn.multiclass import OneVsRestClassifier

    X, Y = small
    with pytest.raises(ValueError, match="non-negative numbers"):
        ScoreAverage([BinaryRelevance(LogisticRegression())], weights=[1.0, 2.0]).fit(X, Y)
    with pytest.raises(TypeError, match="sample_weight"):
        ScoreAverage([OneVsRestClassifier(LogisticRegression())]).fit(X, Y, sample_weight=np.ones(len(Y)))
    w = np.where(np.arange(len(Y)) % 2 == 0, 2.0, 1.0)
    a = ScoreAverage([BinaryRelevance(LogisticRegression())], scale="logit").fit(X, Y, sample_weight=w)
    b = BinaryRelevance(LogisticRegression()).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(a.decision_function(X), np.log(b.predict_proba(X) / (1 - b.predict_proba(X))),
                               rtol=1e-6)
