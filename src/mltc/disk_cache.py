"""What the on-disk caches share: atomic writes that never fail a run, and least-recently-used trimming.

Used by :mod:`mltc.feature_cache` and :mod:`mltc.neighbour_cache`; entries are whole files, so a
parallel job either sees a complete entry or none.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

__all__ = ["read_entry", "atomic_write", "trim_lru"]


def read_entry(path: Path, load, *, log: logging.Logger, what: str, redo: str):
    """``load(path)``, or None when the entry is absent, unreadable (then removed) or ``load`` returns None.

    A read entry's mtime is refreshed, so :func:`trim_lru` evicts it last. ``redo`` says what the run does
    instead (e.g. "refitting"), for the warning about a damaged entry.
    """
    try:
        entry = load(path)
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 -- a damaged entry is a miss, not a failed run
        log.warning("%s: %s is unreadable (%s); %s and replacing it", what, path, err, redo)
        path.unlink(missing_ok=True)
        return None
    if entry is None:
        return None
    try:
        os.utime(path)  # recently used: evicted last
    except OSError:
        pass
    log.info("%s: reusing %s", what, path.name)
    return entry


def atomic_write(directory: Path, path: Path, write, *, log: logging.Logger, what: str, switch: str) -> bool:
    """Write a cache entry to ``path`` through a temporary file in ``directory``, then rename it into place.

    Parameters
    ----------
    directory, path : Path
        The cache folder and the entry's final path inside it.
    write : callable
        ``write(file_object)`` writes the entry.
    log : logging.Logger
    what, switch : str
        The cache's name and the setting that turns it off, for the warning when writing fails.

    Returns
    -------
    bool
        Whether the entry was stored; a cache that cannot write only warns (the run goes on).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        log.warning("%s: cannot write to %s (%s); the run goes on without it", what, directory, err)
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except Exception as err:  # noqa: BLE001 -- a cache that cannot write must not fail the run
        Path(tmp).unlink(missing_ok=True)
        log.warning("%s: could not store an entry (%s: %s); the run goes on without it (%s skips trying)",
                    what, type(err).__name__, err, switch)
        return False
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def trim_lru(paths, max_bytes: int, *, log: logging.Logger, what: str) -> None:
    """Remove the least recently used of ``paths`` (by mtime) until they hold at most ``max_bytes``.

    The newest entry stays even when it alone is over the cap: the running sweep reuses it.
    """
    sizes = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:  # removed by a parallel job
            continue
        sizes.append((st.st_mtime, p, st.st_size))
    sizes.sort(key=lambda t: t[0])
    total = sum(s for _, _, s in sizes)
    for _, p, s in sizes[:-1]:
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)  # a reader that opened it still reads it whole (POSIX)
        total -= s
        log.info("%s: removed %s (least recently used, cache over %.1f GB)", what, p.name, max_bytes / 1024 ** 3)
