"""Work the tracking side does beside the model fit, so that logging the model afterwards is quick."""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger("mltc")

__all__ = ["target_modules", "warm_up_model_logging"]


def target_modules(*nodes) -> list:
    """The modules of every ``_target_`` in ``nodes`` (plain dicts / lists of a resolved config), in order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            target = node.get("_target_")
            if isinstance(target, str) and "." in target:
                found.append(target.rsplit(".", 1)[0])
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    for node in nodes:
        walk(node)
    return list(dict.fromkeys(found))


def warm_up_model_logging(modules=()) -> None:
    """Import what logging a model needs and build MLflow's module-to-distribution map.

    Logging a model makes MLflow check the model's requirements against the installed packages
    through that map: a scan of every installed distribution's metadata, once per process (~0.5-1 s,
    several seconds on a busy machine). Checking the input example loads the model, which imports
    the run's components (``modules``). Done while the model fits, none of it waits for the fit
    to end. Failures are left to the real call, which reports them.
    """
    try:
        import mlflow.pyfunc  # noqa: F401
        from mlflow.utils.requirements_utils import _init_modules_to_packages_map

        import mltc.serving.mlflow_model  # noqa: F401

        _init_modules_to_packages_map()
    except Exception:  # noqa: BLE001 -- another MLflow version, a missing extra: the model logging says why
        log.debug("warming up model logging failed", exc_info=True)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- an optional extra that is not installed: loading reports it
            log.debug("warm-up import of %s failed", name, exc_info=True)
