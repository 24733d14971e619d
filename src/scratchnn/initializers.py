"""Weight initializers.

Each initializer is a function ``init(rng, shape, fan_in, fan_out) -> ndarray``
(float64; the model casts into its own dtype when it writes the values into the
flat parameter vector). ``fan_in`` and ``fan_out`` are the numbers of inputs
and outputs of one unit, as the layer declares them.

=====================  ===============================================
name                   distribution
=====================  ===============================================
``zeros``              0
``ones``               1
``standard_normal``    N(0, 1)  (the tutorials' choice)
``glorot_uniform``     U(-a, a),  a = sqrt(6 / (fan_in + fan_out))
``glorot_normal``      N(0, s^2), s = sqrt(2 / (fan_in + fan_out))
``he_uniform``         U(-a, a),  a = sqrt(6 / fan_in)
``he_normal``          N(0, s^2), s = sqrt(2 / fan_in)
=====================  ===============================================

``xavier_*`` and ``kaiming_*`` are aliases of ``glorot_*`` and ``he_*``.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

Initializer = Callable[[np.random.Generator, tuple, int, int], np.ndarray]


def zeros(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    return np.zeros(shape)


def ones(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    return np.ones(shape)


def standard_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal(shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def he_uniform(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def he_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros,
    "ones": ones,
    "standard_normal": standard_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
}


def get_initializer(init: Union[str, Initializer], argument: str = "initializer") -> Initializer:
    """Return the initializer named ``init`` (or ``init`` itself when it is callable)."""
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    raise ValueError(f"{argument} must be a callable or one of {sorted(INITIALIZERS)}, got {init!r}")
