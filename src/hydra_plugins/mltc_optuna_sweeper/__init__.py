"""Hydra's Optuna sweeper, for studies that several workers share through one database.

``hydra/sweeper=mltc_optuna`` takes the same settings as ``optuna`` (it is that sweeper: same
search space, sampler, batches). With ``hydra.sweeper.storage`` set, ``n_trials`` is the size of
the whole study, shared by every worker that runs the same command: each worker asks for trials
under a lock until the study holds ``n_trials`` of them, so N workers run exactly ``n_trials``
trials between them. Without a storage it behaves exactly as ``optuna``.
"""
