"""Batch and layer normalization (being written: see issue 10)."""

from __future__ import annotations

from .base import Layer


class BatchNormalization(Layer):
    """Placeholder."""


class LayerNormalization(Layer):
    """Placeholder."""
