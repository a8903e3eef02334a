"""CPU speed of MiniLM fine-tuning on GoEmotions comments: training and scoring texts/s per thread count.

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_text_finetune_speed.py --data /work/shared/data/goemotions --threads 1 2

Trains ``--steps`` batches of ``--batch-size`` random training comments (length-bucketed, as
``model=finetune`` does) and scores ``--n-score`` dev comments sorted by length, for each thread
count, and prints texts/s. Use it to pick ``model.n_threads`` and a ``max_train_samples`` budget.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mltc.data.goemotions import load_goemotions
from mltc.models.finetune import FineTunedEncoder


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/goemotions"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--n-score", type=int, default=512)
    args = ap.parse_args(argv)
    ds = load_goemotions(data_dir=args.data, download=False)
    rng = np.random.default_rng(0)
    n_train = args.steps * args.batch_size
    tr = rng.choice(ds.splits["train"], size=n_train, replace=False)
    X = np.array([ds.texts[i] for i in tr], dtype=object).reshape(-1, 1)
    dev = np.array([ds.texts[i] for i in ds.splits["val"][: args.n_score]], dtype=object).reshape(-1, 1)
    for n in args.threads:
        m = FineTunedEncoder(epochs=1, batch_size=args.batch_size, max_length=args.max_length, lr=1e-4,
                             validation_fraction=0.0, n_threads=n, device="cpu", random_state=0)
        m.fit(X, ds.Y[tr])
        t = time.perf_counter()
        m.predict_proba(dev)
        score = len(dev) / (time.perf_counter() - t)
        print(f"threads={n}: training {m.history_[0]['train_texts_per_s']:.1f} texts/s "
              f"({n_train} texts, batch {args.batch_size}, max_length {args.max_length}); "
              f"scoring {score:.0f} texts/s ({len(dev)} texts, batch {m.predict_batch_size})", flush=True)


if __name__ == "__main__":
    main()
