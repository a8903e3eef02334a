"""Readable predictions: every run logs predictions.csv / .parquet whose rows map back to the user's files,
and the pandas recipe in docs/metrics.md recomputes the run's own numbers from it."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from mltc.app import CONF_DIR, run_from_config
from mltc.predictions import label_matrix, read_predictions

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def write_files(tmp_path):
    rng = np.random.default_rng(0)
    words = {"sport": ["goal", "match", "team"], "money": ["bank", "price", "stock"], "tech": ["chip", "code"]}

    def rows(n):
        out = []
        for _ in range(n):
            labels = [k for k in words if rng.random() < 0.35]
            text = " ".join([w for k in labels for w in rng.choice(words[k], 2)] + list(rng.choice(["x", "y"], 3)))
            out.append({"text": text, "labels": ";".join(labels)})
        return pd.DataFrame(out)

    train, val, test = rows(240), rows(60), rows(50)
    val.loc[7, "text"] = ""  # dropped on loading: later rows must keep their own row numbers
    for name, df in (("train", train), ("val", val), ("test", test)):
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    return train, val, test


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pred")
    train, val, test = write_files(tmp)
    uri = f"sqlite:///{tmp / 'store.db'}"
    cfg = compose_cfg(["dataset=files", f"dataset.path={tmp / 'train.csv'}", f"dataset.val_path={tmp / 'val.csv'}",
                       f"dataset.test_path={tmp / 'test.csv'}", "dataset.label_sep=';'", f"tracking.uri={uri}",
                       "metrics.extra=[jaccard_samples_zd1]"])
    run_from_config(cfg, choices={"dataset": "files"})
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("train").experiment_id])[0]  # named after train.csv
    csv = client.download_artifacts(run.info.run_id, "predictions.csv", str(tmp))
    pq = client.download_artifacts(run.info.run_id, "predictions.parquet", str(tmp))
    return {"run": run, "csv": csv, "parquet": pq, "files": {"val.csv": val, "test.csv": test}}


def test_rows_map_back_to_the_users_files(logged):
    df = read_predictions(logged["csv"])
    assert list(df.columns[:6]) == ["id", "file", "row", "split", "gold", "pred"]
    assert set(df.columns[6:]) == {"score_money", "score_sport", "score_tech"}
    assert (df["split"] == "val").sum() == 59 and (df["split"] == "test").sum() == 50  # one empty text dropped
    assert 7 not in set(df.loc[df["file"] == "val.csv", "row"])
    for file, frame in logged["files"].items():
        part = df[df["file"] == file]
        assert set(part["split"]) == {"val" if file == "val.csv" else "test"}
        src = frame.loc[part["row"].to_numpy()]
        # gold label names, in any order, equal the file's own labels on that row
        assert [sorted(g.split("|")) if g else [] for g in part["gold"]] == \
            [sorted(x.split(";")) if x else [] for x in src["labels"].fillna("")]
        assert part["id"].tolist() == [str(r) for r in part["row"]]


def test_parquet_equals_csv_and_predictions_agree_with_logged_metrics(logged):
    csv, pq = read_predictions(logged["csv"]), read_predictions(logged["parquet"])
    pd.testing.assert_frame_equal(csv.reset_index(drop=True), pq.reset_index(drop=True), check_dtype=False)
    test = pq[pq["split"] == "test"]
    labels = ["money", "sport", "tech"]
    Y, _ = label_matrix(test, "gold", labels)
    P, _ = label_matrix(test, "pred", labels)
    from sklearn.metrics import f1_score
    assert f1_score(Y, P, average="macro", zero_division=0) == pytest.approx(logged["run"].data.metrics["macro_f1"])


def test_the_docs_recipe_recomputes_the_logged_metrics(logged, capsys):
    code = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)[-1]
    exec(code, {"path": logged["csv"]})  # noqa: S102 -- our own documentation's snippet
    out = dict(re.findall(r"^(.*?) ([0-9.]+)$", capsys.readouterr().out, flags=re.M))
    m = logged["run"].data.metrics
    assert float(out["macro-F1"]) == pytest.approx(m["macro_f1"])
    assert float(out["samples-Jaccard (empty = 1)"]) == pytest.approx(m["jaccard_samples_zd1"])
    assert "val_jaccard_samples_zd1" in m  # extras are logged on validation too


def test_large_tables_are_logged_as_parquet_only(tmp_path, monkeypatch):
    # thousands of labels: the CSV (millions of scores) is left out; the parquet file holds the same table
    from types import SimpleNamespace

    import mltc.predictions as mp

    rng = np.random.default_rng(0)
    Y = (rng.random((12, 3)) < 0.4).astype(np.int8)
    ds = SimpleNamespace(ids=None, meta={}, Y=Y, label_names=["a", "b", "c"])
    S = rng.random((4, 3))
    res = SimpleNamespace(extra={"test_index": np.arange(8, 12), "test_pred": (S > 0.5).astype(np.int8),
                                 "test_scores": S})
    frame = mp.prediction_frame(ds, res)
    assert sorted(mp.writers(ds, res)) == ["predictions.csv", "predictions.parquet"]
    monkeypatch.setattr(mp, "CSV_MAX_CELLS", frame.size - 1)
    w = mp.writers(ds, res)
    assert sorted(w) == ["predictions.parquet"]
    w["predictions.parquet"](tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), frame)
    monkeypatch.setattr(mp, "CSV_MAX_CELLS", frame.size)
    assert "predictions.csv" in mp.writers(ds, res)


def test_the_csv_reads_back_as_pandas_own_csv_writer_gives_it(tmp_path):
    # mltc writes predictions.csv with Arrow (ten times faster); read back, every cell equals what pandas' to_csv
    # would have given: ids and labels with commas, quotes, line breaks and non-ASCII text, empty cells, and
    # scores to the last bit
    from types import SimpleNamespace

    import mltc.predictions as mp

    rng = np.random.default_rng(1)
    names = ["a,b", 'say "hi"', "naïve café", "x|y"]
    Y = (rng.random((30, 4)) < 0.4).astype(np.int8)
    ids = ["plain", "with,comma", 'with "quotes"', "two\nlines", "", "ü-ß"] * 5
    ds = SimpleNamespace(ids=ids, meta={}, Y=Y, label_names=names)
    S = rng.random((10, 4))
    S[0, 0], S[1, 1], S[2, 2] = 1e-300, 0.1 + 0.2, 1 / 3
    res = SimpleNamespace(extra={"test_index": np.arange(20, 30), "test_pred": (S > 0.5).astype(np.int8),
                                 "test_scores": S, "val_index": np.arange(10, 20),
                                 "val_pred": np.zeros((10, 4), dtype=np.int8), "val_scores": S[::-1].copy()})
    frame = mp.prediction_frame(ds, res)
    mp.writers(ds, res)["predictions.csv"](tmp_path / "arrow.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    ours, theirs = read_predictions(tmp_path / "arrow.csv"), read_predictions(tmp_path / "pandas.csv")
    pd.testing.assert_frame_equal(ours, theirs)
    np.testing.assert_array_equal(ours.filter(like="score_").to_numpy(), np.vstack([S[::-1], S]))
    assert ours["id"].tolist() == ids[10:30]
