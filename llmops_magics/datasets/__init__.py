"""Versioned datasets: DataFrames, files and HF datasets as registry artifacts with splits."""

from .tables import to_rows
from .versions import DatasetVersion, get_dataset
from .views import DatasetDiff, DatasetHistory, dataset_history, diff_datasets, list_datasets

__all__ = [
    "DatasetDiff",
    "DatasetHistory",
    "DatasetVersion",
    "dataset_history",
    "diff_datasets",
    "get_dataset",
    "list_datasets",
    "to_rows",
]
