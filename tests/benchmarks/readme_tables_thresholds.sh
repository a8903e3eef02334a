#!/usr/bin/env bash
# Regenerate the README's "Decision thresholds" tables, its augmentation tables and its GoEmotions text-features
# table from tracked runs: every row is a job of a real `mltc run -m` sweep logged to the store, and the tables are
# printed by `mltc compare`.
#
#   bash tests/benchmarks/readme_tables_thresholds.sh             # sweeps + tables (~35 min on 2 cores)
#   bash tests/benchmarks/readme_tables_thresholds.sh --tables    # tables only, from the runs in the store
#   bash tests/benchmarks/readme_tables_thresholds.sh reuters     # one table: goemotions | reuters |
#                                 # augment_reuters | augment_goemotions | augment_goemotions_6k | features_goemotions_6k
#
# Setting (as tests/benchmarks/bench_thresholds.py): TF-IDF (sublinear, word 1-2 grams, min_df=2) + one-vs-rest
# logistic regression (C=4, liblinear) = `model=logreg`; GoEmotions on its official train/dev/test split,
# Reuters-21578 ModApte with 1,000 random training documents held out for validation (seed 0).
# Augmentation (as tests/benchmarks/bench_text_augment.py --dataset reuters --percentage 25): the same model with
# per-label thresholds, seed 0 (validation: 10% of training, iterative stratification), every text augmentation
# with the ML-ROS budget (25% new documents at most, minority labels only). GoEmotions augmentation: the same on
# the full official training split with a 10% budget (the bench's 6,000-comment subset has no config option);
# back-translation left out there (thousands of documents at ~5-10 documents/s). augment_goemotions_6k: the same on
# the bench's 6,000-comment random subset of the official training split (split.train_size=6000
# split.train_method=random: the rows of `bench_text_augment.py --dataset goemotions --train-size 6000`; dev and test
# whole), back-translation included.
# Text features (as tests/benchmarks/bench_text_goemotions.py --train-size 6000): TF-IDF, MiniLM embeddings and both
# side by side, each with logistic regression (C=4) and per-label thresholds on the same 6,000-comment subset, seed 0.
#
# Each row is told apart by its run name (`run_name=...`, logged as params.run_name; it does not enter the
# config hash). The sweeps run with tracking.resume=false: resume matches jobs by config hash, and some rows
# share their configuration with runs of other tables (GoEmotions `fixed 0.3` is experiment=goemotions_logreg),
# so a resumed job would be skipped and leave no run under this run name. The table keeps the latest run of
# each configuration.
#
# Environment: MLTC_DATA_DIR (default ../shared/data), MLTC_RUNS_DIR / MLFLOW_TRACKING_URI (the store),
# OUT (where the tables go; default runs/readme_tables), WAIT_WHILE (a file: before each sweep, wait while it
# exists, for machines shared with timing runs).
set -uo pipefail
cd "$(dirname "$0")/../.."
export MLTC_DATA_DIR="${MLTC_DATA_DIR:-$(cd .. && pwd)/shared/data}"
OUT="${OUT:-runs/readme_tables}"
mkdir -p "$OUT/reports"
if [[ -x .venv/bin/mltc ]]; then MLTC="${MLTC:-.venv/bin/mltc}"; fi
MLTC="${MLTC:-mltc}"
TABLES_ONLY=0
DATASETS="goemotions reuters augment_reuters augment_goemotions augment_goemotions_6k features_goemotions_6k"
for a in "$@"; do
  case $a in
    --tables) TABLES_ONLY=1 ;;
    goemotions|reuters|augment_reuters|augment_goemotions|augment_goemotions_6k|features_goemotions_6k) DATASETS=$a ;;
    *) echo "usage: $0 [--tables] [${DATASETS// /|}]" >&2; exit 2 ;;
  esac
done

# the rows, in table order (the values of params.run_name)
RULES="fixed 0.5,fixed 0.3,global micro_f1,global macro_f1,per_label,per_label shrinkage=5,per_label_cv,scut,pcut,\
rcut k=1,rcut k=2,mcut"
COLUMNS="macro_f1:macro-F1,micro_f1:micro-F1,tail_macro_f1:tail macro-F1,head_macro_f1:head macro-F1,wall_s"
AUGMENTS="none,random_swap,eda,wordnet,glove,back_translation"
AUG_COLUMNS="tail_macro_f1:tail macro-F1,macro_f1:macro-F1,micro_f1:micro-F1,n_train->n_train_fit:train docs:.0f,\
time_augment:augment s:.1f"
FEATURES="tfidf,minilm,tfidf+minilm"
FEATURE_COLUMNS="macro_f1:macro-F1,micro_f1:micro-F1,tail_macro_f1:tail F1,time_featurize:featurize s:.0f,wall_s"
SUBSET="split.train_size=6000 split.train_method=random"  # the benchmark scripts' --train-size 6000 rows

declare -A BASE=(
  [goemotions]="dataset=goemotions model=logreg"
  [reuters]="dataset=reuters21578 model=logreg split.val_size=1000 split.val_method=random split.random_state=0"
  [augment_reuters]="dataset=reuters21578 model=logreg thresholds=per_label seed=0"
  [augment_goemotions]="dataset=goemotions model=logreg thresholds=per_label seed=0"
  [augment_goemotions_6k]="dataset=goemotions $SUBSET model=logreg thresholds=per_label seed=0"
  [features_goemotions_6k]="dataset=goemotions $SUBSET model=logreg thresholds=per_label seed=0"
)
declare -A AUG_PERCENT=([augment_reuters]=25 [augment_goemotions]=10 [augment_goemotions_6k]=10)
declare -A AUG_OPS=([augment_reuters]="$AUGMENTS" [augment_goemotions]="none,random_swap,eda,wordnet,glove"
                    [augment_goemotions_6k]="$AUGMENTS")
declare -A AUG_EXPERIMENT=([augment_reuters]=reuters21578 [augment_goemotions]=goemotions
                           [augment_goemotions_6k]=goemotions)
# which training rows: all of them (also runs logged before split.train_size existed), or the 6,000-comment subset
declare -A AUG_ROWS=([augment_reuters]="--filter params.split.train_size=None"
                     [augment_goemotions]="--filter params.split.train_size=None"
                     [augment_goemotions_6k]="--filter params.split.train_size=6000 --filter params.split.train_method=random")
declare -A AUG_NOTE=([augment_reuters]="" [augment_goemotions]=""
                     [augment_goemotions_6k]=", 6,000-comment random subset of the training split (dev and test whole)")
declare -A FILTERS=(
  [goemotions]="--experiment goemotions"
  [reuters]="--experiment reuters21578 --filter params.split.random_state=0 --filter params.split.val_size=1000"
)

sweep() {  # one `mltc run -m` sweep: base overrides of data set $1, then the sweep's own overrides
  local ds=$1
  shift
  if [[ -n "${WAIT_WHILE:-}" ]]; then while [[ -e "$WAIT_WHILE" ]]; do sleep 15; done; fi
  # shellcheck disable=SC2086  # BASE holds several overrides
  echo "+ mltc run -m ${BASE[$ds]}$(shell_words "$@") tracking.resume=false"
  $MLTC run -m ${BASE[$ds]} "$@" tracking.resume=false || echo "sweep failed: $*" >&2
}

sweeps() {  # every rule on data set $1: five sweeps, 12 runs
  local ds=$1
  # shellcheck disable=SC2016  # ${...} are Hydra interpolations: the run name shows the swept value
  sweep "$ds" thresholds=fixed thresholds.threshold=0.5,0.3 'run_name="fixed ${thresholds.threshold}"'
  # shellcheck disable=SC2016
  sweep "$ds" thresholds=global thresholds.metric=micro_f1,macro_f1 'run_name="global ${thresholds.metric}"'
  # shellcheck disable=SC2016
  sweep "$ds" thresholds=per_label,per_label_cv,scut,pcut,mcut 'run_name=${hydra:runtime.choices.thresholds}'
  sweep "$ds" thresholds=per_label thresholds.shrinkage=5 'run_name="per_label shrinkage=5"'
  # shellcheck disable=SC2016
  sweep "$ds" thresholds=rcut thresholds.k=1,2 'run_name="rcut k=${thresholds.k}"'
}

shell_words() {  # the arguments as one could paste them: quoted where the shell needs it
  local a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./=,:+-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "$a"; fi
  done
}

augment_sweeps() {  # $1: augment_<data set>; no augmentation (a group cannot sweep over null), then the others
  local ops=${AUG_OPS[$1]}
  sweep "$1" 'run_name="none"'
  # shellcheck disable=SC2016
  # augment.percentage as a one-value sweep: a plain override would be applied to the primary config, where the
  # augment group is null, and Hydra rejects it
  sweep "$1" "augment=${ops#none,}" "augment.percentage=choice(${AUG_PERCENT[$1]})" \
    'run_name=${hydra:runtime.choices.augment}'
}

table() {  # name, note, mltc compare arguments...
  local name=$1 note=$2
  shift 2
  {
    printf '# %s\n\n%s\n\n```bash\nmltc compare%s\n```\n\n' "$name" "$note" "$(shell_words "$@")"
    $MLTC compare "$@" --table-only --no-log --out "$OUT/reports/$name" 2>>"$OUT/compare.log" \
      || echo "(no runs for this table yet: see $OUT/compare.log)"
  } > "$OUT/$name.md"
  cat "$OUT/$name.md"; echo
}

for ds in $DATASETS; do
  if [[ $ds == features_goemotions_6k ]]; then
    # shellcheck disable=SC2016
    [[ $TABLES_ONLY == 0 ]] && sweep "$ds" "features=$FEATURES" 'run_name=${hydra:runtime.choices.features}'
    table "$ds" "Text features on goemotions, 6,000-comment random subset of the training split (dev and test \
whole): logistic regression (C=4), per-label thresholds, seed 0; featurize s = featurizing train, dev and test \
(MiniLM embeddings read from the disk cache where present); wall s = the pipeline's wall time." \
      --experiment goemotions --filter params.split.train_size=6000 --filter params.split.train_method=random \
      --filter model=logreg --filter strategy=none --filter thresholds=per_label --filter params.seed=0 \
      --filter "params.run_name=$FEATURES" --by params.run_name:features --order "$FEATURES" --sort run \
      --metrics "$FEATURE_COLUMNS" --digits 3 --bold-best
    continue
  fi
  if [[ $ds == augment_* ]]; then
    [[ $TABLES_ONLY == 0 ]] && augment_sweeps "$ds"
    # shellcheck disable=SC2086  # AUG_ROWS holds several arguments
    table "$ds" "Text augmentation on ${AUG_EXPERIMENT[$ds]}${AUG_NOTE[$ds]} (TF-IDF + logistic regression, \
per-label thresholds, seed 0), ML-ROS budget ${AUG_PERCENT[$ds]}%; train docs before -> after augmentation; augment \
s = the augmentation's time (near 0 when its rewrites were cached)." \
      --experiment "${AUG_EXPERIMENT[$ds]}" --filter model=logreg --filter strategy=none --filter thresholds=per_label \
      --filter params.seed=0 ${AUG_ROWS[$ds]} --filter "params.run_name!=None" \
      --filter "params.run_name=${AUG_OPS[$ds]}" --by params.run_name:augmentation --order "${AUG_OPS[$ds]}" \
      --sort run --metrics "$AUG_COLUMNS" --digits 3 --bold-best
    continue
  fi
  [[ $TABLES_ONLY == 0 ]] && sweeps "$ds"
  # shellcheck disable=SC2086  # FILTERS holds several arguments
  table "thresholds_$ds" "Decision rules on $ds: TF-IDF + logistic regression (C=4), one run per rule; wall s = the \
pipeline's wall time (per_label_cv refits the model on 5 folds)." \
    ${FILTERS[$ds]} --filter model=logreg --filter strategy=none --filter features=tfidf \
    --filter "params.run_name!=None" --filter "params.run_name=$RULES" --by params.run_name --order "$RULES" \
    --sort run --metrics "$COLUMNS" --digits 3 --bold-best
done
echo "tables written to $OUT/"
