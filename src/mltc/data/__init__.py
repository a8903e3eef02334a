"""Data sets: the in-memory container, loaders (with download cache) and checks."""
from mltc.data.base import DataError, Dataset
from mltc.data.download import RemoteFile, cache_dir, fetch, fetch_archive
from mltc.data.files import load_files
from mltc.data.goemotions import load_goemotions
from mltc.data.reuters import load_reuters21578
from mltc.data.synthetic import make_synthetic
from mltc.data.validate import check_dataset

__all__ = ["DataError", "Dataset", "RemoteFile", "cache_dir", "check_dataset", "fetch", "fetch_archive",
           "load_files", "load_goemotions", "load_reuters21578", "make_synthetic"]
