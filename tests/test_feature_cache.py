"""The feature cache: same numbers with and without it, keys that change with what matters, safe writers."""
import multiprocessing as mp
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mltc.app import CONF_DIR, ConfigError, feature_cache, run_config
from mltc.data.synthetic import make_synthetic
from mltc.feature_cache import CachedFeatures, FeatureCache
from mltc.features import TextUnion
from mltc.models import BinaryRelevance
from mltc.pipeline import run_pipeline
from mltc.split import DatasetSplitter
from mltc.strategies.ros_rus import MLROS
from mltc.thresholds import PerLabelThreshold


def _run(ds, featurizer, cache):
    return run_pipeline(ds, splitter=DatasetSplitter(random_state=0, val_method="random"), featurizer=featurizer,
                        model=BinaryRelevance(LogisticRegression(solver="liblinear", random_state=0)),
                        strategy=MLROS(random_state=0), thresholder=PerLabelThreshold(), feature_cache=cache)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_docs=500, n_labels=6, random_state=3)


def test_cached_and_uncached_runs_give_identical_results(ds, tmp_path):
    plain = _run(ds, TfidfVectorizer(ngram_range=(1, 2), min_df=2), None)
    cache = FeatureCache(tmp_path)
    miss = _run(ds, TfidfVectorizer(ngram_range=(1, 2), min_df=2), cache)
    assert len(cache.entries()) == 1
    again = TfidfVectorizer(ngram_range=(1, 2), min_df=2)

    def refit(*args, **kwargs):
        raise AssertionError("the cached featurization was not reused")
    again.fit_transform = refit  # an instance attribute: not a parameter, so the key is the same
    hit = _run(ds, again, cache)
    for other in (miss, hit):
        assert other.metrics == plain.metrics  # exact, to the last digit
        assert other.val_metrics == plain.val_metrics
        np.testing.assert_array_equal(other.extra["test_scores"], plain.extra["test_scores"])
        np.testing.assert_array_equal(other.thresholds, plain.thresholds)
    # the caller's featurizer is fitted after a hit, as after a refit
    assert again.vocabulary_ == miss_vocab(ds)


def miss_vocab(ds):
    parts = DatasetSplitter(random_state=0, val_method="random").split(ds)
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit([ds.texts[i] for i in parts["train"]]).vocabulary_


def test_key_follows_texts_split_labels_and_nested_parameters(tmp_path):
    cache = FeatureCache(tmp_path)
    base = dict(train=["a b", "c d"], val=["a"], test=["d"], Y_train=np.array([[1, 0], [0, 1]]))
    union = TextUnion(vectorizers=[TfidfVectorizer(), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))])
    k = cache.key(union, **base)
    assert k == cache.key(TextUnion(vectorizers=[TfidfVectorizer(),
                                                  TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))]), **base)
    nested = TextUnion(vectorizers=[TfidfVectorizer(), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5))])
    changed = [
        cache.key(nested, **base),                                    # a parameter two levels down
        cache.key(TfidfVectorizer(), **base),                         # another class
        cache.key(union, **{**base, "train": ["a b", "c e"]}),        # other texts
        cache.key(union, **{**base, "train": ["a", "b c d"]}),        # same characters, other boundaries
        cache.key(union, **{**base, "val": ["d"], "test": ["a"]}),    # another split of the same texts
        cache.key(union, **{**base, "Y_train": np.array([[0, 1], [1, 0]])}),
        cache.key(union, **base, unlabeled=["x"]),
    ]
    assert len({k, *changed}) == len(changed) + 1
    assert FeatureCache(tmp_path, enabled=False).key(union, **base) is None


def _entry(n):
    X = sp.random(50, 40, density=0.1, format="csr", random_state=n)
    return CachedFeatures(featurizer=TfidfVectorizer(), X_train=X, X_val=X[:5], X_test=X[5:10])


def test_least_recently_used_entries_are_evicted_past_the_cap(tmp_path):
    cache = FeatureCache(tmp_path)
    for i, key in enumerate("abc"):
        cache.store(key, _entry(i))
        os.utime(cache._path(key), (1000 + i, 1000 + i))
    size = cache._path("a").stat().st_size
    assert cache.load("a") is not None  # now the most recently used
    cache.max_bytes = int(2.5 * size)
    cache.store("d", _entry(3))
    assert sorted(p.stem for p in cache.entries()) == ["a", "d"]


def test_an_entry_that_cannot_be_written_does_not_fail_the_run(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    entry = _entry(0)
    entry.featurizer.preprocessor = lambda s: s  # a lambda cannot be pickled
    cache.store("k", entry)
    assert cache.load("k") is None and not list(tmp_path.iterdir())
    assert "could not store" in caplog.text


def test_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    cache = FeatureCache(tmp_path)
    cache._path("bad").write_bytes(b"not a joblib file")
    assert cache.load("bad") is None
    assert not cache._path("bad").exists()


def _writer(directory, worker, keys, cap):
    cache = FeatureCache(directory, max_bytes=cap)
    for i, key in enumerate(keys):
        cache.store(key, _entry(i))
        got = cache.load(keys[(i + worker) % len(keys)])
        if got is not None:  # absent (not written yet, or evicted) is fine; half-written never is
            assert got.X_train.shape == (50, 40)


def test_parallel_writers_leave_whole_entries_and_no_temp_files(tmp_path):
    keys = [f"k{i}" for i in range(6)]
    probe = FeatureCache(tmp_path / "probe")
    probe.store("p", _entry(0))
    cap = 4 * probe._path("p").stat().st_size  # room for 4 of the 6 keys: writers evict while others read
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path / "c", w, keys, cap)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = FeatureCache(tmp_path / "c")
    left = cache.entries()
    assert 1 <= len(left) <= 6
    for p in left:
        # every entry that survived is whole and holds what its key's writer stored
        i = keys.index(p.stem)
        got = cache.load(p.stem)
        assert (got.X_train != _entry(i).X_train).nnz == 0
    assert not list((tmp_path / "c").glob("*.tmp"))


def _compose(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_config_switch_and_app_path_give_the_same_numbers(tmp_path):
    small = ["dataset.n_docs=400", "dataset.n_labels=5", "tracking=none", f"cache.dir={tmp_path}"]
    assert feature_cache(_compose([*small, "cache.features=false"]).cache) is None
    with pytest.raises(ConfigError, match="cache.max_gb"):
        feature_cache(_compose([*small, "cache.max_gb=-1"]).cache)
    _, off = run_config(_compose([*small, "cache.features=false"]))
    assert not (tmp_path / "features").exists()
    _, first = run_config(_compose(small))
    _, second = run_config(_compose([*small, "strategy=ml_ros"]))  # another strategy: same featurization
    assert len(list((tmp_path / "features").glob("*.joblib"))) == 1
    _, back = run_config(_compose(small))
    assert off.metrics == first.metrics == back.metrics
    assert second.sizes["n_features"] == first.sizes["n_features"]


class _CountingLR(LogisticRegression):
    """Logistic regression that counts its fits (the stack's member fits are counted in the test process)."""

    fits = []

    def fit(self, X, y, sample_weight=None):
        _CountingLR.fits.append(1)
        return super().fit(X, y, sample_weight=sample_weight)


def test_stack_reuses_out_of_fold_member_scores_from_memory(tmp_path):
    from joblib import Memory

    from mltc.models.stack import ScoreStack

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6))
    Y = np.column_stack([X[:, 0] > 0.3, X[:, 1] + X[:, 4] > 0.8, X[:, 2] < -0.5]).astype(np.int8)
    members = [BinaryRelevance(_CountingLR(C=1.0)), BinaryRelevance(_CountingLR(C=0.1))]
    kw = dict(columns=[[0, 3], [3, None]], meta=LogisticRegression(), cv=3, random_state=1)
    plain = ScoreStack(members, **kw).fit(X, Y)
    memory = Memory(tmp_path, verbose=0)

    def fits(members=members, Y=Y, **change):
        # one fit per label: (members x folds + members' refits) x 3 labels when nothing is cached
        _CountingLR.fits.clear()
        model = ScoreStack(members, memory=memory, **{**kw, **change}).fit(X, Y)
        return model, len(_CountingLR.fits)

    first, n = fits()
    assert n == (2 * 3 + 2) * 3
    second, n = fits()
    assert n == 2 * 3                                   # same data: out-of-fold scores reused, only the refits
    assert fits(cv=4)[1] == (2 * 4 + 2) * 3             # other folds: recomputed
    assert fits(Y=1 - Y)[1] == (2 * 3 + 2) * 3          # other labels: recomputed
    other = [members[0], BinaryRelevance(_CountingLR(C=0.5))]
    assert fits(members=other)[1] == (3 + 2) * 3        # another second member: only its folds are fitted
    for m in (first, second):
        np.testing.assert_array_equal(m.decision_function(X), plain.decision_function(X))
