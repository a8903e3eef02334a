"""A run's model: logged with the run, loaded in a fresh process, the same test predictions.

Each model family is run on a small synthetic set with its model logged; one fresh Python
process then loads every model with ``mlflow.pyfunc.load_model("runs:/<id>/model")`` and
labels the run's test texts. Its labels must equal, and its scores match, what the run itself
recorded in ``predictions.npz`` (the artifact `mltc compare` reads).
"""
import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mltc.app import CONF_DIR, load_dataset, run_from_config
from mltc.serving import TextClassifierModel

SMALL = ["dataset.n_docs=500", "dataset.n_labels=6"]
HAS_TORCH = importlib.util.find_spec("torch") is not None

STACK = {"_target_": "mltc.models.stack.ScoreStack", "cv": 3, "random_state": 0,
         "estimators": [{"_target_": "mltc.models.BinaryRelevance",
                         "estimator": {"_target_": "sklearn.linear_model.LogisticRegression", "C": 4.0,
                                       "solver": "liblinear"}},
                        {"_target_": "mltc.models.BinaryRelevance",
                         "estimator": {"_target_": "sklearn.svm.LinearSVC", "C": 1.0}}]}

FAMILIES = {
    "linear": ["model=logreg", "thresholds=per_label"],
    "boosted": ["model=lgbm", "model.estimator.n_estimators=20", "thresholds=global"],
    "lp": ["model=lp"],
    "cc": ["model=cc", "thresholds=rcut"],
    "rakel": ["model=rakel", "thresholds=mcut"],
    "average": ["model=svm_lgbm", "model.estimators.1.estimator.n_estimators=20", "features=tfidf_word_char"],
    "stack": ["model=logreg", "thresholds=pcut"],  # model replaced by STACK below
    "stack_folds": ["model=logreg", "thresholds=global"],  # STACK with refit=false: predicts with its fold models
    "mlp": ["model=mlp", "model.max_epochs=2", "model.hidden_layer_sizes=[16]", "thresholds=per_label_cv",
            "thresholds.n_splits=2"],
}


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _choices(overrides):
    return {k.split("=")[0]: k.split("=")[1] for k in overrides if "." not in k.split("=")[0]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('serving') / 'store.db'}"


@pytest.fixture(scope="module")
def logged(store, tmp_path_factory):
    """``{family: (run id, test texts, run's test labels, run's test scores)}`` and the fresh process's output."""
    client = MlflowClient(store)
    tmp = tmp_path_factory.mktemp("roundtrip")
    runs = {}
    for family, overrides in FAMILIES.items():
        if family == "mlp" and not HAS_TORCH:
            continue
        over = [*SMALL, *overrides, f"tracking.uri={store}", "tracking.subprocess=false", f"run_name={family}"]
        cfg = compose_cfg(over)
        if family.startswith("stack"):
            cfg.model = OmegaConf.create({**STACK, "refit": family == "stack"})
        run_from_config(cfg, choices={"dataset": "synthetic", **_choices(overrides)}, raise_errors=True)
        run = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id],
                                 filter_string=f"attributes.run_name = '{family}'")[0]
        npz = np.load(client.download_artifacts(run.info.run_id, "predictions.npz", str(tmp)))
        n_labels = int(npz["n_labels"])
        pred = np.unpackbits(npz["pred"], axis=1, count=n_labels)
        all_texts = load_dataset(cfg.dataset).texts
        texts = [all_texts[i] for i in npz["index"]]
        runs[family] = (run.info.run_id, texts, pred, npz["scores"])
    request = tmp / "request.json"
    request.write_text(json.dumps({f: [r[0], r[1]] for f, r in runs.items()}))
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np, pandas as pd, mlflow
        mlflow.set_tracking_uri({store!r})
        out = {{}}
        for family, (run_id, texts) in json.load(open({str(request)!r})).items():
            model = mlflow.pyfunc.load_model(f"runs:/{{run_id}}/model")
            frame = model.predict(pd.DataFrame({{"text": texts}}))
            out[family] = {{"labels": frame["labels"].tolist(),
                           "scores": frame[[c for c in frame.columns if c.startswith("score.")]].to_numpy().tolist()}}
        json.dump(out, sys.stdout)
    """)
    # a fresh interpreter: nothing of this process (fitted objects, imported classes) helps it
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **_env()})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runs, json.loads(proc.stdout), client


def _env():
    import os
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_round_trip_gives_the_runs_test_predictions(logged, family):
    runs, loaded, client = logged
    if family not in runs:
        pytest.skip("torch is not installed")
    run_id, texts, pred, scores = runs[family]
    names = client.get_run(run_id).data.params  # noqa: F841 -- the run exists with its params
    got = loaded[family]
    label_names = [f"synthetic_label_{j:02d}" for j in range(pred.shape[1])]
    expected = [[label_names[j] for j in np.flatnonzero(row)] for row in pred]
    assert got["labels"] == expected
    # predictions.npz stores scores as float32: the loaded model's float64 scores round to them exactly
    np.testing.assert_array_equal(np.asarray(got["scores"]).astype(np.float32), scores)
    assert pred.sum() > 0  # the comparison is not between two empty label sets


def test_logged_model_has_signature_example_and_pinned_requirements(logged, tmp_path):
    runs, _, client = logged
    run_id = runs["boosted"][0]
    run = client.get_run(run_id)
    model_id = run.outputs.model_outputs[0].model_id
    lm = client.get_logged_model(model_id)
    assert lm.name == "model" and lm.source_run_id == run_id
    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(client.tracking_uri)
    info = Model.load(f"runs:/{run_id}/model")
    assert [c.name for c in info.signature.inputs.inputs] == ["text"]
    outs = [c.name for c in info.signature.outputs.inputs]
    assert outs[0] == "labels" and outs[1:] == [f"score.synthetic_label_{j:02d}" for j in range(6)]
    assert info.saved_input_example_info["type"] == "dataframe"
    reqs = mlflow.pyfunc.get_model_dependencies(f"runs:/{run_id}/model")
    text = open(reqs).read()
    for pkg in ("mltc==", "scikit-learn==", "lightgbm==", "numpy=="):
        assert pkg in text, text


def test_text_classifier_model_matches_pipeline_parts():
    """The plain object from a RunResult predicts what the run's pieces predict, without MLflow."""
    from mltc.app import run_config

    cfg = compose_cfg([*SMALL, "tracking=none", "thresholds=global"])
    dataset, result = run_config(cfg)
    clf = TextClassifierModel.from_result(result)
    idx = result.extra["test_index"]
    texts = [dataset.texts[i] for i in idx]
    np.testing.assert_array_equal(clf.predict_matrix(texts), result.extra["test_pred"])
    np.testing.assert_array_equal(clf.predict_scores(texts), result.extra["test_scores"])
    labels = clf.predict(texts)
    assert all(set(ls) <= set(dataset.label_names) for ls in labels)
    # a blank text gets no label even when the rule would give one (the scores are still returned)
    clf.thresholds.thresholds_ = np.full(dataset.n_labels, -1.0)  # every label passes
    assert clf.predict(["", "  ", texts[0]])[:2] == [[], []]
    assert len(clf.predict(["", texts[0]])[1]) == dataset.n_labels
    with pytest.raises(TypeError, match="not text"):
        clf.predict(["ok", 3])
    with pytest.raises(TypeError, match="one string"):
        clf.predict("a single string")


def test_batch_dependent_rule_is_flagged():
    from mltc.serving.refit import OutOfFoldRule
    from mltc.thresholds import PCut, RCut

    assert TextClassifierModel(None, None, PCut(), ["a"]).batch_dependent
    assert not TextClassifierModel(None, None, RCut(), ["a"]).batch_dependent
    rule = OutOfFoldRule(PCut()).fit(np.array([[0.2], [0.9]]), np.array([[0], [1]]))
    assert TextClassifierModel(None, None, rule, ["a"]).batch_dependent


def test_a_component_pickle_cannot_save_gives_a_clear_error(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    from mltc.serving import NotLoggableError

    clf = TextClassifierModel(FunctionTransformer(lambda x: x), None, None, ["a"])
    with pytest.raises(NotLoggableError, match="cannot be pickled"):
        clf.save(tmp_path / "m.pkl")
    assert not (tmp_path / "m.pkl").exists()


def test_saved_model_lists_the_packages_it_needs(tmp_path):
    from lightgbm import LGBMClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mltc.models.boosting import BoostedBinaryRelevance
    from mltc.thresholds import FixedThreshold

    texts = ["red blue", "blue green", "green gold", "gold red"] * 5
    Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5)
    feat = TfidfVectorizer().fit(texts)
    model = BoostedBinaryRelevance(LGBMClassifier(n_estimators=2, verbose=-1, min_child_samples=1)).fit(
        feat.transform(texts), Y)
    rule = FixedThreshold().fit(np.zeros((0, 2)), np.zeros((0, 2)))
    saved = TextClassifierModel(feat, model, rule, ["x", "y"]).save(tmp_path / "m.pkl")
    assert {"sklearn", "lightgbm", "mltc", "numpy"} <= set(saved["packages"])
    back = TextClassifierModel.load(tmp_path / "m.pkl")
    np.testing.assert_array_equal(back.predict_scores(texts[:4]),
                                  model.predict_proba(feat.transform(texts[:4])))


def test_saving_slims_every_vectorizer_and_keeps_its_columns(tmp_path):
    # NumPy-integer vocabularies turned into ints (and stop_words_ dropped, in scikit-learn versions that keep it),
    # inside TextUnion and TitleOnly too (before, the walk stopped at TextUnion: its clones were pickled whole); the
    # loaded featurizer gives the same matrix
    import pickle

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from mltc.features.union import TextUnion, TitleOnly
    from mltc.models import BinaryRelevance
    from mltc.thresholds import FixedThreshold

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, 12)) + "\n" + " ".join(rng.choice(words, 30)) for _ in range(200)]
    Y = (rng.random((200, 3)) < 0.3).astype(np.int8)
    union = TextUnion([TfidfVectorizer(ngram_range=(1, 2), max_features=500),
                       TitleOnly(TfidfVectorizer(max_features=100))], names=["body", "title"])
    X = union.fit_transform(texts)
    whole = len(pickle.dumps(union, protocol=pickle.HIGHEST_PROTOCOL))
    fitted = [*union.vectorizers_[:1], union.vectorizers_[1].vectorizer_]
    assert all(isinstance(next(iter(v.vocabulary_.values())), np.integer) for v in fitted)
    clf = TextClassifierModel(union, BinaryRelevance(LogisticRegression()).fit(X, Y), FixedThreshold(), list("abc"))
    clf.save(tmp_path / "m.pkl")
    loaded = TextClassifierModel.load(tmp_path / "m.pkl")
    for v in [*loaded.featurizer.vectorizers_[:1], loaded.featurizer.vectorizers_[1].vectorizer_]:
        assert getattr(v, "stop_words_", None) is None and all(type(j) is int for j in v.vocabulary_.values())
    assert (loaded.featurizer.transform(texts) != union.transform(texts)).nnz == 0
    np.testing.assert_array_equal(loaded.predict_scores(texts[:20]), clf.predict_scores(texts[:20]))
    assert len(pickle.dumps(loaded.featurizer, protocol=pickle.HIGHEST_PROTOCOL)) < 0.8 * whole
