"""The synthetic generator's shape and the splitter's guarantees."""
import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from mltc.data import Dataset, DataError, make_synthetic
from mltc.split import DatasetSplitter


def test_synthetic_is_long_tailed_and_cooccurring():
    ds = make_synthetic(n_docs=3000, n_labels=20, random_state=0)
    counts = ds.Y.sum(0)
    assert counts[0] > 10 * counts[-5:].mean()          # power law: head far above tail
    assert (ds.Y.sum(1) > 1).mean() > 0.2               # documents with several labels
    assert (counts > 0).all()
    # label-specific words: a label's vocabulary appears mostly in its documents
    word = "l3"
    has = np.array([any(t.startswith(word) for t in d.split()) for d in ds.texts])
    assert ds.Y[has, 3].mean() > 0.9


def test_split_disjoint_and_sized():
    ds = make_synthetic(n_docs=1000, n_labels=10, random_state=0)
    parts = DatasetSplitter(test_size=0.2, val_size=0.1, random_state=0).split(ds)
    allidx = np.concatenate(list(parts.values()))
    assert len(np.unique(allidx)) == len(allidx) == 1000
    assert abs(len(parts["test"]) - 200) <= 5 and abs(len(parts["val"]) - 100) <= 5
    # iterative stratification keeps every label's share close in train and test
    tr, te = ds.Y[parts["train"]].mean(0), ds.Y[parts["test"]].mean(0)
    assert np.abs(tr - te).max() < 0.03


def test_split_same_seed_same_rows():
    ds = make_synthetic(n_docs=500, n_labels=8, random_state=0)
    a = DatasetSplitter(random_state=3).split(ds)
    b = DatasetSplitter(random_state=3).split(ds)
    c = DatasetSplitter(random_state=4).split(ds)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_official_split_used_and_val_carved_randomly():
    ds = make_synthetic(n_docs=400, n_labels=6, random_state=0)
    ds.splits = {"train": np.arange(300), "test": np.arange(300, 400)}
    parts = DatasetSplitter(val_size=50, val_method="random", random_state=123).split(ds)
    assert np.array_equal(parts["test"], np.arange(300, 400))
    assert len(parts["val"]) == 50 and set(parts["val"]) <= set(range(300))
    from sklearn.model_selection import train_test_split
    _, val = train_test_split(np.arange(300), test_size=50, random_state=123)
    assert np.array_equal(parts["val"], np.sort(val))


def test_invalid_sizes_are_clear():
    ds = make_synthetic(n_docs=100, n_labels=5, random_state=0)
    with pytest.raises(InvalidParameterError, match="test_size"):
        DatasetSplitter(test_size=1.5).split(ds)
    ds.splits = {"train": np.arange(50), "test": np.arange(50, 100)}
    with pytest.raises(DataError, match="val_size"):
        DatasetSplitter(val_size=60).split(ds)


def test_dataset_shape_errors():
    with pytest.raises(DataError, match="texts"):
        Dataset(name="x", texts=["a"], Y=np.zeros((2, 1)), label_names=["l"])


def test_official_train_val_without_test_carves_test_from_train():
    ds = make_synthetic(n_docs=500, n_labels=6, random_state=0)
    ds.splits = {"train": np.arange(400), "val": np.arange(400, 500)}
    parts = DatasetSplitter(test_size=0.25, random_state=0).split(ds)
    assert np.array_equal(parts["val"], np.arange(400, 500))
    assert set(parts["test"]) <= set(range(400)) and abs(len(parts["test"]) - 100) <= 5
    assert not set(parts["test"]) & set(parts["train"])
