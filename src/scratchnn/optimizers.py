"""Optimizers, in order of increasing complexity.

Each updates the model's flat parameter vector ``p`` in place from the flat
gradient vector ``g``: ``step(params, grads)``. Their state (moments, step
count) is flat vectors too, created on the first step; ``state_dict`` /
``load_state_dict`` save and restore it. ``lr`` may be changed between steps
(learning-rate schedules do).

The update rules follow PyTorch's ``torch.optim`` exactly (weight decay is
L2 added to the gradient, except in AdamW), so results can be compared with it.
Every optimizer also takes ``learning_rate=``, Keras's name for ``lr``, and
Keras's gradient clipping, ``clipnorm=``, ``global_clipnorm=`` or ``clipvalue=``
(see ``Optimizer``).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from . import _memory
from ._validation import check_bool, check_number, describe
from .functional import max_abs

#: the smallest and largest normal numbers of each dtype a model computes in
_NORMAL_RANGE = {t: (float(np.finfo(t).tiny), float(np.finfo(t).max)) for t in (np.float32, np.float64)}


def _lr(lr, learning_rate, default: float):
    """``learning_rate=`` (the Keras name) is another name for ``lr``; not both."""
    if learning_rate is None:
        return lr
    if not (isinstance(lr, (int, float)) and lr == default):
        raise ValueError(f"pass lr or learning_rate (the same setting), not both: got lr={describe(lr)}, "
                         f"learning_rate={describe(learning_rate)}")
    return check_number("learning_rate", learning_rate, 0.0, low_open=True)


#: the gradient clipping settings every optimizer takes (see ``Optimizer``)
_CLIP_SETTINGS = ("clipnorm", "global_clipnorm", "clipvalue")


def _clip_setting(argument: str, value) -> Optional[float]:
    """None, or a finite number > 0."""
    return None if value is None else check_number(argument, value, 0.0, low_open=True)


def _checked_variables(variables, size: int) -> list[slice]:
    """``variables`` (slices of a flat vector of ``size``, in order and covering it) as
    a list of slices; a ValueError naming ``variables`` otherwise."""
    if isinstance(variables, (str, bytes)) or not hasattr(variables, "__iter__"):
        raise ValueError(f"variables must be a sequence of slices of the flat vector, "
                         f"got {describe(variables)}")
    checked, offset = [], 0
    for i, part in enumerate(variables):
        if not isinstance(part, slice):
            raise ValueError(f"variables[{i}] must be a slice, got {describe(part)}")
        start, stop, step = part.indices(size)
        if step != 1 or start != offset or stop < start or (part.stop is not None and part.stop > size):
            raise ValueError(f"variables[{i}] is {part}; the slices must follow each other with "
                             f"step 1 from 0 to the vector's size {size} (model.parameter_slices)")
        checked.append(slice(start, stop))
        offset = stop
    if offset != size:
        raise ValueError(f"variables cover the flat vector up to {offset}, but it has {size} values; "
                         "give one slice per parameter array (model.parameter_slices)")
    return checked


def _norm_clip_scale(g: np.ndarray, limit: float) -> Optional[float]:
    """``limit / ||g||_2`` when the norm is above ``limit``, else None (also for a
    zero, empty, NaN or infinite ``g``). Never overflows nor warns.

    One BLAS pass (``g . g``) nearly always; when the sum of squares overflows, or is
    so small that squares of subnormal numbers may have lost precision, the norm is
    measured again as ``m * ||g / m||`` with ``m = max |g|``."""
    with np.errstate(over="ignore"):
        squares = float(np.dot(g, g))
    if g.size * float(np.finfo(g.dtype).tiny) <= squares < math.inf:
        norm = math.sqrt(squares)
        return limit / norm if norm > limit else None
    if math.isnan(squares):
        return None
    largest = max_abs(g)
    if largest == 0 or not math.isfinite(largest):
        return None
    ratio = 0.0                      # ||g / m||^2, from 1 to g.size
    chunk = np.empty(min(g.size, 1 << 16), dtype=g.dtype)
    for i in range(0, g.size, chunk.size):
        part = np.divide(g[i:i + chunk.size], largest, out=chunk[:min(chunk.size, g.size - i)])
        ratio += float(np.dot(part, part))
    scaled_limit = limit / largest   # Python floats: inf rather than an overflow
    root = math.sqrt(ratio)
    return scaled_limit / root if root > scaled_limit else None


class Optimizer:
    """Base class: validates ``lr``, ``weight_decay`` and the gradient clipping setting,
    clips the gradients, keeps the flat state vectors, and applies the subclass's
    update rule block by block.

    A subclass names its state vectors in ``state_names()`` (they start at zero;
    ``_initial_state`` may start them elsewhere) and defines ``_update(p, g, state,
    tmp)``, the update rule written for whole arrays: it is called with matching slices of the parameters, the gradients, each state vector
    and two scratch vectors. The slices are ``BLOCK_BYTES`` long, so that the
    dozen passes of an update (Adam's m, v, sqrt, divide, ...) run over data that
    stays in the CPU's L2 cache instead of streaming every vector from memory
    a dozen times; element-wise, the result is the same as one call on the whole vectors.

    ``update_bound(params_max, grads_norm)`` gives, before a step, an upper bound on
    every ``|p|`` after it: the training step uses it to skip its guard against an
    update that overflows (a copy of the parameters and a check) on the steps where
    no overflow is possible, which is nearly all of them. The built-in optimizers
    bound the update with the simplest inequalities that hold for any state (a
    denominator ``sqrt(s) + eps`` is at least ``eps``), keeping running bounds of the
    largest state value (``_state_max``; measured once where unknown, as after
    ``load_state_dict``). The base class returns inf: a subclass of your own is guarded
    on every step unless it says more.

    A subclass whose ``_update`` writes ``tmp[0]`` only after its last read of ``g``
    (reading ``g[i]`` while writing ``tmp[0][i]`` in the same call is fine) sets
    ``GRADS_AS_SCRATCH = True``: ``step(..., overwrite_grads=True)`` then passes the
    gradient slice itself as ``tmp[0]``, which keeps one vector fewer in the cache
    (Adam's update is about 10% faster inside a training loop).

    Gradient clipping (Keras's settings, keyword arguments of every optimizer; at most
    one of them, None for none):

    - ``clipnorm=c``: each variable's gradient ``g_k`` (one parameter array: the
      ``variables`` slices given to ``step``; without them, the whole vector is one
      variable) becomes ``g_k * c / ||g_k||`` where ``||g_k||_2 > c``, so its norm is
      at most ``c`` (``torch.nn.utils.clip_grad_norm_`` on each parameter alone);
    - ``global_clipnorm=c``: all gradients together become ``g * c / ||g||`` where
      ``||g||_2 > c`` (``clip_grad_norm_`` on all parameters);
    - ``clipvalue=c``: each element is clipped to ``[-c, c]`` (``clip_grad_value_``).

    Keras refuses ``clipnorm`` with ``global_clipnorm``, and its current
    ``base_optimizer.py`` any two of the three: earlier Keras 3 releases applied only
    the first one set, in the order clipnorm, global_clipnorm, clipvalue, and
    tf.keras 2 (``OptimizerV2``) clipped the values first, then the norm. Here too at most
    one may be set (also when the attributes are changed later: the step checks), so a
    setting is never ignored nor read two ways. The norm is divided by exactly, as
    Keras does (PyTorch divides by ``||g|| + 1e-6``): a gradient at or below the limit
    is left exactly as it is, one above it ends with norm ``c`` to rounding. Clipping
    comes before the update rule and before weight decay is added (decay is not
    clipped). Norms never overflow (a float32 norm of ``1e38``-sized gradients is
    measured by scaling them first) and zero gradients are left alone; a gradient
    with NaN or infinity is not norm-clipped (the training step refuses it anyway;
    ``clipvalue`` clips infinities to ``±c``, as Keras and PyTorch do).
    Without clipping, a step pays nothing for it.
    """

    BLOCK_BYTES = 256 * 1024
    #: whether ``_update`` may be given the gradient slice as ``tmp[0]`` (see above)
    GRADS_AS_SCRATCH = False
    #: every this many steps, state values below the smallest normal float are set to 0
    FLUSH_EVERY = 100

    def __init__(self, lr: float, weight_decay: float = 0.0, *, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, global_clipnorm: Optional[float] = None) -> None:
        self.lr = check_number("lr", lr, 0.0, low_open=True)
        self.weight_decay = check_number("weight_decay", weight_decay, 0.0)
        self.clipnorm = _clip_setting("clipnorm", clipnorm)
        self.clipvalue = _clip_setting("clipvalue", clipvalue)
        self.global_clipnorm = _clip_setting("global_clipnorm", global_clipnorm)
        self._clip_limit()
        self._clip_scratch: Optional[np.ndarray] = None
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}
        self._blocks: list = []
        self._blocks_of: tuple = ()
        # bounds of max |state vector| after the last step, and those of the step that
        # update_bound announced (committed by step)
        self._state_max: dict[str, float] = {}
        self._pending_max: Optional[dict[str, float]] = None

    def step(self, params: np.ndarray, grads: np.ndarray, *, overwrite_grads: bool = False,
             variables=None) -> None:
        """Update ``params`` in place from ``grads`` (flat vectors of equal size).

        With ``overwrite_grads=True`` the optimizer may use ``grads`` as scratch space,
        which leaves it holding intermediate values (the clipped gradients among
        them); a model passes True, because its next backward pass rewrites every
        gradient anyway. With False, ``grads`` is never written.

        ``variables``: the parameter arrays as slices of the flat vectors, in order and
        covering them (``model.parameter_slices``); ``clipnorm`` clips each one's norm.
        Without it, ``clipnorm`` takes the whole vector as one variable. The other
        settings do not need it.
        """
        if grads.shape != params.shape:
            raise ValueError(f"grads has shape {grads.shape} but params has {params.shape}; "
                             "they must be flat vectors of the same size")
        if variables is not None:
            variables = _checked_variables(variables, params.size)
        if self.clipnorm is not None or self.global_clipnorm is not None or self.clipvalue is not None:
            grads = self._clipped(grads, variables, overwrite_grads)
        if self.iterations == 0:
            self.state = self._initial_state(params)
        blocks = self._blocks_for(params, grads, overwrite_grads and self.GRADS_AS_SCRATCH)
        self.iterations += 1
        self._begin_step(params.dtype)
        for p, g, state, tmp in blocks:
            self._update(p, g, state, tmp)
        if self.iterations % self.FLUSH_EVERY == 0:
            self._flush_subnormals()
        self._state_max, self._pending_max = self._pending_max or {}, None

    def update_bound(self, params_max: float, grads_norm: float) -> float:
        """An upper bound on ``max |p|`` after the next step, given ``params_max`` >=
        ``max |p|`` now and the gradients' norm ``grads_norm`` (``||g||_2``, which bounds
        every ``|g_i|``); inf when this optimizer cannot tell. Call it just before ``step``.
        ``grads_norm`` is that of the gradients before clipping (which only shrinks them)."""
        return math.inf

    # -- clipping -------------------------------------------------------------
    def _clipped(self, grads: np.ndarray, variables: Optional[list], overwrite: bool) -> np.ndarray:
        """The gradients after clipping: ``grads`` itself, written in place, when
        ``overwrite``; else a scratch vector of this optimizer (always the same one, so
        that the step's cached blocks stay valid), ``grads`` untouched."""
        if overwrite:
            out = grads
        else:
            out = self._clip_scratch
            if out is None or out.shape != grads.shape or out.dtype != grads.dtype:
                out = self._clip_scratch = _memory.zeros(grads.size, grads.dtype)
        name, limit = self._clip_limit()
        if name == "clipvalue":
            # (a limit beyond the dtype's range clips to its largest value, not to inf)
            limit = min(limit, float(np.finfo(grads.dtype).max))
            np.clip(grads, -limit, limit, out=out)
            return out
        parts = variables if name == "clipnorm" and variables else [slice(None)]
        for part in parts:
            scale = _norm_clip_scale(grads[part], limit)
            if scale is not None:
                np.multiply(grads[part], scale, out=out[part])
            elif out is not grads:
                out[part] = grads[part]
        return out

    def _clip_limit(self) -> tuple[Optional[str], Optional[float]]:
        """``(name, value)`` of the clipping setting, ``(None, None)`` without one; an
        error when more than one is set."""
        given = [(name, getattr(self, name)) for name in _CLIP_SETTINGS
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError("set at most one of clipnorm, clipvalue and global_clipnorm (as "
                             "Keras does), got " + ", ".join(f"{k}={v!r}" for k, v in given))
        return given[0] if given else (None, None)

    def _clip_bound(self, grads_norm: float) -> float:
        """A bound of every ``|g_i|`` after clipping, from the norm before it: each
        setting bounds every clipped element by its value."""
        if self.clipnorm is None and self.global_clipnorm is None and self.clipvalue is None:
            return grads_norm
        return min(grads_norm, self._clip_limit()[1])

    def _state_bound(self, name: str) -> float:
        """A bound of ``max |state[name]|``: tracked, or measured (one pass) when unknown."""
        if name in self._state_max:
            return self._state_max[name]
        vector = self.state.get(name)
        return 0.0 if vector is None else max_abs(vector)   # None: no step yet, zeros

    def _decayed_bound(self, params_max: float, grads_norm: float) -> float:
        """A bound of every ``|g_i + weight_decay p_i|`` (g clipped)."""
        return self._clip_bound(grads_norm) + self.weight_decay * params_max

    def _flush_subnormals(self) -> None:
        """Set state values smaller than the smallest normal float to exactly 0.

        A moment that decays towards zero (Adam's m for a weight whose gradient
        is nearly always 0, such as one fed by a border pixel of Fashion-MNIST)
        ends up among the subnormal numbers, on which x86 arithmetic is many
        times slower: left alone, they made epochs 25% slower by the third one.
        Zeroing them changes no update by more than about 1e-30.
        """
        for vector in self.state.values():
            tiny = np.finfo(vector.dtype).tiny
            vector[np.abs(vector) < tiny] = 0

    def _blocks_for(self, params: np.ndarray, grads: np.ndarray, grads_as_scratch: bool) -> list:
        """Matching slices ``(p, g, {name: state slice}, (tmp, tmp2))``, made once per set of
        vectors (and then the state's size is checked against the parameters'); with
        ``grads_as_scratch``, ``tmp`` is the gradient slice itself."""
        made_for = self._blocks_of
        if not made_for or params is not made_for[0] or grads is not made_for[1] \
                or self.state is not made_for[2] or grads_as_scratch != made_for[3]:
            if any(v.shape != params.shape for v in self.state.values()):
                raise ValueError(f"this optimizer's state was made for {self._state_size()} parameters, "
                                 f"but params has {params.size}; use a new optimizer for another model")
            scratch = _memory.zeros(2 * params.size, params.dtype).reshape(2, params.size)
            size = max(1, self.BLOCK_BYTES // params.itemsize)
            self._blocks = [(params[i:i + size], grads[i:i + size],
                             {k: v[i:i + size] for k, v in self.state.items()},
                             (grads[i:i + size] if grads_as_scratch else scratch[0, i:i + size],
                              scratch[1, i:i + size]))
                            for i in range(0, params.size, size)]
            self._blocks_of = (params, grads, self.state, grads_as_scratch)
        return self._blocks

    def _state_size(self) -> int:
        return next(iter(self.state.values())).size if self.state else 0

    def state_names(self) -> tuple[str, ...]:
        """The names of the state vectors this optimizer keeps once it has taken a
        step (none for plain SGD); each is documented in the class's docstring."""
        return ()

    def _initial_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """The state vectors before the first step: zeros, beside the parameters."""
        return {name: _memory.zeros_like(params) for name in self.state_names()}

    def _begin_step(self, dtype: np.dtype) -> None:
        """Compute what every block of this step shares (after ``iterations`` is
        incremented), for vectors of ``dtype``."""

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, tmp: tuple) -> None:
        """Apply the update rule to one block: ``p``, ``g`` and the ``state``
        slices match; ``tmp`` holds two scratch slices of the same size."""
        raise NotImplementedError

    def _decayed(self, p: np.ndarray, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``g + weight_decay * p``, written into ``out`` (``g`` itself without decay)."""
        if self.weight_decay == 0:
            return g
        np.multiply(p, self.weight_decay, out=out)
        out += g
        return out

    def get_config(self) -> dict:
        """Hyperparameters, as keyword arguments of the constructor (the clipping
        setting only when there is one)."""
        config = {"lr": self.lr, "weight_decay": self.weight_decay}
        for name in _CLIP_SETTINGS:
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config

    def state_dict(self) -> dict:
        """``{"iterations": int, <state name>: flat vector, ...}`` (copies), each
        vector under the meaning the class's docstring gives it."""
        return {"iterations": self.iterations, **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        self.iterations = int(state["iterations"])
        self.state = {k: _memory.copy(np.asarray(v)) for k, v in state.items() if k != "iterations"}
        self._state_max, self._pending_max = {}, None       # measured again when needed

    def __getstate__(self) -> dict:
        """What ``pickle`` and ``copy.deepcopy`` keep: not the cached blocks, which
        are views of the vectors of the last step (a copy would update copies of them)."""
        state = self.__dict__.copy()
        state["_blocks"], state["_blocks_of"], state["_clip_scratch"] = [], (), None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({name: None for name in (*_CLIP_SETTINGS, "_clip_scratch")})
        self.__dict__.update(state)      # (pickled before clipping existed: no settings in it)
        self.state = {k: _memory.copy(v) for k, v in self.state.items()}   # see _memory

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and
    L2 weight decay::

        g = grad + weight_decay * p
        if momentum > 0:
            v = momentum * v + g                   (v starts at 0)
            d = g + momentum * v  if nesterov  else  v
        else:
            d = g
        p = p - lr * d
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, *, learning_rate: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 0.01), weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = check_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def _update(self, p: np.ndarray, grad: np.ndarray, state: dict, tmp: tuple) -> None:
        g = self._decayed(p, grad, tmp[0])
        if self.momentum:
            v = state["velocity"]
            v *= self.momentum
            v += g
            if self.nesterov:
                d = np.multiply(v, self.momentum, out=tmp[1])
                d += g
            else:
                d = v
        else:
            d = g
        # p -= lr * d, without a temporary array
        p -= np.multiply(d, self.lr, out=tmp[1])

    def update_bound(self, params_max: float, grads_norm: float) -> float:
        g = self._decayed_bound(params_max, grads_norm)
        if not self.momentum:
            return params_max + self.lr * g
        v = self.momentum * self._state_bound("velocity") + g
        self._pending_max = {"velocity": v}
        return params_max + self.lr * (g + self.momentum * v if self.nesterov else v)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class AdaGrad(Optimizer):
    """AdaGrad: each parameter's step shrinks with the sum of its past squared gradients::

        g = grad + weight_decay * p
        s = s + g^2                            (s starts at initial_accumulator_value)
        p = p - lr * g / (sqrt(s) + eps)
    """

    def __init__(self, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, *,
                 learning_rate: Optional[float] = None, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, global_clipnorm: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 0.01), weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm)
        self.eps = check_number("eps", eps, 0.0, low_open=True)
        self.initial_accumulator_value = check_number("initial_accumulator_value",
                                                initial_accumulator_value, 0.0)

    def state_names(self) -> tuple[str, ...]:
        return ("sum_sq",)

    def _initial_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        state = super()._initial_state(params)
        state["sum_sq"] += self.initial_accumulator_value
        return state

    def _update(self, p: np.ndarray, grad: np.ndarray, state: dict, tmp: tuple) -> None:
        g = self._decayed(p, grad, tmp[0])
        s = state["sum_sq"]
        s += np.multiply(g, g, out=tmp[1])
        denominator = np.sqrt(s, out=tmp[1])
        denominator += self.eps
        # p -= lr * g / denominator, in the scratch vector (g itself may be tmp[0])
        p -= np.divide(np.multiply(g, self.lr, out=tmp[0]), denominator, out=tmp[0])

    def update_bound(self, params_max: float, grads_norm: float) -> float:
        # |g| / (sqrt(s) + eps) <= |g| / eps
        return params_max + self.lr * self._decayed_bound(params_max, grads_norm) / self.eps

    def get_config(self) -> dict:
        return {**super().get_config(), "eps": self.eps,
                "initial_accumulator_value": self.initial_accumulator_value}


class RMSProp(Optimizer):
    """RMSProp: divide the gradient by a running root-mean-square of recent gradients::

        g = grad + weight_decay * p
        s = rho * s + (1 - rho) * g^2          (s starts at 0)
        if momentum > 0:
            b = momentum * b + g / (sqrt(s) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (sqrt(s) + eps)

    ``rho`` is PyTorch's ``alpha``; the defaults (lr 1e-3, rho 0.9) are Keras's.
    """

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0, *,
                 learning_rate: Optional[float] = None, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, global_clipnorm: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 0.001), weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm)
        self.rho = check_number("rho", rho, 0.0, 1.0, high_open=True)
        self.eps = check_number("eps", eps, 0.0, low_open=True)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, high_open=True)

    def state_names(self) -> tuple[str, ...]:
        return ("mean_sq", "momentum_buffer") if self.momentum else ("mean_sq",)

    def _update(self, p: np.ndarray, grad: np.ndarray, state: dict, tmp: tuple) -> None:
        g = self._decayed(p, grad, tmp[0])
        s, work = state["mean_sq"], tmp[1]
        s *= self.rho                          # s = rho s + (1 - rho) g^2
        work = np.multiply(g, g, out=work)
        work *= 1 - self.rho
        s += work
        np.sqrt(s, out=work)                   # scaled = g / (sqrt(s) + eps)
        work += self.eps
        scaled = np.divide(g, work, out=work)
        if self.momentum:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += scaled
            scaled = b
        p -= np.multiply(scaled, self.lr, out=work)

    def update_bound(self, params_max: float, grads_norm: float) -> float:
        scaled = self._decayed_bound(params_max, grads_norm) / self.eps   # |g| / (sqrt(s) + eps)
        if self.momentum:
            scaled = self.momentum * self._state_bound("momentum_buffer") + scaled
            self._pending_max = {"momentum_buffer": scaled}
        return params_max + self.lr * scaled

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "eps": self.eps,
                "momentum": self.momentum}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with L2 weight decay added to the gradient::

        t = t + 1
        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g          (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    The state is ``state["m"]`` and ``state["v"]``, the moments themselves
    (``torch.optim.Adam``'s ``exp_avg`` and ``exp_avg_sq``). The last line is
    computed as ``p = p - m / (k1 * sqrt(v) + k2)`` with
    ``k1 = (1 - beta1^t) / (lr * sqrt(1 - beta2^t))`` and ``k2 = eps (1 - beta1^t) / lr``,
    the same update with the scalars folded together: twelve in-place passes over
    the vectors, no array allocated.
    """

    decoupled = False
    GRADS_AS_SCRATCH = True    # g is last read by the pass that writes g^2 into tmp[0]

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, *,
                 learning_rate: Optional[float] = None, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, global_clipnorm: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 0.001), weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm)
        self.beta1 = check_number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = check_number("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = check_number("eps", eps, 0.0, low_open=True)

    def state_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _update(self, p: np.ndarray, grad: np.ndarray, state: dict, tmp: tuple) -> None:
        if self.decoupled:
            if self.weight_decay:
                p *= 1 - self.lr * self.weight_decay
            g = grad
        else:
            g = self._decayed(p, grad, tmp[1])
        m, v, work = state["m"], state["v"], tmp[0]
        m -= g                               # m = beta1 (m - g) + g = beta1 m + (1 - beta1) g
        m *= self.beta1
        m += g
        np.multiply(g, g, out=work)          # v = beta2 v + (1 - beta2) g^2
        work *= 1 - self.beta2
        v *= self.beta2
        v += work
        np.sqrt(v, out=work)
        if self._k is not None:              # work = k1 sqrt(v) + k2
            k1, k2 = self._k
            work *= k1
            work += k2
            np.divide(m, work, out=work)     # p -= m / work
        else:                                # the unfolded form (see _begin_step)
            work /= self._sqrt_correction2   # p -= (lr / c1) m / (sqrt(v / c2) + eps)
            work += self.eps
            np.divide(m, work, out=work)
            work *= self._step_size
        p -= work

    def _begin_step(self, dtype: np.dtype) -> None:
        """The folded scalars ``k1``, ``k2`` of this step, or None when one of them
        is not a normal number of ``dtype`` (a learning rate so small that ``k1``
        overflows, or so large that ``k2`` underflows to 0, which would divide m by 0):
        then the update is computed unfolded, as PyTorch writes it."""
        t = self.iterations
        correction1 = 1 - self.beta1 ** t
        self._sqrt_correction2 = math.sqrt(1 - self.beta2 ** t)
        self._step_size = self.lr / correction1
        scale = self.lr * self._sqrt_correction2
        k = (correction1 / scale if scale else math.inf, self.eps * correction1 / self.lr)
        tiny, largest = _NORMAL_RANGE[dtype.type]
        self._k = k if all(tiny <= x <= largest for x in k) else None

    def update_bound(self, params_max: float, grads_norm: float) -> float:
        # |m_hat| / (sqrt(v_hat) + eps) <= |m| / (c1 eps), in the folded and unfolded forms
        if self.decoupled:
            g = self._clip_bound(grads_norm)
        else:
            g = self._decayed_bound(params_max, grads_norm)
        m = self.beta1 * self._state_bound("m") + (1 - self.beta1) * g
        self._pending_max = {"m": m}
        correction1 = 1 - self.beta1 ** (self.iterations + 1)
        scale = self.eps * correction1
        change = self.lr * m / scale if scale else math.inf
        if self.decoupled:
            params_max *= abs(1 - self.lr * self.weight_decay)
        return params_max + change

    def get_config(self) -> dict:
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)::

        p = p * (1 - lr * weight_decay)
        then the Adam update with g = grad (no decay term in the gradient)

    Default ``weight_decay`` is 0.01, as in PyTorch.
    """

    decoupled = True

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01, *,
                 learning_rate: Optional[float] = None, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, global_clipnorm: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 0.001), beta1, beta2, eps, weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW,
}


def get_optimizer(optimizer: Union[str, Optimizer, None], argument: str = "optimizer"):
    """Return an Optimizer for a name in ``OPTIMIZERS`` (default settings) or an Optimizer."""
    if optimizer is None or isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"{argument} must be an Optimizer or one of {sorted(OPTIMIZERS)}, "
                     f"got {optimizer!r}")
