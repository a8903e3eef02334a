"""Speed and memory of the multi-label samplers, side by side with straightforward versions.

Run as a script (not collected by pytest)::

    PYTHONPATH=src python tests/benchmarks/bench_resampling.py            # full size (minutes)
    PYTHONPATH=src python tests/benchmarks/bench_resampling.py --quick    # smoke run

1. MLSMOTE on SYNTHETIC data (``mltc.data.synthetic.make_synthetic``: 200,000 documents,
   100 power-law labels), hashed uni+bigram TF-IDF with 100,000 columns, budget +25 %.
2. The same MLSMOTE against a straightforward reference (per-label neighbour search on
   densified bag rows, a Python loop per seed, as commonly copied Python versions do) and
   against the ``multismote`` package (if importable), on subsamples they can handle.
3. ML-ROS, ML-RUS and REMEDIAL at 1,000,000 documents (the 200k label matrix tiled 5 times,
   random sparse features), against straightforward versions on a subsample.

Each measurement runs in a fresh (spawned) process so that its peak resident memory
(``ru_maxrss``, data included) is its own.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

CACHE = Path("/tmp/mltc_bench_resampling")


# ------------------------------------------------------------------ data


def make_data(n_docs, n_features, seed=0):
    """Synthetic documents -> hashed uni+bigram TF-IDF (cached on disk)."""
    path = CACHE / f"synthetic_{n_docs}_{n_features}_{seed}.npz"
    if path.exists():
        z = np.load(path)
        X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        return X, z["Y"]
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    from mltc.data.synthetic import make_synthetic
    ds = make_synthetic(n_docs=n_docs, n_labels=100, random_state=seed)
    H = HashingVectorizer(ngram_range=(1, 2), n_features=n_features, alternate_sign=False,
                          norm=None).transform(ds.texts)
    X = TfidfTransformer(sublinear_tf=True).fit_transform(H).astype(np.float32).tocsr()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), Y=ds.Y)
    return X, ds.Y


def big_labels(n_docs, n_features, base=200_000, nnz_per_row=20, seed=0):
    """The ``base``-document label matrix tiled to ``n_docs`` rows, with random sparse features."""
    _, Y = make_data(base, n_features, seed)
    reps = -(-n_docs // Y.shape[0])
    Y = np.tile(Y, (reps, 1))[:n_docs]
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n_features, size=n_docs * nnz_per_row).astype(np.int32)
    data = rng.random(n_docs * nnz_per_row, dtype=np.float32)
    indptr = np.arange(0, n_docs * nnz_per_row + 1, nnz_per_row)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_docs, n_features))
    X.sum_duplicates()
    return X, Y


def subsample(X, Y, n, seed=0):
    idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=n, replace=False))
    return X[idx], Y[idx]


# ------------------------------------------------------------------ straightforward references


def naive_mlsmote(X, Y, k=5, seed=0):
    """MLSMOTE as commonly written: densified bags, sklearn kNN per label, a Python loop per seed."""
    from sklearn.neighbors import NearestNeighbors
    rng = np.random.default_rng(seed)
    counts = Y.sum(axis=0)
    present = counts > 0
    ir = np.where(present, counts.max() / np.maximum(counts, 1), 0)
    mean_ir = ir[present].mean()
    new_X, new_Y = [], []
    for lab in np.flatnonzero(present & (ir > mean_ir)):
        bag = np.flatnonzero(Y[:, lab])
        if bag.size < 2:
            continue
        Xb = X[bag].toarray()
        nn = NearestNeighbors(n_neighbors=min(k + 1, bag.size)).fit(Xb)
        neigh = nn.kneighbors(Xb, return_distance=False)[:, 1:]
        for i in range(bag.size):
            ref = neigh[i, rng.integers(neigh.shape[1])]
            diff = Xb[ref] - Xb[i]
            new_X.append(Xb[i] + rng.random(diff.shape[0]) * diff)
            votes = Y[bag[i]].astype(int) + Y[bag[neigh[i]]].sum(axis=0)
            new_Y.append((votes > (neigh.shape[1] + 1) / 2).astype(np.int8))
    if not new_X:
        return X, Y
    return sp.vstack([X, sp.csr_matrix(np.array(new_X))]).tocsr(), np.vstack([Y, np.array(new_Y)])


def naive_mlros(X, Y, percentage=25, seed=0):
    """ML-ROS recomputing IRLbl from the label matrix after every clone."""
    rng = np.random.default_rng(seed)
    counts = Y.sum(axis=0)
    present = counts > 0
    ir = np.where(present, counts.max() / np.maximum(counts, 1), 0)
    mean_ir = ir[present].mean()
    bags = {lab: np.flatnonzero(Y[:, lab]) for lab in np.flatnonzero(present & (ir > mean_ir))}
    budget = int(Y.shape[0] * percentage / 100)
    clones = []
    Ycur = Y.copy()
    while budget > 0 and bags:
        for lab in list(bags):
            if budget == 0:
                break
            row = rng.choice(bags[lab])
            clones.append(row)
            Ycur = np.vstack([Ycur, Y[row]])
            c = Ycur.sum(axis=0)
            budget -= 1
            if c.max() / c[lab] <= mean_ir:
                del bags[lab]
    idx = np.concatenate([np.arange(Y.shape[0]), np.array(clones, dtype=int)])
    return X[idx], Y[idx]


def naive_mlrus(X, Y, percentage=25, seed=0):
    """ML-RUS recomputing IRLbl from the kept rows after every deletion."""
    rng = np.random.default_rng(seed)
    counts = Y.sum(axis=0)
    present = counts > 0
    ir = np.where(present, counts.max() / np.maximum(counts, 1), np.inf)
    mean_ir = ir[present].mean()
    bags = {lab: list(np.flatnonzero(Y[:, lab])) for lab in np.flatnonzero(present & (ir < mean_ir))}
    keep = np.ones(Y.shape[0], dtype=bool)
    budget = int(Y.shape[0] * percentage / 100)
    while budget > 0 and bags:
        for lab in list(bags):
            if budget == 0:
                break
            cand = [r for r in bags[lab] if keep[r]]
            if not cand:
                del bags[lab]
                continue
            keep[rng.choice(cand)] = False
            c = Y[keep].sum(axis=0)
            budget -= 1
            if c.max() / c[lab] >= mean_ir:
                del bags[lab]
    return X[keep], Y[keep]


def naive_remedial(X, Y):
    """REMEDIAL with a Python loop over instances."""
    counts = Y.sum(axis=0)
    present = counts > 0
    ir = np.where(present, counts.max() / np.maximum(counts, 1), 0.0)
    mean_ir = ir[present].mean()
    scum = np.zeros(Y.shape[0])
    for i in range(Y.shape[0]):
        labs = np.flatnonzero(Y[i])
        if labs.size:
            v = ir[labs]
            scum[i] = 1 - np.exp(np.log(v).mean()) / v.mean()
    Y2, extra_rows, extra_Y = Y.copy(), [], []
    for i in range(Y.shape[0]):
        if scum[i] > scum.mean():
            minority = (ir > mean_ir) & (Y[i] == 1)
            Y2[i, minority] = 0
            extra_rows.append(i)
            extra_Y.append(minority.astype(np.int8))
    if not extra_rows:
        return X, Y2
    return sp.vstack([X, X[extra_rows]]).tocsr(), np.vstack([Y2, np.array(extra_Y)])


# ------------------------------------------------------------------ measurement


def _make(name, seed):
    from mltc.strategies.mlsmote import MLSMOTE
    from mltc.strategies.remedial import REMEDIAL
    from mltc.strategies.ros_rus import MLROS, MLRUS
    if name == "mltc_mlsmote_budget25":
        return MLSMOTE(percentage=25, metric="cosine", random_state=seed).fit_resample
    if name == "mltc_mlsmote":
        return MLSMOTE(random_state=seed).fit_resample
    if name == "mltc_mlros":
        return MLROS(percentage=25, random_state=seed).fit_resample
    if name == "mltc_mlrus":
        return MLRUS(percentage=25, random_state=seed).fit_resample
    if name == "mltc_remedial":
        return REMEDIAL().fit_resample
    if name == "multismote":
        sys.path.insert(0, "/tmp/multismote_pkg")
        from multismote import MultiSMOTE
        return MultiSMOTE(random_state=seed).fit_resample
    return {"naive_mlsmote": naive_mlsmote, "naive_mlros": naive_mlros, "naive_mlrus": naive_mlrus,
            "naive_remedial": naive_remedial}[name]


def _child(q, name, data_spec, seed):
    try:
        kind, n, n_sub, feats, base = data_spec
        X, Y = make_data(n, feats) if kind == "text" else big_labels(n, feats, base)
        if n_sub:
            X, Y = subsample(X, Y, n_sub)
        if name == "multismote":
            X = X.toarray()  # it stacks with np.vstack: dense only
        fn = _make(name, seed)
        t = time.perf_counter()
        X2, Y2 = fn(X, Y)
        dt = time.perf_counter() - t
        q.put((name, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, X.shape[0], X2.shape[0], None))
    except Exception as exc:  # reported, not hidden
        q.put((name, float("nan"), float("nan"), 0, 0, f"{type(exc).__name__}: {exc}"))


def measure(name, data_spec, seed=0, timeout=900):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, name, data_spec, seed))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        return (name, float("nan"), float("nan"), 0, 0, f"timed out after {timeout} s")
    return q.get() if not q.empty() else (name, float("nan"), float("nan"), 0, 0, f"exit code {p.exitcode}")


def report(row, label):
    name, dt, rss, n_in, n_out, err = row
    if err:
        print(f"{label:<52} {name:<24} FAILED: {err}", flush=True)
    else:
        print(f"{label:<52} {name:<24} {dt:9.2f} s  peak RSS {rss:6.2f} GB  rows {n_in} -> {n_out}", flush=True)
    return dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--sub", type=int, default=20_000, help="subsample size for the ROS/RUS/REMEDIAL references")
    ap.add_argument("--sub-smote", type=int, default=3_000,
                    help="subsample size for the MLSMOTE reference (its dense kNN over 100k columns is slow)")
    args = ap.parse_args(argv)
    n, big, feats = (20_000, 100_000, 100_000) if args.quick else (200_000, 1_000_000, 100_000)
    sub = min(args.sub_smote, n // 4)
    make_data(n, feats)  # build the cache once, outside the timings

    print(f"== MLSMOTE (+25 %, cosine) on {n} synthetic docs x {feats} hashed TF-IDF features")
    report(measure("mltc_mlsmote_budget25", ("text", n, 0, feats, n)), f"full {n}")

    print(f"== MLSMOTE (paper size) vs references on a {sub}-doc subsample")
    ours = report(measure("mltc_mlsmote", ("text", n, sub, feats, n)), f"subsample {sub}")
    ref = report(measure("naive_mlsmote", ("text", n, sub, feats, n)), f"subsample {sub}")
    print(f"   speed-up over the straightforward version: {ref / ours:.1f}x")
    ms_sub = min(sub, 2_000)
    ours_ms = report(measure("mltc_mlsmote", ("text", n, ms_sub, feats, n)), f"subsample {ms_sub} (multismote)")
    theirs = report(measure("multismote", ("text", n, ms_sub, feats, n)), f"subsample {ms_sub} (dense input)")
    print(f"   speed-up over multismote: {theirs / ours_ms:.1f}x (it runs a global kNN, not per label)")

    print(f"== ML-ROS / ML-RUS (25 %) and REMEDIAL on {big} docs")
    for algo in ("mlros", "mlrus", "remedial"):
        report(measure(f"mltc_{algo}", ("labels", big, 0, feats, n)), f"full {big}")
    rsub = min(args.sub, big // 4)
    for algo in ("mlros", "mlrus", "remedial"):
        ours = report(measure(f"mltc_{algo}", ("labels", big, rsub, feats, n)), f"subsample {rsub}")
        ref = report(measure(f"naive_{algo}", ("labels", big, rsub, feats, n)), f"subsample {rsub}")
        print(f"   {algo}: speed-up over the straightforward version: {ref / ours:.1f}x")


if __name__ == "__main__":
    main()
