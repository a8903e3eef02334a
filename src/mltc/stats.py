"""Honest uncertainty for comparisons: paired bootstrap on test documents, Friedman + Nemenyi across blocks.

References
----------
Efron, B. & Tibshirani, R. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
Berg-Kirkpatrick, T., Burkett, D. & Klein, D. (2012). An empirical investigation of statistical
significance in NLP. *EMNLP*.
Demšar, J. (2006). Statistical comparisons of classifiers over multiple data sets. *JMLR* 7, 1-30.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils import check_random_state

from mltc.metrics import f1_from_tp_fp_fn

__all__ = ["f1_from_counts", "doc_counts", "paired_bootstrap", "BootstrapDraws", "friedman_nemenyi", "nemenyi_cd",
           "plot_cd_diagram"]

METRICS = ("micro_f1", "macro_f1")


def doc_counts(Y_true, Y_pred):
    """Per-document, per-label true positives, false positives and false negatives, each (n, L)."""
    Y_true = np.asarray(Y_true).astype(bool)
    Y_pred = np.asarray(Y_pred).astype(bool)
    return ((Y_true & Y_pred).astype(np.int32), (~Y_true & Y_pred).astype(np.int32),
            (Y_true & ~Y_pred).astype(np.int32))


def f1_from_counts(tp, fp, fn, metric: str):
    """Micro- or macro-F1 from summed counts (last axis: labels); F1 = 0 where a label has no support
    and no prediction, as scikit-learn's ``zero_division=0``."""
    tp, fp, fn = (np.asarray(a, dtype=float) for a in (tp, fp, fn))
    if metric == "micro_f1":
        tp, fp, fn = tp.sum(-1), fp.sum(-1), fn.sum(-1)
    elif metric != "macro_f1":
        raise ValueError(f"metric={metric!r} is not supported by the bootstrap; use one of {', '.join(METRICS)}.")
    f1 = f1_from_tp_fp_fn(tp, fp, fn)
    return f1 if metric == "micro_f1" else f1.mean(-1)


class BootstrapDraws:
    """Bootstrap resamples drawn once and shared by every comparison on the same test documents.

    With an integer ``random_state`` the draws for a sequence of block sizes are always the same,
    so comparing many configurations (and two metrics) against one reference reuses them
    instead of drawing again: the same numbers, a fraction of the time.
    """

    def __init__(self, n_boot=1000, random_state=0):
        self.n_boot = n_boot
        self.random_state = random_state
        self._cache = {}

    def weights(self, sizes) -> list:
        """Per block, an (n_boot, n) array: how often each document is drawn in each replicate."""
        sizes = tuple(int(n) for n in sizes)
        if sizes not in self._cache:
            rng = check_random_state(self.random_state)
            out = []
            for n in sizes:
                out.append(_draw_counts(rng, n, self.n_boot))
            if not isinstance(self.random_state, (int, np.integer)):
                return out  # an unseeded (or shared) generator draws anew each time
            self._cache[sizes] = out
        return self._cache[sizes]


def _draw_counts(rng, n, n_boot, max_entries=2**24):
    """(n_boot, n): how often each of ``n`` documents is drawn in ``n`` draws with replacement, per replicate.

    The same distribution as ``rng.multinomial(n, [1/n] * n, n_boot)``, about twice as fast:
    uniform indices counted with ``bincount``, a few replicates at a time to bound memory.
    """
    W = np.empty((n_boot, n), dtype=np.uint16 if n < 2**16 else np.uint32)
    step = max(1, max_entries // max(n, 1))
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        idx = rng.randint(0, n, size=(k, n)).astype(np.int64)
        idx += (np.arange(k, dtype=np.int64) * n)[:, None]
        W[start:start + k] = np.bincount(idx.ravel(), minlength=k * n).reshape(k, n)
    return W


def _replicate_counts(W, counts):
    """``W @ c`` for each count matrix, as one BLAS product (exact: integer sums below 2**24 in float32)."""
    C = np.hstack(counts)
    dtype = np.float32 if W.shape[1] < 2**24 else np.float64
    R = W.astype(dtype) @ C.astype(dtype)
    return np.split(R, len(counts), axis=1)


def paired_bootstrap(blocks, *, metric="macro_f1", n_boot=1000, alpha=0.05, random_state=None, draws=None) -> dict:
    """Confidence interval for ``metric(A) - metric(B)`` by resampling test documents.

    Documents are resampled with replacement, the same draw for A and B (paired), within each
    block (e.g. one block per seed, each with its own test set); the statistic is the mean over
    blocks of the per-block difference.

    Parameters
    ----------
    blocks : list of (Y_true, pred_a, pred_b)
        Binary (n_docs, n_labels) arrays per block.
    metric : {"macro_f1", "micro_f1"}
    n_boot : int
        Bootstrap replicates.
    alpha : float
        1 - confidence level of the percentile interval.
    random_state : int, RandomState or None
    draws : BootstrapDraws, optional
        Shared draws (their ``n_boot`` and ``random_state`` replace the arguments); the same
        numbers as without them.

    Returns
    -------
    dict
        ``delta`` (observed difference), ``lo``, ``hi`` (percentile interval) and ``p``
        (two-sided bootstrap p-value: twice the share of replicates on the other side of 0).
    """
    if draws is None:
        draws = BootstrapDraws(n_boot, random_state)
    n_boot = draws.n_boot
    weights = draws.weights(len(Y) for Y, _, _ in blocks)
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not supported by the bootstrap; use one of {', '.join(METRICS)}.")
    observed, reps = [], []
    for (Y, A, B), W in zip(blocks, weights):
        ca, cb = doc_counts(Y, A), doc_counts(Y, B)
        observed.append(f1_from_counts(*(c.sum(0) for c in ca), metric)
                        - f1_from_counts(*(c.sum(0) for c in cb), metric))
        # W's rows: how often each document is drawn in one replicate
        R = _replicate_counts(W, [*ca, *cb])
        reps.append(f1_from_counts(*R[:3], metric) - f1_from_counts(*R[3:], metric))
    delta = float(np.mean(observed))
    boot = np.mean(reps, axis=0)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0)))
    return {"delta": delta, "lo": float(lo), "hi": float(hi), "p": float(p), "n_boot": int(n_boot)}


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks for ``k`` methods on ``n_blocks`` blocks (Demšar 2006):
    ``q_alpha * sqrt(k (k + 1) / (6 N))`` with ``q_alpha`` the studentized range quantile over sqrt(2)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def friedman_nemenyi(table: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Friedman test over a (blocks x methods) table of scores (higher is better), with Nemenyi's CD.

    Returns
    -------
    dict
        ``statistic``, ``p`` (Friedman chi-square), ``ranks`` (average rank per method, 1 = best),
        ``cd`` (critical difference), ``n_blocks``, ``k``.
    """
    table = table.dropna()
    k, n = table.shape[1], table.shape[0]
    if k < 3 or n < 2:
        raise ValueError(f"a Friedman test needs at least 3 methods and 2 blocks (data sets or seeds) with a score "
                         f"for every method; got {k} methods and {n} complete blocks.")
    stat, p = stats.friedmanchisquare(*(table[c].to_numpy() for c in table.columns))
    ranks = table.rank(axis=1, ascending=False).mean(axis=0).sort_values()
    return {"statistic": float(stat), "p": float(p), "ranks": ranks, "cd": nemenyi_cd(k, n, alpha),
            "n_blocks": n, "k": k, "alpha": alpha}


def plot_cd_diagram(ranks: pd.Series, cd: float, path, title: str = "") -> None:
    """Critical-difference diagram: methods on an average-rank axis (1 = best, left); methods whose ranks
    differ by less than CD are joined by a red bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = ranks.sort_values()
    k = len(ranks)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * k))
    ax.set_xlim(0.6, k + 2.5)  # room on the right for the names
    ax.set_ylim(-(k + 1), 1.6)
    ax.hlines(0, 1, k, color="black")
    for r in range(1, k + 1):
        ax.vlines(r, -0.1, 0.1, color="black")
        ax.text(r, 0.25, str(r), ha="center", fontsize=8)
    for i, (name, r) in enumerate(ranks.items()):
        y = -(i + 1)
        ax.plot([r, r, k + 0.1], [0, y, y], color="tab:blue", lw=0.8)
        ax.text(k + 0.15, y, f"{name} ({r:.2f})", va="center", ha="left", fontsize=8)
    # groups not significantly different: maximal runs of methods within CD of each other
    vals = ranks.to_numpy()
    bars = []
    for i in range(k):
        j = max(j for j in range(i, k) if vals[j] - vals[i] <= cd)
        if j > i and not any(a <= i and j <= b for a, b in bars):
            bars.append((i, j))
    for n, (i, j) in enumerate(bars):
        ax.hlines(-0.3 - 0.15 * n, vals[i] - 0.03, vals[j] + 0.03, color="tab:red", lw=3)
    ax.hlines(1.1, 1, 1 + cd, color="black", lw=2)
    ax.text(1 + cd / 2, 1.25, f"CD = {cd:.2f}", ha="center", fontsize=8)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
