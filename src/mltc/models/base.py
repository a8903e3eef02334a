"""The base of the multi-label models: the checks every ``fit`` starts with, written once."""
from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import _num_samples

__all__ = ["BaseMultilabelClassifier", "accepts_sample_weight"]


def accepts_sample_weight(estimator) -> bool:
    """Whether ``estimator.fit`` takes a ``sample_weight`` argument."""
    fit = getattr(estimator, "fit", None)
    if fit is None:
        return False
    try:
        return "sample_weight" in inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False


class BaseMultilabelClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier fitted on a feature matrix and a (documents x labels) matrix."""

    def _validate_fit_input(self, X, Y, sample_weight=None, *, weighted=None, binarize=False):
        """Check the parameters, ``Y`` and ``sample_weight`` before fitting; return ``Y`` as an array.

        Parameters
        ----------
        X : features (matrix or list of texts), used for its number of rows
        Y : label matrix, one row per row of ``X``
        sample_weight : array, optional
        weighted : dict, optional
            ``{name: estimator}`` of the inner estimators that receive ``sample_weight``;
            each must accept it (default: ``{"estimator": self.estimator}`` where there is one).
        binarize : bool, default=False
            Return ``(Y > 0)`` as int8 instead of ``Y`` as given.
        """
        self._validate_params()
        Y = np.asarray(Y)
        try:
            n = _num_samples(X)
        except TypeError:  # no rows to compare with (a scalar, a generator)
            n = None
        if Y.ndim != 2 or (n is not None and Y.shape[0] != n):
            raise ValueError(f"{type(self).__name__} needs a 2-D label matrix (documents x labels) with one row "
                             f"per sample; got X with {n} rows and Y of shape {Y.shape}.")
        if sample_weight is not None:
            if weighted is None:
                weighted = {"estimator": self.estimator} if hasattr(self, "estimator") else {}
            for name, est in weighted.items():
                if not accepts_sample_weight(est):
                    raise TypeError(f"{type(self).__name__}: {name} ({type(est).__name__}) does not accept "
                                    "sample_weight; choose a strategy that resamples instead of weighting, or "
                                    "another estimator.")
        return (Y > 0).astype(np.int8) if binarize else Y
