"""Which runs: the store, MLflow queries, the ``--filter`` language, one row per run, configurations."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from mltc.keys import SWEEP_LINK, later_defaults, sweep_link_tag

log = logging.getLogger("mltc")

__all__ = ["CompareError", "GROUPS", "GROUP_ALIASES", "LATER_DEFAULTS", "open_store", "find_parent", "parse_filters",
           "load_runs", "runs_frame", "latest_runs", "parse_by", "config_columns", "split_columns",
           "fixed_settings", "local_artifact", "label"]

GROUPS = ("dataset", "split", "features", "augment", "strategy", "model", "model/loss", "thresholds",
          "experiment")
GROUP_ALIASES = {"loss": "model/loss"}
# Options added to the configs after runs were logged, with their defaults (as logged params): a run logged
# before an option existed reads as if it had the default (for --filter, and one configuration with a later
# run at that default). The same table gives resume's config hash (mltc.keys.LATER_OPTIONS).
LATER_DEFAULTS = later_defaults()
# params that change with the seed but do not make another configuration
_SEED_PARAMS = ("params.seed", "params.run_name")


class CompareError(RuntimeError):
    """Nothing to compare, or a selection that cannot work; the message says what to change."""


# ---------------------------------------------------------------- the store
def open_store(uri=None):
    """An MLflow client on the store ``mltc run`` uses (:func:`mltc.paths.tracking_uri`), read-only.

    A SQLite store that does not exist is an error naming the path, not a new empty database.
    """
    from mltc.paths import tracking_uri, tracking_uri_source

    resolved = tracking_uri(uri)
    if resolved.startswith("sqlite:///"):
        path = Path(resolved[len("sqlite:///"):])
        if not path.is_file():
            raise CompareError(f"no MLflow store at {path} (from {tracking_uri_source(uri)}); run `mltc run` "
                               "first, or point at the store you ran with: --uri sqlite:///PATH/mlflow.db or "
                               "tracking.uri=..., $MLFLOW_TRACKING_URI, or conf/local/default.yaml.")
        from mltc.compare.store import SqliteRuns

        try:
            return SqliteRuns(path, resolved)
        except Exception as err:  # noqa: BLE001 -- not a store this reader knows: MLflow's client reads it
            log.debug("reading %s with MLflow's client: %s", path, err)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(resolved)
    client.mltc_uri = resolved  # named in messages
    return client


def _store_name(client) -> str:
    return getattr(client, "mltc_uri", None) or getattr(client, "tracking_uri", "") or "the store"


def local_artifact(artifact_uri: str | None, name: str) -> Path | None:
    """The local path of artifact ``name`` when the run's artifact location is a local directory, else None."""
    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)) / name
    if parsed.scheme == "" or re.match(r"^[A-Za-z]$", parsed.scheme or ""):  # a plain (or Windows) path
        return Path(artifact_uri) / name
    return None


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
        what = "no sweep in" if sweep == "latest" else f"no sweep {sweep!r} in"
        raise CompareError(f"{what} the selected experiments of {_store_name(client)}; sweeps are made by "
                           "`mltc run -m ...`. Is this the store you ran with (--uri, tracking.uri=...)? "
                           "For runs outside sweeps use --sweep none, or leave --sweep out.")
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
                               "e.g. --filter model=logreg or --filter \"tags.mltc.model='logreg'\".")
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

    ``sweep`` is a sweep id, a parent run id, ``latest``, or ``none`` (only runs outside any sweep). A sweep's
    runs are its children and the earlier runs it reused (resume): those carry the tag
    ``mltc.sweep.<sweep id> = reused``.

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
            raise CompareError(f"no experiment named {', '.join(sorted(missing))} in {_store_name(client)}; "
                               f"known: {', '.join(sorted(e.name for e in exps)) or 'none'}.")
        exps = [e for e in exps if e.name in experiments]
    ids = [e.experiment_id for e in exps]
    if not ids:
        raise CompareError(f"{_store_name(client)} has no experiments; run `mltc run -m ...` first (or pass --uri).")
    from mltc.tracking import mark_orphans

    mark_orphans(client, ids)  # runs whose process is gone (kill -9) say KILLED, not RUNNING forever
    standalone = sweep is not None and sweep.lower() == "none"
    parent = find_parent(client, sweep, ids) if sweep and not standalone else None
    base = ["attributes.status = 'FINISHED'"] + ([filter_string] if filter_string else [])
    if parent is not None:
        runs = _search(client, ids, base + [f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"])
        sid = parent.data.tags.get("mltc.sweep_id")
        if sid:
            seen = {r.info.run_id for r in runs}
            runs += [r for r in _search(client, ids, base + [f"tags.`{sweep_link_tag(sid)}` = 'reused'"])
                     if r.info.run_id not in seen]
            runs.sort(key=lambda r: r.info.start_time or 0)
    else:
        runs = _search(client, ids, base + (["tags.`mlflow.parentRunId` IS NULL"] if standalone else []))
    runs = [r for r in runs if r.data.tags.get("mltc.role") != "sweep"]
    if not runs:
        raise CompareError(f"no FINISHED runs in {_store_name(client)} match this selection; check --experiment "
                           "/ --sweep / --filter.")
    if parent is None and not standalone:
        parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
        if len(parents) == 1 and None not in parents:
            parent = client.get_run(parents.pop())
    return runs, parent


def _search(client, ids, parts):
    return list(client.search_runs(ids, filter_string=" and ".join(parts), max_results=50000,
                                   order_by=["attributes.start_time ASC"]))


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
               "artifact_uri": r.info.artifact_uri,
               "reused": any(k.startswith(SWEEP_LINK) and v == "reused" for k, v in t.items()),
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


def resolve_key(key: str) -> str:
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
        keys.append(resolve_key(key.strip()))
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


def _seed_like(df: pd.DataFrame, key: str) -> bool:
    """A param that is the seed wherever it is set (``random_state: ${seed}``): it varies with the seed only."""
    given = df[key].notna() & df[key].astype(str).ne("")
    return bool(given.any() and (df.loc[given, key].astype(str) == df.loc[given, "seed"].astype(str)).all())


def split_columns(df: pd.DataFrame, cols: list) -> list:
    """Keys to add to ``cols`` so that one configuration holds only runs that differ by seed alone.

    Groups first (``strategy``, ``model``, ...), then ``params.<key>``; a key is added when it takes more
    than one value among the runs of one configuration. Seed-valued params (``random_state: ${seed}``)
    and the run name are not counted.
    """
    extra: list = []
    params = [c for c in df.columns if c.startswith("params.") and c not in _SEED_PARAMS and c not in cols]
    for key in [g for g in GROUPS if g not in cols] + params:
        if df[key].astype(str).nunique() < 2 or key.startswith("params.") and _seed_like(df, key):
            continue
        keys = cols + extra
        ids = label(df, keys) if keys else pd.Series("", index=df.index)
        if (df[key].astype(str).groupby(ids).nunique() > 1).any():
            extra.append(key)
    return extra


def fixed_settings(df: pd.DataFrame, cols: list) -> dict:
    """The groups that are the same in every selected run (``{"model": "logreg", ...}``), for the report."""
    return {g: str(df[g].iloc[0]) for g in GROUPS if g not in cols and df[g].astype(str).nunique() == 1
            and str(df[g].iloc[0])}


def label(df, cols):
    if not cols:
        return pd.Series("all runs", index=df.index)
    return df[cols].astype(str).apply(lambda row: " ".join(f"{c}={v}" for c, v in row.items()), axis=1)
