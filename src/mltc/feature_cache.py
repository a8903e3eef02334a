"""Reuse fitted featurizations across runs: a content-addressed, size-capped cache on disk.

The jobs of a sweep that differ only after featurization (strategy, model, thresholds,
the model's seed) fit the same featurizer on the same training texts and transform the
same held-out texts. :class:`FeatureCache` stores that work once, under a key made of

* the texts of every part (train after augmentation, validation, test, unlabeled) and the
  training labels, so the data set and the split are in the key by content;
* the featurizer's class and every parameter at any depth (nested vectorizers included);
* the versions of mltc, scikit-learn, NumPy and SciPy (a new version may featurize differently).

An entry holds ``X_train``, ``X_val``, ``X_test`` (and ``X_unlabeled``) and the fitted
featurizer, written with joblib to a temporary file and moved into place with
:func:`os.replace`, so parallel jobs never read a half-written entry and two jobs writing
the same key leave one whole file. Reading an entry updates its modification time; when
the cache grows past ``max_bytes`` the least recently used entries are removed.

A hit gives the same matrices as refitting: the featurizers are deterministic functions of
their parameters and texts (a featurizer with an unseeded random step is not, and should
not be cached: ``FeatureCache(enabled=False)`` or ``cache.features=false``).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltc.disk_cache import atomic_write, read_entry, trim_lru

log = logging.getLogger(__name__)

__all__ = ["FeatureCache", "CachedFeatures", "describe"]

_SUFFIX = ".joblib"


@dataclass
class CachedFeatures:
    """One cache entry: the fitted featurizer and the matrices of every part."""

    featurizer: Any
    X_train: Any
    X_val: Any
    X_test: Any
    X_unlabeled: Any = None


def describe(obj) -> Any:
    """A plain, exact description of ``obj`` for hashing (estimators by class and all parameters).

    Unlike ``repr``, nothing is elided (scikit-learn shortens long reprs with ``...``) and
    arrays count by content.
    """
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        params = obj.get_params(deep=False)
        return {"__class__": f"{type(obj).__module__}.{type(obj).__qualname__}",
                **{k: describe(v) for k, v in sorted(params.items())}}
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, *[describe(v) for v in obj]]
    if isinstance(obj, (set, frozenset)):
        return ["set", *sorted(repr(v) for v in obj)]
    if isinstance(obj, np.ndarray):
        return ["ndarray", str(obj.dtype), list(obj.shape), hashlib.sha256(np.ascontiguousarray(obj).data).hexdigest()]
    if isinstance(obj, type) or callable(obj):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"
    return repr(obj)


def _versions() -> str:
    """The library versions whose code decides cached results (other versions may compute differently)."""
    import importlib.metadata as md

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "-"
    return " ".join(f"{n}={version(n)}" for n in ("mltc", "scikit-learn", "numpy", "scipy", "lightgbm", "xgboost"))


def _update_texts(h, texts) -> None:
    h.update(b"\x00texts%d\x00" % (-1 if texts is None else len(texts)))
    for t in texts or ():
        b = str(t).encode("utf-8", "surrogatepass")
        # length-prefixed, so no two lists of texts hash alike by moving a boundary
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


class FeatureCache:
    """Fitted featurizations on disk, keyed by data, split and featurizer parameters.

    Parameters
    ----------
    directory : str or Path
        Where entries live (created on first write); :func:`mltc.paths.feature_cache_dir`
        from the CLI.
    max_bytes : int, default=5 GB
        Size cap; the least recently used entries are removed after a write past it.
    enabled : bool, default=True
        False: :meth:`key` returns None and nothing is read or written.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> vec = TfidfVectorizer()
    >>> key = cache.key(vec, train=["red blue", "blue green"], val=["red"], test=["green"])
    >>> cache.load(key) is None
    True
    >>> X = vec.fit_transform(["red blue", "blue green"])
    >>> cache.store(key, CachedFeatures(vec, X, vec.transform(["red"]), vec.transform(["green"])))
    >>> cache.load(key).X_train.shape
    (2, 3)
    """

    def __init__(self, directory, *, max_bytes: int = 5 * 1024 ** 3, enabled: bool = True):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.enabled = enabled

    def key(self, featurizer, *, train, val, test, unlabeled=None, Y_train=None) -> str | None:
        """The entry's name for this featurizer on these texts (None when the cache is disabled)."""
        if not self.enabled:
            return None
        h = hashlib.sha256()
        h.update(_versions().encode())
        h.update(repr(describe(featurizer)).encode())
        for part in (train, val, test, unlabeled):
            _update_texts(h, part)
        if Y_train is not None:
            Y = np.ascontiguousarray(np.asarray(Y_train))
            h.update(f"Y{Y.dtype}{Y.shape}".encode())
            h.update(Y.data)
        return h.hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{_SUFFIX}"

    def load(self, key: str | None) -> CachedFeatures | None:
        """The entry for ``key``, or None (disabled, absent, or unreadable: then it is removed)."""
        if key is None:
            return None
        import joblib

        def load(path):
            entry = joblib.load(path)
            if not isinstance(entry, CachedFeatures):
                log.warning("feature cache: %s does not hold cached features; refitting and replacing it", path)
                return None
            return entry

        return read_entry(self._path(key), load, log=log, what="feature cache", redo="refitting")

    def store(self, key: str | None, entry: CachedFeatures) -> None:
        """Write ``entry`` atomically under ``key``, then trim the cache to ``max_bytes``."""
        if key is None:
            return
        import joblib

        if atomic_write(self.directory, self._path(key), lambda f: joblib.dump(entry, f), log=log,
                        what="feature cache", switch="cache.features=false"):
            self.trim()

    def entries(self) -> list[Path]:
        """Cached entries, least recently used first."""
        def mtime(p):
            try:
                return p.stat().st_mtime
            except FileNotFoundError:
                return float("inf")
        return sorted(self.directory.glob(f"*{_SUFFIX}"), key=mtime) if self.directory.is_dir() else []

    def trim(self) -> None:
        """Remove least recently used entries until the cache holds at most ``max_bytes``."""
        trim_lru(self.entries(), self.max_bytes, log=log, what="feature cache")
