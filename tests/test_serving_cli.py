"""`mltc run` logs a model; `mltc predict`, `mlflow models serve` and `mltc promote` use it."""
import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from _engines import EngineUnavailable, free_port, stop_group, wait_http
from mltc.serving.predict import main as predict_main
from mltc.serving.promote import main as promote_main

SMALL = ["dataset.n_docs=500", "dataset.n_labels=6"]


def mltc(*args, cwd, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _runs(client, experiment="synthetic"):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One `mltc run` (default tracking: a model is logged) and its test texts + recorded predictions."""
    tmp = tmp_path_factory.mktemp("single")
    uri = f"sqlite:///{tmp / 'store.db'}"
    proc = mltc("run", *SMALL, f"tracking.uri={uri}", "thresholds=global", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = _runs(client)
    npz = np.load(client.download_artifacts(run.info.run_id, "predictions.npz", str(tmp)))
    pred = np.unpackbits(npz["pred"], axis=1, count=int(npz["n_labels"]))
    from mltc.data.synthetic import make_synthetic

    ds = make_synthetic(n_docs=500, n_labels=6, random_state=42)
    texts = [ds.texts[i] for i in npz["index"]]
    return {"uri": uri, "run": run, "texts": texts, "pred": pred, "labels": list(ds.label_names), "tmp": tmp,
            "client": client}


def _expected(single, rows=None):
    pred = single["pred"] if rows is None else single["pred"][rows]
    return [[single["labels"][j] for j in np.flatnonzero(r)] for r in pred]


def test_run_logs_model_with_cost_metrics(single):
    run = single["run"]
    assert run.outputs.model_outputs, "a single run logs its model by default"
    assert run.data.metrics["model_size_mb"] > 0 and run.data.metrics["model_log_seconds"] > 0


def test_predict_csv_with_scores_and_blank_text(single, tmp_path, capsys):
    texts = single["texts"][:40]
    frame = pd.DataFrame({"id": range(41), "text": [*texts, ""]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.jsonl"
    code = predict_main(["--run", single["run"].info.run_id, str(tmp_path / "in.csv"), "--keep", "id", "--scores",
                         "-o", str(out), "--uri", single["uri"]])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(41)]  # CSV cells are read as text
    assert [r["labels"] for r in rows[:40]] == _expected(single, slice(0, 40))
    assert rows[40]["labels"] == []
    assert list(rows[0]["scores"]) == single["labels"]
    assert "1 blank texts got no label" in capsys.readouterr().err


def test_predict_lines_from_stdin_to_csv(single, tmp_path, monkeypatch, capsys):
    import io

    texts = single["texts"][:5]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(texts).encode())))
    assert predict_main(["--run", single["run"].info.run_id, "--uri", single["uri"], "-q"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    assert list(out.columns) == ["labels"]
    assert [s.split(",") if s else [] for s in out["labels"]] == _expected(single, slice(0, 5))


@pytest.mark.parametrize("case, expect", [
    ("unknown run", "no run 'feedbeef'"),
    ("missing column", "has no column 'body'"),
    ("non-text", "1 of 3 inputs are not text (first: row 1, int 3)"),
    ("missing file", "file not found"),
])
def test_predict_errors_say_what_to_do(single, tmp_path, capsys, case, expect):
    run_id = single["run"].info.run_id
    (tmp_path / "in.csv").write_text("text\nhello\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": 3}\n{"text": null}\n')
    args = {"unknown run": ["--run", "feedbeef", str(tmp_path / "in.csv")],
            "missing column": ["--run", run_id, str(tmp_path / "in.csv"), "--text-column", "body"],
            "non-text": ["--run", run_id, str(tmp_path / "bad.jsonl")],
            "missing file": ["--run", run_id, str(tmp_path / "nope.csv")]}[case]
    assert predict_main([*args, "--uri", single["uri"]]) == 2
    assert expect in capsys.readouterr().err


def test_mlflow_models_serve_answers_with_label_sets(single, tmp_path):
    """A real `mlflow models serve` on 127.0.0.1, started and stopped here."""
    port = free_port()
    # --env-manager local runs `uvicorn` from PATH: this environment's, as an activated venv would have it
    env = dict(os.environ, MLFLOW_TRACKING_URI=single["uri"], MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                   f"runs:/{single['run'].info.run_id}/model", "--env-manager", "local",
                                   "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                                  env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", server, log_path, "mlflow models serve", timeout=300)
        except EngineUnavailable as err:
            pytest.fail(str(err))
        texts = single["texts"][:8]
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
        preds = answer["predictions"]
        assert [p["labels"] for p in preds] == _expected(single, slice(0, 8))
        assert set(preds[0]) == {"labels", *(f"score.{n}" for n in single["labels"])}
    finally:
        stop_group(server)  # the CLI and its uvicorn child


@pytest.mark.slow  # a 2-job sweep through the CLI, then a refit: about a minute on a busy machine
def test_sweep_jobs_log_no_model_and_promote_registers_the_validation_best(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    proc = mltc("run", "-m", *SMALL, "model=logreg,cc", "thresholds=global", f"tracking.uri={uri}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    jobs = [r for r in _runs(client) if r.data.tags.get("mltc.role") != "sweep"]
    assert len(jobs) == 2 and not any(r.outputs.model_outputs for r in jobs)
    # predicting with a sweep job says why there is no model
    (tmp_path / "in.txt").write_text("w1 w2 w3\n\n")
    assert predict_main(["--run", jobs[0].info.run_id, str(tmp_path / "in.txt"), "--uri", uri, "-q"]) == 2
    assert "has no logged model" in capsys.readouterr().err

    assert promote_main(["--sweep", "latest", "--uri", uri, "--name", "synth"]) == 0
    capsys.readouterr()
    best = max(jobs, key=lambda r: r.data.metrics["val_macro_f1"])  # validation decides, not test
    mv = client.get_model_version_by_alias("synth", "champion")
    promoted = client.get_run(mv.run_id)
    tags, m = promoted.data.tags, promoted.data.metrics
    assert tags["mltc.promoted_from_run"] == best.info.run_id
    assert tags["mltc.promoted_from_sweep"] == best.data.tags["mltc.sweep_id"]
    assert tags["mltc.model"] == best.data.tags["mltc.model"]
    # refit on train + validation with the same split: every validation row is a training row now
    assert m["n_train"] == best.data.metrics["n_train"] + best.data.metrics["n_val"] and m["n_val"] == 0
    assert m["n_test"] == best.data.metrics["n_test"]
    assert "micro_f1" in m and not any(k.startswith("val_") for k in m)  # test metrics for information
    assert "OutOfFoldRule" in promoted.data.params["thresholds._target_"]
    assert promoted.data.params["seed"] == best.data.params["seed"]

    assert predict_main(["--model", "models:/synth@champion", str(tmp_path / "in.txt"), "--uri", uri,
                         "--output-format", "jsonl"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 2 and rows[1]["labels"] == []
