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

__all__ = ["label_groups", "evaluate", "per_label_report", "average_precision", "roc_auc", "AVAILABLE_METRICS",
           "REGISTRY", "resolve_metrics", "jaccard_samples", "macro_pr_f1", "precision_at_k", "recall_at_k",
           "r_precision_at_k", "ndcg_at_k"]

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


def f1_from_tp_fp_fn(tp, fp, fn):
    """Elementwise F1 = 2 tp / (2 tp + fp + fn) from counts; 0 where a label has no support and no prediction.

    The one definition of F1 from counts: metrics, threshold search and the bootstrap all use it.
    """
    tp, fp, fn = (np.asarray(a, dtype=float) for a in (tp, fp, fn))
    return _div(2 * tp, 2 * tp + fp + fn)


def _prf(tp, fp, fn):
    p, r = _div(tp, tp + fp), _div(tp, tp + fn)
    return p, r, f1_from_tp_fp_fn(tp, fp, fn)


def average_precision(y_true, y_score) -> float:
    """Average precision of one binary column, as :func:`sklearn.metrics.average_precision_score`.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds in decreasing order
    (no interpolation). NaN when ``y_true`` has no positive.
    """
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    # micro AP ranks every cell (1M documents x 500 labels: 100M scores): each temporary below is
    # dropped as soon as it is used, so that at most ~3 of these n-long arrays live at once
    order = np.argsort(y_score, kind="mergesort")[::-1]
    y = y_true[order] > 0
    s = y_score[order]
    del order
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each distinct score
    del s
    tps = np.cumsum(y)
    del y
    tps = tps[last]
    if tps.size == 0 or tps[-1] == 0:
        return float("nan")
    last += 1
    precision = tps / last.astype(float)
    del last
    recall = tps / tps[-1]
    del tps
    gain = np.diff(recall, prepend=0.0)
    del recall
    gain *= precision
    return float(np.sum(gain))


_AUC_BLOCK_CELLS = 1 << 22  # scores ranked at once by roc_auc (32 MB of float64)


def roc_auc(Y_true, scores) -> np.ndarray:
    """ROC-AUC of each column (Mann-Whitney U / (n_pos n_neg), ties counted one half).

    Equal to :func:`sklearn.metrics.roc_auc_score` per label; NaN for a column with
    only one class.
    """
    from scipy.stats import rankdata

    Y = np.asarray(Y_true) > 0
    scores = np.asarray(scores, dtype=float)
    n_pos = Y.sum(axis=0).astype(float)
    n_neg = Y.shape[0] - n_pos
    out = np.full(Y.shape[1], np.nan)
    # rank only the columns with both classes (thousands of labels: most have no test positive)
    cols = np.flatnonzero((n_pos > 0) & (n_neg > 0))
    # a block of columns at a time: ranking all at once holds several (n, L) float64 copies
    # (1M documents x 500 labels: ~4 GB); the rank sums are exact (half-integers), so the
    # blocks give the same numbers
    block = max(1, _AUC_BLOCK_CELLS // max(1, Y.shape[0]))
    for start in range(0, cols.size, block):
        c = cols[start:start + block]
        ranks = rankdata(scores[:, c], axis=0)
        u = (ranks * Y[:, c]).sum(axis=0) - n_pos[c] * (n_pos[c] + 1) / 2
        out[c] = u / (n_pos[c] * n_neg[c])
    return out


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


def _count_metrics(Yt, Yp):
    """The scalar metrics of boolean gold and predicted matrices, and the per-label counts."""
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
    return out, (tp_l, fp_l, fn_l, t_l, fl)


def evaluate(Y_true, Y_pred, scores=None, *, train_counts=None, head_min=None, tail_max=None,
             label_names=None, extra=None):
    """Compute all metrics.

    ``extra`` is ``{name: metric}`` from :func:`resolve_metrics`: user-selected metrics
    added to the scalars under their names.

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
    out, (tp_l, fp_l, fn_l, t_l, fl) = _count_metrics(Yt, Yp)
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
    for name, metric in (extra or {}).items():
        out[name] = metric(Yt, Yp, scores)
    return out, report


# --------------------------------------------------------------------------- user-selectable extras
# ``metrics.extra=[...]`` names metrics from this registry (never arbitrary code). Each
# function takes (Y_true, Y_pred) or (Y_true, scores) and keyword parameters.

def jaccard_samples(Y_true, Y_pred, *, zero_division=0.0) -> float:
    """Mean over documents of |gold & predicted| / |gold | predicted|.

    ``zero_division`` is a document's score when both sets are empty (scikit-learn's
    ``jaccard_score(average="samples", zero_division=...)``): 1 counts an empty gold set
    predicted as empty as a perfect answer, as several shared tasks do.
    """
    Yt, Yp = np.asarray(Y_true) > 0, np.asarray(Y_pred) > 0
    inter, union = (Yt & Yp).sum(axis=1), (Yt | Yp).sum(axis=1)
    per_doc = np.where(union > 0, inter / np.maximum(union, 1), float(zero_division))
    return float(per_doc.mean()) if per_doc.size else 0.0


def macro_pr_f1(Y_true, Y_pred) -> float:
    """Harmonic mean of macro precision and macro recall (LibMultiLabel's ``Another-Macro-F1``).

    Not the mean of per-label F1 (``macro_f1``); see Opitz & Burst (2019). Labels with no
    prediction (no support) count 0 in the precision (recall) mean.
    """
    Yt, Yp = np.asarray(Y_true) > 0, np.asarray(Y_pred) > 0
    tp = (Yt & Yp).sum(axis=0)
    p, r = _div(tp, Yp.sum(axis=0)).mean(), _div(tp, Yt.sum(axis=0)).mean()
    return float(2 * p * r / (p + r)) if p + r > 0 else 0.0


def _top_k(scores, k):
    """Indices of each row's ``k`` highest scores, highest first (ties: lower column first)."""
    S = np.asarray(scores, dtype=float)
    if not 1 <= k <= S.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the number of labels ({S.shape[1]}).")
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def precision_at_k(Y_true, scores, *, k=1) -> float:
    """P@k: share of each document's ``k`` top-scored labels that are gold, averaged over documents."""
    hits = np.take_along_axis(np.asarray(Y_true) > 0, _top_k(scores, k), axis=1)
    return float(hits.sum(axis=1).mean() / k)


def recall_at_k(Y_true, scores, *, k=1) -> float:
    """R@k: share of each document's gold labels among its ``k`` top-scored, 0 for a document without gold."""
    Yt = np.asarray(Y_true) > 0
    hits = np.take_along_axis(Yt, _top_k(scores, k), axis=1).sum(axis=1)
    return float(_div(hits, Yt.sum(axis=1)).mean())


def r_precision_at_k(Y_true, scores, *, k=1) -> float:
    """RP@k: hits in the top ``k`` over min(k, number of gold labels); 0 for a document without gold."""
    Yt = np.asarray(Y_true) > 0
    hits = np.take_along_axis(Yt, _top_k(scores, k), axis=1).sum(axis=1)
    return float(_div(hits, np.minimum(k, Yt.sum(axis=1))).mean())


def ndcg_at_k(Y_true, scores, *, k=1) -> float:
    """nDCG@k with binary gains: sum over the top ``k`` of gain / log2(rank + 1), over the ideal
    ordering's value; 0 for a document without gold (as scikit-learn's ``ndcg_score``)."""
    Yt = np.asarray(Y_true) > 0
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (np.take_along_axis(Yt, _top_k(scores, k), axis=1) * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(Yt.sum(axis=1), k) - 1] * (Yt.sum(axis=1) > 0)
    return float(_div(dcg, ideal).mean())


class _Extra:
    """One registered metric bound to its parameters; called as ``metric(Y_true, Y_pred, scores)``."""

    def __init__(self, name, fn, uses, params):
        self.name, self.fn, self.uses, self.params = name, fn, uses, params

    def __call__(self, Y_true, Y_pred, scores=None) -> float:
        if self.uses == "scores":
            if scores is None:
                return float("nan")
            return self.fn(Y_true, scores, **self.params)
        return self.fn(Y_true, Y_pred, **self.params)

    def __repr__(self):
        return f"{self.name}"


#: name -> (function, what it reads: "pred" or "scores", {parameter: default}).
REGISTRY = {
    "jaccard_samples": (jaccard_samples, "pred", {"zero_division": 0.0}),
    "macro_pr_f1": (macro_pr_f1, "pred", {}),
    "p_at_k": (precision_at_k, "scores", {"k": 1}),
    "r_at_k": (recall_at_k, "scores", {"k": 1}),
    "rp_at_k": (r_precision_at_k, "scores", {"k": 1}),
    "ndcg_at_k": (ndcg_at_k, "scores", {"k": 1}),
}
# LibMultiLabel's names (``P@5``, ``nDCG@3``, ``Another-Macro-F1``) and short forms (``p_at_5``)
_AT_K = {"p": "p_at_k", "r": "r_at_k", "rp": "rp_at_k", "ndcg": "ndcg_at_k"}
_ALIASES = {"another-macro-f1": "macro_pr_f1", "jaccard_samples_zd1": ("jaccard_samples", {"zero_division": 1.0})}


def _spec_name(base, params, defaults):
    if base.endswith("_at_k"):
        return f"{base[:-1]}{int(params['k'])}"
    changed = {k: v for k, v in params.items() if v != defaults[k]}
    if not changed:
        return base
    short = {"zero_division": "zd"}
    return base + "".join(f"_{short.get(k, k)}{v:g}" if isinstance(v, (int, float)) else f"_{k}{v}"
                          for k, v in sorted(changed.items()))


def _parse_spec(spec, key="metrics.extra"):
    """``(registry name, params, alias)`` of one ``metrics.extra`` entry."""
    import re

    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name", None)
        alias = spec.pop("as", None)
        if name is None:
            raise ValueError(f"{key} entry {spec} has no 'name'; e.g. {{name: jaccard_samples, "
                             "zero_division: 1}.")
        base, params = str(name), spec
    else:
        base, params, alias = str(spec), {}, None
    m = re.fullmatch(r"(?i)(p|r|rp|ndcg)(?:@|_at_)(\d+)", base)
    if m:
        return _AT_K[m.group(1).lower()], {**params, "k": int(m.group(2))}, alias
    hit = _ALIASES.get(base.lower())
    if isinstance(hit, tuple):
        return hit[0], {**hit[1], **params}, alias
    return (hit or base), params, alias


def resolve_metrics(specs, *, key: str = "metrics.extra") -> dict:
    """Turn ``metrics.extra`` entries into ``{logged name: metric}``.

    Parameters
    ----------
    specs : list of str or dict
        Registry names (``jaccard_samples``, ``macro_pr_f1``), ranking metrics as
        LibMultiLabel writes them (``P@1``, ``R@5``, ``RP@3``, ``nDCG@5``; or ``p_at_1``),
        the preset ``jaccard_samples_zd1``, or a dict with ``name``, parameters and an
        optional ``as`` (the logged name): ``{name: jaccard_samples, zero_division: 1}``.

    Returns
    -------
    dict
        Each value is called as ``metric(Y_true, Y_pred, scores)`` and has ``uses``
        (``"pred"`` or ``"scores"``). Names are MLflow-safe (``P@5`` is logged as ``p_at_5``).
    """
    import difflib

    out = {}
    for spec in specs or []:
        base, params, alias = _parse_spec(spec, key)
        if base not in REGISTRY:
            if base in AVAILABLE_METRICS:
                continue  # always computed
            known = sorted(REGISTRY) + ["P@k", "R@k", "RP@k", "nDCG@k", "jaccard_samples_zd1"]
            near = difflib.get_close_matches(base, known, n=1)
            raise ValueError(f"{key}: unknown metric {base!r}"
                             + (f" (did you mean {near[0]!r}?)" if near else "")
                             + f"; choose from {', '.join(known)} (or the built-in {', '.join(AVAILABLE_METRICS)}).")
        fn, uses, defaults = REGISTRY[base]
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ValueError(f"{key}: {base} has no parameter {', '.join(unknown)}; its parameters: "
                             f"{', '.join(defaults) or 'none'}.")
        params = {**defaults, **params}
        name = alias or _spec_name(base, params, defaults)
        out[name] = _Extra(name, fn, uses, params)
    return out


def decision_metric(name: str, extra: dict | None = None):
    """A ``metric(Y_true, Y_pred)`` callable for threshold tuning, or None for a score-only metric.

    ``name`` is a built-in thresholded metric (``macro_f1``, ``jaccard_samples``, ...) or a
    name in ``extra`` (from :func:`resolve_metrics`).
    """
    if extra and name in extra:
        m = extra[name]
        return None if m.uses == "scores" else (lambda Y, P: m(Y, P))
    if name in AVAILABLE_METRICS and not name.endswith(("pr_auc", "roc_auc")):
        sign = -1.0 if name == "hamming_loss" else 1.0  # tuned by maximising
        return lambda Y, P: sign * _count_metrics(np.asarray(Y) > 0, np.asarray(P) > 0)[0][name]
    return None


#: metrics a threshold can be tuned for (``thresholds=global thresholds.metric=...``)
THRESHOLD_METRICS = tuple(m for m in AVAILABLE_METRICS if not m.endswith(("pr_auc", "roc_auc"))) + (
    "jaccard_samples_zd1", "macro_pr_f1", "Another-Macro-F1")


def threshold_metric(name: str):
    """``metric(Y_true, Y_pred)`` to maximise when tuning a threshold for ``name``.

    ``name`` is a built-in thresholded metric or a ``metrics.extra`` entry
    (``jaccard_samples_zd1``, ``macro_pr_f1``, ...). Raises ValueError for unknown and
    score-only metrics (P@k, nDCG@k, PR-AUC: no threshold changes them).
    """
    try:
        extra = resolve_metrics([name], key="thresholds.metric")
    except ValueError:
        extra = None
        if name not in AVAILABLE_METRICS:
            raise
    fn = decision_metric(next(iter(extra)) if extra else name, extra)
    if fn is None:
        raise ValueError(f"{name!r} is computed from scores, not from thresholded predictions: no threshold "
                         "changes it. Tune thresholds for a thresholded metric (macro_f1, micro_f1, samples_f1, "
                         "jaccard_samples_zd1, macro_pr_f1, ...).")
    return fn
