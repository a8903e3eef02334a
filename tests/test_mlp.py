"""The torch MLP head: torch losses against the numpy classes, training against scikit-learn, seeds, API."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,  # noqa: E402
                                            check_set_params)

from mltc.models import predict_scores  # noqa: E402
from mltc.models.losses import (AsymmetricLoss, BinaryLoss, ClassBalancedFocalLoss,  # noqa: E402
                                DistributionBalancedLoss, FocalLoss, LabelSmoothingBCE, WeightedBCE)
from mltc.models.mlp import MLPClassifierHead, elementwise_loss  # noqa: E402
from mltc.models.weights import scale_pos_weight  # noqa: E402

LOSSES = [WeightedBCE(), WeightedBCE(pos_weight=3.0), FocalLoss(gamma=2.0, alpha=0.25), FocalLoss(gamma=1.5, alpha=None),
          LabelSmoothingBCE(epsilon=0.2), ClassBalancedFocalLoss(beta=0.99, gamma=2.0), DistributionBalancedLoss(),
          DistributionBalancedLoss(gamma=0.0, neg_scale=5.0, init_bias=0.1), AsymmetricLoss(),
          AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.0)]
LOSS_IDS = ["bce", "bce_pw3", "focal", "focal_noalpha", "smooth", "cb_focal", "db", "db_nofocal", "asl", "asl_noclip"]


@pytest.fixture
def logits():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 3.0, size=(80, 5))
    z[0] = [-40.0, -8.0, 0.0, 8.0, 40.0]  # saturated logits must stay finite
    Y = (rng.random((80, 5)) < np.linspace(0.05, 0.5, 5)).astype(np.int8)
    Y[1] = 0
    Y[2] = 1
    return z, Y


@pytest.mark.parametrize("loss", LOSSES, ids=LOSS_IDS)
def test_torch_loss_and_gradient_match_the_numpy_class(loss, logits):
    z, Y = logits
    loss = clone(loss).fit(Y)
    W = loss.element_weights(Y)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    value = torch.tensor(W) * elementwise_loss(loss, zt, torch.tensor(Y, dtype=torch.float64))
    np.testing.assert_allclose(value.detach().numpy(), loss.value(z, Y), rtol=1e-10, atol=1e-12)
    value.sum().backward()
    grad, _ = loss.grad_hess(z, Y)
    np.testing.assert_allclose(zt.grad.numpy(), grad, rtol=1e-8, atol=1e-10)
    assert np.all(np.isfinite(zt.grad.numpy()))


def test_no_loss_is_plain_bce(logits):
    z, Y = logits
    got = elementwise_loss(None, torch.tensor(z), torch.tensor(Y, dtype=torch.float64))
    ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(Y, dtype=torch.float64),
                                                               reduction="none")
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10, atol=1e-15)


def test_loss_without_torch_version_or_fit_says_so(logits):
    z, Y = logits

    class Custom(BinaryLoss):
        pass

    with pytest.raises(TypeError, match="no torch version"):
        elementwise_loss(Custom(), torch.tensor(z), torch.tensor(Y, dtype=torch.float64))
    with pytest.raises(Exception, match="call fit"):
        elementwise_loss(DistributionBalancedLoss(), torch.tensor(z), torch.tensor(Y, dtype=torch.float64))


# ---- training -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    logits = np.column_stack([2 * X[:, 0] - 1.0, X[:, 1] - X[:, 2] - 2.0, 1.5 * X[:, 3] - 3.0])
    Y = (logits + rng.logistic(size=logits.shape) > 0).astype(np.int8)
    return X, Y


def _linear(**kw):
    params = dict(hidden_layer_sizes=[], dropout=0.0, early_stopping=False, prior_bias=False, random_state=0)
    params.update(kw)
    return MLPClassifierHead(**params)


def test_linear_head_with_bce_converges_to_logistic_regression(small):
    # no hidden layer + BCE + no penalty is maximum-likelihood logistic regression, which has one optimum
    X, Y = small
    m = _linear(learning_rate=0.2, batch_size=len(X), max_epochs=150).fit(X, Y)
    ref = np.column_stack([LogisticRegression(C=1e8, max_iter=5000).fit(X, Y[:, j]).predict_proba(X)[:, 1]
                           for j in range(Y.shape[1])])
    np.testing.assert_allclose(m.predict_proba(X), ref, atol=5e-3)


def test_balanced_pos_weight_equals_bce_with_that_labels_weight(small):
    X, Y = small
    j = 2
    spw = scale_pos_weight(Y.sum(0), len(Y), scheme="balanced")[j]
    a = _linear(pos_weight="balanced", max_epochs=5, batch_size=32).fit(X, Y[:, [j]])
    b = _linear(loss=WeightedBCE(pos_weight=spw), max_epochs=5, batch_size=32).fit(X, Y[:, [j]])
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=1e-5, atol=1e-5)
    c = _linear(max_epochs=5, batch_size=32).fit(X, Y[:, [j]])
    assert not np.allclose(a.decision_function(X), c.decision_function(X), atol=1e-3)


def test_integer_sample_weights_equal_repeated_rows(small):
    # full batch and no dropout: the weighted mean loss is the repeated rows' mean times n_rep / n,
    # a constant factor that Adam's update ignores
    X, Y = small
    w = np.where(np.arange(len(Y)) % 3 == 0, 2.0, 1.0)
    rep = np.repeat(np.arange(len(Y)), w.astype(int))
    kw = dict(hidden_layer_sizes=[8], max_epochs=20, learning_rate=0.01, batch_size=10_000)
    a = _linear(**kw).fit(X, Y, sample_weight=w)
    b = _linear(**kw).fit(X[rep], Y[rep])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
    c = _linear(**kw).fit(X, Y)
    assert np.abs(a.predict_proba(X) - c.predict_proba(X)).max() > 1e-3


def test_same_seed_same_model_other_seed_other_model(small):
    X, Y = small
    kw = dict(hidden_layer_sizes=[16], max_epochs=4, random_state=5)
    a = MLPClassifierHead(**kw).fit(X, Y).predict_proba(X)
    b = MLPClassifierHead(**kw).fit(X, Y).predict_proba(X)
    c = MLPClassifierHead(**{**kw, "random_state": 6}).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_fit_does_not_touch_the_global_torch_rng(small):
    X, Y = small
    state = torch.random.get_rng_state()
    MLPClassifierHead(hidden_layer_sizes=[8], max_epochs=2, random_state=0).fit(X, Y)
    assert torch.equal(state, torch.random.get_rng_state())


def test_sparse_and_dense_input_give_the_same_network(small):
    X, Y = small
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    kw = dict(hidden_layer_sizes=[16], max_epochs=3, random_state=1)
    a = MLPClassifierHead(**kw).fit(Xs, Y)
    b = MLPClassifierHead(**kw).fit(Xs.toarray(), Y)
    np.testing.assert_allclose(a.predict_proba(Xs), b.predict_proba(Xs.toarray()), atol=1e-5)
    np.testing.assert_allclose(a.predict_proba(Xs), a.predict_proba(Xs.tocoo()), atol=1e-7)


def test_early_stopping_keeps_the_best_epoch(small):
    X, Y = small
    m = MLPClassifierHead(hidden_layer_sizes=[32], dropout=0.0, learning_rate=0.05, max_epochs=40, tol=0.0,
                          n_iter_no_change=2, validation_fraction=0.25, random_state=0).fit(X, Y)
    curve = np.asarray(m.validation_loss_curve_)
    assert len(curve) == m.n_epochs_ and m.best_epoch_ == int(np.argmin(curve)) + 1
    assert m.n_epochs_ == m.max_epochs or m.n_epochs_ == m.best_epoch_ + m.n_iter_no_change
    val = m.validation_indices_
    assert len(val) == 100 and len(np.unique(val)) == 100
    # the kept weights are the best epoch's: recompute that validation loss from the predictions
    p = np.clip(m.predict_proba(X[val]), 1e-12, 1 - 1e-12)
    bce = -(Y[val] * np.log(p) + (1 - Y[val]) * np.log(1 - p)).mean()
    assert bce == pytest.approx(curve.min(), rel=1e-4)


def test_early_stopping_on_tuned_macro_f1_keeps_the_best_epoch(small):
    from sklearn.metrics import f1_score

    X, Y = small
    m = MLPClassifierHead(hidden_layer_sizes=[32], dropout=0.0, learning_rate=0.05, max_epochs=30, tol=0.0,
                          early_stopping_metric="macro_f1", n_iter_no_change=3, validation_fraction=0.25,
                          random_state=0).fit(X, Y)
    curve = np.asarray(m.validation_score_curve_)
    assert len(curve) == len(m.validation_loss_curve_) == m.n_epochs_
    assert m.best_epoch_ == int(np.argmax(curve)) + 1 and m.best_validation_score_ == curve.max()
    assert m.n_epochs_ == m.max_epochs or m.n_epochs_ == m.best_epoch_ + m.n_iter_no_change
    # recompute the kept epoch's score independently: for each label the best F1 over every cut of its scores
    val = m.validation_indices_
    P = m.predict_proba(X[val])
    best = []
    for j in range(Y.shape[1]):
        cuts = np.unique(P[:, j])
        best.append(max(f1_score(Y[val, j], (P[:, j] >= c).astype(int), zero_division=0) for c in cuts))
    assert np.mean(best) == pytest.approx(curve.max(), abs=1e-9)


def test_count_dependent_losses_learn_from_the_training_rows_only(small):
    X, Y = small
    m = MLPClassifierHead(hidden_layer_sizes=[4], loss=DistributionBalancedLoss(), max_epochs=1,
                          validation_fraction=0.2, random_state=0).fit(X, Y)
    train = np.setdiff1d(np.arange(len(Y)), m.validation_indices_)
    np.testing.assert_array_equal(m.loss_.label_counts_, Y[train].sum(0))
    assert m.loss.__dict__ == DistributionBalancedLoss().__dict__  # the parameter itself stays unfitted


@pytest.mark.parametrize("loss", [None, FocalLoss(alpha=None), DistributionBalancedLoss(), AsymmetricLoss()],
                         ids=["bce", "focal", "db", "asl"])
def test_every_loss_ranks_held_out_rows_about_as_well_as_logistic_regression(loss):
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1600, 6))
    logits = 3 * np.column_stack([X[:, 0] - 0.5, X[:, 1] - X[:, 2] - 1.5, X[:, 3] - 1.5])
    Y = (logits + rng.logistic(size=logits.shape) > 0).astype(np.int8)
    m = MLPClassifierHead(hidden_layer_sizes=[16], loss=loss, max_epochs=10, learning_rate=0.01, early_stopping=False,
                          random_state=0).fit(X[:800], Y[:800])
    S, kind = predict_scores(m, X[800:])
    assert kind == "proba" and S.shape == (800, 3) and np.all((S >= 0) & (S <= 1))
    for j in range(3):
        lr = LogisticRegression().fit(X[:800], Y[:800, j]).predict_proba(X[800:])[:, 1]
        assert roc_auc_score(Y[800:, j], S[:, j]) > roc_auc_score(Y[800:, j], lr) - 0.03


# ---- API and errors -----------------------------------------------------------------------------------------

def test_scikit_learn_api_checks():
    obj = MLPClassifierHead(loss=FocalLoss())
    check_no_attributes_set_in_init("MLPClassifierHead", obj)
    check_get_params_invariance("MLPClassifierHead", obj)
    check_set_params("MLPClassifierHead", obj)
    assert clone(obj).get_params()["loss"].get_params() == FocalLoss().get_params()


def test_errors_speak_to_users(small):
    X, Y = small
    with pytest.raises(ValueError, match="positive widths"):
        MLPClassifierHead(hidden_layer_sizes=[8, 0]).fit(X, Y)
    with pytest.raises(ValueError, match="early_stopping=False"):
        MLPClassifierHead(validation_fraction=0.001).fit(X[:10], Y[:10])
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifierHead(dropout=1.0).fit(X, Y)
    with pytest.raises(ValueError, match="one row per sample"):
        MLPClassifierHead().fit(X, Y[:-1])
    m = MLPClassifierHead(hidden_layer_sizes=[4], max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="featurizer"):
        m.predict_proba(X[:, :3])
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="device='auto'"):
            MLPClassifierHead(device="cuda").fit(X, Y)
        assert MLPClassifierHead(hidden_layer_sizes=[4], max_epochs=1, device="auto").fit(X, Y).device_.type == "cpu"


@pytest.mark.parametrize("loss", ["bce", "focal", "label_smoothing", "cb_focal", "db", "asl"])
def test_mlp_config_with_every_loss_option_fits(loss, small):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=mlp", f"model/loss={loss}", "model.max_epochs=2",
                                                       "model.hidden_layer_sizes=[8]", "seed=3"])
    model = instantiate(cfg.model, _convert_="all")
    assert type(model.loss).__module__ == "mltc.models.losses" and model.random_state == 3
    X, Y = small
    S, kind = predict_scores(model.fit(X, Y), X)
    assert kind == "proba" and S.shape == Y.shape and np.all(np.isfinite(S))


def test_n_threads_applies_during_fit_and_is_restored(small, monkeypatch):
    X, Y = small
    seen = []
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(torch.get_num_threads())
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    before = torch.get_num_threads()
    m = MLPClassifierHead(hidden_layer_sizes=[4], max_epochs=1, n_threads=1, random_state=0).fit(X, Y)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before
    # the thread count changes speed, not results
    ref = MLPClassifierHead(hidden_layer_sizes=[4], max_epochs=1, random_state=0).fit(X, Y)
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-6)
