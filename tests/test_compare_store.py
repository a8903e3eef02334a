"""`mltc compare`'s SQLite reader answers as MLflow's own client does (the reference), without creating stores."""
import pytest
from mlflow.tracking import MlflowClient

from mltc.compare.store import SqliteRuns, Unsupported, compile_filter
from mltc.tracking import MlflowTracker


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("s") / "store.db"
    uri = f"sqlite:///{path}"
    parent = MlflowTracker(uri=uri).start(experiment="e", tags={"mltc.role": "sweep"})
    for i, (strat, status) in enumerate([("none", "FINISHED"), ("ml_ros", "FINISHED"), ("mlsol", "FAILED"),
                                         ("none", "FINISHED")]):
        t = MlflowTracker(uri=uri).start(experiment="e" if i < 3 else "f", run_name=f"r{i}",
                                         parent_run_id=parent.run_id if i % 2 else None,
                                         tags={"mltc.strategy": strat, "mltc.seed": i},
                                         params={"model": {"C": i}, "seed": i})
        t.log_metrics({"macro_f1": 0.1 * i, "val_macro_f1": 0.5 - 0.1 * i})
        t.end(status)
    parent.end("FINISHED")
    return path, uri


FILTERS = ["", "attributes.status = 'FINISHED'", "tags.`mltc.strategy` = 'none'", "tags.mltc.strategy != 'none'",
           "params.`model.C` = '1'", "metrics.macro_f1 >= 0.1", "metrics.`val_macro_f1` < 0.45",
           "tags.`mlflow.parentRunId` IS NULL", "tags.`mltc.role` = 'sweep'",
           "attributes.status = 'FINISHED' and tags.`mltc.strategy` LIKE 'ml%'",
           "tags.`mltc.strategy` ILIKE 'NO%' and metrics.macro_f1 > -1"]


@pytest.mark.parametrize("filt", FILTERS)
def test_search_matches_mlflow(store, filt):
    path, uri = store
    mine, ref = SqliteRuns(path, uri), MlflowClient(uri)
    ids = [e.experiment_id for e in ref.search_experiments()]
    assert sorted(e.name for e in mine.search_experiments()) == sorted(e.name for e in ref.search_experiments())
    for order in (["attributes.start_time ASC"], ["attributes.start_time DESC"]):
        got = mine.search_runs(ids, filter_string=filt, order_by=order, max_results=100)
        want = ref.search_runs(ids, filter_string=filt, order_by=order, max_results=100)
        assert [r.info.run_id for r in got] == [r.info.run_id for r in want]
        for a, b in zip(got, want):
            assert (a.data.tags, a.data.params, a.data.metrics) == (b.data.tags, b.data.params, b.data.metrics)
            assert (a.info.status, a.info.start_time, a.info.end_time, a.info.artifact_uri) == \
                (b.info.status, b.info.start_time, b.info.end_time, b.info.artifact_uri)


def test_what_it_cannot_evaluate_goes_to_mlflow(store):
    path, uri = store
    for filt in ("tags.a = 'x' or tags.b = 'y'", "(tags.a = 'x')", "attributes.user_id = 'me'"):
        with pytest.raises(Unsupported):
            compile_filter(filt)
    mine, ref = SqliteRuns(path, uri), MlflowClient(uri)
    ids = [e.experiment_id for e in ref.search_experiments()]
    some = [r.info.run_id for r in ref.search_runs(ids)][:2]
    filt = f"attributes.run_id IN ('{some[0]}', '{some[1]}')"
    assert [r.info.run_id for r in mine.search_runs(ids, filt)] == [r.info.run_id for r in ref.search_runs(ids, filt)]


def test_a_missing_store_is_not_created(tmp_path):
    with pytest.raises(Exception):
        SqliteRuns(tmp_path / "none.db", "sqlite:///x")
    assert not (tmp_path / "none.db").exists()
