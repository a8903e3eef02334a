"""TF-IDF from YAML."""
from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["make_tfidf"]


def make_tfidf(*, ngram_range=(1, 2), **kwargs) -> TfidfVectorizer:
    """A ``TfidfVectorizer`` whose ``ngram_range`` may come from YAML as a list.

    All other keyword arguments go to :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
    unchanged (``sublinear_tf``, ``min_df``, ``max_features``, ...).
    """
    return TfidfVectorizer(ngram_range=tuple(ngram_range), **kwargs)
