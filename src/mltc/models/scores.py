"""Turn any multi-label model's output into one (n_samples, n_labels) score matrix.

Nothing past :func:`predict_scores` sees per-model differences: ``predict_proba`` may
return an (n, L) array (``OneVsRestClassifier``, :class:`~mltc.models.BinaryRelevance`)
or a list of L (n, 2) arrays (``MultiOutputClassifier``, random forests on a label
matrix); ``decision_function`` gives margins.
"""
from __future__ import annotations

import numpy as np

__all__ = ["predict_scores", "score_kind"]


def score_kind(model) -> str:
    """``"proba"`` if the model gives probabilities, else ``"margin"``."""
    kind = getattr(model, "score_kind_", None)
    if kind is not None:
        return kind
    return "proba" if hasattr(model, "predict_proba") else "margin"


def _positive_column(p) -> np.ndarray:
    p = np.asarray(p)
    if p.ndim == 1:
        return p
    if p.shape[1] == 1:
        # a label constant in training: its only class is its probability-1 class
        return p[:, 0]
    return p[:, 1]


def predict_scores(model, X):
    """Positive-class scores of a fitted multi-label model.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_labels), float64
    kind : {"proba", "margin"}
    """
    kind = score_kind(model)
    if kind == "proba":
        out = model.predict_proba(X)
        if isinstance(out, list):
            out = np.column_stack([_positive_column(p) for p in out])
    elif hasattr(model, "decision_function"):
        out = model.decision_function(X)
    else:
        raise TypeError(f"{type(model).__name__} has neither predict_proba nor decision_function; "
                        "mltc needs continuous scores to tune thresholds and compute PR-AUC.")
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    return out, kind
