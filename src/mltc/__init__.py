"""mltc: an experiment runner for imbalanced multi-label text classification."""

__version__ = "0.1.0"
