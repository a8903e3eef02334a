"""GoEmotions: TF-IDF vs MiniLM vs TF-IDF+MiniLM features (logistic regression), or MiniLM fine-tuned
(``--features finetune``), all with per-label thresholds tuned on dev.

The official dev and test splits are kept whole; ``--train-size`` takes a seeded
random subset of the official training split (the same one for every featurizer),
so CPU-only machines can compare within minutes once the embeddings are cached.
Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_text_goemotions.py --data /work/shared/data/goemotions --train-size 6000

Embeddings go to the cache ($MLTC_CACHE_DIR/embeddings), so a second run only fits.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from mltc.data.base import Dataset
from mltc.data.goemotions import load_goemotions
from mltc.features.sentence import RawText, SentenceEncoder, make_tfidf_minilm
from mltc.features import make_tfidf
from mltc.models import BinaryRelevance
from mltc.pipeline import run_pipeline
from mltc.thresholds import PerLabelThreshold


class _Official:
    def split(self, dataset):
        return dataset.splits


def subset(ds: Dataset, n_train: int | None, seed: int) -> Dataset:
    tr = ds.splits["train"]
    if n_train is not None and n_train < len(tr):
        tr = np.sort(np.random.default_rng(seed).choice(tr, size=n_train, replace=False))
    keep = np.concatenate([tr, ds.splits["val"], ds.splits["test"]])
    pos = {"train": np.arange(len(tr))}
    pos["val"] = len(tr) + np.arange(len(ds.splits["val"]))
    pos["test"] = len(tr) + len(ds.splits["val"]) + np.arange(len(ds.splits["test"]))
    return Dataset(name=ds.name, texts=[ds.texts[i] for i in keep], Y=ds.Y[keep], label_names=ds.label_names,
                   splits=pos, description=f"{ds.description} (train subset {len(tr)})")


def featurizers(which):
    tfidf = dict(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200000, strip_accents="unicode")
    out = {"tfidf": lambda: make_tfidf(**tfidf),
           "minilm": lambda: SentenceEncoder(device="auto"),
           "tfidf+minilm": lambda: make_tfidf_minilm(tfidf=make_tfidf(**tfidf), encoder=SentenceEncoder()),
           "finetune": RawText}
    return {k: out[k] for k in which}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/goemotions"))
    ap.add_argument("--train-size", type=int, default=None, help="random subset of the official train split")
    ap.add_argument("--features", nargs="+", default=["tfidf", "minilm", "tfidf+minilm"])
    ap.add_argument("--C", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1, help="finetune: epochs")
    ap.add_argument("--finetune-samples", type=int, default=2000, help="finetune: training texts used")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ds = subset(load_goemotions(data_dir=args.data, download=False), args.train_size, args.seed)
    print(f"{ds.description}: train {len(ds.splits['train'])}, dev {len(ds.splits['val'])}, "
          f"test {len(ds.splits['test'])}")
    for name, make in featurizers(args.features).items():
        t0 = time.perf_counter()
        # C per feature type is not tuned here: same C for all, per-label thresholds tuned on dev
        if name == "finetune":
            from mltc.models.finetune import FineTunedEncoder
            model = FineTunedEncoder(epochs=args.epochs, max_train_samples=args.finetune_samples,
                                     random_state=args.seed)
        else:
            model = BinaryRelevance(LogisticRegression(C=args.C, solver="liblinear", max_iter=1000))
        res = run_pipeline(ds, splitter=_Official(), featurizer=make(), model=model,
                           thresholder=PerLabelThreshold(), random_state=args.seed)
        wall = time.perf_counter() - t0
        m = res.metrics
        t = ", ".join(f"{k} {v:.0f}s" for k, v in res.timings.items() if v >= 1)
        print(f"features={name:13s} macro_f1 {m['macro_f1']:.4f} micro_f1 {m['micro_f1']:.4f} "
              f"tail_macro_f1 {m.get('tail_macro_f1', float('nan')):.4f} macro_pr_auc {m['macro_pr_auc']:.4f} "
              f"| wall {wall:.0f}s ({t})", flush=True)


if __name__ == "__main__":
    main()
