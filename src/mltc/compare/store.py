"""A read-only reader of MLflow's SQLite store, for ``mltc compare``'s queries.

Importing MLflow and its SQLAlchemy store costs seconds of CPU, more than the comparison itself; a SQLite
store is read here with :mod:`sqlite3` instead (opened read-only: reading never creates or migrates a store).
It answers the calls :mod:`mltc.compare.runs` makes (``search_experiments``, ``search_runs``, ``get_run``)
with objects shaped like MLflow's (``run.info.run_id``, ``run.data.tags``, ...). A filter it cannot
evaluate exactly (``OR``, ``IN``, parentheses, other attributes), and every write, goes to MLflow's own client.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

__all__ = ["SqliteRuns", "Unsupported"]


class Unsupported(ValueError):
    """A filter this reader does not evaluate; MLflow's client answers instead."""


_CLAUSE = re.compile(r"^\s*(tags|tag|params|param|metrics|metric|attributes|attribute|attr|run)\."
                     r"(`[^`]+`|\"[^\"]+\"|[\w.\-/]+)\s*"
                     r"(=|!=|>=|<=|>|<|IS\s+NOT\s+NULL|IS\s+NULL|NOT\s+ILIKE|NOT\s+LIKE|ILIKE|LIKE)\s*(.*?)\s*$",
                     re.IGNORECASE)
_ATTRIBUTES = {"status": "status", "run_id": "run_id", "run_name": "run_name", "start_time": "start_time",
               "end_time": "end_time"}
_KIND = {"tag": "tags", "param": "params", "metric": "metrics", "attribute": "attributes", "attr": "attributes",
         "run": "attributes"}


def _split_and(text: str) -> list:
    """``a and b and c`` -> clauses, not splitting inside quotes; OR and parentheses are :class:`Unsupported`."""
    parts, cur, quote = [], [], None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
            cur.append(ch)
        elif ch in "()":
            raise Unsupported("parentheses")
        elif text[i:i + 5].lower() == " and ":
            parts.append("".join(cur))
            cur = []
            i += 5
            continue
        elif text[i:i + 4].lower() == " or ":
            raise Unsupported("or")
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _value(text: str):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        raise Unsupported(f"value {text!r}") from None


def _like(pattern: str, flags=0):
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(rf"^{rx}$", flags | re.DOTALL)


def compile_filter(filter_string: str | None):
    """A predicate ``run -> bool`` for an MLflow filter string made of ``and``-joined comparisons."""
    tests = []
    for clause in _split_and(filter_string or ""):
        m = _CLAUSE.match(clause)
        if m is None:
            raise Unsupported(clause)
        kind, key, op, raw = m.groups()
        kind = _KIND.get(kind.lower(), kind.lower())
        key = key.strip("`\"")
        op = re.sub(r"\s+", " ", op.upper())
        if kind == "attributes":
            if key not in _ATTRIBUTES:
                raise Unsupported(f"attribute {key}")
        if op in ("IS NULL", "IS NOT NULL"):
            if raw:
                raise Unsupported(clause)
            value = None
        else:
            value = _value(raw)
        if kind in ("tags", "params") and op not in ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE",
                                                     "IS NULL", "IS NOT NULL"):
            raise Unsupported(clause)
        if kind == "metrics" and not isinstance(value, float) and value is not None:
            raise Unsupported(clause)
        tests.append(_test(kind, key, op, value))
    return lambda run: all(t(run) for t in tests)


def _get(run, kind, key):
    if kind == "attributes":
        return getattr(run.info, _ATTRIBUTES[key])
    return getattr(run.data, kind).get(key)


def _test(kind, key, op, value):
    compare = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        rx = _like(str(value), re.IGNORECASE if "ILIKE" in op else 0)
        negate = op.startswith("NOT")

        def test(run):
            v = _get(run, kind, key)
            return v is not None and (rx.match(str(v)) is None) == negate
        return test
    if op == "IS NULL":
        return lambda run: _get(run, kind, key) is None
    if op == "IS NOT NULL":
        return lambda run: _get(run, kind, key) is not None
    fn = compare[op]

    def test(run):
        v = _get(run, kind, key)
        if v is None:
            return False  # as MLflow's SQL join: a run without the key does not match a comparison
        if isinstance(value, float):
            try:
                return fn(float(v), value)
            except (TypeError, ValueError):
                return False
        return fn(str(v), value)
    return test


class SqliteRuns:
    """Read runs from an MLflow SQLite database without MLflow; anything else goes to MLflow's client.

    Parameters
    ----------
    path : str or Path
        The database file; it must exist (it is opened read-only).
    uri : str
        The tracking URI, for MLflow's client when one is needed.
    """

    def __init__(self, path, uri: str):
        self.path = Path(path)
        self.uri = self.mltc_uri = uri
        self._mlflow = None
        self._runs = None
        self._con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:  # the columns read below: a store of another layout is MLflow's to read
            for query in ("SELECT run_uuid, name, status, start_time, end_time, artifact_uri, experiment_id, "
                          "lifecycle_stage FROM runs", "SELECT experiment_id, name, artifact_location, "
                          "lifecycle_stage FROM experiments", "SELECT key, value, run_uuid FROM tags",
                          "SELECT key, value, run_uuid FROM params",
                          "SELECT key, value, is_nan, run_uuid FROM latest_metrics"):
                self._con.execute(query + " LIMIT 0")
        except sqlite3.Error:
            self._con.close()
            raise

    @property
    def mlflow(self):
        """MLflow's own client on the same store (imported on first use)."""
        if self._mlflow is None:
            from mlflow.tracking import MlflowClient

            self._mlflow = MlflowClient(self.uri)
        return self._mlflow

    def __getattr__(self, name):
        # writes (log_artifacts, set_tag, ...) and anything else: MLflow's client
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.mlflow, name)

    def search_experiments(self, *args, **kwargs):
        if args or kwargs:
            return self.mlflow.search_experiments(*args, **kwargs)
        rows = self._con.execute("SELECT experiment_id, name, artifact_location FROM experiments "
                                 "WHERE lifecycle_stage = 'active' ORDER BY experiment_id").fetchall()
        return [SimpleNamespace(experiment_id=str(i), name=n, artifact_location=a) for i, n, a in rows]

    def _all_runs(self) -> dict:
        """Every active run with its tags, params and latest metrics, read once."""
        if self._runs is None:
            runs = {}
            for rid, name, status, start, end, art, exp in self._con.execute(
                    "SELECT run_uuid, name, status, start_time, end_time, artifact_uri, experiment_id FROM runs "
                    "WHERE lifecycle_stage = 'active'"):
                runs[rid] = SimpleNamespace(
                    info=SimpleNamespace(run_id=rid, run_uuid=rid, run_name=name, status=status, start_time=start,
                                         end_time=end, artifact_uri=art, experiment_id=str(exp)),
                    data=SimpleNamespace(tags={}, params={}, metrics={}))
            for table, attr in (("tags", "tags"), ("params", "params")):
                for key, value, rid in self._con.execute(f"SELECT key, value, run_uuid FROM {table}"):  # noqa: S608
                    if rid in runs:
                        getattr(runs[rid].data, attr)[key] = value
            for key, value, is_nan, rid in self._con.execute(
                    "SELECT key, value, is_nan, run_uuid FROM latest_metrics"):
                if rid in runs:
                    runs[rid].data.metrics[key] = float("nan") if is_nan else value
            self._runs = runs
        return self._runs

    def get_run(self, run_id):
        run = self._all_runs().get(run_id)
        if run is None:
            return self.mlflow.get_run(run_id)  # MLflow's own error for an unknown id
        return run

    def search_runs(self, experiment_ids, filter_string="", max_results=1000, order_by=None, **kwargs):
        try:
            if kwargs:
                raise Unsupported(", ".join(kwargs))
            keep = compile_filter(filter_string)
            orders = [re.sub(r"\s+", " ", o.strip()).lower() for o in order_by or ()]
            if any(o not in ("attributes.start_time asc", "attributes.start_time desc",
                             "attributes.end_time desc", "attributes.end_time asc") for o in orders):
                raise Unsupported(f"order_by {order_by}")
        except Unsupported:
            return list(self.mlflow.search_runs(experiment_ids, filter_string=filter_string,
                                                max_results=max_results, order_by=order_by, **kwargs))
        ids = {str(i) for i in experiment_ids}
        runs = [r for r in self._all_runs().values() if r.info.experiment_id in ids and keep(r)]
        # MLflow's default order: newest first
        orders = orders or ["attributes.start_time desc"]
        attr, direction = orders[0].split(".", 1)[1].split()
        runs.sort(key=lambda r: (getattr(r.info, attr) or 0, r.info.run_id), reverse=direction == "desc")
        return runs[:max_results]

    def close(self):
        self._con.close()
