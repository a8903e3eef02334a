"""Multi-label metrics, per-label reports and head/medium/tail breakdowns.

Everything uses ``zero_division=0``. Score-based metrics (PR-AUC, ROC-AUC) are
computed from the model's continuous scores, not from thresholded predictions.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn import metrics as skm

__all__ = ["label_groups", "evaluate", "per_label_report", "AVAILABLE_METRICS"]

AVAILABLE_METRICS = (
    "micro_f1", "macro_f1", "weighted_f1", "samples_f1",
    "micro_precision", "macro_precision", "micro_recall", "macro_recall",
    "weighted_precision", "weighted_recall", "samples_precision", "samples_recall",
    "hamming_loss", "subset_accuracy", "jaccard_samples", "jaccard_macro",
    "micro_pr_auc", "macro_pr_auc", "macro_roc_auc",
)


def label_groups(train_counts, *, head_min=None, tail_max=None) -> np.ndarray:
    """Assign each label to ``head``, ``medium`` or ``tail`` by training frequency.

    Parameters
    ----------
    train_counts : array of shape (n_labels,)
        Positive count of each label in the training data.
    head_min : int, optional
        Labels with at least this many training examples are head. Default:
        the upper tertile of the counts.
    tail_max : int, optional
        Labels with at most this many training examples are tail (checked after
        head). Default: the lower tertile of the counts.
    """
    c = np.asarray(train_counts)
    if head_min is None:
        head_min = float(np.quantile(c, 2 / 3)) if c.size else 0
    if tail_max is None:
        tail_max = float(np.quantile(c, 1 / 3)) if c.size else 0
    if tail_max > head_min:
        raise ValueError(f"metrics.groups: tail_max ({tail_max}) must not exceed head_min ({head_min}).")
    out = np.full(c.shape, "medium", dtype=object)
    out[c <= tail_max] = "tail"
    out[c >= head_min] = "head"
    return out


def per_label_report(Y_true, Y_pred, scores=None, label_names=None, train_counts=None, groups=None):
    """Per-label precision, recall, F1, support (and AP where scores are given) as a DataFrame."""
    p, r, f, s = skm.precision_recall_fscore_support(Y_true, Y_pred, average=None, zero_division=0)
    L = Y_true.shape[1]
    df = pd.DataFrame({
        "label": list(label_names) if label_names is not None else [str(i) for i in range(L)],
        "precision": p, "recall": r, "f1": f, "support": s,
        "n_predicted": np.asarray(Y_pred).sum(axis=0),
    })
    if scores is not None:
        ap = np.full(L, np.nan)
        for j in range(L):
            if Y_true[:, j].any():
                ap[j] = skm.average_precision_score(Y_true[:, j], scores[:, j])
        df["average_precision"] = ap
    if train_counts is not None:
        df["train_count"] = np.asarray(train_counts)
    if groups is not None:
        df["group"] = groups
    return df


def evaluate(Y_true, Y_pred, scores=None, *, train_counts=None, head_min=None, tail_max=None,
             label_names=None):
    """Compute all metrics.

    Returns
    -------
    scalars : dict[str, float]
    report : pandas.DataFrame
        The per-label report (see :func:`per_label_report`).
    """
    Y_true = np.asarray(Y_true).astype(np.int8)
    Y_pred = np.asarray(Y_pred).astype(np.int8)
    if Y_true.shape != Y_pred.shape:
        raise ValueError(f"Y_true has shape {Y_true.shape} but predictions have {Y_pred.shape}.")
    out: dict[str, float] = {}
    for avg in ("micro", "macro", "weighted", "samples"):
        p, r, f, _ = skm.precision_recall_fscore_support(Y_true, Y_pred, average=avg, zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(p), float(r), float(f)
    out["hamming_loss"] = float(skm.hamming_loss(Y_true, Y_pred))
    out["subset_accuracy"] = float(skm.accuracy_score(Y_true, Y_pred))
    out["jaccard_samples"] = float(skm.jaccard_score(Y_true, Y_pred, average="samples", zero_division=0))
    out["jaccard_macro"] = float(skm.jaccard_score(Y_true, Y_pred, average="macro", zero_division=0))
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        present = Y_true.any(axis=0)
        out["micro_pr_auc"] = float(skm.average_precision_score(Y_true, scores, average="micro"))
        # labels without test positives have no defined AP/AUC; average over the rest
        out["macro_pr_auc"] = float(skm.average_precision_score(Y_true[:, present], scores[:, present],
                                                                average="macro")) if present.any() else 0.0
        defined = present & (~Y_true.all(axis=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["macro_roc_auc"] = float(skm.roc_auc_score(Y_true[:, defined], scores[:, defined],
                                                           average="macro")) if defined.any() else float("nan")
    groups = None
    if train_counts is not None:
        groups = label_groups(train_counts, head_min=head_min, tail_max=tail_max)
        for g in ("head", "medium", "tail"):
            idx = np.flatnonzero(groups == g)
            out[f"{g}_n_labels"] = float(idx.size)
            if idx.size == 0:
                continue
            for avg in ("micro", "macro"):
                out[f"{g}_{avg}_f1"] = float(skm.f1_score(Y_true[:, idx], Y_pred[:, idx], average=avg,
                                                          zero_division=0))
    report = per_label_report(Y_true, Y_pred, scores, label_names, train_counts, groups)
    return out, report
