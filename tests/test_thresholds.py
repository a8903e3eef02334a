"""Decision rules: worked-out values, brute-force optima, no leakage, config round trip."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, fbeta_score
from sklearn.utils import estimator_checks as ec
from sklearn.utils._param_validation import InvalidParameterError

from mltc.model_selection import oof_scores
from mltc.thresholds import (
    FixedThreshold, GlobalThreshold, MCut, PCut, PerLabelCVThreshold, PerLabelThreshold, RCut, SCut,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "thresholds"

ALL_RULES = [
    FixedThreshold(), GlobalThreshold(), GlobalThreshold(metric="macro_f1"), GlobalThreshold(metric="samples_f1"),
    PerLabelThreshold(), PerLabelThreshold(fallback="prevalence", shrinkage=3.0), PerLabelCVThreshold(),
    SCut(), SCut(fbr=0.3), PCut(), RCut(), RCut(k="cardinality"), MCut(),
]
RULE_IDS = [repr(r) for r in ALL_RULES]


def _scores(n=300, L=7, seed=0):
    """Labels with decreasing prevalence and informative but noisy probabilities."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < np.linspace(0.05, 0.4, L)).astype(np.int8)
    S = np.clip(0.35 * Y + 0.65 * rng.random((n, L)), 0, 1)
    return S, Y


# ------------------------------------------------------------------ worked examples

def test_per_label_recovers_hand_computed_optimum():
    # sorted scores 0.9..0.4 with labels 1,1,0,1,0,0: F1 of the top r = 2*tp/(3+r) peaks at r=4 (6/7),
    # F0.5 = 1.25*tp/(0.75+r) peaks at r=2 (2.5/2.75); thresholds are midpoints to the next score
    s = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    y = np.array([[1], [1], [0], [1], [0], [0]])
    f1 = PerLabelThreshold(beta=1.0).fit(s, y)
    assert f1.thresholds_[0] == pytest.approx(0.55)
    assert f1.best_score_[0] == pytest.approx(6 / 7)
    f05 = PerLabelThreshold(beta=0.5).fit(s, y)
    assert f05.thresholds_[0] == pytest.approx(0.75)
    assert f05.best_score_[0] == pytest.approx(2.5 / 2.75)


def test_per_label_recovers_planted_thresholds_on_separable_labels():
    rng = np.random.default_rng(1)
    n, planted = 400, np.array([0.2, 0.35, 0.5, 0.8])
    S = rng.random((n, planted.size))
    Y = (S >= planted).astype(np.int8)
    thr = PerLabelThreshold().fit(S, Y).thresholds_
    for j, t in enumerate(planted):
        below, above = S[S[:, j] < t, j].max(), S[S[:, j] >= t, j].min()
        assert below < thr[j] <= above
    np.testing.assert_array_equal(PerLabelThreshold().fit(S, Y).predict(S), Y)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_per_label_matches_brute_force_fbeta(beta):
    S, Y = _scores(n=80, L=4, seed=2)
    S = np.round(S, 2)  # ties: cuts inside a run of equal scores must be skipped
    rule = PerLabelThreshold(beta=beta).fit(S, Y)
    for j in range(S.shape[1]):
        best = max(fbeta_score(Y[:, j], S[:, j] >= t, beta=beta, zero_division=0) for t in np.unique(S[:, j]))
        assert rule.best_score_[j] == pytest.approx(best)
        assert fbeta_score(Y[:, j], S[:, j] >= rule.thresholds_[j], beta=beta) == pytest.approx(best)


@pytest.mark.parametrize("metric", ["micro_f1", "macro_f1", "samples_f1"])
@pytest.mark.parametrize("at_least_one", [False, True])
def test_global_curve_matches_sklearn_at_every_candidate(metric, at_least_one):
    S, Y = _scores(n=120, L=6, seed=3)
    rule = GlobalThreshold(metric=metric, candidates=40, at_least_one=at_least_one).fit(S, Y)
    avg = metric.split("_")[0]
    expected = []
    for t in rule.candidates_:
        P = (S >= t).astype(np.int8)
        if at_least_one:
            empty = ~P.any(axis=1)
            P[empty, S[empty].argmax(axis=1)] = 1
        expected.append(f1_score(Y, P, average=avg, zero_division=0))
    np.testing.assert_allclose(rule.curve_, expected, atol=1e-12)
    assert rule.thresholds_[0] == rule.candidates_[int(np.argmax(expected))]
    assert f1_score(Y, rule.predict(S), average=avg, zero_division=0) == pytest.approx(max(expected))


def test_fixed_defaults_depend_on_score_kind():
    S, Y = _scores()
    assert FixedThreshold().fit(S, Y).summary_ == {"threshold": 0.5}
    margins = S - 0.5
    fixed = FixedThreshold().fit(margins, Y, score_kind="margin")
    np.testing.assert_array_equal(fixed.predict(margins), (margins >= 0).astype(np.int8))
    assert FixedThreshold(threshold=0.3).fit(S, Y).predict(S).sum() == (S >= 0.3).sum()


def test_pcut_selects_ceil_of_training_prevalence_times_n():
    S, Y_val = _scores(n=97, L=6, seed=4)
    rng = np.random.default_rng(5)
    Y_train = (rng.random((1000, 6)) < [0.001, 0.013, 0.05, 0.1, 0.333, 0.5]).astype(np.int8)
    rule = PCut().fit(S, Y_val, Y_train=Y_train)
    P = rule.predict(S)
    for j in range(6):
        k = math.ceil(Y_train[:, j].sum() * 97 / 1000)  # exact: integers, no float rounding
        assert P[:, j].sum() == k
        chosen, rest = S[P[:, j] == 1, j], S[P[:, j] == 0, j]
        assert chosen.size == 0 or rest.size == 0 or chosen.min() >= rest.max()


@pytest.mark.parametrize("k", [1, 2, 5])
def test_rcut_selects_exactly_the_top_k(k):
    S, Y = _scores(seed=6)
    P = RCut(k=k).fit(S, Y).predict(S)
    assert (P.sum(axis=1) == k).all()
    chosen = np.where(P == 1, S, np.inf).min(axis=1)
    rest = np.where(P == 0, S, -np.inf).max(axis=1)
    assert (chosen >= rest).all()


def test_rcut_cardinality_uses_training_mean():
    S, Y = _scores(L=7, seed=7)
    Y_train = np.zeros((10, 7), dtype=np.int8)
    Y_train[:, :3] = 1  # 3 labels per training document
    Y_train[0, :3] = 0  # mean 2.7 -> k = 3
    rule = RCut(k="cardinality").fit(S, Y, Y_train=Y_train)
    assert rule.k_ == 3
    assert (rule.predict(S).sum(axis=1) == 3).all()


def test_mcut_splits_at_largest_gap():
    S = np.array([
        [0.90, 0.85, 0.20, 0.10],  # gaps .05 .65 .10 -> 2 labels
        [0.10, 0.40, 0.45, 0.50],  # sorted .5 .45 .4 .1: gaps .05 .05 .3 -> 3 labels
        [0.30, 0.95, 0.50, 0.60],  # sorted .95 .6 .5 .3: gaps .35 .1 .2 -> 1 label
    ])
    expected = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 1, 0, 0]])
    np.testing.assert_array_equal(MCut().fit(S, expected).predict(S), expected)


def test_mcut_gap_is_largest_on_random_scores():
    S, Y = _scores(seed=8)
    P = MCut().fit(S, Y).predict(S)
    for s, p in zip(S, P):
        srt = np.sort(s)[::-1]
        assert s[p == 1].min() - s[p == 0].max() == pytest.approx(np.max(srt[:-1] - srt[1:]))


def test_scut_fbr_raises_weak_labels_to_top_validation_score():
    S, Y = _scores(n=200, L=6, seed=9)
    Y[:, 0] = 0  # no positives: the top-score rule applies even without fbr
    plain = SCut().fit(S, Y)
    ref = PerLabelThreshold().fit(S, Y)
    np.testing.assert_allclose(plain.thresholds_[1:], ref.thresholds_[1:])
    assert plain.thresholds_[0] == np.nextafter(S[:, 0].max(), np.inf)
    assert plain.predict(S)[:, 0].sum() == 0
    fbr = float(np.median(plain.best_score_[1:]))  # half the labels fall below it
    rule = SCut(fbr=fbr).fit(S, Y)
    weak = plain.best_score_ < fbr
    assert weak[1:].any() and (~weak).any()  # the data exercise both branches
    np.testing.assert_array_equal(rule.thresholds_[weak], np.nextafter(S[:, weak].max(axis=0), np.inf))
    np.testing.assert_allclose(rule.thresholds_[~weak], plain.thresholds_[~weak])


# ------------------------------------------------------------------ fallbacks and shrinkage

def test_per_label_fallbacks_for_labels_without_positives():
    S, Y = _scores(n=200, L=5, seed=10)
    Y[:, 2] = 0
    g = GlobalThreshold().fit(S, Y).thresholds_[0]
    glob = PerLabelThreshold(fallback="global").fit(S, Y)
    assert glob.thresholds_[2] == g and glob.source_[2] == "fallback_global"
    assert np.isnan(glob.best_score_[2])
    assert PerLabelThreshold(fallback="fixed").fit(S, Y).thresholds_[2] == 0.5
    assert PerLabelThreshold(fallback="fixed").fit(S - 0.5, Y, score_kind="margin").thresholds_[2] == 0.0
    Y_train = np.zeros((50, 5), dtype=np.int8)
    Y_train[:7, 2] = 1  # 14% of training documents
    prev = PerLabelThreshold(fallback="prevalence").fit(S, Y, Y_train=Y_train)
    assert (S[:, 2] >= prev.thresholds_[2]).sum() == math.ceil(7 * 200 / 50)
    # the other labels are tuned as usual
    np.testing.assert_allclose(np.delete(prev.thresholds_, 2), np.delete(glob.thresholds_, 2))


def test_labels_with_constant_scores_are_never_assigned_to_every_document():
    # a label never seen in training gets the same score everywhere; tuning would predict it
    # for all documents (the only cut), which the fallbacks and SCut's top-score rule avoid
    S, Y = _scores(n=200, L=4, seed=18)
    S[:, 1] = 0.0
    Y[:3, 1], Y[3:, 1] = 1, 0
    Y_train = np.ones((20, 4), dtype=np.int8)
    Y_train[:, 1] = 0
    for rule in (PerLabelThreshold(), PerLabelThreshold(fallback="prevalence"), SCut()):
        fitted = rule.fit(S, Y, Y_train=Y_train)
        assert fitted.predict(S)[:, 1].sum() == 0, rule
    assert PerLabelThreshold().fit(S, Y).source_[1] == "fallback_prevalence"


def test_prevalence_fallback_stops_above_ties():
    S = np.array([[0.9], [0.5], [0.5], [0.5], [0.1]])
    Y = np.zeros((5, 1), dtype=np.int8)
    Y_train = np.array([[1], [1], [0], [0], [0]])  # 40%: two of five documents, but three tie at 0.5
    rule = PerLabelThreshold(fallback="prevalence").fit(S, Y, Y_train=Y_train)
    np.testing.assert_array_equal(rule.predict(S).ravel(), [1, 0, 0, 0, 0])


def test_min_positives_sends_rare_labels_to_fallback():
    S, Y = _scores(n=200, L=5, seed=11)
    n_pos = Y.sum(axis=0)
    cut = int(np.sort(n_pos)[2])
    rule = PerLabelThreshold(min_positives=cut, fallback="global").fit(S, Y)
    np.testing.assert_array_equal(rule.source_ == "fallback_global", n_pos < cut)
    assert rule.summary_["n_fallback"] == int((n_pos < cut).sum())


def test_shrinkage_is_a_pseudo_count_average():
    S, Y = _scores(n=200, L=5, seed=12)
    lam = 4.0
    plain = PerLabelThreshold().fit(S, Y)
    shrunk = PerLabelThreshold(shrinkage=lam).fit(S, Y)
    n = Y.sum(axis=0)
    expected = (n * plain.thresholds_ + lam * plain.global_threshold_) / (n + lam)
    np.testing.assert_allclose(shrunk.thresholds_, expected)


def test_prevalence_fallback_without_training_labels_uses_validation_prevalence():
    S, Y = _scores(n=200, L=5, seed=19)
    Y[:, 3] = 0
    rule = PerLabelThreshold(fallback="prevalence").fit(S, Y)
    assert rule.source_[3] == "fallback_prevalence"
    assert rule.predict(S)[:, 3].sum() == 0  # a share of zero documents


# ------------------------------------------------------------------ at_least_one, API, validation

@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_at_least_one_fills_only_empty_documents_with_their_top_label(rule):
    S, Y = _scores(seed=13)
    S = S * 0.6  # fewer labels pass: some documents end up empty under most rules
    base = clone(rule).fit(S, Y, Y_train=Y).predict(S)
    filled = clone(rule).set_params(at_least_one=True).fit(S, Y, Y_train=Y).predict(S)
    assert filled.dtype == np.int8 and filled.any(axis=1).all()
    kept = base.any(axis=1)
    if isinstance(rule, GlobalThreshold):
        # its threshold is re-tuned with the rule in force, so only the invariant can be checked
        return
    np.testing.assert_array_equal(filled[kept], base[kept])
    rows = np.flatnonzero(~kept)
    assert (filled[rows].sum(axis=1) == 1).all()
    np.testing.assert_array_equal(filled[rows].argmax(axis=1), S[rows].argmax(axis=1))


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_scikit_learn_api_conventions(rule):
    name = type(rule).__name__
    ec.check_no_attributes_set_in_init(name, rule)
    ec.check_get_params_invariance(name, rule)
    ec.check_set_params(name, rule)
    ec.check_parameters_default_constructible(name, rule)
    S, Y = _scores()
    fitted = clone(rule).fit(S, Y, Y_train=Y)
    summary = fitted.summary_
    assert all(isinstance(v, (int, float)) for v in summary.values())
    frame = fitted.to_frame([f"l{j}" for j in range(S.shape[1])])
    if fitted.thresholds_ is None:
        assert frame is None
    else:
        assert list(frame["label"]) == [f"l{j}" for j in range(S.shape[1])]
        np.testing.assert_array_equal(frame["threshold"], fitted.thresholds_)


def test_needs_flags():
    assert PerLabelCVThreshold.needs_oof and not PerLabelThreshold.needs_oof
    assert PerLabelCVThreshold().get_params()["n_splits"] == 5
    for rule in (FixedThreshold(), PCut(), RCut(), MCut()):
        assert not rule.needs_validation
        rule.fit(np.zeros((0, 4)), np.zeros((0, 4)), Y_train=np.eye(4, dtype=np.int8))  # no validation split
    with pytest.raises(ValueError, match="validation"):
        PerLabelThreshold().fit(np.zeros((0, 4)), np.zeros((0, 4)))


def test_errors_speak_to_users():
    S, Y = _scores()
    with pytest.raises(ValueError, match="score_kind='margin'"):
        GlobalThreshold().fit(S - 0.5, Y)
    with pytest.raises(ValueError, match="shape"):
        GlobalThreshold().fit(S, Y[:-1])
    with pytest.raises(ValueError, match="fitted on 7 labels"):
        GlobalThreshold().fit(S, Y).predict(S[:, :3])
    with pytest.raises(InvalidParameterError):
        GlobalThreshold(metric="accuracy").fit(S, Y)
    with pytest.raises(InvalidParameterError):
        PerLabelThreshold(beta=0).fit(S, Y)
    with pytest.raises(ValueError, match="lower k"):
        RCut(k=8).fit(S, Y)


# ------------------------------------------------------------------ no leakage

@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_predict_never_changes_the_fitted_rule(rule):
    S_val, Y_val = _scores(seed=14)
    S_test, _ = _scores(seed=15)
    fitted = clone(rule).fit(S_val, Y_val, Y_train=Y_val)
    before = {k: np.copy(v) for k, v in vars(fitted).items() if k.endswith("_")}
    fitted.predict(S_test)
    after = {k: v for k, v in vars(fitted).items() if k.endswith("_")}
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


class _FixedSplit:
    def __init__(self, parts):
        self.parts = parts

    def split(self, dataset):
        return self.parts


TUNED = [GlobalThreshold(), GlobalThreshold(metric="macro_f1"), PerLabelThreshold(), SCut(fbr=0.2),
         PerLabelCVThreshold(n_splits=3)]
RANKED = [FixedThreshold(), PCut(), RCut(k="cardinality"), MCut()]


@pytest.mark.parametrize("rule", TUNED + RANKED, ids=repr)
def test_pipeline_thresholds_ignore_test_labels(rule):
    """Inverting every test label must leave thresholds and predictions unchanged.

    As a check that the comparison can fail, inverting validation labels moves tuned thresholds.
    """
    from mltc.data.synthetic import make_synthetic
    from mltc.features import make_tfidf
    from mltc.models import BinaryRelevance
    from mltc.pipeline import run_pipeline

    ds = make_synthetic(n_docs=500, n_labels=6, random_state=0)
    idx = np.random.default_rng(0).permutation(len(ds))
    parts = {"train": np.sort(idx[:300]), "val": np.sort(idx[300:400]), "test": np.sort(idx[400:])}

    def run(Y):
        ds.Y = Y
        res = run_pipeline(ds, splitter=_FixedSplit(parts), featurizer=make_tfidf(min_df=1),
                           model=BinaryRelevance(LogisticRegression(solver="liblinear")),
                           thresholder=clone(rule), random_state=0)
        return res.thresholds, res.per_label["n_predicted"].to_numpy()

    Y0 = ds.Y.copy()
    thr, n_pred = run(Y0.copy())
    flipped = Y0.copy()
    flipped[parts["test"]] = 1 - flipped[parts["test"]]
    thr_t, n_pred_t = run(flipped)
    np.testing.assert_array_equal(n_pred, n_pred_t)
    if thr is None:
        assert thr_t is None
    else:
        np.testing.assert_array_equal(thr, thr_t)
    if isinstance(rule, (GlobalThreshold, PerLabelThreshold, SCut)) and not rule.needs_oof:
        flipped_val = Y0.copy()
        flipped_val[parts["val"]] = 1 - flipped_val[parts["val"]]
        thr_v, _ = run(flipped_val)
        assert not np.allclose(thr, thr_v)


# ------------------------------------------------------------------ out-of-fold scores

class _Spy(BaseEstimator):
    """Scores each row by its id (column 0) and remembers which ids it trained on."""

    def __init__(self, n_labels=3):
        self.n_labels = n_labels

    def fit(self, X, Y, sample_weight=None):
        self.train_ids_ = set(np.asarray(X)[:, 0].astype(int))
        self.n_fit_rows_ = len(Y)
        self.sample_weight_ = None if sample_weight is None else np.asarray(sample_weight)
        return self


def test_oof_scores_never_score_a_document_with_a_model_that_trained_on_it():
    rng = np.random.default_rng(16)
    n, L = 120, 3
    X = np.column_stack([np.arange(n), rng.random(n)])
    Y = (rng.random((n, L)) < [0.1, 0.3, 0.5]).astype(np.int8)
    weights = rng.random(n) + 1
    seen = []

    def score_fn(model, X_fold):
        ids = X_fold[:, 0].astype(int)
        assert not model.train_ids_ & set(ids)  # the leakage check
        assert model.train_ids_ | set(ids) == set(range(n))  # the other folds, all of them
        # split sample weights must stay with their rows (weight = 1 + uniform, keyed by id)
        np.testing.assert_array_equal(model.sample_weight_, weights[sorted(model.train_ids_)])
        seen.append(ids)
        return np.tile(ids[:, None] / n, (1, L)) + np.arange(L) / 10, "proba"

    out = oof_scores(_Spy(L), X, Y, n_splits=4, random_state=0, fit_params={"sample_weight": weights},
                     score_fn=score_fn)
    assert len(seen) == 4
    ids = np.concatenate(seen)
    assert np.sort(ids).tolist() == list(range(n))  # every document scored exactly once
    np.testing.assert_allclose(out, np.arange(n)[:, None] / n + np.arange(L) / 10)


def test_oof_folds_are_stratified_and_seeded():
    rng = np.random.default_rng(17)
    n, L, k = 200, 4, 5
    X = np.column_stack([np.arange(n), rng.random(n)])
    Y = (rng.random((n, L)) < [0.05, 0.2, 0.4, 0.6]).astype(np.int8)
    folds = []

    def score_fn(model, X_fold):
        folds.append(X_fold[:, 0].astype(int))
        return np.zeros((len(X_fold), L)), "proba"

    oof_scores(_Spy(L), X, Y, n_splits=k, random_state=3, score_fn=score_fn)
    first = [f.copy() for f in folds]
    for f in first:  # each fold holds about 1/k of every label's positives
        np.testing.assert_allclose(Y[f].sum(axis=0), Y.sum(axis=0) / k, atol=1.01)
    folds.clear()
    oof_scores(_Spy(L), X, Y, n_splits=k, random_state=3, score_fn=score_fn)
    assert all(np.array_equal(a, b) for a, b in zip(first, folds))


def test_oof_scores_rejects_bad_fold_counts():
    X, Y = np.zeros((10, 2)), np.zeros((10, 2), dtype=np.int8)
    with pytest.raises(ValueError, match="n_splits"):
        oof_scores(_Spy(2), X, Y, n_splits=11, score_fn=lambda m, x: (np.zeros((len(x), 2)), "proba"))


# ------------------------------------------------------------------ configs

@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_instantiates_with_matching_keys(path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path)
    rule = instantiate(OmegaConf.merge({"seed": 0}, {"rule": cfg}).rule)
    keys = set(cfg) - {"_target_"}
    assert keys == set(rule.get_params())
    S, Y = _scores()
    assert rule.fit(S, Y, Y_train=Y).predict(S).shape == S.shape


def test_configs_cover_every_rule():
    assert {p.stem for p in CONF.glob("*.yaml")} == {
        "fixed", "global", "per_label", "per_label_global", "per_label_cv", "pcut", "rcut", "scut", "mcut"}


def test_oof_scores_keeps_its_old_import_path():
    from mltc import model_selection, thresholds
    assert thresholds.oof_scores is model_selection.oof_scores
