"""Readable per-document predictions: one table per run with ids, gold and predicted labels by name, and scores.

``predictions.npz`` (bit-packed, test only) serves ``mltc compare``; this table is for people
and for any metric mltc does not compute: each row is one validation or test document.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["prediction_frame", "read_predictions", "label_matrix", "SEP"]

log = logging.getLogger(__name__)

SEP = "|"  # joins label names in the gold / pred columns
#: Larger tables are logged as parquet only (where pyarrow is installed): a CSV of millions of scores is slow to write
CSV_MAX_CELLS = 5_000_000


def _ids(dataset, idx: np.ndarray) -> dict:
    """Id columns for rows ``idx``: the user's ids where the data set has them, else the row number in its file."""
    ids = getattr(dataset, "ids", None)
    meta = getattr(dataset, "meta", None) or {}
    cols = {}
    if "source_row" in meta and len(meta["source_row"]) == len(dataset):  # else: rows no longer match the files
        sources = [Path(p).name for p in meta["sources"]]
        cols["file"] = [sources[f] for f in np.asarray(meta["source_file"])[idx]]
        cols["row"] = np.asarray(meta["source_row"])[idx]
    else:
        cols["row"] = np.asarray(idx)
    cols = {"id": [str(ids[i]) for i in idx] if ids is not None else [str(r) for r in cols["row"]], **cols}
    return cols


def _names(P: np.ndarray, label_names) -> list:
    names = np.asarray([str(n) for n in label_names], dtype=object)
    return [SEP.join(names[row]) for row in np.asarray(P).astype(bool)]


def prediction_frame(dataset, result) -> pd.DataFrame:
    """The validation and test predictions of one run as a table.

    Parameters
    ----------
    dataset : Dataset
    result : RunResult
        Its ``extra`` holds ``test_index``, ``test_pred``, ``test_scores`` and, where
        validation was scored, ``val_index``, ``val_pred``, ``val_scores``.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (the data set's ids, else the row number), ``file`` and ``row``
        (for ``dataset=files``: the file name and the 0-based data row in it), ``split``
        (``val`` / ``test``), ``gold`` and ``pred`` (label names joined by ``|``, empty for
        none) and ``score_<label>`` per label.
    """
    frames = []
    for split in ("val", "test"):
        if f"{split}_index" not in result.extra:
            continue
        idx = np.asarray(result.extra[f"{split}_index"], dtype=np.int64)
        S = np.asarray(result.extra[f"{split}_scores"], dtype=float)
        cols = {**_ids(dataset, idx), "split": split,
                "gold": _names(dataset.Y[idx], dataset.label_names),
                "pred": _names(result.extra[f"{split}_pred"], dataset.label_names)}
        cols.update({f"score_{name}": S[:, j] for j, name in enumerate(dataset.label_names)})
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def writers(dataset, result) -> dict:
    """``{artifact name: writer(path)}`` for ``predictions.csv`` and ``predictions.parquet``."""
    frame = prediction_frame(dataset, result)
    if frame.empty:
        return {}
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:  # installed with mlflow; pandas' CSV alone without it
        return {"predictions.csv": lambda path: frame.to_csv(path, index=False)}
    out = {"predictions.csv": lambda path: _arrow_csv(frame, path),
           "predictions.parquet": lambda path: frame.to_parquet(path, index=False)}
    if frame.shape[0] * frame.shape[1] > CSV_MAX_CELLS:
        # 4,000 labels: 18M cells, a 350 MB CSV that takes ~35 s to write; the parquet file has it all
        del out["predictions.csv"]
        log.info("predictions: %d rows x %d columns; logged as predictions.parquet only (the CSV is written "
                 "up to %d cells)", frame.shape[0], frame.shape[1], CSV_MAX_CELLS)
    return out


def _arrow_csv(frame: pd.DataFrame, path) -> None:
    """``frame.to_csv(path, index=False)``, written by Arrow's C++ writer: the same cells when read back
    (floats in their shortest round-trip form) in a tenth of the time (0.04 s against 0.39 s for
    GoEmotions' 10,853 x 33 table); a single run waits for this file before it ends."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), str(path),
                     write_options=pa_csv.WriteOptions(quoting_style="needed"))


def read_predictions(path) -> pd.DataFrame:
    """Read ``predictions.csv`` or ``predictions.parquet`` with every id and label cell as text."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"id": str, "file": str, "gold": str, "pred": str}, keep_default_na=False)


def label_matrix(frame: pd.DataFrame, column: str, labels=None):
    """``(Y, labels)``: the 0/1 matrix of ``frame[column]`` (``gold`` or ``pred``) over ``labels``
    (default: the ``score_`` columns' labels, in order)."""
    if labels is None:
        labels = [c[len("score_"):] for c in frame.columns if c.startswith("score_")]
    col = {name: j for j, name in enumerate(labels)}
    Y = np.zeros((len(frame), len(labels)), dtype=np.int8)
    for i, cell in enumerate(frame[column].tolist()):
        for name in (str(cell).split(SEP) if cell else []):
            Y[i, col[name]] = 1
    return Y, list(labels)
