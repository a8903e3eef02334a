"""Moved to :mod:`mltc.features.sentence`; this name stays so that featurizers pickled before the move still load."""
from mltc.features.sentence import (EmbeddingCache, RawText, SentenceEncoder, default_model_path,  # noqa: F401
                                    make_tfidf_minilm, pool_chunks, text_keys, word_chunks)
from mltc.utils.runtime import cache_root, resolve_device  # noqa: F401
