"""A small PyTorch MLP on the run's features, trained with the imbalance-aware loss family.

The losses are the classes of :mod:`mltc.models.losses` (same parameters, same
fitted label statistics, the same one definition of each value); :func:`elementwise_loss`
evaluates that definition in torch so that autograd gives the gradients. Sparse TF-IDF rows go through
``embedding_bag`` (a sparse-times-dense product that never densifies the batch).

``import torch`` happens only here: install the ``torch`` extra
(``pip install mltc[torch]``) to use this module.

References
----------
Nam et al. (2014), Large-scale multi-label text classification -- revisiting neural networks. ECML PKDD.
Huang et al. (2021), Balancing methods for multi-label text classification with long-tailed class
distribution. EMNLP.
Lin et al. (2017), Focal loss for dense object detection. ICCV (prior initialisation of the output bias).
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from mltc.models.base import BaseMultilabelClassifier
from mltc.models.losses import (AsymmetricLoss, BinaryLoss, ClassBalancedFocalLoss, DistributionBalancedLoss,
                                FocalLoss, LabelSmoothingBCE, WeightedBCE)
from mltc.models.weights import WEIGHT_SCHEMES, scale_pos_weight
from mltc.thresholds import PerLabelThreshold
from mltc.progress import note, track

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("model=mlp needs PyTorch: pip install 'mltc[torch]' (CPU wheels are enough).") from exc

log = logging.getLogger(__name__)

__all__ = ["MLPClassifierHead", "elementwise_loss"]


# ---- the loss family in torch ------------------------------------------------------------------------------

def _focal_term(u, gamma):
    """``-(1 - sigmoid(u))**gamma * log sigmoid(u)``, as :func:`mltc.models.losses.focal_term`."""
    log_s = F.logsigmoid(u)
    if gamma == 0:
        return -log_s
    # (1 - s)**gamma through log-space: finite for any u
    return -torch.exp(gamma * F.logsigmoid(-u)) * log_s


class TORCH_OPS:
    """The array operations of :meth:`mltc.models.losses.BinaryLoss._value`, in torch (twin of ``NUMPY_OPS``)."""

    log_sigmoid = staticmethod(F.logsigmoid)
    sigmoid = staticmethod(torch.sigmoid)
    log = staticmethod(torch.log)
    where = staticmethod(torch.where)
    focal = staticmethod(_focal_term)

    @staticmethod
    def const(v, like):
        return torch.as_tensor(v, dtype=like.dtype, device=like.device)


def elementwise_loss(loss, z, y):
    """Unweighted elementwise value of a :mod:`mltc.models.losses` loss on torch logits.

    The loss's own definition (:meth:`~mltc.models.losses.BinaryLoss._value`) evaluated in torch, so it
    equals ``loss.value(z, y, weight=1)``; the element weights (``loss.element_weights(y)``, per-label
    positive weights, sample weights) multiply it outside, as in the numpy classes.

    Parameters
    ----------
    loss : BinaryLoss or None
        None is the plain binary cross-entropy. Losses with ``needs_fit`` must be fitted.
    z, y : torch.Tensor of shape (n_samples, n_labels)
        Logits and binary targets (floating point).
    """
    if loss is None:
        return WeightedBCE()._value(TORCH_OPS, z, y, None)
    if not isinstance(loss, BinaryLoss) or type(loss)._value is BinaryLoss._value:
        raise TypeError(f"{type(loss).__name__} has no torch version: write its value once as "
                        "_value(self, ops, z, y, labels) (see mltc.models.losses), or use one of "
                        f"{', '.join(c.__name__ for c in _LOSSES)}.")
    if loss.needs_fit:
        check_is_fitted(loss, "label_counts_", msg=f"{type(loss).__name__} uses training label counts: "
                                                   "call fit(Y_train) before evaluating it.")
    return loss._value(TORCH_OPS, z, y, None)


_LOSSES = (WeightedBCE, LabelSmoothingBCE, FocalLoss, ClassBalancedFocalLoss, DistributionBalancedLoss, AsymmetricLoss)


@contextmanager
def _torch_threads(n):
    """Run the block with ``n`` torch intra-op threads, restoring the caller's setting after."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---- the network -------------------------------------------------------------------------------------------

class _Batch:
    """Rows of X as torch tensors: CSR parts for sparse input, a dense block otherwise."""

    def __init__(self, X, rows, device):
        if sp.issparse(X):
            sub = X[rows]
            self.indices = torch.from_numpy(sub.indices.astype(np.int64)).to(device)
            self.offsets = torch.from_numpy(sub.indptr[:-1].astype(np.int64)).to(device)
            self.values = torch.from_numpy(sub.data.astype(np.float32, copy=False)).to(device)
            self.dense = None
        else:
            self.dense = torch.from_numpy(np.ascontiguousarray(X[rows], dtype=np.float32)).to(device)


class _Net(torch.nn.Module):
    def __init__(self, n_features, hidden, n_labels, dropout, generator):
        super().__init__()
        sizes = [n_features, *hidden, n_labels]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # PyTorch's default Linear initialisation, drawn from our own generator (no global seed)
            bound = 1.0 / np.sqrt(fan_in)
            self.weights.append(torch.nn.Parameter(torch.empty(fan_in, fan_out).uniform_(-bound, bound,
                                                                                          generator=generator)))
            self.biases.append(torch.nn.Parameter(torch.empty(fan_out).uniform_(-bound, bound,
                                                                                generator=generator)))
        self.dropout = dropout

    def forward(self, batch, generator=None):
        w0, b0 = self.weights[0], self.biases[0]
        if batch.dense is None:
            h = F.embedding_bag(batch.indices, w0, batch.offsets, mode="sum", per_sample_weights=batch.values) + b0
        else:
            h = batch.dense @ w0 + b0
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = torch.relu(h)
            if self.training and self.dropout > 0:
                # dropout from our generator: F.dropout would draw from the global RNG
                keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.dropout
                h = h * keep / (1.0 - self.dropout)
            h = h @ w + b
        return h


class MLPClassifierHead(BaseMultilabelClassifier):
    """Feed-forward network with one sigmoid output per label, trained with an imbalance-aware loss.

    Sparse TF-IDF input feeds the first layer without densifying (Nam et al. 2014 showed such
    networks match or beat binary relevance on text). The loss is any of
    :mod:`mltc.models.losses` (Huang et al. 2021's focal, class-balanced and
    distribution-balanced losses among them), fitted on the training labels; per-label
    positive weights and the strategy's sample weights multiply it. Training uses AdamW on
    mini-batches and stops early on the loss of a validation share carved from the training
    rows, keeping the best epoch's weights. Everything random (split, initialisation,
    shuffling, dropout) is drawn from generators seeded by ``random_state``.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(512,)
        Widths of the hidden ReLU layers; empty gives a linear model.
    dropout : float in [0, 1), default=0.5
        Dropout on every hidden layer's output.
    loss : BinaryLoss, optional
        A loss from :mod:`mltc.models.losses`; None is binary cross-entropy.
    pos_weight : {"none", "balanced", "effective_number"}, default="none"
        Per-label weight of positive terms (see :func:`mltc.models.weights.scale_pos_weight`).
    beta : float in [0, 1], default=0.999
        For ``pos_weight="effective_number"`` (Cui et al. 2019).
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        AdamW's decoupled weight decay.
    batch_size : int, default=64
    max_epochs : int, default=30
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training rows and stop when their loss has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; without it all rows train for
        ``max_epochs``.
    validation_fraction : float in (0, 1), default=0.1
    early_stopping_metric : {"loss", "macro_f1"}, default="loss"
        What early stopping watches on the held-out share: the training loss, or macro-F1 at
        per-label F1-optimal thresholds (what the pipeline's per-label thresholds will do; the
        loss keeps falling for frequent labels after rare labels' F1 has peaked, or the other way).
    n_iter_no_change : int, default=3
    tol : float, default=1e-4
        Improvement that counts: relative for the loss, absolute for macro-F1.
    prior_bias : bool, default=True
        Start each output bias at the label's training log-odds (Lin et al. 2017), so rare
        labels do not spend the first epochs unlearning a 0.5 prior.
    device : {"cpu", "auto", "cuda"}, default="cpu"
        ``"auto"`` picks CUDA where available.
    n_threads : int or None, default=None
        Torch CPU threads while fitting and scoring (restored afterwards); None keeps torch's
        setting. On a machine whose cores are busy with other jobs (or parallel sweep jobs)
        1 avoids oversubscription: measured on 2 shared cores, an epoch on GoEmotions MiniLM
        embeddings took 6 s with 1 thread and batch 256 against 85 s with 2 threads and batch 64.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    n_epochs_ : int
        Epochs trained; ``best_epoch_`` is the one whose weights are kept (1-based).
    loss_curve_, validation_loss_curve_ : list of float
        Mean training / validation loss per epoch.
    validation_score_curve_ : list of float
        Held-out macro-F1 (per-label thresholds) per epoch, with ``early_stopping_metric="macro_f1"``.
    validation_indices_ : ndarray of int
        Rows of ``X`` held out for early stopping (empty without it).
    loss_ : BinaryLoss or None
        The loss fitted on the training rows.
    score_kind_ : "proba"

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); Y = (X[:, :3] > 0.8).astype(int)
    >>> m = MLPClassifierHead(hidden_layer_sizes=[16], max_epochs=5, random_state=0).fit(X, Y)
    >>> m.predict_proba(X).shape
    (200, 3)
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "loss": [BinaryLoss, None],
        "pos_weight": [StrOptions(set(WEIGHT_SCHEMES))],
        "beta": [Interval(Real, 0, 1, closed="both")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "early_stopping_metric": [StrOptions({"loss", "macro_f1"})],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "prior_bias": ["boolean"],
        "device": [StrOptions({"cpu", "auto", "cuda"})],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, hidden_layer_sizes=(512,), dropout=0.5, loss=None, pos_weight="none", beta=0.999,
                 learning_rate=1e-3, weight_decay=0.0, batch_size=64, max_epochs=30, early_stopping=True,
                 validation_fraction=0.1, early_stopping_metric="loss", n_iter_no_change=3, tol=1e-4,
                 prior_bias=True, device="cpu", n_threads=None, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.loss = loss
        self.pos_weight = pos_weight
        self.beta = beta
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.early_stopping_metric = early_stopping_metric
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.prior_bias = prior_bias
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    # -- helpers ------------------------------------------------------------------------------------------

    def _resolve_device(self):
        if self.device == "cpu":
            return torch.device("cpu")
        if torch.cuda.is_available():
            return torch.device("cuda")
        if self.device == "cuda":
            raise RuntimeError("MLPClassifierHead(device='cuda') but PyTorch sees no CUDA device; use "
                               "device='auto' (CUDA where available) or device='cpu'.")
        return torch.device("cpu")

    @staticmethod
    def _check_X(X):
        return check_array(X, accept_sparse="csr", dtype=np.float32)

    def _weights(self, Y, sample_weight):
        W = self.loss_.element_weights(Y) if self.loss_ is not None else np.ones(Y.shape)
        W = W * np.where(Y > 0, self.scale_pos_weight_[None, :], 1.0)
        if sample_weight is not None:
            W = W * sample_weight[:, None]
        return W.astype(np.float32)

    def _mean_loss(self, net, X, Y, W, rows):
        net.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(rows), 2048):
                r = rows[start:start + 2048]
                z = net(_Batch(X, r, self.device_))
                y = torch.from_numpy(Y[r]).to(self.device_)
                total += float((torch.from_numpy(W[r]).to(self.device_) * elementwise_loss(self.loss_, z, y)).sum())
        return total / (len(rows) * Y.shape[1])

    def _tuned_macro_f1(self, net, X, Y, rows):
        """Macro-F1 of the held-out rows, each label cut at its F1-optimal threshold."""
        net.eval()
        with torch.no_grad():
            Z = np.vstack([net(_Batch(X, rows[s:s + 2048], self.device_)).cpu().numpy()
                           for s in range(0, len(rows), 2048)])
        Yv = Y[rows].astype(np.int8)
        pred = PerLabelThreshold(fallback="fixed").fit(Z, Yv, score_kind="margin").predict(Z)
        return float(f1_score(Yv, pred, average="macro", zero_division=0))

    # -- API ----------------------------------------------------------------------------------------------

    def fit(self, X, Y, sample_weight=None):
        """Train on ``X`` (dense or sparse) and the binary label matrix ``Y``.

        ``sample_weight`` (from a weighting strategy) multiplies every label's loss of a row.
        """
        # the weights go into the loss, not to an inner fit
        Y = self._validate_fit_input(X, Y, sample_weight, weighted={})
        with _torch_threads(self.n_threads):
            return self._fit(X, Y, sample_weight)

    def _fit(self, X, Y, sample_weight):
        hidden = [int(h) for h in self.hidden_layer_sizes]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive widths, got {list(self.hidden_layer_sizes)}; "
                             "use [] for a linear model.")
        X = self._check_X(X)
        Y = (Y > 0).astype(np.float32)
        n, L = Y.shape
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if sample_weight.shape[0] != n:
                raise ValueError(f"sample_weight has {sample_weight.shape[0]} entries for {n} rows.")

        rng = check_random_state(self.random_state)
        self.device_ = self._resolve_device()
        gen = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        dev_gen = gen if self.device_.type == "cpu" else torch.Generator(device=self.device_).manual_seed(
            int(rng.randint(np.iinfo(np.int32).max)))

        order = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n)) if self.early_stopping else 0
        if self.early_stopping and not 1 <= n_val < n:
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n} rows leaves no validation or "
                             "no training rows; raise it, add data or set early_stopping=False.")
        val_rows, tr_rows = np.sort(order[:n_val]), order[n_val:]

        # label statistics (class-balanced, distribution-balanced, pos_weight) from the rows trained on
        Y_tr = Y[tr_rows]
        self.loss_ = clone(self.loss).fit(Y_tr) if self.loss is not None else None
        self.scale_pos_weight_ = scale_pos_weight(Y_tr.sum(axis=0), len(tr_rows), scheme=self.pos_weight,
                                                  beta=self.beta)
        W = self._weights(Y, sample_weight)

        net = _Net(X.shape[1], hidden, L, self.dropout, gen)
        if self.prior_bias:
            prior = np.clip(Y_tr.mean(axis=0), 1e-4, 1 - 1e-4)
            with torch.no_grad():
                net.biases[-1].copy_(torch.from_numpy(np.log(prior / (1 - prior)).astype(np.float32)))
        net.to(self.device_)
        # the fused kernel updates the large first-layer matrix several times faster than the default loop
        opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay,
                                fused=True)

        self.loss_curve_, self.validation_loss_curve_, self.validation_score_curve_ = [], [], []
        by_f1 = self.early_stopping_metric == "macro_f1"
        best, best_state, stall = (-np.inf if by_f1 else np.inf), None, 0
        self.best_epoch_ = self.max_epochs
        for epoch in track(range(1, self.max_epochs + 1), "MLP epoch"):
            net.train()
            perm = tr_rows[torch.randperm(len(tr_rows), generator=gen).numpy()]
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                r = perm[start:start + self.batch_size]
                z = net(_Batch(X, r, self.device_), dev_gen)
                y = torch.from_numpy(Y[r]).to(self.device_)
                w = torch.from_numpy(W[r]).to(self.device_)
                batch_loss = (w * elementwise_loss(self.loss_, z, y)).mean()
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
                total += float(batch_loss.detach()) * len(r)
            self.loss_curve_.append(total / len(perm))
            if not self.early_stopping:
                continue
            v = self._mean_loss(net, X, Y, W, val_rows)
            self.validation_loss_curve_.append(v)
            if by_f1:
                f1 = self._tuned_macro_f1(net, X, Y, val_rows)
                self.validation_score_curve_.append(f1)
                improved = f1 > best + self.tol
            else:
                improved = v < best * (1 - self.tol)
            log.info("epoch %d: train loss %.5g, validation loss %.5g%s", epoch, self.loss_curve_[-1], v,
                     f", validation macro-F1 {f1:.4f}" if by_f1 else "")
            if improved:
                best, stall, self.best_epoch_ = (f1 if by_f1 else v), 0, epoch
                best_state = copy.deepcopy(net.state_dict())
            else:
                stall += 1
                if stall >= self.n_iter_no_change:
                    note("MLP: early stopping at epoch %d of %d (best: epoch %d)", epoch, self.max_epochs,
                         self.best_epoch_)
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.n_epochs_ = epoch
        self.best_validation_loss_ = (self.validation_loss_curve_[self.best_epoch_ - 1]
                                      if self.early_stopping else None)
        self.best_validation_score_ = best if self.early_stopping and by_f1 else None
        self.validation_indices_ = val_rows
        self.network_ = net.eval()
        self.n_features_in_ = X.shape[1]
        self.n_labels_ = L
        self.score_kind_ = "proba"
        return self

    def decision_function(self, X):
        """(n_samples, n_labels) logits."""
        check_is_fitted(self, "network_")
        X = self._check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features but the network was trained on {self.n_features_in_}; "
                             "transform it with the featurizer fitted with the model.")
        out = []
        with torch.no_grad(), _torch_threads(self.n_threads):
            for start in range(0, X.shape[0], 2048):
                rows = np.arange(start, min(start + 2048, X.shape[0]))
                out.append(self.network_(_Batch(X, rows, self.device_)).cpu().numpy())
        return np.vstack(out).astype(np.float64) if out else np.zeros((0, self.n_labels_))

    def predict_proba(self, X):
        """(n_samples, n_labels) probabilities (sigmoid of the logits)."""
        return expit(self.decision_function(X))

    def predict(self, X):
        """Labels at probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
