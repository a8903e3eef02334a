"""Embedding speed and cache behaviour of features=minilm on GoEmotions (all splits).

Run as a script (not collected by pytest)::

    python tests/benchmarks/bench_text_embed.py --data /work/shared/data/goemotions [--limit N]

First pass embeds every text not yet in the cache (docs/s on this machine); the second
pass, as the next job of a sweep would, must be all cache hits.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from mltc.features.sentence import SentenceEncoder


def _texts(folder: Path) -> list:
    out = []
    for part in ("train", "dev", "test"):
        for line in (folder / f"{part}.tsv").read_text(encoding="utf-8").splitlines():
            out.append(line.split("\t")[0])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/goemotions"))
    ap.add_argument("--limit", type=int, default=None, help="first N texts only")
    ap.add_argument("--cache-dir", default=None, help="default: $MLTC_CACHE_DIR/embeddings")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    texts = _texts(args.data)[: args.limit]
    for attempt in ("first pass", "second pass (a later sweep job)"):
        enc = SentenceEncoder(cache_dir=args.cache_dir, device=args.device)
        t0 = time.perf_counter()
        enc.fit()
        enc._load()
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        X = enc.transform(texts)
        dt = time.perf_counter() - t0
        s = enc.cache_stats_
        print(f"{attempt}: {len(texts)} texts ({len(set(texts))} distinct), shape {X.shape}, model load {t_load:.1f}s, "
              f"transform {dt:.1f}s, cache hits {s['hits']}, embedded {s['misses']}, "
              f"embedding speed {s['docs_per_second']:.1f} docs/s")


if __name__ == "__main__":
    main()
