"""Reuters (Huang protocol): how many boosting rounds reuters_huang_stacked's booster members need, by CV on training.

The stack's LightGBM and XGBoost members (per-label boosters, up to 300 trees at learning rate 0.1, early stopping
after 30 rounds without a better held-out average precision) are fitted on the stack's own 5 multi-label
stratified folds of the 6,770 training documents (seed 42, the same folds ScoreStack uses). A booster capped at
``k`` trees keeps exactly the first ``k`` trees of the uncapped one and early stopping picks the best round among
them, so every cap is scored from the one fit: each label's best round within its first ``k`` rounds (from the
booster's own held-out history), out-of-fold scores at that round. Printed per cap: the out-of-fold average
precision per label (mean over labels with a positive) and pooled over all (document, label) pairs, the
out-of-fold log-loss, and the trees grown. Test documents are never read.

Run (per fold ~45 CPU s for LightGBM, ~70 for XGBoost; --folds 1 was what the overlay's caps rest on)::

    MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_stack_rounds.py [--caps 50,100,150,200,300] [--folds 1]

Rule used for reuters_huang_stacked: the smallest cap whose OOF AP (mean over labels) is within 0.001 of the
300-tree value, pooled AP within 0.01 and log-loss not worse by more than 0.001: LightGBM 200, XGBoost 100
(fold 1, 1,353 documents; table in docs/benchmarks-speed.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.base import clone
from sklearn.metrics import average_precision_score

from mltc.app import CONF_DIR
from mltc.data.reuters import load_reuters21578
from mltc.model_selection import oof_folds
from mltc.models.stack import _seeded

SEED = 42


def _history(est, backend):
    """The booster's held-out metric per round, or None where it trained without a held-out slice."""
    if backend == "xgboost":
        try:
            res = est.evals_result()
        except Exception:  # xgboost raises when no eval_set was given (too few positives to hold out)
            return None
    else:
        res = est.evals_result_
    return next(iter(next(iter(res.values())).values())) if res else None


def best_within(history, k):
    """0-based index of the first best round among the first ``k`` (what early stopping keeps at cap ``k``)."""
    h = np.asarray(history[:k])
    return int(np.argmax(h))


def margins_at(model, X, k):
    """(n, L) margins of a fitted BoostedBinaryRelevance whose boosters are capped at ``k`` trees."""
    out = np.empty((X.shape[0], model.n_labels_))
    for j, (est, init) in enumerate(zip(model.estimators_, model.init_margins_)):
        Xj = model._columns(X, j)
        if not hasattr(est, "get_params"):  # a label constant in training
            out[:, j] = est.decision_function(Xj) * 30.0
        elif model.backend_ == "xgboost":
            hist = _history(est, "xgboost")
            it = best_within(hist, k) + 1 if hist is not None else k
            out[:, j] = est.predict(Xj, output_margin=True, base_margin=np.full(Xj.shape[0], init),
                                    iteration_range=(0, it))
        else:
            hist = _history(est, "lightgbm")
            it = best_within(hist, k) + 1 if hist is not None else k
            out[:, j] = est.predict(Xj, raw_score=True, num_iteration=it) + init
    return out


def trees_at(model, k):
    """Trees a booster capped at ``k`` grows per label (best round + patience, at most ``k``)."""
    n = []
    for est in model.estimators_:
        if not hasattr(est, "get_params"):
            n.append(0)
            continue
        hist = _history(est, model.backend_)
        if hist is None:
            n.append(k)
            continue
        best, grown = None, 0
        # replay early stopping (patience 30) on the first k rounds
        for r in range(min(k, len(hist))):
            grown = r + 1
            if best is None or hist[r] > hist[best]:
                best = r
            elif r - best >= model.early_stopping_rounds:
                break
        n.append(grown)
    return np.array(n)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caps", default="50,100,150,200,300")
    ap.add_argument("--members", default="2,3", help="indices of the overlay's members to check")
    ap.add_argument("--folds", type=int, default=5, help="stop after this many folds")
    args = ap.parse_args(argv)
    caps = [int(c) for c in args.caps.split(",")]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["tracking=none", "experiment=reuters_huang_stacked"])
    ds = load_reuters21578(os.path.join(os.environ.get("MLTC_DATA_DIR", "../shared/data"), "reuters21578"),
                           download=False)
    tr = instantiate(cfg.split, _convert_="all").split(ds)["train"]
    Y = ds.Y[tr]
    union = instantiate(cfg.features, _convert_="all")
    word = union.vectorizers[union.names.index("word")]
    X = word.fit_transform([ds.texts[i] for i in tr]).tocsr()
    model = instantiate(cfg.model, _convert_="all")
    folds = oof_folds(Y, n_splits=model.cv, random_state=SEED)
    which = [int(m) for m in args.members.split(",")]
    est, oof, grown, seen = {}, {}, {}, []
    for i in which:
        assert model.columns[i] == "word", model.columns[i]
        est[i] = _seeded(model.estimators[i], SEED)
        oof[i] = {k: np.empty(Y.shape) for k in caps}
        grown[i] = {k: 0 for k in caps}
    # fold by fold, every member, so that a table over the folds done so far is printed after each fold
    for f, (train, test) in enumerate(folds[:args.folds]):
        seen.append(test)
        for i in which:
            t, cpu = time.perf_counter(), time.process_time()
            fitted = clone(est[i]).fit(X[train], Y[train])
            for k in caps:
                oof[i][k][test] = margins_at(fitted, X[test], k)
                grown[i][k] += int(trees_at(fitted, k).sum())
            rows = np.concatenate(seen)
            print(f"\n{type(est[i].estimator).__name__}, fold {f + 1}: fit {time.perf_counter() - t:.0f} s, cpu "
                  f"{time.process_time() - cpu:.0f} s, load {os.getloadavg()[0]:.1f}; out-of-fold rows of folds "
                  f"1-{f + 1} ({rows.size} documents)", flush=True)
            print("| cap | trees grown | OOF AP, mean over labels | OOF AP, pooled | OOF log-loss |\n"
                  "|---|---|---|---|---|")
            Yf = Y[rows]
            for k in caps:
                S = oof[i][k][rows]
                ap_l = np.mean([average_precision_score(Yf[:, j], S[:, j]) for j in np.flatnonzero(Yf.sum(0) > 0)])
                ap_p = average_precision_score(Yf.ravel(), S.ravel())
                p = np.clip(1 / (1 + np.exp(-S)), 1e-12, 1 - 1e-12)
                ll = -np.mean(Yf * np.log(p) + (1 - Yf) * np.log1p(-p))
                print(f"| {k} | {grown[i][k]} | {ap_l:.4f} | {ap_p:.4f} | {ll:.4f} |", flush=True)

if __name__ == "__main__":
    os.environ.setdefault("MLTC_DATA_DIR", "/work/shared/data")
    main(sys.argv[1:])
