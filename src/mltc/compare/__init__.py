"""``mltc compare``: a leaderboard of tracked runs, with uncertainty, as Markdown, CSV and HTML.

Runs are grouped by their chosen options (the ``mltc.<group>`` tags, or any ``params.`` / ``tags.`` key); a
row holds runs that differ by seed alone, aggregated as mean +/- s.d. with a bootstrap interval. Rows are
ranked by validation score, one board per data set; each configuration is compared with the best (or
``--baseline``) by a paired bootstrap on the test documents (from each run's ``predictions.npz``), and,
where there are several data sets or seeds, by a Friedman test with Nemenyi's critical difference
(Demšar 2006). See docs/compare.md.

The package, one job per module:

- :mod:`~mltc.compare.runs`: the store, MLflow queries, the ``--filter`` language, one row per run;
- :mod:`~mltc.compare.board`: the ``--metrics`` column language and the leaderboard;
- :mod:`~mltc.compare.significance`: bootstrap and Friedman/Nemenyi on the board (tests in :mod:`mltc.stats`);
- :mod:`~mltc.compare.render`: Markdown, CSV, HTML, figures;
- :mod:`~mltc.compare.api`: :func:`compare` and :func:`report_sweep`, the Python API;
- :mod:`~mltc.compare.cli`: ``mltc compare``'s argparse.
"""
from mltc.compare.api import CompareOptions, compare, log_report, report_sweep
from mltc.compare.board import ALIASES, DEFAULT_METRICS, Column, format_board, is_score, leaderboard, \
    markdown_table, parse_columns
from mltc.compare.cli import build_parser, main
from mltc.compare.render import Report, plot_distribution, plot_per_label
from mltc.compare.runs import GROUPS, LATER_DEFAULTS, CompareError, config_columns, find_parent, latest_runs, \
    load_runs, open_store, parse_by, parse_filters, runs_frame
from mltc.compare.significance import friedman, significance

__all__ = ["main", "compare", "CompareOptions", "load_runs", "runs_frame", "leaderboard", "significance",
           "friedman", "Report", "Column", "parse_columns", "parse_by", "parse_filters", "format_board",
           "report_sweep", "log_report", "ALIASES", "CompareError", "build_parser", "open_store", "GROUPS",
           "LATER_DEFAULTS", "DEFAULT_METRICS", "config_columns", "find_parent", "latest_runs", "is_score",
           "markdown_table", "plot_per_label", "plot_distribution"]
