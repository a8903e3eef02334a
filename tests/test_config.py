"""Compose the real config and instantiate every option of every group."""
from pathlib import Path

import typing

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from _optional import skip_if_needs_missing_extra
from mltc.app import CONF_DIR, ConfigError, check_targets, load_dataset

GROUPS = ["split", "features", "strategy", "model", "thresholds", "tracking"]


def options(group):
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def compose_cfg(overrides=()):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def assert_built(node, obj):
    """``obj`` is what ``node``'s ``_target_`` makes: an instance of that class (its YAML keys among its
    ``get_params()``), or of the factory function's declared return type."""
    target = get_object(node._target_)
    if isinstance(target, type):
        assert isinstance(obj, target), f"{node._target_} built a {type(obj).__name__}"
        if hasattr(obj, "get_params"):
            keys = {k for k in OmegaConf.to_container(node) if not (k.startswith("_") and k.endswith("_"))}
            assert keys <= set(obj.get_params(deep=False)), f"{node._target_}: {keys - set(obj.get_params())}"
    else:
        returns = typing.get_type_hints(target).get("return")
        assert returns is not None, f"factory {node._target_} should declare what it returns"
        assert isinstance(obj, returns), f"{node._target_} returned a {type(obj).__name__}, not a {returns}"


def test_default_config_composes():
    cfg = compose_cfg()
    assert cfg.seed == 42
    assert cfg.dataset._target_.endswith("make_synthetic")
    assert cfg.model.estimator.random_state == cfg.seed
    check_targets(cfg)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_instantiates(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    skip_if_needs_missing_extra(cfg[group])
    obj = instantiate(cfg[group], _convert_="all")
    assert_built(cfg[group], obj)
    if group in ("strategy",):
        assert hasattr(obj, "fit_resample")
    if group == "model":
        assert hasattr(obj, "fit")
    if group == "thresholds":
        assert hasattr(obj, "fit") and hasattr(obj, "predict")


def test_every_dataset_option_composes():
    for option in options("dataset"):
        cfg = compose_cfg([f"dataset={option}"])
        assert "_target_" in cfg.dataset


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_overlays_build_every_object(option):
    # an overlay may inherit keys the overridden group's class does not take: build them all, not just compose
    cfg = compose_cfg([f"experiment={option}"])
    skip_if_needs_missing_extra(cfg)
    check_targets(cfg)
    for group in ("split", "features", "augment", "strategy", "model", "thresholds"):
        if cfg.get(group) is not None:
            assert_built(cfg[group], instantiate(cfg[group], _convert_="all"))


def test_seed_threads_through():
    cfg = compose_cfg(["seed=7"])
    assert cfg.split.random_state == 7 and cfg.dataset.random_state == 7 and cfg.model.estimator.random_state == 7


def test_unknown_target_refused():
    cfg = compose_cfg(["model.estimator._target_=os.system"])
    with pytest.raises(ConfigError, match="not allowed"):
        check_targets(cfg)


def test_synthetic_is_deterministic_per_seed():
    a = load_dataset(compose_cfg(["dataset.n_docs=300"]).dataset)
    b = load_dataset(compose_cfg(["dataset.n_docs=300"]).dataset)
    c = load_dataset(compose_cfg(["dataset.n_docs=300", "seed=1"]).dataset)
    assert a.texts == b.texts and np.array_equal(a.Y, b.Y)
    assert a.texts != c.texts
    assert "SYNTHETIC" in a.description
