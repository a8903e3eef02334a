"""Imbalance-aware binary losses on logits, with gradients and hessians in numpy.

Every loss is elementwise over an (n_samples, n_labels) logit matrix ``z`` and a
binary label matrix ``Y`` and gives the value, the first and the second
derivative with respect to ``z``: exactly what a gradient-boosting custom
objective needs (see :class:`mltc.models.boosting.BoostedBinaryRelevance`).

Each loss's value is written once, in :meth:`BinaryLoss._value`, over a small set of array
operations (``ops``: log-sigmoid, sigmoid, focal term, where, ...). Numpy evaluates it with
:data:`NUMPY_OPS`; the torch head (:mod:`mltc.models.mlp`) with its torch twin, so autograd gives
the same loss's gradients there. The numpy derivatives (:meth:`BinaryLoss._derivatives`) are
closed forms, checked against finite differences of that value (tests/test_losses.py).

A loss may learn label statistics from the training labels in :meth:`fit`
(class-balanced and distribution-balanced losses do). Per-element weights
(:meth:`element_weights`) hold everything that depends on the label matrix, so
that one label's booster can evaluate its column alone.

References
----------
Lin et al. (2017), Focal loss for dense object detection. ICCV.
Cui et al. (2019), Class-balanced loss based on effective number of samples. CVPR.
Wu et al. (2020), Distribution-balanced loss for multi-label classification in long-tailed datasets. ECCV.
Huang et al. (2021), Balancing methods for multi-label text classification with long-tailed class
distribution. EMNLP.
Ridnik et al. (2021), Asymmetric loss for multi-label classification. ICCV.
Szegedy et al. (2016), Rethinking the inception architecture (label smoothing). CVPR.
"""
from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from mltc.models.weights import binary_class_weights

__all__ = ["BinaryLoss", "WeightedBCE", "FocalLoss", "LabelSmoothingBCE", "ClassBalancedFocalLoss",
           "DistributionBalancedLoss", "AsymmetricLoss", "sigmoid", "focal_term"]


def sigmoid(z):
    """Numerically stable logistic function."""
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


class NUMPY_OPS:
    """The array operations :meth:`BinaryLoss._value` is written in, for numpy."""

    log = staticmethod(np.log)
    where = staticmethod(np.where)

    @staticmethod
    def log_sigmoid(z):
        return _log_sigmoid(z)

    @staticmethod
    def sigmoid(z):
        return sigmoid(z)

    @staticmethod
    def focal(u, gamma):
        """``-(1 - sigmoid(u))**gamma * log sigmoid(u)`` (the value of :func:`focal_term`)."""
        return focal_term(u, gamma)[0]

    @staticmethod
    def const(v, like):
        """``v`` as an array that combines with ``like``."""
        return np.asarray(v, dtype=np.float64)


def focal_term(u, gamma):
    """``f(u) = -(1 - s)**gamma * log(s)`` with ``s = sigmoid(u)``, and its first two derivatives.

    The positive part of the focal loss is ``f(z)``, the negative part ``f(-z)``;
    ``gamma = 0`` gives the logistic loss.
    """
    s = sigmoid(u)
    q = sigmoid(-u)  # 1 - s, computed without cancellation
    log_s = _log_sigmoid(u)
    qg = q ** gamma
    f = -qg * log_s
    d1 = gamma * s * qg * log_s - qg * q
    d2 = (gamma * (s * qg * q * log_s - gamma * s * s * qg * log_s + s * qg * q)
          + (gamma + 1.0) * s * qg * q)
    return f, d1, d2


class BinaryLoss(BaseEstimator):
    """Base class: subclasses write :meth:`_value` (over ``ops``) and :meth:`_derivatives` (numpy).

    Losses are plain parameter holders; label statistics, where a loss needs them,
    are learnt in :meth:`fit` from the training label matrix.
    """

    _parameter_constraints: dict = {}
    #: whether :meth:`fit` must see the training labels before use
    needs_fit = False

    def fit(self, Y):
        """Learn label statistics (positive counts and number of rows) from training labels."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        Y = np.asarray(Y)
        if Y.ndim != 2:
            raise ValueError(f"{type(self).__name__}.fit needs a 2-D label matrix, got shape {Y.shape}.")
        self.label_counts_ = Y.sum(axis=0).astype(np.float64)
        self.n_samples_ = int(Y.shape[0])
        return self

    def element_weights(self, Y):
        """Per-element multipliers of the loss for label matrix ``Y`` (all ones by default)."""
        return np.ones(np.shape(Y), dtype=np.float64)

    def _columns(self, attr, labels, k):
        if self.needs_fit:
            check_is_fitted(self, "label_counts_", msg=f"{type(self).__name__} uses training label counts: "
                                                        "call fit(Y_train) before evaluating it.")
        v = getattr(self, attr)
        v = v if labels is None else np.atleast_1d(v[labels])
        if v.shape[0] != k:
            raise ValueError(f"{type(self).__name__} was fitted on {v.shape[0]} labels but got {k} columns; "
                             "pass labels= to select the fitted labels the columns belong to.")
        return v

    def _prepare(self, z, Y, weight):
        z = np.asarray(z, dtype=np.float64)
        y = np.asarray(Y, dtype=np.float64).reshape(z.shape)
        flat = z.ndim == 1
        if flat:
            z, y = z[:, None], y[:, None]
        if weight is None:
            w = self.element_weights(y)
        else:
            w = np.asarray(weight, dtype=np.float64).reshape(y.shape)
        return z, y, w, flat

    def value(self, z, Y, *, weight=None, labels=None):
        """Elementwise loss.

        Parameters
        ----------
        z : array of shape (n_samples, n_labels) or (n_samples,)
            Logits.
        Y : array of the same shape
            Binary targets.
        weight : array of the same shape, optional
            Per-element weights; default :meth:`element_weights` of ``Y``.
        labels : int or array of int, optional
            Which fitted labels the columns of ``z`` are (default: all, in order).
        """
        return self._compute(z, Y, weight, labels)[0]

    def grad_hess(self, z, Y, *, weight=None, labels=None):
        """Elementwise first and second derivatives with respect to ``z`` (see :meth:`value`)."""
        _, g, h = self._compute(z, Y, weight, labels)
        return g, h

    def _compute(self, z, Y, weight, labels):
        z, y, w, flat = self._prepare(z, Y, weight)
        l, g, h = self._terms(z, y, labels)
        out = (w * l, w * g, w * h)
        return tuple(o[:, 0] for o in out) if flat else out

    def _terms(self, z, y, labels):
        """Value, gradient and hessian per element (a subclass may also write this one method alone)."""
        return (self._value(NUMPY_OPS, z, y, labels), *self._derivatives(z, y, labels))

    def _value(self, ops, z, y, labels):  # pragma: no cover - abstract
        """Unweighted elementwise loss of logits ``z`` and targets ``y``, in array operations ``ops``."""
        raise NotImplementedError

    def _derivatives(self, z, y, labels):  # pragma: no cover - abstract
        """First and second derivative of :meth:`_value` with respect to ``z`` (numpy)."""
        raise NotImplementedError


class WeightedBCE(BinaryLoss):
    """Binary cross-entropy, positives weighted by ``pos_weight``.

    ``-w [pos_weight * y log p + (1 - y) log(1 - p)]``. Per-label weights
    (``pos_weight: balanced`` of the boosted models) and sample weights from a
    strategy multiply in as element weights; ``pos_weight=1`` is plain logloss.

    Parameters
    ----------
    pos_weight : float, default=1.0
    """

    _parameter_constraints = {"pos_weight": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, *, pos_weight=1.0):
        self.pos_weight = pos_weight

    def element_weights(self, Y):
        """``pos_weight`` on positives, 1 on negatives."""
        Y = np.asarray(Y, dtype=np.float64)
        return self.pos_weight * Y + (1 - Y)

    def _value(self, ops, z, y, labels):
        return -(y * ops.log_sigmoid(z) + (1 - y) * ops.log_sigmoid(-z))

    def _derivatives(self, z, y, labels):
        p = sigmoid(z)
        return p - y, p * (1 - p)


class FocalLoss(BinaryLoss):
    """Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)**gamma log p_t``.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter; 0 gives (alpha-weighted) cross-entropy.
    alpha : float in [0, 1] or None, default=0.25
        Weight of positives (negatives get ``1 - alpha``); None weighs both 1.
    """

    _parameter_constraints = {"gamma": [Interval(Real, 0, None, closed="left")],
                              "alpha": [Interval(Real, 0, 1, closed="both"), None]}

    def __init__(self, *, gamma=2.0, alpha=0.25):
        self.gamma = gamma
        self.alpha = alpha

    def _alphas(self):
        return (1.0, 1.0) if self.alpha is None else (self.alpha, 1.0 - self.alpha)

    def _value(self, ops, z, y, labels):
        a_pos, a_neg = self._alphas()
        return y * a_pos * ops.focal(z, self.gamma) + (1 - y) * a_neg * ops.focal(-z, self.gamma)

    def _derivatives(self, z, y, labels):
        a_pos, a_neg = self._alphas()
        _, gp, hp = focal_term(z, self.gamma)
        _, gn, hn = focal_term(-z, self.gamma)
        # d/dz f(-z) = -f'(-z), d2/dz2 f(-z) = f''(-z)
        return (y * a_pos * gp - (1 - y) * a_neg * gn,
                y * a_pos * hp + (1 - y) * a_neg * hn)


class LabelSmoothingBCE(BinaryLoss):
    """Cross-entropy against smoothed targets ``y (1 - epsilon) + epsilon / 2`` (Szegedy et al. 2016).

    Parameters
    ----------
    epsilon : float in [0, 1), default=0.1
    """

    _parameter_constraints = {"epsilon": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, *, epsilon=0.1):
        self.epsilon = epsilon

    def _value(self, ops, z, y, labels):
        t = y * (1 - self.epsilon) + self.epsilon / 2
        return -(t * ops.log_sigmoid(z) + (1 - t) * ops.log_sigmoid(-z))

    def _derivatives(self, z, y, labels):
        t = y * (1 - self.epsilon) + self.epsilon / 2
        p = sigmoid(z)
        return p - t, p * (1 - p)


class ClassBalancedFocalLoss(BinaryLoss):
    """Class-balanced focal loss (Cui et al. 2019), per label's binary problem.

    Positives and negatives of label ``j`` are the two classes: each is weighted
    by the inverse of its effective number ``(1 - beta**n) / (1 - beta)``, the
    two weights normalised to sum to 2. ``beta = 0`` gives the focal loss,
    ``beta -> 1`` inverse-frequency weighting.

    Parameters
    ----------
    beta : float in [0, 1), default=0.999
    gamma : float, default=2.0
    """

    _parameter_constraints = {"beta": [Interval(Real, 0, 1, closed="left")],
                              "gamma": [Interval(Real, 0, None, closed="left")]}
    needs_fit = True

    def __init__(self, *, beta=0.999, gamma=2.0):
        self.beta = beta
        self.gamma = gamma

    def fit(self, Y):
        """Learn the effective number of positives and negatives of each label."""
        super().fit(Y)
        self.neg_weight_, self.pos_weight_ = binary_class_weights(
            self.label_counts_, self.n_samples_, scheme="effective_number", beta=self.beta)
        return self

    def element_weights(self, Y):
        """``pos_weight_`` on positives, ``neg_weight_`` on negatives (columns = all fitted labels)."""
        Y = np.asarray(Y, dtype=np.float64)
        k = Y.shape[1] if Y.ndim == 2 else 1
        wp, wn = self._columns("pos_weight_", None, k), self._columns("neg_weight_", None, k)
        return Y * wp + (1 - Y) * wn

    def _compute(self, z, Y, weight, labels):
        if weight is None and labels is not None:
            y = np.asarray(Y, dtype=np.float64)
            y2 = y[:, None] if y.ndim == 1 else y
            wp = self._columns("pos_weight_", labels, y2.shape[1])
            wn = self._columns("neg_weight_", labels, y2.shape[1])
            weight = (y2 * wp + (1 - y2) * wn).reshape(y.shape)
        return super()._compute(z, Y, weight, labels)

    # the class-balanced weights are element weights; the terms are the unweighted focal loss's
    def _value(self, ops, z, y, labels):
        return FocalLoss(gamma=self.gamma, alpha=None)._value(ops, z, y, labels)

    def _derivatives(self, z, y, labels):
        return FocalLoss(gamma=self.gamma, alpha=None)._derivatives(z, y, labels)


class DistributionBalancedLoss(BinaryLoss):
    """Distribution-balanced loss (Wu et al. 2020) as used for text by Huang et al. (2021).

    Rebalancing weight of instance ``i`` and label ``k``: ``r = (1/n_k) / sum_{l in y_i} 1/n_l``,
    smoothed to ``r_hat = alpha + sigmoid(beta (r - mu))``. Negative-tolerant
    regularisation shifts logits by ``nu_k = init_bias * logit(n_k / N) / neg_scale``
    and scales negative logits by ``neg_scale`` (their loss by ``1 / neg_scale``),
    following the authors' code. With ``gamma > 0`` the terms are focal:

    * ``y = 1``: ``balance * r_hat * f(z + nu)``
    * ``y = 0``: ``balance * r_hat / neg_scale * f(-neg_scale (z + nu))``

    where ``f(u) = -(1 - sigmoid(u))**gamma log sigmoid(u)`` (:func:`focal_term`).
    Rows without any label get ``r = 1``. Defaults are Huang et al.'s.

    Parameters
    ----------
    alpha, beta, mu : float, default=0.1, 10.0, 0.9
        Smoothing of the rebalancing weight.
    neg_scale : float, default=2.0
        ``lambda`` of the negative-tolerant regularisation.
    init_bias : float, default=0.05
        ``kappa``: how far the class prior shifts the logits.
    gamma : float, default=2.0
        Focal exponent (0: no focusing).
    balance : float, default=0.5
        Overall factor (the focal ``alpha`` of the authors' configuration).
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "mu": [Real],
        "neg_scale": [Interval(Real, 0, None, closed="neither")],
        "init_bias": [Real],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "balance": [Interval(Real, 0, None, closed="neither")],
    }
    needs_fit = True

    def __init__(self, *, alpha=0.1, beta=10.0, mu=0.9, neg_scale=2.0, init_bias=0.05, gamma=2.0, balance=0.5):
        self.alpha = alpha
        self.beta = beta
        self.mu = mu
        self.neg_scale = neg_scale
        self.init_bias = init_bias
        self.gamma = gamma
        self.balance = balance

    def fit(self, Y):
        """Learn label frequencies and the logit shifts ``nu``."""
        super().fit(Y)
        c = np.clip(self.label_counts_, 0.5, self.n_samples_ - 0.5)  # keep the prior logit finite
        self.shift_ = self.init_bias * np.log(c / (self.n_samples_ - c)) / self.neg_scale
        return self

    def element_weights(self, Y):
        """Smoothed rebalancing weights ``r_hat`` (rows are instances with all fitted labels)."""
        Y = np.asarray(Y, dtype=np.float64)
        inv = 1.0 / np.maximum(self._columns("label_counts_", None, Y.shape[1]), 1.0)
        repeat = Y @ inv
        r = np.where(repeat[:, None] > 0, inv[None, :] / np.where(repeat > 0, repeat, 1.0)[:, None], 1.0)
        return self.alpha + sigmoid(self.beta * (r - self.mu))

    def _compute(self, z, Y, weight, labels):
        if weight is None and labels is not None:
            raise ValueError("DistributionBalancedLoss weights depend on each row's whole label set: compute "
                             "element_weights(Y_full) once and pass its columns as weight=.")
        return super()._compute(z, Y, weight, labels)

    def _value(self, ops, z, y, labels):
        lam = self.neg_scale
        zt = z + ops.const(self._columns("shift_", labels, z.shape[1]), z)
        return self.balance * (y * ops.focal(zt, self.gamma) + (1 - y) * ops.focal(-lam * zt, self.gamma) / lam)

    def _derivatives(self, z, y, labels):
        lam = self.neg_scale
        zt = z + self._columns("shift_", labels, z.shape[1])
        _, gp, hp = focal_term(zt, self.gamma)
        _, gn, hn = focal_term(-lam * zt, self.gamma)
        b = self.balance
        return (b * (y * gp - (1 - y) * gn),
                b * (y * hp + (1 - y) * lam * hn))


class AsymmetricLoss(BinaryLoss):
    """Asymmetric loss (Ridnik et al. 2021).

    ``L+ = -(1 - p)**gamma_pos log p`` and ``L- = -p_m**gamma_neg log(1 - p_m)``
    with the shifted probability ``p_m = max(p - clip, 0)``, which discards easy
    negatives entirely.

    Parameters
    ----------
    gamma_pos : float, default=0.0
    gamma_neg : float, default=4.0
    clip : float in [0, 1), default=0.05
    """

    _parameter_constraints = {"gamma_pos": [Interval(Real, 0, None, closed="left")],
                              "gamma_neg": [Interval(Real, 0, None, closed="left")],
                              "clip": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, *, gamma_pos=0.0, gamma_neg=4.0, clip=0.05):
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.clip = clip

    def _value(self, ops, z, y, labels):
        t = ops.sigmoid(z) - self.clip
        active = t > 0
        # placeholders where the negative term is switched off keep pow/log (and torch's gradients) finite
        t = ops.where(active, t, 1.0)
        one_m = ops.where(active, ops.sigmoid(-z) + self.clip, 1.0)  # 1 - p_m > 0
        neg = ops.where(active, -t ** self.gamma_neg * ops.log(one_m), 0.0)
        return y * ops.focal(z, self.gamma_pos) + (1 - y) * neg

    def _derivatives(self, z, y, labels):
        _, gp, hp = focal_term(z, self.gamma_pos)
        p = sigmoid(z)
        d = p * sigmoid(-z)  # dp/dz
        t = p - self.clip
        act = t > 0
        t = np.where(act, t, 1.0)  # placeholder where inactive, masked below
        one_m = sigmoid(-z) + self.clip  # 1 - p_m > 0
        log1m = np.log(one_m)
        gn = self.gamma_neg
        tg = t ** gn
        # derivatives in t, then chain rule through p(z)
        ht = -gn * t ** (gn - 1) * log1m + tg / one_m
        htt = (-gn * (gn - 1) * t ** (gn - 2) * log1m + 2 * gn * t ** (gn - 1) / one_m + tg / one_m ** 2)
        dn = np.where(act, ht * d, 0.0)
        hn = np.where(act, htt * d * d + ht * d * (1 - 2 * p), 0.0)
        return y * gp + (1 - y) * dn, y * hp + (1 - y) * hn
