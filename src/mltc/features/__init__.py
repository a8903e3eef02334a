"""Featurizers: turn texts into a feature matrix, fitted on training texts only.

- :mod:`~mltc.features.tfidf`: word / character TF-IDF (:func:`make_tfidf`);
- :mod:`~mltc.features.union`: several vectorizers side by side as named column blocks (:class:`TextUnion`,
  :class:`TitleOnly`);
- :mod:`~mltc.features.sentence`: pretrained sentence encoders with an on-disk cache (:class:`SentenceEncoder`,
  :func:`make_tfidf_minilm`), and :class:`RawText` for models that read texts themselves.

Configs name these by their short path (``mltc.features.TextUnion``).
"""
from mltc.features.sentence import EmbeddingCache, RawText, SentenceEncoder, make_tfidf_minilm
from mltc.features.tfidf import make_tfidf
from mltc.features.union import TextUnion, TitleOnly, repeat_title

__all__ = ["make_tfidf", "TextUnion", "TitleOnly", "repeat_title", "SentenceEncoder", "EmbeddingCache", "RawText",
           "make_tfidf_minilm", "feature_blocks"]


def feature_blocks(featurizer) -> dict | None:
    """Named column blocks of a fitted featurizer (name -> ``[start, stop]``), or None if it has none."""
    return getattr(featurizer, "blocks_", None)
