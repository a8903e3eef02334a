"""REMEDIAL: decoupling minority and majority labels of difficult instances (Charte et al., 2019)."""
from __future__ import annotations

import numpy as np

from mltc.imbalance import irlbl, label_counts, mean_ir, scumble_per_instance
from mltc.strategies.base import BaseMultilabelSampler, stack_rows, take_rows

__all__ = ["REMEDIAL"]


class REMEDIAL(BaseMultilabelSampler):
    """REMEDIAL: split instances where minority and majority labels meet.

    Every instance whose SCUMBLE is above the data set's mean SCUMBLE is split
    in two with the same features: the original keeps only its majority labels
    (IRLbl <= MeanIR) and a copy, appended at the end, keeps only its minority
    labels (IRLbl > MeanIR). Label counts are unchanged; SCUMBLE falls.
    Deterministic: there is no ``random_state``.

    F. Charte, A. J. Rivera, M. J. del Jesus, F. Herrera, "Dealing with
    difficult minority labels in imbalanced multilabel data sets",
    Neurocomputing 326-327 (2019) 39-53, doi:10.1016/j.neucom.2016.08.158.

    Attributes
    ----------
    sample_indices_ : ndarray
        Input row whose features each output row copies (originals, then the split rows).
    split_indices_ : ndarray
        Input rows that were split.
    minority_labels_ : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from mltc.strategies.remedial import REMEDIAL
    >>> Y = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    >>> X2, Y2 = REMEDIAL().fit_resample(np.eye(5), Y)
    >>> Y2.tolist()[5:], REMEDIAL().fit_resample(np.eye(5), Y)[1].sum(axis=0).tolist()
    ([[0, 0, 1, 0], [0, 0, 0, 1]], [4, 2, 1, 1])
    """

    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _fit_resample(self, X, Y, rng):
        n = Y.shape[0]
        counts = label_counts(Y)
        ir = irlbl(counts=counts)
        minority = np.isfinite(ir) & (ir > mean_ir(counts=counts))
        s = scumble_per_instance(Y, ir=ir)
        split = np.flatnonzero(s > s.mean()) if n else np.empty(0, dtype=np.intp)
        self.split_indices_ = split
        self.minority_labels_ = np.flatnonzero(minority)
        Y_out = Y.copy()
        Y_out[np.ix_(split, np.flatnonzero(minority))] = 0
        Y_min = Y[split] * minority.astype(np.int8)
        idx = np.concatenate([np.arange(n), split]).astype(np.intp)
        return stack_rows(X, take_rows(X, split)), np.vstack([Y_out, Y_min]), idx
