"""Checks of configuration values that can be made before any data is loaded.

They live at the config edge (beside :mod:`mltc.app`): each takes the composed config
and raises :class:`mltc.app.ConfigError` with a message that names the key.
"""
from __future__ import annotations

from numbers import Integral

from omegaconf import DictConfig, OmegaConf

from mltc.metrics import AVAILABLE_METRICS

__all__ = ["check_values", "dataset_name", "metric_names"]

_GROUP_METRICS = tuple(f"{g}_{m}" for g in ("head", "medium", "tail") for m in ("micro_f1", "macro_f1", "n_labels"))


def metric_names(extra=()) -> set | None:
    """Names ``metrics.objective`` may take: mltc's metrics and the ``metrics.extra`` entries.

    ``None`` when an extra entry has no name this check can read (the objective is then
    checked after the run, against the metrics actually computed).
    """
    names = set(AVAILABLE_METRICS) | set(_GROUP_METRICS)
    for entry in extra or ():
        if isinstance(entry, str):
            names.add(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.add(entry["name"])
        else:
            return None
    return names


def check_values(cfg: DictConfig) -> None:
    """Refuse values that cannot work, before loading data: ``seed``, ``metrics.objective``."""
    from mltc.config_guard import ConfigError

    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
        raise ConfigError(f"seed={seed!r} is not an integer: give a whole number such as seed=42 (it seeds the "
                          "split, the sampler and the model).")
    metrics = cfg.get("metrics")
    objective = metrics.get("objective") if metrics is not None else None
    if objective is None:
        return
    extra = metrics.get("extra")
    names = metric_names(OmegaConf.to_container(extra, resolve=True) if OmegaConf.is_config(extra) else extra)
    if names is not None and objective not in names:
        from difflib import get_close_matches

        close = get_close_matches(str(objective), sorted(names), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"metrics.objective={objective!r} is not a metric mltc computes.{hint} Choose one of "
                          f"{', '.join(sorted(names))} (or add one to metrics.extra).")


def dataset_name(dataset: DictConfig | dict, choice: str | None) -> str | None:
    """The data set's name as the run will know it, read from its config (before loading it).

    ``dataset.name`` where given; for ``dataset=files`` the stem of ``dataset.path``
    (a user's data set is never called "files"); else the chosen option (``goemotions``).
    """
    get = dataset.get
    name = get("name")
    if name:
        return str(name)
    target = str(get("_target_") or "")
    path = OmegaConf.select(dataset, "path", default=None) if OmegaConf.is_config(dataset) else get("path")
    if target.endswith("load_files") and path not in (None, "???"):
        from mltc.data.files import default_name

        return default_name(path)
    return choice
