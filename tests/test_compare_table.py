"""`mltc compare`'s table options (columns, grouping, order, filters, formats) against MLflow's own
``mlflow.search_runs`` frame and pandas; the sweep-end report helper."""
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mltc.compare import (
    ALIASES,
    CompareError,
    build_parser,
    leaderboard,
    load_runs,
    parse_columns,
    parse_filters,
    report_sweep,
    runs_frame,
)
from mltc.compare import main as compare_main
from mltc.tracking import MlflowTracker

STRATEGIES = ("none", "ml_ros", "mlsol")  # creation order (the sweep's job order)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sweep of 3 strategies x 2 seeds (random metrics, params, a loss choice) and one standalone run."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
    rng = np.random.default_rng(0)
    parent = MlflowTracker(uri=uri).start(experiment="toy", run_name="sweep",
                                          tags={"mltc.role": "sweep", "mltc.sweep_id": "s1"})
    for strat in STRATEGIES:
        for seed in (1, 2):
            t = MlflowTracker(uri=uri).start(
                experiment="toy", parent_run_id=parent.run_id,
                tags={"mltc.dataset": "toy", "mltc.strategy": strat, "mltc.model": "xgb",
                      "mltc.model/loss": "focal" if strat == "mlsol" else "bce", "mltc.seed": seed,
                      "mltc.config_hash": f"{strat}-{seed}"},
                params={"model": {"C": 2 if strat == "none" else 1}, "seed": seed})
            t.log_metrics({"micro_f1": rng.uniform(0.5, 0.9), "macro_f1": rng.uniform(0.2, 0.6),
                           "tail_macro_f1": rng.uniform(0, 0.4), "train_mean_ir": 40.0,
                           "train_resampled_mean_ir": rng.uniform(10, 40), "n_train_fit": float(rng.integers(90, 200)),
                           "time_fit": rng.uniform(1, 5), "time_load": rng.uniform(0, 1),
                           "time_tracking_wait": 100.0})
            t.end("FINISHED")
    parent.end("FINISHED")
    alone = MlflowTracker(uri=uri).start(experiment="toy", tags={"mltc.dataset": "toy", "mltc.experiment": "solo",
                                                                 "mltc.strategy": "none", "mltc.seed": 1})
    alone.log_metrics({"micro_f1": 0.75, "macro_f1": 0.5})
    alone.end("FINISHED")
    return uri, parent.run_id


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """The figures are tested in test_compare.py; here they would only cost seconds per call."""
    import mltc.compare.render
    import mltc.stats

    def fake(*args, **kwargs):
        path = next(a for a in (*args, *kwargs.values()) if hasattr(a, "write_bytes"))
        path.write_bytes(b"png")

    for mod, name in ((mltc.compare.render, "plot_per_label"), (mltc.compare.render, "plot_distribution"),
                      (mltc.stats, "plot_cd_diagram")):
        monkeypatch.setattr(mod, name, fake)


def _read_table(text):
    """Parse a GitHub Markdown table (the independent reader: split on pipes)."""
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return pd.DataFrame(rows, columns=header)


def _mlflow_frame(uri, **kw):
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(experiment_names=["toy"], **kw)
    role = df["tags.mltc.role"] if "tags.mltc.role" in df else pd.Series(np.nan, index=df.index)
    return df[role.isna() & (df["status"] == "FINISHED")]


def _table(capsys, uri, *args):
    assert compare_main(["--uri", uri, "--no-log", "--bootstrap", "0", "--table-only", *args]) == 0
    return _read_table(capsys.readouterr().out)


def test_parse_columns():
    cols = parse_columns(["micro_f1,mean_ir", "tail_macro_f1:tail:.1f,a/b,params.model.C"])
    assert [c.keys for c in cols] == [("micro_f1",), ("train_mean_ir", "train_resampled_mean_ir"),
                                      ("tail_macro_f1",), ("a", "b"), ("params.model.C",)]
    assert [c.join for c in cols] == ["", " -> ", "", " / ", ""]
    assert cols[1].header == ALIASES["mean_ir"][1] and cols[1].fmt == ALIASES["mean_ir"][2]
    assert (cols[2].header, cols[2].fmt) == ("tail", ".1f")
    assert cols[0].header == "micro-F1" and cols[4].header == "model.C"


def test_table_means_sds_percent_and_columns_match_mlflow(store, tmp_path, capsys):
    uri, parent_id = store
    got = _table(capsys, uri, "--sweep", "s1", "--out", str(tmp_path), "--by", "strategy", "--percent",
                 "--metrics", "micro_f1,mean_ir,rows_after:rows:.1f,wall_s:wall:.3f,run_s:run:.3f,params.model.C")
    ref = _mlflow_frame(uri, filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    ref = ref.assign(run=(ref["end_time"] - ref["start_time"]).dt.total_seconds(),
                     wall=ref["metrics.time_fit"] + ref["metrics.time_load"],  # stages, not the tracker's wait
                     mean_ir_after=ref["metrics.train_resampled_mean_ir"])
    g = ref.groupby("tags.mltc.strategy")
    assert list(got.columns) == ["strategy", "runs", "micro-F1", "MeanIR before -> after", "rows", "wall", "run",
                               "model.C"]
    assert sorted(got["strategy"]) == sorted(STRATEGIES) and (got["runs"] == "2").all()
    for _, row in got.iterrows():
        s = row["strategy"]
        mean, sd = g["metrics.micro_f1"].mean()[s], g["metrics.micro_f1"].std()[s]
        assert row["micro-F1"] == f"{100 * mean:.2f} ± {100 * sd:.2f}"  # scores scaled, s.d. too
        after, after_sd = g["mean_ir_after"].mean()[s], g["mean_ir_after"].std()[s]
        assert row["MeanIR before -> after"] == f"40.0 ± 0.0 -> {after:.1f} ± {after_sd:.1f}"  # not scaled
        rows = g["metrics.n_train_fit"]
        assert row["rows"] == f"{rows.mean()[s]:.1f} ± {rows.std()[s]:.1f}"
        assert row["wall"] == f"{g['wall'].mean()[s]:.3f} ± {g['wall'].std()[s]:.3f}"
        assert row["run"] == f"{g['run'].mean()[s]:.3f} ± {g['run'].std()[s]:.3f}"
        assert float(row["model.C"].split(" ± ")[0]) == float(g["params.model.C"].first()[s])
    # default order: the first metric, best first
    means = [float(v.split(" ± ")[0]) for v in got["micro-F1"]]
    assert means == sorted(means, reverse=True)
    # the CSV keeps unscaled numbers
    board = pd.read_csv(tmp_path / "leaderboard.csv").set_index("strategy")
    assert board["micro_f1"].to_dict() == pytest.approx(g["metrics.micro_f1"].mean().to_dict())


def test_sort_order_sd_digits_and_bold(store, tmp_path, capsys):
    uri, parent_id = store
    base = ["--sweep", "s1", "--out", str(tmp_path), "--by", "strategy", "--metrics", "macro_f1,fit_s"]
    assert list(_table(capsys, uri, *base, "--sort", "run")["strategy"]) == list(STRATEGIES)
    asc = _table(capsys, uri, *base, "--sort", "macro_f1:asc", "--sd", "never", "--digits", "3")
    vals = [float(v) for v in asc["macro-F1"]]
    assert vals == sorted(vals) and all(len(v.split(".")[1]) == 3 for v in asc["macro-F1"])
    fit = _table(capsys, uri, *base, "--sort", "fit_s", "--sd", "never", "--metrics", "time_fit:fit:.4f")
    assert [float(v) for v in fit["fit"]] == sorted(float(v) for v in fit["fit"])  # times: fastest first
    ir = _table(capsys, uri, *base, "--sort", "mean_ir", "--sd", "never", "--metrics", "mean_ir::.3f")
    after = [float(v.split(" -> ")[1]) for v in ir["MeanIR before -> after"]]
    assert after == sorted(after)  # a before -> after column sorts by "after"
    order = ["mlsol", "none", "ml_ros"]
    assert list(_table(capsys, uri, *base, "--order", ",".join(order))["strategy"]) == order
    bold = _table(capsys, uri, *base, "--bold-best", "--sd", "never")
    ref = _mlflow_frame(uri, filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    ref = ref.groupby("tags.mltc.strategy")["metrics.macro_f1"].mean()
    assert [s for s, v in zip(bold["strategy"], bold["macro-F1"]) if v.startswith("**")] == [ref.idxmax()]
    assert compare_main(["--uri", uri, "--no-log", *base, "--sort", "nope"]) == 2
    assert "--sort 'nope'" in capsys.readouterr().err


def test_filters_match_mlflow_filter_strings(store, tmp_path, capsys):
    uri, _ = store
    base = ["--out", str(tmp_path), "--by", "strategy", "--metrics", "micro_f1", "--sort", "run"]
    short = _table(capsys, uri, *base, "--filter", "params.model.C=2")
    long = _table(capsys, uri, *base, "--filter", "params.`model.C` = '2'")
    expected = _mlflow_frame(uri, filter_string="params.`model.C` = '2'")
    assert short.equals(long) and set(short["strategy"]) == set(expected["tags.mltc.strategy"]) == {"none"}
    both = _table(capsys, uri, *base, "--sweep", "s1", "--filter", "strategy=none,mlsol", "--filter", "seed=1")
    assert list(both["strategy"]) == ["none", "mlsol"] and "runs" not in both  # one seed each
    high = _table(capsys, uri, *base, "--experiment", "toy", "--filter", "micro_f1>=0.7", "--by",
                  "strategy,experiment,tags.mltc.seed")
    assert len(high) == (_mlflow_frame(uri)["metrics.micro_f1"] >= 0.7).sum()
    with pytest.raises(CompareError, match="not a group"):
        parse_filters(["colour=red"])
    assert parse_filters(["tags.`mltc.model` = 'xgb'"]) == ("tags.`mltc.model` = 'xgb'", [])


def test_standalone_runs_and_loss_grouping(store, tmp_path, capsys):
    uri, _ = store
    solo = _table(capsys, uri, "--experiment", "toy", "--sweep", "none", "--by", "experiment", "--out", str(tmp_path),
                  "--metrics", "micro_f1/macro_f1")
    assert solo.to_dict("records") == [{"experiment": "solo", "micro-F1 / macro-F1": "0.7500 / 0.5000"}]
    # --pool: runs that agree on --by are pooled although their strategy differs (issue 19 made splitting the
    # default; see test_by_splits_rows_that_differ_by_more_than_the_seed)
    loss = _table(capsys, uri, "--sweep", "s1", "--by", "model,loss", "--out", str(tmp_path), "--metrics",
                  "micro_f1", "--sort", "model/loss", "--pool")
    assert loss[["model", "model/loss", "runs"]].values.tolist() == [["xgb", "bce", "4"], ["xgb", "focal", "2"]]
    assert compare_main(["--uri", uri, "--no-log", "--by", "colour", "--out", str(tmp_path)]) == 2
    assert "--by colour" in capsys.readouterr().err
    assert compare_main(["--uri", uri, "--no-log", "--metrics", "mean_irr", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mean_irr" in err and "mean_ir" in err and "params.<key>" in err


def test_same_configuration_twice_keeps_the_latest_run(store):
    uri, _ = store
    tags = {"mltc.dataset": "d", "mltc.strategy": "none", "mltc.seed": 1}
    ids = []
    for extra, params, value in (({"mltc.config_hash": "h1"}, {"x": 1}, 0.1), ({}, {"x": 1}, 0.2),
                                 ({}, {"x": 2}, 0.3), ({"mltc.config_hash": "h2"}, {"x": 3}, 0.4),
                                 ({"mltc.config_hash": "h2"}, {"x": 3, "new_default": None}, 0.5)):
        t = MlflowTracker(uri=uri).start(experiment="dup", tags={**tags, **extra}, params=params)
        t.log_metrics({"micro_f1": value})
        t.end("FINISHED")
        ids.append(t.run_id)
    client = MlflowClient(uri)
    frame = runs_frame(load_runs(client, ["dup"])[0])
    # the first two are one configuration (same params; an older run has no config-hash tag), and so are
    # the last two (same config hash; a key added later with its default): the later run of each stays
    assert set(frame["run_id"]) == {ids[1], ids[2], ids[4]}
    assert leaderboard(frame, ["micro_f1"], ["strategy"])["micro_f1"].iloc[0] == pytest.approx(1.0 / 3)


def test_report_sweep_logs_report_to_parent(store, tmp_path):
    uri, parent_id = store
    files = report_sweep(parent_id, uri=uri, out=tmp_path / "rep", bootstrap=0)
    assert {"leaderboard.md", "leaderboard.csv", "report.html"} <= set(files)
    arts = {a.path for a in MlflowClient(uri).list_artifacts(parent_id, "compare")}
    assert {"compare/leaderboard.md", "compare/leaderboard.csv", "compare/report.html"} <= arts
    # a broken selection warns and returns None: a report never fails a finished sweep
    assert report_sweep("no-such-run", uri=uri, out=tmp_path / "x") is None


def test_help_lists_options_and_examples():
    text = build_parser().format_help()
    for opt in ("--metrics", "--by", "--sort", "--order", "--percent", "--digits", "--sd", "--filter", "--sweep",
                "--experiment", "--table-only", "--bold-best", "--baseline", "--bootstrap", "--no-log"):
        assert opt in text
    assert "examples:" in text and all(name in text for name in ALIASES)


def test_filter_selects_before_the_latest_run_of_a_configuration_is_kept(store, tmp_path, capsys):
    uri, _ = store
    tags = {"mltc.dataset": "d", "mltc.strategy": "none", "mltc.seed": 1, "mltc.config_hash": "same"}
    for name, value in (("first", 0.25), ("second", 0.75)):
        # run_name does not enter the config hash: the same configuration, run twice under two names
        t = MlflowTracker(uri=uri).start(experiment="renamed", tags=tags, params={"run_name": name, "x": 1})
        t.log_metrics({"micro_f1": value})
        t.end("FINISHED")
    args = ["--uri", uri, "--experiment", "renamed", "--no-log", "--bootstrap", "0", "--out", str(tmp_path),
            "--metrics", "micro_f1", "--table-only", "--by", "params.run_name"]
    # several values: a client-side filter (one value would go to MLflow's search instead)
    assert compare_main([*args, "--filter", "params.run_name=first,third"]) == 0
    out = capsys.readouterr().out
    assert "| first | 0.2500 |" in out and "second" not in out
    assert compare_main(args) == 0
    out = capsys.readouterr().out
    assert "| second | 0.7500 |" in out and "first" not in out  # unfiltered: the latest run only


def test_by_takes_a_header(store, tmp_path, capsys):
    uri, _ = store
    base = ["--sweep", "s1", "--out", str(tmp_path), "--metrics", "micro_f1", "--sort", "run"]
    plain = _table(capsys, uri, *base, "--by", "strategy,params.model.C")
    titled = _table(capsys, uri, *base, "--by", "strategy:method,params.model.C:C", "--order", "mlsol,none,ml_ros")
    assert list(plain.columns) == ["strategy", "model.C", "runs", "micro-F1"]  # no header: as before
    assert list(titled.columns) == ["method", "C", "runs", "micro-F1"]
    assert list(titled["method"]) == ["mlsol", "none", "ml_ros"]  # --order still reads the first --by column
    # the same rows under other titles
    same = plain.set_index("strategy").loc[list(titled["method"])].reset_index()
    assert same.values.tolist() == titled.values.tolist()
    loss = _table(capsys, uri, *base, "--by", "loss:loss function")  # an alias keeps its header
    assert loss.columns[0] == "loss function" and set(loss["loss function"]) == {"bce", "focal"}


def test_options_added_later_read_as_their_default(store, tmp_path, capsys):
    # a run logged before split.train_size existed, the same configuration logged after it (with its default,
    # another config hash), and a run on a training subset
    uri, _ = store
    old_split = {"_target_": "mltc.split.DatasetSplitter", "val_size": 0.1}
    for hash_, split, value in (("old", old_split, 0.25),
                                ("new", {**old_split, "train_size": None, "train_method": "iterative"}, 0.5),
                                ("sub", {**old_split, "train_size": 6000, "train_method": "random"}, 0.75)):
        t = MlflowTracker(uri=uri).start(experiment="later", params={"split": split, "run_name": "none"},
                                         tags={"mltc.dataset": "d", "mltc.seed": 1, "mltc.config_hash": hash_})
        t.log_metrics({"micro_f1": value})
        t.end("FINISHED")
    base = ["--experiment", "later", "--out", str(tmp_path), "--metrics", "micro_f1", "--by",
            "params.run_name:augmentation"]
    full = _table(capsys, uri, *base, "--filter", "params.split.train_size=None")
    # the old run counts as the new one's configuration: the latest of the two stays, alone
    assert full.to_dict("records") == [{"augmentation": "none", "micro-F1": "0.5000"}]
    sub = _table(capsys, uri, *base, "--filter", "params.split.train_size=6000")
    assert sub.to_dict("records") == [{"augmentation": "none", "micro-F1": "0.7500"}]
    frame = runs_frame(load_runs(MlflowClient(uri), ["later"])[0], latest_only=False)
    assert list(frame["params.split.train_method"]) == ["iterative", "iterative", "random"]
    assert parse_filters(["params.split.train_size=None"]) == (None, [("params.split.train_size", ["None"])])
