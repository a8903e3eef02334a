"""The table: the ``--metrics`` column language, the leaderboard (mean and s.d. over seeds) and its text."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mltc.compare.runs import GROUPS, CompareError, label, resolve_key
from mltc.keys import TIME, VAL

__all__ = ["ALIASES", "DEFAULT_METRICS", "Column", "parse_columns", "is_score", "leaderboard", "format_board",
           "markdown_table", "rank_metric"]

GROUP_METRICS = ("head_macro_f1", "medium_macro_f1", "tail_macro_f1")
# validation beside test: the board is ranked by validation (selection never looks at test scores)
DEFAULT_METRICS = (f"{VAL}macro_f1", "macro_f1", f"{VAL}micro_f1", "micro_f1", *GROUP_METRICS, f"{TIME}fit")

# Named columns for the README's tables: (expression, header, format). The names are the runner's
# (mltc.keys): profiles are <part>_<measure>, stage timings TIME + stage.
ALIASES = {
    "rows": ("n_train", "train rows", ".0f"),
    "rows_after": ("n_train_fit", "train rows after", ".0f"),
    "mean_ir": ("train_mean_ir->train_resampled_mean_ir", "MeanIR before -> after", ".1f"),
    "scumble": ("train_scumble->train_resampled_scumble", "SCUMBLE before -> after", ".3f"),
    "cvir": ("train_cvir->train_resampled_cvir", "CVIR before -> after", ".2f"),
    "resample_s": (f"{TIME}resample", "resample s", ".1f"),
    "fit_s": (f"{TIME}fit", "fit s", ".0f"),
    "wall_s": ("wall_s", "wall s", ".0f"),
    "run_s": ("run_s", "run s", ".0f"),
    "tail_f1": ("tail_micro_f1/tail_macro_f1", "tail micro / macro F1", None),
    "head": ("head_macro_f1", "head", None),
    "medium": ("medium_macro_f1", "medium", None),
    "tail": ("tail_macro_f1", "tail", None),
}
_SCORE = re.compile(r"(^|_)(f1|precision|recall|accuracy|pr_auc|roc_auc|jaccard_macro|jaccard_samples)$")
_INTERNAL = ("run_id", "start_time", "end_time", "parent_run_id", "seed", "config_hash", "params_key", "config",
             "artifact_uri", "reused")


@dataclass
class Column:
    """One column of the table: one key, or two joined as ``a -> b`` or ``a / b``.

    ``fmt`` is a Python format spec (``.2f``); None picks one from the key.
    """

    keys: tuple
    join: str = ""
    header: str = ""
    fmt: str | None = None


def pretty(key: str) -> str:
    if key.startswith(("params.", "tags.")):
        return key.split(".", 1)[1]
    if key == f"{TIME}fit":
        return "fit s"
    if key.startswith(TIME):
        return f"{key[len(TIME):]} s"
    if key.startswith(VAL) and is_score(key):
        return "val " + pretty(key[len(VAL):])
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
            default_header = a_header or join.join(pretty(k) for k in keys)
            cols.append(Column(keys=keys, join=join, header=header.strip() or default_header,
                               fmt=fmt.strip() or a_fmt))
    return cols


def is_score(key: str) -> bool:
    """A metric in [0, 1] where higher is better (F1, precision, recall, AUCs, accuracy, Jaccard)."""
    return not key.startswith(("params.", "tags.")) and bool(_SCORE.search(key))


def rank_metric(df: pd.DataFrame, metric: str, by: str = "validation") -> tuple[str, str]:
    """The column that ranks configurations for test score ``metric``, and a sentence saying which.

    ``by="validation"`` (default) ranks by ``val_<metric>`` where every run logged it: configurations are
    chosen on validation, never on test scores. Without it (thresholds tuned out-of-fold, older runs),
    or with ``by="test"``, the test score ranks and the sentence says so.
    """
    val = metric if metric.startswith(VAL) else f"{VAL}{metric}"
    if by == "validation" and val in df and df[val].notna().all():
        return val, f"ranked by validation {pretty(metric.removeprefix(VAL))} (the split thresholds were tuned on)"
    if by == "validation":
        return metric, (f"ranked by test {pretty(metric)}: these runs logged no validation score for every run "
                        "(thresholds tuned out-of-fold, or older runs), so this ranking looks at test scores")
    return metric, f"ranked by test {pretty(metric)} (--rank-by test)"


def _numeric(s: pd.Series) -> pd.Series | None:
    vals = pd.to_numeric(s, errors="coerce")
    return vals if vals.notna().sum() == s.notna().sum() and s.notna().any() else None


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
    sort_key = resolve_key(ALIASES.get((sort or "").partition(":")[0], ((sort or "").partition(":")[0],))[0])
    if sort_key in df and sort_key not in keys and sort_key not in cols and sort_key != "run":
        keys.append(sort_key)  # e.g. the validation score that ranks a table showing test scores
    missing = [k for k in keys if k not in df]
    if missing:
        known = sorted(c for c in df.columns if c not in (*_INTERNAL, *GROUPS) and not c.startswith(("params.",
                                                                                                      "tags.")))
        raise CompareError(f"{', '.join(missing)} is not logged by these runs; choose from metrics "
                           f"{', '.join(known)}, named columns {', '.join(ALIASES)}, or params.<key> / tags.<key>.")
    df = df.assign(config=label(df, cols))
    g = df.groupby("config", sort=False)
    out = g[cols].first() if cols else pd.DataFrame(index=g.size().index)
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
        key = resolve_key(ALIASES.get(key, (key,))[0])
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


def _default_fmt(key: str, percent: bool, digits: int | None) -> str:
    if is_score(key):
        return f".{digits if digits is not None else (2 if percent else 4)}f"
    if key.startswith(TIME) or key in ("wall_s", "run_s"):
        return ".1f"
    if key.startswith("n_") or key.endswith(("_n_instances", "_n_labels", "_n_labelsets")):
        return ".0f"
    return ".4g"


def format_board(board, columns, cols, *, percent=False, digits=None, sd="auto", bold_best=False,
                 rank=False, headers=None, ci=None) -> pd.DataFrame:
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
    ci : dict, optional
        ``{metric: {config: (lo, hi)}}``: a bootstrap confidence interval shown after the metric's column.
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
        key = col.keys[0]
        if ci and len(col.keys) == 1 and key in ci:
            scale = 100.0 if percent else 1.0
            fmt = col.fmt or _default_fmt(key, percent, digits)
            show[f"{header} 95% CI"] = [
                f"[{format(ci[key][c][0] * scale, fmt)}, {format(ci[key][c][1] * scale, fmt)}]"
                if c in ci[key] else "" for c in board["config"]]
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
