"""Each loss against its published closed form, and its derivatives against finite differences."""
from __future__ import annotations

import numpy as np
import pytest

from mltc.models.losses import (AsymmetricLoss, ClassBalancedFocalLoss, DistributionBalancedLoss, FocalLoss,
                                LabelSmoothingBCE, WeightedBCE)
from mltc.models.weights import binary_class_weights, effective_number, scale_pos_weight


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 2.5, size=(60, 6))
    Y = (rng.random((60, 6)) < np.linspace(0.05, 0.5, 6)).astype(np.int8)
    Y[:3] = 0  # rows without labels
    Y[3, :] = 1
    return z, Y


def _p(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---- closed forms, written from the papers with plain probabilities ---------------------------------------

def _bce(z, y, pos_weight=1.0):
    p = _p(z)
    return -(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))


def _focal(z, y, gamma, alpha):
    p = _p(z)
    pt = np.where(y == 1, p, 1 - p)
    at = 1.0 if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    return -at * (1 - pt) ** gamma * np.log(pt)


def _db(z, Y, alpha, beta, mu, lam, kappa, gamma, balance):
    # Wu et al. (2020), eqs. for P^C, P^I, r, r_hat and the NTR loss, in the authors' code form
    n, L = Y.shape
    nk = Y.sum(axis=0).astype(float)
    r = np.ones_like(z)
    for i in range(n):
        if Y[i].sum():
            r[i] = (1.0 / nk) / np.sum(Y[i] / nk)
    r_hat = alpha + 1.0 / (1.0 + np.exp(-beta * (r - mu)))
    nu = kappa * -np.log(n / nk - 1) / lam
    zt = z + nu
    pos = -(1 - _p(zt)) ** gamma * np.log(_p(zt))
    neg = -(1 - _p(-lam * zt)) ** gamma * np.log(_p(-lam * zt)) / lam
    return balance * r_hat * np.where(Y == 1, pos, neg)


def _asl(z, y, gp, gn, m):
    p = _p(z)
    pm = np.maximum(p - m, 0)
    return np.where(y == 1, -(1 - p) ** gp * np.log(p), -pm ** gn * np.log(1 - pm))


CASES = [
    (lambda Y: WeightedBCE(pos_weight=3.0), lambda z, Y: _bce(z, Y, 3.0)),
    (lambda Y: WeightedBCE(), lambda z, Y: _bce(z, Y)),
    (lambda Y: FocalLoss(gamma=2.0, alpha=0.25), lambda z, Y: _focal(z, Y, 2.0, 0.25)),
    (lambda Y: FocalLoss(gamma=1.5, alpha=None), lambda z, Y: _focal(z, Y, 1.5, None)),
    (lambda Y: LabelSmoothingBCE(epsilon=0.2),
     lambda z, Y: -((Y * 0.8 + 0.1) * np.log(_p(z)) + (1 - (Y * 0.8 + 0.1)) * np.log(1 - _p(z)))),
    (lambda Y: ClassBalancedFocalLoss(beta=0.99, gamma=2.0).fit(Y),
     lambda z, Y: _focal(z, Y, 2.0, None) * np.where(Y == 1, *binary_class_weights(
         Y.sum(0), Y.shape[0], scheme="effective_number", beta=0.99)[::-1])),
    (lambda Y: DistributionBalancedLoss().fit(Y), lambda z, Y: _db(z, Y, 0.1, 10.0, 0.9, 2.0, 0.05, 2.0, 0.5)),
    (lambda Y: DistributionBalancedLoss(gamma=0.0, neg_scale=5.0, balance=1.0).fit(Y),
     lambda z, Y: _db(z, Y, 0.1, 10.0, 0.9, 5.0, 0.05, 0.0, 1.0)),
    (lambda Y: AsymmetricLoss(), lambda z, Y: _asl(z, Y, 0.0, 4.0, 0.05)),
    (lambda Y: AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.0), lambda z, Y: _asl(z, Y, 1.0, 2.0, 0.0)),
]
IDS = ["bce_pw3", "bce", "focal", "focal_noalpha", "label_smoothing", "cb_focal", "db", "db_nofocal",
       "asl", "asl_noclip"]


@pytest.mark.parametrize("make, closed_form", CASES, ids=IDS)
def test_value_matches_closed_form(data, make, closed_form):
    z, Y = data
    loss = make(Y)
    np.testing.assert_allclose(loss.value(z, Y), closed_form(z, Y), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("make, closed_form", CASES, ids=IDS)
def test_derivatives_match_finite_differences(data, make, closed_form):
    z, Y = data
    loss = make(Y)
    w = loss.element_weights(Y)
    eps = 1e-5
    g, h = loss.grad_hess(z, Y, weight=w)
    g_fd = (loss.value(z + eps, Y, weight=w) - loss.value(z - eps, Y, weight=w)) / (2 * eps)
    h_fd = (loss.grad_hess(z + eps, Y, weight=w)[0] - loss.grad_hess(z - eps, Y, weight=w)[0]) / (2 * eps)
    # ASL's shifted probability has a kink at p = clip; compare away from it
    away = np.abs(_p(z) - getattr(loss, "clip", -1.0)) > 1e-3
    np.testing.assert_allclose(g[away], g_fd[away], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h[away], h_fd[away], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make, closed_form", CASES, ids=IDS)
def test_one_column_matches_the_full_matrix(data, make, closed_form):
    # a per-label booster evaluates its own column with labels=j and that column's weights
    z, Y = data
    loss = make(Y)
    W = loss.element_weights(Y)
    g, h = loss.grad_hess(z, Y, weight=W)
    j = 4
    gj, hj = loss.grad_hess(z[:, j], Y[:, j], weight=W[:, j], labels=j)
    np.testing.assert_allclose(gj, g[:, j])
    np.testing.assert_allclose(hj, h[:, j])


def test_focal_with_gamma_zero_is_alpha_weighted_bce(data):
    z, Y = data
    np.testing.assert_allclose(FocalLoss(gamma=0.0, alpha=None).value(z, Y), _bce(z, Y), rtol=1e-12)
    np.testing.assert_allclose(FocalLoss(gamma=0.0, alpha=0.5).value(z, Y), 0.5 * _bce(z, Y), rtol=1e-12)


def test_focal_downweights_easy_examples():
    z = np.array([-6.0, -1.0])  # an easy and a hard negative
    y = np.zeros(2)
    ratio = FocalLoss(gamma=2.0, alpha=None).value(z, y) / WeightedBCE().value(z, y)
    assert ratio[0] < ratio[1] < 1.0


def test_asymmetric_loss_discards_negatives_below_the_margin():
    z = np.log(np.array([0.01, 0.04]) / (1 - np.array([0.01, 0.04])))  # p below clip=0.05
    loss = AsymmetricLoss(clip=0.05)
    assert np.all(loss.value(z, np.zeros(2)) == 0.0)
    assert np.all(loss.grad_hess(z, np.zeros(2))[0] == 0.0)


def test_losses_are_stable_at_extreme_logits():
    z = np.array([[-800.0, 800.0, -40.0, 40.0]])
    for y in (np.zeros_like(z), np.ones_like(z)):
        for loss in (WeightedBCE(), FocalLoss(), LabelSmoothingBCE(), AsymmetricLoss()):
            v, (g, h) = loss.value(z, y), loss.grad_hess(z, y)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h)), type(loss).__name__


def test_losses_needing_counts_say_so_before_fit(data):
    z, Y = data
    with pytest.raises(Exception, match="call fit"):
        DistributionBalancedLoss().value(z, Y)


def test_invalid_parameters_are_rejected_at_fit(data):
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0).fit(data[1])


# ---- class weights -------------------------------------------------------------------------------------

def test_balanced_weights_match_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 4)) < [0.02, 0.1, 0.3, 0.5]).astype(int)
    w_neg, w_pos = binary_class_weights(Y.sum(0), 200, scheme="balanced")
    for j in range(4):
        ref = compute_class_weight("balanced", classes=np.array([0, 1]), y=Y[:, j])
        np.testing.assert_allclose([w_neg[j], w_pos[j]], ref)
    np.testing.assert_allclose(scale_pos_weight(Y.sum(0), 200), (200 - Y.sum(0)) / Y.sum(0))


def test_effective_number_interpolates_between_none_and_balanced():
    counts, n = np.array([3, 30, 90]), 100
    assert np.allclose(effective_number(counts, 0.0), 1.0)
    assert np.allclose(effective_number(counts, 0.9), (1 - 0.9 ** counts) / 0.1)
    assert np.allclose(scale_pos_weight(counts, n, scheme="effective_number", beta=0.0), 1.0)
    np.testing.assert_allclose(scale_pos_weight(counts, n, scheme="effective_number", beta=1 - 1e-12),
                               scale_pos_weight(counts, n, scheme="balanced"), rtol=1e-6)
    # with beta in between, rare labels are up-weighted, but less than by inverse frequency
    mid = scale_pos_weight(counts, n, scheme="effective_number", beta=0.99)
    bal = scale_pos_weight(counts, n, scheme="balanced")
    assert mid[0] > mid[1] and mid[0] < bal[0]
