"""What `mltc compare` reports (issue 19): rows that differ by seed alone, ranking by validation, one board per
data set, intervals and named tests, the store it reads, and a report that explains itself."""
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from mltc.compare import compare
from mltc.compare import main as compare_main
from mltc.tracking import MlflowTracker

L = 5


def _pred_writer(index, Y, P):
    def write(path):
        np.savez_compressed(path, index=index, n_labels=Y.shape[1], pred=np.packbits(P.astype(bool), axis=1),
                            true=np.packbits(Y.astype(bool), axis=1), scores=P.astype(np.float32))
    return write


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sweep on a SYNTHETIC data set: 3 configurations x 2 seeds, where validation and test disagree on the
    best; two of them share strategy=none and differ in class_weight."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
    rng = np.random.default_rng(0)
    parent = MlflowTracker(uri=uri).start(experiment="synthetic", run_name="sweep",
                                          tags={"mltc.role": "sweep", "mltc.sweep_id": "sw"})
    # (strategy, class_weight, test label noise, validation score)
    configs = [("none", "None", 0.30, 0.70), ("none", "balanced", 0.20, 0.60), ("ml_ros", "None", 0.10, 0.50)]
    truth = []
    for seed in (1, 2):
        Y = (rng.random((150, L)) < np.linspace(0.5, 0.1, L)).astype(np.int8)
        index = np.arange(150) + 1000 * seed
        for strat, cw, noise, val in configs:
            P = (Y.astype(bool) ^ (rng.random(Y.shape) < noise)).astype(np.int8)
            m = {"macro_f1": f1_score(Y, P, average="macro", zero_division=0), "val_macro_f1": val + seed / 100,
                 "n_test": 150.0}
            t = MlflowTracker(uri=uri).start(
                experiment="synthetic", parent_run_id=parent.run_id,
                tags={"mltc.dataset": "synthetic", "mltc.strategy": strat, "mltc.model": "logreg",
                      "mltc.thresholds": "fixed", "mltc.seed": seed, "mltc.config_hash": f"{strat}-{cw}-{seed}"},
                params={"model": {"class_weight": cw, "random_state": seed}, "seed": seed,
                        "dataset": {"_target_": "mltc.data.make_synthetic"}})
            t.log_metrics(m)
            t.log_artifacts({"predictions.npz": _pred_writer(index, Y, P)})
            t.end("FINISHED")
            truth.append({"strategy": strat, "class_weight": cw, "seed": seed, **m})
    parent.end("FINISHED")
    return uri, parent.run_id, pd.DataFrame(truth)


@pytest.fixture(autouse=True)
def no_mlflow_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLTC_RUNS_DIR", str(tmp_path / "runs"))


def test_rows_differ_by_seed_only_and_rank_by_validation(store, tmp_path):
    uri, _, truth = store
    report, _, _ = compare(uri=uri, sweep="sw", by="strategy", bootstrap=200, out=str(tmp_path))
    board = report.board
    # strategy=none has two configurations (class_weight differs): two rows, class_weight a column
    assert len(board) == 3 and "params.model.class_weight" in board
    assert set(board["n_seeds"]) == {2}
    # random_state is the seed in every run: it does not split rows
    assert "params.model.random_state" not in board
    # ranked by validation (highest first), not by test
    val = truth.groupby(["strategy", "class_weight"])["val_macro_f1"].mean().sort_values(ascending=False)
    assert list(zip(board["strategy"], board["params.model.class_weight"])) == list(val.index)
    test_best = truth.groupby(["strategy", "class_weight"])["macro_f1"].mean().idxmax()
    assert test_best != val.index[0]  # the fixture makes the two disagree
    md = report.markdown()
    assert "ranked by validation macro-F1" in md and "params.model.class_weight added" in md
    assert "Held fixed: model=logreg, thresholds=fixed" in md
    # validation and test side by side
    assert {"val macro-F1", "test macro-F1"} <= set(report.board_show.columns)
    # --rank-by test: the test score orders the rows
    by_test, _, _ = compare(uri=uri, sweep="sw", by="strategy", bootstrap=0, out=str(tmp_path), rank_by="test")
    assert list(by_test.board["macro_f1"]) == sorted(by_test.board["macro_f1"], reverse=True)


def test_intervals_named_tests_percent_and_too_few_blocks(store, tmp_path):
    uri, _, truth = store
    report, files, _ = compare(uri=uri, sweep="sw", bootstrap=300, out=str(tmp_path), percent=True)
    show, board = report.board_show, report.board
    # a 95% bootstrap interval per score, around the observed mean (scaled like the score)
    for text, mean in zip(show["test macro-F1 95% CI"], board["macro_f1"]):
        lo, hi = (float(v) for v in text.strip("[]").split(", "))
        assert lo <= 100 * mean <= hi and hi - lo < 30
    # the bootstrap reference is the best by validation; differences are scaled by --percent too
    sig = pd.read_csv(files["significance.csv"])
    assert (sig["reference"] == board["config"].iloc[0]).all()
    md = report.markdown()
    for d in sig["delta"]:
        assert f"{100 * d:+.2f} [" in md
    assert "p (two-sided)" in md and "paired bootstrap over test documents, two-sided" in md
    # 3 methods, 2 blocks: Nemenyi's CD (2.34) is wider than any rank difference (2): said, not drawn
    assert "no two methods can be told apart" in md and "cd_diagram.png" not in files


def test_synthetic_data_is_labelled(store, tmp_path):
    uri = store[0]
    _, files, _ = compare(uri=uri, sweep="sw", bootstrap=0, out=str(tmp_path))
    for name in ("leaderboard.md", "report.html"):
        assert "SYNTHETIC data" in files[name].read_text()


def test_store_is_found_like_mltc_run_and_never_created(store, tmp_path, monkeypatch, capsys):
    uri, parent_id, _ = store
    missing = tmp_path / "nowhere" / "mlflow.db"
    assert compare_main(["--uri", f"sqlite:///{missing}", "--sweep", "latest"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--sweep latest" not in err.split("run `mltc run`")[0]
    assert not missing.exists() and not missing.parent.exists()
    # the default store (runs/mlflow.db) is not created either
    assert compare_main(["--sweep", "latest"]) == 2
    assert "runs/mlflow.db" in capsys.readouterr().err and not (tmp_path / "runs" / "mlflow.db").exists()
    # MLFLOW_TRACKING_URI and a tracking.uri= override, as `mltc run` takes them
    out = ["--out", str(tmp_path / "r"), "--bootstrap", "0", "--table-only"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert compare_main(["--sweep", "latest", *out]) == 0
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert compare_main([f"tracking.uri={uri}", "--sweep", "latest", *out]) == 0
    assert compare_main(["colour=red", "--sweep", "latest", *out]) == 2
    assert "tracking.uri=URI" in capsys.readouterr().err


def test_ad_hoc_compare_does_not_replace_the_stored_report(store, tmp_path):
    uri, parent_id, _ = store
    client = MlflowClient(uri)
    args = ["--uri", uri, "--sweep", "sw", "--bootstrap", "0", "--out", str(tmp_path / "r")]
    assert compare_main(args) == 0
    assert not client.list_artifacts(parent_id, "compare")
    assert compare_main([*args, "--log"]) == 0
    assert {a.path for a in client.list_artifacts(parent_id, "compare")} >= {"compare/leaderboard.md"}


def test_help_filter_example_works_in_a_shell():
    """The --help examples of MLflow filter strings have no backticks (bash would run them as a command)."""
    from mltc.compare import build_parser

    text = build_parser().format_help()
    examples = [ln for ln in text.splitlines() if "--filter" in ln and ln.strip().startswith("mltc compare")]
    assert examples and not any("`" in ln for ln in examples)


def test_mlflow_filter_without_backticks_selects_runs(store, tmp_path, capsys):
    uri = store[0]
    assert compare_main(["--uri", uri, "--sweep", "sw", "--filter", "tags.mltc.strategy = 'ml_ros'", "--bootstrap",
                         "0", "--out", str(tmp_path), "--table-only"]) == 0
    out = capsys.readouterr().out
    assert "ml_ros" in out and "| none" not in out
