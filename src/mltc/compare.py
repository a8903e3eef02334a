"""``mltc compare``: a leaderboard of tracked runs, with uncertainty, as Markdown, CSV and HTML.

Runs are grouped by their chosen options (the ``mltc.<group>`` tags); seeds are aggregated as
mean +/- s.d.; each configuration is compared with the best (or ``--baseline``) by a paired
bootstrap on the test documents (from each run's ``predictions.npz``), and, where there are
several data sets or seeds, by a Friedman test with Nemenyi's critical difference.
"""
from __future__ import annotations

import argparse
import base64
import html
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("mltc")

__all__ = ["main", "load_runs", "runs_frame", "leaderboard", "significance", "friedman", "Report"]

GROUPS = ("dataset", "split", "features", "augment", "strategy", "model", "thresholds", "experiment")
GROUP_METRICS = ("head_macro_f1", "medium_macro_f1", "tail_macro_f1")


class CompareError(RuntimeError):
    """Nothing to compare, or a selection that cannot work; the message says what to change."""


# ---------------------------------------------------------------- loading
def _client(uri):
    from mlflow.tracking import MlflowClient

    from mltc.paths import default_tracking_uri

    return MlflowClient(uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri())


def find_parent(client, sweep: str, experiment_ids):
    """The parent run of a sweep given its sweep id, its run id, or ``latest``."""
    if sweep != "latest":
        try:
            run = client.get_run(sweep)
            if run.data.tags.get("mltc.role") == "sweep":
                return run
        except Exception:  # noqa: BLE001 -- not a run id; try it as a sweep id
            pass
    filt = "tags.`mltc.role` = 'sweep'" + ("" if sweep == "latest" else f" and tags.`mltc.sweep_id` = '{sweep}'")
    found = client.search_runs(experiment_ids, filter_string=filt, order_by=["attributes.start_time DESC"],
                               max_results=1)
    if not found:
        raise CompareError(f"no sweep {sweep!r} in the selected experiments; list sweeps with `mltc ui` or pass "
                           "--sweep latest.")
    return found[0]


def load_runs(client, experiments=None, sweep=None, filter_string=None):
    """FINISHED job runs (not sweep parents) of the experiments, optionally of one sweep.

    Returns
    -------
    runs : list of mlflow Run
    parent : mlflow Run or None
        The sweep's parent run, where the runs come from one sweep.
    """
    exps = client.search_experiments()
    if experiments:
        missing = set(experiments) - {e.name for e in exps}
        if missing:
            raise CompareError(f"no experiment named {', '.join(sorted(missing))}; known: "
                               f"{', '.join(sorted(e.name for e in exps)) or 'none'}.")
        exps = [e for e in exps if e.name in experiments]
    ids = [e.experiment_id for e in exps]
    if not ids:
        raise CompareError("the store has no experiments; run `mltc run -m ...` first (or pass --uri).")
    parent = find_parent(client, sweep, ids) if sweep else None
    parts = ["attributes.status = 'FINISHED'"]
    if parent is not None:
        parts.append(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    if filter_string:
        parts.append(f"({filter_string})" if " or " in filter_string.lower() else filter_string)
    runs = client.search_runs(ids, filter_string=" and ".join(parts), max_results=50000,
                              order_by=["attributes.start_time ASC"])
    runs = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    if not runs:
        raise CompareError("no FINISHED runs match this selection; check --experiment / --sweep / --filter.")
    if parent is None:
        parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
        if len(parents) == 1 and None not in parents:
            parent = client.get_run(parents.pop())
    return runs, parent


def runs_frame(runs) -> pd.DataFrame:
    """One row per run: run id, group choices, seed, config hash and every metric.

    A configuration run more than once with the same seed (``tracking.resume=false``) keeps its latest run.
    """
    rows = []
    for r in runs:
        t = r.data.tags
        row = {"run_id": r.info.run_id, "start_time": r.info.start_time,
               "seed": t.get("mltc.seed", r.data.params.get("seed", "")),
               "config_hash": t.get("mltc.config_hash", r.info.run_id)}
        for g in GROUPS:
            row[g] = t.get(f"mltc.{g}", "")
        row.update(r.data.metrics)
        rows.append(row)
    df = pd.DataFrame(rows).sort_values("start_time")
    return df.drop_duplicates("config_hash", keep="last").reset_index(drop=True)


def config_columns(df: pd.DataFrame, by=None) -> list:
    """The group columns that tell configurations apart: those that vary (or ``by``)."""
    if by:
        bad = [b for b in by if b not in GROUPS]
        if bad:
            raise CompareError(f"--by {','.join(bad)}: not a group; choose from {', '.join(GROUPS)}.")
        return list(by)
    cols = [g for g in GROUPS if df[g].nunique() > 1]
    return cols or [g for g in ("strategy", "model", "thresholds") if df[g].ne("").any()]


def _label(df, cols):
    return df[cols].astype(str).apply(lambda row: " ".join(f"{c}={v}" for c, v in row.items()), axis=1)


# ---------------------------------------------------------------- tables
def leaderboard(df: pd.DataFrame, metrics, cols) -> pd.DataFrame:
    """Mean and s.d. over seeds per configuration, best first by the first metric."""
    missing = [m for m in metrics if m not in df]
    if missing:
        known = sorted(c for c in df.columns if c not in ("run_id", "start_time", "seed", "config_hash", *GROUPS))
        raise CompareError(f"metric {', '.join(missing)} is not logged by these runs; choose from "
                           f"{', '.join(known)}.")
    df = df.assign(config=_label(df, cols))
    extra = [m for m in (*GROUP_METRICS, "time_fit") if m in df and m not in metrics]
    g = df.groupby("config", sort=False)
    out = pd.DataFrame({"n_seeds": g.size()})
    for m in metrics:
        out[m] = g[m].mean()
        out[f"{m}_sd"] = g[m].std(ddof=1).fillna(0.0)
    for m in extra:
        out[m] = g[m].mean()
    out = out.sort_values(metrics[0], ascending=False)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index()


def _npz(client, run_id, cache: dict):
    if run_id not in cache:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = client.download_artifacts(run_id, "predictions.npz", tmp)
                with np.load(path) as z:
                    L = int(z["n_labels"])
                    cache[run_id] = {"index": z["index"], "true": np.unpackbits(z["true"], axis=1, count=L),
                                     "pred": np.unpackbits(z["pred"], axis=1, count=L)}
        except Exception:  # noqa: BLE001 -- an older run without predictions: reported, not fatal
            cache[run_id] = None
    return cache[run_id]


def significance(client, df, cols, metric, reference=None, n_boot=1000, random_state=0, cache=None):
    """Paired bootstrap of ``metric`` for every configuration against ``reference`` (default: the best).

    Runs are paired by data set and seed (same split, same test documents); the interval is for the
    seed-averaged difference ``config - reference``.
    """
    from mltc.stats import paired_bootstrap

    cache = {} if cache is None else cache
    df = df.assign(config=_label(df, cols))
    means = df.groupby("config")[metric].mean().sort_values(ascending=False)
    if reference is None:
        reference = means.index[0]
    elif reference not in means.index:
        hits = [c for c in means.index if reference in c]
        if len(hits) != 1:
            raise CompareError(f"--baseline {reference!r} matches {len(hits)} configurations; give one of: "
                               + "; ".join(means.index))
        reference = hits[0]
    ref = df[df.config == reference].set_index(["dataset", "seed"])
    ref = ref[~ref.index.duplicated(keep="last")]
    rows = []
    for conf in means.index:
        if conf == reference:
            continue
        mine = df[df.config == conf].set_index(["dataset", "seed"])
        mine = mine[~mine.index.duplicated(keep="last")]
        blocks, note = [], ""
        for key in mine.index.intersection(ref.index):
            a, b = _npz(client, mine.loc[key, "run_id"], cache), _npz(client, ref.loc[key, "run_id"], cache)
            if a is None or b is None:
                note = "no predictions.npz"
                continue
            if not np.array_equal(a["index"], b["index"]):
                note = "different test documents"
                continue
            blocks.append((a["true"], a["pred"], b["pred"]))
        row = {"config": conf, "reference": reference, "metric": metric, "n_blocks": len(blocks)}
        if blocks:
            row.update(paired_bootstrap(blocks, metric=metric, n_boot=n_boot, random_state=random_state))
        else:
            row["note"] = note or "no common data set and seed"
        rows.append(row)
    return pd.DataFrame(rows)


def friedman(df, cols, metric, alpha=0.05):
    """Friedman + Nemenyi over blocks = (data set, seed), methods = configurations; None if too few."""
    from mltc.stats import friedman_nemenyi

    method_cols = [c for c in cols if c != "dataset"] or cols
    table = df.assign(method=_label(df, method_cols)).pivot_table(index=["dataset", "seed"], columns="method",
                                                                  values=metric, aggfunc="mean")
    try:
        return friedman_nemenyi(table, alpha=alpha)
    except ValueError as err:
        log.info("no Friedman test: %s", err)
        return None


# ---------------------------------------------------------------- output
def _fmt_board(board, metrics) -> pd.DataFrame:
    show = board[["rank", "config", "n_seeds"]].copy()
    for m in metrics:
        show[m] = [f"{a:.4f} ± {s:.4f}" for a, s in zip(board[m], board[f"{m}_sd"])]
    for m in (*GROUP_METRICS, "time_fit"):
        if m in board and m not in metrics:
            show[m.replace("_macro_f1", " F1") if m != "time_fit" else "fit (s)"] = \
                board[m].map(lambda v: f"{v:.2f}" if m == "time_fit" else f"{v:.4f}")
    return show


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _sig_show(sig):
    if sig is None or sig.empty or "delta" not in sig:
        return sig
    out = sig[["config", "reference", "metric", "n_blocks"]].copy()
    out["difference [95% CI]"] = [f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" if np.isfinite(d) else "" for d, lo, hi in
                                  zip(sig["delta"], sig["lo"], sig["hi"])]
    out["p"] = sig["p"].map(lambda v: f"{v:.3f}" if np.isfinite(v) else "")
    if "note" in sig:
        out["note"] = sig["note"].fillna("")
    return out


def plot_per_label(client, df, board, cols, path, top=3):
    """Per-label test F1 against training frequency for the top configurations (first seed of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = df.assign(config=_label(df, cols))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    drawn = 0
    for conf in board["config"].head(top):
        run_id = df[df.config == conf].sort_values("seed")["run_id"].iloc[0]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                pl = pd.read_csv(client.download_artifacts(run_id, "per_label.csv", tmp))
        except Exception:  # noqa: BLE001 -- a run without the artifact is left out of the plot
            continue
        pl = pl.sort_values("train_count")
        ax.plot(np.maximum(pl["train_count"], 0.8), pl["f1"], marker="o", ms=3, lw=1, alpha=0.8, label=conf)
        drawn += 1
    ax.set_xscale("log")
    ax.set_xlabel("training examples per label (log)")
    ax.set_ylabel("test F1")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7)
    ax.set_title(f"per-label F1, top {drawn} configurations", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distribution(df, metric, path, by="strategy"):
    """The metric's distribution over runs (configurations x seeds) for each option of ``by``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(k, g[metric].dropna().to_numpy()) for k, g in df.groupby(by)]
    groups = sorted(groups, key=lambda kv: -np.median(kv[1]) if len(kv[1]) else 0)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(groups) + 2), 4))
    ax.boxplot([v for _, v in groups], showmeans=True)
    ax.set_xticks(range(1, len(groups) + 1), [k or "(none)" for k, _ in groups], rotation=30, ha="right")
    for i, (_, v) in enumerate(groups, start=1):
        ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, s=10, alpha=0.6, color="tab:blue")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by {by} (all runs)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Report:
    """The comparison's tables and figures, written as Markdown, CSV and one self-contained HTML file."""

    def __init__(self, title, board, board_show, sig, fried, figures, selection):
        self.title, self.board, self.board_show = title, board, board_show
        self.sig, self.fried, self.figures, self.selection = sig, fried, figures, selection

    def markdown(self) -> str:
        parts = [f"# {self.title}", "", self.selection, "", "## Leaderboard", "", markdown_table(self.board_show)]
        sig = _sig_show(self.sig)
        if sig is not None and not sig.empty:
            parts += ["", "## Paired bootstrap against the reference (test documents)", "", markdown_table(sig)]
        if self.fried is not None:
            parts += ["", "## Friedman test and Nemenyi critical difference", "", self._fried_text(), "",
                      markdown_table(self.fried["ranks"].rename("average rank").reset_index()
                                     .rename(columns={"index": "method", "method": "method"}))]
        return "\n".join(parts) + "\n"

    def _fried_text(self):
        f = self.fried
        return (f"chi2 = {f['statistic']:.3f}, p = {f['p']:.4g} over {f['n_blocks']} blocks (data set x seed) and "
                f"{f['k']} methods; Nemenyi CD (alpha={f['alpha']}) = {f['cd']:.3f} average ranks.")

    def html(self) -> str:
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>", f"<p>{esc(self.selection)}</p>", "<h2>Leaderboard</h2>",
                self.board_show.to_html(index=False, border=0, classes="t")]
        sig = _sig_show(self.sig)
        if sig is not None and not sig.empty:
            body += ["<h2>Paired bootstrap against the reference</h2>", sig.to_html(index=False, border=0,
                                                                                      classes="t")]
        if self.fried is not None:
            body += ["<h2>Friedman test and Nemenyi critical difference</h2>", f"<p>{esc(self._fried_text())}</p>"]
        for name, path in self.figures.items():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            body.append(f'<h2>{esc(name)}</h2><img alt="{esc(name)}" src="data:image/png;base64,{data}">')
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
                 "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{padding:3px 8px;"
                 "border-bottom:1px solid #ddd;text-align:right}table.t td:nth-child(2){text-align:left}"
                 "img{max-width:100%}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(self.title)}</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>")

    def write(self, out: Path) -> dict:
        """Write ``leaderboard.md``, ``leaderboard.csv``, ``significance.csv``, ``report.html`` and figures."""
        out.mkdir(parents=True, exist_ok=True)
        files = {"leaderboard.md": out / "leaderboard.md", "leaderboard.csv": out / "leaderboard.csv",
                 "report.html": out / "report.html"}
        files["leaderboard.md"].write_text(self.markdown())
        self.board.to_csv(files["leaderboard.csv"], index=False)
        if self.sig is not None and not self.sig.empty:
            files["significance.csv"] = out / "significance.csv"
            self.sig.to_csv(files["significance.csv"], index=False)
        files["report.html"].write_text(self.html())
        for name, path in self.figures.items():
            target = out / Path(path).name
            if Path(path) != target:
                target.write_bytes(Path(path).read_bytes())
            files[Path(path).name] = target
        return files


# ---------------------------------------------------------------- command
def build_parser():
    p = argparse.ArgumentParser(
        prog="mltc compare", description="Leaderboard of tracked runs: mean ± s.d. over seeds, paired bootstrap "
        "against the best configuration, Friedman/Nemenyi across data sets or seeds.",
        epilog="examples:\n  mltc compare --sweep latest\n  mltc compare --experiment goemotions --metric "
               "macro_f1 --baseline strategy=none\n  mltc compare --filter \"tags.`mltc.model` = 'logreg'\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uri", help="tracking store (default: $MLFLOW_TRACKING_URI or runs/mlflow.db)")
    p.add_argument("--experiment", action="append", help="experiment name (repeatable; default: all)")
    p.add_argument("--sweep", help="a sweep: its id (tag mltc.sweep_id), its parent run id, or 'latest'")
    p.add_argument("--filter", help="an MLflow filter string, e.g. \"tags.`mltc.model` = 'logreg'\"")
    p.add_argument("--metric", action="append", help="metric(s) to rank by (default: macro_f1, micro_f1)")
    p.add_argument("--by", help="comma-separated groups that define a configuration (default: those that vary)")
    p.add_argument("--baseline", help="reference configuration for the bootstrap (default: the best)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: skip; default 1000)")
    p.add_argument("--top", type=int, default=3, help="configurations in the per-label plot (default 3)")
    p.add_argument("--out", help="output directory (default: runs/compare/<sweep id or experiment>)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    return p


def compare(args) -> tuple[Report, dict, object]:
    """Build the report for parsed ``args``; returns it, the written files and the parent run (or None)."""
    from mltc.paths import runs_dir
    from mltc.stats import METRICS, plot_cd_diagram

    client = _client(args.uri)
    runs, parent = load_runs(client, args.experiment, args.sweep, args.filter)
    df = runs_frame(runs)
    metrics = args.metric or ["macro_f1", "micro_f1"]
    cols = config_columns(df, args.by.split(",") if args.by else None)
    board = leaderboard(df, metrics, cols)
    sig = None
    cache: dict = {}
    if args.bootstrap > 0 and len(board) > 1:
        boot_metric = next((m for m in metrics if m in METRICS), "macro_f1")
        sig = significance(client, df, cols, boot_metric, reference=args.baseline, n_boot=args.bootstrap,
                           cache=cache)
    fried = friedman(df, cols, metrics[0])
    name = (parent.data.tags.get("mltc.sweep_id") if parent is not None else None) or \
        "-".join(sorted(df["dataset"].unique())) or "runs"
    out = Path(args.out) if args.out else runs_dir() / "compare" / name
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    plot_per_label(client, df, board, cols, out / "per_label_f1_top.png", top=args.top)
    figures["Per-label F1 against label frequency (top configurations)"] = out / "per_label_f1_top.png"
    by = "strategy" if df["strategy"].nunique() > 1 or not cols else cols[0]
    plot_distribution(df, metrics[0], out / "metric_distribution.png", by=by)
    figures[f"{metrics[0]} per {by}"] = out / "metric_distribution.png"
    if fried is not None:
        plot_cd_diagram(fried["ranks"], fried["cd"], out / "cd_diagram.png",
                        title=f"{metrics[0]}: Friedman p = {fried['p']:.3g}, Nemenyi CD = {fried['cd']:.2f}")
        figures["Critical-difference diagram"] = out / "cd_diagram.png"
    selection = (f"{len(df)} runs ({len(board)} configurations) from "
                 + (f"sweep {name} (parent run {parent.info.run_id})" if parent is not None else
                    f"experiment(s) {', '.join(args.experiment or ['all'])}")
                 + (f", filter: {args.filter}" if args.filter else "") + f"; configurations told apart by "
                 f"{', '.join(cols)}; ± is the s.d. over seeds.")
    report = Report(f"mltc compare: {name}", board, _fmt_board(board, metrics), sig, fried, figures, selection)
    files = report.write(out)
    return report, files, parent


def main(argv=None) -> int:
    """``mltc compare``; returns the exit status."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        report, files, parent = compare(args)
    except CompareError as err:
        print(f"mltc compare: {err}", file=sys.stderr)
        return 2
    print(report.markdown())
    print(f"written: {', '.join(str(p) for p in files.values())}")
    if parent is not None and not args.no_log:
        client = _client(args.uri)
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in files.items():
                Path(tmp, name).write_bytes(Path(path).read_bytes())
            client.log_artifacts(parent.info.run_id, tmp, artifact_path="compare")
        print(f"logged to the sweep's parent run {parent.info.run_id} (artifacts/compare/); see `mltc ui`.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
