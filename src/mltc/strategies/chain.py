"""Hybrid strategies: samplers applied one after another."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["SamplerChain"]


class SamplerChain(BaseEstimator):
    """Apply samplers in order, each to the previous one's output.

    For example REMEDIAL then MLSMOTE (Charte et al., Neurocomputing 326-327,
    2019, pair them), or ML-RUS then ML-ROS.

    Parameters
    ----------
    steps : list of samplers
        Objects with ``fit_resample(X, Y)``. Only the last may return sample
        weights as a third output.

    Attributes
    ----------
    sample_indices_ : ndarray or None
        Input row whose features the first ``len(sample_indices_)`` output rows
        copy (composed through the steps); ``None`` if a step does not say.

    Examples
    --------
    >>> from mltc.strategies.chain import SamplerChain
    >>> from mltc.strategies.remedial import REMEDIAL
    >>> from mltc.strategies.mlsmote import MLSMOTE
    >>> chain = SamplerChain(steps=[REMEDIAL(), MLSMOTE(random_state=0)])
    """

    def __init__(self, *, steps):
        self.steps = steps

    def fit_resample(self, X, Y):
        """Run every step; return ``(X', Y')`` or ``(X', Y', sample_weight)``."""
        steps = list(self.steps) if self.steps is not None else []
        if not steps:
            raise ValueError("SamplerChain needs at least one step: pass steps=[sampler, ...].")
        for i, step in enumerate(steps):
            if not hasattr(step, "fit_resample"):
                raise TypeError(f"SamplerChain step {i} ({step!r}) has no fit_resample(X, Y); "
                                "each step must be a sampler such as mltc.strategies.mlsmote.MLSMOTE.")
        idx = np.arange(X.shape[0])
        out = (X, Y)
        for i, step in enumerate(steps):
            if len(out) == 3:
                raise ValueError(f"SamplerChain step {i - 1} ({type(steps[i - 1]).__name__}) returned sample "
                                 "weights, which the next step cannot take; put weighting last.")
            out = tuple(step.fit_resample(out[0], out[1]))
            step_idx = getattr(step, "sample_indices_", None)
            idx = None if idx is None or step_idx is None else idx[np.asarray(step_idx)]
        self.sample_indices_ = idx
        self.steps_ = steps
        return out
