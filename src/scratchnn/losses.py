"""Losses. Each takes the model's raw output and the targets and returns the mean
loss; ``backward()`` then returns dL/d(output), same shape and dtype as the output.

Shapes. Outputs are ``(N, ..., k)``: N samples, any number of middle axes (time
steps of a recurrent layer, say) and k values per position; ``(N, k)`` is the
common case. Every loss works along the last axis:

* MSE, MAE, Huber and BinaryCrossEntropy are element-wise and average over all
  ``N * ... * k`` elements (PyTorch's ``reduction="mean"``).
* CrossEntropy is a softmax over the last axis, averaged over the ``N * ...``
  positions: PyTorch's ``nn.CrossEntropyLoss()`` on the logits moved to
  ``(N, k, ...)``.

The classification losses take logits and fuse the last activation into the
loss, which is both stable and cheap: for sigmoid + binary cross-entropy and
softmax + cross-entropy the gradient is ``(p - y) / n``.

``prepare_target`` is where targets are validated, once per ``fit`` or
``evaluate``; ``forward`` trusts what it returns (the output's full shape, or
integer labels of the output shape without its last axis for CrossEntropy).

Extreme values. For finite outputs and targets, in float32 or float64, forward
and backward never warn and never return NaN. The loss (a Python float, summed
in float64) is finite whenever the true mean loss is within the float64 range,
even where it is beyond float32's for a float32 model (MSE of a residual of 6e38
is 3.6e77); it is ``inf``, without a warning, only beyond float64's range. The
gradient is finite wherever the true gradient fits the output's dtype, and
``inf`` where it does not (MSE of that residual in a batch of one). Each loss
computes its usual formula first and only when that overflows (a non-finite
result: one cheap test) takes a slower exact path in float64, on values scaled
into [-1, 1] (``functional.mean_squared_difference`` and its siblings).

Sample weights. ``forward(output, target, sample_weight)`` with weights ``w``
``(N,)`` (finite, >= 0, checked by the caller with
``_validation.as_sample_weight``) gives the weighted mean of the samples' losses::

    l_n = mean of sample n's element losses (CrossEntropy: of its positions' losses)
    L   = sum_n w_n l_n / sum_n w_n,        dL/do[n] = (w_n / sum_n w_n) dl_n/do[n]

With unit weights that is the unweighted mean above (every sample has as many
elements), and integer weights act as repeated samples. Only the ratios of the
weights matter: they are used as ``u = w / max(w)`` in float64, whose sum lies
in [1, N] whatever the weights (1e-30 or 1e30). A batch whose weights are all
zero weighs nothing: its loss is 0.0 and its gradient zeros. The weighted path
keeps the promise above, with exact paths of its own that scale each sample.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np

from . import functional as F
from ._validation import _sample_of, as_class_labels, as_float_array, as_real_array, check_number


class Loss:
    """Base class. ``classification`` tells the model whether outputs are class scores."""

    classification = False

    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        """The mean loss, or with ``sample_weight`` ``(N,)`` (checked, in the output's
        dtype) the weighted mean ``sum_n w_n l_n / sum_n w_n`` of the per-sample losses."""
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, output: np.ndarray, target: np.ndarray,
                 sample_weight: Optional[np.ndarray] = None) -> float:
        # A loss written before sample weights (forward(output, target)) still works.
        if sample_weight is None:
            return self.forward(output, target)
        return self.forward(output, target, sample_weight)

    def _saved(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        return self._cache

    def get_config(self) -> dict:
        return {}

    def prepare_target(self, y, output_shape: Union[int, tuple[int, ...]], dtype: np.dtype,
                       argument: str = "y") -> np.ndarray:
        """Check ``y`` against the model's per-sample ``output_shape`` (``(k,)`` or
        ``(..., k)``, without the batch axis; an int k means ``(k,)``) and return it as
        ``forward`` expects it.

        For the element-wise losses: a finite float array of ``dtype`` with the
        output's full shape ``(N, ..., k)``. When k = 1, ``y`` may leave out that
        last axis: ``(N, ...)``, e.g. ``(N,)`` for an ``(N, 1)`` output."""
        shape = _sample_shape(output_shape)
        y = _as_numeric(y, argument)
        if y.ndim >= 1 and shape[-1] == 1 and y.shape[1:] == shape[:-1]:
            y = y.reshape(y.shape + (1,))
        if y.ndim < 1 or y.shape[1:] != shape:
            alternative = f" or {_batched(shape[:-1])}" if shape[-1] == 1 else ""
            raise ValueError(f"{argument} must have shape {_batched(shape)}{alternative} to match "
                             f"the model's {_outputs(shape)}, got shape {y.shape}")
        return as_float_array(y, argument, dtype, min_ndim=1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _sample_shape(output_shape: Union[int, tuple[int, ...]]) -> tuple[int, ...]:
    """The per-sample output shape as a tuple; an int k means ``(k,)``."""
    if isinstance(output_shape, numbers.Integral):
        return (int(output_shape),)
    shape = tuple(int(size) for size in output_shape)
    if not shape:
        raise ValueError("output_shape must have at least one axis (the k outputs), got ()")
    return shape


def _batched(shape: tuple[int, ...]) -> str:
    """How a target shape reads in an error message: ``(n_samples, 7, 10)``."""
    return "(" + ", ".join(["n_samples", *map(str, shape)]) + ("," if not shape else "") + ")"


def _outputs(shape: tuple[int, ...]) -> str:
    """The model's outputs in an error message: "3 output(s)" for the common
    ``(k,)``, "outputs of shape (7, 10) per sample" otherwise."""
    return f"{shape[0]} output(s)" if len(shape) == 1 else f"outputs of shape {shape} per sample"


def _as_numeric(y, argument: str) -> np.ndarray:
    """``y`` as a non-empty array of bools, ints or floats (ragged lists, strings,
    complex numbers and other objects refused, naming ``argument``)."""
    y = as_real_array(y, argument)
    if y.size == 0:
        raise ValueError(f"{argument} is empty: expected at least one sample")
    return y


def _mean(values: np.ndarray) -> float:
    """The mean of all elements, accumulated in float64 (``np.add.reduce`` skips
    the Python-level wrappers of ``np.mean``, which cost more than the sum here).
    Call it inside ``np.errstate(over="ignore")`` for float64 values: their sum
    can overflow, which the caller sees as a non-finite mean."""
    return float(np.add.reduce(values.ravel(), dtype=np.float64)) / values.size


#: Decorates a forward pass whose fast formula may overflow near the ends of the
#: float range (``o - t`` of +-3e38 in float32, ``0 * -inf``): there NumPy's warning
#: is silenced, and the non-finite loss it leaves sends the pass to its exact path.
#: (As a decorator it costs half of a ``with np.errstate`` block per call.)
_OVERFLOW_SHOWS_AS_INF = np.errstate(over="ignore", invalid="ignore")

#: the largest finite value of each dtype a model computes in
_LARGEST = {t: float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def _refuse_empty(loss: Loss, output: np.ndarray):
    """An empty output has no mean loss: refuse it (rather than divide by zero), and
    drop the cache so that a backward() after this cannot use an older batch."""
    loss._cache = None
    raise ValueError(f"{type(loss).__name__}: output is empty (shape {output.shape}); a loss "
                     "needs at least one value")


def _all_finite(*arrays: np.ndarray) -> bool:
    """Whether every value is finite: the slow paths' test of whether a non-finite
    fast result came from an overflow (recompute) or from NaN or inf in the input
    (keep it: the model has diverged)."""
    return all(bool(np.isfinite(a).all()) for a in arrays)


class _Weights:
    """Sample weights ``w`` ``(N,)`` as a weighted forward pass uses them:
    ``u = w / max(w)`` in float64 and ``total = sum(u)``, in [1, N] (0 when every
    weight is 0). Dividing by the maximum changes no ratio, so no loss, and it
    keeps the sum from overflowing and ``u_n l_n`` from exceeding ``l_n``."""

    def __init__(self, sample_weight: np.ndarray, n: int) -> None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,):       # (1,) would broadcast silently: a wrong loss, no error
            raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, "
                             f"got shape {w.shape}")
        top = float(w.max())
        self.u = w / top if top > 0 else np.zeros(n)
        self.total = float(np.add.reduce(self.u))

    def mean(self, values: np.ndarray) -> float:
        """``sum_n u_n l_n / total`` with ``l_n`` the float64 mean of ``values[n]``
        (``values`` has N rows: per element or per position). Not finite when an
        ``l_n`` is not, even one of weight 0 (``0 * inf`` is NaN): the caller then
        takes its exact path if the inputs are finite."""
        n = len(self.u)
        with np.errstate(over="ignore", invalid="ignore"):
            per_sample = np.add.reduce(values.reshape(n, -1), axis=1, dtype=np.float64)
            per_sample /= values.size // n
            weighted = float(np.add.reduce(self.u * per_sample))
        if self.total == 0.0:
            return 0.0 if math.isfinite(weighted) else weighted
        return weighted / self.total

    def exact_mean(self, scale: np.ndarray, scaled_mean: np.ndarray, power: int,
                   factor: float) -> float:
        """``factor * sum_n u_n l_n / total`` for per-sample means given as
        ``l_n = scale_n^power * scaled_mean_n`` (power 1 or 2; ``scale_n`` finite, the
        largest magnitude in sample n, and ``scaled_mean_n`` the mean of its values
        divided by it: at most 1). With ``q_n = u_n^(1/power) scale_n <= scale_n`` and
        ``Q = max q``, ``L = factor Q^power sum_n (q_n/Q)^power scaled_mean_n / total``:
        the largest term is near 1, nothing overflows but the last products, and
        those only where ``L`` is beyond the float64 range."""
        if self.total == 0.0:
            return 0.0
        q = self.u * scale if power == 1 else np.sqrt(self.u) * scale
        top = float(np.max(q))
        if top == 0.0:
            return 0.0
        r = q / top
        if power == 2:
            r *= r
        mean = float(np.add.reduce(r * scaled_mean)) / self.total
        return factor * (top * mean) if power == 1 else factor * (top * (top * mean))

    def exact_mean_of(self, terms: np.ndarray, factor: float) -> float:
        """``exact_mean`` of ``l_n = factor * mean(terms[n])`` for finite float64 terms."""
        scale, scaled = _scaled_rows(terms, len(self.u))
        return self.exact_mean(scale, np.add.reduce(scaled, axis=1) / scaled.shape[1], 1, factor)

    def coefficient(self, scale: float, count: int, dtype: np.dtype, ndim: int) -> np.ndarray:
        """``scale * u_n / (total * count)`` per sample, shaped ``(N, 1, ..., 1)``
        (``ndim`` axes) to broadcast against the gradient: what replaces the
        unweighted ``scale / size`` for samples of ``count`` elements (or positions).
        All zeros when every weight is 0. In ``dtype``, so that unit weights give
        that same ``scale / size``, bit for bit; in float64 where a coefficient
        would fall below ``dtype``'s normal range (a float32 weight ratio of 1e-40),
        since times a residual of 1e38 it still matters. The gradient must then be
        multiplied into an array of ``dtype`` (``*=``, or ``out=``), not by ``*``."""
        if self.total == 0.0:
            c = np.zeros(len(self.u))
        else:
            c = self.u * (scale / (self.total * count))
        shape = (-1,) + (1,) * (ndim - 1)
        dtype = np.dtype(dtype)
        if dtype.itemsize < 8 and bool(np.any((c > 0) & (c < float(np.finfo(dtype).tiny)))):
            return c.reshape(shape)
        return c.astype(dtype).reshape(shape)


def _weights(loss: Loss, sample_weight: np.ndarray, n: int) -> _Weights:
    """``_Weights`` for a forward pass of ``loss``, its cache dropped first: weights
    that are refused leave no older batch for ``backward()``."""
    loss._cache = None
    return _Weights(sample_weight, n)


def _scaled_rows(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``values`` as N float64 rows: ``(m, values / m)`` with ``m_n`` the largest
    magnitude in row n (a row of zeros stays zeros, with ``m_n = 0``)."""
    rows = np.asarray(values, dtype=np.float64).reshape(n, -1)
    m = np.max(np.abs(rows), axis=1)
    return m, rows / np.where(m > 0, m, 1.0)[:, None]


# ---------------------------------------------------------------------- regression
class MSE(Loss):
    """Mean squared error over all elements::

        L = mean((o - t)^2),    dL/do = 2 (o - t) / size

    ``size`` is the number of elements, ``N * ... * k``. Shapes: o, t ``(N, ..., k)``
    (``prepare_target`` also takes t ``(N, ...)`` when k = 1). PyTorch: ``nn.MSELoss()``.

    With sample weights w, for samples of K elements (``K = size / N``)::

        L = sum_n w_n mean_K((o_n - t_n)^2) / sum(w),   dL/do_n = 2 w_n (o_n - t_n) / (K sum(w))

    Where ``o - t`` or the sum of squares overflows (|o - t| beyond 1.8e19 in
    float32), the loss is ``functional.mean_squared_difference`` in float64 (with
    weights: ``_Weights.exact_mean`` of each sample's scaled residuals) and the
    gradient of an overflowed residual is ``c o - c t`` with ``c = 2 / size``
    (the sample's coefficient ``2 w_n / (K sum(w))`` with weights).
    """

    @_OVERFLOW_SHOWS_AS_INF
    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        if not output.size:
            _refuse_empty(self, output)
        diff = output - target
        if sample_weight is not None:
            return self._weighted_forward(diff, output, target, _weights(self, sample_weight, len(diff)))
        loss = float(np.vdot(diff, diff)) / diff.size
        overflowed = not math.isfinite(loss)
        self._cache = (diff, output, target, overflowed, None)
        if overflowed and _all_finite(output, target):
            loss = F.mean_squared_difference(output, target)
        return loss

    def _weighted_forward(self, diff, output, target, weights: _Weights) -> float:
        loss = weights.mean(diff * diff)
        overflowed = not math.isfinite(loss)
        scale = weights.coefficient(2.0, diff.size // len(diff), diff.dtype, diff.ndim)
        self._cache = (diff, output, target, overflowed, scale)
        if overflowed and _all_finite(output, target):
            # l_n = 4 m_n^2 mean((h_n / m_n)^2) for the half residuals h = (o - t) / 2
            h = F.half_difference(output, np.broadcast_to(target, diff.shape))
            m, scaled = _scaled_rows(h, len(diff))
            loss = weights.exact_mean(m, np.add.reduce(scaled * scaled, axis=1) / scaled.shape[1],
                                      2, 4.0)
        return loss

    def backward(self) -> np.ndarray:
        diff, output, target, overflowed, scale = self._saved()
        if scale is None:
            scale = diff.dtype.type(2.0 / diff.size)
            if not overflowed:
                return diff * scale
        # Where o - t overflowed, o and t have opposite signs, so c o - c t adds two
        # magnitudes without cancelling; it overflows (to the correctly rounded inf)
        # only where the true gradient is beyond the float range. (An overflowed
        # residual of weight 0 makes inf * 0 = NaN first; c o - c t makes it 0.)
        with np.errstate(over="ignore", invalid="ignore"):
            grad = np.multiply(diff, scale, out=np.empty_like(diff))   # a float64 scale too
            if not overflowed:
                return grad
            broken = ~np.isfinite(diff)
            output, target = np.broadcast_to(output, diff.shape), np.broadcast_to(target, diff.shape)
            c = scale if np.ndim(scale) == 0 else np.broadcast_to(scale, diff.shape)[broken]
            grad[broken] = output[broken] * c - target[broken] * c
        return grad


class MAE(Loss):
    """Mean absolute error over all elements::

        L = mean(|o - t|),      dL/do = sign(o - t) / size     (0 where o = t)

    Shapes: o, t ``(N, ..., k)`` (``prepare_target`` also takes t ``(N, ...)`` when
    k = 1). PyTorch: ``nn.L1Loss()``.

    With sample weights w, for samples of K elements (``K = size / N``)::

        L = sum_n w_n mean_K(|o_n - t_n|) / sum(w),    dL/do_n = w_n sign(o_n - t_n) / (K sum(w))

    Where ``o - t`` or the sum overflows, the loss is
    ``functional.mean_absolute_difference`` in float64 (with weights: twice the
    weighted mean of the half residuals, scaled per sample); ``sign`` needs no care.
    """

    @_OVERFLOW_SHOWS_AS_INF
    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        if not output.size:
            _refuse_empty(self, output)
        diff = output - target
        if sample_weight is not None:
            weights = _weights(self, sample_weight, len(diff))
            self._cache = (diff, weights.coefficient(1.0, diff.size // len(diff), diff.dtype,
                                                     diff.ndim))
            loss = weights.mean(np.abs(diff))
            if not math.isfinite(loss) and _all_finite(output, target):
                h = F.half_difference(output, np.broadcast_to(target, diff.shape))
                loss = weights.exact_mean_of(np.abs(h), 2.0)
            return loss
        loss = _mean(np.abs(diff))
        self._cache = (diff, None)
        if not math.isfinite(loss) and _all_finite(output, target):
            loss = F.mean_absolute_difference(output, target)
        return loss

    def backward(self) -> np.ndarray:
        diff, scale = self._saved()
        if scale is None:
            return np.sign(diff) * diff.dtype.type(1.0 / diff.size)
        grad = np.sign(diff)
        grad *= scale
        return grad


class Huber(Loss):
    """Huber loss over all elements, with ``r = o - t``::

        l(r) = r^2 / 2                     if |r| <= delta
               delta (|r| - delta / 2)     otherwise
        L = mean(l(r)),   dL/do = clip(r, -delta, delta) / size

    Shapes: o, t ``(N, ..., k)`` (``prepare_target`` also takes t ``(N, ...)`` when
    k = 1). PyTorch: ``nn.HuberLoss(delta=delta)``.

    Both branches in one formula, with ``q = min(|r|, delta)``::

        l(r) = q^2 / 2 + delta (|r| - q)

    so the square is taken of ``q <= delta`` only, never of a large residual.
    Where that still overflows (a delta or residual beyond 1.8e19 in float32), the
    loss is recomputed in float64 from ``r / s`` with ``s`` the largest ``|r|``,
    using ``l_delta(r) = s^2 l_(delta/s)(r/s)`` (with sample weights: ``s`` is each
    sample's largest ``|r|``, and ``_Weights.exact_mean`` combines the samples).

    With sample weights w, for samples of K elements (``K = size / N``)::

        L = sum_n w_n mean_K(l(r_n)) / sum(w),   dL/do_n = w_n clip(r_n, -delta, delta) / (K sum(w))

    Args:
        delta: where the loss turns from quadratic to linear (default 1.0).
    """

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = check_number("delta", delta, 0.0, low_open=True)

    def _delta_for(self, dtype: np.dtype) -> float:
        """``delta``, capped at the dtype's largest value: every finite |r| is below
        it anyway, and the cap is exactly representable (1e300 is not in float32)."""
        return min(self.delta, _LARGEST.get(dtype.type) or float(np.finfo(dtype).max))

    @_OVERFLOW_SHOWS_AS_INF
    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        if not output.size:
            _refuse_empty(self, output)
        delta = self._delta_for(output.dtype)
        r = output - target
        linear = np.abs(r)
        q = np.minimum(linear, delta)
        linear -= q                           # |r| - q
        linear *= delta
        q *= q
        q *= 0.5                              # q^2 / 2
        linear += q
        if sample_weight is not None:
            return self._weighted_forward(linear, r, output, target,
                                          _weights(self, sample_weight, len(r)))
        loss = _mean(linear)
        overflowed = not math.isfinite(loss)
        self._cache = (r, output, target, overflowed, None)
        if overflowed and _all_finite(output, target):
            loss = self._exact_mean(output, target)
        return loss

    def _weighted_forward(self, per_element, r, output, target, weights: _Weights) -> float:
        loss = weights.mean(per_element)
        overflowed = not math.isfinite(loss)
        scale = weights.coefficient(1.0, r.size // len(r), r.dtype, r.ndim)
        self._cache = (r, output, target, overflowed, scale)
        if overflowed and _all_finite(output, target):
            # As _exact_mean, per sample: l_n = m_n^2 * 4 mean(min(u, d)^2 / 2 + d (u - min(u, d)))
            h = np.abs(F.half_difference(output, np.broadcast_to(target, r.shape)))
            m, u = _scaled_rows(h, len(r))
            with np.errstate(over="ignore", divide="ignore"):     # delta / tiny m: d is capped at 1
                d = np.minimum((self.delta / 2.0) / m, 1.0)[:, None]
            q = np.minimum(u, d)
            per_element = 0.5 * q * q + d * (u - q)
            loss = weights.exact_mean(m, np.add.reduce(per_element, axis=1) / u.shape[1], 2, 4.0)
        return loss

    def _exact_mean(self, output: np.ndarray, target: np.ndarray) -> float:
        """The mean loss in float64 without overflow. With ``h = r / 2``, ``m = max|h|``
        and ``s = 2m``: ``u = |r| / s`` and ``d = delta / s`` (capped at 1, which
        changes nothing as ``u <= 1``) give ``l = s^2 (min(u, d)^2 / 2 + d (u - min(u, d)))``."""
        h = np.abs(F.half_difference(output, target))
        m = float(np.max(h))
        if m == 0.0:
            return 0.0
        u = h / m
        d = min((self.delta / 2.0) / m, 1.0)
        q = np.minimum(u, d)
        per_element = 0.5 * q * q + d * (u - q)
        return m * (m * (4.0 * float(np.add.reduce(per_element.ravel())) / per_element.size))

    def backward(self) -> np.ndarray:
        r, output, target, overflowed, scale = self._saved()
        delta = self._delta_for(r.dtype)
        weighted = scale is not None
        if not weighted:
            scale = 1.0 / r.size
        grad = np.clip(r, -delta, delta)
        grad *= scale if weighted else r.dtype.type(scale)
        if overflowed and r.dtype.itemsize < 8:
            # A float32 residual that overflowed is clipped to delta, unless delta is
            # beyond float32 too: then the true r (exact in float64) is the gradient's
            # numerator. (In float64 an overflowed |r| exceeds every delta.)
            broken = ~np.isfinite(r)
            o = np.broadcast_to(output, r.shape)[broken].astype(np.float64)
            t = np.broadcast_to(target, r.shape)[broken].astype(np.float64)
            if weighted:
                scale = np.broadcast_to(scale, r.shape)[broken].astype(np.float64)
            with np.errstate(over="ignore"):  # beyond float32: the correctly rounded inf
                grad[broken] = np.clip(o - t, -self.delta, self.delta) * scale
        return grad

    def get_config(self) -> dict:
        return {"delta": self.delta}


# ------------------------------------------------------------------ classification
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits z, with targets t in [0, 1], over all elements::

        l = -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] = softplus(z) - t z
        L = mean(l),    dL/dz = (sigmoid(z) - t) / size

    ``softplus(z) = max(z, 0) + log1p(exp(-|z|))`` never overflows, so logits of
    +-1000 give finite losses and gradients. ``size`` counts all elements.

    Shapes: z, t ``(N, ..., k)``; ``prepare_target`` also takes t ``(N, ...)`` when
    k = 1. Targets may be probabilities (label smoothing). PyTorch:
    ``nn.BCEWithLogitsLoss()``.

    With sample weights w, for samples of K elements (``K = size / N``)::

        L = sum_n w_n mean_K(l_n) / sum(w),    dL/dz_n = w_n (sigmoid(z_n) - t_n) / (K sum(w))
    """

    classification = True

    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        if not output.size:
            _refuse_empty(self, output)
        e = F.exp_minus_abs(output)
        self._cache = (output, target, e, None)
        # softplus(z) - t z, written so that a confident right answer keeps its
        # small loss (softplus(20) - 20 rounds to 0 in float32; log1p(exp(-20)) does not).
        # For t in [0, 1] each term is at most |z| + log 2: nothing overflows but the
        # float64 sum of float64 terms near 1e308, which the scaled mean avoids.
        per_element = np.maximum(output, 0) - target * output + np.log1p(e)
        if sample_weight is not None:
            weights = _weights(self, sample_weight, len(output))
            self._cache = (output, target, e, weights.coefficient(
                1.0, output.size // len(output), output.dtype, output.ndim))
            loss = weights.mean(per_element)
            if not math.isfinite(loss) and _all_finite(per_element):
                loss = weights.exact_mean_of(per_element, 1.0)
            return loss
        if per_element.dtype.itemsize < 8:     # float32 terms: their float64 sum cannot overflow
            return _mean(per_element)
        with np.errstate(over="ignore"):
            loss = _mean(per_element)
        if not math.isfinite(loss) and _all_finite(per_element):
            loss = F.scaled_mean(per_element)
        return loss

    def backward(self) -> np.ndarray:
        output, target, e, scale = self._saved()
        grad = F.sigmoid_from_exp(output, e)
        grad -= target
        grad *= output.dtype.type(1.0 / output.size) if scale is None else scale
        return grad

    def prepare_target(self, y, output_shape: Union[int, tuple[int, ...]], dtype: np.dtype,
                       argument: str = "y") -> np.ndarray:
        """As ``Loss.prepare_target``; the values must also lie in [0, 1]."""
        t = super().prepare_target(y, output_shape, dtype, argument)
        if np.any((t < 0) | (t > 1)):
            raise ValueError(f"{argument} must hold labels 0 and 1 (or probabilities in [0, 1]) "
                             f"for binary cross-entropy, got values in [{t.min()}, {t.max()}]")
        return t

    @staticmethod
    def probabilities(output: np.ndarray) -> np.ndarray:
        """``sigmoid(z)``, element-wise: same shape as the output."""
        return F.sigmoid(output)

    @staticmethod
    def predicted_labels(output: np.ndarray) -> np.ndarray:
        """``z > 0`` as int64: ``(N, ..., k)``, or ``(N, ...)`` when k = 1."""
        return _drop_single_last_axis((output > 0).astype(np.int64))

    @staticmethod
    def true_labels(target: np.ndarray) -> np.ndarray:
        """``t > 0.5`` as int64, shaped like ``predicted_labels``."""
        return _drop_single_last_axis((target > 0.5).astype(np.int64))


def _drop_single_last_axis(labels: np.ndarray) -> np.ndarray:
    """``(N, ..., 1)`` -> ``(N, ...)``; other shapes unchanged."""
    return labels[..., 0] if labels.ndim >= 2 and labels.shape[-1] == 1 else labels


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits z ``(N, ..., k)``, over the last axis. Each
    of the ``P = N * ...`` positions (a row ``z[n, ..., :]``) is one prediction of
    k classes, and the loss is averaged over positions::

        log p = z - logsumexp(z)                   (over the last axis, max subtracted)
        L = -(1/P) sum_positions sum_k t[.., k] log p[.., k]
        dL/dz = (p * sum_k t[.., k] - t) / P       = (p - t) / P for rows summing to 1

    Targets are either integer class labels ``(N, ...)`` in ``[0, k)`` (the output
    shape without its last axis; ``t`` is then their one-hot encoding) or one-hot
    rows or probabilities ``(N, ..., k)``, each value in [0, 1] as PyTorch asks
    (rows need not sum to 1). For 2-D outputs that is labels ``(N,)`` or rows
    ``(N, k)``, and P = N.

    This is PyTorch's ``nn.CrossEntropyLoss()`` applied to the logits moved to
    ``(N, k, ...)``. An N-D output is reshaped to ``(P, k)`` rows (labels to
    ``(P,)``) and the gradient reshaped back.

    With sample weights w, for samples of T positions (``T = P / N``; 1 for 2-D
    outputs), ``l_n`` the mean loss of sample n's positions::

        L = sum_n w_n l_n / sum(w),    dL/dz[n, ...] = w_n (p * sum_k t - t) / (T sum(w))

    For labels ``(N,)``, ``w_n = class_weight[y_n]`` is PyTorch's
    ``nn.CrossEntropyLoss(weight=class_weight)``.
    """

    classification = True

    @_OVERFLOW_SHOWS_AS_INF
    def forward(self, output: np.ndarray, target: np.ndarray,
                sample_weight: Optional[np.ndarray] = None) -> float:
        if not output.size:
            _refuse_empty(self, output)
        output_shape = output.shape
        if output.ndim != 2:
            # (N, ..., k) -> (P, k) rows; labels (N, ...) -> (P,). A 2-D output
            # skips this: it is the benchmarked common case.
            k = output.shape[-1]
            labels = target.ndim < output.ndim
            output = output.reshape(-1, k)
            target = target.reshape(-1) if labels else target.reshape(-1, k)
        n, k = output.shape          # n = P rows
        # Element [i, j] of these C-ordered (n, k) arrays is element i*k + j of
        # their ravel(): indexing that with one vector is cheaper than [rows, cols].
        row_starts = np.arange(0, n * k, k)
        # The row maximum, picked at its argmax: for rows of a few logits this is
        # several times faster than a max-reduction along the row.
        row_max = output.ravel()[row_starts + output.argmax(axis=1)]
        # A row holding values near both ends of the float range makes ``shifted``
        # -inf (exp gives the right 0), and with it -log p: the loss is then inf, or
        # NaN (0 * -inf) for probability targets, and is recomputed below.
        shifted = output - row_max[:, None]
        exp = np.exp(shifted)
        sum_exp = np.add.reduce(exp, axis=1, keepdims=True)
        p = np.divide(exp, sum_exp, out=exp)
        log_sum = np.log(sum_exp)
        weights = None if sample_weight is None else _weights(self, sample_weight, output_shape[0])
        if target.ndim == 1:
            # -log p[i, y_i] = log(sum exp) - shifted[i, y_i]
            picked = row_starts + target
            per_sample = log_sum.ravel()
            per_sample -= shifted.ravel()[picked]
            if weights is None:
                loss = float(np.add.reduce(per_sample, dtype=np.float64)) / n
            else:
                loss = weights.mean(per_sample)             # per position: N rows of T
        else:
            picked = None
            log_p = shifted - log_sum
            if weights is None:
                loss = -float(np.add.reduce(target * log_p, axis=None, dtype=np.float64)) / n
            else:
                loss = -weights.mean(np.add.reduce(target * log_p, axis=1, dtype=np.float64))
        scale = None if weights is None else weights.coefficient(
            1.0, n // output_shape[0], p.dtype, 2)          # T = P / N positions per sample
        self._cache = (p, target, picked, output_shape, scale)
        if not math.isfinite(loss) and _all_finite(output):
            terms, factor = self._exact_halves(output, target)
            loss = factor * F.scaled_mean(terms) if weights is None else \
                weights.exact_mean_of(terms, factor)
        return loss

    @staticmethod
    def _exact_halves(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
        """For ``(P, k)`` logits, finite float64 terms and a factor: the loss is
        ``factor * mean(terms)`` (of a sample's terms, with weights), without overflow.
        Per element, ``-log p = logsumexp(z) - z = log(sum exp(z - m)) + m - z`` with m
        the row maximum; halved, ``m/2 - z/2`` cannot overflow and ``t * (-log p / 2)``
        is finite for t in [0, 1]. Labels: the halves at ``y`` ``(P,)``, factor 2;
        rows: ``t * half`` ``(P, k)``, factor 2k (the sum over k of a mean over P k)."""
        x = output.astype(np.float64)
        m = np.max(x, axis=1, keepdims=True)
        shifted = F._minus_max(x, m)          # below -max: -inf, and exp(-inf) = 0 is right
        log_sum = np.log(np.add.reduce(np.exp(shifted), axis=1, keepdims=True))
        half = (m * 0.5 - x * 0.5) + log_sum * 0.5
        if target.ndim == 1:
            return half[np.arange(len(x)), target], 2.0
        return target * half, 2.0 * x.shape[1]

    def backward(self) -> np.ndarray:
        p, target, picked, output_shape, scale = self._saved()
        grad = p.copy()
        if target.ndim == 1:
            grad.ravel()[picked] -= 1          # grad[i, y_i] -= 1
        else:
            grad *= np.add.reduce(target, axis=1, keepdims=True)
            grad -= target
        if scale is None:
            grad *= grad.dtype.type(1.0 / len(p))      # len(p) = P, the number of positions
        else:
            rows = grad.reshape(len(scale), -1)         # a view: each sample's T positions
            rows *= scale
        return grad if len(output_shape) == 2 else grad.reshape(output_shape)

    def prepare_target(self, y, output_shape: Union[int, tuple[int, ...]], dtype: np.dtype,
                       argument: str = "y") -> np.ndarray:
        """Check ``y`` against the model's per-sample ``output_shape`` ``(..., k)``
        (an int k means ``(k,)``). Returns int64 class labels ``(N, ...)`` in
        ``[0, k)``, or float rows of ``dtype`` ``(N, ..., k)`` (one-hot or
        probabilities, each in [0, 1]).

        Labels are checked as they are, before any cast: ``2.0`` is class 2, while
        1e300, 2**63, -1, 0.5, NaN and bools are refused, naming the first one."""
        shape = _sample_shape(output_shape)
        k = shape[-1]
        y = _as_numeric(y, argument)
        if y.ndim == len(shape) and y.shape[1:] == shape[:-1]:
            return as_class_labels(y, argument, k, context=f" for a model with {k} outputs")
        if y.shape[1:] != shape:
            raise ValueError(f"{argument} must be integer labels {_batched(shape[:-1])} or "
                             f"one-hot/probability rows {_batched(shape)} to match the model's "
                             f"{_outputs(shape)}, got shape {y.shape}")
        t = as_float_array(y, argument, dtype, min_ndim=1)
        bad = (t < 0) | (t > 1)
        if bad.any():
            index = int(np.argmax(bad))
            raise ValueError(f"{argument} probabilities must be in [0, 1] (one-hot rows or "
                             f"probabilities), got {str(t.flat[index])} (first at "
                             f"{_sample_of(index, t.shape)})")
        return t

    @staticmethod
    def probabilities(output: np.ndarray) -> np.ndarray:
        """Softmax over the last axis: ``(N, ..., k)``, each row summing to 1."""
        return F.softmax(output, axis=-1)

    @staticmethod
    def predicted_labels(output: np.ndarray) -> np.ndarray:
        """The class of the largest logit at each position: int64 ``(N, ...)``."""
        return np.argmax(output, axis=-1)

    @staticmethod
    def true_labels(target: np.ndarray) -> np.ndarray:
        """For a prepared target: integer labels as they are, or the argmax of
        each one-hot/probability row. Either way ``(N, ...)``."""
        if target.ndim == 1 or target.dtype.kind in "iu":
            return target
        return np.argmax(target, axis=-1)


def require_loss(loss: Optional[Loss], what: str) -> Loss:
    """``loss``, or an error saying that ``what`` (``"fit()"``, ...) needs one."""
    if loss is None:
        raise ValueError(f"{what} needs a loss: pass loss=... (for example "
                         "loss='cross_entropy') to fit() or compile()")
    return loss


LOSSES: dict[str, type[Loss]] = {
    "mse": MSE, "mean_squared_error": MSE,
    "mae": MAE, "mean_absolute_error": MAE,
    "huber": Huber,
    "binary_cross_entropy": BinaryCrossEntropy, "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "cross_entropy": CrossEntropy, "categorical_crossentropy": CrossEntropy,
    "sparse_categorical_crossentropy": CrossEntropy,
}


def get_loss(loss: Union[str, Loss, None], argument: str = "loss") -> Optional[Loss]:
    """Return a Loss instance for a name in ``LOSSES`` or a Loss (returned as is)."""
    if loss is None or isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]()
    raise ValueError(f"{argument} must be a Loss or one of {sorted(LOSSES)}, got {loss!r}")
