"""The shared-study loop; everything else (search space, trials' overrides, samplers) is Hydra's Optuna sweeper."""
import functools
import logging
from typing import Any, Dict, List, Optional

import optuna
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import OmegaConf

from mltc.studies import SharedStudy, open_storage, storage_url, worker_seed

log = logging.getLogger(__name__)

_WORKERS_ATTR = "mltc.workers"


class SharedStudySweeperImpl(OptunaSweeperImpl):
    def sweep(self, arguments: List[str]) -> None:
        if self.storage is None:
            return super().sweep(arguments)  # one process, an in-memory study: Hydra's sweeper as it is
        assert self.config is not None and self.launcher is not None
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            raise ValueError("the grid sampler cannot be shared by several workers of one study (each would walk "
                             "the whole grid); use a basic sweep (`mltc run -m a=1,2 b=x,y`) on a Ray cluster, or "
                             "another sampler")
        distributions, fixed_params = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            distributions = {**self.search_space_distributions, **distributions}
        for name in fixed_params:
            distributions.pop(name, None)
        directions = self._get_directions()

        shared = SharedStudy(url=storage_url(self.storage), name=str(self.study_name))
        backend = open_storage(shared.url)
        with shared.lock():
            study = optuna.create_study(study_name=shared.name, storage=backend, sampler=self.sampler,
                                        directions=directions, load_if_exists=True)
            index = int(study.user_attrs.get(_WORKERS_ATTR, 0))
            study.set_user_attr(_WORKERS_ATTR, index + 1)
        study.sampler = self._worker_sampler(index)
        log.info("Study %r on %s: worker %d, %d trials in all, shared by every worker", shared.name,
                 shared.sweep_id, index, self.n_trials)

        while True:
            with shared.lock():  # count and ask at once: no two workers can take the last trial
                n_asked = len(backend.get_all_trials(study._study_id, deepcopy=False))
                batch = min(self.n_jobs, self.n_trials - n_asked)
                if batch <= 0:
                    break
                trials = [study.ask() for _ in range(batch)]
            overrides = self._configure_trials(trials, distributions, fixed_params)
            # the job number is the trial number: unique across workers (tags, output directories)
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            self._tell(study, trials, returns, len(directions))

        done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        log.info("Study %r holds %d trials (%d complete); this worker is done", shared.name, n_asked, len(done))
        if done and len(directions) == 1:
            best = study.best_trial
            results: Dict[str, Any] = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info("Best parameters so far: %s (value %s)", best.params, best.value)
        elif done:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                       for t in study.best_trials]}
        else:
            return
        OmegaConf.save(OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")

    def _worker_sampler(self, index: int):
        """The sampler, seeded ``seed + index``: workers with one seed would otherwise propose the same trials."""
        cfg = self.config.hydra.sweeper.get("sampler")
        if cfg is None or cfg.get("seed") is None:
            return self.sampler
        return instantiate(cfg, seed=worker_seed(cfg.seed, index))

    def _tell(self, study, trials, returns, n_directions: int) -> None:
        """Hydra's Optuna sweeper's bookkeeping of a batch: tell each result, fail on too many failures."""
        failures = []
        for trial, ret in zip(trials, returns):
            values: Optional[List[float]] = None
            try:
                value = ret.return_value
                values = [float(value)] if n_directions == 1 else [float(v) for v in value]
                if len(values) != n_directions:
                    raise ValueError(f"{len(values)} values returned for {n_directions} objectives")
                study.tell(trial=trial, state=optuna.trial.TrialState.COMPLETE, values=values)
            except Exception as e:  # noqa: BLE001 -- the trial is marked FAIL in the study, as Hydra's does
                study.tell(trial=trial, state=optuna.trial.TrialState.FAIL, values=None)
                log.warning("Failed experiment: %s", e)
                failures.append(e)
        if len(failures) / len(returns) > self.max_failure_rate:
            log.error("Failed %d times out of %d with max_failure_rate=%s.", len(failures), len(returns),
                      self.max_failure_rate)
            for ret in returns:
                ret.return_value  # raises the failed job's error, with its traceback
