"""Model rows on GoEmotions (official train/dev/test, 28 emotions), one saved overlay per row.

Run: MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_models_goemotions.py [row ...]
Each row is ``mltc run experiment=goemotions_<row>`` (default: all rows). Prints a Markdown table
(fit time = model fit only; head/medium/tail = training-frequency tertiles).
Reference (Demszky et al. 2020): BERT-base macro-F1 0.46 on the test set.
"""
from __future__ import annotations

import sys

from bench_models_reuters import run

ROWS = ["logreg", "logreg_tuned", "logreg_per_label", "logreg_balanced_per_label", "mlp_per_label",
        "mlp_asl_per_label", "minilm_lr", "minilm_mlp", "tfidf_minilm_lr", "stack_lr_mlp"]
# not in the default list (about 10 min on 2 CPU cores): finetune_cpu
KEYS = ["micro_f1", "macro_f1", "head_macro_f1", "medium_macro_f1", "tail_macro_f1"]


def main(argv):
    names = argv or ROWS
    print("| row | command | " + " | ".join(KEYS) + " | fit s | wall s |")
    print("|---" * (len(KEYS) + 4) + "|")
    for name in names:
        m, fit_s, wall = run([f"experiment=goemotions_{name}"])
        cells = " | ".join(f"{100 * m.get(k, float('nan')):.2f}" for k in KEYS)
        print(f"| {name} | `mltc run experiment=goemotions_{name}` | {cells} | {fit_s:.0f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
