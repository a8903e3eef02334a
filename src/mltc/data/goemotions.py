"""GoEmotions with its official train/dev/test split (Demszky et al., ACL 2020)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from mltc.data.base import DataError, Dataset
from mltc.data.download import RemoteFile, cache_dir, fetch, mirror_url, require_files, sha256sum
from mltc.data.validate import check_dataset

log = logging.getLogger(__name__)

__all__ = ["load_goemotions", "GOEMOTIONS_FILES"]

_URL = "https://raw.githubusercontent.com/google-research/google-research/master/goemotions/data"
# Checksums of the authors' release; labels.txt is their emotions.txt renamed.
GOEMOTIONS_FILES = [
    RemoteFile("train.tsv", f"{_URL}/train.tsv", "1c254a142be5c00e80d819b9ae1bbd36d94b2eeb8f4b1271846508d57e57d9c5"),
    RemoteFile("dev.tsv", f"{_URL}/dev.tsv", "575489c079c9de1097062a01738f998590d6b7ead66dd1c9fd1d2ba01fd8bc62"),
    RemoteFile("test.tsv", f"{_URL}/test.tsv", "0587b2dd8b27b97352adbfc3fb083d46005c8946657fdc2b1ca8b1cc7f1f8be4"),
    RemoteFile("labels.txt", f"{_URL}/emotions.txt",
               "45c3ef86782d2a4d7fedcd6d8c111aa0d0e94720689bd164fac94fefb4495a89"),
]
_SPLITS = (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv"))
_MAX_REPORTED = 5


def load_goemotions(data_dir: str | os.PathLike | None = None, download: bool = True,
                    base_url: str | None = None) -> Dataset:
    """Load GoEmotions: 58k Reddit comments, 27 emotions plus neutral, official split.

    Demszky et al., "GoEmotions: A Dataset of Fine-Grained Emotions", ACL 2020.

    Parameters
    ----------
    data_dir : path, optional
        Folder with ``train.tsv``, ``dev.tsv``, ``test.tsv`` and ``labels.txt``; read as
        is, never downloaded to. ``None`` uses the cache (``$MLTC_DATA_DIR/goemotions``),
        downloading on first use.
    download : bool, default=True
        Whether a missing cache may be filled from the internet.
    base_url : str, optional
        Mirror root holding ``goemotions/<file>``; defaults to ``$MLTC_DATA_URL``, else
        the authors' GitHub files.

    Returns
    -------
    Dataset
        Texts in the order train, dev, test; ``splits`` has ``"train"``, ``"val"``
        (the official dev set) and ``"test"``; 28 labels named as in ``labels.txt``.
    """
    if data_dir is None:
        directory = cache_dir("goemotions")
        paths = fetch(GOEMOTIONS_FILES, directory, base_url=mirror_url("goemotions", base_url), download=download)
    else:
        directory = Path(data_dir).expanduser()
        paths = require_files(directory, [f.name for f in GOEMOTIONS_FILES], what="goemotions")
        _warn_if_modified(paths)

    label_names = _read_labels(paths["labels.txt"])
    texts, ids, row_of, splits, problems, doc_ids = [], [], [], {}, [], []
    for split, fname in _SPLITS:
        start = len(texts)
        _read_tsv(paths[fname], len(label_names), texts, ids, row_of, problems, doc_ids)
        splits[split] = np.arange(start, len(texts))
    if problems:
        shown = "\n  ".join(problems[:_MAX_REPORTED])
        more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise DataError(f"goemotions: {len(problems)} malformed lines in {directory} (expected "
                        f"'text<TAB>label ids<TAB>id' with ids in 0..{len(label_names) - 1}):\n  {shown}{more}\n"
                        "Fix or remove these lines, or delete the files to download the original release.")

    Y = np.zeros((len(texts), len(label_names)), dtype=np.int8)
    Y[np.concatenate(row_of), np.concatenate(ids)] = 1
    ds = Dataset(name="goemotions", texts=texts, Y=Y, label_names=label_names, splits=splits,
                 description="GoEmotions (Demszky et al. 2020): Reddit comments, 28 emotion labels, official split",
                 meta={"data_dir": str(directory)}, ids=doc_ids)
    return check_dataset(ds, train_idx=splits["train"])


def _read_labels(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DataError(f"goemotions: {path} holds no label names (expected one name a line, in id order).")
    if len(set(names)) != len(names):
        raise DataError(f"goemotions: {path} repeats label names; each line must name a different label.")
    return names


def _read_tsv(path: Path, n_labels: int, texts: list, ids: list, row_of: list, problems: list,
              doc_ids: list | None = None) -> None:
    """Append the file's texts, label ids and their row numbers; describe each malformed line in ``problems``.

    ``doc_ids`` gets each row's comment id (the third column).

    The whole file is split at once and the label ids parsed in one pass; only a file
    with a malformed line goes through the line-by-line check that says what is wrong.
    """
    # newline="\n": a stray carriage return inside a comment must not split its line
    with open(path, encoding="utf-8", newline="\n") as fh:
        lines = fh.read().split("\n")
    if any(line.endswith("\r") for line in lines):
        lines = [line.removesuffix("\r") for line in lines]
    rows = [line.split("\t") for line in lines if line.strip()]
    try:
        if any(len(r) != 3 for r in rows):
            raise ValueError
        raw = [r[1] for r in rows]
        flat = np.fromiter(map(int, ",".join(raw).split(",")), dtype=np.int64) if raw else np.zeros(0, np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= n_labels):
            raise ValueError
    except ValueError:
        _check_lines(path, lines, n_labels, problems)
        return
    counts = np.fromiter((s.count(",") + 1 for s in raw), dtype=np.int64, count=len(raw))
    row_of.append(np.repeat(np.arange(len(texts), len(texts) + len(rows)), counts))
    ids.append(flat)
    texts.extend(r[0] for r in rows)
    if doc_ids is not None:
        doc_ids.extend(r[2] for r in rows)


def _check_lines(path: Path, lines: list, n_labels: int, problems: list) -> None:
    """Describe each malformed line of a GoEmotions TSV file in ``problems``."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            problems.append(f"{path.name} line {lineno}: {len(parts)} tab-separated columns, expected 3")
            continue
        try:
            line_ids = [int(tok) for tok in parts[1].split(",")]
        except ValueError:
            problems.append(f"{path.name} line {lineno}: label ids {parts[1]!r} are not comma-separated integers")
            continue
        bad = [i for i in line_ids if not 0 <= i < n_labels]
        if bad:
            problems.append(f"{path.name} line {lineno}: label ids {bad} out of range 0..{n_labels - 1}")


def _warn_if_modified(paths: dict[str, Path]) -> None:
    changed = [f.name for f in GOEMOTIONS_FILES if sha256sum(paths[f.name]) != f.sha256]
    if changed:
        log.warning("goemotions: %s differ from the authors' release; results may not compare with "
                    "published numbers.", ", ".join(changed))
