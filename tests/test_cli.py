"""The `mltc` command: tab completion and `--cfg job` behave as Hydra users expect."""
import os
import subprocess
import sys


def mltc(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_tab_completion_lists_group_options(tmp_path):
    proc = mltc("-sc", "query=bash", env_extra={"COMP_LINE": "mltc run strategy=ml"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert "strategy=mlsmote" in words and "strategy=ml_ros" in words
    assert all(w.startswith("strategy=ml") for w in words)
    install = mltc("run", "-sc", "install=bash", cwd=tmp_path)
    assert "hydra_bash_completion mltc" in install.stdout


def test_cfg_job_prints_composed_config(tmp_path):
    proc = mltc("run", "--cfg", "job", "--resolve", "model=linear_svc", "seed=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sklearn.svm.LinearSVC" in proc.stdout and "random_state: 3" in proc.stdout
