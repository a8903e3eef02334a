"""Every decision rule on the same model: GoEmotions (official split) and Reuters-21578 (Huang protocol).

The model is fitted once per data set (TF-IDF, sublinear, word 1-2 grams, min_df=2 + one-vs-rest
logistic regression, liblinear); every rule is then fitted on the same validation scores (or, for
``per_label_cv``, on out-of-fold training scores) and applied to the same test scores, so the
table isolates the decision rule. Reuters follows Huang et al. 2021: ModApte, 1,000 training
documents held out at random for validation.

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_thresholds.py --dataset goemotions --C 4
    python tests/benchmarks/bench_thresholds.py --dataset reuters --C 4 --at-least-one
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from mltc.features import make_tfidf
from mltc.metrics import evaluate
from mltc.models import BinaryRelevance
from mltc.models.scores import predict_scores
from mltc.model_selection import oof_scores
from mltc.split import DatasetSplitter
from mltc.thresholds import (
    FixedThreshold, GlobalThreshold, MCut, PCut, PerLabelCVThreshold, PerLabelThreshold, RCut, SCut,
)

DATA = Path(os.environ.get("MLTC_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def rules():
    return {
        "fixed (0.5)": FixedThreshold(),
        "fixed (0.3)": FixedThreshold(threshold=0.3),
        "global (micro_f1)": GlobalThreshold(),
        "global (macro_f1)": GlobalThreshold(metric="macro_f1"),
        "per_label (F1)": PerLabelThreshold(),
        "per_label (F1, global fallback)": PerLabelThreshold(fallback="global"),
        "per_label (F1, min_positives=2)": PerLabelThreshold(min_positives=2),
        "per_label (F1, shrinkage=5)": PerLabelThreshold(shrinkage=5.0),
        "per_label_cv (5 folds)": PerLabelCVThreshold(),
        "per_label_cv (5 folds, min_positives=1)": PerLabelCVThreshold(min_positives=1),
        "scut": SCut(),
        "scut (fbr=0.3)": SCut(fbr=0.3),
        "pcut": PCut(),
        "rcut (k=1)": RCut(k=1),
        "rcut (k=2)": RCut(k=2),
        "mcut": MCut(),
    }


def load(name):
    if name == "goemotions":
        from mltc.data.goemotions import load_goemotions
        ds = load_goemotions(DATA / "goemotions", download=False)
    else:
        from mltc.data.reuters import load_reuters21578
        ds = load_reuters21578(DATA / "reuters21578", download=False)
    parts = DatasetSplitter(val_size=1000, val_method="random", random_state=0).split(ds)
    return ds, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["goemotions", "reuters"], required=True)
    ap.add_argument("--C", type=float, default=4.0)
    ap.add_argument("--n-splits", type=int, default=5)
    ap.add_argument("--at-least-one", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated substrings of the rule names to run")
    ap.add_argument("--cache", default="", help="npz file: reuse the scores saved there, or save them")
    args = ap.parse_args()

    ds, parts = load(args.dataset)
    tr, va, te = parts["train"], parts["val"], parts["test"]
    texts = np.asarray(ds.texts, dtype=object)
    t0 = time.perf_counter()
    vec = make_tfidf(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    X_tr = vec.fit_transform(texts[tr])
    model = BinaryRelevance(LogisticRegression(C=args.C, solver="liblinear", max_iter=1000))
    cached = dict(np.load(args.cache)) if args.cache and Path(args.cache).exists() else {}
    if cached:
        S_va, S_te, kind = cached["S_va"], cached["S_te"], str(cached["kind"])
    else:
        fitted = clone(model).fit(X_tr, ds.Y[tr])
        S_va, kind = predict_scores(fitted, vec.transform(texts[va]))
        S_te, _ = predict_scores(fitted, vec.transform(texts[te]))
    t_fit = time.perf_counter() - t0
    S_oof = cached.get("S_oof")
    train_counts = ds.Y[tr].sum(axis=0)
    print(f"{args.dataset}: train {len(tr)}, val {len(va)}, test {len(te)}, labels {ds.n_labels}, "
          f"features {X_tr.shape[1]}, C={args.C}, at_least_one={args.at_least_one} (fit {t_fit:.0f}s)", flush=True)
    print("| rule | macro-F1 | micro-F1 | tail macro-F1 | head macro-F1 | fit s |")
    print("|---|---|---|---|---|---|")
    for name, rule in rules().items():
        if args.only and not any(o in name for o in args.only.split(",")):
            continue
        rule.set_params(at_least_one=args.at_least_one)
        t0 = time.perf_counter()
        if rule.needs_oof:
            if S_oof is None:
                S_oof = oof_scores(model, X_tr, ds.Y[tr], n_splits=args.n_splits, random_state=args.seed,
                                   score_fn=predict_scores)
            rule.fit(S_oof, ds.Y[tr], score_kind=kind, Y_train=ds.Y[tr])
        else:
            rule.fit(S_va, ds.Y[va], score_kind=kind, Y_train=ds.Y[tr])
        secs = time.perf_counter() - t0
        m, _ = evaluate(ds.Y[te], rule.predict(S_te), S_te, train_counts=train_counts)
        if args.cache:
            np.savez(args.cache, S_va=S_va, S_te=S_te, kind=kind,
                     **({} if S_oof is None else {"S_oof": S_oof}))
        print(f"| {name} | {m['macro_f1']:.4f} | {m['micro_f1']:.4f} | {m['tail_macro_f1']:.4f} | "
              f"{m['head_macro_f1']:.4f} | {secs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
