"""``dataset.unlabeled_path``: a user's unlabeled file reaches self-training, and nothing else (issue 7)."""
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from mltc.app import CONF_DIR, RunFailed, run_from_config
from mltc.data import make_synthetic
from mltc.data.base import DataError
from mltc.data.files import read_unlabeled
from mltc.features import make_tfidf
from mltc.pipeline import run_pipeline
from mltc.split import DatasetSplitter
from mltc.strategies import NoStrategy
from mltc.strategies.pseudo_label import PseudoLabeler
from mltc.models import BinaryRelevance
from sklearn.linear_model import LogisticRegression

SMALL = ["dataset.n_docs=500", "dataset.n_labels=5"]
MARK = "zzqunlabeledonly"  # a word that occurs in the unlabeled file and nowhere else


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def unlabeled_texts(n=60):
    # realistic documents (generated like the labelled ones) plus a word of their own
    other = make_synthetic(n_docs=n, n_labels=5, random_state=123)
    return [f"{t} {MARK}" for t in other.texts]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_read_unlabeled_formats(tmp_path, suffix):
    frame = pd.DataFrame({"body": ["one doc", "", "two doc"], "other": [1, 2, 3]})
    path = tmp_path / f"u{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".tsv": lambda: frame.to_csv(path, sep="\t", index=False),
     ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(path)}[suffix]()
    assert read_unlabeled(path, text_column="body") == ["one doc", "two doc"]  # the empty row is dropped
    with pytest.raises(DataError, match="unlabeled_text_column"):
        read_unlabeled(path, text_column="text")


class _SeenPseudoLabeler(PseudoLabeler):
    """A PseudoLabeler that keeps the unlabeled rows the pipeline handed to ``fit_resample``."""

    def fit_resample(self, X, Y, X_unlabeled=None):
        self.seen_X_unlabeled = X_unlabeled
        return super().fit_resample(X, Y, X_unlabeled=X_unlabeled)


def test_unlabeled_texts_are_transformed_not_fitted_and_not_training_rows():
    ds = make_synthetic(n_docs=500, n_labels=5, random_state=0)
    ds.unlabeled_texts = unlabeled_texts()
    featurizer = make_tfidf(min_df=1)
    strategy = _SeenPseudoLabeler(estimator=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")),
                                  unlabeled_fraction=0.0, threshold=0.4, minority_threshold=0.4, n_rounds=1,
                                  random_state=0)
    splitter = DatasetSplitter(random_state=0)
    res = run_pipeline(ds, splitter=splitter, featurizer=featurizer, strategy=strategy,
                       model=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")))
    parts = splitter.split(ds)
    # the vocabulary comes from the training texts only
    assert MARK not in featurizer.vocabulary_
    assert set(featurizer.vocabulary_) == set(make_tfidf(min_df=1).fit([ds.texts[i] for i in parts["train"]])
                                               .vocabulary_)
    # the strategy got the unlabeled rows in the training feature space
    assert strategy.seen_X_unlabeled.shape == (60, len(featurizer.vocabulary_))
    # rows it added come from the unlabeled file (-1), and the labelled counts are untouched
    added = res.sizes["n_train_fit"] - len(parts["train"])
    assert added == int((strategy.sample_indices_ == -1).sum()) and added > 0
    assert res.sizes["n_train"] == len(parts["train"]) and res.sizes["n_unlabeled"] == 60
    assert res.profiles["train"]["n_instances"] == len(parts["train"])
    np.testing.assert_array_equal(res.per_label["train_count"], ds.Y[parts["train"]].sum(axis=0))
    assert res.details["strategy"]["n_added"] == added


def test_unlabeled_path_end_to_end(tmp_path):
    path = tmp_path / "unlabeled.csv"
    pd.DataFrame({"text": unlabeled_texts()}).to_csv(path, index=False)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = compose_cfg([*SMALL, f"tracking.uri={uri}", "strategy=pseudo_label", f"dataset.unlabeled_path={path}",
                       "strategy.unlabeled_fraction=0", "strategy.n_rounds=1", "strategy.threshold=0.5",
                       "strategy.minority_threshold=0.5"])
    run_from_config(cfg, choices={"dataset": "synthetic", "strategy": "pseudo_label"})
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert m["n_unlabeled"] == 60 and m["train_n_instances"] == m["n_train"]
    assert m["n_train_fit"] == m["n_train"] + m["strategy.n_added"]
    assert run.data.params["dataset.unlabeled_path"] == str(path)


def test_unlabeled_path_with_a_strategy_that_cannot_use_it_names_the_key(tmp_path):
    path = tmp_path / "unlabeled.jsonl"
    pd.DataFrame({"text": unlabeled_texts(5)}).to_json(path, orient="records", lines=True)
    with pytest.raises(RunFailed, match=r"dataset\.unlabeled_path.*strategy=pseudo_label"):
        run_from_config(compose_cfg([*SMALL, "tracking=none", f"dataset.unlabeled_path={path}"]), choices={})
    ds = make_synthetic(n_docs=200, n_labels=4, random_state=0)
    ds.unlabeled_texts = ["x"]
    with pytest.raises(DataError, match="NoStrategy"):
        run_pipeline(ds, splitter=DatasetSplitter(random_state=0), featurizer=make_tfidf(), strategy=NoStrategy(),
                     model=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")))


class _FoldPseudoLabeler(PseudoLabeler):
    """Records the shape of the unlabeled rows every copy (one per out-of-fold fit) received."""

    pools = []

    def fit_resample(self, X, Y, X_unlabeled=None):
        type(self).pools.append((X.shape[0], None if X_unlabeled is None else X_unlabeled.shape[0]))
        return super().fit_resample(X, Y, X_unlabeled=X_unlabeled)


def test_out_of_fold_fits_get_the_whole_unlabeled_pool():
    # as many unlabeled rows as training rows: a fit parameter that looked per-sample would be cut per fold
    from mltc.thresholds import PerLabelCVThreshold

    ds = make_synthetic(n_docs=300, n_labels=4, random_state=0)
    splitter = DatasetSplitter(random_state=0, val_size=0.0)
    n_train = len(splitter.split(ds)["train"])
    ds.unlabeled_texts = unlabeled_texts(n_train)
    _FoldPseudoLabeler.pools = []
    run_pipeline(ds, splitter=splitter, featurizer=make_tfidf(min_df=1),
                 strategy=_FoldPseudoLabeler(estimator=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")),
                                             unlabeled_fraction=0.0, n_rounds=1, random_state=0),
                 model=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")),
                 thresholder=PerLabelCVThreshold(n_splits=3), random_state=0)
    # the run's own fit on every training row, then three folds on about 2/3 of them; each gets every unlabeled row
    assert _FoldPseudoLabeler.pools[0] == (n_train, n_train)
    assert len(_FoldPseudoLabeler.pools) == 4
    assert all(n_fit < n_train and n_unl == n_train for n_fit, n_unl in _FoldPseudoLabeler.pools[1:])


def test_any_loader_gets_the_unlabeled_file_from_the_run_not_as_its_own_argument(tmp_path):
    from mltc.app import load_dataset

    pd.DataFrame({"text": ["a b", "c d", "e f"], "labels": ["x", "y", "x,y"]}).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame({"body": unlabeled_texts(4)}).to_json(tmp_path / "u.json", orient="records")
    cfg = compose_cfg(["dataset=files", f"dataset.path={tmp_path / 'd.csv'}",
                       f"dataset.unlabeled_path={tmp_path / 'u.json'}", "dataset.unlabeled_text_column=body"])
    ds = load_dataset(cfg.dataset)
    assert ds.texts == ["a b", "c d", "e f"] and ds.unlabeled_texts == unlabeled_texts(4)
    # a loader of one's own (no unlabeled_* parameters) gets the same option; without the keys, no unlabeled texts
    node = {"_target_": "mltc.data.make_synthetic", "n_docs": 50, "n_labels": 3,
            "unlabeled_path": str(tmp_path / "u.json"), "unlabeled_text_column": "body"}
    assert load_dataset(node).unlabeled_texts == unlabeled_texts(4)
    assert load_dataset(compose_cfg(SMALL).dataset).unlabeled_texts is None
