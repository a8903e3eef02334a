"""Defaults chosen for imbalanced data, and published-protocol overlays that keep their own rules."""
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mltc.app import CONF_DIR
from mltc.callbacks import count_jobs
from mltc.thresholds import PerLabelThreshold

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))


def compose_in(conf_dir, overrides, hydra_cfg=False):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra_cfg)


@pytest.mark.parametrize("dataset", ["files", "synthetic"])
def test_no_flag_gets_per_label_thresholds_with_a_global_fallback(dataset):
    cfg = compose_in(CONF_DIR, [f"dataset={dataset}", "dataset.path=x.csv"] if dataset == "files"
                     else [f"dataset={dataset}"])
    rule = instantiate(cfg.thresholds)
    assert isinstance(rule, PerLabelThreshold) and rule.fallback == "global"
    # a flag still wins
    assert OmegaConf.select(compose_in(CONF_DIR, ["thresholds=fixed"]), "thresholds._target_").endswith(
        "FixedThreshold")


def _pins_thresholds(name, seen=()):
    """Whether experiment ``name`` (or an overlay it builds on) overrides the thresholds group itself."""
    node = OmegaConf.load(Path(CONF_DIR) / "experiment" / f"{name}.yaml")
    for entry in node.get("defaults", []):
        if isinstance(entry, str) and entry not in ("_self_",) and entry not in seen:
            if _pins_thresholds(entry, (*seen, name)):
                return True
        elif not isinstance(entry, str) and "override /thresholds" in entry:
            return True
    return False


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_overlay_pins_its_threshold_rule(name):
    assert _pins_thresholds(name), f"experiment/{name}.yaml relies on the default threshold rule; add " \
        "`- override /thresholds: fixed` (or its rule) to its defaults"


@pytest.mark.slow  # composes every overlay twice: ~20 s idle, ~45 s on a busy machine
def test_experiment_overlays_do_not_depend_on_the_default_rule(tmp_path):
    # every published-protocol overlay pins its threshold rule: with the old default (fixed) it composes the same
    old = tmp_path / "conf"
    shutil.copytree(CONF_DIR, old)
    text = (old / "config.yaml").read_text()
    assert "  - thresholds: per_label_global" in text
    (old / "config.yaml").write_text(text.replace("  - thresholds: per_label_global", "  - thresholds: fixed"))
    assert compose_in(old, []).thresholds._target_.endswith("FixedThreshold")  # the copy really has the old default
    rules = {}
    for conf in (CONF_DIR, old):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            rules[conf] = [OmegaConf.to_container(compose(config_name="config", overrides=[f"experiment={name}"])
                                                  .thresholds) for name in EXPERIMENTS]
    for name, now, before in zip(EXPERIMENTS, rules[CONF_DIR], rules[old]):
        assert now == before, name


def test_sweep_counts_jobs_of_a_configs_sweeper_params():
    cfg = compose_in(CONF_DIR, ["+portfolio=imbalance"], hydra_cfg=True)
    n_arms = len(str(cfg.hydra.sweeper.params["+portfolio/arm"]).split(","))
    with_task = OmegaConf.merge(cfg, {"hydra": {"overrides": {"task": ["+portfolio=imbalance"]}}})
    assert count_jobs(with_task) == n_arms * 2
    # the command line replaces a sweeper param of the same key
    override = OmegaConf.merge(cfg, {"hydra": {"overrides": {"task": ["+portfolio=imbalance", "seed=1,2,3"]}}})
    assert count_jobs(override) == n_arms * 3
