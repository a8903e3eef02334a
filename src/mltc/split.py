"""Train / validation / test split: the official one where it exists, else iterative stratification."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from mltc.data.base import DataError, Dataset

log = logging.getLogger(__name__)

__all__ = ["DatasetSplitter", "iterative_split"]


def iterative_split(Y, size, random_state):
    """Split row indices of ``Y`` with first-order iterative stratification (Sechidis et al. 2011).

    Returns
    -------
    rest, held_out : ndarray
        Row indices; ``held_out`` has ``size`` rows (a fraction or a count).
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = Y.shape[0]
    test_size = size if isinstance(size, float) else int(size) / n
    mss = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    rest, held = next(mss.split(np.zeros((n, 1)), Y))
    return np.sort(rest), np.sort(held)


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
    random_state : int, RandomState or None

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
        "random_state": ["random_state"],
    }

    def __init__(self, *, use_official=True, test_size=0.2, val_size=0.1, val_method="iterative", train_size=None,
                 train_method="iterative", random_state=None):
        self.use_official = use_official
        self.test_size = test_size
        self.val_size = val_size
        self.val_method = val_method
        self.train_size = train_size
        self.train_method = train_method
        self.random_state = random_state

    def split(self, ds: Dataset) -> dict:
        """Return ``{"train": idx, "val": idx, "test": idx}`` (disjoint, sorted row indices)."""
        self._validate_params()
        # an integer seed is used as is, so a published protocol's random_state reproduces its split
        seed = (self.random_state if isinstance(self.random_state, Integral)
                else check_random_state(self.random_state).randint(0, 2**31 - 1))
        official = ds.splits if (self.use_official and ds.splits) else {}
        all_rows = np.arange(len(ds))
        if "test" in official:
            test = np.asarray(official["test"])
            train = np.asarray(official.get("train", np.setdiff1d(all_rows, test)))
        else:
            # carve test from the official training rows (or all rows but an official validation part)
            pool = np.asarray(official["train"]) if "train" in official else np.setdiff1d(
                all_rows, official.get("val", []))
            rest, held = iterative_split(ds.Y[pool], self.test_size, seed)
            train, test = pool[rest], pool[held]
        if "val" in official:
            val = np.asarray(official["val"])
            train = np.setdiff1d(train, val)
        elif self.val_size:
            size = self.val_size if isinstance(self.val_size, Integral) else int(round(self.val_size * len(ds)))
            if size >= len(train):
                raise DataError(f"split.val_size={self.val_size} asks for {size} validation documents but the "
                                f"training part has only {len(train)}; lower split.val_size.")
            if self.val_method == "random":
                # the Huang et al. protocol: train_test_split on the training rows
                train, val = train_test_split(train, test_size=size, random_state=seed)
            else:
                rest, held = iterative_split(ds.Y[train], size, seed)
                train, val = train[rest], train[held]
        else:
            val = np.array([], dtype=int)
        if self.train_size is not None:
            train = self._train_subset(ds, np.sort(train), seed)
        parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
        if len(parts["train"]) == 0 or len(parts["test"]) == 0:
            raise DataError(f"{ds.name}: the split left {len(parts['train'])} training and {len(parts['test'])} "
                            "test documents; adjust split.test_size / split.val_size.")
        return parts

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
            rest, held = iterative_split(ds.Y[train], size, seed)
            # iterstrat allocates by proportions and may miss the count by a few rows (all of them for a
            # tiny share); a count is a count, so a few random rows are dropped or added
            if len(held) > size:
                held = rng.choice(held, size=size, replace=False)
            elif len(held) < size:
                held = np.concatenate([held, rng.choice(rest, size=size - len(held), replace=False)])
            picked = train[held]
        log.info("training on %d of %d training documents (split.train_size=%s, %s)", size, len(train),
                 self.train_size, self.train_method)
        return np.sort(picked)
