"""Data sets: the in-memory container, loaders and checks."""
from mltc.data.base import DataError, Dataset
from mltc.data.synthetic import make_synthetic
from mltc.data.validate import check_dataset

__all__ = ["DataError", "Dataset", "make_synthetic", "check_dataset"]
