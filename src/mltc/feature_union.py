"""Moved to :mod:`mltc.features.union`; this name stays so that featurizers pickled before the move still load."""
from mltc.features.union import TextUnion, TitleOnly, repeat_title  # noqa: F401
