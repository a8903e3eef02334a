"""Moved to :mod:`mltc.features.sentence`; this name stays so that featurizers pickled before the move still load."""
from mltc.features.sentence import (EmbeddingCache, RawText, SentenceEncoder, make_tfidf_minilm,  # noqa: F401
                                    pool_chunks, text_keys, word_chunks)
from mltc.runtime import cache_root, default_model_path, resolve_device  # noqa: F401
