"""Data sets: generated toy problems, Fashion-MNIST and CSV files."""

from .csv import CSVData, load_csv, load_csv_features
from .fashion_mnist import CLASS_NAMES, DatasetNotFoundError, load_fashion_mnist, read_idx
from .generated import moons, spirals, xor

__all__ = [
    "xor", "spirals", "moons",
    "load_fashion_mnist", "read_idx", "CLASS_NAMES", "DatasetNotFoundError",
    "load_csv", "load_csv_features", "CSVData",
]
