"""The in-memory data set every loader returns."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Dataset", "DataError"]


class DataError(ValueError):
    """A data set that cannot be used as given; the message says what to fix."""


@dataclass
class Dataset:
    """Texts with a binary label matrix and, optionally, an official split.

    Parameters
    ----------
    name : str
        Short name used for the MLflow experiment (e.g. ``"goemotions"``).
    texts : list of str
        One document per row.
    Y : ndarray of shape (n_docs, n_labels), dtype int8
        Binary label indicator matrix.
    label_names : list of str
    splits : dict of str to ndarray, optional
        Official row indices per part (``"train"``, ``"val"``, ``"test"``).
        ``None`` where the data set has no official split.
    description : str
        One line shown to users (synthetic data says so here).
    meta : dict
        Free-form provenance (data directory, generator settings).
    unlabeled_texts : list of str, optional
        Extra documents without labels (``dataset.unlabeled_path``), for strategies
        that learn from unlabeled data; never training rows, never fit the featurizer.
    ids : list of str, optional
        One document id per row, for readable predictions: the user's
        ``dataset.id_column`` for ``dataset=files``, else the row number within the
        document's own file (so ids repeat across files; pair them with the split name).
        Defaults to ``"0"``, ``"1"``, ... in row order.
    groups : ndarray of shape (n_docs,), optional
        Group of each row (``dataset.group_column``): rows sharing a group are kept in
        one split by ``split.group_column``. ``None`` when the data set has no groups.
    """

    name: str
    texts: list
    Y: np.ndarray
    label_names: list
    splits: dict | None = None
    description: str = ""
    meta: dict = field(default_factory=dict)
    unlabeled_texts: list | None = None
    ids: list | None = None
    groups: np.ndarray | None = None

    def __post_init__(self):
        self.Y = np.ascontiguousarray(np.asarray(self.Y, dtype=np.int8))
        if self.Y.ndim != 2:
            raise DataError(f"{self.name}: the label matrix must be 2-D (documents x labels), got shape {self.Y.shape}.")
        if len(self.texts) != self.Y.shape[0]:
            raise DataError(f"{self.name}: {len(self.texts)} texts but {self.Y.shape[0]} label rows.")
        if len(self.label_names) != self.Y.shape[1]:
            raise DataError(f"{self.name}: {len(self.label_names)} label names but {self.Y.shape[1]} label columns.")
        self.ids = [str(i) for i in range(len(self.texts))] if self.ids is None else [str(i) for i in self.ids]
        if len(self.ids) != len(self.texts):
            raise DataError(f"{self.name}: {len(self.ids)} ids but {len(self.texts)} texts.")
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            if self.groups.shape != (len(self.texts),):
                raise DataError(f"{self.name}: groups must have one value per document, got shape "
                                f"{self.groups.shape} for {len(self.texts)} documents.")

    @property
    def n_labels(self) -> int:
        return self.Y.shape[1]

    def __len__(self) -> int:
        return len(self.texts)
