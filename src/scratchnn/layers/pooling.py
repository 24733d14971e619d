"""Pooling over images (being written: see issue 10)."""

from __future__ import annotations

from .base import Layer


class MaxPool2D(Layer):
    """Placeholder."""


class AvgPool2D(Layer):
    """Placeholder."""


class GlobalAveragePooling2D(Layer):
    """Placeholder."""
