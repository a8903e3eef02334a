"""Where runs, the MLflow store and the data cache live."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["runs_dir", "default_tracking_uri", "data_cache_dir", "feature_cache_dir"]


def runs_dir() -> Path:
    """``MLTC_RUNS_DIR`` or ``./runs`` (absolute, so Hydra's working directory does not matter)."""
    return Path(os.environ.get("MLTC_RUNS_DIR", "runs")).expanduser().resolve()


def default_tracking_uri() -> str:
    """The default MLflow store: a SQLite database under the runs directory."""
    return f"sqlite:///{runs_dir() / 'mlflow.db'}"


def data_cache_dir() -> Path:
    """``MLTC_DATA_DIR`` or the user cache directory (``~/.cache/mltc``)."""
    env = os.environ.get("MLTC_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mltc"


def feature_cache_dir() -> Path:
    """Fitted featurizations reused across runs (:mod:`mltc.feature_cache`): ``<runs>/cache/features``."""
    return runs_dir() / "cache" / "features"
