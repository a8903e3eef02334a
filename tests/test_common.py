"""Common checks over every sampler, model, threshold rule and loss that mltc defines, found by walking the package.

The checks and their known exceptions (with reasons) live in :mod:`mltc.utils.estimator_checks`.
"""
from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from _optional import missing_optional
from mltc.app import CONF_DIR
from mltc.utils.estimator_checks import (EXPECTED_FAILURES, SKIPPED_MODULES, all_estimators, checks_for,
                                         parametrize_with_checks, run_check)

# must be found by discovery: they escaped the hand-written lists of the earlier common tests
MUST_FIND = {"PseudoLabeler", "MetaCostWeights", "MetaCostRelabel", "NoStrategy", "BinaryRelevance", "ScoreStack",
             "MLROS", "MLRUS", "LPROS", "LPRUS", "MLSMOTE", "MLSOL", "REMEDIAL", "MLeNN", "SamplerChain",
             "BoostedBinaryRelevance", "ScoreAverage", "LabelPowerset", "ClassifierChain", "RAkEL",
             "EnsembleClassifierChains", "FixedThreshold", "GlobalThreshold", "PerLabelThreshold",
             "PerLabelCVThreshold", "SCut", "PCut", "RCut", "MCut", "FocalLoss", "WeightedBCE", "AsymmetricLoss"}
# needs the torch extra: found where torch is installed
TORCH = {"MLPClassifierHead", "FineTunedEncoder"}


def test_discovery_finds_every_component():
    names = {n for n, _ in all_estimators()}
    assert MUST_FIND <= names, f"not discovered: {sorted(MUST_FIND - names)}"
    if not any("torch" in e for e in SKIPPED_MODULES.values()):
        assert TORCH <= names
    kinds = {k: {n for n, _ in all_estimators(k)} for k in ("sampler", "model", "threshold", "loss")}
    assert {"PseudoLabeler", "MetaCostWeights", "NoStrategy"} <= kinds["sampler"]
    assert {"BinaryRelevance", "ScoreStack"} <= kinds["model"] and "MCut" in kinds["threshold"]
    assert not set.intersection(*kinds.values())
    with pytest.raises(ValueError, match="type_filter"):
        all_estimators("featurizer")


def test_expected_failures_name_real_classes_and_checks():
    classes = dict(all_estimators())
    for (cls, check), reason in EXPECTED_FAILURES.items():
        if cls in TORCH and cls not in classes:
            continue
        assert cls in classes and reason
        assert check in {c.__name__ for c in checks_for(classes[cls])}, (cls, check)


@parametrize_with_checks()
def test_common_checks(cls, check):
    run_check(cls, check)


def _conf_targets():
    """class -> config files (relative to conf/) whose ``_target_``, at any depth, resolves to it."""
    out = {}

    def walk(node, path):
        if isinstance(node, dict):
            t = node.get("_target_")
            if isinstance(t, str) and t.startswith("mltc."):
                try:
                    out.setdefault(get_object(t), set()).add(path)
                except Exception as err:  # noqa: BLE001
                    # a class of an extra that is not installed is not discovered either (SKIPPED_MODULES)
                    if missing_optional(err) is None:
                        raise
            for v in node.values():
                walk(v, path)
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    for p in sorted(Path(CONF_DIR).rglob("*.yaml")):
        walk(OmegaConf.to_container(OmegaConf.load(p)), str(p.relative_to(CONF_DIR)))
    return out


def test_every_component_has_a_config_file():
    # a new sampler, model, threshold rule or loss must be reachable from a config: add a conf/<group>/*.yaml
    targets = _conf_targets()
    missing = [name for name, cls in all_estimators() if cls not in targets]
    assert not missing, f"no config file in conf/ builds {missing}"
