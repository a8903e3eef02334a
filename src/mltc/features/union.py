"""Several text vectorizers side by side: e.g. word and character n-gram TF-IDF in one matrix.

Word n-grams miss spelling variants, inflections and the numbers-with-units of newswire;
character n-grams within word boundaries (``analyzer="char_wb"``, Cavnar & Trenkle 1994) catch
them. Each block keeps its own vocabulary, idf and L2 normalisation and is then scaled by its
weight, as :class:`sklearn.pipeline.FeatureUnion` does with ``transformer_weights``, but the
vectorizers come as a plain list (one ``_target_`` each in YAML) and the column block of each is
recorded (``block_slices_``).

A newswire headline often names the topic; ``title_repeats`` puts extra copies of a text's first
line (the loaders' title) in front of it to up-weight its terms.

Each block has a name (``names=["word", "char"]``; default ``v0``, ``v1``, ...). The fitted union
records where each block lies (``blocks_``, name -> ``[start, stop]``), and models that take one block
each (:class:`mltc.models.stack.ScoreAverage` ``columns: [word, char]``) pick their columns by name: the
pipeline hands ``blocks_`` to their ``fit`` as ``feature_blocks``. With ``pad_blocks=True`` a block whose
vectorizer caps its vocabulary (an integer ``max_features``) is zero-padded to exactly that width, so
every capped block has the same width on any corpus; zero columns change no linear margin and no tree split.

References
----------
Cavnar & Trenkle (1994), N-gram-based text categorization. SDAIR-94.
"""
from __future__ import annotations

from itertools import pairwise
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

__all__ = ["TextUnion", "TitleOnly", "repeat_title"]


def repeat_title(text: str, repeats: int) -> str:
    """``text`` with its first line (the title) repeated ``repeats`` more times in front.

    A text without a line break is all title; it is returned unchanged, since repeating
    every word alike would change nothing but the term counts.
    """
    if repeats == 0 or "\n" not in text:
        return text
    title = text.split("\n", 1)[0]
    return "\n".join([title] * repeats + [text])


class TextUnion(TransformerMixin, BaseEstimator):
    """Fit several text vectorizers on the same texts and stack their outputs as column blocks.

    Parameters
    ----------
    vectorizers : list of transformers
        Text vectorizers (e.g. :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
        with ``analyzer="word"`` and ``analyzer="char_wb"``); each is cloned before fitting.
    weights : list of float, optional
        Multiplier of each block (None: all 1). With L2-normalised blocks, a weight sets the
        block's share of the row norm and so of a linear model's margin.
    title_repeats : int, default=0
        Extra copies of each text's first line placed in front of it before vectorizing
        (see :func:`repeat_title`); 0 leaves texts unchanged.
    pad_blocks : bool, default=False
        Zero-pad the block of a vectorizer with an integer ``max_features`` to that many
        columns (a vocabulary can come out smaller), so every such block has a fixed width
        (also a :class:`TitleOnly` vectorizer's).
    names : list of str, optional
        Name of each block (what stacks select by and the prefix of its feature names);
        None: ``v0``, ``v1``, ...

    Attributes
    ----------
    vectorizers_ : list
        The fitted clones.
    block_slices_ : list of slice
        Columns of each block in the output (padding included).
    block_widths_ : list of int
        Width of each block; with ``pad_blocks`` a capped block's ``max_features``.
    blocks_ : dict
        Block name -> ``[start, stop]`` of its columns.
    n_features_out_ : int

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> u = TextUnion([TfidfVectorizer(), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3))])
    >>> X = u.fit_transform(["Gold rises\\ngold prices rose", "Wheat falls\\nwheat exports fell"])
    >>> X.shape[1] == sum(s.stop - s.start for s in u.block_slices_)
    True
    """

    _parameter_constraints = {
        "vectorizers": [list, tuple],
        "weights": [list, tuple, None],
        "title_repeats": [Interval(Integral, 0, None, closed="left")],
        "pad_blocks": ["boolean"],
        "names": [list, tuple, None],
    }

    def __init__(self, vectorizers=None, *, weights=None, title_repeats=0, pad_blocks=False, names=None):
        self.vectorizers = vectorizers
        self.weights = weights
        self.title_repeats = title_repeats
        self.pad_blocks = pad_blocks
        self.names = names

    def _names(self):
        k = len(self.vectorizers)
        if self.names is None:
            return [f"v{i}" for i in range(k)]
        names = list(self.names)
        if len(names) != k or len(set(names)) != k or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"names={self.names} must be {k} distinct non-empty strings, one per vectorizer.")
        return names

    @property
    def blocks_(self) -> dict:
        """Block name -> ``[start, stop]`` of its columns (fitted)."""
        check_is_fitted(self, "block_slices_")
        names = getattr(self, "names_", None) or [f"v{i}" for i in range(len(self.block_slices_))]
        return {n: [s.start, s.stop] for n, s in zip(names, self.block_slices_)}

    def _weights(self):
        k = len(self.vectorizers or ())
        if k == 0:
            raise ValueError("TextUnion needs at least one vectorizer in vectorizers=[...].")
        if self.weights is None:
            return [1.0] * k
        w = list(self.weights)
        if len(w) != k or not all(isinstance(x, Real) and x >= 0 for x in w):
            raise ValueError(f"weights={self.weights} must be {k} non-negative numbers, one per vectorizer.")
        return [float(x) for x in w]

    def _texts(self, texts):
        if isinstance(texts, str):
            raise TypeError("TextUnion expects a list of texts, got one string; wrap it in a list.")
        return [repeat_title(t, self.title_repeats) for t in texts]

    def _stack(self, blocks):
        out = []
        # a union fitted before pad_blocks existed has no block_widths_: its blocks keep their own widths
        widths = getattr(self, "block_widths_", None) or [b.shape[1] for b in blocks]
        for b, w, width in zip(blocks, self.weights_, widths):
            b = sp.csr_matrix(b) * w if w != 1.0 else sp.csr_matrix(b)
            if b.shape[1] < width:
                b = sp.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width))
            out.append(b)
        return sp.hstack(out, format="csr")

    def _width(self, vectorizer, n_columns):
        params = vectorizer.get_params() if self.pad_blocks else {}
        # TitleOnly(vectorizer=...) carries the cap one level down
        cap = params.get("max_features", params.get("vectorizer__max_features"))
        return max(n_columns, cap) if isinstance(cap, Integral) else n_columns

    def fit(self, texts, y=None):
        """Fit every vectorizer on ``texts``."""
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts, y=None):
        """Fit every vectorizer on ``texts`` and return the stacked (n, sum of block widths) CSR matrix."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        self.weights_ = self._weights()
        self.names_ = self._names()
        texts = self._texts(texts)
        self.vectorizers_ = [clone(v) for v in self.vectorizers]
        blocks = [v.fit_transform(texts) for v in self.vectorizers_]
        self.block_widths_ = [self._width(v, b.shape[1]) for v, b in zip(self.vectorizers_, blocks)]
        edges = np.cumsum([0, *self.block_widths_])
        self.block_slices_ = [slice(int(a), int(b)) for a, b in pairwise(edges)]
        self.n_features_out_ = int(edges[-1])
        return self._stack(blocks)

    def transform(self, texts):
        """Stacked blocks of ``texts`` from the fitted vectorizers."""
        check_is_fitted(self, "vectorizers_")
        texts = self._texts(texts)
        return self._stack([v.transform(texts) for v in self.vectorizers_])

    def get_feature_names_out(self, input_features=None):
        """Block-prefixed names (``word__gold``, ``char__ gol``, ...; padding columns ``char__pad<j>``)."""
        check_is_fitted(self, "vectorizers_")
        blocks = getattr(self, "names_", None) or [f"v{i}" for i in range(len(self.vectorizers_))]
        names = []
        widths = getattr(self, "block_widths_", None) or [len(v.get_feature_names_out()) for v in self.vectorizers_]
        for block, v, width in zip(blocks, self.vectorizers_, widths):
            own = [f"{block}__{n}" for n in v.get_feature_names_out()]
            names.append(np.asarray(own + [f"{block}__pad{j}" for j in range(width - len(own))], dtype=object))
        return np.concatenate(names)


class TitleOnly(TransformerMixin, BaseEstimator):
    """Apply a text vectorizer to each text's first line (the loaders' title) only.

    As one of :class:`TextUnion`'s vectorizers it adds a headline block, whose own model
    weighs headline terms apart from the story's.

    Parameters
    ----------
    vectorizer : transformer
        A text vectorizer (e.g. word TF-IDF); cloned before fitting.

    Attributes
    ----------
    vectorizer_ : the fitted clone

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> t = TitleOnly(TfidfVectorizer()).fit(["Gold rises\ngold prices rose", "Wheat falls"])
    >>> t.get_feature_names_out().tolist()
    ['falls', 'gold', 'rises', 'wheat']
    """

    def __init__(self, vectorizer=None):
        self.vectorizer = vectorizer

    @staticmethod
    def _titles(texts):
        if isinstance(texts, str):
            raise TypeError("TitleOnly expects a list of texts, got one string; wrap it in a list.")
        return [t.split("\n", 1)[0] for t in texts]

    def fit(self, texts, y=None):
        """Fit the vectorizer on the titles of ``texts``."""
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts, y=None):
        """Fit the vectorizer on the titles and return their vectors."""
        if self.vectorizer is None:
            raise ValueError("TitleOnly needs a vectorizer, e.g. vectorizer=TfidfVectorizer().")
        self.vectorizer_ = clone(self.vectorizer)
        return self.vectorizer_.fit_transform(self._titles(texts))

    def transform(self, texts):
        """Vectors of the titles of ``texts``."""
        check_is_fitted(self, "vectorizer_")
        return self.vectorizer_.transform(self._titles(texts))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "vectorizer_")
        return self.vectorizer_.get_feature_names_out()
