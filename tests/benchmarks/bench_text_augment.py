"""Effect of each text augmentation on tail-group F1 (TF-IDF + logistic regression, per-label thresholds).

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_text_augment.py --dataset goemotions --train-size 6000
    python tests/benchmarks/bench_text_augment.py --dataset reuters --ops none eda glove

Every augmentation uses the ML-ROS budget (``--percentage`` % new documents, minority
labels only) and the same seed; the time column is the augmentation alone
(a second run reads the cache: 0 s).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from mltc.augment import EDA, BackTranslation, GloveReplacement, RandomSwap, SynonymReplacement, TextAugmenter
from mltc.features import make_tfidf
from mltc.models import BinaryRelevance
from mltc.pipeline import run_pipeline
from mltc.split import DatasetSplitter
from mltc.thresholds import PerLabelThreshold

OPS = {"none": None, "random_swap": RandomSwap, "eda": EDA, "wordnet": SynonymReplacement,
       "glove": GloveReplacement, "back_translation": BackTranslation}


def subset(ds, n_train, seed):
    """Seeded random subset of the official training split, dev and test whole (as bench_text_goemotions)."""
    from mltc.data.base import Dataset
    tr = np.sort(np.random.default_rng(seed).choice(ds.splits["train"], size=n_train, replace=False))
    va, te = ds.splits["val"], ds.splits["test"]
    keep = np.concatenate([tr, va, te])
    pos = {"train": np.arange(len(tr)), "val": len(tr) + np.arange(len(va)),
           "test": len(tr) + len(va) + np.arange(len(te))}
    return Dataset(name=ds.name, texts=[ds.texts[i] for i in keep], Y=ds.Y[keep], label_names=ds.label_names,
                   splits=pos, description=f"{ds.description} (train subset {len(tr)})")


def load(name, data_root: Path, train_size, seed):
    if name == "goemotions":
        from mltc.data.goemotions import load_goemotions
        ds = load_goemotions(data_dir=data_root / "goemotions", download=False)
    else:
        from mltc.data.reuters import load_reuters21578
        ds = load_reuters21578(data_dir=data_root / "reuters21578", download=False)
    if train_size is not None and ds.splits and train_size < len(ds.splits["train"]):
        ds = subset(ds, train_size, seed)
    return ds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["goemotions", "reuters"], default="goemotions")
    ap.add_argument("--data-root", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--ops", nargs="+", default=["none", "random_swap", "eda", "wordnet", "glove"],
                    choices=list(OPS))
    ap.add_argument("--percentage", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    ds = load(args.dataset, args.data_root, args.train_size, args.seed)
    print(f"{ds.description}: {len(ds)} documents, {ds.n_labels} labels")
    for name in args.ops:
        aug = None if OPS[name] is None else TextAugmenter(operation=OPS[name](), percentage=args.percentage,
                                                           random_state=args.seed, cache_dir=args.cache_dir)
        t0 = time.perf_counter()
        res = run_pipeline(ds, splitter=DatasetSplitter(random_state=args.seed),
                           featurizer=make_tfidf(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                                 strip_accents="unicode"),
                           model=BinaryRelevance(LogisticRegression(C=4.0, solver="liblinear", max_iter=1000)),
                           thresholder=PerLabelThreshold(), augmenter=aug, random_state=args.seed)
        m = res.metrics
        extra = "" if aug is None else (f"+{aug.n_augmented_} docs ({aug.n_unchanged_} unchanged, "
                                         f"{aug.cache_hits_} cached), augment {res.timings['augment']:.1f}s")
        print(f"augment={name:17s} macro_f1 {m['macro_f1']:.4f} tail_macro_f1 {m['tail_macro_f1']:.4f} "
              f"medium {m['medium_macro_f1']:.4f} head {m['head_macro_f1']:.4f} micro_f1 {m['micro_f1']:.4f} | "
              f"wall {time.perf_counter() - t0:.0f}s {extra}", flush=True)


if __name__ == "__main__":
    main()
