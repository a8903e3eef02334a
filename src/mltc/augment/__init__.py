"""Text augmentation of training documents, targeted at minority labels (``augment=<name>``).

:class:`TextAugmenter` decides which documents to rewrite with the ML-ROS budget
and caches the rewrites; the operations in :mod:`mltc.augment.ops` do the rewriting
(EDA's four operations with WordNet, GloVe neighbours, back-translation, a local
paraphrase model).
"""
from mltc.augment.augmenter import AugmentCache, TextAugmenter
from mltc.augment.ops import (EDA, AugmentOp, BackTranslation, GloveReplacement, Paraphrase, RandomDeletion,
                              RandomInsertion, RandomSwap, SynonymReplacement)

__all__ = ["TextAugmenter", "AugmentCache", "AugmentOp", "EDA", "SynonymReplacement", "RandomInsertion",
           "RandomSwap", "RandomDeletion", "GloveReplacement", "BackTranslation", "Paraphrase"]
