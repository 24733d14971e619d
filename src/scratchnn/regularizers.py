"""Weight penalties (Keras's ``kernel_regularizer=``): a term added to the loss for
the size of a parameter array ``W``, and its gradient added to ``dL/dW``.

===========  ==================================  ==================================
class        penalty                             gradient
===========  ==================================  ==================================
``L1(l1)``   ``l1 * sum |W|``                    ``l1 * sign(W)`` (0 where W is 0)
``L2(l2)``   ``l2 * sum W^2``                    ``2 * l2 * W``
``L1L2``     ``l1 * sum |W| + l2 * sum W^2``     the sum of both
===========  ==================================  ==================================

As in Keras, the penalty is a sum over the array (not a mean), so it does not
change with the batch size; ``"l2"`` means ``L2(0.01)``. PyTorch's
``weight_decay=`` of ``SGD`` with a coefficient ``wd`` is ``L2(wd / 2)``.

A layer keeps its regularizers in ``layer.regularizers`` (parameter name ->
regularizer) and ``layer.regularization_penalty(add_gradients)`` sums them; the
training step adds that sum to the batch loss, and the gradients to
``model.grads``, after ``backward``.

Coefficients are checked when a regularizer is made (finite, >= 0) and are
plain attributes afterwards: ``reg.l2 = 1e-3`` between batches changes the
penalty from the next batch on, unchecked.

Numerics: ``penalty`` sums in float64 and never warns. For a float32 array
nothing can overflow (squares stay below 1.2e77); for a float64 array whose
sum would overflow, it is computed as ``max|W|`` times the sum of ``W / max|W|``,
so the result is ``inf`` only when the penalty itself is beyond the float64
range. ``add_gradient`` computes in the array's dtype; an element whose
gradient is beyond that dtype's range becomes ``inf`` (quietly: the training
step reports a gradient that is not finite), a zero weight always gets 0.
"""

from __future__ import annotations

import inspect
import math
from typing import Union

import numpy as np

from ._validation import check_number, describe
from .functional import max_abs


class Regularizer:
    """Base class: ``penalty(W)`` and ``add_gradient(W, dW)``; a subclass of your own
    is saved in model files once it is added to ``REGULARIZERS``."""

    def penalty(self, W: np.ndarray) -> float:
        """The penalty of the array ``W``, a Python float (summed in float64)."""
        raise NotImplementedError

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        """Add d(penalty)/dW into ``dW`` (same shape and dtype as ``W``), in place."""
        raise NotImplementedError

    def __call__(self, W: np.ndarray) -> float:
        """``penalty(W)``, as a Keras regularizer is called."""
        return self.penalty(W)

    def get_config(self) -> dict:
        """The constructor's keyword arguments."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(Regularizer):
    """``l1 * sum |W|``; gradient ``l1 * sign(W)`` (0 at W = 0, as in Keras and PyTorch).

    Args:
        l1: the coefficient (default 0.01, as in Keras).
    """

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = check_number("l1", l1, 0.0)

    def penalty(self, W: np.ndarray) -> float:
        return _l1_penalty(W, self.l1)

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        _add_l1_gradient(W, dW, self.l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum W^2``; gradient ``2 * l2 * W``.

    Args:
        l2: the coefficient (default 0.01, as in Keras).
    """

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = check_number("l2", l2, 0.0)

    def penalty(self, W: np.ndarray) -> float:
        return _l2_penalty(W, self.l2)

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        _add_l2_gradient(W, dW, self.l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum |W| + l2 * sum W^2``; gradient ``l1 * sign(W) + 2 * l2 * W``.

    Args:
        l1: coefficient of the absolute values (default 0, as in Keras).
        l2: coefficient of the squares (default 0, as in Keras).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = check_number("l1", l1, 0.0)
        self.l2 = check_number("l2", l2, 0.0)

    def penalty(self, W: np.ndarray) -> float:
        return _l1_penalty(W, self.l1) + _l2_penalty(W, self.l2)

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        _add_l1_gradient(W, dW, self.l1)
        _add_l2_gradient(W, dW, self.l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


#: what a layer's ``kernel_regularizer=`` accepts (see ``get_regularizer``)
RegularizerLike = Union[None, str, dict, Regularizer]

#: regularizers by the name model files and ``kernel_regularizer="l2"`` give them
REGULARIZERS: dict[str, type[Regularizer]] = {"l1": L1, "l2": L2, "l1l2": L1L2}


def get_regularizer(regularizer, argument: str = "regularizer"):
    """A layer's ``kernel_regularizer=`` argument as a Regularizer, or None.

    Accepts None, a Regularizer, a key of ``REGULARIZERS`` (any case; the class's
    defaults: ``"l2"`` is ``L2(0.01)``), or ``{"class": key, "config": {...}}`` as a
    model file writes it. Anything else is a TypeError, a bad name or setting a
    ValueError, each naming ``argument``."""
    if regularizer is None or isinstance(regularizer, Regularizer):
        return regularizer
    if isinstance(regularizer, str):
        return _registered(regularizer, argument)()
    if isinstance(regularizer, dict):
        if set(regularizer) != {"class", "config"} or not isinstance(regularizer["config"], dict):
            raise ValueError(f"{argument} must be {{'class': name, 'config': {{...}}}}, got "
                             f"{describe(regularizer)}")
        cls = _registered(regularizer["class"], argument)
        config = regularizer["config"]
        accepted = [name for name, p in inspect.signature(cls).parameters.items()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [key for key in config if key not in accepted]
        if unknown:
            raise ValueError(f"{argument} ({cls.__name__}): unknown argument {describe(unknown[0])}; "
                             f"{cls.__name__} accepts {accepted}")
        try:
            return cls(**config)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{argument} ({cls.__name__}): {error}") from None
    raise TypeError(f"{argument} must be None, a Regularizer, one of {sorted(REGULARIZERS)} or "
                    f"{{'class': name, 'config': {{...}}}}, got a {type(regularizer).__name__} "
                    f"({describe(regularizer)})")


def serialize(regularizer: Regularizer, argument: str = "regularizer") -> dict:
    """``{"class": key, "config": {...}}``, what ``get_regularizer`` reads back; a
    ValueError for a class that is not in ``REGULARIZERS`` (a file could not load it)."""
    for key, cls in REGULARIZERS.items():
        if type(regularizer) is cls:
            return {"class": key, "config": regularizer.get_config()}
    raise ValueError(f"{argument} is a {type(regularizer).__name__}, which is not in "
                     "scratchnn.regularizers.REGULARIZERS; add it there to save it in model files")


def _registered(name, argument: str) -> type:
    if isinstance(name, str) and name.lower() in REGULARIZERS:
        return REGULARIZERS[name.lower()]
    raise ValueError(f"{argument}: unknown regularizer {describe(name)}; it must be one of "
                     f"{sorted(REGULARIZERS)}")


# -------------------------------------------------------------------- numerics
# Each term costs nothing when its coefficient is 0 (and 0 * inf is never computed).
def _l1_penalty(W: np.ndarray, l1: float) -> float:
    return _sum_scaled(W, l1, squares=False) if l1 else 0.0


def _l2_penalty(W: np.ndarray, l2: float) -> float:
    return _sum_scaled(W, l2, squares=True) if l2 else 0.0


def _add_l1_gradient(W: np.ndarray, dW: np.ndarray, l1: float) -> None:
    if l1:
        with np.errstate(over="ignore"):
            dW += _times(np.sign(W), l1)


def _add_l2_gradient(W: np.ndarray, dW: np.ndarray, l2: float) -> None:
    if l2:
        with np.errstate(over="ignore"):
            dW += _times(W, l2, twice=True)


def _sum_scaled(W: np.ndarray, coefficient: float, squares: bool) -> float:
    """``coefficient * sum W^2`` (``squares``) or ``coefficient * sum |W|``, summed
    in float64, never warning; inf only when the result is beyond float64."""
    flat = W.reshape(-1)
    if flat.dtype != np.float64:
        if squares:
            # BLAS's float32 dot first (the training step runs this for every kernel and
            # batch: 2 us against einsum's 12); only where the float32 sum overflows
            # (|W| beyond 1.8e19) the float64 one, which cannot, cast block by block
            with np.errstate(over="ignore"):
                total = float(np.dot(flat, flat))
            if total != math.inf:
                return coefficient * total
            return coefficient * float(np.einsum("i,i->", flat, flat, dtype=np.float64))
        return coefficient * float(np.abs(flat).sum(dtype=np.float64))
    with np.errstate(over="ignore"):
        total = float(np.dot(flat, flat)) if squares else float(np.abs(flat).sum())
    if total != math.inf:
        return coefficient * total                     # Python floats: inf, never a warning
    largest = max_abs(flat)
    if largest == math.inf:                            # an infinite weight
        return math.inf
    # The sum overflowed: sum (W / m)^2 is at most the number of weights.
    scaled = flat / largest
    if squares:
        return coefficient * largest * largest * float(np.dot(scaled, scaled))
    return coefficient * largest * float(np.abs(scaled).sum())


#: the largest finite value of each float dtype (np.finfo costs microseconds a call)
_LARGEST = {t: float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64, np.longdouble)}


def _times(x: np.ndarray, coefficient: float, twice: bool = False) -> np.ndarray:
    """``coefficient * x`` (times 2 with ``twice``), a new array of ``x``'s dtype; call
    it under ``np.errstate(over="ignore")``. A coefficient beyond the dtype's range
    is applied in float64, so that 0 stays 0 instead of becoming ``0 * inf``."""
    factor = 2.0 * coefficient if twice else coefficient
    if factor <= _LARGEST[x.dtype.type]:
        return np.multiply(x, x.dtype.type(factor))
    product = np.multiply(x, coefficient, dtype=np.float64)
    if twice:
        product *= 2.0
    return product.astype(x.dtype)
