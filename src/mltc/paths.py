"""Where runs, the MLflow store and the data cache live."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["runs_dir", "default_tracking_uri", "data_cache_dir", "tracking_uri", "conf_dir", "feature_cache_dir"]


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


def conf_dir() -> Path | None:
    """mltc's configuration directory (installed wheel, then source checkout), or None."""
    here = Path(__file__).resolve().parent
    for cand in (here / "conf", here.parents[1] / "conf"):
        if (cand / "config.yaml").is_file():
            return cand
    return None


def local_tracking_uri() -> str | None:
    """``tracking.uri`` from the machine-local config (``conf/local/default.yaml``), if it sets one."""
    conf = conf_dir()
    path = conf / "local" / "default.yaml" if conf is not None else None
    if path is None or not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    uri = (data.get("tracking") or {}).get("uri") if isinstance(data, dict) else None
    return str(uri) if uri else None


def tracking_uri(uri: str | None = None) -> str:
    """The MLflow store ``mltc`` uses: how ``mltc run``, ``mltc compare`` and ``mltc ui`` all find it.

    In order: ``uri`` (``tracking.uri=...`` / ``--uri``), ``tracking.uri`` in ``conf/local/default.yaml``,
    ``$MLFLOW_TRACKING_URI``, then :func:`default_tracking_uri`.
    """
    return uri or local_tracking_uri() or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def tracking_uri_source(uri: str | None = None) -> str:
    """Where :func:`tracking_uri` found the store (for messages)."""
    if uri:
        return "given (--uri / tracking.uri=)"
    if local_tracking_uri():
        return "conf/local/default.yaml"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    return "the default store under runs/ (MLTC_RUNS_DIR)"


def feature_cache_dir() -> Path:
    """Fitted featurizations reused across runs (:mod:`mltc.feature_cache`): ``<runs>/cache/features``."""
    return runs_dir() / "cache" / "features"
