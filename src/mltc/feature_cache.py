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
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    >>> key = cache.key(vec, train=["a b", "b c"], val=["a"], test=["c"])
    >>> cache.load(key) is None
    True
    >>> X = vec.fit_transform(["a b", "b c"])
    >>> cache.store(key, CachedFeatures(vec, X, vec.transform(["a"]), vec.transform(["c"])))
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

        path = self._path(key)
        try:
            entry = joblib.load(path)
        except FileNotFoundError:
            return None
        except Exception as err:  # noqa: BLE001 -- a damaged entry is a miss, not a failed run
            log.warning("feature cache: %s is unreadable (%s); refitting and replacing it", path, err)
            path.unlink(missing_ok=True)
            return None
        if not isinstance(entry, CachedFeatures):
            log.warning("feature cache: %s does not hold cached features; refitting and replacing it", path)
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        log.info("feature cache: reusing %s", path.name)
        return entry

    def store(self, key: str | None, entry: CachedFeatures) -> None:
        """Write ``entry`` atomically under ``key``, then trim the cache to ``max_bytes``."""
        if key is None:
            return
        import joblib

        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                joblib.dump(entry, f)
            os.replace(tmp, self._path(key))
        except Exception as err:  # noqa: BLE001 -- a cache that cannot write must not fail the run
            Path(tmp).unlink(missing_ok=True)
            log.warning("feature cache: could not store this featurization (%s: %s); the run goes on without "
                        "it (cache.features=false skips trying)", type(err).__name__, err)
            return
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
        sizes = []
        for p in self.entries():
            try:
                sizes.append((p, p.stat().st_size))
            except FileNotFoundError:  # removed by a parallel job
                pass
        total = sum(s for _, s in sizes)
        # the newest entry stays even when it alone is over the cap: the running sweep reuses it
        for p, s in sizes[:-1]:
            if total <= self.max_bytes:
                break
            p.unlink(missing_ok=True)  # a reader that opened it still reads it whole (POSIX)
            total -= s
            log.info("feature cache: removed %s (least recently used, cache over %.1f GB)", p.name,
                     self.max_bytes / 1024 ** 3)
