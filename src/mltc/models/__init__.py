"""Multi-label models and the helper that turns their output into scores."""
from mltc.models.binary_relevance import BinaryRelevance, accepts_sample_weight
from mltc.models.boosting import BoostedBinaryRelevance
from mltc.models.scores import predict_scores, score_kind
from mltc.models.transforms import RAkEL, ClassifierChain, EnsembleClassifierChains, LabelPowerset
from mltc.models.tree import LabelTree

__all__ = ["BinaryRelevance", "BoostedBinaryRelevance", "ClassifierChain", "EnsembleClassifierChains",
           "LabelPowerset", "LabelTree", "RAkEL", "accepts_sample_weight", "predict_scores", "score_kind"]
