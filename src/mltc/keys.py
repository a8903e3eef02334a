"""Names shared by the runner (what it logs) and ``mltc compare`` (what it reads): one table each.

Kept free of MLflow, Hydra and pandas so that both sides import it for nothing.
"""
from __future__ import annotations

__all__ = ["LATER_OPTIONS", "later_defaults", "VAL", "TIME", "THRESHOLD", "SWEEP_LINK", "sweep_link_tag"]

# Options added to the configs after runs were logged, with their defaults. A run logged before an option
# existed hashes as if it had the default (resume still finds it), and `mltc compare` reads it that way.
LATER_OPTIONS = {"dataset": {"unlabeled_path": None, "unlabeled_text_column": "text", "unlabeled_format": None,
                             "id_column": None, "group_column": None},
                 # exact_sizes=false is the split runs had before the option existed
                 "split": {"train_size": None, "train_method": "iterative", "group_column": None,
                           "exact_sizes": False},
                 "metrics": {"extra": []}}

# Prefixes of the logged metric names: validation scores, stage timings (seconds), threshold summaries.
# Imbalance profiles are ``<part>_<measure>`` (``train_mean_ir``, ``train_resampled_mean_ir``).
VAL = "val_"
TIME = "time_"
THRESHOLD = "threshold_"

# A run found by resume in a sweep is linked to that sweep by this tag (value "reused"), without moving it.
SWEEP_LINK = "mltc.sweep."


def sweep_link_tag(sweep_id: str) -> str:
    """The tag that links a reused run to the sweep ``sweep_id``."""
    return f"{SWEEP_LINK}{sweep_id}"


def later_defaults() -> dict:
    """:data:`LATER_OPTIONS` as logged params (``{"split.train_size": "None", ...}``): what MLflow stores."""
    return {f"{group}.{k}": str(v) for group, opts in LATER_OPTIONS.items() for k, v in opts.items()}
