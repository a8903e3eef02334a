"""Strategies applied to the training split: resampling and weighting (``fit_resample``)."""
from mltc.strategies.none import NoStrategy

__all__ = ["NoStrategy"]
