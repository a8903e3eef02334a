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
    random_state : int, RandomState or None
    """

    _parameter_constraints = {
        "use_official": ["boolean"],
        "test_size": [Interval(Real, 0, 1, closed="neither"), Interval(Integral, 1, None, closed="left")],
        "val_size": [Interval(Real, 0, 1, closed="left"), Interval(Integral, 0, None, closed="left")],
        "val_method": [StrOptions({"iterative", "random"})],
        "random_state": ["random_state"],
    }

    def __init__(self, *, use_official=True, test_size=0.2, val_size=0.1, val_method="iterative", random_state=None):
        self.use_official = use_official
        self.test_size = test_size
        self.val_size = val_size
        self.val_method = val_method
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
        parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
        if len(parts["train"]) == 0 or len(parts["test"]) == 0:
            raise DataError(f"{ds.name}: the split left {len(parts['train'])} training and {len(parts['test'])} "
                            "test documents; adjust split.test_size / split.val_size.")
        return parts
