"""Use a run's fitted model: :class:`TextClassifierModel`, MLflow logging, ``mltc predict`` and ``mltc promote``.

Only :mod:`mltc.serving.model` is imported here; the MLflow parts load on use.
"""
from mltc.serving.model import NotLoggableError, TextClassifierModel

__all__ = ["TextClassifierModel", "NotLoggableError"]
