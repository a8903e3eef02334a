"""Stacks pick feature blocks by name: the same columns the overlays' offsets used to select."""
import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from mltc.app import CONF_DIR
from mltc.data.synthetic import make_synthetic
from mltc.features import SentenceEncoder, TextUnion, feature_blocks
from mltc.models import BinaryRelevance
from mltc.models.stack import ScoreAverage, _column_slice

# the overlays' columns before blocks had names (git show HEAD~3:conf/experiment/<name>.yaml), with the char cap they
# assumed (features.vectorizers.<i>.max_features)
OLD = {
    "reuters_huang_svm_word_char": ([[0, -100000], [-100000, None]], 100000),
    "reuters_huang_svm_word_char_lgbm_xgb": ([[0, -100000], [-100000, None], [0, -100000], [0, -100000]], 100000),
    "reuters_huang_svm_word_char_lgbm_xgb_minilm_title": (
        [[50000, -100384], [-100384, -384], [50000, -100384], [50000, -100384], [-384, None], [0, 50000]], 100000),
    "reuters_huang_stacked": (
        [[50000, -100384], [-100384, -384], [50000, -100384], [50000, -100384], [-384, None], [0, 50000]], 100000),
    "goemotions_stack_lr_mlp": ([[0, -384], [-384, None]], None),
}


def _scaled(spec, cap, small):
    """An old offset with the char cap ``cap`` (and cap + 384) written for a smaller cap ``small``."""
    if cap is None:
        return spec
    return [None if b is None else int(np.sign(b)) * (abs(b) - cap + small) if abs(b) >= cap else b for b in spec]


def _featurizer(cfg, char_cap):
    feat = instantiate(cfg.features, _convert_="all")
    # MiniLM stand-in of the same width (384): the test is about which columns are picked, not embeddings
    stand_in = HashingVectorizer(n_features=384, alternate_sign=False)
    if isinstance(feat, TextUnion):
        vecs = [stand_in if isinstance(v, SentenceEncoder) else v for v in feat.vectorizers]
        for v in vecs:
            if v.get_params().get("analyzer") == "char_wb" and char_cap is not None:
                v.set_params(max_features=char_cap)
        feat.set_params(vectorizers=vecs)
    return feat


@pytest.mark.parametrize("overlay", sorted(OLD))
def test_names_select_what_the_offsets_selected(overlay):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={overlay}"])
    old, cap = OLD[overlay]
    names = list(cfg.model.columns)
    assert all(isinstance(n, str) for n in names) and len(names) == len(old)
    # the char block reaches its cap on this corpus (as it does on Reuters), so the old offsets were right on it
    small = 2000 if cap is not None else None
    texts = make_synthetic(n_docs=300, vocab_size=4000, doc_length=60, random_state=0).texts
    texts = [f"{t[:30]}\n{t}" for t in texts]  # a title line for TitleOnly
    feat = _featurizer(cfg, small)
    X = feat.fit_transform(texts)
    blocks = feature_blocks(feat)
    assert set(names) <= set(blocks)
    if cap is not None:
        assert blocks["char"][1] - blocks["char"][0] == small
    for i, (name, spec) in enumerate(zip(names, old)):
        by_name = X[:, _column_slice(name, X.shape[1], i, blocks)]
        by_offset = X[:, _column_slice(_scaled(spec, cap, small), X.shape[1], i)]
        assert by_name.shape == by_offset.shape and by_name.shape[1] > 0
        assert (by_name != by_offset).nnz == 0 if sp.issparse(by_name) else np.array_equal(by_name, by_offset)


def _blocks_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 7))
    Y = np.column_stack([X[:, 0] > 0, X[:, 5] > 0.3]).astype(np.int8)
    return X, Y


def test_score_average_by_name_equals_by_offset():
    X, Y = _blocks_data()
    members = [BinaryRelevance(LogisticRegression()), BinaryRelevance(LogisticRegression())]
    by_name = ScoreAverage(members, columns=["a", "b"]).fit(X, Y, feature_blocks={"a": [0, 4], "b": [4, 7]})
    by_offset = ScoreAverage(members, columns=[[0, 4], [4, None]]).fit(X, Y)
    np.testing.assert_array_equal(by_name.predict_proba(X), by_offset.predict_proba(X))
    assert by_name.slices_ == [slice(0, 4), slice(4, 7)]


def test_block_names_without_blocks_or_unknown_say_what_to_do():
    X, Y = _blocks_data()
    model = ScoreAverage([BinaryRelevance(LogisticRegression())], columns=["word"])
    with pytest.raises(ValueError, match="names a feature block, but fit got no feature_blocks"):
        model.fit(X, Y)
    with pytest.raises(ValueError, match=r"not a block of the features; their blocks are \['a', 'b'\]"):
        model.fit(X, Y, feature_blocks={"a": [0, 4], "b": [4, 7]})


def test_text_union_names_its_blocks():
    from mltc.features import make_tfidf
    texts = ["gold rises\ngold prices rose", "wheat falls\nwheat exports fell", "gold and wheat"]
    u = TextUnion([make_tfidf(ngram_range=[1, 1]), make_tfidf(analyzer="char_wb", ngram_range=[2, 2])],
                  names=["word", "char"])
    X = u.fit_transform(texts)
    word, char = u.blocks_["word"], u.blocks_["char"]
    assert word[0] == 0 and word[1] == char[0] and char[1] == X.shape[1]
    names = u.get_feature_names_out()
    assert all(n.startswith("word__") for n in names[slice(*word)])
    assert all(n.startswith("char__") for n in names[slice(*char)])
    assert list(TextUnion([make_tfidf()] * 2).fit(texts).blocks_) == ["v0", "v1"]
    with pytest.raises(ValueError, match="distinct non-empty strings"):
        TextUnion([make_tfidf()] * 2, names=["a", "a"]).fit(texts)


@pytest.mark.parametrize("cv_thresholds", [False, True], ids=["validation", "out-of-fold"])
def test_pipeline_hands_the_blocks_to_the_stack(cv_thresholds):
    from mltc.features import make_tfidf
    from mltc.pipeline import run_pipeline
    from mltc.split import DatasetSplitter
    from mltc.thresholds import FixedThreshold, PerLabelCVThreshold

    ds = make_synthetic(n_docs=300, n_labels=5, random_state=0)
    feat = TextUnion([make_tfidf(ngram_range=[1, 1]), make_tfidf(analyzer="char_wb", ngram_range=[2, 3],
                                                                  max_features=500)], names=["word", "char"])
    model = ScoreAverage([BinaryRelevance(LogisticRegression()), BinaryRelevance(LogisticRegression())],
                         columns=["char", "word"])
    rule = PerLabelCVThreshold(n_splits=2) if cv_thresholds else FixedThreshold()
    result = run_pipeline(ds, splitter=DatasetSplitter(val_size=0.2, random_state=0), featurizer=feat, model=model,
                          thresholder=rule, random_state=0)
    word, char = feat.blocks_["word"], feat.blocks_["char"]
    assert model.slices_ == [slice(*char), slice(*word)]  # fitted in place by the pipeline
    assert 0 < result.metrics["micro_f1"] <= 1
