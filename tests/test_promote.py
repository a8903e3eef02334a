"""`mltc promote`'s choice (validation only) and its refit (training + validation, thresholds out of fold)."""
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mltc.app import CONF_DIR, run_config
from mltc.serving.promote import PromoteError, pick_best, refit_config
from mltc.serving.promote import main as promote_main
from mltc.serving.refit import MergeValidation, OutOfFoldRule

SMALL = ["dataset.n_docs=500", "dataset.n_labels=6", "tracking=none"]


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    # one store for the module: creating an SQLite store (its migrations) takes seconds
    return f"sqlite:///{tmp_path_factory.mktemp('promote') / 'store.db'}"


@pytest.fixture(scope="module")
def client(store_uri):
    return MlflowClient(store_uri)


@pytest.fixture
def make_runs(client, request):
    exp = client.create_experiment(request.node.name)

    def make(rows, objective="macro_f1"):
        runs = []
        for i, metrics in enumerate(rows):
            run = client.create_run(exp, tags={"mltc.config_hash": f"h{i}"}, run_name=f"r{i}")
            client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                             params=[Param("metrics.objective", objective)])
            client.set_terminated(run.info.run_id)
            runs.append(client.get_run(run.info.run_id))
        return runs
    return make


def test_best_is_chosen_on_validation_never_test(make_runs):
    # the test scores rank the runs the other way: they must not matter
    runs = make_runs([{"val_macro_f1": 0.50, "macro_f1": 0.90}, {"val_macro_f1": 0.70, "macro_f1": 0.10},
                      {"val_macro_f1": 0.60, "macro_f1": 0.95}])
    best, metric, n = pick_best(runs)
    assert (best.info.run_name, metric, n) == ("r1", "val_macro_f1", 3)
    with pytest.raises(PromoteError, match="validation metrics only"):
        pick_best(runs, "macro_f1")


def test_losses_are_minimised_and_runs_without_the_metric_are_not_candidates(make_runs):
    runs = make_runs([{"val_hamming_loss": 0.2}, {"val_hamming_loss": 0.1}, {"macro_f1": 0.99}])
    best, _, n = pick_best(runs, "val_hamming_loss")
    assert best.info.run_name == "r1" and n == 2


def test_no_validation_metric_says_why(make_runs):
    runs = make_runs([{"macro_f1": 0.5}])
    with pytest.raises(PromoteError, match="per_label_cv"):
        pick_best(runs)


@pytest.mark.parametrize("rule, wrapped", [("global", True), ("per_label", True), ("fixed", False),
                                           ("per_label_cv", False), ("rcut", False)])
def test_refit_config_merges_validation_and_tunes_thresholds_out_of_fold(rule, wrapped):
    cfg = compose_cfg([*SMALL, f"thresholds={rule}"])
    refit = refit_config(OmegaConf.to_yaml(cfg, resolve=True), n_splits=3)
    assert refit.split._target_ == "mltc.serving.refit.MergeValidation"
    assert refit.split.splitter == cfg.split
    assert (refit.thresholds._target_ == "mltc.serving.refit.OutOfFoldRule") == wrapped
    if wrapped:
        assert refit.thresholds.rule == cfg.thresholds and refit.thresholds.n_splits == 3
    assert refit.seed == cfg.seed and refit.model == cfg.model


def test_refit_trains_on_train_plus_validation_with_the_same_split():
    cfg = compose_cfg([*SMALL, "thresholds=global"])
    ds, before = run_config(cfg)
    refit = refit_config(OmegaConf.to_yaml(cfg, resolve=True), n_splits=3)
    _, after = run_config(refit)
    assert after.sizes["n_train"] == before.sizes["n_train"] + before.sizes["n_val"]
    assert after.sizes["n_val"] == 0
    np.testing.assert_array_equal(after.extra["test_index"], before.extra["test_index"])
    rule = after.fitted["thresholds"]
    assert isinstance(rule, OutOfFoldRule) and rule.thresholds_ is not None
    assert "oof_n_splits" in after.threshold_summary


def test_merge_validation_keeps_every_row_once():
    from mltc.data.synthetic import make_synthetic
    from mltc.split import DatasetSplitter

    ds = make_synthetic(n_docs=300, n_labels=5, random_state=0)
    inner = DatasetSplitter(random_state=0)
    parts, merged = inner.split(ds), MergeValidation(inner).split(ds)
    assert sorted(merged["train"]) == sorted([*parts["train"], *parts["val"]])
    assert len(merged["val"]) == 0 and list(merged["test"]) == list(parts["test"])


def test_promote_run_refits_that_run_even_when_another_scores_higher(client, store_uri, tmp_path, capsys):
    # what `mltc advise` recommends need not be the sweep's best val score: --run promotes the run named
    exp = client.create_experiment("given_run", artifact_location=tmp_path.as_uri())
    ids = {}
    for model, val in (("cc", 0.40), ("logreg", 0.90)):
        cfg = compose_cfg([*SMALL, f"model={model}", "thresholds=global"])
        (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run = client.create_run(exp, run_name=model, tags={"mltc.model": model, "mltc.sweep_id": "s1",
                                                            "mltc.sweep.s1": "child"})
        client.log_batch(run.info.run_id, metrics=[Metric("val_macro_f1", val, 0, 0)],
                         params=[Param("metrics.objective", "macro_f1")])
        client.log_artifact(run.info.run_id, str(tmp_path / "config.yaml"))
        client.set_terminated(run.info.run_id)
        ids[model] = run.info.run_id
    assert promote_main(["--run", ids["cc"], "--uri", store_uri, "--name", "given", "--n-splits", "3"]) == 0
    assert f"promoted run {ids['cc']} (given with --run) of sweep s1" in capsys.readouterr().out
    promoted = client.get_run(client.get_model_version_by_alias("given", "champion").run_id)
    assert promoted.data.tags["mltc.promoted_from_run"] == ids["cc"]
    assert promoted.data.tags["mltc.promoted_from_sweep"] == "s1"
    assert promoted.data.params["model._target_"] == compose_cfg([*SMALL, "model=cc"]).model._target_
    assert promoted.data.params["model._target_"] != compose_cfg([*SMALL, "model=logreg"]).model._target_
    assert promoted.data.metrics["n_val"] == 0  # refit on train + validation, as for --sweep
    # the refit itself cannot be promoted again, and --run takes no selection options
    assert promote_main(["--run", promoted.info.run_id, "--uri", store_uri]) == 2
    assert f"pass the run it was promoted from ({ids['cc']})" in capsys.readouterr().err
    assert promote_main(["--run", ids["cc"], "--metric", "val_micro_f1", "--uri", store_uri]) == 2
    assert "with --run nothing is chosen" in capsys.readouterr().err


def test_promote_run_says_what_is_wrong_with_the_run(client, store_uri, tmp_path, capsys):
    assert promote_main(["--run", "0123456789abcdef", "--uri", store_uri]) == 2
    assert "--run 0123456789abcdef: no such run in" in capsys.readouterr().err
    exp = client.create_experiment("no_config", artifact_location=tmp_path.as_uri())
    run = client.create_run(exp, run_name="bare")
    client.set_terminated(run.info.run_id)
    assert promote_main(["--run", run.info.run_id, "--uri", store_uri]) == 2
    assert "has no config.yaml artifact" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one source: a sweep to choose from, or a run
        promote_main(["--run", run.info.run_id, "--sweep", "latest", "--uri", store_uri])
