from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class MltcOptunaSweeper(Sweeper):
    """Hydra's Optuna sweeper; with a storage, ``n_trials`` counts the trials of all workers of the study."""

    def __init__(self, sampler: Any, direction: Any, storage: Optional[Any], study_name: Optional[str],
                 n_trials: int, n_jobs: int, max_failure_rate: float, search_space: Optional[DictConfig],
                 custom_search_space: Optional[str], params: Optional[DictConfig]) -> None:
        from ._impl import SharedStudySweeperImpl

        self.sweeper = SharedStudySweeperImpl(sampler, direction, storage, study_name, n_trials, n_jobs,
                                              max_failure_rate, search_space, custom_search_space, params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
