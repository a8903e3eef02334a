"""mltc's iterative stratification: iterstrat's choices, exact counts, groups kept whole (issues 16, 20, 21)."""
from __future__ import annotations

import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.linear_model import LogisticRegression

from mltc.data import Dataset, DataError
from mltc.features import make_tfidf
from mltc.models import BinaryRelevance
from mltc.pipeline import run_pipeline
from mltc.split import DatasetSplitter, _random_groups, iterative_split


def _random_Y(seed):
    rng = np.random.default_rng(seed)
    n, L = int(rng.integers(40, 400)), int(rng.integers(2, 25))
    Y = (rng.random((n, L)) < rng.uniform(0.02, 0.3)).astype(np.int8)
    Y[rng.random(n) < 0.1] = 0  # some rows without a label
    return Y


def _iterstrat(Y, n_held, seed):
    n = Y.shape[0]
    rest, held = next(MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_held / n, random_state=seed)
                      .split(np.zeros((n, 1)), Y))
    return np.sort(rest), np.sort(held)


def _share_error(Y, a, b):
    return np.abs(Y[a].mean(0) - Y[b].mean(0)).mean()


def test_same_rows_as_iterstrat_wherever_iterstrat_meets_the_count_and_exact_counts_always():
    identical = exact_elsewhere = 0
    err_mltc, err_iterstrat = 0.0, 0.0
    for seed in range(30):
        Y = _random_Y(seed)
        n_held = max(1, Y.shape[0] // (3 + seed % 5))
        rest, held = iterative_split(Y, n_held, seed)
        ref_rest, ref_held = _iterstrat(Y, n_held, seed)
        assert len(held) == n_held and len(rest) == Y.shape[0] - n_held
        assert np.array_equal(np.sort(np.concatenate([rest, held])), np.arange(Y.shape[0]))
        if len(ref_held) == n_held:
            assert np.array_equal(held, ref_held), seed
            identical += 1
        else:
            exact_elsewhere += 1
        err_mltc += _share_error(Y, rest, held)
        err_iterstrat += _share_error(Y, ref_rest, ref_held)
    # both branches are exercised, and label shares are kept at least as well as iterstrat keeps them
    assert identical >= 10 and exact_elsewhere >= 3
    assert err_mltc <= 1.05 * err_iterstrat


def test_a_share_is_rounded_up_as_scikit_learn_does():
    Y = _random_Y(3)
    n = Y.shape[0]
    assert len(iterative_split(Y, 0.25, 0)[1]) == int(np.ceil(0.25 * n))


def test_same_seed_same_split_other_seed_other_split():
    Y = _random_Y(7)
    a, b, c = (iterative_split(Y, 30, s)[1] for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_groups_of_one_row_are_the_row_level_split():
    Y = _random_Y(11)
    n = Y.shape[0]
    for seed in range(3):
        assert np.array_equal(iterative_split(Y, 40, seed, groups=np.arange(n))[1], iterative_split(Y, 40, seed)[1])


def test_grouped_split_keeps_groups_whole_and_stratifies_their_labels():
    rng = np.random.default_rng(0)
    n_groups = 120
    size = rng.integers(1, 9, size=n_groups)
    groups = np.repeat(np.arange(n_groups), size)
    group_labels = (rng.random((n_groups, 6)) < [0.5, 0.3, 0.2, 0.1, 0.05, 0.03]).astype(np.int8)
    Y = group_labels[groups]
    shuffled = rng.permutation(len(groups))
    Y, groups = Y[shuffled], np.array([f"g{g}" for g in groups[shuffled]])
    err = {"iterative": 0.0, "random": 0.0}
    for seed in range(10):
        rest, held = iterative_split(Y, 0.2, seed, groups=groups)
        assert not set(groups[rest]) & set(groups[held])
        assert abs(len(held) - 0.2 * len(groups)) <= size.max()  # whole groups: approximate size
        many = group_labels.sum(0) >= 10  # labels of at least 10 groups reach both sides
        assert (Y[held].sum(0)[many] > 0).all() and (Y[rest].sum(0)[many] > 0).all()
        err["iterative"] += np.abs(Y[held].mean(0) - Y.mean(0)).sum()
        r_rest, r_held = _random_groups(groups, len(held), np.random.default_rng(seed))
        assert not set(groups[r_rest]) & set(groups[r_held])
        err["random"] += np.abs(Y[r_held].mean(0) - Y.mean(0)).sum()
    # stratifying over groups keeps label shares closer than drawing whole groups at random
    assert err["iterative"] < 0.6 * err["random"]


def _topics(n_topics=80, per_topic=15, n_labels=5, seed=0):
    """Near-duplicate texts per topic: topic words (memorable) and a weak label signal (what generalises)."""
    rng = np.random.default_rng(seed)
    label_words = [[f"lab{j}w{k}" for k in range(12)] for j in range(n_labels)]
    noise = [f"common{k}" for k in range(300)]
    texts, Y, groups = [], [], []
    for t in range(n_topics):
        labels = rng.choice(n_labels, size=int(rng.integers(1, 3)), replace=False)
        topic_words = [f"topic{t}w{k}" for k in range(8)]
        for _ in range(per_topic):
            words = list(rng.choice(topic_words, size=6)) + list(rng.choice(noise, size=6))
            words += [rng.choice(label_words[j]) for j in labels for _ in range(2) if rng.random() < 0.5]
            rng.shuffle(words)
            texts.append(" ".join(words))
            Y.append(np.isin(np.arange(n_labels), labels).astype(np.int8))
            groups.append(f"topic {t}")
    n = len(texts)
    n_test = (n_topics // 4) * per_topic  # the last topics: held out as a whole, as a shared task's test set
    return Dataset(name="topics", texts=texts, Y=np.array(Y), label_names=[f"l{j}" for j in range(n_labels)],
                   splits={"train": np.arange(n - n_test), "test": np.arange(n - n_test, n)}, groups=groups)


@pytest.mark.parametrize("val_method", ["iterative", "random"])
def test_random_validation_is_optimistic_on_grouped_data_and_grouped_validation_is_not(val_method):
    ds = _topics()
    gap = {}
    for grouped in (False, True):
        splitter = DatasetSplitter(val_size=0.15, val_method=val_method, random_state=0,
                                   group_column="topic" if grouped else None)
        result = run_pipeline(ds, splitter=splitter, featurizer=make_tfidf(min_df=1),
                              model=BinaryRelevance(estimator=LogisticRegression(C=10.0, solver="liblinear")))
        parts = splitter.split(ds)
        shared = set(np.asarray(ds.groups)[parts["train"]]) & set(np.asarray(ds.groups)[parts["val"]])
        assert bool(shared) is not grouped  # grouped: no topic on both sides
        gap[grouped] = result.val_metrics["micro_f1"] - result.metrics["micro_f1"]
    # random rows: validation documents have near-copies in training, so validation overstates test
    assert gap[False] > 0.15
    assert abs(gap[True]) < 0.5 * gap[False] and abs(gap[True]) < 0.1


def test_group_column_without_groups_is_a_clear_error():
    ds = _topics(n_topics=8)
    ds.groups = None
    with pytest.raises(DataError, match=r"split.group_column='topic' but topics has no groups"):
        DatasetSplitter(group_column="topic").split(ds)


def test_exact_sizes_false_is_iterstrat_row_for_row():
    for seed in range(15):
        Y = _random_Y(100 + seed)
        n_held = max(1, Y.shape[0] // (3 + seed % 4))
        assert np.array_equal(iterative_split(Y, n_held, seed, exact=False)[1], _iterstrat(Y, n_held, seed)[1])


def test_exact_sizes_false_reproduces_the_earlier_splitter():
    # what DatasetSplitter returned before exact counts: iterstrat for test (20 %) and validation (10 % of all)
    from mltc.data import make_synthetic

    ds = make_synthetic(n_docs=600, n_labels=8, random_state=0)
    parts = DatasetSplitter(exact_sizes=False, random_state=3).split(ds)
    rest, test = _iterstrat(ds.Y, 120, 3)
    r2, val = _iterstrat(ds.Y[rest], 60, 3)
    assert np.array_equal(parts["test"], test) and np.array_equal(parts["val"], np.sort(rest[val]))
    assert len(DatasetSplitter(random_state=3).split(ds)["test"]) == 120


def test_groups_loaded_but_not_used_are_warned_about(caplog):
    import logging

    ds = _topics(n_topics=8)
    with caplog.at_level(logging.WARNING, logger="mltc.split"):
        DatasetSplitter(random_state=0).split(ds)
    assert "topics has groups (dataset.group_column) but split.group_column is not set" in caplog.text
