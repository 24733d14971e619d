"""Data sets: generated toy problems, Fashion-MNIST and CSV files."""

from .generated import xor

__all__ = ["xor"]
