"""The Layer protocol that every layer follows.

A layer's life:

1. ``build(input_shape, rng) -> output_shape`` is called once by the model,
   with the shape of one sample (no batch axis). The layer declares what it
   keeps and returns the shape of one output sample:

   - parameters, with ``add_param(name, shape, initializer, fan_in, fan_out)``:
     trained by the optimizer, each with a gradient;
   - buffers, with ``add_buffer(name, shape, fill)``: state that is not trained
     but belongs to the model (batch norm's running mean and variance). Optimizers,
     weight decay and gradient checks never see them; model files, ``get_weights``,
     EarlyStopping's best weights, copies and ``astype`` carry them with the parameters.

2. The model allocates three flat vectors for all its layers, ``params``, ``grads``
   and ``buffers``, initializes them, and binds views: a parameter ``"W"`` becomes
   ``layer.W`` with its gradient ``layer.dW``, a buffer ``"running_mean"`` becomes
   ``layer.running_mean``. They are views into the model's vectors, so a layer
   writes them in place (``self.W[...] = ...``, ``np.matmul(..., out=self.dW)``,
   ``self.running_mean *= ...``) and never rebinds them (``self.W = ...``); the
   model checks this.
3. ``forward(x, training) -> y`` keeps what ``backward`` needs from this call
   (only the latest call; a new forward overwrites it). It may change its buffers
   only when ``training`` is true: inference never changes a model.
4. ``backward(grad_out) -> grad_in`` receives dL/dy, writes dL/dparams into the
   gradient views (overwriting them) and returns dL/dx. When the model does not
   need dL/dx (the first layer, or a layer after only layers without parameters,
   such as augmentation) it sets ``needs_input_grad = False``; the layer may return
   ``None`` instead of computing it, and backpropagation stops there.
5. ``regularization_penalty(add_gradients) -> float``, called by the training step
   after ``backward``: the sum of the penalties of ``self.regularizers``, a dict
   from a parameter's name to a ``scratchnn.regularizers.Regularizer``
   (``Dense(..., kernel_regularizer="l2")`` sets ``{"W": L2(0.01)}``); with
   ``add_gradients`` it also adds each penalty's gradient into the parameter's
   gradient view (``self.dW``). Empty by default, which costs nothing.

All arrays carry a leading batch axis of size N.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from .._validation import check_name, check_number, check_positive_int
from ..initializers import Initializer, get_initializer
from ..regularizers import Regularizer, get_regularizer, serialize


@dataclass
class ParamSpec:
    """A parameter declared by a layer: its name, shape, initializer and fans."""

    name: str
    shape: tuple
    initializer: Initializer
    fan_in: int
    fan_out: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)          # Python ints: never wraps


@dataclass
class BufferSpec:
    """A buffer declared by a layer (state that is not trained): name, shape and
    the value every element starts at."""

    name: str
    shape: tuple
    fill: float = 0.0

    @property
    def size(self) -> int:
        return math.prod(self.shape)          # Python ints: never wraps


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name).lower()    # Conv2D: conv2d


class Layer:
    """Base class of all layers. Subclasses override ``forward`` and ``backward``
    and, when they have parameters or buffers or change the shape, ``build``."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = check_name(name)
        self.dtype: np.dtype = np.dtype(np.float32)
        self.rng: Optional[np.random.Generator] = None
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self.needs_input_grad = True
        self.param_specs: list[ParamSpec] = []
        self.buffer_specs: list[BufferSpec] = []
        #: parameter name -> Regularizer (see the module's docstring)
        self.regularizers: dict[str, Regularizer] = {}
        self._cache: Any = None

    # -- building ---------------------------------------------------------
    @property
    def kind(self) -> str:
        """The snake-case class name, used for default layer names: ``leaky_re_lu``."""
        return _snake_case(type(self).__name__)

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        """Declare parameters and buffers for inputs of ``input_shape``; return the
        output shape. The default keeps the shape and declares nothing (activations,
        dropout)."""
        return tuple(input_shape)

    def add_param(self, name: str, shape: tuple, initializer: Union[str, Initializer],
                  fan_in: int, fan_out: int) -> None:
        """Declare a parameter; the model allocates it and binds ``self.<name>``
        and its gradient ``self.d<name>``. ``initializer`` is a name of
        ``scratchnn.initializers.INITIALIZERS`` (``"he_uniform"``) or a callable
        ``(rng, shape, fan_in, fan_out) -> array``."""
        self._check_new_name(name)
        where = f"layer {self.name or self.kind!r}"
        initializer = get_initializer(initializer, f"the initializer of {name!r}")
        self.param_specs.append(ParamSpec(name, self._checked_shape(name, shape), initializer,
                                          check_positive_int(fan_in, f"{where}: fan_in of {name!r}"),
                                          check_positive_int(fan_out, f"{where}: fan_out of {name!r}")))

    def add_buffer(self, name: str, shape: tuple, fill: float = 0.0) -> None:
        """Declare a buffer (state that is not trained, such as a running mean); the
        model allocates it, fills it with ``fill`` and binds ``self.<name>``."""
        self._check_new_name(name)
        self.buffer_specs.append(BufferSpec(name, self._checked_shape(name, shape),
                                            check_number("fill", fill)))

    def _set_initializers(self, kernel_initializer: Union[str, Initializer],
                          bias_initializer: Union[str, Initializer]) -> None:
        """Keep a kernel-and-bias layer's initializer arguments as given (for
        ``get_config``) and checked (an unknown name is an error here, not at build)."""
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._kernel_init = get_initializer(kernel_initializer, "kernel_initializer")
        self._bias_init = get_initializer(bias_initializer, "bias_initializer")

    def _set_regularizers(self, kernel_regularizer, bias_regularizer, use_bias: bool) -> None:
        """``self.regularizers`` of a kernel-and-bias layer (``W`` and ``b``), from its
        ``kernel_regularizer`` and ``bias_regularizer`` arguments (see
        ``scratchnn.regularizers.get_regularizer``)."""
        kernel = get_regularizer(kernel_regularizer, "kernel_regularizer")
        bias = get_regularizer(bias_regularizer, "bias_regularizer")
        if bias is not None and not use_bias:
            raise ValueError("bias_regularizer needs use_bias=True: without a bias there is "
                             "nothing to regularize")
        self.regularizers = {name: reg for name, reg in (("W", kernel), ("b", bias))
                             if reg is not None}

    def _regularizer_config(self) -> dict:
        """``kernel_regularizer`` and ``bias_regularizer`` for ``get_config``, as
        ``{"class": "l2", "config": {"l2": 0.01}}``; omitted when None."""
        return {argument: serialize(self.regularizers[name], argument)
                for name, argument in (("W", "kernel_regularizer"), ("b", "bias_regularizer"))
                if name in self.regularizers}

    def _initializer_config(self) -> dict:
        """The initializers ``_set_initializers`` kept, for ``get_config``: names only
        (a function cannot go into a model file's JSON)."""
        return {key: getattr(self, key) for key in ("kernel_initializer", "bias_initializer")
                if isinstance(getattr(self, key), str)}

    def _checked_shape(self, name: str, shape) -> tuple:
        """``shape`` as a tuple of positive ints (``()`` for a scalar)."""
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ValueError(f"layer {self.name or self.kind!r}: the shape of {name!r} must be a tuple "
                             f"of positive integers, got {shape!r}")
        return tuple(int(s) for s in shape)

    def _check_new_name(self, name: str) -> None:
        taken = set(self.bound_names())
        if not (isinstance(name, str) and name.isidentifier()) or name in taken:
            raise ValueError(f"layer {self.name or self.kind!r}: {name!r} must be a new identifier; "
                             f"already declared: {sorted(taken)}")

    def bound_names(self) -> list[str]:
        """The attributes the model binds to views of its flat vectors:
        each parameter, its gradient, each buffer."""
        names = []
        for spec in self.param_specs:
            names += [spec.name, "d" + spec.name]
        return names + [spec.name for spec in self.buffer_specs]

    def get_config(self) -> dict:
        """The constructor's keyword arguments (JSON types only), for model files."""
        return {"name": self.name}

    # -- copying --------------------------------------------------------------
    def __getstate__(self) -> dict:
        """What ``pickle`` and ``copy.deepcopy`` keep: everything but the views of
        the model's vectors (the model binds fresh ones into its copied vectors)
        and the cache of the latest forward."""
        state = self.__dict__.copy()
        for name in self.bound_names():
            state.pop(name, None)
        state["_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("regularizers", {})     # pickled before regularizers existed

    # -- computing ------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        raise NotImplementedError

    def regularization_penalty(self, add_gradients: bool = False) -> float:
        """The sum of the penalties of this layer's parameters (``self.regularizers``),
        adding their gradients into the gradient views (``self.dW``, ...) when
        ``add_gradients`` is true: call it after ``backward``, which overwrites them.
        0.0 for a layer without regularizers."""
        total = 0.0
        for name, regularizer in self.regularizers.items():
            value = getattr(self, name, None)
            if value is None:
                raise RuntimeError(f"layer {self.name or self.kind!r}: regularizers[{name!r}] "
                                   f"needs the parameter {name!r}; build the model first "
                                   f"(declared: {[spec.name for spec in self.param_specs]})")
            total += regularizer.penalty(value)
            if add_gradients:
                regularizer.add_gradient(value, getattr(self, "d" + name))
        return total

    def _saved(self) -> Any:
        """What the latest forward kept for backward; an error if there was none."""
        if self._cache is None:
            raise RuntimeError(f"layer {self.name or self.kind!r}: backward() was called "
                               "before forward(); run forward on the batch first")
        return self._cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"
