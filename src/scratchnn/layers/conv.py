"""2-D convolution over images, channels last: inputs ``(N, H, W, C)``.

Why channels last: the convolution is one matrix product of the image's patches
(im2col) with the kernel, and with the channels innermost each patch row is a
contiguous copy and the product's result is already the ``(N, Ho, Wo, F)``
output. Measured on the benchmark's second convolution (batch 128, 14x14x32 to
64 channels, forward and backward), this layout took 0.07 s a step against
0.13 s for channels first, which needs two transposing copies more per step.
PyTorch and ONNX are channels first: ``kernel_to_torch`` and ``kernel_from_torch``
convert the kernel exactly, and an image batch converts with
``x.transpose(0, 3, 1, 2)`` (ours to theirs) and ``x.transpose(0, 2, 3, 1)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..functional import sum_rows
from .._validation import INT_MAX, check_bool, check_positive_int, describe
from ..initializers import Initializer
from ..regularizers import RegularizerLike
from .activations import get_activation
from .base import Layer

Pair = tuple[int, int]


def as_pair(value, argument: str, minimum: int = 1) -> Pair:
    """``3`` or ``(3, 3)`` as ``(3, 3)``: integers from ``minimum`` to NumPy's largest index."""
    items = value if isinstance(value, (tuple, list)) else (value,) * 2
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                                  and minimum <= v <= INT_MAX for v in items):
        raise ValueError(f"{argument} must be an integer >= {minimum} (up to {INT_MAX}) or a pair "
                         f"(height, width) of them, got {describe(value)}")
    return int(items[0]), int(items[1])


def as_padding(value, argument: str = "padding") -> Union[str, Pair]:
    """``"valid"``, ``"same"``, or the zeros added on each side ``(h, w)``."""
    if isinstance(value, str):
        if value.lower() in ("valid", "same"):
            return value.lower()
        raise ValueError(f"{argument} must be 'valid', 'same', an integer >= 0 or a pair of them, "
                         f"got {value!r}")
    return as_pair(value, argument, minimum=0)


#: the most values a padded image (one sample) may have: 2**60, so that a float64 array
#: of them stays within NumPy's largest size in bytes
MAX_PADDED_VALUES = 2 ** 60


def spatial_plan(layer: Layer, input_shape: tuple, kernel: Pair, stride: Pair, dilation: Pair,
                 padding: Union[str, Pair], window: str = "kernel_size") -> tuple[Pair, Pair, Pair]:
    """``(output size, pad before, pad after)`` per spatial axis of a sliding window
    over samples ``(H, W, C)``; an error naming the layer and the argument ``window``
    (``kernel_size``, ``pool_size``) when no window fits, or ``padding`` when the
    padded image would be more than ``MAX_PADDED_VALUES`` (nothing is allocated here).

    ``"same"`` pads so that the output has ``ceil(size / stride)`` positions, the
    extra zero (if any) after the data, as Keras and ONNX's ``SAME_UPPER`` do."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} expects images (N, height, width, channels), got "
                         f"samples of shape {tuple(input_shape)}; images of one channel are "
                         "X.reshape(-1, height, width, 1)")
    out, before, after = [], [], []
    for axis in range(2):
        size, span = input_shape[axis], dilation[axis] * (kernel[axis] - 1) + 1
        if padding == "same":
            n = -(-size // stride[axis])
            total = max((n - 1) * stride[axis] + span - size, 0)
            low, high = total // 2, total - total // 2
        else:
            low = high = 0 if padding == "valid" else padding[axis]
        n = (size + low + high - span) // stride[axis] + 1
        if n < 1:
            raise ValueError(f"{type(layer).__name__}: a window of {describe(span)} pixels ({window} "
                             f"{kernel}, dilation {dilation}) does not fit in images of shape "
                             f"{tuple(input_shape)} with padding {padding!r}; use smaller windows "
                             "or padding='same'")
        out.append(n), before.append(low), after.append(high)
    padded_shape = tuple(s + b + a for s, b, a in zip(input_shape[:2], before, after))
    if math.prod(padded_shape) * input_shape[2] > MAX_PADDED_VALUES:
        raise ValueError(f"{type(layer).__name__}: padding {padding!r} with {window} {kernel} and "
                         f"dilation {dilation} pads images of shape {tuple(input_shape)} to "
                         f"{describe(padded_shape[0])} x {describe(padded_shape[1])} pixels, more than "
                         f"the {MAX_PADDED_VALUES} values an image may have; use less padding or "
                         "smaller windows")
    return tuple(out), tuple(before), tuple(after)


def padded(x: np.ndarray, before: Pair, after: Pair, fill: float = 0.0) -> np.ndarray:
    """``x`` with ``fill`` added around its two spatial axes (``x`` itself without padding)."""
    if not any(before) and not any(after):
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + before[0] + after[0], w + before[1] + after[1], c), fill, dtype=x.dtype)
    out[:, before[0]:before[0] + h, before[1]:before[1] + w] = x
    return out


def unpadded(dxp: np.ndarray, before: Pair, x_shape: tuple) -> np.ndarray:
    """The gradient of ``padded``: ``dxp`` without the padding, back to ``x_shape``."""
    (top, left), (h, w) = before, x_shape[1:3]
    return dxp[:, top:top + h, left:left + w] if dxp.shape != x_shape else dxp


def check_images(layer: Layer, input_shape: tuple) -> None:
    """An error naming the layer unless samples are images ``(height, width, channels)``."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} expects images (N, height, width, channels), got "
                         f"samples of shape {tuple(input_shape)}")


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> np.ndarray:
    """A read-only view ``(N, Ho, Wo, kh, kw, C)`` of every window of ``xp``: element
    ``[n, i, j, p, q, c]`` is ``xp[n, i*sh + p*dh, j*sw + q*dw, c]``. No copy."""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(xp, span, axis=(1, 2))            # (N, H', W', C, span_h, span_w)
    view = view[:, ::stride[0], ::stride[1], :, ::dilation[0], ::dilation[1]]
    return view[:, :out[0], :out[1]].transpose(0, 1, 2, 4, 5, 3)


def window_slices(kernel: Pair, stride: Pair, dilation: Pair, out: Pair):
    """For each kernel position ``(p, q)``, the slices of the padded image that it
    reads across all windows: ``xp[:, rows, cols]`` is ``(N, Ho, Wo, C)``, element
    ``[n, i, j]`` being ``xp[n, i*sh + p*dh, j*sw + q*dw]``."""
    for p in range(kernel[0]):
        rows = slice(p * dilation[0], p * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0])
        for q in range(kernel[1]):
            cols = slice(q * dilation[1], q * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1])
            yield (p, q), rows, cols


def add_windows(target: np.ndarray, values: np.ndarray, stride: Pair, dilation: Pair) -> None:
    """The adjoint of ``windows``, for values given position by position ``(kh, kw, N, Ho,
    Wo, C)``: ``target[n, i*sh + p*dh, j*sw + q*dw, c] += values[p, q, n, i, j, c]``.

    One strided, whole-batch addition per kernel position (9 for a 3x3 kernel):
    windows overlap, so positions must be added one after another. Each
    ``values[p, q]`` is contiguous, which makes the additions twice as fast as
    from the im2col layout ``(N, Ho, Wo, kh, kw, C)``; ``np.add.at`` is slower still."""
    kh, kw, n, ho, wo, c = values.shape
    for (p, q), rows, cols in window_slices((kh, kw), stride, dilation, (ho, wo)):
        target[:, rows, cols] += values[p, q]


def kernel_to_torch(W: np.ndarray) -> np.ndarray:
    """Our kernel ``(kh, kw, C, F)`` in PyTorch's ``Conv2d.weight`` layout ``(F, C, kh, kw)``
    (and ONNX's ``Conv`` ``W``): an exact transpose."""
    return np.ascontiguousarray(np.asarray(W).transpose(3, 2, 0, 1))


def kernel_from_torch(weight) -> np.ndarray:
    """PyTorch's ``Conv2d.weight`` ``(F, C, kh, kw)`` as our kernel ``(kh, kw, C, F)``."""
    return np.ascontiguousarray(np.asarray(weight).transpose(2, 3, 1, 0))


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every deep-learning library) of
    images ``(N, H, W, C)`` with ``F`` filters:

        y[n, i, j, f] = b[f] + sum_{p, q, c} x_pad[n, i*sh + p*dh, j*sw + q*dw, c] * W[p, q, c, f]

    where ``x_pad`` is ``x`` with zeros added around (``padding``), ``(sh, sw)``
    the stride and ``(dh, dw)`` the dilation. Shapes: x ``(N, H, W, C)``, W
    ``(kh, kw, C, F)``, b ``(F,)``, y ``(N, Ho, Wo, F)`` with
    ``Ho = (H + pads - dh*(kh-1) - 1) // sh + 1`` (``"same"``: ``ceil(H / sh)``).

    Computed as one matrix product (im2col): the patches ``P`` of shape
    ``(N*Ho*Wo, kh*kw*C)``, one row per output pixel, times ``W`` reshaped to
    ``(kh*kw*C, F)``. Gradients, with ``G = dL/dy`` as ``(N*Ho*Wo, F)``::

        dL/dW = P^T G                  (kh*kw*C, F), reshaped to W's shape
        dL/db = sum of G's rows        (F,)
        dL/dP = G W^T                  (N*Ho*Wo, kh*kw*C)
        dL/dx = each row of dL/dP added back where its patch came from (col2im),
                without the padding

    Args:
        filters: number of output channels ``F``.
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s`` or ``(sh, sw)`` (default 1).
        padding: ``"valid"`` (none, default), ``"same"`` (output ``ceil(H / stride)``;
            the odd zero after the data), or the zeros on each side, ``p`` or ``(ph, pw)``
            (PyTorch's ``padding=``).
        dilation: ``d`` or ``(dh, dw)``: spacing of the kernel's taps (default 1).
        activation: an activation's name applied to the result (``"relu"``, as in
            Keras), or None (default); its derivative is applied to ``g`` first.
        use_bias: add ``b`` (default True).
        kernel_initializer: default ``"he_uniform"`` (fans ``kh*kw*C`` and ``kh*kw*F``).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer: a penalty on ``W`` added to the loss (``"l2"``, ``L2(1e-4)``,
            see ``scratchnn.regularizers``), or None (default).
        bias_regularizer: the same for ``b`` (needs ``use_bias``), or None (default).
    """

    initializer_arguments = {"W": "kernel_initializer", "b": "bias_initializer"}

    def __init__(self, filters: int, kernel_size, stride=1, padding="valid", dilation=1, *,
                 activation: Optional[str] = None, use_bias: bool = True, kernel_initializer: Union[str, Initializer] = "he_uniform",
                 bias_initializer: Union[str, Initializer] = "zeros",
                 kernel_regularizer: RegularizerLike = None, bias_regularizer: RegularizerLike = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_padding(padding)
        self.dilation = as_pair(dilation, "dilation")
        self.activation, self._activation = get_activation(activation)
        self.use_bias = check_bool(use_bias, "use_bias")
        self._set_initializers(kernel_initializer, bias_initializer)
        self._set_regularizers(kernel_regularizer, bias_regularizer, self.use_bias)

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        self._out, self._before, self._after = spatial_plan(
            self, input_shape, self.kernel_size, self.stride, self.dilation, self.padding)
        kh, kw = self.kernel_size
        channels = input_shape[2]
        fan_in, fan_out = kh * kw * channels, kh * kw * self.filters
        if max(fan_in, fan_out, math.prod(self._out) * self.filters) > INT_MAX:
            raise ValueError(f"Conv2D {self.name or self.kind!r}: filters={self.filters} and "
                             f"kernel_size={self.kernel_size} on images of shape {tuple(input_shape)} "
                             f"give more values than NumPy can index ({INT_MAX}); use fewer filters")
        self.add_param("W", (kh, kw, channels, self.filters), self._kernel_init, fan_in, fan_out)
        if self.use_bias:
            self.add_param("b", (self.filters,), self._bias_init, fan_in, fan_out)
        return (*self._out, self.filters)

    @property
    def scratch_size(self) -> int:
        """Numbers of working memory per sample beyond the output: the patches."""
        return math.prod(self._out) * math.prod(self.kernel_size) * self.input_shape[2] if self.input_shape else 0

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        xp = padded(x, self._before, self._after)
        view = windows(xp, self.kernel_size, self.stride, self.dilation, self._out)
        size = math.prod(view.shape[3:])                  # kh * kw * C
        kernel = self.W.reshape(-1, self.filters)
        if view.shape[5] >= 8:
            # The one copy of the step: every patch as a contiguous row (a view already
            # for 1x1 kernels with stride 1).
            patches = view.reshape(-1, size)
            y = patches @ kernel
            if self.use_bias:
                y += self.b
            bias_column = False
        else:
            # Few channels (an image's 1 or 3): copied row by row, a patch is a handful of
            # scattered values; copied column by column (the same matrix, column-major),
            # each column is whole image rows: 0.45 ms for the benchmark's first
            # convolution, against 2.6 ms as rows. With the bias, a column of ones joins
            # the patches and b the kernel's rows, so that one product adds b (and its
            # transpose sums db): 1.3 ms saved of that layer's 6 ms.
            bias_column = self.use_bias
            columns = np.empty((size + bias_column, view.shape[0] * view.shape[1] * view.shape[2]),
                               dtype=x.dtype)
            columns[:size].reshape(*view.shape[3:], *view.shape[:3])[...] = view.transpose(3, 4, 5, 0, 1, 2)
            if bias_column:
                columns[size] = 1
                kernel = np.concatenate([kernel, self.b[None]])
            patches = columns.T
            y = patches @ kernel
        self._cache = (patches, bias_column, x.shape, xp.shape)
        y = y.reshape(len(x), *self._out, self.filters)
        return y if self._activation is None else self._activation.forward(y, training)

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        patches, bias_column, x_shape, xp_shape = self._saved()
        if self._activation is not None:
            grad_out = self._activation.backward(grad_out)
        g = grad_out.reshape(-1, self.filters)
        if bias_column:                          # the last row of P^T G is sum(G) = db
            product = patches.T @ g
            self.dW.reshape(-1, self.filters)[...] = product[:-1]
            self.db[...] = product[-1]
        else:
            np.matmul(patches.T, g, out=self.dW.reshape(-1, self.filters))
            if self.use_bias:
                sum_rows(g, out=self.db)
        if not self.needs_input_grad:
            return None
        # dL/dP = G W^T, computed kernel position by kernel position (one stacked
        # product, G times each W[p, q]^T) so that each position's (N, Ho, Wo, C) block
        # is contiguous for col2im: measured on the benchmark's second convolution,
        # 9.6 ms for product and col2im, against 19.6 ms from the im2col layout.
        kh, kw = self.kernel_size
        per_position = np.ascontiguousarray(   # (kh*kw, F, C): small; contiguous for BLAS
            self.W.reshape(kh * kw, x_shape[3], self.filters).transpose(0, 2, 1))
        d_patches = np.matmul(g, per_position).reshape(kh, kw, x_shape[0], *self._out, x_shape[3])
        dxp = np.zeros(xp_shape, dtype=grad_out.dtype)
        add_windows(dxp, d_patches, self.stride, self.dilation)
        return unpadded(dxp, self._before, x_shape)

    def get_config(self) -> dict:
        config = {"filters": self.filters, "kernel_size": list(self.kernel_size),
                  "stride": list(self.stride),
                  "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                  "dilation": list(self.dilation), "use_bias": self.use_bias, "name": self.name}
        if self.activation is not None:
            config["activation"] = self.activation
        return {**config, **self._initializer_config(), **self._regularizer_config()}
