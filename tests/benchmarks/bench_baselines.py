"""Published baselines on their protocols, with the spread over validation seeds.

Run: MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_baselines.py [experiment ...]
(default: reuters_huang_svm over validation seeds 123, 1, 2, 3, 4, 5). Prints a Markdown table.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from hydra import compose, initialize_config_dir

from mltc.app import CONF_DIR, run_config

KEYS = ["micro_f1", "macro_f1", "head_micro_f1", "head_macro_f1", "medium_micro_f1", "medium_macro_f1",
        "tail_micro_f1", "tail_macro_f1"]


def run(experiment: str, overrides=()):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", "tracking=none", *overrides])
    t = time.perf_counter()
    _, res = run_config(cfg)
    return res.metrics, time.perf_counter() - t


def main(argv):
    experiments = argv or ["reuters_huang_svm"]
    print("| experiment | val seed | " + " | ".join(KEYS) + " | wall s |")
    print("|---" * (len(KEYS) + 3) + "|")
    for exp in experiments:
        rows = []
        for seed in (123, 1, 2, 3, 4, 5):
            m, wall = run(exp, [f"split.random_state={seed}"])
            rows.append([100 * m.get(k, np.nan) for k in KEYS])
            print(f"| {exp} | {seed} | " + " | ".join(f"{v:.2f}" for v in rows[-1]) + f" | {wall:.0f} |", flush=True)
        arr = np.array(rows[1:])
        print(f"| {exp} | mean ± s.d. (seeds 1-5) | " + " | ".join(
            f"{a:.2f} ± {s:.2f}" for a, s in zip(arr.mean(0), arr.std(0, ddof=1))) + " | |")


if __name__ == "__main__":
    main(sys.argv[1:])
