"""Reuters-21578 (Huang et al. protocol): stacking vs the weighted mean of the same six members.

The members are reuters_huang_svm_word_char_lgbm_xgb_minilm_title's (word / char SVMs, per-label LightGBM
and XGBoost, logistic regression on MiniLM, title SVM). Every training document gets out-of-fold member
scores (5 multi-label stratified folds, seed 42: what ScoreStack computes); validation and test documents
are scored by members fitted on all training documents. Two combiners of those scores:

- ``mean``: the overlay's weighted mean (16 / 16 / 1 / 1 / 1 / 4) of log-odds;
- ``stack``: ScoreStack's LightGBM meta-learner on mltc.models.stack.stack_features.

Each is judged three ways, with two threshold rules (one global threshold; per label, shrinkage 30;
both with at_least_one):

1. ``train CV`` (the selection criterion): 6,770 training documents. The stack's scores are cross-fitted
   (meta-learner trained on 4/5 of the documents' out-of-fold rows, scoring the other 1/5), and the
   thresholds are tuned on 4/5 and applied to the other 1/5 (other folds);
2. ``val oof``: the 1,000 validation documents, thresholds tuned on 4/5 and applied to the other 1/5;
3. ``test``: thresholds tuned on all of validation (what ``mltc run experiment=reuters_huang_stacked``
   reports). Printed, never read by a choice.

Run (2 shared cores; the out-of-fold fits take ~27 min of one core, --n-jobs 2 halves it; member scores
and out-of-fold scores are kept in --cache-dir)::

    MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_reuters_stack.py --cache-dir /tmp/rcache
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).parent))
from bench_reuters_micro import KEYS, Bench, boosters, lr, minilm_view, svm, title_view

from mltc.metrics import evaluate
from mltc.models.stack import _logit_scores, default_meta, stack_features
from mltc.thresholds import GlobalThreshold, PerLabelThreshold, oof_scores

SEED = 42


def members():
    bo = boosters(SEED)
    return [("svm word C=2", "word", svm(2.0), 16.0), ("svm char C=4", "char", svm(4.0), 16.0),
            ("lgbm", "word", bo["lgbm"], 1.0), ("xgb", "word", bo["xgb"], 1.0),
            ("lr minilm C=100", "minilm_mean", lr(100.0), 1.0), ("svm title C=2", "title", svm(2.0), 4.0)]


def rules():
    return [("global", GlobalThreshold(metric="micro_f1", at_least_one=True)),
            ("per_label 30", PerLabelThreshold(shrinkage=30.0, fallback="global", at_least_one=True))]


def oof_judge(S, Y, rule, counts, seed=0):
    """Metrics of ``rule`` tuned on 4/5 of the documents and applied to the other 1/5, pooled."""
    pred = np.zeros_like(Y)
    for fit, held in KFold(5, shuffle=True, random_state=seed).split(Y):
        pred[held] = clone(rule).fit(S[fit], Y[fit], score_kind="margin", Y_train=counts[1]).predict(S[held])
    return evaluate(Y, pred, S, train_counts=counts[0], head_min=35, tail_max=8)[0]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=None, help="keep member and out-of-fold scores here (npz)")
    ap.add_argument("--n-jobs", type=int, default=1, help="folds fitted in parallel")
    args = ap.parse_args(argv)
    b = Bench(None, args.cache_dir)
    minilm_view(b)
    title_view(b)
    spec = members()
    oof, va, te = [], [], []
    for name, view, model, _ in spec:
        S_va, S_te = b.member(name, view, model)
        va.append(S_va)
        te.append(S_te)
        disk = Path(args.cache_dir) / f"oof_{name.replace(' ', '_')}.npz" if args.cache_dir else None
        if disk is not None and disk.is_file():
            oof.append(np.load(disk)["tr"])
            continue
        t = time.perf_counter()
        oof.append(oof_scores(model, b.X[view]["tr"], b.Y["tr"], n_splits=5, random_state=SEED,
                              score_fn=_logit_scores, n_jobs=args.n_jobs))
        print(f"out-of-fold {name}: {time.perf_counter() - t:.0f} s", flush=True)
        if disk is not None:
            np.savez(disk, tr=oof[-1])
    w = np.array([s[3] for s in spec])
    w = w / w.sum()
    M = {"tr": np.stack(oof, -1), "va": np.stack(va, -1), "te": np.stack(te, -1)}
    Ytr, L = b.Y["tr"], b.Y["tr"].shape[1]
    flat = M["tr"].reshape(-1, M["tr"].shape[-1])
    center, spread, prior = flat.mean(0), flat.std(0), np.log1p(Ytr.sum(0).astype(float))
    F = {k: stack_features(v, w, center, spread, prior) for k, v in M.items()}

    def meta_scores(fit_rows, rows):
        m = default_meta(SEED).fit(fit_rows[0], fit_rows[1])
        return m.predict_proba(rows, raw_score=True).reshape(-1, L)

    t = time.perf_counter()
    cross = np.zeros(Ytr.shape)
    Ftr = F["tr"].reshape(len(Ytr), L, -1)
    for fit, held in KFold(5, shuffle=True, random_state=7).split(Ytr):
        cross[held] = meta_scores((Ftr[fit].reshape(-1, Ftr.shape[-1]), Ytr[fit].reshape(-1)),
                                  Ftr[held].reshape(-1, Ftr.shape[-1]))
    meta = default_meta(SEED).fit(F["tr"], Ytr.reshape(-1))
    print(f"meta-learner: 6 cross-fitted fits {time.perf_counter() - t:.0f} s", flush=True)
    scores = {"mean": {k: v @ w for k, v in M.items()},
              "stack": {"tr": cross, **{k: meta.predict_proba(F[k], raw_score=True).reshape(-1, L)
                                        for k in ("va", "te")}}}
    counts = (b.counts, Ytr)
    print("\n| combiner | rule | train CV micro | train CV macro | val oof micro | test micro | test macro | head | "
          "medium | tail |\n|---|---|---|---|---|---|---|---|---|---|")
    for cname, S in scores.items():
        for rname, rule in rules():
            mc = oof_judge(S["tr"], Ytr, rule, counts)
            mv = oof_judge(S["va"], b.Y["va"], rule, counts)
            r = clone(rule).fit(S["va"], b.Y["va"], score_kind="margin", Y_train=Ytr)
            mt = evaluate(b.Y["te"], r.predict(S["te"]), S["te"], train_counts=b.counts, head_min=35, tail_max=8)[0]
            print(f"| {cname} | {rname} | {100 * mc['micro_f1']:.2f} | {100 * mc['macro_f1']:.2f} | "
                  f"{100 * mv['micro_f1']:.2f} | " + " | ".join(f"{100 * mt[k]:.2f}" for k in KEYS) + " |", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("MLTC_DATA_DIR", "/work/shared/data")
    main(sys.argv[1:])
