"""The empty strategy: the slot resamplers and weighting schemes plug into."""
from __future__ import annotations

from sklearn.base import BaseEstimator

__all__ = ["NoStrategy"]


class NoStrategy(BaseEstimator):
    """Return the training data unchanged (the baseline every strategy is compared with).

    A strategy's ``fit_resample(X, Y)`` returns ``(X', Y')`` or ``(X', Y', sample_weight)``;
    the pipeline passes ``sample_weight`` to the model's ``fit`` when present.
    """

    def fit_resample(self, X, Y):
        """Return ``(X, Y)`` as given."""
        self.sample_indices_ = None
        return X, Y
