"""Multi-label models and the helper that turns their output into scores."""
from mltc.models.binary_relevance import BinaryRelevance, accepts_sample_weight
from mltc.models.scores import predict_scores, score_kind

__all__ = ["BinaryRelevance", "accepts_sample_weight", "predict_scores", "score_kind"]
