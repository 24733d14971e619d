"""Numerical gradient checks, for our layers and for yours.

``gradcheck`` compares the gradients that backpropagation computes with central
differences ``(L(w + eps) - L(w - eps)) / (2 eps)``, in float64, for every
parameter array of a model (or of a single layer) and for its input. A correct
backward pass gives relative errors around 1e-9; anything above 1e-6 is a bug
(or an input sitting on a kink, such as ReLU at exactly 0).

Example, for a layer of your own::

    errors = snn.gradcheck(MyLayer(), np.random.default_rng(0).normal(size=(3, 5)))
    assert max(errors.values()) < 1e-6, errors
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import numpy as np

from ._validation import check_bool, check_number, check_same_length, make_rng
from .functional import max_abs
from .training import all_finite, quiet_overflow
from .layers.base import Layer
from .losses import Loss, get_loss
from .model import Sequential


class _ProjectionLoss(Loss):
    """``L = sum(output * R)`` for a fixed random ``R``: every output element gets
    a different weight, so every path through the layer is exercised."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def forward(self, output: np.ndarray, target) -> float:
        self._cache = output
        return float(np.sum(output * self.weights))

    def backward(self) -> np.ndarray:
        self._saved()
        return self.weights.copy()


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``f()`` with respect to the array ``x``,
    which ``f`` reads; ``x`` is perturbed in place, one element at a time, and restored."""
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x must be contiguous
    if not np.shares_memory(flat, x):
        raise ValueError("x must be a contiguous array")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / (||a|| + ||n||)``, and 0 when both are zero. Both are divided by
    their largest magnitude first, so that huge finite gradients cannot overflow the norms."""
    largest = max(max_abs(analytic), max_abs(numeric))
    if largest == 0:
        return 0.0
    a, n = analytic / largest, numeric / largest
    return float(np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n)))


def gradcheck(model: Union[Sequential, Layer], X, y=None,
              loss: Union[str, Loss, None] = None, *, eps: float = 1e-6,
              training: bool = False, seed: int = 0) -> dict[str, float]:
    """Relative error between backpropagated and numerical gradients.

    Args:
        model: a Sequential model, or a single Layer (wrapped in a float64 model).
            A model is copied to float64 first; the original is not changed.
        X: a small batch of inputs (a few samples: the check costs two forward
            passes per parameter).
        y: targets for ``loss``.
        loss: a loss name or Loss. Defaults to the model's loss, or, when there is
            none (or for a single layer), to ``sum(output * R)`` with a fixed random R.
        eps: the central-difference step, in (0, 1].
        training: run layers in training mode. Dropout then draws the same mask
            for every evaluation, so its gradient can be checked too.
        seed: seed for building a single layer and for R.

    Returns:
        ``{"dense_0.W": 3e-10, ..., "input": 2e-10}``: one relative error per
        parameter array, and one for the gradient with respect to X.
    """
    eps = check_number("eps", eps, 0.0, 1.0, low_open=True)
    rng = make_rng(seed)
    training = check_bool(training, "training")
    if isinstance(model, Layer):
        model = Sequential([model], seed=seed, dtype="float64")
    elif not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential or a Layer, got {type(model).__name__}")
    else:
        model = model.astype("float64")   # a copy: the original stays as it is, built or not
    x = model.check_input(X).copy()
    for layer in model.layers:       # every layer backpropagates: the input's gradient is checked
        layer.needs_input_grad = True

    loss_fn = get_loss(loss) or model.loss
    if loss_fn is None:
        weights = rng.standard_normal((len(x), *model.output_shape))
        loss_fn, target = _ProjectionLoss(weights), None
    else:
        if y is None:
            raise ValueError(f"y is required to check gradients through the loss "
                             f"{type(loss_fn).__name__}, got None")
        target = loss_fn.prepare_target(y, model.output_shape, model.dtype)
        check_same_length(x, target)

    rng_state = model.rng.bit_generator.state
    buffers = model.buffers.copy()

    def evaluate() -> float:
        # The same dropout mask and the same buffers (a running mean that training
        # mode updates) for every evaluation.
        model.rng.bit_generator.state = rng_state
        model.buffers[...] = buffers
        return loss_fn.forward(model.forward(x, training), target)

    # Inputs so large that float64 overflows have no gradient to check: say so,
    # instead of NumPy's warnings and NaN errors.
    with quiet_overflow():
        finite = math.isfinite(evaluate())
        grad_in = model.backward(loss_fn.backward())
        analytic = {name: grad.copy() for name, grad in model.named_gradients()}
        errors = {}
        if finite and all_finite(grad_in.ravel()) and all(all_finite(g.ravel()) for g in analytic.values()):
            for name, view in model.named_parameters():
                errors[name] = relative_error(analytic[name], numerical_gradient(evaluate, view, eps))
            errors["input"] = relative_error(grad_in, numerical_gradient(evaluate, x, eps))
    if not errors or not all(math.isfinite(e) for e in errors.values()):
        raise ValueError("X gives a loss or gradients that are not finite in float64 (or that "
                         "overflow at X +- eps): gradients can only be checked where they are "
                         "finite; use smaller inputs")
    return errors
