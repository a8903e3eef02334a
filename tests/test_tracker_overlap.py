"""Work the tracking process does beside the run: model logging warmed up during the fit, artifacts
logged while the run goes on (their errors still reach the run)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mltc.report import PerLabelPlot
from mltc.tracker_process import TrackerProcess
from mltc.tracking import MlflowTracker
from mltc.tracking_warm import target_modules


def test_target_modules_lists_every_target_s_module_once_in_order():
    cfg = {"features": {"_target_": "mltc.features.make_tfidf", "ngram_range": [1, 2]},
           "model": {"_target_": "mltc.models.BinaryRelevance",
                     "estimator": {"_target_": "sklearn.linear_model.LogisticRegression", "C": 4.0}},
           "strategy": {"_target_": "mltc.resample.SamplerChain",
                        "steps": [{"_target_": "mltc.resample.MLROS"}, {"_target_": "mltc.features.other"}]},
           "thresholds": None, "seed": 42, "odd": {"_target_": "nodots"}}
    assert target_modules(cfg["features"], cfg["model"], cfg["strategy"], cfg["thresholds"], cfg["odd"]) == [
        "mltc.features", "mltc.models", "sklearn.linear_model", "mltc.resample"]


def test_warm_up_builds_mlflow_s_package_map_and_imports_the_modules(tmp_path):
    # a fresh interpreter: in this one MLflow's map may already exist
    (tmp_path / "mltc_probe_a.py").write_text("")
    code = textwrap.dedent("""
        import sys
        from mlflow.utils import requirements_utils as ru
        from mltc.tracking import MlflowTracker
        assert ru._MODULES_TO_PACKAGES is None and "mltc_probe_a" not in sys.modules
        MlflowTracker().warm_up_model_logging(["mltc_probe_a", "no_such_module_xyz"])
        print(ru._MODULES_TO_PACKAGES["sklearn"], "mltc_probe_a" in sys.modules,
              "mltc.serving.mlflow_model" in sys.modules)
    """)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split()[-3:] == ["['scikit-learn']", "True", "True"]


def test_tracking_process_warms_up_in_the_child(tmp_path, monkeypatch):
    # a module that records which process imported it
    (tmp_path / "mltc_probe_mod.py").write_text(
        f"import os\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = TrackerProcess(MlflowTracker(uri=f"sqlite:///{tmp_path / 'store.db'}"))
    proc.start(experiment="e")
    proc.warm_up_model_logging(["mltc_probe_mod"])
    assert int((tmp_path / "pid").read_text()) == proc._proc.pid != os.getpid()
    assert "mltc_probe_mod" not in sys.modules
    proc.end("FINISHED")


def test_artifacts_are_logged_while_the_caller_goes_on(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = TrackerProcess(MlflowTracker(uri=uri))
    proc.start(experiment="e")
    per_label = pd.DataFrame({"label": ["a", "b"], "train_count": [10, 2], "f1": [0.9, 0.1], "group": ["head", "tail"]})
    proc.log_artifacts({"notes.txt": lambda p: p.write_text("hello"), "per_label_f1.png": PerLabelPlot(per_label)})
    assert len(proc._pending) == 1  # returned before the child answered
    proc.log_metrics({"m": 1.0})  # the next call reads the answer first
    assert proc._pending == []
    proc.end("FINISHED")
    client = MlflowClient(uri)
    assert client.get_run(proc.run_id).info.status == "FINISHED"
    arts = {a.path: a.file_size for a in client.list_artifacts(proc.run_id)}
    assert arts.keys() == {"notes.txt", "per_label_f1.png"} and arts["per_label_f1.png"] > 1000


def test_an_artifact_error_comes_back_with_the_next_call(tmp_path):
    proc = TrackerProcess(MlflowTracker(uri=f"sqlite:///{tmp_path / 'store.db'}"))
    proc.log_artifacts({"notes.txt": lambda p: p.write_text("hello")})  # no run started: fails in the child
    with pytest.raises(RuntimeError):
        proc.find_finished("e", "0" * 32)
    assert proc.find_finished("e", "0" * 32) is None  # the error was reported once; the child serves on
    proc.close()


def test_a_run_whose_artifacts_failed_ends_failed_with_the_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = TrackerProcess(MlflowTracker(uri=uri), reuse=True)
    proc.start(experiment="e")
    bad_plot = PerLabelPlot(pd.DataFrame({"no_such_column": [1]}))  # drawn in the child, where it fails
    proc.log_artifacts({"per_label_f1.png": bad_plot})
    with pytest.raises(RuntimeError, match="KeyError"):
        proc.end("FINISHED")
    proc.end("FAILED", error="caller's message")  # what run_from_config does next: nothing left to do
    run = MlflowClient(uri).get_run(proc.run_id)
    assert run.info.status == "FAILED" and "KeyError" in run.data.tags["error"]
    assert proc.reuse is False  # that child is not handed to the next run


def load_logged_model(uri, run_id):
    """The run's logged model, loaded through MLflow's ``runs:/`` URI (resolved against the current store)."""
    import mlflow

    from mltc.serving.mlflow_model import load

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return load(f"runs:/{run_id}/model")
    finally:
        mlflow.set_tracking_uri(before)


@pytest.mark.slow  # test_end_to_end's CLI run takes the same path in the default suite
def test_a_run_with_a_tracking_process_logs_its_model_and_artifacts(tmp_path):
    # the model is logged (in a thread, by the tracking process) while the test split is scored
    from hydra import compose, initialize_config_dir

    from mltc.app import CONF_DIR, run_from_config

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["dataset.n_docs=400", "dataset.n_labels=5",
                                                        f"tracking.uri={uri}", "thresholds=per_label"])
    run_from_config(cfg, choices={"dataset": "synthetic"}, raise_errors=True)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["model_size_mb"] > 0
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"predictions.csv", "predictions.npz", "per_label_f1.png", "thresholds.json"} <= arts
    clf = load_logged_model(uri, run.info.run_id)
    assert clf.predict_matrix(["some text", "other text"]).shape == (2, 5)


def test_the_pipeline_hands_over_the_fitted_objects_once_the_rule_is_tuned():
    # the CLI logs the model from this call, while the test split is scored: everything the model holds must be
    # final here (the decision rule tuned), and no test document may have been scored yet
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from mltc.data import make_synthetic
    from mltc.models import BinaryRelevance
    from mltc.pipeline import run_pipeline
    from mltc.split import DatasetSplitter
    from mltc.thresholds import PerLabelThreshold

    events, handed = [], []

    def on_fitted(fitted, test_index):
        events.append("fitted")
        handed.append((fitted, test_index, fitted["thresholds"].thresholds_.copy()))

    ds = make_synthetic(n_docs=300, n_labels=4, random_state=0)
    res = run_pipeline(ds, splitter=DatasetSplitter(val_size=0.2), featurizer=TfidfVectorizer(),
                       model=BinaryRelevance(LogisticRegression()), thresholder=PerLabelThreshold(),
                       random_state=0, on_stage=events.append, on_fitted=on_fitted)
    assert events[events.index("thresholds"):] == ["thresholds", "fitted", "predict", "evaluate"]
    ((fitted, test_index, thresholds),) = handed
    assert fitted is res.fitted and fitted["model"] is res.fitted["model"]
    assert list(test_index) == list(res.extra["test_index"])
    np.testing.assert_array_equal(thresholds, res.thresholds)  # not changed after the hand-over


def test_a_run_that_fails_while_its_model_is_logged_ends_failed(tmp_path, monkeypatch):
    # the tracking process is logging the model when the test evaluation fails: the run must end FAILED with the
    # evaluation's error, after the model's call is answered (no call left half-read on the pipe)
    from hydra import compose, initialize_config_dir

    import mltc.pipeline
    from mltc.app import CONF_DIR, RunFailed, run_from_config

    def broken_evaluate(*args, **kwargs):
        raise RuntimeError("evaluation broke on purpose")

    monkeypatch.setattr(mltc.pipeline, "evaluate", broken_evaluate)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["dataset.n_docs=300", "dataset.n_labels=4",
                                                        f"tracking.uri={uri}", "thresholds=per_label"])
    with pytest.raises(RunFailed, match="evaluation broke on purpose"):
        run_from_config(cfg, choices={"dataset": "synthetic"}, raise_errors=True)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.info.status == "FAILED" and "evaluation broke on purpose" in run.data.tags["error"]
    # the model's call, in flight when evaluation failed, was answered before the run ended (`mltc promote`
    # refuses a FAILED run's model)
    assert load_logged_model(uri, run.info.run_id).predict_matrix(["some text"]).shape == (1, 4)


def test_a_run_whose_model_cannot_be_saved_keeps_its_metrics_and_ends_failed(tmp_path, monkeypatch):
    # the model is pickled before the test split is scored; its failure must still come after the metrics are
    # logged, as when the model was saved last (nothing of the run is lost)
    from hydra import compose, initialize_config_dir

    from mltc.app import CONF_DIR, RunFailed, run_from_config
    from mltc.serving.model import TextClassifierModel

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TextClassifierModel, "save", full_disk)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["dataset.n_docs=300", "dataset.n_labels=4",
                                                        f"tracking.uri={uri}"])
    with pytest.raises(RunFailed, match="No space left on device"):
        run_from_config(cfg, choices={"dataset": "synthetic"}, raise_errors=True)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.info.status == "FAILED" and "No space left" in run.data.tags["error"]
    assert {"micro_f1", "macro_f1", "val_macro_f1"} <= run.data.metrics.keys()
