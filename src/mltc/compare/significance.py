"""Statistics on the board: paired bootstrap against a reference, a bootstrap CI per score, Friedman/Nemenyi.

The tests themselves are in :mod:`mltc.stats`; this module pairs the runs (same data set and seed: the same
test documents) and reads their per-document predictions (``predictions.npz``).
"""
from __future__ import annotations

import logging
import tempfile

import numpy as np
import pandas as pd

from mltc.compare.runs import CompareError, label, local_artifact

log = logging.getLogger("mltc")

__all__ = ["significance", "score_intervals", "friedman", "friedman_text", "sig_parts", "TEST_NAME"]

TEST_NAME = "paired bootstrap over test documents, two-sided"


def read_predictions(client, run_id, cache: dict, artifact_uri=None):
    """A run's ``predictions.npz`` as ``{"index", "true", "pred"}`` (None when the run has none), cached.

    Read in place when the artifact store is a local directory (no copy, no progress bar).
    """
    if run_id not in cache:
        try:
            path = local_artifact(artifact_uri, "predictions.npz")
            if path is not None and path.is_file():
                cache[run_id] = _unpack(path)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    cache[run_id] = _unpack(client.download_artifacts(run_id, "predictions.npz", tmp))
        except Exception:  # noqa: BLE001 -- an older run without predictions: reported, not fatal
            cache[run_id] = None
    return cache[run_id]


def _unpack(path):
    with np.load(path) as z:
        L = int(z["n_labels"])
        return {"index": z["index"], "true": np.unpackbits(z["true"], axis=1, count=L),
                "pred": np.unpackbits(z["pred"], axis=1, count=L)}


def _by_block(df):
    out = df.set_index(["dataset", "seed"])
    return out[~out.index.duplicated(keep="last")]


def _pick_reference(means: pd.Series, reference):
    if reference is None:
        return means.index[0]
    if reference in means.index:
        return reference
    hits = [c for c in means.index if reference in c]
    if len(hits) != 1:
        raise CompareError(f"--baseline {reference!r} matches {len(hits)} configurations; give one of: "
                           + "; ".join(means.index))
    return hits[0]


def significance(client, df, cols, metric, reference=None, n_boot=1000, random_state=0, cache=None,
                 rank_by=None):
    """Paired bootstrap of ``metric`` for every configuration against ``reference``, per data set.

    The reference is the best configuration of each data set by ``rank_by`` (a column of ``df``, e.g.
    ``val_macro_f1``; default ``metric``), or ``reference``. Runs are paired by data set and seed (same split,
    same test documents); the interval is for the seed-averaged difference ``config - reference``.
    """
    from mltc.stats import BootstrapDraws, paired_bootstrap

    cache = {} if cache is None else cache
    draws = cache.setdefault(("draws", n_boot, random_state), BootstrapDraws(n_boot, random_state))
    rank_by = rank_by if rank_by in df else metric
    df = df.assign(config=label(df, cols))
    rows = []
    for _, part in df.groupby("dataset", sort=True):
        means = part.groupby("config")[rank_by].mean().sort_values(ascending=False)
        try:
            ref_conf = _pick_reference(means, reference)
        except CompareError:
            if df["dataset"].nunique() > 1 and not any(reference in c for c in means.index):
                continue  # the baseline is on another data set's board
            raise
        ref = _by_block(part[part.config == ref_conf])
        for conf in means.index:
            if conf == ref_conf:
                continue
            mine = _by_block(part[part.config == conf])
            blocks, note = [], ""
            # a fixed block order: every configuration is resampled with the same draws per test set
            for key in sorted(mine.index.intersection(ref.index)):
                a = read_predictions(client, mine.loc[key, "run_id"], cache, mine.loc[key].get("artifact_uri"))
                b = read_predictions(client, ref.loc[key, "run_id"], cache, ref.loc[key].get("artifact_uri"))
                if a is None or b is None:
                    note = "no predictions.npz"
                    continue
                if not np.array_equal(a["index"], b["index"]):
                    note = "different test documents"
                    continue
                blocks.append((a["true"], a["pred"], b["pred"]))
            row = {"config": conf, "reference": ref_conf, "metric": metric, "n_blocks": len(blocks),
                   "test": TEST_NAME}
            if blocks:
                row.update(paired_bootstrap(blocks, metric=metric, draws=draws))
            else:
                row["note"] = note or "no common seed"
            rows.append(row)
    if reference is not None and not rows and df["config"].nunique() > 1:
        _pick_reference(df.groupby("config")[rank_by].mean(), reference)  # raises with the choices
    return pd.DataFrame(rows)


def score_intervals(client, df, cols, metric, n_boot=1000, random_state=0, cache=None, alpha=0.05) -> dict:
    """``{config: (lo, hi)}``: a percentile bootstrap interval of each configuration's test ``metric``.

    Test documents are resampled (the same draws as :func:`significance`), within each seed's test set;
    the statistic is the mean over seeds. Configurations without predictions are left out.
    """
    from mltc.stats import METRICS, BootstrapDraws, paired_bootstrap

    if metric not in METRICS:
        return {}
    cache = {} if cache is None else cache
    draws = cache.setdefault(("draws", n_boot, random_state), BootstrapDraws(n_boot, random_state))
    df = df.assign(config=label(df, cols))
    out = {}
    for conf, part in df.groupby("config", sort=False):
        blocks = []
        for _, r in part.sort_values(["dataset", "seed"]).iterrows():
            p = read_predictions(client, r["run_id"], cache, r.get("artifact_uri"))
            if p is not None:
                # against predicting nothing, whose F1 is 0: the "difference" is the score itself
                blocks.append((p["true"], p["pred"], np.zeros_like(p["pred"])))
        if blocks and len(blocks) == len(part):
            res = paired_bootstrap(blocks, metric=metric, draws=draws, alpha=alpha)
            out[conf] = (res["lo"], res["hi"])
    return out


def friedman(df, cols, metric, alpha=0.05):
    """Friedman + Nemenyi over blocks = (data set, seed), methods = configurations; None if too few."""
    from mltc.stats import friedman_nemenyi

    method_cols = [c for c in cols if c != "dataset"] or cols
    table = df.assign(method=label(df, method_cols)).pivot_table(index=["dataset", "seed"], columns="method",
                                                                 values=metric, aggfunc="mean")
    try:
        return friedman_nemenyi(table, alpha=alpha)
    except ValueError as err:
        log.info("no Friedman test: %s", err)
        return None


def too_few_blocks(f) -> bool:
    """Whether Nemenyi's CD is wider than any difference of average ranks can be (k - 1)."""
    return f["cd"] >= f["k"] - 1


def friedman_text(f, metric="") -> str:
    what = f" of {metric}" if metric else ""
    text = (f"Friedman test{what} (chi-squared, one-sided: are the average ranks unequal?): chi2 = "
            f"{f['statistic']:.3f}, p = {f['p']:.4g} over {f['n_blocks']} blocks (data set x seed) and {f['k']} "
            f"methods; ")
    if too_few_blocks(f):
        return text + (f"Nemenyi's critical difference (alpha={f['alpha']}) would be {f['cd']:.3f} average ranks, "
                       f"wider than the largest possible difference ({f['k'] - 1}): with {f['n_blocks']} blocks no "
                       "two methods can be told apart. Add seeds (seed=1,2,3...) or data sets.")
    return text + f"Nemenyi CD (alpha={f['alpha']}, two-sided) = {f['cd']:.3f} average ranks."


def _sig_show(sig, percent=False, digits=None):
    if sig is None or sig.empty or "delta" not in sig:
        return sig
    scale = 100.0 if percent else 1.0
    d = digits if digits is not None else (2 if percent else 4)
    out = sig[["config", "reference", "metric", "n_blocks"]].copy()
    out["difference [95% CI]"] = [f"{d_ * scale:+.{d}f} [{lo * scale:+.{d}f}, {hi * scale:+.{d}f}]"
                                  if np.isfinite(d_) else "" for d_, lo, hi in zip(sig["delta"], sig["lo"], sig["hi"])]
    out["p (two-sided)"] = sig["p"].map(lambda v: f"{v:.3f}" if np.isfinite(v) else "")
    out["test"] = sig.get("test", TEST_NAME)
    if "note" in sig:
        out["note"] = sig["note"].fillna("")
    return out


def sig_parts(sig, percent=False, digits=None):
    """The bootstrap table to show, or None and a sentence saying why there is none."""
    if sig is None or sig.empty:
        return None, ""
    if "delta" not in sig or sig["n_blocks"].eq(0).all():
        notes = sorted(set(sig.get("note", pd.Series(dtype=str)).dropna()))
        return None, ("No paired bootstrap: " + "; ".join(notes or ["no common data set and seed"])
                      + " (runs made before mltc logged per-document test predictions have no predictions.npz; "
                      "rerun them with tracking.resume=false to get one).")
    return _sig_show(sig, percent, digits), ""
