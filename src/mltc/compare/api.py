"""The Python API of ``mltc compare``: :func:`compare` builds a :class:`~mltc.compare.render.Report`."""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path


from mltc.compare import render
from mltc.compare.board import (DEFAULT_METRICS, Column, format_board, is_score, leaderboard, parse_columns, pretty,
                                rank_metric)
from mltc.compare.runs import (CompareError, config_columns, fixed_settings, latest_runs, load_runs, open_store,
                               parse_by, parse_filters, runs_frame, split_columns)
from mltc.compare.significance import TEST_NAME, friedman, score_intervals, significance, too_few_blocks
from mltc.keys import VAL

log = logging.getLogger("mltc")

__all__ = ["CompareOptions", "compare", "log_report", "report_sweep"]


@dataclass
class CompareOptions:
    """What to compare and how; the fields are ``mltc compare``'s options (see its ``--help``)."""

    uri: str | None = None
    experiment: list | None = None
    sweep: str | None = None
    filter: list | None = None
    metrics: list | None = None
    by: str | None = None
    pool: bool = False
    sort: str | None = None
    order: str | None = None
    rank_by: str = "validation"
    percent: bool = False
    digits: int | None = None
    sd: str = "auto"
    bold_best: bool = False
    table_only: bool = False
    baseline: str | None = None
    bootstrap: int = 1000
    top: int = 3
    name_labels: int = 5
    out: str | None = None
    log: bool = False

    @classmethod
    def from_args(cls, args) -> "CompareOptions":
        """From parsed arguments (any object with these attributes)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def compare(options=None, client=None, **kw):
    """Build the report; returns it, the written files and the sweep's parent run (or None).

    Parameters
    ----------
    options : CompareOptions or argparse.Namespace, optional
        Or give the fields as keywords: ``compare(sweep="latest", by="strategy")``.
    client : MlflowClient, optional
        Default: the store ``mltc run`` uses (:func:`mltc.paths.tracking_uri`).
    """
    o = options if isinstance(options, CompareOptions) else \
        CompareOptions.from_args(options) if options is not None else CompareOptions()
    if kw:
        o = CompareOptions(**{**o.__dict__, **kw})
    from mltc.paths import runs_dir
    from mltc.stats import METRICS, plot_cd_diagram

    if o.digits is not None and o.digits < 0:
        raise CompareError(f"--digits {o.digits}: give 0 or more decimals.")
    if o.rank_by not in ("validation", "test"):
        raise CompareError(f"--rank-by {o.rank_by!r}: use validation or test.")
    client = client or open_store(o.uri)
    filter_string, client_side = parse_filters(o.filter)
    runs, parent = load_runs(client, o.experiment, o.sweep, filter_string)
    df = runs_frame(runs, latest_only=False)
    for column, values in client_side:
        if column not in df:
            raise CompareError(f"--filter {column}=...: these runs have no {column}.")
        df = df[df[column].astype(str).isin(values)]
    # the latest run of each configuration among the selected runs: done first, a later run of the same
    # configuration that the filter rejects (e.g. another run_name) would hide the one it selects
    df = latest_runs(df)
    if df.empty:
        raise CompareError("no FINISHED runs match this selection; check --filter.")
    columns = parse_columns(o.metrics) if o.metrics else \
        [Column(keys=(m,), header=("test " if is_score(m) and f"{VAL}{m}" in df else "") + pretty(m))
         for m in DEFAULT_METRICS if m in df]
    by_keys, by_headers = parse_by(o.by.split(",") if o.by else None)
    cols = config_columns(df, by_keys or None)
    # a row holds runs that differ by seed alone: whatever else differs becomes a column
    added = [] if o.pool else split_columns(df, cols)
    cols = cols + added
    if df["dataset"].nunique() > 1 and "dataset" not in cols:
        cols.append("dataset")
    order = [v.strip() for v in o.order.split(",")] if o.order else None
    scores = [k for c in columns for k in c.keys if is_score(k)]
    metric = next((k for k in scores if not k.startswith(VAL)), scores[0] if scores else "macro_f1")
    rank_col, rank_note = rank_metric(df, metric, o.rank_by)
    sort = o.sort or (f"{rank_col}:desc" if rank_col in df else None)
    cache: dict = {}
    boot_metric = next((m for m in scores if m in METRICS), "macro_f1")
    ci = {}
    if o.bootstrap > 0 and boot_metric in df:
        ci = {boot_metric: score_intervals(client, df, cols, boot_metric, n_boot=o.bootstrap, cache=cache)}
    boards = []
    for ds, part in (df.groupby("dataset", sort=True) if df["dataset"].nunique() > 1 else [("", df)]):
        board = leaderboard(part, columns, cols, sort=sort, order=order)
        show_cols = [c for c in cols if c != "dataset"] if ds else cols
        show = format_board(board, columns, show_cols, percent=o.percent, digits=o.digits, sd=o.sd,
                            bold_best=o.bold_best, headers=by_headers, ci=ci)
        boards.append(render.Board(str(ds or part["dataset"].iloc[0]), board, show))
    n_configs = sum(len(b.board) for b in boards)
    sig = None
    if o.bootstrap > 0 and n_configs > len(boards):
        sig = significance(client, df, cols, boot_metric, reference=o.baseline, n_boot=o.bootstrap, cache=cache,
                           rank_by=f"{VAL}{boot_metric}" if rank_col.startswith(VAL) else boot_metric)
    fried = friedman(df, cols, metric) if metric in df else None
    name = (parent.data.tags.get("mltc.sweep_id") if parent is not None else None) or \
        "-".join(sorted(df["dataset"].unique())) or "runs"
    out = Path(o.out) if o.out else runs_dir() / "compare" / name
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    render.plot_per_label(client, df, boards[0].board, cols, out / "per_label_f1_top.png", top=o.top,
                          name_top=o.name_labels, name_worst=o.name_labels)
    figures["Per-label F1 against label frequency (top configurations)"] = out / "per_label_f1_top.png"
    if metric in df:
        by = "strategy" if df["strategy"].nunique() > 1 or not cols else cols[0]
        render.plot_distribution(df, metric, out / "metric_distribution.png", by=by)
        figures[f"{metric} per {by}"] = out / "metric_distribution.png"
    if fried is not None and not too_few_blocks(fried):
        plot_cd_diagram(fried["ranks"], fried["cd"], out / "cd_diagram.png",
                        title=f"{metric}: Friedman p = {fried['p']:.3g}, Nemenyi CD = {fried['cd']:.2f}")
        figures["Critical-difference diagram"] = out / "cd_diagram.png"
    about = _about(df, o, parent, name, cols, added, n_configs, metric, rank_note, boot_metric, ci)
    synthetic = _is_synthetic(df)
    title = f"mltc compare: {name}" + (" (SYNTHETIC data)" if synthetic else "")
    report = render.Report(title, boards, sig, fried, figures, about, synthetic, metric, o.percent, o.digits)
    files = report.write(out)
    return report, files, parent


def _is_synthetic(df) -> bool:
    target = df.get("params.dataset._target_")
    return bool(df["dataset"].astype(str).str.contains("synthetic", case=False).any()
                or target is not None and target.astype(str).str.contains("synthetic", case=False).any())


def _about(df, o, parent, name, cols, added, n_configs, metric, rank_note, boot_metric, ci) -> list:
    """The sentences that say what the report compares."""
    n_reused = int(df["reused"].sum()) if "reused" in df else 0
    src = (f"sweep {name} (parent run {parent.info.run_id}"
           + (f"; {n_reused} of them found by resume, made earlier" if n_reused else "") + ")"
           if parent is not None else f"experiment(s) {', '.join(o.experiment or ['all'])}")
    about = [f"{len(df)} runs ({n_configs} configurations) from {src}"
             + (f", filter: {'; '.join(o.filter)}" if o.filter else "") + "."]
    datasets = sorted(df["dataset"].astype(str).unique())
    tests = df["n_test"].dropna().astype(int).unique() if "n_test" in df else []
    about.append(f"Data set{'s' if len(datasets) > 1 else ''}: {', '.join(d or '?' for d in datasets)}"
                 + (f"; {', '.join(map(str, sorted(tests)))} test documents" if len(tests) else "")
                 + (" (one board per data set: data sets are never ranked against each other)"
                    if len(datasets) > 1 else "") + ".")
    fixed = fixed_settings(df, cols)
    fixed.pop("dataset", None)
    if fixed:
        about.append("Held fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()) + ".")
    seeds = sorted(df["seed"].astype(str).unique(), key=lambda s: (len(s), s))
    about.append(f"Configurations told apart by {', '.join(cols) or 'nothing'}"
                 + (f" ({', '.join(added)} added: they differ between runs that --by would have pooled; "
                    "--pool keeps them pooled)" if added else "")
                 + f"; {'runs of a row differ by seed only' if not o.pool else 'runs of a row are pooled (--pool)'};"
                 f" seeds: {', '.join(seeds)}; ± is the s.d. over the runs of a row.")
    about.append(f"Metric: {metric} on the test documents; {rank_note}"
                 + (f" (sorted by {o.sort})" if o.sort else "") + ".")
    if ci.get(boot_metric):
        about.append(f"95% CI of {boot_metric}: percentile bootstrap over test documents ({o.bootstrap} "
                     f"replicates, mean over seeds). Differences: {TEST_NAME}.")
    return about


def log_report(client, parent_run_id, files) -> None:
    """Log the report's files to ``artifacts/compare/`` of the sweep's parent run."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in files.items():
            Path(tmp, name).write_bytes(Path(path).read_bytes())
        client.log_artifacts(parent_run_id, tmp, artifact_path="compare")


def report_sweep(parent_run_id: str, uri: str | None = None, out=None, bootstrap: int = 1000) -> dict | None:
    """Compare the runs of a finished sweep and log the report to its parent run (for a sweep-end callback).

    Never raises: a sweep whose jobs all failed, or a store that cannot be read, gives a warning and None.
    """
    try:
        client = open_store(uri)
        _, files, parent = compare(CompareOptions(uri=uri, sweep=parent_run_id, bootstrap=bootstrap,
                                                  out=str(out) if out else None), client=client)
        log_report(client, parent.info.run_id, files)
    except Exception as err:  # noqa: BLE001 -- a report must never turn a finished sweep into a failure
        log.warning("mltc compare: no report for sweep parent run %s: %s", parent_run_id, err)
        return None
    return files


