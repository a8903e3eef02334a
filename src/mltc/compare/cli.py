"""``mltc compare``'s command line: argparse in, :func:`mltc.compare.api.compare` out."""
from __future__ import annotations

import argparse
import os
import sys

from mltc.compare.api import CompareOptions, compare, log_report
from mltc.compare.board import ALIASES
from mltc.compare.runs import CompareError, open_store

__all__ = ["build_parser", "main", "EXAMPLES"]

EXAMPLES = """examples:
  mltc compare --sweep latest
  mltc compare --experiment goemotions --metrics macro_f1 --baseline strategy=none
  mltc compare --filter strategy=none,mlsol --filter params.features.min_df=2
  mltc compare --filter model=logreg --by model,loss
  mltc compare --filter "tags.mltc.model = 'logreg'"      # an MLflow filter string (no backticks needed)
  mltc compare --experiment goemotions --filter params.split.train_size=6000 --by params.run_name:augmentation
  mltc compare --experiment reuters21578 --sweep latest --by strategy --sort run --percent --table-only \\
      --metrics micro_f1,macro_f1,tail_micro_f1,tail_macro_f1,rows_after,mean_ir,scumble,resample_s
  mltc compare --sweep none --by experiment --percent --table-only \\
      --metrics "micro_f1:micro,macro_f1:macro,tail_f1,wall_s:wall s:.0f"
  mltc compare tracking.uri=sqlite:///elsewhere/mlflow.db --sweep latest

the store: --uri or tracking.uri=..., else conf/local/default.yaml's tracking.uri, else $MLFLOW_TRACKING_URI,
  else runs/mlflow.db (the same as `mltc run`); a store that does not exist is an error, never created.

columns (--metrics, comma-separated, each EXPR[:HEADER[:FORMAT]]):
  EXPR      a logged metric (micro_f1, tail_macro_f1, time_fit, train_resampled_mean_ir, val_macro_f1, ...),
            params.<key> (params.model.estimator.C), tags.<key>, wall_s (the pipeline's wall time: the
            sum of its stage timings, load to metrics; process start-up and logging left out),
            run_s (the tracked run's duration),
            a->b (shown "a -> b"), a/b (shown "a / b"), or a named column:
""" + "\n".join(f"              {k:<11} {v[0]}  ({v[1]})" for k, v in ALIASES.items()) + """
  HEADER    the column's title; FORMAT a Python format spec (.2f, .0f, .3g)
  Seeds of one configuration are averaged and shown as mean ± s.d. (--sd). Rows are ranked by the
  validation score (--rank-by) and each data set gets its own board.
"""


def build_parser():
    p = argparse.ArgumentParser(
        prog="mltc compare", description="Leaderboard of tracked runs: mean ± s.d. over seeds with a bootstrap CI, "
        "ranked by validation score, one board per data set; paired bootstrap against the best configuration, "
        "Friedman/Nemenyi across data sets or seeds; Markdown, CSV and HTML report.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="tracking.uri=URI",
                   help="the store as `mltc run` takes it (same as --uri)")
    sel = p.add_argument_group("which runs")
    sel.add_argument("--uri", help="tracking store (default: as `mltc run`: conf/local, $MLFLOW_TRACKING_URI, "
                     "runs/mlflow.db)")
    sel.add_argument("--experiment", action="append",
                     help="MLflow experiment name, i.e. the data set (repeatable; default: all)")
    sel.add_argument("--sweep", help="a sweep: its id (tag mltc.sweep_id), its parent run id, 'latest', or 'none' "
                     "(only runs outside sweeps); a sweep's runs include earlier runs it reused (resume)")
    sel.add_argument("--filter", action="append",
                     help="repeatable, all must hold: group=value (strategy=mlsol), params.<key>=value, "
                     "tags.<key>=value, metrics.<key>>=number, key=a,b (any of), or an MLflow filter string")
    tab = p.add_argument_group("the table")
    tab.add_argument("--metrics", "--metric", dest="metrics", action="append",
                     help="columns, comma-separated (see below); the first test score is tested "
                     "(default: validation and test macro/micro-F1, head/medium/tail macro-F1, fit time)")
    tab.add_argument("--by", help="comma-separated groups (strategy, model, loss, experiment, ...) or "
                     "params.<key> / tags.<key> that define a configuration (default: the groups that vary), "
                     "each optionally KEY:HEADER for the column's title (params.run_name:augmentation); "
                     "anything else that differs between runs (but the seed) is added as a column")
    tab.add_argument("--pool", action="store_true",
                     help="pool runs that agree on --by even where other settings differ (the report lists them)")
    tab.add_argument("--sort", help="row order: 'run' (order the runs were made), a column key with optional "
                     ":asc/:desc (e.g. macro_f1, fit_s:asc, strategy); default: --rank-by's score, best first")
    tab.add_argument("--rank-by", choices=("validation", "test"), default="validation",
                     help="rank (and pick the bootstrap reference) by the validation score of the first metric "
                     "(default; test where runs logged none), or by the test score")
    tab.add_argument("--order", help="explicit order of the first --by column's values, comma-separated")
    tab.add_argument("--percent", action="store_true",
                     help="scores (F1, precision, recall, AUC) and their differences times 100")
    tab.add_argument("--digits", type=int, help="decimals of scores (default 2 with --percent, else 4)")
    tab.add_argument("--sd", choices=("auto", "always", "never"), default="auto",
                     help="show ± s.d. over seeds: auto (where a configuration has several runs), always, never")
    tab.add_argument("--bold-best", action="store_true", help="bold the best value of each score column")
    tab.add_argument("--table-only", action="store_true",
                     help="print only the leaderboard's Markdown table (to paste); the report is still written")
    st = p.add_argument_group("statistics and report")
    st.add_argument("--baseline", help="reference configuration for the bootstrap (default: the best by --rank-by)")
    st.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: skip; default 1000)")
    st.add_argument("--top", type=int, default=3, help="configurations in the per-label plot (default 3)")
    st.add_argument("--name-labels", type=int, default=5, metavar="K",
                    help="name the K most frequent and the K lowest-F1 labels in the per-label plot (default 5)")
    st.add_argument("--out", help="output directory (default: runs/compare/<sweep id or experiment>)")
    st.add_argument("--log", action="store_true",
                    help="log the report to the sweep's parent run, replacing the one the sweep stored")
    st.add_argument("--no-log", action="store_true",
                    help="do not log the report (the default; kept for scripts that pass it)")
    return p


def _uri(args) -> str | None:
    for o in args.overrides or ():
        key, sep, value = o.partition("=")
        if not sep or key.strip() not in ("tracking.uri", "uri"):
            raise CompareError(f"{o!r}: the only override `mltc compare` takes is tracking.uri=URI; "
                               "the rest are --options (see --help).")
        args.uri = args.uri or value.strip()
    return args.uri


def main(argv=None) -> int:
    """``mltc compare``; returns the exit status."""
    args = build_parser().parse_args(argv)
    # reading artifacts must not print MLflow's per-file progress bars
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        _uri(args)
        client = open_store(args.uri)
        report, files, parent = compare(CompareOptions.from_args(args), client=client)
    except CompareError as err:
        print(f"mltc compare: {err}", file=sys.stderr)
        return 2
    # with --table-only, stdout is the table alone (to paste); the rest goes to stderr
    info = sys.stderr if args.table_only else sys.stdout
    print(report.tables() if args.table_only else report.markdown())
    print(f"written: {', '.join(str(p) for p in files.values())}", file=info)
    if parent is not None and args.log:
        log_report(client, parent.info.run_id, files)
        print(f"logged to the sweep's parent run {parent.info.run_id} (artifacts/compare/); see `mltc ui`.",
              file=info)
    elif parent is not None:
        print(f"not logged: the sweep's parent run {parent.info.run_id} keeps the report it stored (--log "
              "replaces it).", file=info)
    return 0
