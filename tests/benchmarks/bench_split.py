"""Split time at thousands of labels: mltc's iterative stratification against iterstrat's.

The issue-20 command ``mltc run dataset=synthetic dataset.n_docs=15000 dataset.n_labels=4000`` spent
141 s in the split. This times the same two carves (test 20 %, then validation 10 % of all
documents from the rest) on the same label matrix with ``iterstrat.MultilabelStratifiedShuffleSplit``
(what mltc used before) and with :func:`mltc.split.iterative_split` (exact sizes, and
``exact=False``, which must give iterstrat's rows), and compares the quality:
the requested sizes, labels present in the data but absent from test, and the mean absolute
difference of each label's share between train and test. Times are wall clock and the process's CPU
time (the CPU time is the figure to compare on a shared, loaded machine).

Run as a script (not collected by pytest)::

    nice -n 10 python tests/benchmarks/bench_split.py --n-docs 15000 --n-labels 4000
    python tests/benchmarks/bench_split.py --n-docs 15000 --n-labels 4000 --skip-iterstrat
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from mltc.data import make_synthetic
from mltc.split import iterative_split


def iterstrat_split(Y, size, seed):
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = Y.shape[0]
    frac = size if isinstance(size, float) else size / n
    rest, held = next(MultilabelStratifiedShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
                      .split(np.zeros((n, 1)), Y))
    return np.sort(rest), np.sort(held)


def carve(split, Y, seed):
    """Test (20 %), then validation (10 % of all) from the rest, as DatasetSplitter does."""
    t, c = time.perf_counter(), time.process_time()
    rest, test = split(Y, 0.2, seed)
    t_test, c_test = time.perf_counter() - t, time.process_time() - c
    print(f"  {getattr(split, '__name__', split)}: test carve {t_test:.2f} s wall, {c_test:.2f} s CPU", flush=True)
    t, c = time.perf_counter(), time.process_time()
    size = int(round(0.1 * Y.shape[0]))
    r2, v2 = split(Y[rest], size, seed)
    t_val, c_val = time.perf_counter() - t, time.process_time() - c
    print(f"  {getattr(split, '__name__', split)}: val carve {t_val:.2f} s wall, {c_val:.2f} s CPU", flush=True)
    return rest[r2], rest[v2], test, t_test, t_val


def quality(Y, train, val, test):
    present = Y.sum(0) > 0
    share = lambda idx: Y[idx].mean(0)  # noqa: E731
    return {"n_train": len(train), "n_val": len(val), "n_test": len(test),
            "labels_missing_in_test": int((present & (Y[test].sum(0) == 0)).sum()),
            "labels_missing_in_val": int((present & (Y[val].sum(0) == 0)).sum()),
            "mean_abs_share_diff_train_test": float(np.abs(share(train) - share(test)).mean()),
            "mean_abs_share_diff_train_val": float(np.abs(share(train) - share(val)).mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-docs", type=int, default=15000)
    ap.add_argument("--n-labels", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip-iterstrat", action="store_true")
    args = ap.parse_args()
    ds = make_synthetic(n_docs=args.n_docs, n_labels=args.n_labels, random_state=args.seed)
    Y = ds.Y
    print(f"synthetic: {Y.shape[0]} documents, {Y.shape[1]} labels ({int((Y.sum(0) > 0).sum())} present), "
          f"{int(Y.sum())} label occurrences, seed {args.seed}")
    rows = {}

    def mltc_iterstrat_sizes(Y, size, seed):
        return iterative_split(Y, size, seed, exact=False)

    for name, fn in (("mltc", iterative_split), ("mltc_exact_sizes_false", mltc_iterstrat_sizes),
                     ("iterstrat", iterstrat_split)):
        if name == "iterstrat" and args.skip_iterstrat:
            continue
        train, val, test, t_test, t_val = carve(fn, Y, args.seed)
        rows[name] = (train, val, test)
        q = quality(Y, train, val, test)
        print(f"{name:9s}  test carve {t_test:7.2f} s  val carve {t_val:7.2f} s  " +
              "  ".join(f"{k}={v:.5f}" if isinstance(v, float) else f"{k}={v}" for k, v in q.items()))
    if "iterstrat" in rows:
        ref = rows["iterstrat"]
        for name in ("mltc", "mltc_exact_sizes_false"):
            same = all(np.array_equal(a, b) for a, b in zip(rows[name], ref))
            print(f"{name} vs iterstrat: identical train/val/test: {same}; test rows in common: "
                  f"{len(np.intersect1d(rows[name][2], ref[2]))} of {len(ref[2])}")


if __name__ == "__main__":
    main()
