"""Predict throughput of a logged model vs the same scikit-learn pipeline called directly; cost of logging.

GoEmotions (official split), ``experiment=goemotions_logreg`` (TF-IDF + one-vs-rest logistic
regression, threshold 0.3). The run logs its model as ``mltc run`` does (tracking process,
``tracking.log_model=true``); its ``model_log_seconds`` / ``model_size_mb`` metrics are the cost
of logging. The model is then loaded with ``mlflow.pyfunc.load_model("runs:/<id>/model")`` and
both paths label the 5,427 test texts, alternating, ``--repeats`` times each:

* direct: ``featurizer.transform`` -> ``predict_scores(model)`` -> ``thresholds.predict`` on the
  run's own fitted objects (no MLflow);
* loaded: ``pyfunc.predict(DataFrame({"text": texts}))``, which returns labels and 28 score columns.

The ratio of their median docs/s (loaded / direct) is the number reported (goal >= 0.8).

Run as a script (not collected by pytest)::

    nice -n 10 python tests/benchmarks/bench_predict.py --repeats 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("MLTC_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--experiment", default="goemotions_logreg")
    a = p.parse_args()
    os.environ.setdefault("MLTC_DATA_DIR", str(DATA))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    from hydra import compose, initialize_config_dir

    import mlflow
    import pandas as pd
    from mltc.app import CONF_DIR, run_config
    from mltc.models.scores import predict_scores
    from mltc.serving.track import log_fitted_model
    from mltc.tracker_process import TrackerProcess
    from mltc.tracking import MlflowTracker

    tmp = tempfile.mkdtemp(prefix="bench-predict-")
    uri = f"sqlite:///{tmp}/store.db"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={a.experiment}", f"tracking.uri={uri}"])
    t = time.perf_counter()
    dataset, result = run_config(cfg)
    print(f"run: {time.perf_counter() - t:.1f}s; test micro-F1 {result.metrics['micro_f1']:.4f} "
          f"macro-F1 {result.metrics['macro_f1']:.4f}")
    tracker = TrackerProcess(MlflowTracker(uri=uri))
    tracker.start(experiment="bench_predict", run_name=a.experiment)
    cost = log_fitted_model(tracker, result, dataset.texts)
    tracker.end("FINISHED")
    print(f"logging the model: {cost['model_log_seconds']:.2f}s, {cost['model_size_mb']:.2f} MB (pickle)")
    model_dir = Path(tmp) / "artifacts" / "bench_predict" / "models"
    total = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    print(f"model folder in the artifact store: {total / 1e6:.2f} MB")

    mlflow.set_tracking_uri(uri)
    t = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(f"runs:/{tracker.run_id}/model")
    print(f"load_model: {time.perf_counter() - t:.2f}s")
    f = result.fitted
    texts = [dataset.texts[i] for i in result.extra["test_index"]]
    frame = pd.DataFrame({"text": texts})

    def direct():
        return f["thresholds"].predict(predict_scores(f["model"], f["featurizer"].transform(texts))[0])

    def via_mlflow():
        return loaded.predict(frame)

    # same answers first
    P = direct()
    out = via_mlflow()
    names = np.asarray(result.label_names, dtype=object)
    assert out["labels"].tolist() == [names[r.astype(bool)].tolist() for r in P], "loaded model disagrees"
    assert np.array_equal(P, result.extra["test_pred"])
    rates = {"direct": [], "loaded": []}
    for _ in range(a.repeats):
        for name, fn in (("direct", direct), ("loaded", via_mlflow)):
            t = time.perf_counter()
            fn()
            rates[name].append(len(texts) / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{len(texts)} test texts, {a.repeats} alternating repeats (median docs/s): "
          f"direct {med['direct']:.0f}, loaded {med['loaded']:.0f}, ratio {med['loaded'] / med['direct']:.3f}")


if __name__ == "__main__":
    main()
