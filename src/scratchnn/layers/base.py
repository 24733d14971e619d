"""The Layer protocol that every layer follows.

A layer's life:

1. ``build(input_shape, rng) -> output_shape`` is called once by the model,
   with the shape of one sample (no batch axis). The layer declares its
   parameters with ``add_param`` and returns the shape of one output sample.
2. The model allocates one flat parameter vector and one flat gradient vector
   for all layers, initializes every declared parameter in place, and binds
   views: after binding, a parameter ``"W"`` is ``layer.W`` and its gradient is
   ``layer.dW``. Both are views into the model's vectors, so a layer must write
   them in place (``self.W[...] = ...``, ``np.matmul(..., out=self.dW)``) and
   never rebind them (``self.W = ...``); the model checks this.
3. ``forward(x, training) -> y`` keeps what ``backward`` needs from this call
   (only the latest call; a new forward overwrites it).
4. ``backward(grad_out) -> grad_in`` receives dL/dy, writes dL/dparams into the
   gradient views (overwriting them) and returns dL/dx. When the model does not
   need dL/dx (the first layer) it sets ``needs_input_grad = False`` and the
   layer may return ``None`` instead of computing it.

All arrays carry a leading batch axis of size N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..initializers import Initializer


@dataclass
class Param:
    """A parameter declared by a layer: its name, shape, initializer and fans."""

    name: str
    shape: tuple
    initializer: Initializer
    fan_in: int
    fan_out: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Layer:
    """Base class of all layers. Subclasses override ``forward`` and ``backward``
    and, when they have parameters or change the shape, ``build``."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name
        self.dtype: np.dtype = np.dtype(np.float32)
        self.rng: Optional[np.random.Generator] = None
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self.needs_input_grad = True
        self.params: list[Param] = []
        self._cache: Any = None

    # -- building ---------------------------------------------------------
    @property
    def kind(self) -> str:
        """The snake-case class name, used for default layer names: ``leaky_re_lu``."""
        return _snake_case(type(self).__name__)

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        """Declare parameters for inputs of ``input_shape``; return the output shape.

        The default keeps the shape and declares nothing (activations, dropout).
        """
        return tuple(input_shape)

    def add_param(self, name: str, shape: tuple, initializer: Initializer,
                  fan_in: int, fan_out: int) -> None:
        """Declare a parameter; the model allocates it and binds ``self.<name>``
        and its gradient ``self.d<name>``."""
        self.params.append(Param(name, tuple(int(s) for s in shape), initializer,
                                 int(fan_in), int(fan_out)))

    def get_config(self) -> dict:
        """The constructor's keyword arguments (JSON types only), for model files."""
        return {"name": self.name}

    # -- computing ------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        raise NotImplementedError

    def _saved(self) -> Any:
        """What the latest forward kept for backward; an error if there was none."""
        if self._cache is None:
            raise RuntimeError(f"layer {self.name or self.kind!r}: backward() was called "
                               "before forward(); run forward on the batch first")
        return self._cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"
