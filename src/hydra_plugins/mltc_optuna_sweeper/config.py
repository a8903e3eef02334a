from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class MltcOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.mltc_optuna_sweeper.optuna_sweeper.MltcOptunaSweeper"
    # trials a worker launches at a time (the launcher may run them in parallel); workers share n_trials
    n_jobs: int = 1


ConfigStore.instance().store(group="hydra/sweeper", name="mltc_optuna", node=MltcOptunaSweeperConf,
                             provider="mltc")
