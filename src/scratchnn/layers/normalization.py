"""Batch normalization (per channel, over the batch) and layer normalization
(per sample, over its features)."""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np

from .._validation import check_bool, check_number, describe
from ..functional import sum_rows
from .base import Layer


def _affine(xhat: np.ndarray, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
            out: np.ndarray) -> np.ndarray:
    """``out = xhat * gamma + beta`` (either may be None: left out), written into ``out``."""
    if gamma is not None:
        np.multiply(xhat, gamma, out=out)
    else:
        np.copyto(out, xhat)
    if beta is not None:
        out += beta
    return out


class BatchNormalization(Layer):
    """Batch normalization over every axis but the last (the channels, or features).

    For inputs ``(N, F)`` each feature is normalized over the N samples; for images
    ``(N, H, W, C)`` (channels last) each channel over the ``N * H * W`` values; any
    rank works the same. With ``m`` the number of values per channel in the batch
    and sums over them::

        mean = sum(x) / m,   var = sum((x - mean)^2) / m        (biased)
        xhat = (x - mean) / sqrt(var + eps)
        y    = gamma * xhat + beta

    In training the batch's ``mean`` and ``var`` are used, and the running statistics
    follow them (``momentum`` as in Keras and ONNX; PyTorch's ``momentum=0.1`` is
    ``momentum=0.9`` here)::

        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var  = momentum * running_var  + (1 - momentum) * var * m / (m - 1)

    (the unbiased variance, as PyTorch keeps it). In inference (``training=False``)
    ``running_mean`` and ``running_var`` take the place of ``mean`` and ``var``,
    and nothing changes.

    Gradients, with ``g = dL/dy`` and means over the same ``m`` values per channel::

        dL/dgamma = sum(g * xhat),   dL/dbeta = sum(g)
        dL/dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))   training
        dL/dx = gamma / sqrt(running_var + eps) * g                               inference

    Shapes: x and y ``(N, ..., C)``; gamma, beta, running_mean, running_var ``(C,)``.
    Training needs ``m > 1`` (a batch of one 2-D sample has no variance): an error
    says so.

    Args:
        momentum: weight of the old running statistics, in [0, 1] (default 0.9).
        eps: added to the variance, > 0 (default 1e-5, as in PyTorch).
        center: learn the shift ``beta`` (default True; False leaves it out).
        scale: learn the scale ``gamma`` (default True; False leaves it out).
    """

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5, *, center: bool = True,
                 scale: bool = True, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0)
        self.eps = check_number("eps", eps, 0.0, low_open=True)
        self.center = check_bool(center, "center")
        self.scale = check_bool(scale, "scale")

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        channels = input_shape[-1]
        if self.scale:
            self.add_param("gamma", (channels,), "ones", channels, channels)
        if self.center:
            self.add_param("beta", (channels,), "zeros", channels, channels)
        #: flat samples have one value per channel each: a batch of one has no variance
        self.min_training_batch = 2 if math.prod(input_shape[:-1]) == 1 else 1
        self.add_buffer("running_mean", (channels,), 0.0)
        self.add_buffer("running_var", (channels,), 1.0)
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # One row per value, one column per channel: a view unless x is not contiguous.
        x2 = x.reshape(-1, x.shape[-1])
        gamma = self.gamma if self.scale else None
        beta = self.beta if self.center else None
        if not training:
            inv_std = 1 / np.sqrt(self.running_var + self.eps)
            factor = inv_std if gamma is None else gamma * inv_std
            shift = -self.running_mean * factor
            if beta is not None:
                shift += beta
            self._cache = (False, x2, self.running_mean.copy(), inv_std)
            y = x2 * factor
            y += shift
            return y.reshape(x.shape)
        m = x2.shape[0]
        if m < 2:
            raise ValueError(
                f"BatchNormalization {self.name or self.kind!r} needs more than one value per "
                f"channel in training, got a batch of {x.shape[0]} sample(s) of shape "
                f"{tuple(x.shape[1:])}: use a batch size above 1 (the last batch of an epoch "
                "may be the remainder)")
        # Four passes over the batch (the mean, x - mean, the squares' sums, and y);
        # xhat is left as (x - mean) times inv_std, never stored: measured on
        # (128, 28, 28, 32) float32, 9 ms where materializing xhat took 13.
        mean = sum_rows(x2)
        mean /= m
        centered = np.subtract(x2, mean)
        var = np.einsum("ij,ij->j", centered, centered)     # sum of squares, no temporary
        var /= m
        inv_std = 1 / np.sqrt(var + self.eps)
        self._cache = (True, centered, None, inv_std)
        momentum = self.momentum
        self.running_mean *= momentum
        self.running_mean += (1 - momentum) * mean
        self.running_var *= momentum
        self.running_var += ((1 - momentum) * m / (m - 1)) * var
        scale = inv_std if gamma is None else gamma * inv_std
        y = np.multiply(centered, scale)
        if beta is not None:
            y += beta
        return y.reshape(x.shape)

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        training, saved, running_mean, inv_std = self._saved()
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        factor = inv_std if not self.scale else self.gamma * inv_std
        if not training:
            # saved is the input: y is an affine map of it.
            if self.center:
                sum_rows(g2, out=self.dbeta)
            if self.scale:
                product = np.subtract(saved, running_mean)
                product *= g2                   # g * xhat / inv_std
                sum_rows(product, out=self.dgamma)
                self.dgamma *= inv_std
            return (g2 * factor).reshape(grad_out.shape) if self.needs_input_grad else None
        centered = saved                        # x - mean; xhat = centered * inv_std
        m = g2.shape[0]
        sum_g = sum_rows(g2, out=self.dbeta if self.center else None)
        sum_gx = np.einsum("ij,ij->j", g2, centered)        # sum(g * xhat) / inv_std
        sum_gx *= inv_std
        if self.scale:
            self.dgamma[...] = sum_gx
        if not self.needs_input_grad:
            return None
        # factor * (g - mean(g) - xhat * mean(g * xhat)), as g * a + centered * b + c
        grad_in = np.multiply(g2, factor)
        correction = np.multiply(centered, -factor * inv_std * sum_gx / m)
        correction -= factor * sum_g / m
        grad_in += correction
        return grad_in.reshape(grad_out.shape)

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "eps": self.eps, "center": self.center,
                "scale": self.scale, "name": self.name}


def _is_axis(value) -> bool:
    """An int that can name an axis (NumPy has at most 64)."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            and -64 <= value <= 64)


class LayerNormalization(Layer):
    """Layer normalization: each sample normalized over its own values on ``axis``.

    With means over the normalized axes of one sample (``k`` values)::

        mean = sum(x) / k,   var = sum((x - mean)^2) / k        (biased)
        xhat = (x - mean) / sqrt(var + eps)
        y    = gamma * xhat + beta

    ``gamma`` and ``beta`` have the shape of the normalized axes and are broadcast
    over the others. Unlike batch normalization, training and inference compute
    the same thing, and there are no running statistics.

    Gradients, with ``g = dL/dy``, ``h = gamma * g`` and means per sample as above::

        dL/dgamma = sum over the other axes and samples of g * xhat
        dL/dbeta  = sum over the other axes and samples of g
        dL/dx     = (h - mean(h) - xhat * mean(h * xhat)) / sqrt(var + eps)

    Shapes: x and y ``(N, d1, ..., dr)``; for ``axis=-1`` gamma and beta ``(dr,)``;
    for images ``(N, H, W, C)`` with ``axis=(1, 2, 3)``, ``(H, W, C)``. This is
    ``torch.nn.functional.layer_norm`` with ``normalized_shape`` the trailing
    dimensions, when the axes are trailing.

    Args:
        eps: added to the variance, > 0 (default 1e-5).
        axis: an axis of the batch array, or a tuple of them, to normalize over
            (negative counts from the end; never the batch axis 0). Default -1,
            the last axis, as in Keras.
        center: learn the shift ``beta`` (default True; False leaves it out).
        scale: learn the scale ``gamma`` (default True; False leaves it out).
    """

    def __init__(self, eps: float = 1e-5, *, axis: Union[int, tuple] = -1, center: bool = True,
                 scale: bool = True, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.eps = check_number("eps", eps, 0.0, low_open=True)
        if _is_axis(axis):
            self.axis: Union[int, tuple] = int(axis)
        elif isinstance(axis, (tuple, list)) and axis and all(_is_axis(a) for a in axis):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(f"axis must be an axis (an integer from -64 to 64) or a non-empty "
                             f"tuple of them, got {describe(axis)}")
        self.center = check_bool(center, "center")
        self.scale = check_bool(scale, "scale")

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        ndim = len(input_shape) + 1                         # with the batch axis
        given = (self.axis,) if isinstance(self.axis, int) else self.axis
        where = (f"LayerNormalization {self.name or self.kind!r}: axis={self.axis!r} for inputs "
                 f"of shape (N, {', '.join(map(str, input_shape))})")
        if not all(-ndim <= a < ndim for a in given):
            raise ValueError(f"{where} is out of range: axes are 1 to {ndim - 1} (or -1 to -{ndim - 1})")
        axes = sorted(a % ndim for a in given)
        if 0 in axes:
            raise ValueError(f"{where} includes the batch axis 0: normalize over sample axes only")
        if len(set(axes)) != len(axes):
            raise ValueError(f"{where} names an axis twice")
        self._axes = tuple(axes)
        self._other_axes = tuple(a for a in range(ndim) if a not in axes)    # 0 among them
        param_shape = tuple(input_shape[a - 1] for a in axes)
        # gamma and beta seen with a 1 on every axis that is not normalized
        self._broadcast_shape = tuple(input_shape[a - 1] if a in axes else 1 for a in range(1, ndim))
        size = math.prod(param_shape)
        if self.scale:
            self.add_param("gamma", param_shape, "ones", size, size)
        if self.center:
            self.add_param("beta", param_shape, "zeros", size, size)
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        axes = self._axes
        xhat = x - x.mean(axis=axes, keepdims=True)     # scaled into xhat below
        y = np.multiply(xhat, xhat)                     # the squares; y's storage afterwards
        inv_std = 1 / np.sqrt(y.mean(axis=axes, keepdims=True) + self.eps)
        xhat *= inv_std
        self._cache = (xhat, inv_std)
        gamma = self.gamma.reshape(self._broadcast_shape) if self.scale else None
        beta = self.beta.reshape(self._broadcast_shape) if self.center else None
        return _affine(xhat, gamma, beta, out=y)

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        xhat, inv_std = self._saved()
        axes, others = self._axes, self._other_axes
        if self.center:
            np.add.reduce(grad_out, axis=others, out=self.dbeta)
        product = np.multiply(grad_out, xhat)
        if self.scale:
            np.add.reduce(product, axis=others, out=self.dgamma)
        if not self.needs_input_grad:
            return None
        if self.scale:
            gamma = self.gamma.reshape(self._broadcast_shape)
            grad_in = grad_out * gamma                  # h
            product *= gamma                            # h * xhat
        else:
            grad_in = grad_out.copy()
        mean_hx = product.mean(axis=axes, keepdims=True)
        grad_in -= grad_in.mean(axis=axes, keepdims=True)
        np.multiply(xhat, mean_hx, out=product)
        grad_in -= product
        grad_in *= inv_std
        return grad_in

    def get_config(self) -> dict:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {"eps": self.eps, "axis": axis, "center": self.center, "scale": self.scale,
                "name": self.name}
