"""A user's own files: names, document ids and groups reach the run (issue 21)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from mltc.app import CONF_DIR, run_from_config
from mltc.config_checks import dataset_name
from mltc.data.files import load_files
from mltc.split import DatasetSplitter


def _cfg(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _write(tmp_path, n_topics=12, per_topic=5):
    rng = np.random.default_rng(0)
    rows = []
    for t in range(n_topics):
        label = ["sports", "politics", "music"][t % 3]
        for k in range(per_topic):
            words = " ".join(rng.choice([f"t{t}a", f"t{t}b", f"{label}word", "the", "a", "of"], size=8))
            rows.append({"doc_id": f"T{t}-{k}", "text": words, "labels": label, "topic": f"topic {t}"})
    train = pd.DataFrame(rows)
    test = pd.DataFrame({"doc_id": ["x1", "x2", "x3"], "text": ["sportsword the", "politicsword a", "musicword of"],
                         "labels": ["sports", "politics", "music"]})
    train.to_csv(tmp_path / "tweets.train.csv", index=False)
    test.to_csv(tmp_path / "tweets.test.csv", index=False)
    return train


def test_ids_and_groups_come_from_the_file_and_default_to_row_numbers(tmp_path):
    train = _write(tmp_path)
    ds = load_files(tmp_path / "tweets.train.csv", test_path=tmp_path / "tweets.test.csv", id_column="doc_id",
                    group_column="topic")
    assert ds.name == "tweets.train" and ds.description.startswith("tweets.train (your files: ")
    assert ds.ids == train["doc_id"].tolist() + ["x1", "x2", "x3"]
    assert list(ds.groups[:len(train)]) == train["topic"].tolist()
    # the test file has no topic column: each of its rows is a group of its own, never a user's group
    assert len(set(ds.groups[len(train):])) == 3 and not set(ds.groups[len(train):]) & set(train["topic"])
    plain = load_files(tmp_path / "tweets.train.csv", test_path=tmp_path / "tweets.test.csv")
    assert plain.ids == [str(i) for i in range(len(train))] + ["0", "1", "2"] and plain.groups is None


def test_empty_texts_are_dropped_with_their_ids_and_groups(tmp_path):
    pd.DataFrame({"text": ["a", "", "c"], "labels": ["x", "y", "x"], "id": ["r1", "r2", "r3"],
                  "g": ["p", "q", "q"]}).to_csv(tmp_path / "d.csv", index=False)
    ds = load_files(tmp_path / "d.csv", id_column="id", group_column="g")
    assert ds.ids == ["r1", "r3"] and list(ds.groups) == ["p", "q"]


def test_grouped_split_through_the_loader_keeps_topics_whole(tmp_path):
    _write(tmp_path, n_topics=30)
    ds = load_files(tmp_path / "tweets.train.csv", group_column="topic")
    parts = DatasetSplitter(test_size=0.2, val_size=0.2, group_column="topic", random_state=0).split(ds)
    sides = [set(ds.groups[parts[p]]) for p in ("train", "val", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(parts["test"]) % 5 == 0 and len(parts["test"]) > 0  # whole topics of 5 rows


def test_the_experiment_is_named_after_the_data_set_never_files(tmp_path):
    _write(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    base = ["dataset=files", f"dataset.path={tmp_path / 'tweets.train.csv'}",
            f"dataset.test_path={tmp_path / 'tweets.test.csv'}", "dataset.id_column=doc_id",
            "split.group_column=topic", "split.val_size=0.2", f"tracking.uri={uri}", "tracking.subprocess=false"]
    run_from_config(_cfg(*base), choices={"dataset": "files"})
    client = MlflowClient(uri)
    names = {e.name for e in client.search_experiments()}
    assert "tweets.train" in names and "files" not in names
    (run,) = client.search_runs([client.get_experiment_by_name("tweets.train").experiment_id])
    assert run.data.params["dataset.group_column"] == "topic"  # split.group_column reached the loader
    assert run.data.metrics["n_dup_train_test"] == 0 and run.data.metrics["n_test"] == 3


def test_dataset_name_reads_the_config_before_loading():
    assert dataset_name({"_target_": "mltc.data.files.load_files", "path": "data/a.b.jsonl.gz", "name": None},
                        "files") == "a.b"
    assert dataset_name({"_target_": "mltc.data.files.load_files", "path": "x.csv", "name": "mine"}, "files") == "mine"
    named = _cfg("dataset=files", "dataset.path=d/t.csv", "dataset.name=MyTask")
    assert dataset_name(named.dataset, "files") == "MyTask"
    assert dataset_name(_cfg("dataset=files", "dataset.path=d/t.csv").dataset, "files") == "t"
    assert dataset_name({"_target_": "mltc.data.goemotions.load_goemotions"}, "goemotions") == "goemotions"


def test_public_data_sets_carry_their_own_document_ids(goemotions_dir, reuters_dir):
    from mltc.data import load_goemotions, load_reuters21578

    ds = load_goemotions(data_dir=goemotions_dir)
    first = pd.read_csv(goemotions_dir / "train.tsv", sep="\t", header=None, nrows=3, quoting=3, dtype=str)
    assert ds.ids[:3] == first[2].tolist()  # the comment ids of the release's third column
    ds = load_reuters21578(data_dir=reuters_dir)
    assert len(set(ds.ids)) == len(ds) and ds.ids[0] == "1"  # NEWID, unique across the collection


def test_a_sweep_over_a_users_files_is_named_after_the_data_set():
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from mltc.callbacks import sweep_experiment

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = GlobalHydra.instance().hydra.compose_config(
            "config", ["dataset=files", "dataset.path=data/tweets.train.csv", "seed=1,2"], run_mode=RunMode.MULTIRUN)
    assert sweep_experiment(cfg) == "tweets.train"


def test_new_options_keep_old_runs_resumable_only_where_they_compute_the_same():
    from omegaconf import OmegaConf

    from mltc.tracking import config_hash

    def hash_of(*overrides):
        cfg = OmegaConf.to_container(_cfg("dataset=files", "dataset.path=d/t.csv", *overrides), resolve=True)
        return config_hash(cfg)

    def old(*overrides):  # a run logged before id_column, group_column and exact_sizes existed
        cfg = OmegaConf.to_container(_cfg("dataset=files", "dataset.path=d/t.csv", *overrides), resolve=True)
        for key in ("id_column", "group_column"):
            cfg["dataset"].pop(key)
        for key in ("group_column", "exact_sizes"):
            cfg["split"].pop(key)
        return config_hash(cfg)

    # the old split is exact_sizes=false: those configurations match the old runs, the new default does not
    assert hash_of("split.exact_sizes=false") == old()
    assert hash_of() != old()
    assert hash_of("split.exact_sizes=false", "split.group_column=topic") != old()


def test_compressed_json_files_are_read_like_plain_ones(tmp_path):
    import gzip
    import json
    import zipfile

    rows = [{"text": "a", "labels": ["x"], "id": 7}, {"text": "b", "labels": ["y", "x"], "id": 9}]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    with zipfile.ZipFile(tmp_path / "z.jsonl.zip", "w") as z:
        z.writestr("z.jsonl", lines)
    with gzip.open(tmp_path / "g.json.gz", "wt") as f:
        json.dump(rows, f)
    (tmp_path / "p.jsonl").write_text(lines)
    for name in ("z.jsonl.zip", "g.json.gz", "p.jsonl"):
        ds = load_files(tmp_path / name, id_column="id")
        assert ds.texts == ["a", "b"] and ds.label_names == ["x", "y"] and ds.ids == ["7", "9"], name
        np.testing.assert_array_equal(ds.Y, [[1, 0], [1, 1]])
