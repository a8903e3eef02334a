"""Multi-label metrics, per-label reports and head/medium/tail breakdowns.

Everything uses ``zero_division=0``. Score-based metrics (PR-AUC, ROC-AUC) are
computed from the model's continuous scores, not from thresholded predictions.

All metrics come from one pass of NumPy counting (true positives, false positives
and false negatives per label and per document) instead of one scikit-learn call per
metric and label: a run evaluates test and validation sets, and scikit-learn's
per-call input validation cost more than the arithmetic. The definitions are
scikit-learn's (tests check every value against :mod:`sklearn.metrics`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["label_groups", "evaluate", "per_label_report", "average_precision", "roc_auc", "AVAILABLE_METRICS"]

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


def _div(num, den):
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _prf(tp, fp, fn):
    p, r = _div(tp, tp + fp), _div(tp, tp + fn)
    return p, r, _div(2 * tp, 2 * tp + fp + fn)


def average_precision(y_true, y_score) -> float:
    """Average precision of one binary column, as :func:`sklearn.metrics.average_precision_score`.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds in decreasing order
    (no interpolation). NaN when ``y_true`` has no positive.
    """
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    order = np.argsort(y_score, kind="mergesort")[::-1]
    s, y = y_score[order], y_true[order] > 0
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last]
    if tps.size == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (last + 1.0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def roc_auc(Y_true, scores) -> np.ndarray:
    """ROC-AUC of each column (Mann-Whitney U / (n_pos n_neg), ties counted one half).

    Equal to :func:`sklearn.metrics.roc_auc_score` per label; NaN for a column with
    only one class.
    """
    from scipy.stats import rankdata

    Y = np.asarray(Y_true) > 0
    ranks = rankdata(np.asarray(scores, dtype=float), axis=0)
    n_pos = Y.sum(axis=0).astype(float)
    n_neg = Y.shape[0] - n_pos
    u = (ranks * Y).sum(axis=0) - n_pos * (n_pos + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def per_label_report(Y_true, Y_pred, scores=None, label_names=None, train_counts=None, groups=None):
    """Per-label precision, recall, F1, support (and AP where scores are given) as a DataFrame."""
    import pandas as pd

    Y_true = np.asarray(Y_true) > 0
    Y_pred = np.asarray(Y_pred) > 0
    L = Y_true.shape[1]
    tp = (Y_true & Y_pred).sum(axis=0)
    n_pred = Y_pred.sum(axis=0)
    support = Y_true.sum(axis=0)
    p, r, f = _prf(tp, n_pred - tp, support - tp)
    df = pd.DataFrame({
        "label": list(label_names) if label_names is not None else [str(i) for i in range(L)],
        "precision": p, "recall": r, "f1": f, "support": support, "n_predicted": n_pred,
    })
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        df["average_precision"] = [average_precision(Y_true[:, j], scores[:, j]) if support[j] else np.nan
                                   for j in range(L)]
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
    Yt = np.asarray(Y_true) > 0
    Yp = np.asarray(Y_pred) > 0
    if Yt.shape != Yp.shape:
        raise ValueError(f"Y_true has shape {Yt.shape} but predictions have {Yp.shape}.")
    both = Yt & Yp
    # per label (axis 0) and per document (axis 1) counts: every metric below is arithmetic on these
    tp_l, t_l, p_l = both.sum(axis=0), Yt.sum(axis=0), Yp.sum(axis=0)
    tp_d, t_d, p_d = both.sum(axis=1), Yt.sum(axis=1), Yp.sum(axis=1)
    fp_l, fn_l = p_l - tp_l, t_l - tp_l
    out: dict[str, float] = {}
    pl, rl, fl = _prf(tp_l, fp_l, fn_l)
    pd_, rd, fd = _prf(tp_d, p_d - tp_d, t_d - tp_d)
    pm, rm, fm = _prf(tp_l.sum(), fp_l.sum(), fn_l.sum())
    w = _div(t_l, t_l.sum())
    for avg, (p, r, f) in {"micro": (pm, rm, fm), "macro": (pl.mean(), rl.mean(), fl.mean()),
                           "weighted": ((pl * w).sum(), (rl * w).sum(), (fl * w).sum()),
                           "samples": (pd_.mean(), rd.mean(), fd.mean())}.items():
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(p), float(r), float(f)
    out["hamming_loss"] = float((Yt != Yp).mean())
    out["subset_accuracy"] = float((Yt == Yp).all(axis=1).mean())
    out["jaccard_samples"] = float(_div(tp_d, t_d + p_d - tp_d).mean())
    out["jaccard_macro"] = float(_div(tp_l, t_l + p_l - tp_l).mean())
    report = per_label_report(Yt, Yp, scores, label_names, train_counts)
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        present = t_l > 0
        out["micro_pr_auc"] = average_precision(Yt, scores)
        # labels without test positives have no defined AP/AUC; average over the rest
        out["macro_pr_auc"] = float(report["average_precision"].to_numpy()[present].mean()) if present.any() else 0.0
        auc = roc_auc(Yt, scores)
        out["macro_roc_auc"] = float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")
    if train_counts is not None:
        groups = label_groups(train_counts, head_min=head_min, tail_max=tail_max)
        report["group"] = groups
        for g in ("head", "medium", "tail"):
            idx = np.flatnonzero(groups == g)
            out[f"{g}_n_labels"] = float(idx.size)
            if idx.size == 0:
                continue
            out[f"{g}_micro_f1"] = float(_prf(tp_l[idx].sum(), fp_l[idx].sum(), fn_l[idx].sum())[2])
            out[f"{g}_macro_f1"] = float(fl[idx].mean())
    return out, report
