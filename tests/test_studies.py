"""Shared Optuna studies (mltc.studies, hydra/sweeper=mltc_optuna) and the Ray launcher's config, without engines."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from hydra import initialize_config_dir

from mltc.app import CONF_DIR
from mltc.studies import SharedStudy, open_storage, study_lock


def test_open_storage_gives_optuna_2_10_a_working_sqlite_study(tmp_path):
    # Optuna 2.10 alone fails here under SQLAlchemy 2 (its schema stamp is never committed)
    import optuna

    url = f"sqlite:///{tmp_path / 'sub' / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, x)
    again = optuna.load_study(study_name="s", storage=open_storage(url))  # schema exists: opened as it is
    assert [t.params["x"] for t in again.get_trials()] == [x] and again.best_value == x


def test_open_storage_refuses_a_url_that_is_not_a_database(tmp_path):
    with pytest.raises(ValueError, match="not a database URL"):
        open_storage(str(tmp_path / "optuna.db"))


def test_study_lock_on_sqlite_excludes_a_second_holder(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    events, a_in, release = [], threading.Event(), threading.Event()

    def a():
        with study_lock(url, "s"):
            events.append("a in")
            a_in.set()
            release.wait(10)
            events.append("a out")

    def b():
        with study_lock(url, "s"):
            events.append("b in")

    ta = threading.Thread(target=a)
    ta.start()
    a_in.wait(10)
    tb = threading.Thread(target=b)
    tb.start()
    tb.join(1.0)  # without the lock b would be in by now
    release.set()
    ta.join()
    tb.join()
    assert events == ["a in", "a out", "b in"]


def test_shared_study_id_ignores_the_password_and_needs_a_study_name():
    a = SharedStudy("postgresql://u:secret@db:5432/optuna", "s")
    b = SharedStudy("postgresql://u:other@db:5432/optuna", "s")
    assert a.sweep_id == b.sweep_id != SharedStudy("postgresql://u@db:5432/optuna", "t").sweep_id
    assert "secret" not in a.sweep_id


def _compose(overrides):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return GlobalHydra.instance().hydra.compose_config("config", list(overrides), run_mode=RunMode.MULTIRUN)


def test_plugins_compose_and_are_discovered():
    from hydra.core.plugins import Plugins

    cfg = _compose(["hparams_search=logreg_mlsmote", "hydra/launcher=mltc_ray", "hydra.launcher.address=auto",
                    "hydra.sweeper.storage=sqlite:///x.db", "hydra.sweeper.study_name=s"])
    assert cfg.hydra.sweeper._target_.endswith("mltc_optuna_sweeper.optuna_sweeper.MltcOptunaSweeper")
    assert cfg.hydra.sweeper.n_trials == 20 and cfg.hydra.sweeper.sampler.seed == cfg.seed
    assert cfg.hydra.launcher._target_.endswith("mltc_ray_launcher.ray_launcher.MltcRayLauncher")
    assert cfg.hydra.launcher.address == "auto" and cfg.hydra.launcher.num_cpus == 1
    assert SharedStudy.from_config(cfg) == SharedStudy("sqlite:///x.db", "s")
    assert SharedStudy.from_config(_compose(["hparams_search=logreg_mlsmote"])) is None
    names = set(Plugins.instance().class_name_to_class)
    assert {"hydra_plugins.mltc_optuna_sweeper.optuna_sweeper.MltcOptunaSweeper",
            "hydra_plugins.mltc_ray_launcher.ray_launcher.MltcRayLauncher"} <= names


def test_a_storage_without_a_study_name_is_refused():
    cfg = _compose(["hparams_search=logreg_mlsmote", "hydra.sweeper.storage=sqlite:///x.db",
                    "hydra.sweeper.study_name=null"])
    with pytest.raises(ValueError, match="study_name"):
        SharedStudy.from_config(cfg)


@pytest.mark.slow  # two sweeps in subprocesses
def test_a_rerun_on_a_sqlite_study_adds_no_trial(tmp_path):
    import optuna

    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = [sys.executable, "-m", "mltc.cli", "run", "-m", "dataset.n_docs=300", "dataset.n_labels=5",
           "hparams_search=logreg_mlsmote", "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={db}",
           "hydra.sweeper.study_name=s", f"tracking.uri=sqlite:///{tmp_path / 'store.db'}"]
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # n_trials is the study's size: the second run found it complete
    assert len(optuna.load_study(study_name="s", storage=open_storage(db)).get_trials()) == 2
