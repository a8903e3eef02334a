"""Metrics checked against scikit-learn's own functions and the group definitions."""
import numpy as np
import pytest
from sklearn import metrics as skm

from mltc.metrics import evaluate, label_groups


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    Y = (rng.random((200, 6)) < [0.5, 0.3, 0.2, 0.1, 0.05, 0.02]).astype(int)
    S = np.clip(Y * 0.4 + rng.random(Y.shape) * 0.7, 0, 1)
    return Y, S, (S >= 0.5).astype(int)


def test_scalar_metrics_match_sklearn(data):
    Y, S, P = data
    m, _ = evaluate(Y, P, S)
    for avg in ("micro", "macro", "weighted", "samples"):
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(Y, P, average=avg, zero_division=0))
        assert m[f"{avg}_precision"] == pytest.approx(skm.precision_score(Y, P, average=avg, zero_division=0))
        assert m[f"{avg}_recall"] == pytest.approx(skm.recall_score(Y, P, average=avg, zero_division=0))
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(Y, P))
    assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(Y, P))
    assert m["jaccard_samples"] == pytest.approx(skm.jaccard_score(Y, P, average="samples", zero_division=0))
    assert m["micro_pr_auc"] == pytest.approx(skm.average_precision_score(Y, S, average="micro"))
    assert m["macro_pr_auc"] == pytest.approx(skm.average_precision_score(Y, S, average="macro"))
    assert m["macro_roc_auc"] == pytest.approx(skm.roc_auc_score(Y, S, average="macro"))


def test_per_label_report_matches_sklearn(data):
    Y, S, P = data
    _, rep = evaluate(Y, P, S, train_counts=Y.sum(0))
    np.testing.assert_allclose(rep["f1"], skm.f1_score(Y, P, average=None, zero_division=0))
    np.testing.assert_array_equal(rep["support"], Y.sum(0))
    np.testing.assert_allclose(rep["average_precision"][0], skm.average_precision_score(Y[:, 0], S[:, 0]))


def test_labels_without_test_positives_do_not_break_score_metrics(data):
    Y, S, P = data
    Y = Y.copy()
    Y[:, -1] = 0
    m, rep = evaluate(Y, P, S)
    assert m["macro_pr_auc"] == pytest.approx(skm.average_precision_score(Y[:, :-1], S[:, :-1], average="macro"))
    assert np.isnan(rep["average_precision"].iloc[-1])


def test_groups_published_cutoffs_and_group_f1(data):
    counts = np.array([100, 35, 34, 9, 8, 1])
    g = label_groups(counts, head_min=35, tail_max=8)
    assert list(g) == ["head", "head", "medium", "medium", "tail", "tail"]
    Y, S, P = data
    m, _ = evaluate(Y, P, S, train_counts=counts, head_min=35, tail_max=8)
    assert m["tail_macro_f1"] == pytest.approx(skm.f1_score(Y[:, 4:], P[:, 4:], average="macro", zero_division=0))
    assert m["head_micro_f1"] == pytest.approx(skm.f1_score(Y[:, :2], P[:, :2], average="micro", zero_division=0))
    with pytest.raises(ValueError, match="tail_max"):
        label_groups(counts, head_min=5, tail_max=8)


def test_score_metrics_with_ties_and_empty_rows_match_sklearn():
    from mltc.metrics import average_precision, roc_auc

    rng = np.random.default_rng(3)
    Y = (rng.random((150, 5)) < [0.4, 0.2, 0.1, 0.05, 0.3]).astype(int)
    Y[:20] = 0  # documents with no label, some also with no prediction
    S = np.round(rng.random(Y.shape) * 0.6 + Y * 0.3, 1)  # coarse scores: many ties
    P = (S >= 0.5).astype(int)
    m, rep = evaluate(Y, P, S)
    for j in range(Y.shape[1]):
        assert average_precision(Y[:, j], S[:, j]) == pytest.approx(skm.average_precision_score(Y[:, j], S[:, j]))
    np.testing.assert_allclose(roc_auc(Y, S), [skm.roc_auc_score(Y[:, j], S[:, j]) for j in range(Y.shape[1])])
    np.testing.assert_allclose(rep["average_precision"], skm.average_precision_score(Y, S, average=None))
    assert m["micro_pr_auc"] == pytest.approx(skm.average_precision_score(Y, S, average="micro"))
    for avg in ("samples", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(Y, P, average=avg, zero_division=0))
        assert m[f"{avg}_precision"] == pytest.approx(skm.precision_score(Y, P, average=avg, zero_division=0))
    assert m["jaccard_samples"] == pytest.approx(skm.jaccard_score(Y, P, average="samples", zero_division=0))
    assert m["jaccard_macro"] == pytest.approx(skm.jaccard_score(Y, P, average="macro", zero_division=0))


def test_a_group_of_one_label_scores_that_label(data):
    # one label in a group: its micro and macro F1 are that label's F1 (not sklearn's binary two-class average)
    Y, S, P = data
    counts = np.array([100, 90, 80, 20, 5, 1])
    m, _ = evaluate(Y, P, S, train_counts=counts, head_min=50, tail_max=1)
    f_last = skm.f1_score(Y[:, 5], P[:, 5], zero_division=0)
    assert m["tail_n_labels"] == 1
    assert m["tail_micro_f1"] == pytest.approx(f_last) and m["tail_macro_f1"] == pytest.approx(f_last)


def test_roc_auc_skips_one_class_columns_without_changing_the_others():
    # thousands of labels: only columns with both classes are ranked; the values must be exactly
    # those of ranking every column (the formula before the change), NaN elsewhere
    from scipy.stats import rankdata

    from mltc.metrics import roc_auc

    rng = np.random.default_rng(7)
    Y = (rng.random((300, 40)) < 0.1).astype(int)
    Y[:, ::3] = 0  # no positive
    Y[:, 1::7] = 1  # no negative
    S = np.round(rng.random(Y.shape) + 0.3 * Y, 2)
    ranks = rankdata(S, axis=0)
    n_pos = Y.sum(axis=0).astype(float)
    n_neg = Y.shape[0] - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        full = np.where((n_pos > 0) & (n_neg > 0),
                        ((ranks * Y).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg), np.nan)
    got = roc_auc(Y, S)
    assert np.isnan(got[::3]).all() and np.isnan(got[1::7]).all()
    np.testing.assert_array_equal(got, full)
    assert np.isnan(roc_auc(np.zeros((5, 3)), np.ones((5, 3)))).all()
