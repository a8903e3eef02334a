"""metrics.extra: each registry metric against scikit-learn or its hand-computed formula; names and errors."""
import numpy as np
import pytest
from sklearn import metrics as skm

from mltc.metrics import evaluate, resolve_metrics, threshold_metric
from mltc.thresholds import GlobalThreshold


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    Y = (rng.random((300, 7)) < [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.0]).astype(int)
    Y[:40] = 0  # documents with no gold label (the case zero_division decides)
    S = np.clip(Y * 0.35 + rng.random(Y.shape) * 0.7, 0, 1)
    P = (S >= 0.55).astype(int)
    P[:20] = 0  # some of them predicted empty too
    return Y, S, P


def one(spec, Y, P, S):
    return next(iter(resolve_metrics([spec]).values()))(Y, P, S)


def test_jaccard_samples_zero_division_matches_sklearn(data):
    Y, S, P = data
    both_empty = ((Y.sum(1) == 0) & (P.sum(1) == 0)).sum()
    assert both_empty >= 10
    for zd in (0, 1):
        expected = skm.jaccard_score(Y, P, average="samples", zero_division=zd)
        assert one({"name": "jaccard_samples", "zero_division": zd}, Y, P, S) == pytest.approx(expected)
    assert one("jaccard_samples_zd1", Y, P, S) == pytest.approx(skm.jaccard_score(Y, P, average="samples",
                                                                                  zero_division=1))
    # zd=1 adds exactly (both-empty documents) / n to zd=0
    assert one("jaccard_samples_zd1", Y, P, S) - evaluate(Y, P)[0]["jaccard_samples"] == pytest.approx(
        both_empty / len(Y))


def test_macro_pr_f1_is_the_harmonic_mean_of_macro_precision_and_recall(data):
    Y, S, P = data
    p = skm.precision_score(Y, P, average="macro", zero_division=0)
    r = skm.recall_score(Y, P, average="macro", zero_division=0)
    assert one("macro_pr_f1", Y, P, S) == pytest.approx(2 * p * r / (p + r))
    assert one("Another-Macro-F1", Y, P, S) == pytest.approx(2 * p * r / (p + r))
    assert one("macro_pr_f1", Y, P, S) != pytest.approx(skm.f1_score(Y, P, average="macro", zero_division=0))


def _hand_topk(Y, S, k):
    p, r, rp, nd = [], [], [], []
    for y, s in zip(Y, S):
        top = sorted(range(len(s)), key=lambda j: -s[j])[:k]
        hits = sum(y[j] for j in top)
        n = int(y.sum())
        p.append(hits / k)
        r.append(hits / n if n else 0.0)
        rp.append(hits / min(k, n) if n else 0.0)
        dcg = sum(y[j] / np.log2(i + 2) for i, j in enumerate(top))
        idcg = sum(1 / np.log2(i + 2) for i in range(min(k, n)))
        nd.append(dcg / idcg if idcg else 0.0)
    return np.mean(p), np.mean(r), np.mean(rp), np.mean(nd)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ranking_metrics_as_libmultilabel(data, k):
    Y, S, P = data
    p, r, rp, nd = _hand_topk(Y, S, k)
    got = {n: m(Y, P, S) for n, m in resolve_metrics([f"P@{k}", f"R@{k}", f"RP@{k}", f"nDCG@{k}"]).items()}
    assert set(got) == {f"p_at_{k}", f"r_at_{k}", f"rp_at_{k}", f"ndcg_at_{k}"}
    assert got[f"p_at_{k}"] == pytest.approx(p)
    assert got[f"r_at_{k}"] == pytest.approx(r)
    assert got[f"rp_at_{k}"] == pytest.approx(rp)
    assert got[f"ndcg_at_{k}"] == pytest.approx(nd)
    # scikit-learn's nDCG (tie-free scores) agrees, documents without gold counting 0 in both
    assert got[f"ndcg_at_{k}"] == pytest.approx(skm.ndcg_score(Y, S, k=k))


def test_evaluate_adds_extras_and_score_metrics_need_scores(data):
    Y, S, P = data
    extra = resolve_metrics(["p_at_1", "macro_pr_f1"])
    m, _ = evaluate(Y, P, S, extra=extra)
    assert {"p_at_1", "macro_pr_f1", "macro_f1"} <= set(m)
    m_noscores, _ = evaluate(Y, P, None, extra=extra)
    assert np.isnan(m_noscores["p_at_1"]) and m_noscores["macro_pr_f1"] == m["macro_pr_f1"]


def test_unknown_metric_and_parameter_errors_say_what_to_use():
    with pytest.raises(ValueError, match="did you mean 'macro_pr_f1'"):
        resolve_metrics(["macro_pr_f"])
    with pytest.raises(ValueError, match="has no parameter k"):
        resolve_metrics([{"name": "jaccard_samples", "k": 3}])
    with pytest.raises(ValueError, match="k=9 must be between 1 and the number of labels"):
        resolve_metrics(["P@9"])["p_at_9"](np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no threshold changes it"):
        threshold_metric("nDCG@3")
    assert resolve_metrics(["macro_f1"]) == {}  # built-in: always computed


def test_global_threshold_tunes_any_thresholded_metric(data):
    Y, S, _ = data
    rule = GlobalThreshold(metric="jaccard_samples_zd1", candidates=50).fit(S, Y)
    grid = np.unique(np.linspace(S.min(), S.max(), 50))
    brute = [skm.jaccard_score(Y, (S >= t).astype(int), average="samples", zero_division=1) for t in grid]
    assert rule.thresholds_[0] == pytest.approx(grid[int(np.argmax(brute))])
    assert rule.best_score_ == pytest.approx(max(brute))
    # the fast path is unchanged and the generic path agrees with it on macro-F1
    fast = GlobalThreshold(metric="macro_f1", candidates=50).fit(S, Y)
    generic = [threshold_metric("macro_f1")(Y, S >= t) for t in grid]
    assert fast.best_score_ == pytest.approx(max(generic))
    with pytest.raises(ValueError, match="jaccard_samples_zd1"):  # the error lists the metrics it can tune
        GlobalThreshold(metric="no_such_metric").fit(S, Y)
    with pytest.raises(ValueError):  # score-only: no threshold changes P@k
        GlobalThreshold(metric="p_at_1").fit(S, Y)


def test_an_objective_from_the_registry_is_computed_and_returned_under_its_logged_name():
    from hydra import compose, initialize_config_dir

    from mltc.app import CONF_DIR, extra_metrics, objective_name

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["metrics.objective=nDCG@3", "metrics.extra=[macro_pr_f1]"])
        plain = compose(config_name="config")
    assert set(extra_metrics(cfg)) == {"macro_pr_f1", "ndcg_at_3"}
    assert objective_name(cfg) == "ndcg_at_3" and objective_name(plain) == "macro_f1"
    assert extra_metrics(plain) == {}
