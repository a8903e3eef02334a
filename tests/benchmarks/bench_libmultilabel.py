"""mltc side by side with LibMultiLabel's linear methods (run as a script; not collected by pytest).

    python tests/benchmarks/bench_libmultilabel.py --peer-python /work/venv-lml/bin/python \\
        --data ../shared/data --sets reuters,goemotions --repeat 3
    python tests/benchmarks/bench_libmultilabel.py --peer-python /work/venv-lml/bin/python --sets synthetic4000 \\
        --repeat 1 --timeout 900

LibMultiLabel (PyPI ``libmultilabel``) is a benchmark dependency, never one of mltc's: install it in
its own environment (``python3.11 -m venv /work/venv-lml && /work/venv-lml/bin/pip install
libmultilabel``; its linear module needs no torch) and pass that interpreter as ``--peer-python``.

Same documents, same split, same features, whole processes:

- the documents are written once to files both tools read: LibMultiLabel's text format
  (``labels<TAB>text``) and JSON lines for ``mltc run dataset=files`` (tabs and line breaks in texts
  become spaces in both);
- splits: Reuters-21578 ModApte train / test, GoEmotions train / test (its dev part is not used: neither
  side tunes on it here), the synthetic 4,000-label set (``make_synthetic(n_docs=15000, n_labels=4000,
  random_state=42)``, what ``dataset=synthetic dataset.n_docs=15000 dataset.n_labels=4000`` loads) cut
  80 / 20 at random (seed 42); mltc runs with ``split.val_size=0``, so both fit on the same training
  documents;
- features: LibMultiLabel's default ``TfidfVectorizer()`` (word unigrams, raw tf, no cap); mltc gets the
  same settings through ``features.*`` overrides;
- pairings: ``train_1vsrest`` (liblinear ``-s 1``, C=1, margin 0) against ``model=linear_svc
  thresholds=fixed`` (LinearSVC C=1, margin 0; ``1vsrest``) and against the same with liblinear's settings
  as LibMultiLabel passes them (dual solver, tolerance 0.1, no bias: ``1vsrest_same``);
  ``train_thresholding`` (per-label thresholds chosen by 3-fold cross-validation for micro + macro F1,
  then a refit; one line of it fixed, see the peer script) against ``model=linear_svc
  thresholds=per_label_cv thresholds.n_splits=3`` (per-label F1 thresholds on out-of-fold scores of a
  3-fold multi-label stratified split, then a refit);
- mltc runs as a user runs it: MLflow logging, artifacts and the model included; its feature cache is
  off (``cache.features=false``) so no repeat reuses an earlier one's TF-IDF;
- wall time of each whole process (interpreter start, imports, reading the files, featurizing, fitting,
  predicting, writing predictions), repeats alternating which side runs first; medians;
- micro- and macro-F1 are computed here, by scikit-learn, from both sides' test predictions over the same
  label set (every label of the training or test file; ``zero_division=0``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

PEER = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import libmultilabel.linear as linear
    import libmultilabel.linear.linear as lin
    method, train, test, out = sys.argv[1:5]
    np.random.seed(42)  # train_thresholding's folds come from NumPy's global generator

    def train_thresholding(y, x, options="", verbose=False):
        # LibMultiLabel 0.10.0's own, with one line fixed: it counts positives with np.sum(y, 2), which
        # SciPy's sparse matrices reject ("axis out of range"); the labels' order (most frequent first) is this
        x, options, bias = lin._prepare_options(x, options)
        y = y.tocsc()
        weights = np.zeros((x.shape[1], y.shape[1]), order="F")
        thresholds = np.zeros(y.shape[1])
        stats = {"tp": 0, "fp": 0, "fn": 0, "labels": 0}
        for i in np.flip(np.argsort(np.asarray(y.sum(0)).ravel())):
            yi = y[:, i].toarray().reshape(-1)
            w, t, stats = lin._micromacro_one_label(2 * yi - 1, x, options, stats)
            weights[:, i] = w.ravel()
            thresholds[i] = t
        return lin.FlatModel(name="thresholding", weights=np.asmatrix(weights), bias=bias, thresholds=thresholds,
                             multiclass=False)
    ds = linear.load_dataset("txt", train, test)
    pre = linear.Preprocessor(include_test_labels=True)
    ds = pre.fit_transform(ds)
    t = time.perf_counter()
    train_fn = {"1vsrest": linear.train_1vsrest, "thresholding": train_thresholding}[method]
    model = train_fn(ds["train"]["y"], ds["train"]["x"], options="", verbose=False)
    fit = time.perf_counter() - t
    values = linear.predict_values(model, ds["test"]["x"])
    np.savez_compressed(out, pred=np.packbits(values > 0, axis=1), n_labels=values.shape[1],
                        classes=np.asarray(pre.label_mapping, dtype=str))
    print(json.dumps({"fit_s": fit, "n_features": ds["train"]["x"].shape[1]}))
''')

# LibMultiLabel's Preprocessor: TfidfVectorizer() with its defaults
SAME_TFIDF = ["features.ngram_range=[1,1]", "features.sublinear_tf=false", "features.min_df=1",
              "features.max_features=null", "features.strip_accents=null", "features.lowercase=true"]
PAIRS = {"1vsrest": ["model=linear_svc", "thresholds=fixed"],
         # LinearSVC with liblinear's own settings, those LibMultiLabel passes: the dual solver (-s 1), its
         # default tolerance (-e 0.1; scikit-learn's is 1e-4) and no bias term (scikit-learn fits one)
         "1vsrest_same": ["model=linear_svc", "thresholds=fixed", "+model.estimator.dual=true",
                          "+model.estimator.tol=0.1", "+model.estimator.fit_intercept=false"],
         "thresholding": ["model=linear_svc", "thresholds=per_label_cv", "thresholds.n_splits=3"]}
PEER_METHOD = {"1vsrest": "1vsrest", "1vsrest_same": "1vsrest", "thresholding": "thresholding"}


def _clean(text: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", str(text))


def _names(names) -> list:
    # LibMultiLabel separates labels by spaces
    return [re.sub(r"\s+", "_", str(n)) for n in names]


def load_set(name: str, data: Path):
    """(texts, Y, label names, train rows, test rows) of one benchmark data set, through mltc's loaders."""
    if name == "reuters":
        from mltc.data.reuters import load_reuters21578
        ds = load_reuters21578(data / "reuters21578", download=False)
        tr, te = ds.splits["train"], ds.splits["test"]
    elif name == "goemotions":
        from mltc.data.goemotions import load_goemotions
        ds = load_goemotions(data / "goemotions", download=False)
        tr, te = ds.splits["train"], ds.splits["test"]
    elif name == "synthetic4000":
        from mltc.data.synthetic import make_synthetic
        ds = make_synthetic(n_docs=15000, n_labels=4000, random_state=42)
        perm = np.random.default_rng(42).permutation(len(ds))
        n_test = int(round(0.2 * len(ds)))
        tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    else:
        raise SystemExit(f"unknown data set {name!r}; use reuters, goemotions or synthetic4000")
    return [_clean(t) for t in ds.texts], ds.Y, _names(ds.label_names), np.asarray(tr), np.asarray(te)


def export(texts, Y, names, rows, stem: Path) -> None:
    """Write ``rows`` as ``<stem>.txt`` (LibMultiLabel) and ``<stem>.jsonl`` (mltc ``dataset=files``)."""
    with open(f"{stem}.txt", "w", encoding="utf-8") as lml, open(f"{stem}.jsonl", "w", encoding="utf-8") as js:
        for i in rows:
            labels = [names[j] for j in np.flatnonzero(Y[i])]
            lml.write(f"{' '.join(labels)}\t{texts[i]}\n")
            js.write(json.dumps({"text": texts[i], "labels": labels}) + "\n")


def timed(cmd, env, timeout) -> tuple[float | None, str]:
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _fit_seconds(side, stdout, env) -> float:
    """Seconds in the fit (and threshold tuning): the peer prints them; mltc logs its stage timings."""
    if side == "peer":
        return json.loads(stdout.strip().splitlines()[-1])["fit_s"]
    run_id = re.search(r"run ([0-9a-f]{32}) in", stdout).group(1)
    timings = json.loads(next(Path(env["MLTC_RUNS_DIR"]).glob(f"**/{run_id}/**/timings.json")).read_text())
    return timings["fit"] + timings.get("thresholds", 0.0)


def unpack(path, n_rows) -> tuple[np.ndarray, int]:
    z = np.load(path)
    n = int(z["n_labels"])
    return np.unpackbits(z["pred"], axis=1, count=n)[:n_rows].astype(bool), z


def f1s(Y_true, P) -> tuple[float, float]:
    from sklearn.metrics import f1_score
    return (100 * f1_score(Y_true, P, average="micro", zero_division=0),
            100 * f1_score(Y_true, P, average="macro", zero_division=0))


def to_columns(P, classes, names) -> np.ndarray:
    """``P``'s columns (labels ``classes``) rearranged to the label order ``names`` (absent: all 0)."""
    out = np.zeros((P.shape[0], len(names)), dtype=bool)
    where = {c: j for j, c in enumerate(classes)}
    for k, name in enumerate(names):
        if name in where:
            out[:, k] = P[:, where[name]]
    return out


def run_set(name, a, work: Path, env) -> list:
    texts, Y, names, tr, te = load_set(name, a.data)
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    export(texts, Y, names, tr, d / "train")
    export(texts, Y, names, te, d / "test")
    used = np.flatnonzero(Y[tr].any(0) | Y[te].any(0))  # labels of the files, mltc's label set
    from mltc.data.files import _label_key
    order = sorted((names[j] for j in used), key=_label_key)
    col = {n: j for j, n in enumerate(names)}
    Y_test = Y[te][:, [col[n] for n in order]].astype(bool)
    print(f"{name}: {len(tr)} train / {len(te)} test documents, {len(order)} labels; files in {d}", flush=True)
    rows = []
    for pair in a.pairs.split(","):
        res, fits = {"peer": [], "mltc": []}, {"peer": [], "mltc": []}
        f1 = {}
        for rep in range(a.repeat_thresholding if pair == "thresholding" else a.repeat):
            order_sides = ("peer", "mltc") if rep % 2 == 0 else ("mltc", "peer")
            for side in order_sides:
                if side == "peer":
                    out = d / f"peer_{pair}.npz"
                    wall, stdout = timed([a.peer_python, str(work / "peer.py"), PEER_METHOD[pair], str(d / "train.txt"),
                                          str(d / "test.txt"), str(out)], env, a.timeout)
                    if wall is not None and "peer" not in f1:
                        P, z = unpack(out, len(te))
                        f1["peer"] = f1s(Y_test, to_columns(P, [str(c) for c in z["classes"]], order))
                else:
                    cmd = [sys.executable, "-m", "mltc.cli", "run", "dataset=files",
                           f"dataset.path={d / 'train.jsonl'}", f"dataset.test_path={d / 'test.jsonl'}",
                           f"dataset.name=peer_{name}", "split.val_size=0", "cache.features=false",
                           *SAME_TFIDF, *PAIRS[pair], *a.mltc_args]
                    wall, stdout = timed(cmd, env, a.timeout)
                    if wall is not None and not re.search(r"run ([0-9a-f]{32}) in", stdout):
                        wall, stdout = -wall, ""  # tracking=none: no predictions or timings to read
                    if wall is not None and wall > 0 and "mltc" not in f1:
                        run_id = re.search(r"run ([0-9a-f]{32}) in", stdout).group(1)
                        npz = next(Path(env["MLTC_RUNS_DIR"]).glob(f"**/{run_id}/**/predictions.npz"))
                        P, z = unpack(npz, len(te))
                        # predictions.npz rows are the test documents in data set order (rows of test.jsonl)
                        assert np.array_equal(z["index"], np.arange(len(tr), len(tr) + len(te))), "row order"
                        f1["mltc"] = f1s(Y_test, P)
                if wall is not None and wall < 0:  # timed, nothing to read back
                    wall = -wall
                elif wall is not None:
                    fits[side].append(_fit_seconds(side, stdout, env))
                res[side].append(wall)
                shown = "timeout" if wall is None else f"{wall:.1f}s"
                print(f"  {pair} repeat {rep + 1} {side}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
        med = {s: (statistics.median(v) if all(w is not None for w in v) else None) for s, v in res.items()}
        ratio = med["mltc"] / med["peer"] if med["mltc"] and med["peer"] else None
        fit = {s: (statistics.median(v) if v else None) for s, v in fits.items()}
        rows.append({"set": name, "pair": pair, "times": res, "median": med, "ratio": ratio, "f1": f1,
                     "fit_median": fit})
        print(f"  {pair}: median peer {med['peer']}, mltc {med['mltc']}, ratio {ratio}; F1 {f1}; "
              f"fit (+ thresholds) median {fit}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default="/work/venv-lml/bin/python",
                   help="the interpreter of the environment where libmultilabel is installed")
    p.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    p.add_argument("--sets", default="reuters,goemotions,synthetic4000")
    p.add_argument("--pairs", default="1vsrest,1vsrest_same,thresholding")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--repeat-thresholding", type=int, default=1,
                   help="repeats of the thresholding pairing (LibMultiLabel's takes minutes: its folds are "
                        "scored in a Python loop over documents)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a process counts as not finished")
    p.add_argument("--mltc-args", nargs="*", default=[], help="extra overrides for every mltc run")
    p.add_argument("--json", type=Path, default=None, help="write the results here too")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mltc-peer-"))
    (work / "peer.py").write_text(PEER)
    env = dict(os.environ, MLTC_RUNS_DIR=str(work / "runs"))
    env.pop("MLFLOW_TRACKING_URI", None)
    # the first run creates the SQLite store (schema migrations, seconds): a user pays that once, not per run
    subprocess.run([sys.executable, "-c", "from mltc.tracking import MlflowTracker; MlflowTracker().warm_up()"],
                   env=env, check=True, capture_output=True)
    print(f"start {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()}, "
          f"cores {os.cpu_count()}", flush=True)
    rows = [r for name in a.sets.split(",") for r in run_set(name, a, work, env)]
    print(f"end {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()}")
    print("\n| data set | pairing | LibMultiLabel micro / macro F1 | mltc micro / macro F1 | LibMultiLabel s | "
          "mltc s | time ratio mltc / peer | fit (+ thresholds) s, peer / mltc |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = {s: ("/".join(f"{v:.2f}" for v in r["f1"][s]) if s in r["f1"] else "-") for s in ("peer", "mltc")}
        t = {s: (f"{r['median'][s]:.1f}" if r["median"][s] else "timeout") for s in ("peer", "mltc")}
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        fit = " / ".join("-" if r["fit_median"][s] is None else f"{r['fit_median'][s]:.1f}" for s in ("peer", "mltc"))
        print(f"| {r['set']} | {r['pair']} | {f['peer']} | {f['mltc']} | {t['peer']} | {t['mltc']} | {ratio} | {fit} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
