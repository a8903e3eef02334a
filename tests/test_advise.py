"""mltc advise: planning for size and budget, cross-fitted validation, the recommendation and its CIs."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mltc.advise import (ARMS, AdviseError, ArmResult, analyse, bootstrap_gain, cross_fit, objective_fn, plan_portfolio,
                         promote_target, render)
from mltc.stats import paired_bootstrap
from mltc.thresholds import FixedThreshold, PerLabelThreshold

PLAN = dict(n_val=500, budget_s=1800, job_s=10.0, has_class_weight=True, has_text_extra=True, features="tfidf")


def test_plan_adapts_to_data_size():
    small = plan_portfolio(n_train=1200, **PLAN)
    assert small.seeds == [42, 0, 1, 2, 3]  # small data: five validation carves
    assert "mlsmote" in small.arms
    large = plan_portfolio(n_train=60000, **PLAN)
    assert large.seeds == [42, 0]
    assert "mlsmote" not in large.arms and "neighbour search" in large.skipped["mlsmote"]
    assert large.arms[:3] == ["plain", "per_label", "global"]


def test_plan_respects_budget_extras_and_model():
    tight = plan_portfolio(n_train=60000, **{**PLAN, "budget_s": 90})
    # the baseline and the default rule always run; the rest only within budget
    assert tight.arms == ["plain", "per_label", "global"] or tight.arms[:2] == ["plain", "per_label"]
    assert all("over budget" in tight.skipped[a] for a in ("ml_ros", "lp_ros"))
    assert tight.estimate_s <= 90 + ARMS["per_label"].cost * 10 * 2
    no_text = plan_portfolio(n_train=60000, **{**PLAN, "has_text_extra": False, "has_class_weight": False})
    assert "fusion" not in no_text.arms and "mltc[text]" in no_text.skipped["fusion"]
    assert "balanced" not in no_text.arms and "class_weight" in no_text.skipped["balanced"]
    slow_embed = plan_portfolio(n_train=60000, **PLAN, encode_s=5000)
    assert "fusion" not in slow_embed.arms and "over budget" in slow_embed.skipped["fusion"]
    score_only = plan_portfolio(n_train=60000, **PLAN, skip={"global": "no threshold can be tuned for p_at_1",
                                                               "per_label": "ignored: always runs"})
    assert "global" not in score_only.arms and "per_label" in score_only.arms
    with pytest.raises(AdviseError, match="no validation documents"):
        plan_portfolio(n_train=100, **{**PLAN, "n_val": 0})
    with pytest.raises(AdviseError, match="unknown arm"):
        plan_portfolio(n_train=100, **PLAN, arms=["per_label", "smote"])


def _scores(n=400, L=5, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < [0.4, 0.2, 0.1, 0.05, 0.03]).astype(np.int8)
    S = np.clip(0.25 * Y + 0.8 * rng.random((n, L)), 0, 1)
    return Y, S


def test_cross_fit_never_uses_a_documents_own_label():
    Y, S = _scores()
    P = cross_fit(PerLabelThreshold(), S, Y, random_state=1)
    rng = np.random.default_rng(2)
    for i in rng.choice(len(Y), 8, replace=False):
        Y2 = Y.copy()
        Y2[i] = 1 - Y2[i]
        assert np.array_equal(cross_fit(PerLabelThreshold(), S, Y2, random_state=1)[i], P[i])
    # tuned on all of validation, the same rule does see each label: some flipped document changes its own prediction
    changed = 0
    for i in np.flatnonzero(Y[:, 4])[:8]:
        Y2 = Y.copy()
        Y2[i, 4] = 0
        changed += PerLabelThreshold().fit(S, Y2).predict(S)[i, 4] != PerLabelThreshold().fit(S, Y).predict(S)[i, 4]
    assert changed > 0
    # a rule that learns nothing from validation is just applied
    assert np.array_equal(cross_fit(FixedThreshold(), S, Y), (S >= 0.5).astype(np.int8))


def _results():
    out = {}
    for name, quality in (("plain", 0.0), ("per_label", 0.6), ("ml_ros", 0.6), ("global", 0.3)):
        arm = ArmResult(name, {}, {}, 60.0, 0.0)
        for seed in (42, 0):
            Y, S = _scores(seed=seed)
            rng = np.random.default_rng(seed + 10)
            # quality q: the prediction is the gold label with probability 0.5 + q / 2, else a coin flip
            keep = rng.random(Y.shape) < quality
            noise = (rng.random(Y.shape) < 0.3).astype(np.int8)
            P = np.where(keep, Y, noise).astype(np.int8)
            if name == "ml_ros":
                P = out["per_label"].blocks[seed][1].copy()  # the same predictions: no gain
            arm.blocks[seed] = (Y, P, S)
        out[name] = arm
    return out


@pytest.mark.parametrize("objective", ["macro_f1", "jaccard_samples_zd1"])
def test_analyse_recommends_the_best_arm_with_cis_by_family(objective):
    rec = analyse(_results(), objective, n_boot=300)
    fn = objective_fn(objective)
    assert rec["best"] in ("per_label", "ml_ros")
    assert rec["table"][0]["val"] == pytest.approx(_results()["per_label"].score(fn))
    assert rec["gain"]["lo"] > 0 and rec["gain"]["delta"] > 0
    fam = {f["family"]: f for f in rec["families"]}
    assert fam["thresholds"]["ref"] == "plain" and fam["thresholds"]["verdict"] == "helped"
    # resampling is measured against the arm it adds to: identical predictions, zero gain
    assert fam["resampling"]["ref"] == "per_label"
    assert fam["resampling"]["delta"] == 0 and fam["resampling"]["verdict"] == "no clear gain"


def test_a_gain_that_is_not_clear_gives_way_to_the_simpler_arm():
    res = _results()
    Y, P, S = res["ml_ros"].blocks[42]
    P = P.copy()
    fix = np.argwhere(P != Y)[:3]  # three more correct cells: the highest score, far from a clear gain
    P[fix[:, 0], fix[:, 1]] = Y[fix[:, 0], fix[:, 1]]
    res["ml_ros"].blocks[42] = (Y, P, S)
    rec = analyse(res, "macro_f1", n_boot=300)
    assert rec["best_by_score"] == "ml_ros" and rec["best"] == "per_label"
    assert rec["simplified"][0]["from"] == "ml_ros" and rec["simplified"][0]["lo"] <= 0
    # a clear gain is kept: per_label over plain
    assert rec["gain"]["lo"] > 0


def test_the_printed_promote_command_names_the_recommended_arms_first_seed_run():
    res = _results()
    for name, arm in res.items():
        arm.run_ids = {seed: f"run-{name}-{seed}" for seed in arm.blocks}
    rec = analyse(res, "macro_f1", n_boot=200)
    rec.update(n_runs=8, best_overrides=f"+portfolio/arm={rec['best']}", sweep_id="s1")
    rec["promote_seed"], rec["promote_run"] = promote_target(res[rec["best"]], [42, 0])
    text = render(rec)
    assert f"mltc promote --run run-{rec['best']}-42 " in text and "--sweep" not in text
    # the plan's seed order decides, not dict order; a seed without a run is passed over
    del res[rec["best"]].run_ids[42]
    assert promote_target(res[rec["best"]], [42, 0, 1]) == (0, f"run-{rec['best']}-0")
    res["plain"].run_ids = {}
    with pytest.raises(AdviseError, match="plain has no finished run"):
        promote_target(res["plain"], [42, 0])


def test_bootstrap_gain_uses_the_stats_module_for_f1_and_agrees_elsewhere():
    res = _results()
    blocks = [(*res["per_label"].blocks[s], *res["plain"].blocks[s][1:]) for s in (42, 0)]
    fn = objective_fn("macro_f1")
    via_stats = bootstrap_gain(blocks, fn, metric="macro_f1", n_boot=400, random_state=0)
    direct = paired_bootstrap([(Y, Pa, Pb) for Y, Pa, _, Pb, _ in blocks], metric="macro_f1", n_boot=400,
                              random_state=0)
    assert via_stats == direct
    generic = bootstrap_gain(blocks, fn, metric="macro_f1_generic", n_boot=400, random_state=0)
    assert generic["delta"] == pytest.approx(direct["delta"])
    assert abs(generic["lo"] - direct["lo"]) < 0.03 and abs(generic["hi"] - direct["hi"]) < 0.03


@pytest.mark.slow  # a portfolio of 3 arms x 2 seeds through `mltc run -m`: about a minute on 2 idle cores
def test_advise_end_to_end_recommends_and_resumes(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    words = {"sport": ["goal", "match", "team"], "money": ["bank", "price", "stock"], "tech": ["chip", "code"]}
    for name, n in (("train", 240), ("val", 80), ("test", 60)):
        rows = []
        for _ in range(n):
            labels = [k for k in words if rng.random() < 0.35]
            text = " ".join([w for k in labels for w in rng.choice(words[k], 2)] + list(rng.choice(["x", "y"], 3)))
            rows.append({"text": text, "labels": ";".join(labels)})
        pd.DataFrame(rows).to_csv(tmp_path / f"{name}.csv", index=False)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    args = [sys.executable, "-m", "mltc.cli", "advise", "dataset=files", f"dataset.path={tmp_path / 'train.csv'}",
            f"dataset.val_path={tmp_path / 'val.csv'}", f"dataset.test_path={tmp_path / 'test.csv'}",
            "dataset.label_sep=';'", f"tracking.uri={uri}", "portfolio.arms=[per_label,ml_ros]",
            "portfolio.seeds=2", "--out", str(tmp_path / "rec.json")]
    env = dict(os.environ)
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "recommended:" in first.stdout and "mltc promote --run" in first.stdout
    report = first.stdout[first.stdout.index("mltc advise:"):]
    assert "test macro_f1" not in report  # no test score without --show-test
    import json
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["best"] in ("plain", "per_label", "ml_ros") and "test" not in rec
    assert rec["promote_run"] == rec["run_ids"][rec["best"]][str(rec["promote_seed"])]
    assert f"mltc promote --run {rec['promote_run']}" in first.stdout
    assert {r["arm"] for r in rec["table"]} == {"plain", "per_label", "ml_ros"}
    assert all(r["n_seeds"] == 2 for r in rec["table"])
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert "reusing the plan" in out and "6 jobs, 0 finished, 0 failed, 6 skipped" in out, out[-3000:]
    # the same recommendation from the same runs
    assert report == again.stdout[again.stdout.index("mltc advise:"):]


@pytest.mark.parametrize("args,message", [
    (["dataset=files", "thresholds=fixed"], "thresholds= is set by the portfolio"),
    (["portfolio.budget=3"], "unknown setting(s) portfolio.budget"),
    (["model=logreg,linear_svc"], "remove the comma sweep"),
    (["tracking=none"], "remove tracking=none"),
])
def test_bad_commands_get_a_clear_message(args, message, capsys):
    from mltc.advise import main

    assert main(args) == 2
    assert message in capsys.readouterr().err
