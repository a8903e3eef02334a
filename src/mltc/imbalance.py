"""Imbalance measures for multi-label data (Charte et al.).

IRLbl(l) = max_l' c_l' / c_l, MeanIR = mean IRLbl, MaxIR = max IRLbl,
CVIR = sample s.d. of IRLbl / MeanIR, SCUMBLE_i = 1 - geometric mean / arithmetic
mean of the IRLbl of instance i's labels, SCUMBLE = mean SCUMBLE_i.

A label with no positives has an undefined IRLbl (division by zero). It is
reported as ``inf`` in :func:`irlbl` and left out of MeanIR, MaxIR, CVIR and
SCUMBLE, which are computed over the labels that occur (as mldr does).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["label_counts", "irlbl", "mean_ir", "scumble_per_instance", "scumble", "imbalance_profile",
           "minority_labels"]


def _dense(Y) -> np.ndarray:
    return np.asarray(Y.toarray() if sp.issparse(Y) else Y)


def label_counts(Y) -> np.ndarray:
    """Number of positive instances per label."""
    if sp.issparse(Y):
        return np.asarray(Y.sum(axis=0)).ravel().astype(np.int64)
    return np.asarray(Y).sum(axis=0).astype(np.int64)


def irlbl(Y=None, *, counts=None) -> np.ndarray:
    """Imbalance ratio per label; ``inf`` for labels with no positives."""
    c = label_counts(Y) if counts is None else np.asarray(counts, dtype=np.int64)
    out = np.full(c.shape, np.inf)
    present = c > 0
    if present.any():
        out[present] = c.max() / c[present]
    return out


def mean_ir(Y=None, *, counts=None) -> float:
    """Mean IRLbl over the labels that occur."""
    ir = irlbl(Y, counts=counts)
    ir = ir[np.isfinite(ir)]
    return float(ir.mean()) if ir.size else float("nan")


def minority_labels(Y=None, *, counts=None) -> np.ndarray:
    """Indices of labels with IRLbl > MeanIR (labels that never occur are excluded)."""
    ir = irlbl(Y, counts=counts)
    return np.flatnonzero(np.isfinite(ir) & (ir > mean_ir(counts=label_counts(Y) if counts is None else counts)))


def scumble_per_instance(Y, *, ir=None) -> np.ndarray:
    """SCUMBLE of each instance (0 for an empty label set)."""
    Yd = _dense(Y).astype(bool)
    ir = irlbl(Yd) if ir is None else np.asarray(ir, dtype=float)
    return _scumble_rows(*np.nonzero(Yd), Yd.shape[0], ir)


def _scumble_rows(rows, cols, n, ir) -> np.ndarray:
    """SCUMBLE of each of ``n`` instances from the (row, column) positions of their labels (row-major order)."""
    ir = np.where(np.isfinite(ir), ir, 0.0)
    n_lab = np.bincount(rows, minlength=n)
    # sums over each document's labels only: no (n, L) float temporaries (4,000 labels: 480 MB each);
    # bincount adds in row-major order, as a CSR product would
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ir = np.where(ir > 0, np.log(np.where(ir > 0, ir, 1.0)), 0.0)
        gmean = np.exp(np.bincount(rows, weights=log_ir[cols], minlength=n) / np.maximum(n_lab, 1))
        amean = np.bincount(rows, weights=ir[cols], minlength=n) / np.maximum(n_lab, 1)
        out = np.where(n_lab > 0, 1.0 - gmean / np.where(amean > 0, amean, 1.0), 0.0)
    return out


def scumble(Y, *, ir=None) -> float:
    """Mean SCUMBLE over instances."""
    s = scumble_per_instance(Y, ir=ir)
    return float(s.mean()) if s.size else 0.0


def imbalance_profile(Y, label_names=None) -> dict:
    """All imbalance measures of a label matrix.

    Returns
    -------
    dict
        Scalars (n_instances, n_labels, cardinality, density, n_labelsets,
        mean_ir, max_ir, cvir, scumble) and per-label lists under ``per_label``.
    """
    Yd = _dense(Y).astype(np.int8, copy=False)
    n, L = Yd.shape
    if Yd.size and Yd.min() >= 0 and Yd.max() <= 1:
        # 0/1 labels (always, in practice): everything from the positions of the ones, one pass over
        # the matrix instead of several full-size casts and sums (4,000 labels: seconds per call)
        B = Yd.view(bool)
        rows, cols = np.nonzero(B)
        counts = np.bincount(cols, minlength=L).astype(np.int64)
        card = np.bincount(rows, minlength=n)
    else:
        B = Yd.astype(bool)
        rows, cols = np.nonzero(B)
        counts = label_counts(Yd)
        card = Yd.sum(axis=1)
    ir = irlbl(counts=counts)
    fin = ir[np.isfinite(ir)]
    mir = float(fin.mean()) if fin.size else float("nan")
    cvir = float(fin.std(ddof=1) / mir) if fin.size > 1 else 0.0
    n_sets = len({row.tobytes() for row in np.packbits(B, axis=1)}) if n else 0
    s = _scumble_rows(rows, cols, n, ir)
    names = list(label_names) if label_names is not None else [str(i) for i in range(L)]
    return {
        "n_instances": int(n),
        "n_labels": int(L),
        "n_labels_absent": int((counts == 0).sum()),
        "cardinality": float(card.mean()) if n else 0.0,
        "density": float(card.mean() / L) if n and L else 0.0,
        "n_labelsets": int(n_sets),
        "n_empty": int((card == 0).sum()),
        "mean_ir": mir,
        "max_ir": float(fin.max()) if fin.size else float("nan"),
        "cvir": cvir,
        "scumble": float(s.mean()) if s.size else 0.0,
        "per_label": {"label": names, "count": counts.tolist(),
                      "irlbl": [float(x) if np.isfinite(x) else None for x in ir]},
    }
