"""Pooling over images, channels last: inputs ``(N, H, W, C)``.

Windows, strides and padding work as in ``Conv2D`` (``scratchnn.layers.conv``);
each channel is pooled on its own.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._validation import check_bool
from .base import Layer
from .conv import (as_pair, as_padding, check_images, padded, spatial_plan, unpadded,
                   window_slices)


class _Pool2D(Layer):
    """What max and average pooling share: the window plan, from the constructor's
    arguments and the input shape."""

    def __init__(self, pool_size=2, stride=None, padding="valid", name: Optional[str] = None) -> None:
        super().__init__(name)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else as_pair(stride, "stride")
        self.padding = as_padding(padding)
        if not isinstance(self.padding, str) and any(
                p > k // 2 for p, k in zip(self.padding, self.pool_size)):
            # As PyTorch: a window must hold at least one real pixel.
            raise ValueError(f"padding must be at most half the pool size {self.pool_size} on each "
                             f"axis, got {self.padding}")

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        self._out, self._before, self._after = spatial_plan(
            self, input_shape, self.pool_size, self.stride, (1, 1), self.padding, "pool_size")
        self._image_size = tuple(input_shape[:2])
        return (*self._out, input_shape[2])

    def _slices(self):
        """``((p, q), rows, cols)`` of each window position (see ``conv.window_slices``)."""
        return window_slices(self.pool_size, self.stride, (1, 1), self._out)

    @property
    def _overlapping(self) -> bool:
        return any(s < k for s, k in zip(self.stride, self.pool_size))

    def get_config(self) -> dict:
        return {"pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "name": self.name}


class MaxPool2D(_Pool2D):
    """Max pooling: ``y[n, i, j, c] = max_{p, q} x_pad[n, i*sh + p, j*sw + q, c]``,
    the padding being ``-inf`` (it is never the maximum).

    Shapes: x ``(N, H, W, C)``, y ``(N, Ho, Wo, C)``, ``Ho = (H + pads - kh) // sh + 1``
    (``"same"``: ``ceil(H / sh)``).

    Gradient: each output's ``g`` goes to the one input that was its window's
    maximum; with ties, to the first in row-major order within the window, as
    PyTorch does. Where windows overlap (stride < pool size) an input collects
    the gradients of every window it was the maximum of.

    Args:
        pool_size: ``k`` or ``(kh, kw)`` (default 2).
        stride: default ``pool_size`` (windows side by side).
        padding: ``"valid"`` (default), ``"same"``, or ``p``/``(ph, pw)`` on each side
            (at most half the pool size, as PyTorch requires).
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        xp = padded(x, self._before, self._after, fill=-np.inf)
        # One whole-batch operation per window position (4 for 2x2 windows): the
        # running maximum, then which position holds it. Measured on the benchmark's
        # first pooling (128 x 26 x 26 x 32), this takes 4.7 ms where a copy of the
        # windows and np.argmax over them took 21 ms (argmax copies a non-last axis).
        views = [xp[:, rows, cols] for _, rows, cols in self._slices()]
        y = np.maximum(views[0], views[1]) if len(views) > 1 else views[0].copy()
        for view in views[2:]:
            np.maximum(y, view, out=y)
        # The first position holding the maximum (PyTorch's rule for ties), by Horner's
        # rule over "not the maximum" flags: w = ne0 * (1 + ne1 * (1 + ne2 * ...)).
        index_type = np.int8 if len(views) < 128 else np.int32
        which = np.zeros(y.shape, dtype=index_type)
        for view in reversed(views[:-1]):
            which += 1
            which *= view != y
        self._cache = (which, x.shape, xp.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        which, x_shape, xp_shape = self._saved()
        dxp = np.zeros(xp_shape, dtype=grad_out.dtype)
        overlapping = self._overlapping
        for position, (_, rows, cols) in enumerate(self._slices()):
            if overlapping:
                dxp[:, rows, cols] += grad_out * (which == position)
            else:    # each input pixel is in one window at most: write, do not add
                np.multiply(grad_out, which == position, out=dxp[:, rows, cols])
        return unpadded(dxp, self._before, x_shape)


class AvgPool2D(_Pool2D):
    """Average pooling: ``y[n, i, j, c] = sum_{p, q} x_pad[n, i*sh + p, j*sw + q, c] / count``,
    with ``count = kh*kw`` (``count_include_pad=True``, PyTorch's default: padded
    zeros count) or the number of real pixels in the window (``False``, as Keras's
    ``padding="same"``).

    Shapes as in ``MaxPool2D``. Gradient: ``dL/dx_pad[window] += g / count`` for each
    window, padding dropped.

    Args:
        pool_size, stride, padding: as in ``MaxPool2D``.
        count_include_pad: whether padded zeros count in the average (default True).
    """

    def __init__(self, pool_size=2, stride=None, padding="valid", *, count_include_pad: bool = True,
                 name: Optional[str] = None) -> None:
        super().__init__(pool_size, stride, padding, name)
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad")

    @property
    def _count(self):
        """What each window's sum is divided by: ``kh*kw``, or the real pixels in each
        window ``(Ho, Wo, 1)``: the window sums of an image of ones. Computed where it is
        used, not in ``build``: a model file may declare any input shape, and loading it
        must not allocate an image of that size."""
        kh, kw = self.pool_size
        if self.count_include_pad:
            return np.float64(kh * kw)
        ones = padded(np.ones((1, *self._image_size, 1)), self._before, self._after)
        return sum(ones[0, rows, cols] for _, rows, cols in self._slices())

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        xp = padded(x, self._before, self._after)
        slices = iter(self._slices())
        _, rows, cols = next(slices)
        y = xp[:, rows, cols].copy()
        for _, rows, cols in slices:          # one whole-batch addition per window position
            y += xp[:, rows, cols]
        scale = (1 / self._count).astype(x.dtype)       # 1 / count, for backward too
        y *= scale
        self._cache = (x.shape, xp.shape, scale)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, xp_shape, scale = self._saved()
        share = grad_out * scale                          # (N, Ho, Wo, C)
        dxp = np.zeros(xp_shape, dtype=grad_out.dtype)
        for _, rows, cols in self._slices():
            dxp[:, rows, cols] += share
        return unpadded(dxp, self._before, x_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "count_include_pad": self.count_include_pad}


class GlobalAveragePooling2D(Layer):
    """The mean of each channel over the image: ``y[n, c] = mean_{i, j} x[n, i, j, c]``.

    Shapes: x ``(N, H, W, C)``, y ``(N, C)``. Gradient: ``dL/dx[n, i, j, c] = g[n, c] / (H*W)``.
    """

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        check_images(self, input_shape)
        return (input_shape[2],)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x.shape
        return x.mean(axis=(1, 2), dtype=x.dtype)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        n, h, w, c = self._saved()
        dx = np.empty((n, h, w, c), dtype=grad_out.dtype)
        dx[...] = (grad_out * grad_out.dtype.type(1 / (h * w)))[:, None, None, :]
        return dx
