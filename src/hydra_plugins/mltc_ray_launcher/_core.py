import fnmatch
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict


log = logging.getLogger(__name__)


def _set_env(env: Dict[str, str], patterns: List[str]) -> None:
    """The launching process's variables; a worker reused across sweeps drops those the launcher no longer has."""
    for k in [k for k in os.environ if any(fnmatch.fnmatchcase(k, p) for p in patterns) and k not in env]:
        del os.environ[k]
    os.environ.update(env)


def execute_job(idx: int, overrides: Sequence[str], shared: tuple, env: Dict[str, str], patterns: List[str],
                cwd: str):
    """Run one job in a Ray worker, as Hydra's joblib launcher runs one in a joblib worker."""
    import ray

    hydra_context, config, task_function, singleton_state = shared
    _set_env(env, patterns)
    if Path(cwd).is_dir():  # the same machine or a shared file system: relative paths mean what they meant
        os.chdir(cwd)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    ret = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    return ret, ray.get_runtime_context().get_node_id()


def launch(launcher: Launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
           ) -> Sequence[JobReturn]:
    """Submit every job as a Ray task at once; return their results in order, a lost job as a failed one."""
    import ray

    setup_globals()
    assert launcher.config is not None and launcher.task_function is not None and launcher.hydra_context is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if not ray.is_initialized():
        init: Dict[str, Any] = {"log_to_driver": True, **launcher.init}
        ray.init(address=launcher.address, **init)
    log.info("Ray is launching %d jobs (num_cpus=%s, num_gpus=%s each) on %s; sweep output dir: %s",
             len(job_overrides), launcher.num_cpus, launcher.num_gpus, launcher.address or "a local Ray instance",
             sweep_dir)
    for i, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(overrides)))

    env = {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in launcher.env)}
    shared = ray.put((launcher.hydra_context, launcher.config, launcher.task_function, Singleton.get_state()))
    task = ray.remote(execute_job).options(num_cpus=launcher.num_cpus, num_gpus=launcher.num_gpus,
                                           max_retries=launcher.max_retries)
    refs = [task.remote(initial_job_idx + i, list(overrides), shared, env, launcher.env, os.getcwd())
            for i, overrides in enumerate(job_overrides)]
    results: List[JobReturn] = []
    for i, (ref, overrides) in enumerate(zip(refs, job_overrides)):
        num = initial_job_idx + i
        try:
            ret, node = ray.get(ref)
            log.info("job #%d %s on node %s", num, ret.status.name.lower(), node[:12])
        except ray.exceptions.RayError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            log.error("job #%d was lost (%s: %s); rerun the same command to run what is missing",
                      num, type(err).__name__, first)
            ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                            _return_value=RuntimeError(f"job #{num} was lost on the Ray cluster: "
                                                       f"{type(err).__name__}: {first}"))
        results.append(ret)
    return results
