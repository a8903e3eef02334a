"""A Hydra launcher that runs each job of a sweep as a Ray task (``hydra/launcher=mltc_ray``).

Built on Ray's public API only (``ray.init``, ``ray.remote``, ``ray.wait``), so it installs beside
any Ray release without the pins of ``hydra-ray-launcher``. Shaped like Hydra's joblib launcher:
each job loads its sweep config and runs ``run_job`` in a Ray worker; a job that fails, or is lost
with its node, comes back as a failed job and does not stop the others.
"""
