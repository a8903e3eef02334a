"""Component details (``summary_``) travel from the pipeline to the MLflow store (issue 7)."""
import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

import mltc.strategies.none as none_module
from mltc import config_guard
from mltc.app import CONF_DIR, run_from_config
from mltc.pipeline import ResampledModel, collect_details
from mltc.strategies import NoStrategy
from mltc.tracking import details_metrics

SMALL = ["dataset.n_docs=400", "dataset.n_labels=5"]

SUMMARY = {"n_added": 7, "precision": 0.75, "note": "not a number", "per_label": [3, 0, 4],
           "inner": {"cost": 2.5, "deeper": {"x": 1}},
           "rounds": [{"round": 1, "added": 5, "precision": 0.8}, {"round": 2, "added": 2, "precision": 0.5}]}


class SummaryStrategy(NoStrategy):
    """The baseline strategy, plus a ``summary_`` like pseudo_label's."""

    def fit_resample(self, X, Y):
        self.summary_ = json.loads(json.dumps(SUMMARY))
        return super().fit_resample(X, Y)


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_details_metrics_flattening_rules():
    m = details_metrics({"strategy": SUMMARY, "model": {"n_iter": np.int64(12), "bad": float("nan")}})
    assert m["strategy.n_added"] == 7 and m["strategy.precision"] == 0.75
    assert m["strategy.inner.cost"] == 2.5 and m["strategy.inner.deeper.x"] == 1
    assert m["strategy.per_label"] == [3, 0, 4]
    assert m["strategy.rounds.added"] == [5, 2] and m["strategy.rounds.precision"] == [0.8, 0.5]
    assert m["model.n_iter"] == 12
    assert not any(k.endswith(("note", "bad")) for k in m)  # strings and NaN are not metrics


def test_collect_details_only_present_and_looks_inside_wrappers():
    s = SummaryStrategy()
    s.summary_ = {"a": 1}
    wrapped = ResampledModel(strategy=NoStrategy(), model=None)
    wrapped.model_ = type("Fitted", (), {"summary_": {"b": 2}})()
    # a thresholder's summary_ is a method (logged as threshold_*), not a details dict
    thr = type("Thr", (), {"summary_": lambda self: {"c": 3}})()
    assert collect_details(strategy=s, model=wrapped, thresholds=thr, augment=None) == {
        "strategy": {"a": 1}, "model": {"b": 2}}


def test_summary_reaches_the_store(tmp_path, monkeypatch):
    # an allowed _target_ path for the test's strategy (a class defined here, so its package is allowed too)
    monkeypatch.setattr(none_module, "SummaryStrategy", SummaryStrategy, raising=False)
    monkeypatch.setattr(config_guard, "ALLOWED_PACKAGES",
                        (*config_guard.ALLOWED_PACKAGES, SummaryStrategy.__module__.split(".")[0]))
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = compose_cfg([*SMALL, f"tracking.uri={uri}", "strategy._target_=mltc.strategies.none.SummaryStrategy"])
    run_from_config(cfg, choices={"dataset": "synthetic"})
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])[0]
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    assert m["strategy.n_added"] == 7 and m["strategy.precision"] == 0.75 and m["strategy.inner.cost"] == 2.5
    hist = {k: sorted((x.step, x.value) for x in client.get_metric_history(run.info.run_id, k))
            for k in ("strategy.rounds.added", "strategy.rounds.precision", "strategy.per_label")}
    assert hist["strategy.rounds.added"] == [(0, 5), (1, 2)]
    assert hist["strategy.rounds.precision"] == [(0, 0.8), (1, 0.5)]
    assert hist["strategy.per_label"] == [(0, 3), (1, 0), (2, 4)]
    local = client.download_artifacts(run.info.run_id, "details.json", str(tmp_path))
    assert json.loads(open(local).read()) == {"strategy": SUMMARY}


@pytest.mark.parametrize("stage", ["featurize", "fit"])
def test_a_failure_before_or_during_fit_still_marks_the_run_failed(tmp_path, monkeypatch, stage):
    # the run is created in the background once fitting starts; a failure on either side must still reach it
    import mltc.pipeline as pipeline

    real = pipeline._Timer.__call__

    def failing(self, name):
        if name == stage:
            raise RuntimeError(f"boom in {name}")
        return real(self, name)

    monkeypatch.setattr(pipeline._Timer, "__call__", failing)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(Exception, match=f"boom in {stage}"):
        run_from_config(compose_cfg([*SMALL, f"tracking.uri={uri}"]), choices={"dataset": "synthetic"})
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.info.status == "FAILED" and f"boom in {stage}" in run.data.tags["error"]
