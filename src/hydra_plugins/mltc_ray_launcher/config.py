from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class MltcRayLauncherConf:
    _target_: str = "hydra_plugins.mltc_ray_launcher.ray_launcher.MltcRayLauncher"
    # the cluster: null starts a local Ray instance; "auto" finds a started one; or "<head ip>:<port>"
    address: Optional[str] = None
    # resources each job asks for (a job runs on a node that has them free)
    num_cpus: float = 1
    num_gpus: float = 0
    # Ray's own retries of a job whose worker or node died (0: report it as failed; rerun the sweep)
    max_retries: int = 0
    # environment variables of the launching process that every job sees (glob patterns)
    env: List[str] = field(default_factory=lambda: ["MLTC_*", "MLFLOW_*"])
    # extra keyword arguments of ray.init (e.g. runtime_env, num_cpus for a local instance)
    init: Dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/launcher", name="mltc_ray", node=MltcRayLauncherConf, provider="mltc")
