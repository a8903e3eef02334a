"""``mltc compare``: a leaderboard of tracked runs, with uncertainty, as Markdown, CSV and HTML.

Runs are grouped by their chosen options (the ``mltc.<group>`` tags, or any ``params.`` / ``tags.`` key);
seeds are aggregated as mean +/- s.d.; each configuration is compared with the best (or ``--baseline``)
by a paired bootstrap on the test documents (from each run's ``predictions.npz``), and, where there are
several data sets or seeds, by a Friedman test with Nemenyi's critical difference (Demšar 2006).

The table's columns are chosen with ``--metrics``: metric names, ``params.<key>``, ``tags.<key>``,
``wall_s`` (the pipeline's wall time), ``run_s`` (the tracked run's duration), ``a->b`` (before -> after),
``a/b`` (two values in one cell) and a few named columns (:data:`ALIASES`), each optionally followed by
``:header`` and ``:format``.
"""
from __future__ import annotations

import argparse
import base64
import html
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("mltc")

__all__ = ["main", "load_runs", "runs_frame", "leaderboard", "significance", "friedman", "Report", "Column",
           "parse_columns", "parse_by", "parse_filters", "format_board", "report_sweep", "ALIASES"]

GROUPS = ("dataset", "split", "features", "augment", "strategy", "model", "model/loss", "thresholds",
          "experiment")
GROUP_ALIASES = {"loss": "model/loss"}
GROUP_METRICS = ("head_macro_f1", "medium_macro_f1", "tail_macro_f1")
DEFAULT_METRICS = ("macro_f1", "micro_f1", *GROUP_METRICS, "time_fit")

# Named columns for the README's tables: (expression, header, format).
ALIASES = {
    "rows": ("n_train", "train rows", ".0f"),
    "rows_after": ("n_train_fit", "train rows after", ".0f"),
    "mean_ir": ("train_mean_ir->train_resampled_mean_ir", "MeanIR before -> after", ".1f"),
    "scumble": ("train_scumble->train_resampled_scumble", "SCUMBLE before -> after", ".3f"),
    "cvir": ("train_cvir->train_resampled_cvir", "CVIR before -> after", ".2f"),
    "resample_s": ("time_resample", "resample s", ".1f"),
    "fit_s": ("time_fit", "fit s", ".0f"),
    "wall_s": ("wall_s", "wall s", ".0f"),
    "run_s": ("run_s", "run s", ".0f"),
    "tail_f1": ("tail_micro_f1/tail_macro_f1", "tail micro / macro F1", None),
    "head": ("head_macro_f1", "head", None),
    "medium": ("medium_macro_f1", "medium", None),
    "tail": ("tail_macro_f1", "tail", None),
}
# Options added to the configs after runs were logged, with their defaults: a run logged before an option existed
# reads as if it had the default (for --filter, and one configuration with a later run at that default).
LATER_DEFAULTS = {"split.train_size": "None", "split.train_method": "iterative"}
_SCORE = re.compile(r"(^|_)(f1|precision|recall|accuracy|pr_auc|roc_auc|jaccard_macro|jaccard_samples)$")
_INTERNAL = ("run_id", "start_time", "end_time", "parent_run_id", "seed", "config_hash", "params_key", "config")


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
                           "--sweep latest (or --sweep none for runs outside sweeps).")
    return found[0]


_SHORT = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(!=|>=|<=|=|>|<)\s*([^'\"`]*?)\s*$")


def parse_filters(filters) -> tuple[str | None, list]:
    """Turn ``--filter`` values into one MLflow filter string and client-side ``(column, values)`` pairs.

    A value is either an MLflow filter string (passed as is) or a shorthand ``key=value``: ``key`` is a
    group (``strategy=mlsol``, tag ``mltc.strategy``), ``seed``, ``params.<key>``, ``tags.<key>``,
    ``metrics.<key>`` or ``attributes.<key>``; the operators are ``= != > >= < <=``. ``key=a,b`` keeps
    runs whose value is any of ``a``, ``b`` (MLflow has no ``IN`` for tags and params, so it is applied
    after the search). So is ``=`` on an option in :data:`LATER_DEFAULTS`, which runs logged before it
    existed lack: ``params.split.train_size=None`` selects them too.
    """
    parts, client_side = [], []
    for f in filters or ():
        m = _SHORT.match(f)
        if m is None or " and " in f.lower():
            parts.append(f"({f})" if " or " in f.lower() else f)
            continue
        key, op, value = m.groups()
        key = GROUP_ALIASES.get(key, key)
        head, _, rest = key.partition(".")
        if key in GROUPS or key in ("seed", "sweep_id", "config_hash"):
            column, mlflow_key = key, f"tags.`mltc.{key}`"
        elif head in ("params", "tags") and rest:
            column, mlflow_key = key, f"{head}.`{rest}`"
        elif head == "attributes" and rest:
            parts.append(f"attributes.{rest} {op} '{value}'")
            continue
        elif head == "metrics" and rest or _is_number(value):
            name = rest if head == "metrics" else key
            if not _is_number(value):
                raise CompareError(f"--filter {f!r}: a metric is compared with a number, e.g. {name}>=0.5.")
            parts.append(f"metrics.`{name}` {op} {float(value)}")
            continue
        else:
            raise CompareError(f"--filter {f!r}: {key!r} is not a group ({', '.join(GROUPS)}), nor params.<key>, "
                               "tags.<key>, metrics.<key> or attributes.<key>; or write an MLflow filter string, "
                               "e.g. \"tags.`mltc.model` = 'logreg'\".")
        if op == "=" and ("," in value or column.removeprefix("params.") in LATER_DEFAULTS):
            # MLflow's search has no IN for params and tags, and cannot match a param that older runs lack
            client_side.append((column, [v.strip() for v in value.split(",")]))
        else:
            parts.append(f"{mlflow_key} {op} '{value}'")
    return (" and ".join(parts) or None), client_side


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def load_runs(client, experiments=None, sweep=None, filter_string=None):
    """FINISHED job runs (not sweep parents) of the experiments, optionally of one sweep.

    ``sweep`` is a sweep id, a parent run id, ``latest``, or ``none`` (only runs outside any sweep).

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
    from mltc.tracking import mark_orphans

    mark_orphans(client, ids)  # runs whose process is gone (kill -9) say KILLED, not RUNNING forever
    standalone = sweep is not None and sweep.lower() == "none"
    parent = find_parent(client, sweep, ids) if sweep and not standalone else None
    parts = ["attributes.status = 'FINISHED'"]
    if parent is not None:
        parts.append(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    if standalone:
        parts.append("tags.`mlflow.parentRunId` IS NULL")
    if filter_string:
        parts.append(filter_string)
    runs = client.search_runs(ids, filter_string=" and ".join(parts), max_results=50000,
                              order_by=["attributes.start_time ASC"])
    runs = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    if not runs:
        raise CompareError("no FINISHED runs match this selection; check --experiment / --sweep / --filter.")
    if parent is None and not standalone:
        parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
        if len(parents) == 1 and None not in parents:
            parent = client.get_run(parents.pop())
    return runs, parent


def runs_frame(runs, *, latest_only: bool = True) -> pd.DataFrame:
    """One row per run: run id, group choices, seed, config hash, every metric, every param and tag (as
    ``params.<key>`` / ``tags.<key>``), ``wall_s`` (the pipeline's wall time: the sum of its stage timings
    ``time_load`` ... ``time_evaluate``) and ``run_s`` (the tracked run's duration).

    A configuration run more than once (same params and options, or same ``mltc.config_hash`` for runs
    without params: ``tracking.resume=false``, a single run repeated in a sweep) keeps its latest run,
    unless ``latest_only=False`` (then :func:`latest_runs` does it, e.g. after filtering).
    """
    rows = []
    for r in runs:
        t = r.data.tags
        params = _with_later_defaults(r.data.params)
        end = r.info.end_time
        row = {"run_id": r.info.run_id, "start_time": r.info.start_time, "end_time": end,
               "parent_run_id": t.get("mlflow.parentRunId", ""),
               "seed": t.get("mltc.seed", r.data.params.get("seed", "")),
               "config_hash": t.get("mltc.config_hash", r.info.run_id),
               # identical params and options are one configuration too, e.g. for runs logged before the
               # config-hash tag existed (a single run and a sweep job of one config are the same run twice)
               "params_key": _params_key(params, t) if params else r.info.run_id,
               # the tracked run's duration: since the tracker starts in the background while the model
               # fits, it can be shorter than the pipeline, so wall_s sums the stage timings instead
               "run_s": (end - r.info.start_time) / 1000.0 if end and r.info.start_time else np.nan}
        stages = [v for k, v in r.data.metrics.items() if k.startswith("time_") and not k.startswith("time_tracking")]
        row["wall_s"] = float(np.sum(stages)) if stages else np.nan
        for g in GROUPS:
            row[g] = t.get(f"mltc.{g}", "")
        row.update(r.data.metrics)
        row.update({f"params.{k}": v for k, v in params.items()})
        row.update({f"tags.{k}": v for k, v in t.items()})
        rows.append(row)
    df = pd.DataFrame(rows).sort_values("start_time")
    return latest_runs(df) if latest_only else df.reset_index(drop=True)


def latest_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The latest run of each configuration in a :func:`runs_frame` (``latest_only=False``)."""
    df = df.sort_values("start_time", kind="stable")
    return df.drop_duplicates("config_hash", keep="last").drop_duplicates("params_key", keep="last") \
        .reset_index(drop=True)


def _with_later_defaults(params: dict) -> dict:
    """``params`` with :data:`LATER_DEFAULTS` filled in where the run logged its group but not the option."""
    groups = {k.split(".", 1)[0] for k in params}
    missing = {k: v for k, v in LATER_DEFAULTS.items() if k not in params and k.split(".", 1)[0] in groups}
    return {**params, **missing} if missing else params


def _params_key(params: dict, tags: dict) -> str:
    import hashlib

    choices = [(g, tags.get(f"mltc.{g}", "")) for g in GROUPS]
    return "params:" + hashlib.sha256(repr((sorted(params.items()), choices)).encode()).hexdigest()[:16]


def _resolve_key(key: str) -> str:
    return GROUP_ALIASES.get(key, key)


def parse_by(by) -> tuple[list, dict]:
    """``--by`` items ``key[:header]`` as the keys and ``{key: header}`` for those given a header.

    Examples
    --------
    >>> parse_by(["params.run_name:augmentation", "loss"])
    (['params.run_name', 'model/loss'], {'params.run_name': 'augmentation'})
    """
    keys, headers = [], {}
    for item in by or ():
        key, _, header = item.partition(":")
        if not key.strip():
            continue
        keys.append(_resolve_key(key.strip()))
        if header.strip():
            headers[keys[-1]] = header.strip()
    return keys, headers


def config_columns(df: pd.DataFrame, by=None) -> list:
    """The columns that tell configurations apart: ``by`` (groups, ``params.<key>``, ``tags.<key>``; a
    ``:header`` after a key is dropped here, see :func:`parse_by`), or the groups that vary."""
    if by:
        cols = parse_by(by)[0]
        bad = [b for b in cols if b not in df.columns or b.split(".")[0] not in ("params", "tags") and b not in GROUPS]
        if bad:
            raise CompareError(f"--by {','.join(bad)}: not a group ({', '.join(GROUPS)}; 'loss' is model/loss) nor "
                               "a params.<key> / tags.<key> these runs have.")
        return cols
    cols = [g for g in GROUPS if df[g].nunique() > 1]
    return cols or [g for g in ("strategy", "model", "thresholds") if df[g].ne("").any()]


def _label(df, cols):
    return df[cols].astype(str).apply(lambda row: " ".join(f"{c}={v}" for c, v in row.items()), axis=1)


# ---------------------------------------------------------------- columns
@dataclass
class Column:
    """One column of the table: one key, or two joined as ``a -> b`` or ``a / b``.

    ``fmt`` is a Python format spec (``.2f``); None picks one from the key.
    """

    keys: tuple
    join: str = ""
    header: str = ""
    fmt: str | None = None


def _pretty(key: str) -> str:
    if key.startswith(("params.", "tags.")):
        return key.split(".", 1)[1]
    if key == "time_fit":
        return "fit s"
    if key.startswith("time_"):
        return f"{key[5:]} s"
    return re.sub(r"_(f1|precision|recall)$", lambda m: "-" + m.group(1).upper()
                  if m.group(1) == "f1" else " " + m.group(1), key).replace("_", " ")


def parse_columns(specs) -> list:
    """Columns from ``--metrics`` values: comma-separated ``expr[:header[:format]]``.

    ``expr`` is a metric, ``params.<key>``, ``tags.<key>``, ``wall_s``, ``run_s``, a name in :data:`ALIASES`,
    ``a->b`` or ``a/b``.

    Examples
    --------
    >>> [c.keys for c in parse_columns(["micro_f1,mean_ir"])]
    [('micro_f1',), ('train_mean_ir', 'train_resampled_mean_ir')]
    >>> parse_columns(["tail_macro_f1:tail:.1f"])[0].header
    'tail'
    """
    cols = []
    for spec in specs:
        for item in (s for s in spec.split(",") if s.strip()):
            expr, _, rest = item.strip().partition(":")
            header, _, fmt = rest.partition(":")
            expr = expr.strip()
            a_expr, a_header, a_fmt = ALIASES.get(expr, (expr, "", None))
            join = " -> " if "->" in a_expr else " / " if "/" in a_expr and not a_expr.startswith(
                ("params.", "tags.")) else ""
            keys = tuple(k.strip() for k in re.split(r"->|/", a_expr)) if join else (a_expr,)
            default_header = a_header or join.join(_pretty(k) for k in keys)
            cols.append(Column(keys=keys, join=join, header=header.strip() or default_header,
                               fmt=fmt.strip() or a_fmt))
    return cols


def is_score(key: str) -> bool:
    """A metric in [0, 1] where higher is better (F1, precision, recall, AUCs, accuracy, Jaccard)."""
    return not key.startswith(("params.", "tags.")) and bool(_SCORE.search(key))


def _numeric(s: pd.Series) -> pd.Series | None:
    vals = pd.to_numeric(s, errors="coerce")
    return vals if vals.notna().sum() == s.notna().sum() and s.notna().any() else None


# ---------------------------------------------------------------- tables
def leaderboard(df: pd.DataFrame, metrics, cols, sort=None, order=None) -> pd.DataFrame:
    """Mean and s.d. over seeds per configuration.

    Parameters
    ----------
    metrics : list of str or Column
        Keys (metrics, ``params.<key>``, ``tags.<key>``, ``wall_s``, ``run_s``); a key whose values are not numbers
        is shown as its distinct values.
    cols : list of str
        Columns that define a configuration.
    sort : str, optional
        ``run`` (order of the first run of each configuration), a key or alias with optional ``:asc`` /
        ``:desc`` (scores descend by default, anything else ascends); default: the first metric, descending.
    order : list of str, optional
        Explicit order of the first column's values (others follow in ``sort`` order).
    """
    columns = [m if isinstance(m, Column) else Column(keys=(m,)) for m in metrics]
    keys = list(dict.fromkeys(k for c in columns for k in c.keys))
    missing = [k for k in keys if k not in df]
    if missing:
        known = sorted(c for c in df.columns if c not in (*_INTERNAL, *GROUPS) and not c.startswith(("params.",
                                                                                                      "tags.")))
        raise CompareError(f"{', '.join(missing)} is not logged by these runs; choose from metrics "
                           f"{', '.join(known)}, named columns {', '.join(ALIASES)}, or params.<key> / tags.<key>.")
    df = df.assign(config=_label(df, cols))
    g = df.groupby("config", sort=False)
    out = g[cols].first()
    out["n_seeds"] = g.size()
    out["first_start"] = g["start_time"].min()
    for k in keys:
        vals = _numeric(df[k])
        if vals is None:
            out[k] = g[k].agg(lambda s: " / ".join(dict.fromkeys(s.dropna().astype(str))))
            continue
        gv = vals.groupby(df["config"], sort=False)
        out[k] = gv.mean()
        out[f"{k}_sd"] = gv.std(ddof=1)
    out = _sort(out, columns, sort, order, cols)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.drop(columns="first_start").reset_index()


def _sort(out, columns, sort, order, cols):
    if sort in (None, ""):
        first = next((c.keys[0] for c in columns if pd.api.types.is_numeric_dtype(out[c.keys[0]])), None)
        sort = f"{first}:desc" if first else "run"
    key, _, direction = sort.partition(":")
    if key == "run":
        out = out.sort_values("first_start", kind="stable")
    else:
        key = _resolve_key(ALIASES.get(key, (key,))[0])
        if key not in out:  # a before -> after column sorts by "after"; a / b by a
            key = key.split("->")[-1].strip() if "->" in key else key.split("/")[0].strip()
        if key not in out:
            raise CompareError(f"--sort {sort!r}: {key!r} is not a column of this table; sort by run, a chosen "
                               "metric or a --by column (add :asc or :desc).")
        ascending = direction == "asc" if direction else not (is_score(key) and key not in cols)
        out = out.sort_values(key, ascending=ascending, kind="stable", na_position="last")
    if order:
        first = out[cols[0]].astype(str)
        rank = {v: i for i, v in enumerate(order)}
        out = out.iloc[np.argsort([rank.get(v, len(order)) for v in first], kind="stable")]
    return out
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
    from mltc.stats import BootstrapDraws, paired_bootstrap

    cache = {} if cache is None else cache
    draws = cache.setdefault(("draws", n_boot, random_state), BootstrapDraws(n_boot, random_state))
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
        # a fixed block order: every configuration is resampled with the same draws per test set
        for key in sorted(mine.index.intersection(ref.index)):
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
            row.update(paired_bootstrap(blocks, metric=metric, draws=draws))
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
def _default_fmt(key: str, percent: bool, digits: int | None) -> str:
    if is_score(key):
        return f".{digits if digits is not None else (2 if percent else 4)}f"
    if key.startswith("time_") or key in ("wall_s", "run_s"):
        return ".1f"
    if key.startswith("n_") or key.endswith(("_n_instances", "_n_labels", "_n_labelsets")):
        return ".0f"
    return ".4g"


def format_board(board, columns, cols, *, percent=False, digits=None, sd="auto", bold_best=False,
                 rank=False, headers=None) -> pd.DataFrame:
    """The leaderboard as text cells: the ``cols`` values, then each column's mean (± s.d. over seeds).

    Parameters
    ----------
    percent : bool
        Scores (F1, precision, recall, AUCs, ...) times 100.
    digits : int, optional
        Decimals of scores (default 2 with ``percent``, else 4); other keys use their column's format.
    sd : {"auto", "always", "never"}
        ``auto`` shows ``± s.d.`` where a configuration has more than one run.
    bold_best : bool
        Bold the best configuration's value in each single-score column.
    headers : dict, optional
        Titles of ``cols`` columns (default: the group, or the key after ``params.`` / ``tags.``).
    """
    if sd not in ("auto", "always", "never"):
        raise CompareError(f"--sd {sd!r}: use auto, always or never.")
    show = pd.DataFrame(index=board.index)
    if rank:
        show["rank"] = board["rank"]
    for c in cols:
        title = (headers or {}).get(c) or (c.split(".", 1)[1] if c.startswith(("params.", "tags.")) else c)
        show[title] = board[c].astype(str)
    if (board["n_seeds"] > 1).any() or sd == "always":
        show["runs"] = board["n_seeds"]

    def cell(key, i, fmt):
        v = board.at[i, key]
        if not isinstance(v, (int, float, np.floating, np.integer)):
            return str(v)
        if not np.isfinite(v):
            return ""
        scale = 100.0 if percent and is_score(key) else 1.0
        s = format(v * scale, fmt)
        sdv = board.at[i, f"{key}_sd"] if f"{key}_sd" in board else np.nan
        if sd == "always" or sd == "auto" and board.at[i, "n_seeds"] > 1:
            s += f" ± {format(sdv * scale, fmt)}" if np.isfinite(sdv) else " ± -"
        return s

    for col in columns:
        texts = []
        for i in board.index:
            texts.append(col.join.join(cell(k, i, col.fmt or _default_fmt(k, percent, digits)) for k in col.keys))
        if bold_best and len(col.keys) == 1 and is_score(col.keys[0]) and len(board) > 1:
            best = board[col.keys[0]].astype(float).max()
            texts = [f"**{t}**" if t and board.at[i, col.keys[0]] == best else t for i, t in zip(board.index, texts)]
        header, n = col.header, 2
        while header in show:  # two columns under one header would collapse into one
            header, n = f"{col.header} ({n})", n + 1
        show[header] = texts
    return show.reset_index(drop=True)


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


def _sig_parts(sig):
    """The bootstrap table to show, or None and a sentence saying why there is none."""
    if sig is None or sig.empty:
        return None, ""
    if "delta" not in sig or sig["n_blocks"].eq(0).all():
        notes = sorted(set(sig.get("note", pd.Series(dtype=str)).dropna()))
        return None, ("No paired bootstrap: " + "; ".join(notes or ["no common data set and seed"])
                      + " (runs made before mltc logged per-document test predictions have no predictions.npz; "
                      "rerun them with tracking.resume=false to get one).")
    return _sig_show(sig), ""


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
        sig, note = _sig_parts(self.sig)
        if sig is not None:
            parts += ["", "## Paired bootstrap against the reference (test documents)", "", markdown_table(sig)]
        elif note:
            parts += ["", note]
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
        sig, note = _sig_parts(self.sig)
        if sig is not None:
            body += ["<h2>Paired bootstrap against the reference</h2>", sig.to_html(index=False, border=0,
                                                                                      classes="t")]
        elif note:
            body.append(f"<p>{esc(note)}</p>")
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
EXAMPLES = """examples:
  mltc compare --sweep latest
  mltc compare --experiment goemotions --metrics macro_f1 --baseline strategy=none
  mltc compare --filter strategy=none,mlsol --filter params.features.min_df=2
  mltc compare --filter "tags.`mltc.model` = 'logreg'" --by model,loss
  mltc compare --experiment goemotions --filter params.split.train_size=6000 --by params.run_name:augmentation
  mltc compare --experiment reuters21578 --sweep latest --by strategy --sort run --percent --table-only \\
      --metrics micro_f1,macro_f1,tail_micro_f1,tail_macro_f1,rows_after,mean_ir,scumble,resample_s
  mltc compare --sweep none --by experiment --percent --table-only \\
      --metrics "micro_f1:micro,macro_f1:macro,tail_f1,wall_s:wall s:.0f"

columns (--metrics, comma-separated, each EXPR[:HEADER[:FORMAT]]):
  EXPR      a logged metric (micro_f1, tail_macro_f1, time_fit, train_resampled_mean_ir, val_macro_f1, ...),
            params.<key> (params.model.estimator.C), tags.<key>, wall_s (the pipeline's wall time: the
            sum of its stage timings, load to metrics; process start-up and logging left out),
            run_s (the tracked run's duration),
            a->b (shown "a -> b"), a/b (shown "a / b"), or a named column:
""" + "\n".join(f"              {k:<11} {v[0]}  ({v[1]})" for k, v in ALIASES.items()) + """
  HEADER    the column's title; FORMAT a Python format spec (.2f, .0f, .3g)
  Seeds of one configuration are averaged and shown as mean ± s.d. (--sd).
"""


def build_parser():
    p = argparse.ArgumentParser(
        prog="mltc compare", description="Leaderboard of tracked runs: mean ± s.d. over seeds, paired bootstrap "
        "against the best configuration, Friedman/Nemenyi across data sets or seeds; Markdown, CSV and HTML "
        "report, logged to the sweep's parent run.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sel = p.add_argument_group("which runs")
    sel.add_argument("--uri", help="tracking store (default: $MLFLOW_TRACKING_URI or runs/mlflow.db)")
    sel.add_argument("--experiment", action="append",
                     help="MLflow experiment name, i.e. the data set (repeatable; default: all)")
    sel.add_argument("--sweep", help="a sweep: its id (tag mltc.sweep_id), its parent run id, 'latest', or 'none' "
                     "(only runs outside sweeps)")
    sel.add_argument("--filter", action="append",
                     help="repeatable, all must hold: group=value (strategy=mlsol), params.<key>=value, "
                     "tags.<key>=value, metrics.<key>>=number, key=a,b (any of), or an MLflow filter string")
    tab = p.add_argument_group("the table")
    tab.add_argument("--metrics", "--metric", dest="metrics", action="append",
                     help="columns, comma-separated (see below); the first score also ranks and is tested "
                     "(default: macro_f1, micro_f1, head/medium/tail macro-F1, fit time)")
    tab.add_argument("--by", help="comma-separated groups (strategy, model, loss, experiment, ...) or "
                     "params.<key> / tags.<key> that define a configuration (default: the groups that vary), "
                     "each optionally KEY:HEADER for the column's title (params.run_name:augmentation)")
    tab.add_argument("--sort", help="row order: 'run' (order the runs were made), a column key with optional "
                     ":asc/:desc (e.g. macro_f1, fit_s:asc, strategy); default: the first metric, best first")
    tab.add_argument("--order", help="explicit order of the first --by column's values, comma-separated")
    tab.add_argument("--percent", action="store_true", help="scores (F1, precision, recall, AUC) times 100")
    tab.add_argument("--digits", type=int, help="decimals of scores (default 2 with --percent, else 4)")
    tab.add_argument("--sd", choices=("auto", "always", "never"), default="auto",
                     help="show ± s.d. over seeds: auto (where a configuration has several runs), always, never")
    tab.add_argument("--bold-best", action="store_true", help="bold the best value of each score column")
    tab.add_argument("--table-only", action="store_true",
                     help="print only the leaderboard's Markdown table (to paste); the report is still written")
    st = p.add_argument_group("statistics and report")
    st.add_argument("--baseline", help="reference configuration for the bootstrap (default: the best)")
    st.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: skip; default 1000)")
    st.add_argument("--top", type=int, default=3, help="configurations in the per-label plot (default 3)")
    st.add_argument("--out", help="output directory (default: runs/compare/<sweep id or experiment>)")
    st.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    return p


def compare(args) -> tuple[Report, dict, object]:
    """Build the report for parsed ``args``; returns it, the written files and the parent run (or None)."""
    from mltc.paths import runs_dir
    from mltc.stats import METRICS, plot_cd_diagram

    if args.digits is not None and args.digits < 0:
        raise CompareError(f"--digits {args.digits}: give 0 or more decimals.")
    client = _client(args.uri)
    filter_string, client_side = parse_filters(args.filter)
    runs, parent = load_runs(client, args.experiment, args.sweep, filter_string)
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
    columns = parse_columns(args.metrics) if args.metrics else \
        [Column(keys=(m,), header=_pretty(m)) for m in DEFAULT_METRICS if m in df]
    by_keys, by_headers = parse_by(args.by.split(",") if args.by else None)
    cols = config_columns(df, by_keys or None)
    order = [v.strip() for v in args.order.split(",")] if args.order else None
    board = leaderboard(df, columns, cols, sort=args.sort, order=order)
    scores = [k for c in columns for k in c.keys if is_score(k)]
    metric = scores[0] if scores else "macro_f1"
    sig = None
    cache: dict = {}
    if args.bootstrap > 0 and len(board) > 1:
        boot_metric = next((m for m in scores if m in METRICS), "macro_f1")
        sig = significance(client, df, cols, boot_metric, reference=args.baseline, n_boot=args.bootstrap,
                           cache=cache)
    fried = friedman(df, cols, metric) if metric in df else None
    name = (parent.data.tags.get("mltc.sweep_id") if parent is not None else None) or \
        "-".join(sorted(df["dataset"].unique())) or "runs"
    out = Path(args.out) if args.out else runs_dir() / "compare" / name
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    plot_per_label(client, df, board, cols, out / "per_label_f1_top.png", top=args.top)
    figures["Per-label F1 against label frequency (top configurations)"] = out / "per_label_f1_top.png"
    if metric in df:
        by = "strategy" if df["strategy"].nunique() > 1 or not cols else cols[0]
        plot_distribution(df, metric, out / "metric_distribution.png", by=by)
        figures[f"{metric} per {by}"] = out / "metric_distribution.png"
    if fried is not None:
        plot_cd_diagram(fried["ranks"], fried["cd"], out / "cd_diagram.png",
                        title=f"{metric}: Friedman p = {fried['p']:.3g}, Nemenyi CD = {fried['cd']:.2f}")
        figures["Critical-difference diagram"] = out / "cd_diagram.png"
    selection = (f"{len(df)} runs ({len(board)} configurations) from "
                 + (f"sweep {name} (parent run {parent.info.run_id})" if parent is not None else
                    f"experiment(s) {', '.join(args.experiment or ['all'])}")
                 + (f", filter: {'; '.join(args.filter)}" if args.filter else "") + f"; configurations told apart "
                 f"by {', '.join(cols)}; ± is the s.d. over seeds.")
    show = format_board(board, columns, cols, percent=args.percent, digits=args.digits, sd=args.sd,
                        bold_best=args.bold_best, headers=by_headers)
    report = Report(f"mltc compare: {name}", board, show, sig, fried, figures, selection)
    files = report.write(out)
    return report, files, parent


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
    argv = ["--sweep", parent_run_id, "--bootstrap", str(bootstrap)]
    argv += ["--uri", uri] if uri else []
    argv += ["--out", str(out)] if out else []
    try:
        _, files, parent = compare(build_parser().parse_args(argv))
        log_report(_client(uri), parent.info.run_id, files)
    except Exception as err:  # noqa: BLE001 -- a report must never turn a finished sweep into a failure
        log.warning("mltc compare: no report for sweep parent run %s: %s", parent_run_id, err)
        return None
    return files


def main(argv=None) -> int:
    """``mltc compare``; returns the exit status."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        report, files, parent = compare(args)
    except CompareError as err:
        print(f"mltc compare: {err}", file=sys.stderr)
        return 2
    # with --table-only, stdout is the table alone (to paste); the rest goes to stderr
    info = sys.stderr if args.table_only else sys.stdout
    print(markdown_table(report.board_show) if args.table_only else report.markdown())
    print(f"written: {', '.join(str(p) for p in files.values())}", file=info)
    if parent is not None and not args.no_log:
        log_report(_client(args.uri), parent.info.run_id, files)
        print(f"logged to the sweep's parent run {parent.info.run_id} (artifacts/compare/); see `mltc ui`.",
              file=info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
