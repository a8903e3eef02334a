"""Model x weighting x loss on Reuters-21578, Huang et al. (2021) protocol.

Run: MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_models_reuters.py [row ...]
     MLTC_DATA_DIR=../shared/data python tests/benchmarks/bench_models_reuters.py speed   (boosting fit time,
     the per-label booster before the LightGBM fix (commit OLD_REV) vs now, on the same features)
Rows are names from ROWS below (default: all; ``overlay_<name>`` rows run conf/experiment/reuters_huang_<name>.yaml). Each is the reuters_huang_svm overlay (ModApte, 1,000
validation docs, one global threshold for validation micro-F1, head >= 35 / tail <= 8) with the model
overrides listed, so the same row runs as
``mltc run experiment=reuters_huang_svm <overrides>``. Prints a Markdown table (fit time = model fit only).
Published (Huang et al. Table 2): TF-IDF+SVM 87.60 / 51.63; BERT+focal 89.97 / 56.83; BERT+DB 90.62 / 64.47.
"""
from __future__ import annotations

import sys
import time

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mltc.app import CONF_DIR
from mltc.pipeline import run_pipeline

EXPERIMENT = "reuters_huang_svm"
# boosted rows: each label's 500 top-chi2 terms, early stopping (a booster per label on 25k terms is too slow here)
FAST = ["model.max_features_per_label=500", "model.early_stopping_rounds=30"]
ROWS = {
    "svm": [],
    "svm_balanced": ["model.estimator.class_weight=balanced"],
    "logreg_balanced": ["model=logreg", "model.estimator.class_weight=balanced", "model.estimator.C=20"],
    "lgbm": ["model=lgbm", *FAST],
    "lgbm_balanced": ["model=lgbm", "model.pos_weight=balanced", *FAST],
    "lgbm_focal": ["model=lgbm", "model/loss=focal", "model.loss.alpha=null", *FAST],
    "lgbm_db": ["model=lgbm", "model/loss=db", *FAST],
    "lgbm_asl": ["model=lgbm", "model/loss=asl", *FAST],
    "xgb_cb_focal": ["model=xgb", "model/loss=cb_focal", *FAST],
    "mlp": ["model=mlp"],
    "mlp_focal": ["model=mlp", "model/loss=focal", "model.loss.alpha=null"],
    "mlp_db": ["model=mlp", "model/loss=db"],
}
# the saved overlays: `mltc run experiment=<name>` reproduces each row
OVERLAYS = ["logreg", "svm_balanced", "lgbm_balanced", "lgbm_focal", "lgbm_db", "xgb_balanced", "mlp", "mlp_focal",
            "mlp_db", "svm_mlsol_per_label", "svm_mlros_per_label", "svm_sublinear_mlsol_per_label",
            "svm_lgbm_per_label", "svm_lgbm_xgb_per_label"]
ROWS.update({f"overlay_{name}": [f"experiment=reuters_huang_{name}"] for name in OVERLAYS})
KEYS = ["micro_f1", "macro_f1", "head_macro_f1", "medium_macro_f1", "tail_micro_f1", "tail_macro_f1"]


def run(overrides, experiment=EXPERIMENT):
    # a row may name its own overlay (conf/experiment/reuters_huang_*.yaml) instead of the SVM one
    experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), experiment)
    overrides = [o for o in overrides if not o.startswith("experiment=")]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", "tracking=none", *overrides])
    t = time.perf_counter()
    ds = instantiate(cfg.dataset, _convert_="all")
    objs = {g: instantiate(cfg[g], _convert_="all") for g in ("split", "features", "strategy", "model", "thresholds")}
    res = run_pipeline(ds, splitter=objs["split"], featurizer=objs["features"], model=objs["model"],
                       strategy=objs["strategy"], thresholder=objs["thresholds"], head_min=cfg.metrics.head_min,
                       tail_max=cfg.metrics.tail_max, random_state=cfg.seed)
    return res.metrics, res.timings.get("fit", float("nan")), time.perf_counter() - t


# the last commit with the per-label booster that passed scale_pos_weight to LightGBM (micro-F1 22.83)
OLD_REV = "3d1ae79"


def _old_boosting():
    import importlib.util
    import subprocess
    import tempfile
    from pathlib import Path
    src = subprocess.run(["git", "show", f"{OLD_REV}:src/mltc/models/boosting.py"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    path = Path(tempfile.mkdtemp()) / "old_boosting.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_boosting", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.BoostedBinaryRelevance


def speed(n_labels=None):
    """Fit seconds of per-label LightGBM (balanced) on Reuters' training split: old code vs now."""
    from lightgbm import LGBMClassifier

    from mltc.models.boosting import BoostedBinaryRelevance
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=reuters_huang_svm", "tracking=none"])
    ds = instantiate(cfg.dataset, _convert_="all")
    tr = instantiate(cfg.split, _convert_="all").split(ds)["train"]
    texts, Y = [ds.texts[i] for i in tr], ds.Y[tr][:, :n_labels]
    feats = {}
    for mf in (2000, None):
        feats[mf] = instantiate(cfg.features, _convert_="all").set_params(max_features=mf).fit_transform(texts)

    def lgbm(n, lr, **kw):
        return LGBMClassifier(n_estimators=n, learning_rate=lr, min_child_samples=5, verbose=-1, n_jobs=1,
                              random_state=42, **kw)
    cases = [
        ("before the fix: 2k terms, 50 trees", _old_boosting()(lgbm(50, 0.2), pos_weight="balanced"), 2000),
        ("now: 2k terms, 50 trees", BoostedBinaryRelevance(lgbm(50, 0.2, force_col_wise=True),
                                                           pos_weight="balanced"), 2000),
        ("now: all terms, top 500 per label, <=300 trees, early stopping 30",
         BoostedBinaryRelevance(lgbm(300, 0.1, force_col_wise=True), pos_weight="balanced",
                                max_features_per_label=500, early_stopping_rounds=30, random_state=42), None),
    ]
    print(f"| LightGBM balanced, {Y.shape[1]} labels, {len(texts)} docs | fit s | ratio to the first |")
    print("|---|---|---|")
    first = None
    for name, model, mf in cases:
        t = time.perf_counter()
        model.fit(feats[mf], Y)
        s = time.perf_counter() - t
        first = first or s
        print(f"| {name} | {s:.1f} | {first / s:.2f}x |", flush=True)


def main(argv):
    if argv[:1] == ["speed"]:
        return speed(int(argv[1]) if len(argv) > 1 else None)
    names = argv or list(ROWS)
    print("| row | overrides | " + " | ".join(KEYS) + " | fit s | wall s |")
    print("|---" * (len(KEYS) + 4) + "|")
    for name in names:
        m, fit_s, wall = run(ROWS[name])
        cells = " | ".join(f"{100 * m.get(k, float('nan')):.2f}" for k in KEYS)
        print(f"| {name} | `{' '.join(ROWS[name])}` | {cells} | {fit_s:.0f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
