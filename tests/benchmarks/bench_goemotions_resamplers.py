"""Each sampler on GoEmotions: TF-IDF + one logistic regression per label, threshold 0.5.

Run as a script (not collected by pytest)::

    PYTHONPATH=src python tests/benchmarks/bench_goemotions_resamplers.py [--data /work/shared/data/goemotions]

Prints, per sampler, the imbalance profile of the training labels before and after
resampling (rows, MeanIR, SCUMBLE), the time it took, and macro/micro F1 and tail-group
F1 on the official test set.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier

from mltc.data.goemotions import load_goemotions
from mltc.imbalance import imbalance_profile
from mltc.strategies.chain import SamplerChain
from mltc.strategies.mlenn import MLeNN
from mltc.strategies.mlsmote import MLSMOTE
from mltc.strategies.mlsol import MLSOL
from mltc.strategies.remedial import REMEDIAL
from mltc.strategies.ros_rus import LPROS, LPRUS, MLROS, MLRUS

SEED = 42
SAMPLERS = {
    "none": None,
    "ml_ros": MLROS(random_state=SEED),
    "ml_rus": MLRUS(random_state=SEED),
    "lp_ros": LPROS(random_state=SEED),
    "lp_rus": LPRUS(random_state=SEED),
    "mlsmote": MLSMOTE(random_state=SEED),
    "remedial": REMEDIAL(),
    "mlsol": MLSOL(random_state=SEED),
    "mlenn": MLeNN(),
    "remedial_mlsmote": SamplerChain(steps=[REMEDIAL(), MLSMOTE(random_state=SEED)]),
}


def main(argv=None):
    default = os.environ.get("MLTC_SHARED_DATA", str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(default) / "goemotions"))
    ap.add_argument("--only", nargs="*", help="sampler names to run (default: all)")
    args = ap.parse_args(argv)
    ds = load_goemotions(args.data, download=False)
    tr, te = ds.splits["train"], ds.splits["test"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
    X_tr = vec.fit_transform([ds.texts[i] for i in tr])
    X_te = vec.transform([ds.texts[i] for i in te])
    Y_tr, Y_te = ds.Y[tr], ds.Y[te]
    counts = Y_tr.sum(axis=0)
    tail = counts <= np.quantile(counts, 1 / 3)  # the rarest third of the labels
    print(f"GoEmotions train {X_tr.shape}, test {X_te.shape}; tail labels: "
          f"{[ds.label_names[j] for j in np.flatnonzero(tail)]}")
    p0 = imbalance_profile(Y_tr)
    print(f"{'strategy':<18}{'rows':>8}{'MeanIR':>9}{'SCUMBLE':>9}   {'time s':>7}{'macroF1':>9}{'microF1':>9}"
          f"{'tailF1':>9}")
    for name, sampler in SAMPLERS.items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        X, Y = (X_tr, Y_tr) if sampler is None else sampler.fit_resample(X_tr, Y_tr)
        dt = time.perf_counter() - t
        p = imbalance_profile(Y)
        clf = OneVsRestClassifier(LogisticRegression(max_iter=1000, C=4.0), n_jobs=1)
        # a label with no positives left (cannot happen with these samplers) would break the fit
        clf.fit(X, Y)
        pred = (clf.predict_proba(X_te) >= 0.5).astype(np.int8)
        macro = f1_score(Y_te, pred, average="macro", zero_division=0)
        micro = f1_score(Y_te, pred, average="micro", zero_division=0)
        tail_f1 = f1_score(Y_te[:, tail], pred[:, tail], average="macro", zero_division=0)
        print(f"{name:<18}{p['n_instances']:>8}{p['mean_ir']:>9.2f}{p['scumble']:>9.4f}   {dt:>7.1f}"
              f"{macro:>9.4f}{micro:>9.4f}{tail_f1:>9.4f}", flush=True)
    print(f"(before resampling: {p0['n_instances']} rows, MeanIR {p0['mean_ir']:.2f}, SCUMBLE {p0['scumble']:.4f})")


if __name__ == "__main__":
    main()
