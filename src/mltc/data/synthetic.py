"""A generated, clearly synthetic multi-label text data set (the offline default)."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from mltc.data.base import Dataset

__all__ = ["make_synthetic"]

_SYLLABLES = ["ba", "ke", "lo", "mi", "nu", "ra", "si", "to", "ve", "zu", "da", "fe", "gi", "ho", "ju", "pa",
              "qe", "ri", "su", "wa", "xo", "ye", "ze", "cu"]
_SYLLABLE_ARRAY = np.array(_SYLLABLES)


def _words(n: int, rng, *, min_syl: int = 2, max_syl: int = 3, prefix: str = "") -> np.ndarray:
    """``n`` distinct pseudo-words made of random syllables."""
    out, seen = [], set()
    while len(out) < n:
        k = rng.integers(min_syl, max_syl + 1)
        # the draws of rng.choice(_SYLLABLES, size=k), without converting the list on every call
        w = prefix + "".join(_SYLLABLE_ARRAY[rng.integers(0, _SYLLABLE_ARRAY.size, size=k)].tolist())
        if w not in seen:
            seen.add(w)
            out.append(w)
    return np.array(out, dtype=object)


def _zipf_p(n: int, s: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


@validate_params(
    {"n_docs": [Interval(Integral, 1, None, closed="left")], "n_labels": [Interval(Integral, 1, None, closed="left")],
     "alpha": [Interval(Real, 0, None, closed="left")], "head_prevalence": [Interval(Real, 0, 1, closed="right")],
     "n_clusters": [Interval(Integral, 1, None, closed="left")],
     "extra_labels": [Interval(Real, 0, None, closed="left")],
     "doc_length": [Interval(Integral, 1, None, closed="left")], "signal": [Interval(Real, 0, 1, closed="both")],
     "vocab_size": [Interval(Integral, 1, None, closed="left")],
     "label_vocab_size": [Interval(Integral, 1, None, closed="left")], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True)
def make_synthetic(*, n_docs: int = 4000, n_labels: int = 20, alpha: float = 1.2, head_prevalence: float = 0.3,
                   n_clusters: int = 5, extra_labels: float = 0.6, doc_length: int = 40, signal: float = 0.25,
                   vocab_size: int = 3000, label_vocab_size: int = 30, random_state=0) -> Dataset:
    """Generate a SYNTHETIC multi-label text data set with a long-tailed label distribution.

    Label ``l`` is drawn with weight ``(l + 1) ** -alpha`` (power law: a few head
    labels, a long tail). Each document gets one primary label and a Poisson
    number (mean ``extra_labels``) of extra labels from the primary label's
    cluster (``l % n_clusters``), so labels co-occur realistically. Each token
    comes, with probability ``signal``, from the vocabulary of one of the
    document's labels, and otherwise from a shared Zipf-distributed vocabulary.

    Parameters
    ----------
    n_docs, n_labels : int
        Size of the data set.
    alpha : float
        Power-law exponent of the label frequencies.
    head_prevalence : float
        Rough share of documents carrying the most frequent label.
    n_clusters : int
        Number of co-occurrence clusters.
    extra_labels : float
        Mean number of labels besides the primary one.
    doc_length : int
        Mean document length in tokens.
    signal : float
        Share of tokens drawn from label vocabularies (lower is harder).
    vocab_size, label_vocab_size : int
        Shared vocabulary size; words per label vocabulary.
    random_state : int, RandomState or None

    Returns
    -------
    Dataset
        Named ``"synthetic"``, no official split.
    """
    rng_legacy = check_random_state(random_state)
    rng = np.random.default_rng(rng_legacy.randint(0, 2**31 - 1))
    w = np.arange(1, n_labels + 1, dtype=float) ** -alpha
    p_label = w / w.sum()
    Y = np.zeros((n_docs, n_labels), dtype=np.int8)
    primary = rng.choice(n_labels, size=n_docs, p=p_label)
    Y[np.arange(n_docs), primary] = 1
    cluster = np.arange(n_labels) % max(n_clusters, 1)
    n_extra = rng.poisson(extra_labels, size=n_docs)
    # extra labels come from the primary's cluster, weighted by frequency
    for c in range(max(n_clusters, 1)):
        members = np.flatnonzero(cluster == c)
        docs = np.flatnonzero((cluster[primary] == c) & (n_extra > 0))
        if members.size < 2 or docs.size == 0:
            continue
        pm = p_label[members] / p_label[members].sum()
        k = np.minimum(n_extra[docs], members.size - 1)
        for kk in np.unique(k):
            sel = docs[k == kk]
            picks = rng.choice(members, size=(sel.size, kk), p=pm)
            Y[np.repeat(sel, kk), picks.ravel()] = 1
    # calibrate prevalence of the head label loosely by dropping extra head labels at random
    head_rate = Y[:, 0].mean()
    if head_rate > head_prevalence:
        extra_head = np.flatnonzero((Y[:, 0] == 1) & (primary != 0))
        drop = rng.random(extra_head.size) < (head_rate - head_prevalence) / max(head_rate, 1e-9)
        Y[extra_head[drop], 0] = 0

    common = _words(vocab_size, rng)
    label_vocab = [_words(label_vocab_size, rng, prefix=f"l{j}") for j in range(n_labels)]
    lengths = np.maximum(rng.poisson(doc_length, size=n_docs), 3)
    total = int(lengths.sum())
    doc_of_token = np.repeat(np.arange(n_docs), lengths)
    is_signal = rng.random(total) < signal
    tokens = common[rng.choice(vocab_size, size=total, p=_zipf_p(vocab_size))]
    # each signal token picks one of its document's labels uniformly
    sig_idx = np.flatnonzero(is_signal)
    labels_of = [np.flatnonzero(r) for r in Y]
    n_lab = np.array([len(x) for x in labels_of])
    sig_docs = doc_of_token[sig_idx]
    pick = (rng.random(sig_idx.size) * n_lab[sig_docs]).astype(int)
    offsets = np.concatenate([[0], np.cumsum(n_lab)])
    flat_labels = np.concatenate(labels_of) if n_docs else np.array([], dtype=int)
    chosen = flat_labels[offsets[sig_docs] + pick]
    word_idx = rng.choice(label_vocab_size, size=sig_idx.size, p=_zipf_p(label_vocab_size, 0.8))
    lv = np.stack(label_vocab)
    tokens[sig_idx] = lv[chosen, word_idx]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    texts = [" ".join(tokens[bounds[i]:bounds[i + 1]]) for i in range(n_docs)]
    names = [f"synthetic_label_{j:02d}" for j in range(n_labels)]
    return Dataset(name="synthetic", texts=texts, Y=Y, label_names=names, splits=None,
                   description=(f"SYNTHETIC data ({n_docs} generated documents, {n_labels} power-law labels) "
                                "- not real text"),
                   meta={"generator": "mltc.data.synthetic.make_synthetic", "alpha": alpha})
