"""Train / validation / test split: the official one where it exists, else iterative stratification.

The stratification is Sechidis et al.'s (2011) first-order iterative stratification,
written here over a sparse label matrix so that it takes seconds, not minutes, at
thousands of labels, and it honours counts exactly. It makes the same choices and
draws the same random numbers as ``iterstrat.MultilabelStratifiedShuffleSplit`` (which
it replaces): where iterstrat already returns the requested number of rows, the split is
row for row the same. iterstrat may hand a subset more rows than asked for (it only
looks at label desires); here a subset that is full is never chosen, so
``split.test_size=100`` gives 100 test documents. ``split.exact_sizes=false`` lifts
that rule and gives iterstrat's split row for row (the split of earlier mltc versions).

With groups (``split.group_column``), a group is the unit: it goes to one subset as a
whole, weighted by its number of documents and carrying its documents' summed label
counts. scikit-learn's ``StratifiedGroupKFold`` is single-label and iterstrat has no
groups, hence this implementation.
"""
from __future__ import annotations

import logging
import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from mltc.data.base import DataError, Dataset

log = logging.getLogger(__name__)

__all__ = ["DatasetSplitter", "iterative_split", "duplicate_texts"]


def _held_count(size, n: int) -> int:
    # a share as scikit-learn's ShuffleSplit counts it (ceil); a count as is
    return int(size) if isinstance(size, Integral) else int(math.ceil(float(size) * n))


def iterative_split(Y, size, random_state, groups=None, *, exact=True):
    """Split row indices of ``Y`` with first-order iterative stratification (Sechidis et al. 2011).

    Parameters
    ----------
    Y : array or sparse matrix of shape (n, n_labels)
        Binary label matrix.
    size : float or int
        Rows to hold out: a share of ``n`` (rounded up) or a count.
    random_state : int or RandomState
    groups : array of shape (n,), optional
        Rows with the same group go to the same side; the held-out count is then
        approximate (whole groups).
    exact : bool, default=True
        Never choose a subset that is full. False reproduces iterstrat row for row,
        sizes a few rows off included (the splits of earlier mltc versions).

    Returns
    -------
    rest, held_out : ndarray
        Sorted row indices; ``held_out`` has exactly ``size`` rows without groups.
    """
    Y = sp.csr_matrix(Y, dtype=np.int64)
    n = Y.shape[0]
    n_held = _held_count(size, n)
    if not 0 < n_held < n:
        raise DataError(f"cannot hold out {n_held} of {n} documents; the held-out part needs between 1 and "
                        f"{n - 1}.")
    if groups is None:
        units, weights, row_unit = Y, np.ones(n, dtype=np.int64), np.arange(n)
    else:
        _, row_unit = np.unique(np.asarray(groups), return_inverse=True)
        row_unit = row_unit.ravel()
        n_units = int(row_unit.max()) + 1
        member = sp.csr_matrix((np.ones(n, dtype=np.int64), (row_unit, np.arange(n))), shape=(n_units, n))
        units, weights = member @ Y, np.bincount(row_unit, minlength=n_units)
    rng = check_random_state(random_state)
    unit_fold = _stratify(sp.csr_matrix(units), weights, np.array([n - n_held, n_held]), rng, exact=exact)
    held = unit_fold[row_unit] == 1
    return np.flatnonzero(~held), np.flatnonzero(held)


def _stratify(C, weights, sizes, rng, *, exact=True) -> np.ndarray:
    """Fold (0 or 1) of each unit: Sechidis' algorithm, step for step as iterstrat runs it.

    ``C`` (units x labels) holds label counts, ``weights`` each unit's documents and
    ``sizes`` the documents wanted per fold. A fold with no room left is never chosen
    (the one change from iterstrat, which therefore can overfill a fold), unless
    ``exact`` is false.
    """
    n_units = C.shape[0]
    n = int(sizes.sum())
    # iterstrat shuffles the rows first and draws its tie-breaks from the same generator
    order = np.arange(n_units)
    rng.shuffle(order)
    C = C[order].tocsr()
    w = np.asarray(weights)[order]
    Ccsc = C.tocsc()
    Ccsc.sort_indices()
    r = sizes / n
    c_folds = r * n                               # desired documents per fold (floats, as iterstrat)
    remaining = np.asarray(C.sum(axis=0)).ravel()  # label occurrences not yet assigned
    c_labels = np.outer(r, remaining)              # desired occurrences per fold and label
    room = sizes.astype(np.int64).copy()
    if not exact:
        room[:] = np.iinfo(np.int64).max // 2  # every fold always has room: iterstrat's choices
    fold = np.full(n_units, -1, dtype=np.int64)
    indptr, indices, data = C.indptr, C.indices, C.data
    while True:
        nonzero = remaining > 0
        if not nonzero.any():
            break
        fewest = remaining[nonzero].min()
        label = np.flatnonzero(remaining == fewest)
        label = label[rng.choice(label.shape[0])] if label.shape[0] > 1 else label[0]
        col = Ccsc.indices[Ccsc.indptr[label]:Ccsc.indptr[label + 1]]
        for u in col[fold[col] < 0]:
            want = np.where(room > 0, c_labels[:, label], -np.inf)
            best = np.flatnonzero(want == want.max())
            if best.shape[0] > 1:
                tie = np.flatnonzero(c_folds[best] == c_folds[best].max())
                f = best[tie[rng.choice(tie.shape[0])]] if tie.shape[0] > 1 else best[tie[0]]
            else:
                f = best[0]
            fold[u] = f
            cols, vals = indices[indptr[u]:indptr[u + 1]], data[indptr[u]:indptr[u + 1]]
            c_labels[f, cols] -= vals
            remaining[cols] -= vals
            c_folds[f] -= w[u]
            room[f] -= w[u]
    # units without any label: to the fold that wants most documents (not in the paper; as iterstrat)
    for u in np.flatnonzero(fold < 0):
        want = np.where(room > 0, c_folds, -np.inf)
        best = np.flatnonzero(want == want.max())
        f = best[rng.choice(best.shape[0])] if best.shape[0] > 1 else best[0]
        fold[u] = f
        c_folds[f] -= w[u]
        room[f] -= w[u]
    out = np.empty(n_units, dtype=np.int64)
    out[order] = fold
    return out


class DatasetSplitter(BaseEstimator):
    """Decide which rows are train, validation and test.

    Parameters
    ----------
    use_official : bool, default=True
        Use the data set's own split where it has one (test and, if present, validation).
    test_size : float or int, default=0.2
        Share (or count) of documents held out for test when there is no official test split.
    val_size : float or int, default=0.1
        Share of the whole data set (float) or count of documents (int) carved from training
        for validation when there is no official one. 0 disables validation.
    val_method : {"iterative", "random"}, default="iterative"
        How validation is carved from training: iterative stratification, or a plain random
        ``train_test_split`` (as in Huang et al. 2021).
    train_size : float, int or None, default=None
        Train on a subset of the training rows, drawn after validation has been carved (validation and
        test never change): a share in (0, 1] of those rows or a count. None keeps them all.
    train_method : {"iterative", "random"}, default="iterative"
        How that subset is drawn: iterative stratification, so rare labels keep their share, or a plain
        random draw (``numpy.random.default_rng(seed).choice``, the subset of the benchmark scripts'
        ``--train-size``).
    group_column : str or None, default=None
        Keep the rows of one group together when carving test and validation: the data
        set's ``groups`` (``dataset=files`` reads them from this column of your file) are
        stratified as whole units (see the module notes); the held-out sizes are then
        approximate. None splits row by row.
    exact_sizes : bool, default=True
        Give iterative carves exactly the requested number of documents. False makes
        the split of earlier mltc versions (iterstrat's, sometimes a few documents off:
        808 test documents for 800), to reproduce their numbers.
    random_state : int, RandomState or None

    Notes
    -----
    Counts are honoured exactly without groups (``test_size=2`` gives 2 test documents).
    A test part that leaves labels without any test document is warned about: their
    per-label scores are undefined and macro averages lean on the rest.

    Examples
    --------
    >>> from mltc.data import make_synthetic
    >>> ds = make_synthetic(n_docs=500, n_labels=6, random_state=0)
    >>> parts = DatasetSplitter(train_size=100, random_state=0).split(ds)
    >>> len(parts["train"]), len(parts["val"]) == len(DatasetSplitter(random_state=0).split(ds)["val"])
    (100, True)
    """

    _parameter_constraints = {
        "use_official": ["boolean"],
        "test_size": [Interval(Real, 0, 1, closed="neither"), Interval(Integral, 1, None, closed="left")],
        "val_size": [Interval(Real, 0, 1, closed="left"), Interval(Integral, 0, None, closed="left")],
        "val_method": [StrOptions({"iterative", "random"})],
        "train_size": [None, Interval(Real, 0, 1, closed="right"), Interval(Integral, 1, None, closed="left")],
        "train_method": [StrOptions({"iterative", "random"})],
        "group_column": [None, str],
        "exact_sizes": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, *, use_official=True, test_size=0.2, val_size=0.1, val_method="iterative", train_size=None,
                 train_method="iterative", group_column=None, exact_sizes=True, random_state=None):
        self.use_official = use_official
        self.test_size = test_size
        self.val_size = val_size
        self.val_method = val_method
        self.train_size = train_size
        self.train_method = train_method
        self.group_column = group_column
        self.exact_sizes = exact_sizes
        self.random_state = random_state

    def split(self, ds: Dataset) -> dict:
        """Return ``{"train": idx, "val": idx, "test": idx}`` (disjoint, sorted row indices)."""
        self._validate_params()
        # an integer seed is used as is, so a published protocol's random_state reproduces its split
        seed = (self.random_state if isinstance(self.random_state, Integral)
                else check_random_state(self.random_state).randint(0, 2**31 - 1))
        official = ds.splits if (self.use_official and ds.splits) else {}
        groups = self._groups(ds)
        all_rows = np.arange(len(ds))
        if "test" in official:
            test = np.asarray(official["test"])
            train = np.asarray(official.get("train", np.setdiff1d(all_rows, test)))
        else:
            # carve test from the official training rows (or all rows but an official validation part)
            pool = np.asarray(official["train"]) if "train" in official else np.setdiff1d(
                all_rows, official.get("val", []))
            n_test = _held_count(self.test_size, len(pool))
            if n_test >= len(pool):
                raise DataError(f"split.test_size={self.test_size} asks for {n_test} test documents but {ds.name} "
                                f"has only {len(pool)} to split; lower split.test_size.")
            rest, held = iterative_split(ds.Y[pool], n_test, seed, None if groups is None else groups[pool],
                                         exact=self.exact_sizes)
            train, test = pool[rest], pool[held]
        if "val" in official:
            val = np.asarray(official["val"])
            train = np.setdiff1d(train, val)
        elif self.val_size:
            size = self.val_size if isinstance(self.val_size, Integral) else int(round(self.val_size * len(ds)))
            if size >= len(train):
                raise DataError(f"split.val_size={self.val_size} asks for {size} validation documents but the "
                                f"training part has only {len(train)}; lower split.val_size.")
            if self.val_method == "random" and groups is not None:
                rest, held = _random_groups(groups[train], size, np.random.default_rng(seed))
                train, val = train[rest], train[held]
            elif self.val_method == "random":
                # the Huang et al. protocol: train_test_split on the training rows
                train, val = train_test_split(train, test_size=size, random_state=seed)
            else:
                rest, held = iterative_split(ds.Y[train], size, seed, None if groups is None else groups[train],
                                            exact=self.exact_sizes)
                train, val = train[rest], train[held]
        else:
            val = np.array([], dtype=int)
        if self.train_size is not None:
            train = self._train_subset(ds, np.sort(train), seed)
        parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
        if len(parts["train"]) == 0 or len(parts["test"]) == 0:
            raise DataError(f"{ds.name}: the split left {len(parts['train'])} training and {len(parts['test'])} "
                            "test documents; adjust split.test_size / split.val_size.")
        self._check_parts(ds, parts, groups)
        return parts

    def _groups(self, ds: Dataset):
        if self.group_column is None:
            if getattr(ds, "groups", None) is not None:
                log.warning("%s has groups (dataset.group_column) but split.group_column is not set: rows are "
                            "split one by one, and a group may end up on both sides. Set split.group_column to "
                            "keep groups together.", ds.name)
            return None
        groups = getattr(ds, "groups", None)
        if groups is None:
            raise DataError(f"split.group_column={self.group_column!r} but {ds.name} has no groups: give the same "
                            f"column to the loader (dataset=files reads dataset.group_column, which defaults to "
                            "split.group_column), or set split.group_column=null.")
        return np.asarray(groups)

    def _check_parts(self, ds: Dataset, parts: dict, groups) -> None:
        """Warn about a test part too small for its labels and about groups on both sides."""
        present = ds.Y.sum(axis=0) > 0
        test_counts = ds.Y[parts["test"]].sum(axis=0)
        missing = int((present & (test_counts == 0)).sum())
        if missing:
            log.warning("%s: the test part has %d documents and %d of %d labels have no test document, so their "
                        "scores are undefined and macro averages rest on the other labels; raise split.test_size "
                        "(a share or a count) to measure every label.", ds.name, len(parts["test"]), missing,
                        int(present.sum()))
        if groups is not None:
            train_groups = set(groups[parts["train"]].tolist())
            for part in ("val", "test"):
                shared = train_groups & set(groups[parts[part]].tolist())
                if shared:
                    log.warning("%s: %d groups of %r have rows in both train and %s (an official split of your "
                                "files, not mltc's carve): those rows are not held out.", ds.name, len(shared),
                                self.group_column, part)

    def _train_subset(self, ds: Dataset, train, seed):
        """The ``train_size`` rows of ``train`` (sorted indices), drawn by ``train_method``."""
        if isinstance(self.train_size, Integral):
            size = int(self.train_size)
            if size > len(train):
                raise DataError(f"split.train_size={self.train_size} asks for {size} training documents but "
                                f"{ds.name} has only {len(train)} once validation and test are set aside; lower "
                                "split.train_size, give a share in (0, 1], or null for all of them.")
        else:
            size = max(1, round(self.train_size * len(train)))
        if size == len(train):
            return train
        rng = np.random.default_rng(seed)
        if self.train_method == "random":
            picked = rng.choice(train, size=size, replace=False)
        else:
            rest, held = iterative_split(ds.Y[train], size, seed, exact=self.exact_sizes)
            if not self.exact_sizes:
                # iterstrat's count may be off by a few rows: earlier versions dropped or added random ones
                if len(held) > size:
                    held = rng.choice(held, size=size, replace=False)
                elif len(held) < size:
                    held = np.concatenate([held, rng.choice(rest, size=size - len(held), replace=False)])
            picked = train[held]
        log.info("training on %d of %d training documents (split.train_size=%s, %s)", size, len(train),
                 self.train_size, self.train_method)
        return np.sort(picked)


def _random_groups(groups, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups drawn in random order until ``size`` documents are held out."""
    _, row_unit = np.unique(np.asarray(groups), return_inverse=True)
    row_unit = row_unit.ravel()
    weights = np.bincount(row_unit)
    order = rng.permutation(weights.size)
    n_take = int(np.searchsorted(np.cumsum(weights[order]), size) + 1)
    held = np.isin(row_unit, order[:min(n_take, weights.size - 1)])
    return np.flatnonzero(~held), np.flatnonzero(held)


def duplicate_texts(texts, parts: dict) -> dict:
    """Count held-out documents whose text (whitespace-trimmed) also appears in training.

    Returns
    -------
    dict
        ``{"n_dup_train_test": k, "n_dup_train_val": m}``: how many test / validation
        documents have an exact copy among the training documents. A warning is logged
        for each nonzero count: such documents measure memory, not generalisation.
    """
    train = {texts[i].strip() for i in parts["train"]}
    out = {}
    for part in ("test", "val"):
        idx = parts.get(part, [])
        k = sum(1 for i in idx if texts[i].strip() in train)
        out[f"n_dup_train_{part}"] = k
        if k:
            log.warning("%d of %d %s documents (%.1f%%) have the exact text of a training document: on them, "
                        "scores measure memory rather than generalisation. Where the split is yours, remove the "
                        "copies or give them one group (split.group_column).", k, len(idx),
                        "test" if part == "test" else "validation", 100 * k / max(len(idx), 1))
    return out
