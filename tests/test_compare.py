"""`mltc compare` and mltc.stats against independent computations (pandas, scikit-learn, scipy, Demšar 2006)."""
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats as sps
from sklearn.metrics import f1_score

from mltc.compare import main as compare_main
from mltc.stats import f1_from_counts, doc_counts, friedman_nemenyi, nemenyi_cd, paired_bootstrap
from mltc.tracking import MlflowTracker

L = 5


def test_nemenyi_cd_matches_demsar_table():
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..10 methods
    q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), q05):
        assert nemenyi_cd(k, 10) == pytest.approx(q * np.sqrt(k * (k + 1) / 60.0), abs=2e-3)


def test_friedman_matches_scipy_and_ranks():
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.random((6, 4)), columns=list("abcd"))
    table["a"] += 1  # a is best in every block: average rank 1
    res = friedman_nemenyi(table)
    ref = sps.friedmanchisquare(*(table[c] for c in table))
    assert res["statistic"] == pytest.approx(ref.statistic) and res["p"] == pytest.approx(ref.pvalue)
    assert res["ranks"]["a"] == 1.0 and res["ranks"].sum() == pytest.approx(6 * 10 / 6)
    with pytest.raises(ValueError, match="at least 3 methods"):
        friedman_nemenyi(table[["a", "b"]])


def test_f1_from_counts_matches_sklearn():
    rng = np.random.default_rng(1)
    Y, P = rng.random((50, L)) < 0.3, rng.random((50, L)) < 0.3
    P[:, 0] = Y[:, 0] = False  # a label with no support and no prediction
    counts = [c.sum(0) for c in doc_counts(Y, P)]
    for m, avg in (("micro_f1", "micro"), ("macro_f1", "macro")):
        assert f1_from_counts(*counts, m) == pytest.approx(f1_score(Y, P, average=avg, zero_division=0))


def test_paired_bootstrap():
    rng = np.random.default_rng(2)
    Y = rng.random((300, L)) < 0.3
    noisy = Y ^ (rng.random(Y.shape) < 0.3)
    good = Y ^ (rng.random(Y.shape) < 0.05)
    same = paired_bootstrap([(Y, noisy, noisy)], n_boot=200, random_state=0)
    assert same["delta"] == same["lo"] == same["hi"] == 0.0
    res = paired_bootstrap([(Y, good, noisy)], metric="micro_f1", n_boot=2000, random_state=0)
    assert res["delta"] == pytest.approx(f1_score(Y, good, average="micro") - f1_score(Y, noisy, average="micro"))
    assert 0 < res["lo"] < res["delta"] < res["hi"] and res["p"] < 0.01
    # the multinomial-weight bootstrap has the spread of an explicit resampling loop
    def micro(y, p):
        tp, fp, fn = (y & p).sum(), (~y & p).sum(), (y & ~p).sum()
        return 2 * tp / (2 * tp + fp + fn)

    idx = np.random.default_rng(3).integers(0, 300, size=(2000, 300))
    loop = [micro(Y[i], good[i]) - micro(Y[i], noisy[i]) for i in idx]
    lo, hi = np.quantile(loop, [0.025, 0.975])
    assert res["hi"] - res["lo"] == pytest.approx(hi - lo, rel=0.15)
    # two blocks (seeds): the statistic is the mean of the per-block differences
    two = paired_bootstrap([(Y, good, noisy), (Y[:100], noisy[:100], noisy[:100])], metric="micro_f1", n_boot=100,
                           random_state=0)
    assert two["delta"] == pytest.approx(res["delta"] / 2)
    with pytest.raises(ValueError, match="micro_f1, macro_f1"):
        paired_bootstrap([(Y, good, noisy)], metric="accuracy")


def _predictions(path, index, Y, P):
    np.savez_compressed(path, index=index, n_labels=Y.shape[1], pred=np.packbits(P.astype(bool), axis=1),
                        true=np.packbits(Y.astype(bool), axis=1), scores=P.astype(np.float32))


def make_store(uri, tmp_path):
    """A sweep parent and 3 strategies x 2 data sets x 2 seeds of runs whose test predictions are known."""
    rng = np.random.default_rng(0)
    noise = {"none": 0.25, "ml_ros": 0.15, "mlsmote": 0.05}
    parent = MlflowTracker(uri=uri).start(experiment="mltc", run_name="sweep",
                                          tags={"mltc.role": "sweep", "mltc.sweep_id": "abc"})
    rows = []
    for ds in ("d1", "d2"):
        for seed in (1, 2):
            n = 120
            Y = (rng.random((n, L)) < np.linspace(0.5, 0.05, L)).astype(np.int8)
            index = rng.permutation(1000)[:n]
            train_count = np.linspace(200, 5, L).astype(int)
            for strat, p in noise.items():
                P = (Y.astype(bool) ^ (rng.random(Y.shape) < p)).astype(np.int8)
                m = {"macro_f1": f1_score(Y, P, average="macro", zero_division=0),
                     "micro_f1": f1_score(Y, P, average="micro", zero_division=0), "time_fit": 1.0 + p}
                t = MlflowTracker(uri=uri).start(
                    experiment="mltc", run_name=strat, parent_run_id=parent.run_id,
                    tags={"mltc.dataset": ds, "mltc.strategy": strat, "mltc.model": "logreg", "mltc.seed": seed,
                          "mltc.config_hash": f"{ds}-{strat}-{seed}"})
                t.log_metrics(m)
                per_label = pd.DataFrame({"label": range(L), "train_count": train_count,
                                          "f1": f1_score(Y, P, average=None, zero_division=0)})
                t.log_artifacts({"per_label.csv": lambda q, d=per_label: d.to_csv(q, index=False),
                                 "predictions.npz": lambda q, a=(index, Y, P): _predictions(q, *a)})
                t.end("FINISHED")
                rows.append({"dataset": ds, "seed": seed, "strategy": strat, "Y": Y, "P": P, **m})
    failed = MlflowTracker(uri=uri).start(experiment="mltc", parent_run_id=parent.run_id,
                                          tags={"mltc.strategy": "broken", "mltc.dataset": "d1"})
    failed.end("FAILED", error="boom")
    parent.end("FINISHED")
    return parent.run_id, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{path / 'store.db'}"
    return uri, *make_store(uri, path)


def test_compare_end_to_end(store, tmp_path, capsys):
    uri, parent_id, truth = store
    out = tmp_path / "report"
    assert compare_main(["--uri", uri, "--sweep", "abc", "--out", str(out), "--bootstrap", "300", "--log"]) == 0
    printed = capsys.readouterr().out
    board = pd.read_csv(out / "leaderboard.csv")
    # configurations = data set x strategy (both vary); failed runs are left out
    assert len(board) == 6 and "broken" not in printed
    exp = truth.groupby(["dataset", "strategy"])["macro_f1"].agg(["mean", "std"])
    for _, row in board.iterrows():
        ds, strat = (part.split("=")[1] for part in row["config"].split())
        assert row["macro_f1"] == pytest.approx(exp.loc[(ds, strat), "mean"])
        assert row["macro_f1_sd"] == pytest.approx(exp.loc[(ds, strat), "std"])
        assert row["n_seeds"] == 2
    # one board per data set (issue 19: data sets are never ranked against each other), best first in each
    for _, part in board.groupby(board["config"].str.split().str[0], sort=False):
        assert list(part["macro_f1"]) == sorted(part["macro_f1"], reverse=True)
        assert list(part["rank"]) == list(range(1, len(part) + 1))
    assert board["time_fit"].notna().all()

    # paired bootstrap against the best: the observed difference is the seed-mean of sklearn differences
    # (per data set: the reference is the best configuration of the row's own data set)
    sig = pd.read_csv(out / "significance.csv")
    best_of = {ds: part["config"].iloc[0] for ds, part in board.groupby(board["config"].str.split().str[0])}
    assert len(sig) == 4 and (sig["n_blocks"] == 2).all()
    for _, row in sig.iterrows():
        ds, strat = (part.split("=")[1] for part in row["config"].split())
        best = best_of[f"dataset={ds}"]
        assert row["reference"] == best
        b_strat = best.split()[1].split("=")[1]
        diffs = []
        for seed in (1, 2):
            a = truth[(truth.dataset == ds) & (truth.strategy == strat) & (truth.seed == seed)].iloc[0]
            b = truth[(truth.dataset == ds) & (truth.strategy == b_strat) & (truth.seed == seed)].iloc[0]
            diffs.append(f1_score(a.Y, a.P, average="macro", zero_division=0)
                         - f1_score(b.Y, b.P, average="macro", zero_division=0))
        assert row["delta"] == pytest.approx(np.mean(diffs))
        assert row["lo"] <= row["delta"] <= row["hi"]

    # Friedman over (data set, seed) blocks with the strategies as methods
    md = (out / "leaderboard.md").read_text()
    table = truth.pivot_table(index=["dataset", "seed"], columns="strategy", values="macro_f1")
    ref = sps.friedmanchisquare(*(table[c] for c in table))
    assert f"chi2 = {ref.statistic:.3f}" in md and "| mltc compare" not in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "http://" not in html and "https://" not in html

    # the report is an artifact of the sweep's parent run
    arts = {a.path for a in MlflowClient(uri).list_artifacts(parent_id, "compare")}
    assert {"compare/leaderboard.md", "compare/leaderboard.csv", "compare/report.html",
            "compare/cd_diagram.png"} <= arts


def test_compare_baseline_filter_and_errors(store, tmp_path, capsys):
    uri = store[0]
    out = tmp_path / "r"
    args = ["--uri", uri, "--experiment", "mltc", "--out", str(out), "--no-log", "--bootstrap", "50"]
    assert compare_main([*args, "--filter", "tags.`mltc.dataset` = 'd1'", "--baseline", "strategy=none"]) == 0
    sig = pd.read_csv(out / "significance.csv")
    assert (sig["reference"] == "strategy=none").all() and (sig["n_blocks"] == 2).all()
    assert (sig["delta"] > 0).all()  # less label noise than the baseline
    assert compare_main([*args, "--metric", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert compare_main([*args, "--experiment", "missing"]) == 2
    assert "no experiment named missing" in capsys.readouterr().err


def test_shared_bootstrap_draws_give_the_same_intervals():
    # compare reuses one set of draws for every configuration and metric: it must not change a number
    from mltc.stats import BootstrapDraws

    rng = np.random.default_rng(5)
    Y = rng.random((250, L)) < 0.3
    preds = [Y ^ (rng.random(Y.shape) < q) for q in (0.05, 0.1, 0.2)]
    draws = BootstrapDraws(300, 7)
    for metric in ("micro_f1", "macro_f1"):
        for a, b in ((preds[0], preds[1]), (preds[2], preds[1])):
            blocks = [(Y, a, b), (Y[:120], a[:120], b[:120])]
            assert paired_bootstrap(blocks, metric=metric, draws=draws) == \
                paired_bootstrap(blocks, metric=metric, n_boot=300, random_state=7)
    assert len(draws._cache) == 1  # drawn once for the block sizes (250, 120)
    W = draws.weights([250, 120])
    assert [w.shape for w in W] == [(300, 250), (300, 120)] and all((w.sum(1) == w.shape[1]).all() for w in W)


def test_bootstrap_draw_counts_follow_the_multinomial():
    # counts of n uniform draws with replacement: rows sum to n, each count ~ Binomial(n, 1/n)
    from mltc.stats import _draw_counts

    n, B = 400, 3000
    W = _draw_counts(np.random.RandomState(1), n, B)
    assert W.shape == (B, n) and (W.sum(1) == n).all()
    assert W.mean() == pytest.approx(1.0)
    assert W.var() == pytest.approx(1 - 1 / n, rel=0.03)
    assert (W == 0).mean() == pytest.approx((1 - 1 / n) ** n, rel=0.02)  # ~e^-1 of documents left out
    assert np.array_equal(W, _draw_counts(np.random.RandomState(1), n, B))
    chunked = _draw_counts(np.random.RandomState(2), 5, 41, max_entries=10)  # 2 replicates per step
    assert chunked.shape == (41, 5) and (chunked.sum(1) == 5).all()
    assert np.array_equal(chunked, _draw_counts(np.random.RandomState(2), 5, 41))  # the same stream either way
