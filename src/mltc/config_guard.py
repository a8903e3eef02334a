"""What a configuration may build: every ``_target_`` is checked on the object it resolves to.

A config is code: ``_target_`` names something Hydra will call. The check here runs on the
composed config, ``hydra`` node included, before anything in it is built or run:

- a target is ``package.module.Name``: the module part is imported and ``Name`` taken from it
  with ONE attribute lookup (``mltc.data.download.shutil.copyfile`` walks through another
  module's attribute and is refused);
- it must resolve to a class, or to one of the named factory functions in :data:`FACTORIES`,
  whose defining module (``obj.__module__``) is inside an allowed package;
- the object must be the one Hydra's own lookup finds for the same string;
- logging configs (``hydra.job_logging``, ``hydra.hydra_logging``) may only name ``logging``
  and Hydra classes; ``hydra.job.env_set`` may not set variables that change which code loads.

Nothing here relies on Hydra's own blocklist.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["ConfigError", "check_config", "check_hydra", "check_target", "check_env", "ALLOWED_PACKAGES",
           "HYDRA_PACKAGES", "FACTORIES", "install"]

# packages whose classes a run's config may build (models, samplers, features, ...)
ALLOWED_PACKAGES = ("mltc", "sklearn", "imblearn", "lightgbm", "xgboost", "iterstrat")
# the `hydra` node: Hydra's launchers/sweepers/callbacks, its plugins, Optuna's samplers, mltc's callbacks
HYDRA_PACKAGES = ("hydra", "hydra_plugins", "optuna", "mltc")
# logging configs (dictConfig `class` / `()`): the standard library's handlers and Hydra's
LOGGING_PACKAGES = ("logging", "hydra", "colorlog")
# functions a config may call, by defining module and name (everything else must be a class)
FACTORIES = frozenset({
    "mltc.data.files.load_files",
    "mltc.data.goemotions.load_goemotions",
    "mltc.data.reuters.load_reuters21578",
    "mltc.data.synthetic.make_synthetic",
    "mltc.features.sentence.make_tfidf_minilm",
    "mltc.features.tfidf.make_tfidf",
})
# environment variables that decide which code a process (or its children) loads, or weaken a check
_CODE_ENV = frozenset({
    "PATH", "BASH_ENV", "ENV", "PERL5LIB", "PERL5OPT", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CUDA_INJECTION64_PATH", "GCONV_PATH", "OPENSSL_CONF",
    "OPENSSL_ENGINES", "OPENSSL_MODULES", "MPLBACKEND", "MPLCONFIGDIR", "IPYTHONDIR",
    "HYDRA_INSTANTIATE_ALLOWLIST_OVERRIDE", "MLTC_SWEEP",
})
_CODE_ENV_PREFIXES = ("PYTHON", "LD_", "DYLD_", "GIT_", "LOKY_", "OMP_TOOL", "KMP_TOOL")
_LOGGING_STREAMS = frozenset({"ext://sys.stdout", "ext://sys.stderr"})
# launcher options that ship code or environment to workers (Ray's runtime_env: py_modules, pip, env_vars, ...)
_CODE_KEYS = frozenset({"runtime_env", "worker_process_setup_hook", "setup_hook"})
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_MAX_DEPTH = 100


class ConfigError(ValueError):
    """A configuration value that cannot work (or is not allowed); the message names the key."""


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def check_target(path, key: str = "_target_", *, packages=None, factories=None):
    """Resolve ``path`` the strict way and return the object, or raise :class:`ConfigError`.

    Parameters
    ----------
    path : str
        The ``_target_`` value, ``package.module.Name``.
    key : str
        The config key, for the message.
    packages : tuple of str, optional
        Top-level packages the object's defining module must belong to; default :data:`ALLOWED_PACKAGES`.
    factories : set of str, optional
        Functions allowed by their ``module.name`` (default :data:`FACTORIES`); any other target must be a class.
    """
    packages = ALLOWED_PACKAGES if packages is None else packages
    factories = FACTORIES if factories is None else factories

    def refuse(why: str):
        raise ConfigError(f"{key}={path!r} is not allowed: {why}. Targets name a class (or a listed factory "
                          f"function) of {', '.join(packages)} as package.module.Name.")

    if not isinstance(path, str) or not _DOTTED.fullmatch(path):
        refuse("it is not a dotted name")
    module_name, _, name = path.rpartition(".")
    if _root(module_name) not in packages:
        refuse(f"{_root(module_name)!r} is not an allowed package")  # checked before importing anything
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            refuse(f"{module_name!r} is not a module (a target takes one name from a module, it does not walk "
                   f"through a module's attributes)")
        raise ConfigError(f"{key}={path!r}: module {module_name!r} needs {err.name!r}, which is not installed "
                          f"(an optional extra of mltc?).") from None
    except ImportError as err:
        if importlib.util.find_spec(module_name) is not None:  # the module is there; something it needs is not
            raise ConfigError(f"{key}={path!r}: module {module_name!r} cannot be imported: {err}") from None
        refuse(f"{module_name!r} is not a module (a target takes one name from a module, it does not walk "
               f"through a module's attributes)")
    if module.__name__ != module_name:
        refuse(f"{module_name!r} is an alias of module {module.__name__!r}")
    obj = getattr(module, name, None)
    if obj is None:
        refuse(f"module {module_name!r} has no {name!r}")
    defined_in = getattr(obj, "__module__", None) or ""
    if isinstance(obj, type):
        kind = f"class {defined_in}.{obj.__qualname__}"
    elif callable(obj) and f"{defined_in}.{getattr(obj, '__qualname__', '')}" in factories:
        kind = "factory"
    else:
        refuse(f"it resolves to {type(obj).__name__} {getattr(obj, '__qualname__', name)!r} from "
               f"{defined_in or '?'}, not to a class or a listed factory")
    if _root(defined_in) not in packages:
        refuse(f"it resolves to {kind}, defined outside the allowed packages")
    try:  # the object Hydra will build must be the one checked here
        from hydra._internal.utils import _locate
    except ImportError:  # pragma: no cover - a Hydra without this internal resolves the same way
        return obj
    try:
        same = _locate(path) is obj
    except Exception:  # noqa: BLE001 -- any failure means Hydra would not build what was checked
        same = False
    if not same:
        refuse("Hydra resolves it to a different object")
    return obj


def check_env(env_set, key: str = "hydra.job.env_set") -> None:
    """Refuse environment variables that change which code a process loads (PYTHONPATH, LD_PRELOAD, ...)."""
    for name in (env_set or {}):
        n = str(name)
        if n.upper() in _CODE_ENV or n.upper().startswith(_CODE_ENV_PREFIXES):
            raise ConfigError(f"{key}.{n} is not allowed: it changes which code runs (in this process or the "
                              f"tracking process). Set it in your shell before `mltc run` if you really need it.")


_FAILED = object()


def _value(node, k):
    """``node[k]`` resolved; ``_FAILED`` when it cannot be resolved here."""
    if not OmegaConf.is_config(node):
        return node[k]
    try:
        return node[k]
    except Exception:  # noqa: BLE001 -- e.g. ${hydra:...} outside a job; checked again in the job
        return _FAILED


def _children(node):
    """``(key, raw child)`` pairs of a config node or a plain dict / list."""
    if isinstance(node, DictConfig):
        return [(k, node._get_node(k)) for k in node.keys()]
    if isinstance(node, ListConfig):
        return [(i, node._get_node(i)) for i in range(len(node))]
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, (list, tuple)):
        return list(enumerate(node))
    return []


def _walk(node, path: str, visit, depth=0) -> None:
    """Call ``visit(parent, key, path)`` for every key of ``node``, descending into containers.

    An interpolation can produce a whole node (``${oc.decode:...}``, ``${other.node}``): what it
    gives is walked too, so a ``_target_`` cannot hide behind one.
    """
    if depth > _MAX_DEPTH:
        raise ConfigError(f"{path} is nested too deeply (or refers to itself)")
    for k, raw in _children(node):
        sub = f"{path}[{k}]" if isinstance(k, int) else (f"{path}.{k}" if path else str(k))
        if visit(node, k, sub):
            continue
        if isinstance(raw, (DictConfig, ListConfig)) and not raw._is_interpolation():
            _walk(raw, sub, visit, depth + 1)
        elif isinstance(raw, (dict, list, tuple)):
            _walk(raw, sub, visit, depth + 1)
        elif OmegaConf.is_config(node) and raw is not None and raw._is_interpolation():
            value = _value(node, k)
            if isinstance(value, (DictConfig, ListConfig, dict, list)):
                _walk(value, sub, visit, depth + 1)


def _targets(packages, factories):
    def visit(parent, k, sub):
        if k != "_target_":
            return False
        value = _value(parent, k)
        if value is _FAILED:
            raise ConfigError(f"{sub} cannot be resolved before the run, so it cannot be checked; write the "
                              f"class name itself")
        check_target(value, sub, packages=packages, factories=factories)
        return True
    return visit


def _logging(parent, k, sub):
    """dictConfig builds ``class`` and ``()`` objects and resolves ``ext://`` names: keep them to logging's own."""
    if k in ("class", "()"):
        check_target(_value(parent, k), sub, packages=LOGGING_PACKAGES, factories=frozenset())
        return True
    value = _value(parent, k)
    if isinstance(value, str) and value.startswith("ext://") and value not in _LOGGING_STREAMS:
        raise ConfigError(f"{sub}={value!r} is not allowed: logging configs may only refer to "
                          f"{', '.join(sorted(_LOGGING_STREAMS))}.")
    return False


def check_config(cfg, hydra_cfg=None) -> None:
    """Check every ``_target_`` of ``cfg`` (and of its ``hydra`` node, or ``hydra_cfg``) before anything is built.

    A key named ``hydra`` below the top level is an ordinary key: Hydra builds its targets too.

    Raises
    ------
    ConfigError
        Naming the key, what it resolves to and why it is refused.
    """
    if cfg is None:
        return
    visit = _targets(None, None)
    _walk(cfg, "", lambda parent, k, sub: k == "hydra" and parent is cfg or visit(parent, k, sub))
    hydra = hydra_cfg if hydra_cfg is not None else (cfg.get("hydra") if isinstance(cfg, DictConfig) else None)
    if hydra is not None:
        check_hydra(hydra)


def _no_code_keys(parent, k, sub):
    if k in _CODE_KEYS and _value(parent, k) not in (None, {}, _FAILED):
        raise ConfigError(f"{sub} is not allowed: it ships code or environment variables to the workers. Set it "
                          f"in the cluster's own configuration, not in an mltc config.")
    return False


def check_hydra(hydra) -> None:
    """The ``hydra`` node: launcher, sweeper, callbacks, logging, environment."""
    if "launcher" in hydra:
        launcher = _value(hydra, "launcher")
        if launcher is not None and launcher is not _FAILED:
            _walk(launcher, "hydra.launcher", _no_code_keys)
    visit = _targets(HYDRA_PACKAGES, frozenset())
    for k in ("job_logging", "hydra_logging"):
        node = _value(hydra, k) if k in hydra else None
        if node is not None and node is not _FAILED:
            _walk(node, f"hydra.{k}", _logging)
    _walk(hydra, "hydra", lambda parent, k, sub: (parent is hydra and k in ("job_logging", "hydra_logging"))
          or visit(parent, k, sub))
    job = _value(hydra, "job") if "job" in hydra else None
    if job is not None and job is not _FAILED:
        check_env(job.get("env_set"))
    sweeper = _value(hydra, "sweeper") if "sweeper" in hydra else None
    if sweeper is not None and sweeper is not _FAILED and sweeper.get("custom_search_space"):
        raise ConfigError(f"hydra.sweeper.custom_search_space={sweeper.custom_search_space!r} is not allowed: it "
                          f"names a function to call. List the search space under hydra.sweeper.params.")


def install() -> bool:
    """Check every config Hydra composes for ``mltc run`` before Hydra uses it.

    Hydra builds callbacks, configures logging from the config and sets ``hydra.job.env_set``
    before the task function runs; the check must come first, so it wraps the config loader
    (the top-level config, and each job's config in a sweep). A refused config prints one line
    and exits with status 1. Returns False when this Hydra has no such loader (the checks in the
    run and in the sweep callback still apply).
    """
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
    except ImportError:  # pragma: no cover
        return False
    original = ConfigLoaderImpl.load_configuration
    if getattr(original, "_mltc_guard", False):
        return True

    def load_configuration(self, *args, **kwargs):
        cfg = original(self, *args, **kwargs)
        try:
            check_config(cfg)
        except ConfigError as err:
            print(f"mltc: config refused (nothing in it was built or run): {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        return cfg

    load_configuration._mltc_guard = True
    ConfigLoaderImpl.load_configuration = load_configuration
    return True
