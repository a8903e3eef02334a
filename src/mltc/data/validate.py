"""Checks every loaded data set goes through: clear messages with counts, never a stack trace."""
from __future__ import annotations

import logging

import numpy as np

from mltc.data.base import DataError, Dataset

log = logging.getLogger(__name__)


def check_dataset(ds: Dataset, *, train_idx=None, drop_empty_texts: bool = True) -> Dataset:
    """Validate a data set, warn about what is unusual and fail on what is unusable.

    Empty texts are dropped with a warning (or rejected when ``drop_empty_texts`` is
    false); rows with no label are kept (they are legitimate negatives in multi-label
    data) and counted; labels with no training example are reported.
    """
    if len(ds) == 0:
        raise DataError(f"{ds.name}: the data set has no documents.")
    if ds.n_labels == 0:
        raise DataError(f"{ds.name}: the data set has no labels.")
    bad_type = [i for i, t in enumerate(ds.texts) if not isinstance(t, str)]
    if bad_type:
        raise DataError(f"{ds.name}: {len(bad_type)} texts are not strings (first at row {bad_type[0]}); "
                        "check the text column.")
    if not np.isin(ds.Y, (0, 1)).all():
        raise DataError(f"{ds.name}: the label matrix must be binary (0/1).")
    empty = np.array([not t.strip() for t in ds.texts])
    if empty.any():
        if not drop_empty_texts:
            raise DataError(f"{ds.name}: {int(empty.sum())} documents have empty text.")
        if empty.all():
            raise DataError(f"{ds.name}: no text left: all {len(ds)} documents have empty text (empty documents "
                            "are dropped). Check the text column (dataset.text_column for dataset=files) and that "
                            "the file holds the texts.")
        log.warning("%s: dropping %d documents with empty text.", ds.name, int(empty.sum()))
        if train_idx is not None:
            # row numbers change once empty rows are gone
            train_idx = np.cumsum(~empty)[np.asarray(train_idx)[~empty[train_idx]]] - 1
        ds = _subset(ds, np.flatnonzero(~empty))
    no_label = int((ds.Y.sum(axis=1) == 0).sum())
    if no_label:
        log.warning("%s: %d of %d documents have no label (kept as all-negative rows).", ds.name, no_label, len(ds))
    ref = ds.Y if train_idx is None else ds.Y[train_idx]
    absent = [ds.label_names[j] for j in np.flatnonzero(ref.sum(axis=0) == 0)]
    if absent:
        log.warning("%s: %d labels have no training example: %s%s", ds.name, len(absent), ", ".join(absent[:10]),
                    " ..." if len(absent) > 10 else "")
    return ds


def _subset(ds: Dataset, keep: np.ndarray) -> Dataset:
    remap = np.full(len(ds), -1)
    remap[keep] = np.arange(keep.size)
    splits = None
    if ds.splits is not None:
        splits = {k: remap[v][remap[v] >= 0] for k, v in ds.splits.items()}
    return Dataset(name=ds.name, texts=[ds.texts[i] for i in keep], Y=ds.Y[keep], label_names=ds.label_names,
                   splits=splits, description=ds.description, meta=ds.meta, unlabeled_texts=ds.unlabeled_texts,
                   ids=[ds.ids[i] for i in keep], groups=None if ds.groups is None else ds.groups[keep])
