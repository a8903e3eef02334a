"""Where mltc keeps caches on this machine, and which torch device to use."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "resolve_device"]


def cache_root() -> Path:
    """``MLTC_CACHE_DIR`` or ``~/.cache/mltc`` (``XDG_CACHE_HOME`` respected).

    Separate from ``MLTC_DATA_DIR`` so a read-only data folder never receives cache files.
    """
    env = os.environ.get("MLTC_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mltc"


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values unchanged."""
    if device != "auto":
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"
