"""Bad input gets a clear error naming the file, line (or key) and value (issue 16, "Bad input").

Each case was reproduced on the code before this change: wrong-typed JSON labels were turned
into strings ("True", "{'a': 1}"), "²" crashed the label sort (int('²')), all-empty texts ended
in scikit-learn's "0 sample(s)", test_size=2 / 100 gave 1 / 97 test documents, seed=abc and
dataset.n_docs=-5 did not name their key, metrics.objective=nope failed only after the fit, a
directory was "file not found" and a malformed JSON line was pandas' message without a line.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LogisticRegression

from mltc.app import CONF_DIR, ConfigError, RunFailed, run_from_config
from mltc.config_checks import check_values
from mltc.data import Dataset, DataError, make_synthetic
from mltc.data.files import load_files
from mltc.features import make_tfidf
from mltc.models import BinaryRelevance
from mltc.pipeline import run_pipeline
from mltc.split import DatasetSplitter, duplicate_texts


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=["tracking=none", *overrides])


# ------------------------------------------------------------------ labels and texts of the wrong type

@pytest.mark.parametrize("value, shown", [(1.5, "line 3: 1.5"), (True, "line 3: true"),
                                          ({"a": 1}, 'line 3: {"a": 1}'), ([[1, 2]], "line 3: [[1, 2]]"),
                                          (["x", False], 'line 3: ["x", false]')])
def test_json_labels_that_are_not_names_are_refused_with_line_and_value(tmp_path, value, shown):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": ["x"]}, {"text": "b", "labels": ["y"]},
                                         {"text": "c", "labels": value}])
    with pytest.raises(DataError) as err:
        load_files(path)
    msg = str(err.value)
    assert f"{path}: 1 value of the labels column 'labels' is not label names: {shown}" in msg
    assert "true/false, fractions, objects and nested lists are not labels" in msg


def test_an_integer_among_label_names_is_refused_with_line_and_value(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": ["x"]}, {"text": "b", "labels": 3}])
    with pytest.raises(DataError, match=r"mixes integers and text names \(first integer among the other kind at "
                                        r"line 2: 3\)"):
        load_files(path)


def test_integer_labels_are_names_when_the_whole_column_is_integers(tmp_path, caplog):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": [10, 2]}, {"text": "b", "labels": 3},
                                         {"text": "c", "labels": []}])
    with caplog.at_level(logging.INFO, logger="mltc.data.files"):
        ds = load_files(path)
    assert "every label in 'labels' is an integer; they are used as label names" in caplog.text
    assert ds.label_names == ["2", "3", "10"]  # numeric order
    np.testing.assert_array_equal(ds.Y, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("value", [42, ["a", "b"], {"t": "x"}, True])
def test_texts_that_are_not_strings_are_refused_with_line_and_value(tmp_path, value):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "fine", "labels": ["x"]}, {"text": value, "labels": ["x"]}])
    with pytest.raises(DataError) as err:
        load_files(path)
    assert f"1 value of the text column 'text' is not text: line 2: {json.dumps(value)}" in str(err.value)


def test_any_unicode_label_name_sorts(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"], "labels": ["²,10", "2,é", "x"]}).to_csv(tmp_path / "d.csv", index=False)
    ds = load_files(tmp_path / "d.csv")
    # integers first in numeric order, then every other name in code point order
    assert ds.label_names == ["2", "10", "x", "²", "é"]
    assert ds.Y[:, ds.label_names.index("²")].tolist() == [1, 0, 0]


def test_all_texts_empty_says_no_text_is_left(tmp_path):
    pd.DataFrame({"text": ["", " ", ""], "labels": ["x", "y", "x"]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match=r"d: no text left: all 3 documents have empty text .*dataset.text_column"):
        load_files(tmp_path / "d.csv")


# ------------------------------------------------------------------ files that cannot be read

def test_a_directory_is_named_a_directory(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path} is a directory, not a file: give the data file inside it"):
        load_files(tmp_path)


def test_malformed_json_lines_are_counted_with_their_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "labels": ["x"]}\n\n{"text": "b", "labels": ["x"]\n'
                    '{"text": "c", "labels": ["y"]}\n[1, 2]\n')
    with pytest.raises(DataError) as err:
        load_files(path)
    msg = str(err.value)
    assert f"{path}: 2 malformed lines (each line must be one JSON object):" in msg
    assert "line 3: Expecting ',' delimiter (column 30)" in msg and "line 5: not a JSON object" in msg
    assert "line 1:" not in msg and "line 4:" not in msg


def test_malformed_csv_lines_are_counted_with_their_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,labels\na,x\nb,x,y\nc,y\nd,x,y,z\n")
    with pytest.raises(DataError) as err:
        load_files(path)
    msg = str(err.value)
    assert f"{path}: 2 malformed lines" in msg
    assert "line 3: expected 2 fields, saw 3" in msg and "line 5: expected 2 fields, saw 4" in msg


def test_a_json_array_of_non_objects_names_the_record(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "a", "labels": ["x"]}, "just a string"]))
    with pytest.raises(DataError, match=r"1 malformed record .*\n  record 2: not a JSON object: 'just a string'"):
        load_files(path)


# ------------------------------------------------------------------ split sizes and leakage

def test_test_size_counts_are_honoured_exactly_and_a_tiny_test_part_is_warned_about(caplog):
    ds = make_synthetic(n_docs=1000, n_labels=10, random_state=0)
    for size in (2, 100, 333):
        with caplog.at_level(logging.WARNING, logger="mltc.split"):
            caplog.clear()
            parts = DatasetSplitter(test_size=size, val_size=50, random_state=0).split(ds)
        assert len(parts["test"]) == size and len(parts["val"]) == 50
        assert len(np.unique(np.concatenate(list(parts.values())))) == 1000
        n_missing = int(((ds.Y.sum(0) > 0) & (ds.Y[parts["test"]].sum(0) == 0)).sum())
        if size == 2:
            assert n_missing > 0
            assert (f"the test part has 2 documents and {n_missing} of 10 labels have no test document"
                    in caplog.text)
        else:
            assert n_missing == 0 and "no test document" not in caplog.text


def test_duplicates_across_splits_are_counted_warned_and_logged(tmp_path, caplog):
    train = [f"train document number {i} about x" for i in range(30)]
    test = train[:4] + [f"held out text {i}" for i in range(6)] + [f"  {train[5]} "]  # 5 copies (one padded)
    pd.DataFrame({"text": train, "labels": ["x", "y"] * 15}).to_csv(tmp_path / "tr.csv", index=False)
    pd.DataFrame({"text": test, "labels": ["x"] * len(test)}).to_csv(tmp_path / "te.csv", index=False)
    ds = load_files(tmp_path / "tr.csv", test_path=tmp_path / "te.csv")
    splitter = DatasetSplitter(val_size=0, random_state=0)
    with caplog.at_level(logging.WARNING, logger="mltc.split"):
        counts = duplicate_texts(ds.texts, splitter.split(ds))
    assert counts == {"n_dup_train_test": 5, "n_dup_train_val": 0}
    assert "5 of 11 test documents (45.5%) have the exact text of a training document" in caplog.text
    result = run_pipeline(ds, splitter=splitter, featurizer=make_tfidf(),
                          model=BinaryRelevance(estimator=LogisticRegression()))
    assert result.sizes["n_dup_train_test"] == 5 and result.sizes["n_dup_train_val"] == 0


# ------------------------------------------------------------------ config values: the message names the key

def test_seed_that_is_not_an_integer_names_the_key():
    with pytest.raises(ConfigError, match=r"seed='abc' is not an integer: give a whole number such as seed=42"):
        run_from_config(_cfg("seed=abc"), choices={})


def test_negative_n_docs_names_the_key():
    with pytest.raises(RunFailed, match=r"invalid value for dataset\.n_docs: The 'n_docs' parameter of "
                                        r"make_synthetic must be an int in the range \[1, inf\)\. Got -5"):
        run_from_config(_cfg("dataset.n_docs=-5"), choices={})


def test_unknown_objective_is_refused_before_the_data_is_loaded(tmp_path):
    # the data file does not exist: had the data been loaded first, this would be a DataError
    cfg = _cfg("dataset=files", f"dataset.path={tmp_path / 'absent.csv'}", "metrics.objective=macro_f2")
    with pytest.raises(ConfigError, match=r"metrics.objective='macro_f2' is not a metric mltc computes\. "
                                          r"Did you mean macro_f1\?"):
        run_from_config(cfg, choices={})


def test_objective_may_name_a_metrics_extra_entry():
    check_values(_cfg("+metrics.extra=[my_team_f1]", "metrics.objective=my_team_f1"))
    check_values(_cfg("metrics.objective=tail_macro_f1"))
    with pytest.raises(ConfigError, match="my_team_f1"):
        check_values(_cfg("metrics.objective=my_team_f1"))


def test_ids_and_groups_must_match_the_documents():
    with pytest.raises(DataError, match="2 ids but 1 texts"):
        Dataset(name="x", texts=["a"], Y=np.ones((1, 1)), label_names=["l"], ids=["1", "2"])
    with pytest.raises(DataError, match="groups must have one value per document"):
        Dataset(name="x", texts=["a"], Y=np.ones((1, 1)), label_names=["l"], groups=["g", "h"])
