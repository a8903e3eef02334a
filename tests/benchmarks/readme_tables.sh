#!/usr/bin/env bash
# Regenerate the README's Results tables from tracked runs: run the sweeps and overlays behind them
# (skipping what the store already has), then print each table with `mltc compare`.
#
#   bash tests/benchmarks/readme_tables.sh            # runs + tables (hours on a 2-core machine)
#   bash tests/benchmarks/readme_tables.sh --tables   # tables only, from the runs already in the store
#
# Environment: MLTC_DATA_DIR (default ../shared/data), MLTC_RUNS_DIR / MLFLOW_TRACKING_URI (the store),
# OUT (where the tables go; default runs/readme_tables). Each table is written to $OUT/<table>.md with
# its command; the full reports (leaderboard.md/csv, significance.csv, report.html) to $OUT/reports/<table>/.
# Sweeps resume: finished jobs are skipped. Single overlay runs are skipped when the store already has a
# FINISHED run of that overlay outside sweeps.
set -uo pipefail
cd "$(dirname "$0")/../.."
export MLTC_DATA_DIR="${MLTC_DATA_DIR:-$(cd .. && pwd)/shared/data}"
OUT="${OUT:-runs/readme_tables}"
mkdir -p "$OUT/reports"
# the repository's virtual environment when there is one (make install), else whatever is on PATH
if [[ -x .venv/bin/mltc ]]; then MLTC="${MLTC:-.venv/bin/mltc}"; PY="${PY:-.venv/bin/python}"; fi
MLTC="${MLTC:-mltc}"
PY="${PY:-python}"
TABLES_ONLY=0
[[ "${1:-}" == "--tables" ]] && TABLES_ONLY=1

STRATEGIES=none,ml_ros,ml_rus,lp_ros,lp_rus,mlsmote,remedial,mlsol,mlenn,remedial_mlsmote,mlrus_mlros
RESAMPLING="micro_f1,macro_f1,tail_micro_f1,tail_macro_f1,rows_after,mean_ir,scumble,resample_s"
MODELS_R="reuters_huang_svm,reuters_huang_logreg,reuters_huang_svm_balanced,reuters_huang_xgb_balanced,\
reuters_huang_lgbm_focal,reuters_huang_lgbm_db,reuters_huang_lgbm_balanced,reuters_huang_mlp,reuters_huang_mlp_focal,\
reuters_huang_mlp_db,reuters_huang_svm_mlsol_per_label,reuters_huang_svm_mlros_per_label,\
reuters_huang_svm_sublinear_mlsol_per_label"
MODELS_G="goemotions_logreg_per_label,goemotions_logreg_balanced_per_label,goemotions_mlp_per_label,\
goemotions_mlp_asl_per_label,goemotions_tfidf_minilm_lr"

have_standalone() {  # a FINISHED run of overlay $1 outside any sweep?
  "$PY" - "$1" <<'PY'
import os, sys
from mlflow.tracking import MlflowClient
from mltc.paths import default_tracking_uri
c = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri())
ids = [e.experiment_id for e in c.search_experiments()]
f = (f"tags.`mltc.experiment` = '{sys.argv[1]}' and attributes.status = 'FINISHED' "
     "and tags.`mlflow.parentRunId` IS NULL")
sys.exit(0 if ids and c.search_runs(ids, filter_string=f, max_results=1) else 1)
PY
}

overlay() {  # one standalone run per overlay, unless the store has it
  local e
  for e in ${1//,/ }; do
    if have_standalone "$e"; then echo "skip $e (already in the store)"; else $MLTC run experiment="$e"; fi
  done
}

table() {  # name, note, mltc compare arguments...
  local name=$1 note=$2
  shift 2
  {
    printf '# %s\n\n%s\n\n```bash\nmltc compare %s\n```\n\n' "$name" "$note" "$*"
    $MLTC compare "$@" --table-only --no-log --out "$OUT/reports/$name" 2>>"$OUT/compare.log" \
      || echo "(no runs for this table yet: see $OUT/compare.log)"
  } > "$OUT/$name.md"
  cat "$OUT/$name.md"; echo
}

if [[ $TABLES_ONLY == 0 ]]; then
  # Resampling strategies (11 jobs each; Reuters ~6 min, GoEmotions ~30 min on 2 cores)
  $MLTC run -m experiment=reuters_huang_svm strategy=$STRATEGIES
  $MLTC run -m experiment=goemotions_logreg strategy=$STRATEGIES
  # Published baselines: the protocol runs, and the Reuters baseline over validation seeds 1-5
  overlay reuters_huang_svm,goemotions_logreg,goemotions_logreg_tuned
  $MLTC run -m experiment=reuters_huang_svm split.random_state=1,2,3,4,5
  # Models, class weights and losses (boosted and MLP rows take minutes each)
  overlay "$MODELS_R"
  overlay "$MODELS_G"
fi

table resampling_reuters "Reuters-21578, Huang protocol, one run per strategy (sweep cfafe480b240: the id of the sweep above)." \
  --experiment reuters21578 --sweep cfafe480b240 --by strategy --sort run --percent --bold-best --metrics "$RESAMPLING"
table resampling_goemotions "GoEmotions, TF-IDF + logistic regression, threshold 0.3, one run per strategy (sweep 1d525f82c9b4)." \
  --experiment goemotions --sweep 1d525f82c9b4 --by strategy --sort run --percent --bold-best --metrics "$RESAMPLING"
table published_baselines "The published protocols, one run each; wall s = the pipeline's wall time (sum of its stage timings; process start-up and logging left out)." \
  --sweep none --by experiment --filter experiment=reuters_huang_svm,goemotions_logreg,goemotions_logreg_tuned \
  --order reuters_huang_svm,goemotions_logreg,goemotions_logreg_tuned --percent \
  --metrics "micro_f1:micro-F1,macro_f1:macro-F1,tail_f1,wall_s"
table reuters_val_seeds_mean "reuters_huang_svm, mean ± s.d. over validation seeds 1-5." \
  --experiment reuters21578 --filter experiment=reuters_huang_svm --filter params.split.random_state=1,2,3,4,5 \
  --filter strategy=none --by experiment --percent --metrics "micro_f1,macro_f1,tail_f1,wall_s"
table reuters_val_seeds "reuters_huang_svm per validation seed (123 is the published one)." \
  --experiment reuters21578 --filter experiment=reuters_huang_svm --filter params.split.random_state=123,1,2,3,4,5 \
  --filter strategy=none --by params.split.random_state --order 123,1,2,3,4,5 --percent \
  --metrics "micro_f1:micro,macro_f1:macro,head_micro_f1/head_macro_f1:head micro / macro,medium_micro_f1/medium_macro_f1:medium micro / macro,tail_micro_f1/tail_macro_f1:tail micro / macro"
table models_reuters "Reuters, Huang protocol, one run per overlay; head / medium / tail are macro-F1." \
  --experiment reuters21578 --sweep none --by experiment --filter "experiment=$MODELS_R" --order "$MODELS_R" --percent \
  --metrics "micro_f1:micro,macro_f1:macro,head,medium,tail,fit_s,wall_s"
table models_goemotions "GoEmotions (official split), one run per overlay; head / medium / tail are macro-F1." \
  --experiment goemotions --sweep none --by experiment --filter "experiment=$MODELS_G" --order "$MODELS_G" --percent \
  --metrics "micro_f1:micro,macro_f1:macro,head,medium,tail,fit_s"
echo "tables written to $OUT/"
