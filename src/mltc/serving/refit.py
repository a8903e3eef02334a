"""Refit a configuration on training + validation data (what ``mltc promote`` runs).

Two wrappers turn a run's configuration into its refit: :class:`MergeValidation` hands the
pipeline the validation rows as training rows, and :class:`OutOfFoldRule` tunes a decision rule
that needed validation scores on out-of-fold scores of the merged training data instead.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

__all__ = ["MergeValidation", "OutOfFoldRule", "needs_validation"]


def needs_validation(rule) -> bool:
    """Whether a decision rule is tuned on validation scores (so a refit without validation must change it)."""
    return not getattr(rule, "needs_oof", False) and getattr(rule, "needs_validation", True)


class MergeValidation(BaseEstimator):
    """A splitter whose training part is another splitter's training + validation parts.

    Parameters
    ----------
    splitter : object with ``split(dataset) -> {"train", "val", "test"}``

    Examples
    --------
    >>> from mltc.split import DatasetSplitter
    >>> merged = MergeValidation(DatasetSplitter(random_state=0))  # doctest: +SKIP
    >>> parts = merged.split(dataset)  # doctest: +SKIP
    >>> len(parts["val"])  # doctest: +SKIP
    0
    """

    def __init__(self, splitter=None):
        self.splitter = splitter

    def split(self, dataset) -> dict:
        if self.splitter is None:
            raise ValueError("MergeValidation needs a splitter (split.splitter).")
        parts = self.splitter.split(dataset)
        train = np.concatenate([np.asarray(parts["train"], dtype=np.int64), np.asarray(parts["val"], dtype=np.int64)])
        return {"train": train, "val": np.zeros(0, dtype=np.int64), "test": np.asarray(parts["test"])}


class OutOfFoldRule(BaseEstimator):
    """A decision rule tuned on out-of-fold training scores instead of validation scores.

    The pipeline scores every training document with a model fitted on the other folds
    (``n_splits`` multi-label stratified folds) and fits ``rule`` on those scores, as
    ``thresholds=per_label_cv`` does for the per-label rule; the final model is fitted on all
    training data.

    Parameters
    ----------
    rule : decision rule from :mod:`mltc.thresholds`
    n_splits : int, default=5

    Attributes
    ----------
    rule_ : the fitted copy of ``rule``
    """

    needs_oof = True

    _parameter_constraints = {"n_splits": [Interval(Integral, 2, None, closed="left")]}

    def __init__(self, rule=None, n_splits=5):
        self.rule = rule
        self.n_splits = n_splits

    def fit(self, scores, Y, *, score_kind="proba", Y_train=None):
        self._validate_params()
        if self.rule is None:
            raise ValueError("OutOfFoldRule needs a rule (thresholds.rule).")
        self.rule_ = clone(self.rule).fit(scores, Y, score_kind=score_kind, Y_train=Y_train)
        return self

    def predict(self, scores):
        check_is_fitted(self, "rule_")
        return self.rule_.predict(scores)

    @property
    def thresholds_(self):
        return getattr(self.rule_, "thresholds_", None) if hasattr(self, "rule_") else None

    def summary_(self) -> dict:
        check_is_fitted(self, "rule_")
        inner = self.rule_.summary_() if callable(getattr(self.rule_, "summary_", None)) else {}
        return {**inner, "oof_n_splits": self.n_splits}
