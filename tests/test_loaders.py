"""Loaders: GoEmotions, Reuters-21578 (ModApte) and user files, against the real data and tiny fixtures."""
from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import get_method
from omegaconf import OmegaConf
from sklearn.preprocessing import MultiLabelBinarizer

from mltc.data import reuters
from mltc.data.base import DataError
from mltc.data.files import UNLABELED_KEYS, load_files
from mltc.keys import LATER_OPTIONS
from mltc.data.goemotions import load_goemotions
from mltc.data.reuters import load_reuters21578


from _serve import dead_url, serve, sha  # noqa: E402


# --------------------------------------------------------------------------- GoEmotions

def _read_goemotions_with_pandas(path, n_labels):
    frame = pd.read_csv(path, sep="\t", header=None, names=["text", "ids", "id"], quoting=csv.QUOTE_NONE,
                        dtype=str, keep_default_na=False)
    ids = [[int(i) for i in s.split(",")] for s in frame["ids"]]
    return frame["text"].tolist(), MultiLabelBinarizer(classes=range(n_labels)).fit_transform(ids)


def test_goemotions_matches_the_published_files(goemotions_dir):
    ds = load_goemotions(data_dir=goemotions_dir)
    names = (goemotions_dir / "labels.txt").read_text().split()
    assert ds.label_names == names and len(names) == 28 and names[-1] == "neutral"
    # sizes of the official split (Demszky et al. 2020, Table 1 / the release)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 43410, "val": 5426, "test": 5427}
    for split, fname in (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv")):
        texts, Y = _read_goemotions_with_pandas(goemotions_dir / fname, 28)
        idx = ds.splits[split]
        assert [ds.texts[i] for i in idx] == texts
        np.testing.assert_array_equal(ds.Y[idx], Y)
    # rarest test labels named in the data's SOURCE.md
    test_counts = dict(zip(ds.label_names, ds.Y[ds.splits["test"]].sum(axis=0), strict=True))
    assert (test_counts["grief"], test_counts["relief"], test_counts["pride"]) == (6, 11, 16)


def test_goemotions_downloads_once_then_reads_the_cache(goemotions_dir, tmp_path):
    expected = load_goemotions(data_dir=goemotions_dir)
    # the mirror is laid out like the cache: <root>/goemotions/<file>
    with serve(goemotions_dir.parent) as url:
        ds = load_goemotions(base_url=url)
    cached = tmp_path / "cache" / "goemotions"  # MLTC_DATA_DIR from conftest
    for name in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt"):
        assert (cached / name).read_bytes() == (goemotions_dir / name).read_bytes()
    assert ds.texts == expected.texts
    np.testing.assert_array_equal(ds.Y, expected.Y)

    again = load_goemotions(base_url=dead_url())  # no server: the cache alone
    np.testing.assert_array_equal(again.Y, expected.Y)


@pytest.mark.parametrize("loader, files", [(load_goemotions, ["train.tsv", "labels.txt"]),
                                           (load_reuters21578, ["reut2-000.sgm", "reut2-021.sgm"])])
def test_offline_without_cache_is_a_clear_error(loader, files, tmp_path):
    with pytest.raises(DataError) as err:
        loader(base_url=dead_url())
    msg = str(err.value)
    for needle in [*files, str(tmp_path / "cache"), "MLTC_DATA_DIR", "dataset.data_dir"]:
        assert needle in msg


@pytest.mark.parametrize("loader", [load_goemotions, load_reuters21578])
def test_download_false_with_empty_cache_is_a_clear_error(loader):
    with pytest.raises(DataError, match="download=false"):
        loader(download=False, base_url=dead_url())


def _write_goemotions(d, train, dev, test, labels=("joy", "fear", "neutral")):
    d.mkdir(exist_ok=True)
    (d / "labels.txt").write_text("\n".join(labels) + "\n")
    for name, lines in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test)):
        (d / name).write_text("".join(line + "\n" for line in lines))


def test_goemotions_small_folder_builds_the_label_matrix(tmp_path, caplog):
    _write_goemotions(tmp_path / "g", ["happy\t0\ta1", "scared and happy\t1,0\ta2"], ["so so\t2\tb1"],
                      ["boo\t1\tc1", "weird\r text\t2\tc2"])
    with caplog.at_level(logging.WARNING):
        ds = load_goemotions(data_dir=tmp_path / "g")
    assert "differ from the authors' release" in caplog.text
    assert ds.label_names == ["joy", "fear", "neutral"]
    assert ds.texts == ["happy", "scared and happy", "so so", "boo", "weird\r text"]
    np.testing.assert_array_equal(ds.Y, [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert {k: v.tolist() for k, v in ds.splits.items()} == {"train": [0, 1], "val": [2], "test": [3, 4]}


def test_goemotions_malformed_lines_are_listed_with_counts_and_line_numbers(tmp_path):
    _write_goemotions(tmp_path / "g",
                      ["fine\t0\ta1", "no id column\t0", "too\tmany\t0\ta4", "out of range\t3\ta5", "word\tjoy\ta6"],
                      ["ok\t2\tb1", "no labels\t\tb2"], ["ok\t1,x\tc1"])
    with pytest.raises(DataError) as err:
        load_goemotions(data_dir=tmp_path / "g")
    msg = str(err.value)
    assert "6 malformed lines" in msg
    for where in ("train.tsv line 2: 2 tab-separated columns", "train.tsv line 3: 4 tab-separated columns",
                  "train.tsv line 4: label ids [3] out of range 0..2", "train.tsv line 5: label ids 'joy'",
                  "dev.tsv line 2: label ids ''", "... and 1 more"):
        assert where in msg
    assert "train.tsv line 1:" not in msg
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_goemotions_folder_without_the_files_lists_what_is_missing(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "train.tsv").write_text("x\t0\ta\n")
    with pytest.raises(DataError, match="lacks 3 of the expected files: dev.tsv, test.tsv, labels.txt"):
        load_goemotions(data_dir=tmp_path / "g")
    with pytest.raises(DataError, match="is not a directory"):
        load_goemotions(data_dir=tmp_path / "nowhere")


# --------------------------------------------------------------------------- Reuters-21578

def test_reuters_modapte_has_the_published_size(reuters_dir):
    ds = load_reuters21578(data_dir=reuters_dir)
    train, test = ds.splits["train"], ds.splits["test"]
    # ModApte with topics seen in both parts: 90 labels, 7,770 / 3,019 documents (shared/data SOURCE.md)
    assert (ds.n_labels, train.size, test.size) == (90, 7770, 3019)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == len(ds)
    assert ds.label_names == sorted(ds.label_names)
    assert (ds.Y[train].sum(axis=0) >= 1).all() and (ds.Y[test].sum(axis=0) >= 1).all()
    assert (ds.Y.sum(axis=1) >= 1).all()
    # per-topic ModApte counts of the ten largest topics (e.g. Debole & Sebastiani 2005, Table 1)
    published = {"earn": (2877, 1087), "acq": (1650, 719), "money-fx": (538, 179), "grain": (433, 149),
                 "crude": (389, 189), "trade": (369, 117), "interest": (347, 131), "ship": (197, 89),
                 "wheat": (212, 71), "corn": (181, 56)}
    for topic, counts in published.items():
        j = ds.label_names.index(topic)
        assert (ds.Y[train, j].sum(), ds.Y[test, j].sum()) == counts, topic
    assert ds.texts[0].startswith("BAHIA COCOA REVIEW\nShowers continued throughout the week")
    residue = re.compile(r"&(#\d+|lt|gt|amp);|[\x00-\x08\x0b-\x1f\x7f]|</?(BODY|TITLE|TEXT)\b")
    assert not [t for t in ds.texts if residue.search(t)]


def _doc(newid, split, has_topics, topics, text):
    d = "".join(f"<D>{t}</D>" for t in topics)
    return (f'<REUTERS TOPICS="{has_topics}" LEWISSPLIT="{split}" CGISPLIT="X" OLDID="1" NEWID="{newid}">\n'
            f"<DATE>26-FEB-1987</DATE>\n<TOPICS>{d}</TOPICS>\n<PLACES></PLACES>\n{text}\n</REUTERS>\n")


# Two tiny SGML files exercising each ModApte rule; the expected result is written out by hand below.
_SGML = {
    "reut2-000.sgm": '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + "".join([
        _doc(1, "TRAIN", "YES", ["earn"],
             "<TEXT>&#2;\n<TITLE>PROFIT UP &lt;ABC&gt;</TITLE>\n<DATELINE>NY - </DATELINE><BODY>Net &amp; "
             "sales rose.\n Reuter\n&#3;</BODY></TEXT>"),
        _doc(2, "TRAIN", "YES", ["grain"], '<TEXT TYPE="BRIEF">&#2;\n<TITLE>WHEAT BRIEF</TITLE>\n&#3;\n</TEXT>'),
        _doc(3, "TRAIN", "YES", ["acq"], "<TEXT><TITLE>ONLY IN TRAIN</TITLE><BODY>x</BODY></TEXT>"),
        _doc(4, "NOT-USED", "YES", ["earn"], "<TEXT><TITLE>UNUSED</TITLE><BODY>x</BODY></TEXT>"),
    ]),
    "reut2-001.sgm": '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + "".join([
        _doc(5, "TEST", "YES", ["grain", "earn"], "<TEXT><TITLE>GRAIN EARNINGS</TITLE><BODY>Both.</BODY></TEXT>"),
        _doc(6, "TEST", "NO", ["earn"], "<TEXT><TITLE>NOT TOPICS=YES</TITLE><BODY>x</BODY></TEXT>"),
        _doc(7, "TEST", "YES", [], "<TEXT><TITLE>NO TOPIC</TITLE><BODY>x</BODY></TEXT>"),
        _doc(8, "TEST", "YES", ["earn", "trade"], '<TEXT TYPE="UNPROC">&#2;\nraw earnings table\n&#3;</TEXT>'),
        _doc(9, "TRAIN", "YES", ["trade"], "<TEXT><TITLE>TRADE</TITLE><BODY>Train only.</BODY></TEXT>"),
    ]),
}


@pytest.fixture
def tiny_reuters(tmp_path, monkeypatch):
    folder = tmp_path / "reuters21578"
    folder.mkdir()
    for name, text in _SGML.items():
        (folder / name).write_bytes(text.encode("latin-1"))
    monkeypatch.setattr(reuters, "SGML_FILES", {n: sha(t.encode("latin-1")) for n, t in _SGML.items()})
    return folder


def _check_tiny(ds):
    # trade has a test document (8) and a training one (9): kept. acq is train-only, so document 3
    # (acq alone) goes; 4 is NOT-USED, 6 has TOPICS="NO", 7 has no topic.
    assert ds.label_names == ["earn", "grain", "trade"]
    assert ds.texts == ["PROFIT UP <ABC>\nNet & sales rose.\n Reuter", "WHEAT BRIEF", "GRAIN EARNINGS\nBoth.",
                        "raw earnings table", "TRADE\nTrain only."]
    np.testing.assert_array_equal(ds.Y, [[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1]])
    assert {k: v.tolist() for k, v in ds.splits.items()} == {"train": [0, 1, 4], "test": [2, 3]}


def test_reuters_parser_applies_the_modapte_rules(tiny_reuters):
    _check_tiny(load_reuters21578(data_dir=tiny_reuters))


def test_reuters_downloads_the_tarball_once_and_keeps_checked_sgml(tiny_reuters, tmp_path):
    mirror = tmp_path / "mirror" / "reuters21578"
    mirror.mkdir(parents=True)
    with tarfile.open(mirror / "reuters21578.tar.gz", "w:gz") as tar:
        for name, text in _SGML.items():
            data = text.encode("latin-1")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with serve(mirror.parent) as url:
        _check_tiny(load_reuters21578(base_url=url))
    cached = tmp_path / "cache" / "reuters21578"
    assert sorted(p.name for p in cached.iterdir()) == sorted(_SGML)
    _check_tiny(load_reuters21578(base_url=dead_url()))


def test_reuters_archive_with_other_files_is_rejected(tiny_reuters, tmp_path, monkeypatch):
    monkeypatch.setattr(reuters, "SGML_FILES", {**reuters.SGML_FILES, "reut2-001.sgm": sha(b"the real one")})
    mirror = tmp_path / "mirror" / "reuters21578"
    mirror.mkdir(parents=True)
    with tarfile.open(mirror / "reuters21578.tar.gz", "w:gz") as tar:
        tar.add(tiny_reuters / "reut2-000.sgm", arcname="reut2-000.sgm")
        tar.add(tiny_reuters / "reut2-001.sgm", arcname="reut2-001.sgm")
    with serve(mirror.parent) as url, pytest.raises(DataError, match="reut2-001.sgm .* expected"):
        load_reuters21578(base_url=url)


def test_reuters_file_without_documents_is_a_clear_error(tiny_reuters):
    (tiny_reuters / "reut2-001.sgm").write_text("<html>not found</html>")
    with pytest.raises(DataError, match="holds no <REUTERS> documents"):
        load_reuters21578(data_dir=tiny_reuters)


# --------------------------------------------------------------------------- user files

_ROWS = [  # text, labels, split
    ("a good film", ["pos", "fun"], "train"),
    ("a bad film", ["neg"], "Train"),
    ("plain", [], "dev"),
    ("fun but bad", ["neg", "fun"], "validation"),
    ("great", ["pos"], "test"),
    ("awful", ["neg"], "TEST"),
]


def _frame(list_labels: bool):
    return pd.DataFrame({"body": [r[0] for r in _ROWS],
                         "tags": [r[1] if list_labels else ",".join(r[1]) for r in _ROWS],
                         "part": [r[2] for r in _ROWS]})


def _write(frame, path, fmt):
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    elif fmt == "parquet":
        frame.to_parquet(path)


@pytest.mark.parametrize("fmt, lists", [("csv", False), ("tsv", False), ("jsonl", True), ("jsonl", False),
                                        ("json", True), ("parquet", True)])
def test_files_every_format_gives_the_same_dataset(fmt, lists, tmp_path, caplog):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"reviews.{fmt}"
    _write(_frame(lists), path, fmt)
    with caplog.at_level(logging.WARNING):
        ds = load_files(path, text_column="body", labels_column="tags", split_column="part")
    assert "1 of 6 rows have an empty 'tags' value" in caplog.text
    assert ds.name == "reviews"
    assert ds.texts == [r[0] for r in _ROWS]
    mlb = MultiLabelBinarizer(classes=sorted({lab for r in _ROWS for lab in r[1]}))
    assert ds.label_names == list(mlb.classes)
    np.testing.assert_array_equal(ds.Y, mlb.fit_transform([r[1] for r in _ROWS]))
    assert {k: v.tolist() for k, v in ds.splits.items()} == {"train": [0, 1], "val": [2, 3], "test": [4, 5]}


def test_files_separate_test_and_val_files_and_other_separator(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"], "labels": ["10|2", "2", "1"]}).to_csv(tmp_path / "tr.csv.gz",
                                                                                 index=False)
    pd.DataFrame({"text": ["d"], "labels": ["10"]}).to_csv(tmp_path / "va.csv", index=False)
    pd.DataFrame({"text": ["e", "f"], "labels": ["1|2", "3"]}).to_csv(tmp_path / "te.csv", index=False)
    ds = load_files(tmp_path / "tr.csv.gz", label_sep="|", val_path=tmp_path / "va.csv",
                    test_path=tmp_path / "te.csv", name="mine")
    assert ds.name == "mine"
    assert ds.label_names == ["1", "2", "3", "10"]  # integer ids in numeric order
    assert ds.texts == list("abcdef")
    np.testing.assert_array_equal(ds.Y, [[0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0],
                                         [0, 0, 1, 0]])
    assert {k: v.tolist() for k, v in ds.splits.items()} == {"train": [0, 1, 2], "val": [3], "test": [4, 5]}


def test_files_without_split_information_have_no_official_split(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "labels": ["x", "x,y"]}).to_csv(tmp_path / "d.csv", index=False)
    ds = load_files(tmp_path / "d.csv")
    assert ds.splits is None and ds.label_names == ["x", "y"]


def test_files_empty_texts_are_dropped_by_the_common_checks(tmp_path):
    pd.DataFrame({"text": ["a", "", "c"], "labels": ["x", "y", "y"], "split": ["train", "train", "test"]}
                 ).to_csv(tmp_path / "d.csv", index=False)
    ds = load_files(tmp_path / "d.csv", split_column="split")
    assert ds.texts == ["a", "c"]
    assert {k: v.tolist() for k, v in ds.splits.items()} == {"train": [0], "test": [1]}


def test_files_errors_say_what_to_fix(tmp_path):
    pd.DataFrame({"review": ["a"], "labels": ["x"], "part": ["holdout"]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="file not found: .*missing.csv"):
        load_files(tmp_path / "missing.csv")
    with pytest.raises(DataError, match=r"no column 'text'; columns found: 'review', 'labels', 'part'"):
        load_files(tmp_path / "d.csv")
    with pytest.raises(DataError, match=r"1 rows have an unknown value in 'part'.*'holdout'"):
        load_files(tmp_path / "d.csv", text_column="review", split_column="part")
    (tmp_path / "d.xlsx").write_bytes(b"")
    with pytest.raises(DataError, match="cannot tell the format"):
        load_files(tmp_path / "d.xlsx")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        load_files(tmp_path / "d.csv", format="xml")
    pd.DataFrame({"text": ["a"], "labels": ["x"], "s": ["test"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="no training rows"):
        load_files(tmp_path / "t.csv", split_column="s")


# --------------------------------------------------------------------------- configs

@pytest.mark.parametrize("option", ["goemotions", "reuters21578", "files"])
def test_dataset_configs_name_every_loader_argument(option):
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "dataset" / f"{option}.yaml")
    loader = get_method(cfg._target_)
    # the unlabeled file's keys belong to the run (mltc.app.load_dataset -> with_unlabeled), not to the loader
    assert set(UNLABELED_KEYS) <= set(cfg)
    assert set(cfg) - {"_target_"} - set(UNLABELED_KEYS) == set(inspect.signature(loader).parameters)
    for key, param in inspect.signature(loader).parameters.items():
        if param.default is not inspect.Parameter.empty:
            assert cfg[key] == param.default, key
    # at the defaults runs were logged with before the keys existed (they hash as if absent)
    assert {k: cfg[k] for k in UNLABELED_KEYS} == {k: LATER_OPTIONS["dataset"][k] for k in UNLABELED_KEYS}
