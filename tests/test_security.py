"""Configs cannot run code: every `_target_` is checked on what it resolves to, before anything is built.

The CLI cases are the bypasses found against the string-prefix check (issue 16), each run through
the real `mltc run` against a temporary store: the file the config tries to write must not appear,
and the message must name the key. Each of them wrote its file with the old check.
"""
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mltc.app import CONF_DIR, ConfigError, check_targets
from mltc.config_guard import FACTORIES, check_config, check_env, check_target


def mltc_run(tmp_path, *args, multirun=False):
    cmd = [sys.executable, "-m", "mltc.cli", "run", *(["-m"] if multirun else []),
           f"tracking.uri=sqlite:///{tmp_path / 'x.db'}", "dataset.n_docs=300", "dataset.n_labels=5", *args]
    env = dict(os.environ, MLTC_RUNS_DIR=str(tmp_path / "runs"))
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def assert_refused(proc, key, pwn):
    out = proc.stdout + proc.stderr
    assert not pwn.exists(), f"the config ran code: {pwn} was written\n{out[-3000:]}"
    assert proc.returncode == 1, out[-3000:]
    assert "config refused" in out and key in out, out[-3000:]
    assert "Traceback" not in out and "marked FAILED" not in out, out[-3000:]


def copy_to(pwn):
    return f"_args_:[/etc/hostname,{pwn}]"


# ---------------------------------------------------------------- the bypasses, through the real CLI
def test_target_walking_through_a_module_attribute_is_refused(tmp_path):
    # `mltc.data.download.shutil.copyfile` starts with `mltc.` but is shutil's function
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, "+model.estimator.evil={_target_:mltc.data.download.shutil.copyfile,"
                              f"{copy_to(pwn)}}}")
    assert_refused(proc, "model.estimator.evil._target_", pwn)
    assert "not a module" in proc.stderr


def test_method_of_a_class_imported_by_mltc_is_refused(tmp_path):
    # mltc.app.Path is pathlib.Path: write_text on it wrote any file with any content
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, "+model.estimator.evil={_target_:mltc.app.Path.write_text,"
                              f"_args_:[{{_target_:mltc.app.Path,_args_:[{pwn}]}},hello]}}")
    assert_refused(proc, "model.estimator.evil", pwn)


def test_key_named_hydra_below_the_top_is_checked(tmp_path):
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, f"+model.hydra={{_target_:shutil.copyfile,{copy_to(pwn)}}}")
    assert_refused(proc, "model.hydra._target_", pwn)


def test_hydra_callbacks_are_checked(tmp_path):
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, f"+hydra.callbacks.evil={{_target_:shutil.copyfile,{copy_to(pwn)}}}")
    assert_refused(proc, "hydra.callbacks.evil._target_", pwn)


def test_sweep_checks_tracking_before_the_sweep_callback_builds_it(tmp_path):
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, "seed=1,2", f"+tracking.evil={{_target_:shutil.copyfile,{copy_to(pwn)}}}",
                    multirun=True)
    assert_refused(proc, "tracking.evil._target_", pwn)
    assert not (tmp_path / "x.db").exists()  # not even the store was opened


def test_env_set_cannot_put_code_on_the_python_path(tmp_path):
    # the chain of the issue: a directory holding sitecustomize.py (written by another config),
    # then hydra.job.env_set.PYTHONPATH makes the tracking process run it
    site = tmp_path / "site"
    site.mkdir()
    pwn = tmp_path / "pwn"
    (site / "sitecustomize.py").write_text(f"open({str(pwn)!r}, 'w').write('ran')\n")
    proc = mltc_run(tmp_path, f"+hydra.job.env_set.PYTHONPATH={site}")
    assert_refused(proc, "hydra.job.env_set.PYTHONPATH", pwn)


@pytest.mark.slow
def test_job_config_of_a_sweep_is_checked_before_any_job_runs(tmp_path):
    # a sweep value is only in the job's config, not in the sweep's: each job's config is checked too
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, "model.estimator._target_=sklearn.linear_model.LogisticRegression,"
                              "mltc.app.Path", multirun=True)
    assert proc.returncode == 1 and "config refused" in proc.stderr, proc.stderr[-3000:]
    assert "model.estimator._target_" in proc.stderr and not pwn.exists()


@pytest.mark.slow
def test_logging_config_cannot_build_other_classes(tmp_path):
    pwn = tmp_path / "pwn"
    proc = mltc_run(tmp_path, "hydra.job_logging.handlers.console.class=shutil.copyfile")
    assert_refused(proc, "hydra.job_logging.handlers.console.class", pwn)


# ---------------------------------------------------------------- the rule itself (in-process, fast)
def compose_cfg(overrides=(), hydra=True):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def test_every_shipped_config_passes():
    # every _target_ written in conf/ (a `hydra:` block's with the hydra node's rule), and the default config whole
    from pathlib import Path

    from mltc.config_guard import HYDRA_PACKAGES

    def targets(node, in_hydra=False):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "_target_":
                    yield v, in_hydra
                else:
                    yield from targets(v, in_hydra or k == "hydra")
        elif isinstance(node, list):
            for v in node:
                yield from targets(v, in_hydra)

    found = 0
    for path in sorted(Path(CONF_DIR).rglob("*.yaml")):
        for target, in_hydra in targets(OmegaConf.to_container(OmegaConf.load(path))):
            found += 1
            if _needs_missing_extra(target):
                continue  # e.g. model=mlp in a torch-free install: its own message says which extra to install
            if in_hydra:
                check_target(target, f"{path.name}:_target_", packages=HYDRA_PACKAGES, factories=frozenset())
            else:
                check_target(target, f"{path.name}:_target_")
    assert found > 50
    check_config(compose_cfg())


def _needs_missing_extra(target: str) -> bool:
    import importlib

    from _optional import missing_optional

    try:
        importlib.import_module(target.rpartition(".")[0])
    except ImportError as err:
        return missing_optional(err) is not None
    return False


def test_a_target_whose_module_needs_a_missing_package_says_so(tmp_path, monkeypatch):
    # a module that exists but cannot import (an optional extra missing) is not called "not a module"
    # as mltc.models.mlp does without torch: an ImportError that says which extra to install
    (tmp_path / "mltc_needs_extra_probe.py").write_text("raise ImportError(\"probe needs PyTorch: pip install 'mltc[torch]'\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot be imported: probe needs PyTorch: pip install 'mltc\[torch\]'"):
        check_target("mltc_needs_extra_probe.Thing", "model._target_", packages=("mltc_needs_extra_probe",))


def test_shipped_launchers_and_samplers_pass():
    check_config(compose_cfg(["hydra/launcher=joblib"]))
    check_config(compose_cfg(["hparams_search=logreg_mlsmote", "hydra/sweeper/sampler=random"]))


@pytest.mark.parametrize("target, why", [
    ("os.system", "not an allowed package"),
    ("builtins.eval", "not an allowed package"),
    ("mltc.data.download.shutil.copyfile", "not a module"),
    ("mltc.app.Path.write_text", "not a module"),
    ("mltc.app.Path", "outside the allowed packages"),        # a class imported by mltc, defined in pathlib
    ("mltc.app.os", "not to a class"),                        # a module imported by mltc
    ("mltc.tracker_process.pickle", "not to a class"),
    ("mltc.app.instantiate", "not to a class"),               # a function imported by mltc, not a factory
    ("mltc.tracking.mark_orphans", "not to a class"),         # mltc's own function, not a listed factory
    ("sklearn.utils.shuffle", "not to a class"),
    ("mltc.data", "not to a class"),
    ("mltc", "not a dotted name"),
    ("mltc.nope.Thing", "not a module"),
    ("mltc.app.Nope", "has no"),
    ("mltc..app", "not a dotted name"),
    ("${oc.env:X}", "not a dotted name"),
])
def test_refused_targets(target, why):
    with pytest.raises(ConfigError, match=why):
        check_target(target, "model._target_")


@pytest.mark.parametrize("target", ["sklearn.svm.LinearSVC", "xgboost.XGBClassifier", "mltc.models.BinaryRelevance",
                                    *sorted(FACTORIES)])
def test_allowed_targets(target):
    assert callable(check_target(target))


def test_hydra_node_allows_only_hydra_plugins_and_mltc():
    check_target("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                 packages=("hydra", "hydra_plugins", "optuna", "mltc"))
    cfg = compose_cfg(["hydra.launcher._target_=sklearn.svm.LinearSVC"])
    with pytest.raises(ConfigError, match="hydra.launcher._target_"):
        check_config(cfg)


@pytest.mark.parametrize("override, key", [
    ("+model.estimator.x={_target_:os.system,_partial_:true}", "model.estimator.x._target_"),
    ("+model.estimator.x={_target_:sklearn.svm.LinearSVC,_args_:[{_target_:os.system}]}",
     "model.estimator.x._args_[0]._target_"),
    ("+model.estimators=[{_target_:os.system}]", "model.estimators[0]._target_"),
    ("+dataset.a.b.hydra.c={_target_:os.system}", "dataset.a.b.hydra.c._target_"),
    ("+hydra.sweeper.sampler={_target_:os.system}", "hydra.sweeper.sampler._target_"),
    ("hydra.job_logging.handlers.console.stream=ext://os.system", "hydra.job_logging.handlers.console.stream"),
    ("hydra.hydra_logging.handlers.console.class=mltc.app.Path", "hydra.hydra_logging.handlers.console.class"),
    ("+hydra.sweeper.custom_search_space=mltc.app.main", "hydra.sweeper.custom_search_space"),
    ("+hydra.launcher.ray={init:{runtime_env:{py_modules:[/tmp/evil]}}}", "hydra.launcher.ray.init.runtime_env"),
])
def test_refused_anywhere_in_the_config(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        check_config(compose_cfg([override]))


def test_target_behind_an_interpolation_is_checked():
    # ${oc.decode:...} and ${other.node} produce whole nodes when the config is instantiated
    cfg = OmegaConf.create({"model": {"x": "${oc.decode:'{_target_: os.system}'}"},
                            "evil": {"_target_": "os.system"}, "dataset": {"y": "${evil}"}})
    with pytest.raises(ConfigError, match="model.x._target_|evil._target_"):
        check_config(cfg)
    cfg = OmegaConf.create({"model": {"x": "${oc.decode:'{_target_: os.system}'}"}})
    with pytest.raises(ConfigError, match="model.x._target_"):
        check_config(cfg)
    cfg = OmegaConf.create({"model": {"_target_": "${oc.env:EVIL_TARGET,os.system}"}})
    with pytest.raises(ConfigError, match="model._target_='os.system'"):
        check_config(cfg)


def test_check_targets_in_app_still_refuses():
    with pytest.raises(ConfigError, match="not allowed"):
        check_targets(compose_cfg(["model.estimator._target_=os.system"], hydra=False))


@pytest.mark.parametrize("name", ["PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONUSERBASE", "LD_PRELOAD",
                                  "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "PATH", "BASH_ENV",
                                  "GIT_SSH_COMMAND", "OMP_TOOL_LIBRARIES", "HYDRA_INSTANTIATE_ALLOWLIST_OVERRIDE",
                                  "ld_preload"])
def test_env_that_changes_code_loading_is_refused(name):
    with pytest.raises(ConfigError, match=f"env_set.{name} is not allowed"):
        check_env({name: "/tmp/x"})


def test_harmless_env_is_allowed():
    check_env({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "MLTC_RUNS_DIR": "/tmp/r"})
    check_config(compose_cfg(["+hydra.job.env_set.OMP_NUM_THREADS=1"]))


def test_module_level_docs_state_what_is_allowed():
    # the user-facing doc lists the same packages the code allows
    from pathlib import Path

    from mltc.config_guard import ALLOWED_PACKAGES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    assert all(p in doc for p in ALLOWED_PACKAGES)
    assert "plain text" in doc
