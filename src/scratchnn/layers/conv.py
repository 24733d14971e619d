"""2-D convolution (being written: see issue 10)."""

from __future__ import annotations

from .base import Layer


class Conv2D(Layer):
    """Placeholder."""
