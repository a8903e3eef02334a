"""``mltc predict``: label new texts with a logged model.

    mltc predict --run <run id> texts.csv --text-column text -o labels.csv --scores
    mltc predict --model models:/goemotions@champion < texts.txt
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("mltc")

__all__ = ["main", "read_texts", "PredictError"]

USAGE_EXAMPLES = """examples:
  mltc predict --run 3f2a... texts.csv -o labels.csv            # a run's model (logged by `mltc run`)
  mltc predict --model models:/goemotions@champion texts.jsonl --scores -o out.jsonl
  echo "what a lovely day" | mltc predict --model models:/goemotions@champion
input: CSV/TSV/JSONL/JSON/Parquet with a text column (--text-column), or plain text with one text per line
(any other suffix, or stdin). Output: CSV or JSON lines (from -o's suffix, or --output-format), in input order.
"""

TABLE_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}


class PredictError(RuntimeError):
    """Input or model that cannot be used; the message says what to change."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mltc predict", description="Label texts with a model logged by mltc.",
                                epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run id whose model to use (runs:/<id>/model)")
    src.add_argument("--model", help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<id>/model, or a "
                                     "model folder")
    p.add_argument("input", nargs="?", default="-", help="input file (default: stdin, one text per line)")
    p.add_argument("--text-column", default="text", help="column holding the texts in a table file (default text)")
    p.add_argument("--format", choices=(*TABLE_FORMATS, "lines"), default=None,
                   help="input format (default: from the suffix; anything else is one text per line)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--output-format", choices=("csv", "jsonl"), default=None,
                   help="default: from the output suffix, else csv")
    p.add_argument("--scores", action="store_true", help="add one score column per label")
    p.add_argument("--keep", default="", help="comma-separated input columns to copy to the output (e.g. an id)")
    p.add_argument("--label-sep", default=",", help="separator of the labels in CSV output (default ,)")
    p.add_argument("--batch-size", type=int, default=4096, help="texts scored at once (default 4096)")
    p.add_argument("--uri", default=None, help="tracking store (default: $MLFLOW_TRACKING_URI or runs/mlflow.db)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    return p


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    try:
        return _predict(a)
    except PredictError as err:
        print(f"mltc predict: {err}", file=sys.stderr)
        return 2


def _tracking_uri(uri):
    from mltc.paths import default_tracking_uri

    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _note(a, msg):
    if not a.quiet:
        print(msg, file=sys.stderr, flush=True)


def _predict(a) -> int:
    if a.batch_size < 1:
        raise PredictError("--batch-size must be at least 1.")
    tracking_uri = _tracking_uri(a.uri)
    uri = resolve(run=a.run, model=a.model, tracking_uri=tracking_uri)  # before reading: an unknown run fails fast
    frame, texts = read_texts(a.input, text_column=a.text_column, fmt=a.format)
    keep = [c for c in a.keep.split(",") if c]
    missing = [c for c in keep if frame is None or c not in frame.columns]
    if missing:
        raise PredictError(f"--keep names column(s) {', '.join(missing)} that the input does not have.")
    t0 = time.perf_counter()
    clf = load_model(uri, tracking_uri)
    _note(a, f"model {uri}: {len(clf.label_names)} labels; loaded in {time.perf_counter() - t0:.1f}s")
    S = score_batches(clf, texts, a.batch_size, progress=None if a.quiet else _note_progress)
    P = clf.decide(S, texts)
    labels = clf.labels_of(P)
    out = pd.DataFrame({c: frame[c].to_numpy() for c in keep}) if keep else pd.DataFrame(index=range(len(texts)))
    fmt = a.output_format or ("jsonl" if Path(a.output).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
    write_output(out, labels, S if a.scores else None, clf.label_names, a.output, fmt, a.label_sep)
    blank = sum(1 for t in texts if not t.strip())
    summary = f"{len(texts)} texts labelled in {time.perf_counter() - t0:.1f}s"
    if blank:
        summary += f"; {blank} blank texts got no label"
    if clf.batch_dependent:
        summary += " (decision rule pcut: labels depend on the whole input, scored as one batch)"
    _note(a, summary)
    return 0


def _note_progress(done, total, seconds):
    print(f"\r  {done}/{total} texts ({done / max(seconds, 1e-9):.0f}/s)", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


def score_batches(clf, texts, batch_size, progress=None) -> np.ndarray:
    """Scores of ``texts`` in batches of ``batch_size`` (the decision rule is applied afterwards, to all)."""
    if len(texts) <= batch_size:
        return clf.predict_scores(texts)
    parts, t0 = [], time.perf_counter()
    for i in range(0, len(texts), batch_size):
        parts.append(clf.predict_scores(texts[i:i + batch_size]))
        if progress is not None:
            progress(min(i + batch_size, len(texts)), len(texts), time.perf_counter() - t0)
    return np.vstack(parts)


def read_texts(path: str, *, text_column="text", fmt=None):
    """``(frame or None, texts)`` from a table file, a text file (one per line) or stdin (``-``)."""
    from mltc.data.base import DataError
    from mltc.data.files import _read
    from mltc.serving.model import check_texts

    if fmt is None and path != "-":
        suffixes = [s.lower() for s in Path(path).suffixes if s.lower() not in (".gz", ".bz2", ".zip", ".xz")]
        fmt = _SUFFIX.get(suffixes[-1], "lines") if suffixes else "lines"
    fmt = fmt or "lines"
    if fmt == "lines":
        if path == "-":
            raw = sys.stdin.read()
        else:
            if not Path(path).is_file():
                raise PredictError(f"input file not found: {path}")
            raw = Path(path).read_text(encoding="utf-8")
        return None, raw.splitlines()
    try:
        if path == "-":
            frame = _read_stdin(fmt)
        else:
            frame, _ = _read(Path(path).expanduser(), fmt)
    except DataError as err:
        raise PredictError(str(err)) from None
    if text_column not in frame.columns:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise PredictError(f"{path} has no column {text_column!r}; columns found: {found}. Name the text column "
                           "with --text-column.")
    try:
        texts = check_texts(frame[text_column].tolist())
    except TypeError as err:
        raise PredictError(f"column {text_column!r} of {path}: {err}") from None
    return frame, texts


def _read_stdin(fmt):
    data = sys.stdin.buffer.read()
    import io

    buf = io.BytesIO(data)
    if fmt in ("csv", "tsv"):
        return pd.read_csv(buf, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        return pd.read_json(buf, lines=True, dtype=False)
    if fmt == "json":
        return pd.read_json(buf, dtype=False)
    return pd.read_parquet(buf)


def resolve(*, run=None, model=None, tracking_uri=None) -> str:
    """The model URI of ``--run`` / ``--model``; a run must exist and have a logged model."""
    import mlflow

    from mltc.serving.mlflow_model import model_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        uri = model_uri(run=run, model=model)
    except (ValueError, FileNotFoundError) as err:
        raise PredictError(str(err)) from None
    if run is not None:
        _check_run_has_model(mlflow.MlflowClient(tracking_uri), run, tracking_uri)
    return uri


def load_model(uri, tracking_uri=None):
    """The :class:`~mltc.serving.TextClassifierModel` at an MLflow model URI."""
    from mlflow.exceptions import MlflowException

    from mltc.serving.mlflow_model import load

    try:
        return load(uri)
    except MlflowException as err:
        raise PredictError(f"cannot load {uri} from {tracking_uri}: {err.message}") from None
    except TypeError as err:
        raise PredictError(str(err)) from None


def _check_run_has_model(client, run_id, tracking_uri):
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise PredictError(f"no run {run_id!r} in the tracking store {tracking_uri}; copy the run id from "
                           "`mltc compare` or the MLflow UI (`mltc ui`), or pass --uri.") from None
    outputs = getattr(run, "outputs", None)
    if not (outputs and outputs.model_outputs):
        raise PredictError(f"run {run_id} has no logged model: sweep jobs do not log one unless "
                           "tracking.log_model=true (and single runs with tracking.log_model=false do not). "
                           "Rerun its configuration with tracking.log_model=true, or promote the sweep's best "
                           "configuration with `mltc promote --sweep <id|latest>`.")


def write_output(out: pd.DataFrame, labels, scores, label_names, path, fmt, label_sep=","):
    """Labels (and scores) as CSV or JSON lines, in input order."""
    if fmt == "jsonl":
        rows = out.to_dict(orient="records") if len(out.columns) else [{} for _ in labels]
        names = [str(n) for n in label_names]
        lines = []
        for i, row in enumerate(rows):
            row = {**{k: _jsonable(v) for k, v in row.items()}, "labels": labels[i]}
            if scores is not None:
                row["scores"] = dict(zip(names, (float(x) for x in scores[i])))
            lines.append(json.dumps(row, ensure_ascii=False))
        text = "\n".join(lines) + ("\n" if lines else "")
        if path == "-":
            sys.stdout.write(text)
        else:
            Path(path).write_text(text, encoding="utf-8")
        return
    out = out.copy()
    out["labels"] = [label_sep.join(map(str, ls)) for ls in labels]
    if scores is not None:
        for j, name in enumerate(label_names):
            out[f"score.{name}"] = scores[:, j]
    out.to_csv(sys.stdout if path == "-" else path, index=False)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v
