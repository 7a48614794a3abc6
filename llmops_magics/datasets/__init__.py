"""Versioned datasets: DataFrames, files and HF datasets as registry artifacts with splits."""

from .tables import to_rows
from .versions import DatasetVersion, get_dataset, save_dataset

__all__ = ["DatasetVersion", "get_dataset", "save_dataset", "to_rows"]
