"""Per-label class weights for the binary problems of a multi-label task.

Each label ``j`` is a binary problem with ``n_pos`` positives and
``n_neg = n - n_pos`` negatives. Schemes:

* ``"none"``: both classes weigh 1.
* ``"balanced"``: scikit-learn's ``n / (2 n_c)`` for each class ``c``.
* ``"effective_number"``: Cui et al. (2019): weight ``1 / E(n_c)`` with
  ``E(n) = (1 - beta**n) / (1 - beta)``, normalised so the two weights sum to 2.
  ``beta = 0`` weighs both 1, ``beta -> 1`` approaches ``"balanced"``.

Boosted learners want a single ratio per label, ``scale_pos_weight = w_pos / w_neg``
(XGBoost and LightGBM take one scalar per booster, dmlc/xgboost#2454, hence one
booster per label).

References
----------
Cui et al. (2019), Class-balanced loss based on effective number of samples. CVPR.
"""
from __future__ import annotations

import numpy as np

__all__ = ["WEIGHT_SCHEMES", "effective_number", "binary_class_weights", "scale_pos_weight"]

WEIGHT_SCHEMES = ("none", "balanced", "effective_number")


def effective_number(n, beta):
    """Effective number of samples ``(1 - beta**n) / (1 - beta)`` (``n`` itself at ``beta = 1``)."""
    n = np.asarray(n, dtype=np.float64)
    if beta >= 1.0:
        return n
    if beta <= 0.0:
        return np.ones_like(n)
    # -expm1(n log beta) keeps precision when beta**n is close to 1
    return -np.expm1(n * np.log(beta)) / (1.0 - beta)


def binary_class_weights(label_counts, n_samples, *, scheme="balanced", beta=0.999):
    """Weights of the negative and positive class of every label.

    Parameters
    ----------
    label_counts : array of shape (n_labels,)
        Positives per label in the training data.
    n_samples : int
    scheme : {"none", "balanced", "effective_number"}
    beta : float in [0, 1], used by ``"effective_number"``

    Returns
    -------
    w_neg, w_pos : ndarray of shape (n_labels,)
        A class absent from training counts as one example, so weights stay finite.
    """
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"Unknown class-weight scheme {scheme!r}; choose one of {', '.join(WEIGHT_SCHEMES)}.")
    pos = np.maximum(np.asarray(label_counts, dtype=np.float64), 1.0)
    neg = np.maximum(float(n_samples) - np.asarray(label_counts, dtype=np.float64), 1.0)
    if scheme == "none":
        return np.ones_like(pos), np.ones_like(pos)
    if scheme == "balanced":
        return n_samples / (2.0 * neg), n_samples / (2.0 * pos)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1] (Cui et al. use 0.9 to 0.9999), got {beta}.")
    inv_neg, inv_pos = 1.0 / effective_number(neg, beta), 1.0 / effective_number(pos, beta)
    norm = 2.0 / (inv_neg + inv_pos)
    return inv_neg * norm, inv_pos * norm


def scale_pos_weight(label_counts, n_samples, *, scheme="balanced", beta=0.999):
    """Per-label ``w_pos / w_neg`` ratio for XGBoost's / LightGBM's ``scale_pos_weight``."""
    w_neg, w_pos = binary_class_weights(label_counts, n_samples, scheme=scheme, beta=beta)
    return w_pos / w_neg
