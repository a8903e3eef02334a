import logging
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class MltcRayLauncher(Launcher):
    """Run a sweep's jobs as Ray tasks, each asking for ``num_cpus`` (and ``num_gpus``) of a node."""

    def __init__(self, address: Optional[str] = None, num_cpus: float = 1, num_gpus: float = 0,
                 max_retries: int = 0, env: Optional[List[str]] = None,
                 init: Optional[Dict[str, Any]] = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.env = list(env or [])
        self.init = dict(init or {})
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from . import _core

        return _core.launch(launcher=self, job_overrides=job_overrides, initial_job_idx=initial_job_idx)
