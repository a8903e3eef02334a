"""A user's own data: one table (CSV, TSV, JSON lines, JSON, Parquet) with a text and a labels column."""
from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from mltc.data.base import DataError, Dataset
from mltc.data.validate import check_dataset

log = logging.getLogger(__name__)

__all__ = ["load_files", "read_unlabeled", "with_unlabeled", "default_name", "FORMATS", "UNLABELED_KEYS"]

# the dataset options of a run that name a file of unlabeled documents (any loader): with_unlabeled's arguments
UNLABELED_KEYS = {"unlabeled_path": "path", "unlabeled_text_column": "text_column", "unlabeled_format": "format"}

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION = {".gz", ".bz2", ".xz", ".zip", ".zst"}
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
_MAX_REPORTED = 10


def load_files(path: str | os.PathLike, text_column: str = "text", labels_column: str = "labels",
               label_sep: str = ",", split_column: str | None = None, test_path: str | os.PathLike | None = None,
               val_path: str | os.PathLike | None = None, format: str | None = None,
               name: str | None = None, group_column: str | None = None, id_column: str | None = None) -> Dataset:
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
        Data set name: the MLflow experiment and the report title. Defaults to the
        stem of ``path`` (``data/tweets.train.csv`` -> ``tweets.train``), see
        :func:`default_name`.
    group_column : str, optional
        Column naming each row's group (a topic, an author, a source document), read
        into ``Dataset.groups`` so that ``split.group_column`` keeps a group's rows in
        one split. An empty value makes the row a group of its own. The validation and
        test files may lack the column (their rows are not split).
    id_column : str, optional
        Column with each row's document id, read into ``Dataset.ids`` (as strings) for
        readable predictions. Without it a row's id is its row number within its own
        file, counted from 0 (as pandas numbers the rows).

    Returns
    -------
    Dataset
        Rows in the order main file, validation file, test file. ``splits`` is
        ``None`` when nothing but training rows are given; otherwise it has
        ``"train"`` and whichever of ``"val"`` and ``"test"`` have rows. Label
        names are sorted (numerically when all are integers).

    Notes
    -----
    Wrong input is refused with the file, the line (JSON lines) or row, and the value:
    malformed lines (every one of them counted), texts that are not strings, labels that
    are not names (``true``, ``1.5``, ``{"a": 1}``, nested lists). Integer labels
    (``[3, 7]``) are accepted when every label in a file's column is an integer; they
    become the names ``"3"`` and ``"7"``. A column mixing integers and names is refused.
    """
    main = Path(path).expanduser()
    name = name or default_name(main)
    sources = [(main, None)] + [(Path(p).expanduser(), part) for p, part in ((val_path, "val"), (test_path, "test"))
                                if p is not None]
    texts, labels, parts, ids, groups, origin = [], [], [], [], [], []
    for n_file, (file, part) in enumerate(sources):
        frame, where = _read(file, format)
        origin += [(n_file, r) for r in range(len(frame))]
        needed = ([text_column, labels_column] + ([split_column] if split_column and part is None else [])
                  + ([group_column] if group_column and part is None else []) + ([id_column] if id_column else []))
        _require_columns(frame, needed, file)
        texts += _texts(frame[text_column].tolist(), file, text_column, where)
        file_labels = _labels(frame[labels_column].tolist(), label_sep, file, labels_column, where)
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
        ids += _ids(frame, id_column, file, where)
        if group_column:
            groups += _groups(frame, group_column, file, part or "train")

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
                 description=f"{name} (your files: {', '.join(str(f) for f, _ in sources)})",
                 meta={"path": str(main)}, ids=ids,
                 groups=np.asarray(groups, dtype=object) if group_column else None)
    ds = check_dataset(ds, train_idx=None if splits is None else splits["train"])
    # each kept row's file and data-row number there (check_dataset drops empty texts), for readable predictions
    kept = np.array([bool(t.strip()) for t in texts])
    ds.meta["sources"] = [str(f) for f, _ in sources]
    ds.meta["source_file"], ds.meta["source_row"] = np.asarray(origin, dtype=np.int64).reshape(-1, 2)[kept].T
    return ds


def default_name(path: str | os.PathLike) -> str:
    """The name a data set read from ``path`` gets without ``dataset.name``: the file's stem.

    Format and compression suffixes are removed: ``data/tweets.train.jsonl.gz`` -> ``tweets.train``.
    """
    return _stem(Path(path).expanduser())


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
    frame, where = _read(file, format)
    if text_column not in frame.columns:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataError(f"{file} has no column {text_column!r}; columns found: {found}. Name the text column with "
                        "dataset.unlabeled_text_column=.")
    texts = _texts(frame[text_column].tolist(), file, text_column, where)
    kept = [t for t in texts if t.strip()]
    if len(kept) < len(texts):
        log.warning("%s: dropping %d unlabeled rows with empty text.", file, len(texts) - len(kept))
    if not kept:
        raise DataError(f"{file}: no unlabeled text in column {text_column!r}; check dataset.unlabeled_path and "
                        "dataset.unlabeled_text_column.")
    return kept


def with_unlabeled(ds: Dataset, path, *, text_column: str = "text", format: str | None = None) -> Dataset:
    """``ds`` carrying the texts of ``path`` as ``unlabeled_texts`` (``ds`` unchanged when ``path`` is None).

    The one place unlabeled documents join a data set, whatever loaded it: a run applies it
    from ``dataset.unlabeled_path`` / ``unlabeled_text_column`` / ``unlabeled_format``
    (:data:`UNLABELED_KEYS`, taken off the loader's options by :func:`mltc.app.load_dataset`).
    """
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


def _read(path: Path, fmt: str | None) -> tuple[pd.DataFrame, list]:
    """The file as a table, and where each row is in the file (``"line 4"``, ``"row 3"``) for messages."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file: give the data file inside it (e.g. "
                        f"{path / 'train.csv'}).")
    if not path.is_file():
        raise DataError(f"file not found: {path} (resolved to {path.resolve()}). Check the path; relative paths "
                        f"are read from the working directory {Path.cwd()}.")
    fmt = fmt.lower() if fmt else _infer_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    try:
        if fmt == "jsonl":
            return _read_jsonl(path)
        if fmt in ("csv", "tsv"):
            frame = _read_csv(path, fmt)
        elif fmt == "json":
            frame = _read_json(path)
        else:
            frame = pd.read_parquet(path)
    except DataError:
        raise
    except ImportError as exc:
        raise DataError(f"reading {path} as {fmt} needs an optional package: {exc}. Install pyarrow "
                        "(pip install pyarrow) or convert the file to CSV or JSON lines.") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read {path} as {fmt}: {exc}. Check the file, or pass the right format=.") from None
    unit = "record" if fmt == "json" else "row"
    return frame, [f"{unit} {i + 1}" for i in range(len(frame))]


def _malformed(path: Path, problems: list, what: str) -> DataError:
    shown = "\n  ".join(problems[:_MAX_REPORTED])
    more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
    return DataError(f"{path}: {_count(len(problems), what)}:\n  {shown}{more}\nFix or remove them and run again.")


def _read_csv(path: Path, fmt: str) -> pd.DataFrame:
    # everything as text, and "" stays "" (not NaN): an empty label cell is a row with no label.
    # Bad lines are collected from pandas' warnings so that every one of them is reported.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                            on_bad_lines="warn")
    problems = [f"line {m.group(1)}: {m.group(2)}" for w in caught
                for m in re.finditer(r"Skipping line (\d+): ([^\n]*)", str(w.message))]
    if problems:
        sep = "comma" if fmt == "csv" else "tab"
        raise _malformed(path, problems, f"malformed line(s) (a {sep} inside a value that is not quoted?)")
    return frame


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list]:
    records, where, problems = [], [], []
    try:
        with _open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    problems.append(f"line {number}: {exc.msg} (column {exc.colno}): {_show(line.strip())}")
                    continue
                if not isinstance(record, dict):
                    problems.append(f"line {number}: not a JSON object {{...}}: {_show(line.strip())}")
                    continue
                records.append(record)
                where.append(f"line {number}")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} as jsonl: {exc}. Check the file (UTF-8 text, one JSON object per "
                        "line), or pass the right format=.") from None
    if problems:
        raise _malformed(path, problems, "malformed line(s) (each line must be one JSON object)")
    # object columns: values stay what the JSON says (3 stays an int, even next to a null)
    return (pd.DataFrame.from_records(records).astype(object) if records else pd.DataFrame()), where


def _read_json(path: Path) -> pd.DataFrame:
    with _open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
                            "Fix the file (a list of objects, one per document), or name it .jsonl if it holds "
                            "one object per line.") from None
    if isinstance(data, list):
        bad = [f"record {i + 1}: not a JSON object: {_show(r)}" for i, r in enumerate(data) if not isinstance(r, dict)]
        if bad:
            raise _malformed(path, bad, "malformed record(s) (the file must be a list of objects)")
        return pd.DataFrame.from_records(data).astype(object) if data else pd.DataFrame()
    if isinstance(data, dict):  # {column: {row: value}}: pandas' own layout
        return pd.DataFrame(data).astype(object)
    raise DataError(f"{path}: expected a list of objects (one per document), found a JSON {type(data).__name__}.")


def _open_text(path: Path):
    suffix = path.suffix.lower()
    if suffix in (".gz", ".bz2", ".xz"):
        import bz2
        import gzip
        import lzma

        return {".gz": gzip, ".bz2": bz2, ".xz": lzma}[suffix].open(path, "rt", encoding="utf-8")
    if suffix in (".zip", ".zst"):
        return _pandas_handle(path)
    return open(path, encoding="utf-8")


@contextmanager
def _pandas_handle(path: Path):
    from pandas.io.common import get_handle  # pandas knows these containers (zip: one member)

    handles = get_handle(path, "r", encoding="utf-8", compression="infer")
    try:
        yield handles.handle
    finally:
        handles.close()


def _count(k: int, what: str) -> str:
    """``"1 malformed line"`` / ``"2 malformed lines"`` from ``"malformed line(s)"``."""
    head, _, tail = what.partition("(s)")
    return f"{k} {head}{'' if k == 1 else 's'}{tail}"


def _are(k: int) -> str:
    return "is" if k == 1 else "are"


def _show(value, limit: int = 60) -> str:
    """A value as the user wrote it, cut short."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:limit] + "..." if len(text) > limit else text) if isinstance(value, str) else (
        text[:limit] + "..." if len(text) > limit else text)


def _require_columns(frame: pd.DataFrame, needed: Iterable[str], path: Path) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataError(f"{path} has no column {', '.join(repr(c) for c in missing)}; columns found: {found}. "
                        "Name the right ones with text_column= / labels_column= / split_column= / "
                        "group_column= / id_column=.")


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _texts(values: list, path: Path, column: str, where: list) -> list[str]:
    """The column's texts; a missing one becomes "" (dropped later by the common checks, with a warning)."""
    bad = [f"{where[i]}: {_show(v)}" for i, v in enumerate(values) if not (isinstance(v, str) or _is_missing(v))]
    if bad:
        raise DataError(f"{path}: {_count(len(bad), 'value(s)')} of the text column {column!r} {_are(len(bad))} "
                        "not text: "
                        f"{'; '.join(bad[:_MAX_REPORTED])}{' ...' if len(bad) > _MAX_REPORTED else ''}. "
                        "Texts must be strings (quoted in JSON); or name the right column with text_column=.")
    return ["" if _is_missing(v) else v for v in values]


def _label_kind(item) -> str:
    if isinstance(item, str):
        return "name"
    if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
        return "integer"
    return "bad"


def _labels(values: list, sep: str, path: Path, column: str, where: list) -> list[list[str]]:
    """Each row's label names: strings split on ``sep``, lists of names, or integers used as names.

    A value that is not a name (a boolean, a fraction, an object, a nested list) is refused,
    and so is a column that mixes integers with names.
    """
    out, bad, first = [], [], {}
    for i, value in enumerate(values):
        if _is_missing(value):
            out.append([])
            continue
        if isinstance(value, str):
            items = value.split(sep)
        elif isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
        else:
            items = [value]
        kinds = {_label_kind(v) for v in items}
        if "bad" in kinds:
            bad.append(f"{where[i]}: {_show(value)}")
            continue
        for k in kinds:
            first.setdefault(k, i)
        # dict.fromkeys: drop repeats, keep order
        out.append(list(dict.fromkeys(t for t in (str(v).strip() for v in items) if t)))
    if bad:
        raise DataError(f"{path}: {_count(len(bad), 'value(s)')} of the labels column {column!r} {_are(len(bad))} "
                        "not label names: "
                        f"{'; '.join(bad[:_MAX_REPORTED])}{' ...' if len(bad) > _MAX_REPORTED else ''}. "
                        "Give each row a list of names ([\"sports\", \"politics\"]), a string joined by "
                        f"label_sep={sep!r}, or integer ids; true/false, fractions, objects and nested lists "
                        "are not labels.")
    if len(first) == 2:
        later = max(first.values())
        kind = "integer" if first["integer"] == later else "text name"
        raise DataError(f"{path}: the labels column {column!r} mixes integers and text names (first {kind} "
                        f"among the other kind at {where[later]}: {_show(values[later])}). Integers are accepted "
                        "as label names only when every label of the column is one; write them all as strings "
                        "(\"3\") or all as integers.")
    if "integer" in first:
        log.info("%s: every label in %r is an integer; they are used as label names (3 -> \"3\").", path, column)
    return out


def _ids(frame: pd.DataFrame, column: str | None, path: Path, where: list) -> list[str]:
    if column is None:
        return [str(i) for i in range(len(frame))]
    values = frame[column].tolist()
    missing = [where[i] for i, v in enumerate(values) if _is_missing(v) or str(v).strip() == ""]
    if missing:
        raise DataError(f"{path}: {len(missing)} rows have no value in the id column {column!r} (first at "
                        f"{missing[0]}); give every row an id, or drop dataset.id_column to use row numbers.")
    ids = [str(v) for v in values]
    repeated = len(ids) - len(set(ids))
    if repeated:
        log.warning("%s: %d rows repeat an id of column %r already used in this file; their predictions share an "
                    "id.", path, repeated, column)
    return ids


def _groups(frame: pd.DataFrame, column: str, path: Path, part: str) -> list[str]:
    # "\0..." cannot come from a user's value: a row alone in its group
    if column not in frame.columns:  # a validation / test file: its rows are never split
        return [f"\0{part}:{i}" for i in range(len(frame))]
    out, alone = [], 0
    for i, v in enumerate(frame[column].tolist()):
        if _is_missing(v) or str(v).strip() == "":
            alone += 1
            out.append(f"\0{part}:{i}")
        else:
            out.append(str(v))
    if alone:
        log.warning("%s: %d rows have no value in the group column %r; each is a group of its own.", path, alone,
                    column)
    return out


def _label_key(label: str):
    # integer names sort as numbers ("2" before "10"), anything else alphabetically ("²" passes
    # str.isdigit() but is no int)
    return (0, int(label), "") if re.fullmatch(r"-?[0-9]+", label) else (1, 0, label)


def _parse_split(values: list, path: Path, column: str) -> list[str]:
    normalised = [_SPLIT_NAMES.get(str(v).strip().lower()) for v in values]
    bad = [(i, v) for i, (v, n) in enumerate(zip(values, normalised, strict=True)) if n is None]
    if bad:
        distinct = sorted({str(v) for _, v in bad})
        raise DataError(f"{path}: {len(bad)} rows have an unknown value in {column!r} (first at data row "
                        f"{bad[0][0] + 1}): {', '.join(repr(v) for v in distinct[:10])}. "
                        "Use train, val (validation, valid, dev) or test.")
    return normalised
