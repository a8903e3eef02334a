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


# ---------------------------------------------------------------- split.train_size: a subset of the training rows
def _official(n_docs=1000, n_labels=10, n_test=200):
    ds = make_synthetic(n_docs=n_docs, n_labels=n_labels, random_state=0)
    ds.splits = {"train": np.arange(n_docs - n_test), "test": np.arange(n_docs - n_test, n_docs)}
    return ds


@pytest.mark.parametrize("method", ["iterative", "random"])
def test_train_size_sizes_subset_and_untouched_val_test(method):
    ds = make_synthetic(n_docs=1000, n_labels=10, random_state=0)
    full = DatasetSplitter(random_state=0).split(ds)
    for size, expected in [(300, 300), (1, 1), (0.25, round(0.25 * len(full["train"]))),
                           (1.0, len(full["train"])), (len(full["train"]), len(full["train"]))]:
        parts = DatasetSplitter(train_size=size, train_method=method, random_state=0).split(ds)
        assert len(parts["train"]) == expected, size
        assert len(np.unique(parts["train"])) == expected and set(parts["train"]) <= set(full["train"])
        # validation is carved before the subset is drawn: neither it nor test depends on train_size
        assert np.array_equal(parts["val"], full["val"]) and np.array_equal(parts["test"], full["test"])
        assert not set(parts["train"]) & (set(parts["val"]) | set(parts["test"]))


@pytest.mark.parametrize("method", ["iterative", "random"])
def test_train_size_same_seed_same_subset(method):
    ds = _official()
    a, b, c = (DatasetSplitter(train_size=200, train_method=method, random_state=s).split(ds)["train"]
               for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_size_random_is_the_benchmark_scripts_draw():
    # bench_text_goemotions.py / bench_text_augment.py --train-size: default_rng(seed).choice of the official
    # training rows; the config option draws the same rows, so their numbers can be compared row for row
    ds = _official()
    ds.splits = {"train": np.arange(700), "val": np.arange(700, 800), "test": np.arange(800, 1000)}  # as GoEmotions
    parts = DatasetSplitter(train_size=300, train_method="random", random_state=7).split(ds)
    expected = np.sort(np.random.default_rng(7).choice(ds.splits["train"], size=300, replace=False))
    assert np.array_equal(parts["train"], expected)
    assert np.array_equal(parts["val"], ds.splits["val"]) and np.array_equal(parts["test"], ds.splits["test"])


def test_train_size_iterative_keeps_rare_labels_share():
    # one frequent label and eight rare ones (12 documents each) in 1,800 training rows; a 10% subset
    # expects 1.2 documents of each rare label
    rng = np.random.default_rng(0)
    n, n_rare = 2000, 8
    Y = np.zeros((n, 1 + n_rare), dtype=np.int8)
    Y[:, 0] = rng.random(n) < 0.5
    for j in range(1, 1 + n_rare):
        Y[rng.choice(1800, size=12, replace=False), j] = 1
    ds = Dataset(name="skewed", texts=["x"] * n, Y=Y, label_names=[f"l{j}" for j in range(1 + n_rare)],
                 splits={"train": np.arange(1800), "test": np.arange(1800, 2000)})
    share = ds.Y[:1800].mean(0)
    missing, error = {}, {}
    for method in ("iterative", "random"):
        missing[method], error[method] = 0, 0.0
        for seed in range(10):
            tr = DatasetSplitter(train_size=0.1, train_method=method, random_state=seed, val_size=0).split(ds)["train"]
            missing[method] += int((ds.Y[tr].sum(0) == 0).sum())
            error[method] += np.abs(ds.Y[tr].mean(0) - share).sum()
    # a random 10% misses a rare label with probability 0.9**12 = 28%: about 23 of 80 label draws
    assert missing["iterative"] == 0 and missing["random"] > 5
    assert error["iterative"] < 0.5 * error["random"]


def test_train_size_errors_are_clear():
    ds = _official(n_docs=300, n_test=100)
    ds.splits["val"] = np.arange(180, 200)  # 180 training rows are left
    with pytest.raises(DataError, match=r"split\.train_size=181 .* only 180"):
        DatasetSplitter(train_size=181, random_state=0).split(ds)
    assert len(DatasetSplitter(train_size=180, random_state=0).split(ds)["train"]) == 180
    for bad in (0, 0.0, 1.5, -3, "all"):
        with pytest.raises(InvalidParameterError, match="train_size"):
            DatasetSplitter(train_size=bad).split(ds)
    with pytest.raises(InvalidParameterError, match="train_method"):
        DatasetSplitter(train_size=10, train_method="stratified").split(ds)


def test_train_size_is_logged_and_changes_the_config_hash(tmp_path):
    from hydra import compose, initialize_config_dir
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from mltc.app import CONF_DIR, run_from_config
    from mltc.tracking import config_hash

    def cfg(*overrides):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=["dataset.n_docs=400", "dataset.n_labels=5", *overrides])

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    run_from_config(cfg(f"tracking.uri={uri}", "split.train_size=120", "split.train_method=random"),
                    choices={"dataset": "synthetic"})
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.data.params["split.train_size"] == "120" and run.data.params["split.train_method"] == "random"
    assert run.data.metrics["n_train"] == 120
    # resume matches runs by this hash: a subset run must not stand for the run on all training rows
    full = config_hash(OmegaConf.to_container(cfg(), resolve=True))
    assert run.data.tags["mltc.config_hash"] != full
    assert config_hash(OmegaConf.to_container(cfg("split.train_size=120", "split.train_method=random"),
                                              resolve=True)) == run.data.tags["mltc.config_hash"]
