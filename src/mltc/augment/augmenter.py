"""Label-aware text augmentation of the training split, with an on-disk cache."""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, validate_parameter_constraints

from mltc.strategies.ros_rus import MLROS
from mltc.progress import track

__all__ = ["TextAugmenter", "AugmentCache"]

log = logging.getLogger(__name__)


class AugmentCache:
    """(settings, seed, document, copy) -> augmented text, in one SQLite file per operation setting.

    SQLite serialises the writes of parallel sweep jobs; a job that finds a key
    reuses the text instead of augmenting again.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=60)
        self._con.execute("CREATE TABLE IF NOT EXISTS aug (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
        self._con.commit()

    def get_many(self, keys) -> dict:
        out = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            q = f"SELECT key, text FROM aug WHERE key IN ({','.join('?' * len(part))})"
            out.update(self._con.execute(q, part).fetchall())
        return out

    def put_many(self, items) -> None:
        with self._con:
            self._con.executemany("INSERT OR IGNORE INTO aug (key, text) VALUES (?, ?)", list(items))

    def close(self):
        self._con.close()


def _doc_seed(base_seed: int, copy: int, text: str) -> int:
    h = hashlib.blake2b(f"{base_seed}|{copy}|{text}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") % (2**32)


class TextAugmenter(BaseEstimator):
    """Augment the training documents of minority labels, with the ML-ROS budget.

    Which documents get an augmented copy, and how many, is decided exactly as
    ML-ROS (Charte et al. 2015) decides its clones: one bag per label whose IRLbl
    is above MeanIR, bags take turns drawing a document until ``percentage`` % of
    the training size has been added or every bag's IRLbl has fallen to MeanIR.
    Each clone is then rewritten by ``operation`` instead of copied verbatim, and
    keeps its document's labels. Only training texts ever reach this object (the
    pipeline calls it on the training split).

    The rewrite of copy ``c`` of a document depends only on the seed, ``c``, the
    text and the operation's settings, so it is deterministic per seed and
    independent of order, and is cached on disk under that key: the jobs of a
    sweep that share the seed and the operation augment each document once.

    Parameters
    ----------
    operation : object with ``augment(text, rng) -> str``
        E.g. :class:`~mltc.augment.EDA`, :class:`~mltc.augment.SynonymReplacement`,
        :class:`~mltc.augment.GloveReplacement`, :class:`~mltc.augment.BackTranslation`.
    percentage : float, default=25
        Budget of new documents, in % of the training size (ML-ROS's ``P``).
    random_state : int, RandomState instance or None, default=None
    cache : bool, default=True
        Read and write the on-disk cache (only used when ``random_state`` is an int).
    cache_dir : str or None, default=None
        None means ``$MLTC_CACHE_DIR/augment`` (``~/.cache/mltc/augment``).

    Attributes
    ----------
    sample_indices_ : ndarray
        Input document of every output document (originals first, then copies).
    minority_labels_ : ndarray
        Labels that had a bag.
    n_augmented_ : int
    n_unchanged_ : int
        Copies the operation returned unchanged (e.g. no word had a synonym).
    cache_hits_ : int
    augment_seconds_ : float
        Time spent in the operation (cache hits excluded).

    Examples
    --------
    >>> import numpy as np
    >>> from mltc.augment import TextAugmenter, RandomSwap
    >>> Y = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    >>> aug = TextAugmenter(operation=RandomSwap(), percentage=50, random_state=0, cache=False)
    >>> texts, Y2 = aug.fit_resample_texts(["a b c", "d e f", "g h i", "rare label text"], Y)
    >>> len(texts), Y2[4:].tolist()
    (5, [[0, 1]])
    """

    _parameter_constraints = {
        "operation": [HasMethods(["augment"])],
        **MLROS._parameter_constraints,  # percentage and random_state: ML-ROS's budget decides the copies
        "cache": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(self, *, operation, percentage=25.0, random_state=None, cache=True, cache_dir=None):
        self.operation = operation
        self.percentage = percentage
        self.random_state = random_state
        self.cache = cache
        self.cache_dir = cache_dir

    def fit_resample_texts(self, texts, Y):
        """Training texts followed by augmented copies, and the matching label rows.

        Parameters
        ----------
        texts : list of str, length n
        Y : array of shape (n, n_labels), binary

        Returns
        -------
        texts_out : list of str
        Y_out : ndarray of int8
        """
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        texts = list(texts)
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != len(texts):
            raise ValueError(f"got {len(texts)} texts but a label matrix of shape {Y.shape}; pass one label row "
                             "per text.")
        rng = check_random_state(self.random_state)
        # a fixed int seed makes rewrites reproducible across jobs (and cacheable); otherwise draw one
        fixed = isinstance(self.random_state, Integral)
        base_seed = int(self.random_state) if fixed else int(rng.randint(2**31 - 1))
        sampler = MLROS(percentage=self.percentage, random_state=rng)
        sampler.fit_resample(np.arange(len(texts)).reshape(-1, 1), Y)
        n = len(texts)
        clones = sampler.sample_indices_[n:]
        self.minority_labels_ = sampler.minority_labels_
        copy_no = _copy_numbers(clones)

        cache = None
        if self.cache and fixed:
            root = Path(self.cache_dir) if self.cache_dir is not None else _cache_root() / "augment"
            fp = self.operation.fingerprint() if hasattr(self.operation, "fingerprint") else \
                hashlib.sha1(repr(self.operation).encode()).hexdigest()[:16]
            cache = AugmentCache(root / f"{type(self.operation).__name__}-{fp}.sqlite")
        keys = [f"{base_seed}|{c}|{hashlib.blake2b(texts[i].encode('utf-8'), digest_size=16).hexdigest()}"
                for i, c in zip(clones.tolist(), copy_no.tolist())]
        found = cache.get_many(keys) if cache is not None else {}
        new_texts, fresh = [], []
        t0 = time.perf_counter()
        for i, c, key in track(list(zip(clones.tolist(), copy_no.tolist(), keys)), "augmenting texts"):
            out = found.get(key)
            if out is None:
                out = self.operation.augment(texts[i], np.random.RandomState(_doc_seed(base_seed, c, texts[i])))
                fresh.append((key, out))
            new_texts.append(out)
        self.augment_seconds_ = time.perf_counter() - t0 if fresh else 0.0
        if cache is not None:
            cache.put_many(fresh)
            cache.close()
        self.sample_indices_ = sampler.sample_indices_
        self.n_augmented_ = int(len(clones))
        self.cache_hits_ = int(len(clones) - len(fresh))
        self.n_unchanged_ = int(sum(t == texts[i] for t, i in zip(new_texts, clones.tolist())))
        log.info("augmentation: %d new documents for %d minority labels (%d from cache, %d unchanged), %.1fs",
                 self.n_augmented_, len(self.minority_labels_), self.cache_hits_, self.n_unchanged_,
                 self.augment_seconds_)
        return texts + new_texts, np.asarray(Y[self.sample_indices_], dtype=np.int8)


def _copy_numbers(clones) -> np.ndarray:
    """0 for a document's first copy, 1 for its second, ... (in draw order)."""
    seen: dict = {}
    out = np.empty(len(clones), dtype=np.intp)
    for k, i in enumerate(clones.tolist()):
        out[k] = seen.get(i, 0)
        seen[i] = out[k] + 1
    return out


def _cache_root() -> Path:
    from mltc.runtime import cache_root
    return cache_root()
