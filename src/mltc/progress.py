"""Progress of long stages: a bar with an ETA on a terminal, one line per stage elsewhere.

Components call :func:`track` around a loop and :func:`note` for an event worth a line (early stopping);
rich is imported only when a bar is drawn, so a component that calls neither pays nothing.

>>> sum(track(range(3), "counting"))
3
"""
from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["track", "note", "interactive"]

log = logging.getLogger("mltc")


def interactive() -> bool:
    """Whether to draw bars: stderr is a terminal, not CI, and ``MLTC_PROGRESS`` is not ``0``.

    ``MLTC_PROGRESS=1`` forces bars, ``0`` turns them off (one line per stage remains).
    """
    forced = os.environ.get("MLTC_PROGRESS")
    if forced is not None:
        return forced not in ("0", "false", "no", "")
    if os.environ.get("CI"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def track(iterable, description: str, total: int | None = None, *, min_seconds: float = 0.0):
    """Iterate over ``iterable``, showing ``description`` with progress and time left.

    Parameters
    ----------
    iterable : iterable
    description : str
        What is happening (``"MLSOL: synthetic instances"``, ``"epoch"``).
    total : int, optional
        Number of items (default ``len(iterable)`` where it has one).
    min_seconds : float
        Outside a terminal, log the closing line only for stages that took at least this long.

    Yields
    ------
    The items of ``iterable``.
    """
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    t0 = time.perf_counter()
    if total is not None and total <= 1:  # nothing to follow (e.g. one chunk of neighbours)
        yield from iterable
        return
    if not interactive():
        n = 0
        for n, item in enumerate(iterable, start=1):
            yield item
        seconds = time.perf_counter() - t0
        if seconds >= min_seconds:
            log.info("%s: %d%s done in %.1fs", description, n, f"/{total}" if total else "", seconds)
        return
    global _ACTIVE
    outer = _ACTIVE is None
    if outer:  # rich draws one live display at a time: a nested loop adds its bar under the outer one
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        _ACTIVE = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("left"), TimeRemainingColumn(), transient=True, console=_console())
        _ACTIVE.start()
    bar = _ACTIVE
    task = bar.add_task(description, total=total)
    try:
        for item in iterable:
            yield item
            bar.advance(task)
    finally:
        bar.remove_task(task)
        if outer:
            bar.stop()
            _ACTIVE = None
    log.info("%s: done in %.1fs", description, time.perf_counter() - t0)


_ACTIVE = None


def note(message: str, *args) -> None:
    """One line for an event in a stage (e.g. ``"early stopping at epoch 7 (best: epoch 4)"``)."""
    log.info(message, *args)


def _console():
    from rich.console import Console

    return Console(stderr=True)
