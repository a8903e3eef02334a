"""How a run's cost grows with documents and labels (a script, not a test).

    nice -n 10 python tests/benchmarks/bench_scale.py [--docs 10000,100000] [--labels 100,1000,4000]
        [--label-docs 15000] [--doc-labels 100] [--split iterative|random] [--out docs/benchmarks-scale.md]
    nice -n 10 python tests/benchmarks/bench_scale.py --point 15000 4000     # one point, printed as JSON

Every point is one whole ``mltc run`` configuration run in a fresh process through
``mltc.app.run_from_config`` (synthetic data, TF-IDF, ML-ROS, binary-relevance logistic regression,
per-label thresholds, metrics, MLflow logging to a temporary SQLite store, the feature cache off).
A thread samples the resident memory of the process and its children (the label-fitting processes)
every 20 ms; each stage's row gives its wall time and the peak memory seen while it ran.
``--split random`` swaps the iterative-stratification split (whose cost is another issue's) for a
random one, so that large points measure the rest.

The summary fits ``time = a * size ** b`` per stage by least squares on log-log axes and writes a
Markdown table, the exponents and a plot (``docs/benchmarks-scale.png``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STAGES = ("load", "split", "featurize", "resample", "fit", "thresholds", "predict", "evaluate", "log")


class Sampler:
    """Peak RSS (process + children) per stage, sampled in a thread."""

    def __init__(self, every=0.02, max_gb=None):
        import psutil

        self.max_bytes = None if max_gb is None else max_gb * 1024 ** 3

        self.proc = psutil.Process()
        self.every = every
        self.stage = "start"
        self.peak: dict[str, int] = {}
        # CPU seconds per stage (this process's threads + ended children): on a shared machine the
        # wall time depends on the load, CPU time much less
        self.cpu: dict[str, float] = {}
        self._cpu0 = self._cpu_now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self):
        total = self.proc.memory_info().rss
        for c in self.proc.children(recursive=True):
            try:
                total += c.memory_info().rss
            except Exception:  # noqa: BLE001 -- a child that just ended
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            rss = self._rss()
            self.peak[self.stage] = max(self.peak.get(self.stage, 0), rss)
            if self.max_bytes is not None and rss > self.max_bytes:
                # a shared machine: stop before the kernel's OOM killer picks someone else's process
                print(json.dumps({"aborted": f"resident memory {rss / 1024 ** 3:.2f} GB > --max-gb in stage "
                                  f"{self.stage}", "peak_gb": {k: v / 1024 ** 3 for k, v in self.peak.items()},
                                  "cpu_s": self.cpu}), flush=True)
                for child in self.proc.children(recursive=True):
                    child.kill()
                os._exit(3)
            time.sleep(self.every)

    def _cpu_now(self):
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def set(self, stage):
        rss = self._rss()
        self.peak[self.stage] = max(self.peak.get(self.stage, 0), rss)
        now = self._cpu_now()
        self.cpu[self.stage] = self.cpu.get(self.stage, 0.0) + now - self._cpu0
        self._cpu0 = now
        self.stage = stage

    def start(self):
        self._thread.start()

    def stop(self):
        self.set("end")
        self._stop.set()
        self._thread.join()


def point(n_docs: int, n_labels: int, split: str, strategy: str = "ml_ros", tmp: str | None = None,
          extra: tuple = (), max_gb: float | None = None) -> dict:
    """One run; ``{"time": {stage: s}, "peak_gb": {stage: GB}, "metrics": {...}}``."""
    from hydra import compose, initialize_config_dir

    import mltc.app as app
    import mltc.split as msplit

    if split == "random":
        import numpy as np

        def random_split(self, ds):
            p = np.random.default_rng(0).permutation(len(ds))
            a, b = int(0.7 * len(ds)), int(0.8 * len(ds))
            return {"train": np.sort(p[:a]), "val": np.sort(p[a:b]), "test": np.sort(p[b:])}
        msplit.DatasetSplitter.split = random_split

    tmp = tempfile.mkdtemp(prefix="bench-scale-", dir=tmp)
    overrides = [f"dataset.n_docs={n_docs}", f"dataset.n_labels={n_labels}", f"strategy={strategy}",
                 "thresholds=per_label", f"tracking.uri=sqlite:///{tmp}/x.db", *extra]
    if hasattr(app, "feature_cache"):  # absent from mltc before the cache (to measure older code)
        overrides.append("cache.features=false")
    with initialize_config_dir(config_dir=app.CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    sampler = Sampler(max_gb=max_gb)
    original = app.run_config
    holder = {}

    def run_config(cfg, on_stage=None, **kwargs):  # kwargs: on_fitted (the model is logged beside predict)
        def both(name):
            print(f"[{time.strftime('%H:%M:%S')}] {name} (rss {sampler._rss() / 1024 ** 3:.2f} GB)", file=sys.stderr,
                  flush=True)
            sampler.set(name)
            if on_stage is not None:
                on_stage(name)
        sampler.set("load")
        dataset, result = original(cfg, on_stage=both, **kwargs)
        sampler.set("log")
        holder["result"], holder["log_start"] = result, time.perf_counter()
        return dataset, result

    app.run_config = run_config
    sampler.start()
    t0 = time.perf_counter()
    app.run_from_config(cfg, choices={"dataset": "synthetic"})
    total = time.perf_counter() - t0
    sampler.stop()
    result = holder["result"]
    times = {k: v for k, v in result.timings.items()}
    # logging: from the pipeline's end to the run's end (stage sums overlap: the held-out transform
    # counted as featurizing runs beside the fit)
    times["log"] = t0 + total - holder["log_start"]
    return {"n_docs": n_docs, "n_labels": n_labels, "split": split, "total_s": total, "time": times,
            "peak_gb": {k: v / 1024 ** 3 for k, v in sampler.peak.items() if k in STAGES},
            "peak_total_gb": max(sampler.peak.values()) / 1024 ** 3,
            "cpu_s": {k: v for k, v in sampler.cpu.items()}, "load_avg": os.getloadavg(),
            "n_features": result.sizes["n_features"],
            "micro_f1": result.metrics["micro_f1"], "macro_f1": result.metrics["macro_f1"]}


def run_point(n_docs, n_labels, split) -> dict:
    cmd = [sys.executable, __file__, "--point", str(n_docs), str(n_labels), "--split", split]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"point {n_docs} x {n_labels} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {n_docs} docs x {n_labels} labels: {out['total_s']:.1f} s, peak {out['peak_total_gb']:.2f} GB",
          flush=True)
    return out


def exponent(xs, ys):
    import numpy as np

    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = ys > 0
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs[ok]), np.log(ys[ok]), 1)[0])


def table(rows, axis) -> str:
    lines = [f"| {axis} | " + " | ".join(f"{s} s" for s in STAGES) + " | total s | peak GB |",
             "|---|" + "---|" * (len(STAGES) + 2)]
    for r in rows:
        lines.append(f"| {r[axis]:,} | " + " | ".join(f"{r['time'].get(s, 0):.1f}" for s in STAGES)
                     + f" | {r['total_s']:.1f} | {r['peak_total_gb']:.2f} |")
    if len(rows) > 1:
        xs = [r[axis] for r in rows]
        lines.append("| exponent b (time ~ size^b) | " + " | ".join(
            f"{exponent(xs, [r['time'].get(s, 0) for r in rows]):.2f}" for s in STAGES)
            + f" | {exponent(xs, [r['total_s'] for r in rows]):.2f} | "
            f"{exponent(xs, [r['peak_total_gb'] for r in rows]):.2f} |")
    return "\n".join(lines)


def plot(by_docs, by_labels, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, rows, axis in ((axes[0], by_docs, "n_docs"), (axes[1], by_labels, "n_labels")):
        if not rows:
            continue
        xs = [r[axis] for r in rows]
        for s in STAGES:
            ys = [max(r["time"].get(s, 0), 1e-3) for r in rows]
            ax.loglog(xs, ys, marker="o", label=f"{s} (b={exponent(xs, ys):.2f})")
        ax.loglog(xs, [r["total_s"] for r in rows], "k--", marker="s", label="total")
        ax.set_xlabel(axis.replace("n_", "") )
        ax.set_ylabel("wall time (s)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", nargs=2, type=int, metavar=("N_DOCS", "N_LABELS"))
    ap.add_argument("--docs", default="10000,100000")
    ap.add_argument("--labels", default="100,1000,4000")
    ap.add_argument("--label-docs", type=int, default=15000)
    ap.add_argument("--doc-labels", type=int, default=100)
    ap.add_argument("--split", choices=["iterative", "random"], default="random")
    ap.add_argument("--strategy", default="ml_ros", help="with --point: the strategy (none = the issue's 4,000-label command)")
    ap.add_argument("--max-gb", type=float, default=None, help="with --point: stop past this resident memory")
    ap.add_argument("--set", nargs="*", default=[], help="with --point: more config overrides")
    ap.add_argument("--tmp", default=None, help="with --point: folder for the run's MLflow store (default: the system's)")
    ap.add_argument("--out", default=None, help="write the tables here (Markdown) and the plot beside it")
    args = ap.parse_args(argv)
    if args.point:
        import logging
        logging.disable(logging.INFO)
        print(json.dumps(point(*args.point, args.split, args.strategy, args.tmp, tuple(args.set), args.max_gb)), flush=True)
        from mltc.cli import _exit_now

        _exit_now(0)  # as mltc run ends: label-fitting workers stopped (they hold our stdout), no teardown
    by_docs = [run_point(n, args.doc_labels, args.split) for n in map(int, args.docs.split(",")) if n]
    by_labels = [run_point(args.label_docs, k, args.split) for k in map(int, args.labels.split(",")) if k]
    text = (f"Documents ({args.doc_labels} labels, split={args.split}):\n\n{table(by_docs, 'n_docs')}\n\n"
            f"Labels ({args.label_docs:,} documents, split={args.split}):\n\n{table(by_labels, 'n_labels')}\n")
    print(text)
    if args.out:
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps({"docs": by_docs, "labels": by_labels}, indent=1))
        plot(by_docs, by_labels, out.with_suffix(".png"))
        print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
