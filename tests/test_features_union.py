"""TextUnion (word + character TF-IDF blocks) against scikit-learn's own vectorizers."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
)

from mltc.features.union import TextUnion, repeat_title
from mltc.features import TextUnion as ExportedTextUnion

TRAIN = ["Gold prices rise\nGold rose 3 dlrs an ounce in Zurich on Monday.",
         "Wheat exports fall\nU.S. wheat exports fell to 1.2 mln tonnes, the USDA said.",
         "Bank raises rates\nThe central bank raised its discount rate to 7.5 pct.",
         "TRADE SURPLUS WIDENS",
         "Crude oil output\nOPEC crude oil output rose in March, oil ministers said."]
NEW = ["Gold and wheat\nGold fell while wheat exports rose.", "Oil ministers meet"]


def _word():
    return TfidfVectorizer(sublinear_tf=True)


def _char():
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)


def test_union_is_the_hstack_of_separately_fitted_vectorizers():
    u = TextUnion([_word(), _char()])
    X_fit = u.fit_transform(TRAIN)
    w, c = _word().fit(TRAIN), _char().fit(TRAIN)
    for texts, X in ((TRAIN, X_fit), (NEW, u.transform(NEW))):
        expected = sp.hstack([w.transform(texts), c.transform(texts)]).toarray()
        np.testing.assert_allclose(X.toarray(), expected)
    assert sp.isspmatrix_csr(X_fit)
    assert u.n_features_out_ == len(w.vocabulary_) + len(c.vocabulary_) == X_fit.shape[1]
    assert u.block_slices_ == [slice(0, len(w.vocabulary_)), slice(len(w.vocabulary_), X_fit.shape[1])]


def test_weights_scale_blocks_like_feature_union_transformer_weights():
    u = TextUnion([_word(), _char()], weights=[1.0, 0.4])
    fu = FeatureUnion([("w", _word()), ("c", _char())], transformer_weights={"w": 1.0, "c": 0.4})
    np.testing.assert_allclose(u.fit_transform(TRAIN).toarray(), fu.fit_transform(TRAIN).toarray())
    np.testing.assert_allclose(u.transform(NEW).toarray(), fu.transform(NEW).toarray())
    # each TF-IDF block is L2-normalised, so a row's squared norm is the sum of the squared weights
    norms = sp.linalg.norm(u.transform(NEW), axis=1)
    np.testing.assert_allclose(norms, np.sqrt(1.0 + 0.4 ** 2))


def test_fit_then_transform_equals_fit_transform():
    u = TextUnion([_word(), _char()], weights=[2.0, 1.0], title_repeats=1)
    np.testing.assert_allclose(u.fit_transform(TRAIN).toarray(), clone(u).fit(TRAIN).transform(TRAIN).toarray())


def test_title_repeats_vectorize_texts_with_the_first_line_repeated():
    u = TextUnion([TfidfVectorizer()], title_repeats=2)
    X = u.fit_transform(TRAIN)
    manual = [t if "\n" not in t else "\n".join([t.split("\n")[0]] * 2 + [t]) for t in TRAIN]
    v = TfidfVectorizer().fit(manual)
    np.testing.assert_allclose(X.toarray(), v.transform(manual).toarray())
    np.testing.assert_allclose(u.transform(NEW).toarray(),
                               v.transform([repeat_title(t, 2) for t in NEW]).toarray())
    # counts: the title word "prices" appears 1 + 2 times, the body-only word "ounce" once
    assert repeat_title(TRAIN[0], 2).lower().count("prices") == 3
    assert repeat_title(TRAIN[0], 2).count("ounce") == 1


def test_repeat_title_leaves_one_line_texts_and_zero_repeats_alone():
    assert repeat_title("TRADE SURPLUS WIDENS", 3) == "TRADE SURPLUS WIDENS"
    assert repeat_title(TRAIN[0], 0) == TRAIN[0]


def test_feature_names_are_block_prefixed_and_match_columns():
    u = TextUnion([_word(), _char()]).fit(TRAIN)
    names = u.get_feature_names_out()
    assert len(names) == u.n_features_out_
    w = _word().fit(TRAIN)
    assert list(names[u.block_slices_[0]]) == [f"v0__{n}" for n in w.get_feature_names_out()]
    assert all(n.startswith("v1__") for n in names[u.block_slices_[1]])


def test_vectorizers_are_cloned_not_fitted_in_place():
    word = _word()
    u = TextUnion([word]).fit(TRAIN)
    assert not hasattr(word, "vocabulary_")
    assert u.vectorizers_[0] is not word


def test_sklearn_api_checks_and_export():
    assert ExportedTextUnion is TextUnion
    u = TextUnion([_word(), _char()], weights=[1.0, 0.5], title_repeats=1)
    check_no_attributes_set_in_init("TextUnion", u)
    check_get_params_invariance("TextUnion", u)
    assert clone(u).get_params()["weights"] == [1.0, 0.5]
    assert "vectorizers" in u.get_params(deep=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"vectorizers": []}, "at least one vectorizer"),
    ({"vectorizers": [TfidfVectorizer()], "weights": [1.0, 2.0]}, "one per vectorizer"),
    ({"vectorizers": [TfidfVectorizer()], "weights": [-1.0]}, "non-negative"),
    ({"vectorizers": [TfidfVectorizer()], "title_repeats": -1}, "title_repeats"),
])
def test_bad_parameters_are_reported_at_fit(kwargs, message):
    u = TextUnion(**kwargs)  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        u.fit(TRAIN)


def test_transform_before_fit_and_a_single_string_are_user_errors():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        TextUnion([_word()]).transform(NEW)
    with pytest.raises(TypeError, match="list of texts"):
        TextUnion([_word()]).fit("one string")


def test_pad_blocks_gives_a_capped_block_its_max_features_width():
    cap = 5000  # far above the char n-grams of five short texts
    plain = TextUnion([_word(), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), max_features=cap)])
    padded = clone(plain).set_params(pad_blocks=True)
    P, Q = plain.fit_transform(TRAIN), padded.fit_transform(TRAIN)
    n_word = plain.block_slices_[0].stop
    n_char = plain.block_slices_[1].stop - n_word
    assert n_char < cap
    assert padded.block_widths_ == [n_word, cap] and Q.shape == (len(TRAIN), n_word + cap)
    assert padded.block_slices_[1] == slice(n_word, n_word + cap)
    # the real columns are the unpadded matrix, the padding is empty; the char block is the last `cap` columns
    np.testing.assert_array_equal(Q[:, : n_word + n_char].toarray(), P.toarray())
    assert Q[:, n_word + n_char:].nnz == 0
    np.testing.assert_array_equal(Q[:, -cap:-cap + n_char].toarray(), P[:, n_word:].toarray())
    Qn = padded.transform(NEW)
    assert Qn.shape[1] == Q.shape[1]
    np.testing.assert_array_equal(Qn[:, : n_word + n_char].toarray(), plain.transform(NEW).toarray())
    assert len(padded.get_feature_names_out()) == Q.shape[1]


def test_pad_blocks_leaves_full_or_uncapped_blocks_alone():
    small_cap = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), max_features=50)  # vocabulary is larger
    plain = TextUnion([_word(), small_cap])
    padded = TextUnion([_word(), small_cap], pad_blocks=True)
    P, Q = plain.fit_transform(TRAIN), padded.fit_transform(TRAIN)
    assert P.shape[1] == _word().fit_transform(TRAIN).shape[1] + 50
    np.testing.assert_array_equal(P.toarray(), Q.toarray())


def test_word_char_minilm_config_extends_word_char():
    """features=tfidf_word_char_minilm: tfidf_word_char's two vectorizers unchanged, then a chunked MiniLM block."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    from mltc.features.sentence import SentenceEncoder
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        two = instantiate(compose("config", overrides=["features=tfidf_word_char"]).features, _convert_="all")
        three = instantiate(compose("config", overrides=["features=tfidf_word_char_minilm"]).features,
                            _convert_="all")
    assert len(three.vectorizers) == 3
    for a, b in zip(two.vectorizers, three.vectorizers[:2]):
        assert a.get_params() == b.get_params()
    enc = three.vectorizers[2]
    assert isinstance(enc, SentenceEncoder) and enc.chunk_words > enc.chunk_overlap
    assert three.pad_blocks and three.vectorizers[1].max_features == 100000


def test_title_only_vectorizes_first_lines_and_pads_in_a_union():
    from mltc.features.union import TitleOnly
    t = TitleOnly(_word())
    T = t.fit_transform(TRAIN)
    titles = [x.split("\n", 1)[0] for x in TRAIN]
    np.testing.assert_allclose(T.toarray(), _word().fit_transform(titles).toarray())
    np.testing.assert_allclose(t.transform(NEW).toarray(), _word().fit(titles).transform(["Gold and wheat",
                                                                                          "Oil ministers meet"]).toarray())
    check_get_params_invariance("TitleOnly", t)
    assert clone(t).get_params()["vectorizer"].get_params() == _word().get_params()
    u = TextUnion([TitleOnly(TfidfVectorizer(max_features=100)), _word()], pad_blocks=True).fit(TRAIN)
    assert u.block_widths_[0] == 100 > len(t.get_feature_names_out())
    with pytest.raises(TypeError, match="list of texts"):
        TitleOnly(_word()).fit("one string")
