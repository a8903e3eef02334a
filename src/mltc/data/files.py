"""A user's own data: one table (CSV, TSV, JSON lines, JSON, Parquet) with a text and a labels column."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from mltc.data.base import DataError, Dataset
from mltc.data.validate import check_dataset

log = logging.getLogger(__name__)

__all__ = ["load_files", "read_unlabeled", "with_unlabeled", "FORMATS"]

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION = {".gz", ".bz2", ".xz", ".zip", ".zst"}
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


def load_files(path: str | os.PathLike, text_column: str = "text", labels_column: str = "labels",
               label_sep: str = ",", split_column: str | None = None, test_path: str | os.PathLike | None = None,
               val_path: str | os.PathLike | None = None, format: str | None = None,
               name: str | None = None, unlabeled_path: str | os.PathLike | None = None,
               unlabeled_text_column: str = "text", unlabeled_format: str | None = None) -> Dataset:
    """Load a multi-label text data set from table files.

    Parameters
    ----------
    path : path
        The main file (all rows, or the training rows when ``test_path`` /
        ``val_path`` are given).
    text_column : str, default="text"
    labels_column : str, default="labels"
        Each row's labels: a list (JSON lines, JSON, Parquet) or a string joined
        by ``label_sep``. An empty value is a row with no label (kept, with a warning).
    label_sep : str, default=","
    split_column : str, optional
        Column of ``path`` saying each row's part: ``train``, ``val`` (also
        ``validation``, ``valid``, ``dev``) or ``test``, case-insensitive.
    test_path, val_path : path, optional
        Separate test / validation files with the same columns.
    format : {"csv", "tsv", "jsonl", "json", "parquet"}, optional
        Inferred from each file's suffix (compression suffixes such as ``.gz``
        allowed) when ``None``.
    name : str, optional
        Data set name (the MLflow experiment); defaults to the stem of ``path``.
    unlabeled_path : path, optional
        A file of documents without labels (CSV, TSV, JSON lines, JSON or Parquet, read
        like ``dataset=files``) for self-training (``strategy=pseudo_label``); see
        :func:`mltc.data.files.read_unlabeled`.
    unlabeled_text_column : str, default="text"
    unlabeled_format : str, optional
        Format of ``unlabeled_path``; ``None`` infers it from the suffix.

    Returns
    -------
    Dataset
        Rows in the order main file, validation file, test file. ``splits`` is
        ``None`` when nothing but training rows are given; otherwise it has
        ``"train"`` and whichever of ``"val"`` and ``"test"`` have rows. Label
        names are sorted (numerically when all are integers).
    """
    main = Path(path).expanduser()
    name = name or _stem(main)
    sources = [(main, None)] + [(Path(p).expanduser(), part) for p, part in ((val_path, "val"), (test_path, "test"))
                                if p is not None]
    texts, labels, parts, origin = [], [], [], []
    for n_file, (file, part) in enumerate(sources):
        frame = _read(file, format)
        origin += [(n_file, r) for r in range(len(frame))]
        needed = [text_column, labels_column] + ([split_column] if split_column and part is None else [])
        _require_columns(frame, needed, file)
        texts += [_as_text(v) for v in frame[text_column].tolist()]
        file_labels = [_as_labels(v, label_sep) for v in frame[labels_column].tolist()]
        empty = sum(1 for ls in file_labels if not ls)
        if empty:
            log.warning("%s: %d of %d rows have an empty %r value; they are kept as rows with no label.",
                        file, empty, len(frame), labels_column)
        labels += file_labels
        if part is not None:
            parts += [part] * len(frame)
        elif split_column:
            parts += _parse_split(frame[split_column].tolist(), file, split_column)
        else:
            parts += ["train"] * len(frame)

    label_names = sorted({lab for ls in labels for lab in ls}, key=_label_key)
    if not label_names:
        raise DataError(f"{name}: no row of {main} has a label in column {labels_column!r}; check labels_column "
                        f"and label_sep ({label_sep!r}).")
    column = {lab: j for j, lab in enumerate(label_names)}
    Y = np.zeros((len(texts), len(label_names)), dtype=np.int8)
    for i, ls in enumerate(labels):
        Y[i, [column[lab] for lab in ls]] = 1

    parts = np.asarray(parts)
    splits = {s: np.flatnonzero(parts == s) for s in ("train", "val", "test")}
    splits = {s: idx for s, idx in splits.items() if idx.size}
    if "train" not in splits:
        raise DataError(f"{name}: no training rows: every row is marked {' or '.join(sorted(splits))}. Mark some "
                        f"rows 'train' in {split_column!r}, or pass the training file as path.")
    if set(splits) == {"train"}:
        splits = None
    ds = Dataset(name=name, texts=texts, Y=Y, label_names=label_names, splits=splits,
                 description=f"user files: {', '.join(str(f) for f, _ in sources)}",
                 meta={"path": str(main)})
    ds = check_dataset(ds, train_idx=None if splits is None else splits["train"])
    # each kept row's file and data-row number there (check_dataset drops empty texts), for readable predictions
    kept = np.array([bool(t.strip()) for t in texts])
    ds.meta["sources"] = [str(f) for f, _ in sources]
    ds.meta["source_file"], ds.meta["source_row"] = np.asarray(origin, dtype=np.int64).reshape(-1, 2)[kept].T
    return with_unlabeled(ds, unlabeled_path, text_column=unlabeled_text_column, format=unlabeled_format)


def read_unlabeled(path: str | os.PathLike, *, text_column: str = "text", format: str | None = None) -> list:
    """Read the texts of a file of unlabeled documents (any other column is ignored).

    Parameters
    ----------
    path : path
        CSV, TSV, JSON lines, JSON or Parquet (format from the suffix, or ``format``).
    text_column : str, default="text"
    format : {"csv", "tsv", "jsonl", "json", "parquet"}, optional

    Returns
    -------
    list of str
        The non-empty texts, in file order (empty ones are dropped with a warning).
    """
    file = Path(path).expanduser()
    frame = _read(file, format)
    if text_column not in frame.columns:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataError(f"{file} has no column {text_column!r}; columns found: {found}. Name the text column with "
                        "dataset.unlabeled_text_column=.")
    texts = [_as_text(v) for v in frame[text_column].tolist()]
    kept = [t for t in texts if t.strip()]
    if len(kept) < len(texts):
        log.warning("%s: dropping %d unlabeled rows with empty text.", file, len(texts) - len(kept))
    if not kept:
        raise DataError(f"{file}: no unlabeled text in column {text_column!r}; check dataset.unlabeled_path and "
                        "dataset.unlabeled_text_column.")
    return kept


def with_unlabeled(ds: Dataset, path, *, text_column: str = "text", format: str | None = None) -> Dataset:
    """``ds`` carrying the texts of ``path`` as ``unlabeled_texts`` (``ds`` unchanged when ``path`` is None)."""
    if path is None:
        return ds
    ds.unlabeled_texts = read_unlabeled(path, text_column=text_column, format=format)
    log.info("%s: %d unlabeled documents from %s", ds.name, len(ds.unlabeled_texts), path)
    return ds


def _stem(path: Path) -> str:
    while path.suffix.lower() in _COMPRESSION or path.suffix.lower() in _SUFFIX_FORMAT:
        path = path.with_suffix("")
    return path.name


def _infer_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
    fmt = _SUFFIX_FORMAT.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(f"cannot tell the format of {path} from its suffix; name it .csv, .tsv, .jsonl, .json or "
                        f".parquet, or pass format= one of {', '.join(FORMATS)}.")
    return fmt


def _read(path: Path, fmt: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"file not found: {path} (resolved to {path.resolve()}). Check the path; relative paths "
                        f"are read from the working directory {Path.cwd()}.")
    fmt = fmt.lower() if fmt else _infer_format(path)
    try:
        if fmt in ("csv", "tsv"):
            # everything as text, and "" stays "" (not NaN): an empty label cell is a row with no label
            return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if fmt == "json":
            return pd.read_json(path, dtype=False)
        if fmt == "parquet":
            return pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"reading {path} as {fmt} needs an optional package: {exc}. Install pyarrow "
                        "(pip install pyarrow) or convert the file to CSV or JSON lines.") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read {path} as {fmt}: {exc}. Check the file, or pass the right format=.") from None
    raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def _require_columns(frame: pd.DataFrame, needed: Iterable[str], path: Path) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataError(f"{path} has no column {', '.join(repr(c) for c in missing)}; columns found: {found}. "
                        "Name the right ones with text_column= / labels_column= / split_column=.")


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _as_text(value) -> str:
    if _is_missing(value):
        return ""  # check_dataset drops empty texts, with a warning
    return value if isinstance(value, str) else str(value)


def _as_labels(value, sep: str) -> list[str]:
    if _is_missing(value):
        return []
    if isinstance(value, str):
        items = value.split(sep)
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        items = [value]
    # dict.fromkeys: drop repeats, keep order
    return list(dict.fromkeys(s for s in (str(v).strip() for v in items) if s))


def _label_key(label: str):
    # numeric ids sort as numbers ("2" before "10"); other names alphabetically
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def _parse_split(values: list, path: Path, column: str) -> list[str]:
    normalised = [_SPLIT_NAMES.get(str(v).strip().lower()) for v in values]
    bad = [(i, v) for i, (v, n) in enumerate(zip(values, normalised, strict=True)) if n is None]
    if bad:
        distinct = sorted({str(v) for _, v in bad})
        raise DataError(f"{path}: {len(bad)} rows have an unknown value in {column!r} (first at data row "
                        f"{bad[0][0] + 1}): {', '.join(repr(v) for v in distinct[:10])}. "
                        "Use train, val (validation, valid, dev) or test.")
    return normalised
