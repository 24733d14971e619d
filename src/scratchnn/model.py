"""Sequential: a stack of layers, the flat vectors they share, and what a user calls.

The model owns three flat vectors and hands each layer named views into them:

    params    every trained parameter, layer after layer   (layer.W, layer.b, ...)
    grads     their gradients, in the same order            (layer.dW, layer.db, ...)
    buffers   state that is not trained                     (layer.running_mean, ...)

Optimizers, weight decay and gradient checks work on ``params`` and ``grads`` only;
model files, ``get_weights``/``set_weights``, copies and ``astype`` carry ``buffers``
too. The training loop is ``scratchnn.training``; ``fit`` delegates to it.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _memory, io
from . import metrics as _metrics
from . import training
from ._validation import (as_float_array, as_real_array, check_dtype, check_name,
                          check_positive_int, check_same_length, describe)
from .callbacks import Callback, History
from .layers.base import Layer
from .layers.activations import Sigmoid, Softmax
from .losses import BinaryCrossEntropy, CrossEntropy, Loss, get_loss, require_loss
from .optimizers import Optimizer, get_optimizer
from .training import DivergenceError, quiet_overflow

__all__ = ["Sequential", "DivergenceError"]

_VECTOR_NAMES = {"params": "parameter", "grads": "gradient", "buffers": "buffer"}
#: the activation each classification loss applies to the raw outputs itself
_FUSED_ACTIVATION = {CrossEntropy: Softmax, BinaryCrossEntropy: Sigmoid}


class Sequential:
    """A stack of layers applied in order, with Keras-style training.

    Example::

        model = Sequential([Dense(4), Sigmoid(), Dense(1)], seed=42)
        history = model.fit(X, y, loss="binary_cross_entropy", optimizer=SGD(lr=0.1),
                            epochs=10_000, batch_size=None)
        model.predict_proba(X)

    Parameters live in one flat vector ``model.params`` and their gradients in
    ``model.grads``; every layer's ``W``, ``b``, ``dW``, ``db`` are views into
    them. State that is not trained (batch norm's running statistics) lives in
    ``model.buffers``, viewed the same way. ``model.backward`` fills ``grads``; a
    training step then lets the optimizer use them as scratch space, so read
    gradients after ``backward``, not after a step. The model is built (input
    size inferred, parameters initialized) on the first call to ``fit``,
    ``predict`` or ``evaluate``, or by ``build``.

    A copy (``copy.deepcopy``, ``pickle``, ``astype``) gets vectors of its own and
    views into them: it predicts and trains exactly as the original does.

    Args:
        layers: the layers, first to last.
        seed: seed of the model's random generator (initialization, shuffling,
            dropout); ``None`` draws fresh entropy.
        dtype: ``"float32"`` (default) or ``"float64"``.
        input_shape: the shape of one sample, such as ``(784,)``: the model is
            built at once (``summary()`` works before the first ``fit``). Without
            it, the first ``fit``, ``predict`` or ``evaluate`` builds it.

    ``model[i]`` is ``model.layers[i]``, and ``model["dense_0"]`` the layer of that name.
    """

    def __init__(self, layers: Iterable[Layer] = (), *, seed: Optional[int] = None,
                 dtype: str = "float32", name: str = "sequential",
                 input_shape: Optional[Sequence[int]] = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {describe(seed)}")
        self.dtype = check_dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.name = check_name(name, "name", allow_none=False)
        self.layers: list[Layer] = []
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self.params: Optional[np.ndarray] = None
        self.grads: Optional[np.ndarray] = None
        self.buffers: Optional[np.ndarray] = None
        self.loss: Optional[Loss] = None
        self.optimizer: Optional[Optimizer] = None
        self.metrics: Optional[list[str]] = None
        self.classes: Optional[np.ndarray] = None
        self.history: Optional[History] = None
        self.stop_training = False
        #: a bound of max |params| kept by the training step (None: not known; see train_step)
        self.params_max: Optional[float] = None
        # (qualified name, layer, attribute, view, vector) of every bound view
        self._views: list[tuple[str, Layer, str, np.ndarray, str]] = []
        if isinstance(layers, Layer):
            raise TypeError("layers must be a list of layers, got a single "
                            f"{type(layers).__name__}: write Sequential([{type(layers).__name__}(...)])")
        if isinstance(layers, (str, bytes, dict)) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a list of scratchnn layers, got {describe(layers)}")
        for layer in layers:
            self.add(layer)
        if input_shape is not None:
            if isinstance(input_shape, numbers.Integral):
                input_shape = (input_shape,)
            self.build(input_shape)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, key: Union[int, str]) -> Layer:
        """``model[0]``, ``model[-1]`` (by position) or ``model["dense_0"]`` (by name)."""
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            names = [layer.name for layer in self.layers]
            raise KeyError(f"no layer named {key!r}; the layers are {names}"
                           + ("" if self.built else " (names are given when the model is built)"))
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"a model is indexed by a layer's position or name, got {key!r}; "
                            "for several layers use model.layers[i:j]")
        if not -len(self.layers) <= key < len(self.layers):
            raise IndexError(f"layer index {key} is out of range for a model of "
                             f"{len(self.layers)} layers")
        return self.layers[key]

    # ---------------------------------------------------------------- structure
    def add(self, layer: Layer) -> None:
        """Append a layer (before the model is built)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a scratchnn Layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError("cannot add a layer to a model that is already built")
        if any(layer is other for other in self.layers):
            raise ValueError(f"this {type(layer).__name__} instance is already in the model; "
                             "create a new layer instead of reusing one")
        self.layers.append(layer)

    @property
    def built(self) -> bool:
        return self.params is not None

    def build(self, input_shape: Sequence[int]) -> "Sequential":
        """Build every layer for samples of ``input_shape`` (no batch axis), then
        allocate the flat vectors and initialize the parameters and buffers."""
        return self._build(input_shape, "input_shape")

    def _build(self, input_shape: Sequence[int], argument: str) -> "Sequential":
        """``build``, naming ``argument`` (where the shape came from: ``"X"`` when the
        first data builds the model) in errors."""
        if not self.layers:
            raise ValueError("the model has no layers")
        if isinstance(input_shape, (str, bytes, dict)) or not isinstance(input_shape, Iterable):
            raise TypeError(f"input_shape must be a tuple of positive integers such as (784,), "
                            f"got {describe(input_shape)}")
        shape = tuple(check_positive_int(s, "input_shape") for s in input_shape)
        if not shape:
            raise ValueError("input_shape must have at least one axis, such as (784,), got ()")
        try:
            self._build_layers(shape)
            return self._allocate()
        except ValueError as error:
            self.input_shape = self.output_shape = None
            what = "X has samples of shape" if argument == "X" else f"{argument}"
            raise ValueError(f"{what} {shape}: {error}") from None

    def _build_layers(self, shape: tuple) -> None:
        """Name and build each layer in turn, from the shape of one input sample."""
        self.input_shape = shape
        counts: dict[str, int] = {}
        for layer in self.layers:
            if layer.name is None:
                layer.name = f"{layer.kind}_{counts.get(layer.kind, 0)}"
                counts[layer.kind] = counts.get(layer.kind, 0) + 1
            layer.dtype, layer.rng = self.dtype, self.rng
            layer.param_specs, layer.buffer_specs = [], []
            layer.input_shape = shape
            shape = tuple(layer.build(shape, self.rng))
            layer.output_shape = shape
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        self.output_shape = shape

    def _allocate(self) -> "Sequential":
        n_params = sum(spec.size for layer in self.layers for spec in layer.param_specs)
        n_buffers = sum(spec.size for layer in self.layers for spec in layer.buffer_specs)
        self._check_size(n_params, n_buffers)
        try:
            self.params = _memory.zeros(n_params, self.dtype)
            self.grads = _memory.zeros(n_params, self.dtype)
            self.buffers = np.zeros(n_buffers, self.dtype)
        except MemoryError:
            self.params = self.grads = self.buffers = None
            raise MemoryError(f"not enough memory for the model's {n_params:,} parameters "
                              f"({_bytes(2 * n_params * self.dtype.itemsize)} with their gradients); "
                              "use smaller layers") from None
        self._bind()
        self.params_max = None
        for layer in self.layers:
            for spec in layer.param_specs:
                getattr(layer, spec.name)[...] = _initial_values(layer, spec, self.rng, self.dtype)
            for spec in layer.buffer_specs:
                getattr(layer, spec.name)[...] = spec.fill
        return self

    def _check_size(self, n_params: int, n_buffers: int) -> None:
        """Refuse, before allocating anything, a model whose parameters and
        gradients (and the optimizer's state, about as much again) cannot fit in
        this machine's memory: an error naming the largest layer, not a MemoryError."""
        needed = (4 * n_params + n_buffers) * self.dtype.itemsize
        available = _physical_memory()
        if available is None or needed <= available:
            return
        largest = max(self.layers, key=lambda layer: sum(s.size for s in layer.param_specs))
        count = sum(s.size for s in largest.param_specs)
        raise ValueError(f"the model has {n_params:,} parameters ({largest.name!r} alone has {count:,}): "
                         f"training them needs about {_bytes(needed)}, and this machine has "
                         f"{_bytes(available)} of memory; use smaller layers")

    def _bind(self) -> None:
        """Hand each layer its views into ``params``, ``grads`` and ``buffers``."""
        self._views = []
        # made once here, not at every step that clips each array's norm (training._optimizer_step)
        self._parameter_slices: list[slice] = []
        param_offset = buffer_offset = 0

        def bind(layer, attribute, vector_name, offset, spec):
            view = getattr(self, vector_name)[offset:offset + spec.size].reshape(spec.shape)
            setattr(layer, attribute, view)
            self._views.append((f"{layer.name}.{spec.name}", layer, attribute, view, vector_name))

        trained_before = False
        for layer in self.layers:
            # Nothing needs dL/dX of the data, nor of what only layers without
            # parameters made of it (augmentation in front of the first Conv2D).
            layer.needs_input_grad = trained_before
            trained_before = trained_before or bool(layer.param_specs)
            for spec in layer.param_specs:
                bind(layer, spec.name, "params", param_offset, spec)
                bind(layer, "d" + spec.name, "grads", param_offset, spec)
                self._parameter_slices.append(slice(param_offset, param_offset + spec.size))
                param_offset += spec.size
            for spec in layer.buffer_specs:
                bind(layer, spec.name, "buffers", buffer_offset, spec)
                buffer_offset += spec.size

    def check_parameter_views(self) -> None:
        """Raise if a layer replaced one of its parameter, gradient or buffer arrays
        (``self.W = ...``) instead of writing into it (``self.W[...] = ...``):
        a replaced array is no longer trained, saved or checked. ``fit`` checks
        after its first epoch and at the end."""
        for _, layer, attribute, view, vector_name in self._views:
            if getattr(layer, attribute, None) is not view:
                raise RuntimeError(
                    f"layer {layer.name!r} rebound {attribute!r}: it is no longer a view of the "
                    f"model's flat {_VECTOR_NAMES[vector_name]} vector. Write in place instead "
                    f"(self.{attribute}[...] = value, or np.matmul(..., out=self.{attribute}))")

    def _named(self, vector_name: str) -> list[tuple[str, np.ndarray]]:
        return [(name, view) for name, _, _, view, vector in self._views if vector == vector_name]

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """``[("dense_0.W", view), ...]`` in the order of ``params``."""
        return self._named("params")

    @property
    def parameter_slices(self) -> list[slice]:
        """Where each parameter array lies in ``params`` (and its gradient in ``grads``),
        in order: what ``clipnorm`` clips one by one."""
        self._require_built("parameter_slices")
        return self._parameter_slices

    def named_gradients(self) -> list[tuple[str, np.ndarray]]:
        """``[("dense_0.W", view of dL/dW), ...]``: the same names, views into ``grads``."""
        return self._named("grads")

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """``[("layer.running_mean", view), ...]`` in the order of ``buffers``."""
        return self._named("buffers")

    def count_params(self) -> int:
        """The number of trained parameters (buffers not included)."""
        return 0 if self.params is None else int(self.params.size)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by name: ``{"dense_0.W": array, ...,
        "norm_0.running_mean": array}``; ``set_weights`` takes it back."""
        self._require_built("get_weights()")
        return {name: view.copy() for name, view in self.named_parameters() + self.named_buffers()}

    def set_weights(self, weights: dict) -> None:
        """Write every parameter and buffer from ``weights`` (what ``get_weights``
        returned): the same names, shapes matching, values finite. Nothing is
        written unless all of them are valid."""
        self._require_built("set_weights()")
        if not isinstance(weights, dict):
            raise TypeError(f"weights must be a dict of arrays by name (what get_weights() "
                            f"returns), got {type(weights).__name__}")
        targets = dict(self.named_parameters() + self.named_buffers())
        missing, unknown = sorted(set(targets) - set(weights)), sorted(set(weights) - set(targets))
        if missing or unknown:
            raise ValueError(f"weights must have exactly the names {list(targets)}; "
                             f"missing {missing}, unknown {unknown}")
        values = {}
        for name, view in targets.items():
            value = as_float_array(weights[name], f"weights[{name!r}]", self.dtype, min_ndim=0)
            if value.shape != view.shape:
                raise ValueError(f"weights[{name!r}] has shape {value.shape}, expected {view.shape}")
            values[name] = value
        for name, view in targets.items():
            view[...] = values[name]
        self.params_max = None

    def astype(self, dtype: str) -> "Sequential":
        """A copy of this model with parameters, buffers and optimizer state cast to ``dtype``."""
        clone = copy.deepcopy(self)
        clone.dtype = check_dtype(dtype)
        for layer in clone.layers:
            layer.dtype = clone.dtype
        if clone.built:
            for vector_name in ("params", "grads", "buffers"):   # deepcopy placed them already
                vector = getattr(clone, vector_name)
                if vector.dtype != clone.dtype:
                    setattr(clone, vector_name, _memory.copy(vector.astype(clone.dtype)))
            clone._bind()
        if clone.optimizer is not None and clone.optimizer.state:
            clone.optimizer.load_state_dict({k: (v.astype(dtype) if isinstance(v, np.ndarray) else v)
                                             for k, v in clone.optimizer.state_dict().items()})
        return clone

    def __setstate__(self, state: dict) -> None:
        """After ``pickle`` or ``copy.deepcopy``: the flat vectors arrive as arrays of
        their own and the layers without their views (``Layer.__getstate__``);
        put the vectors back in the memory ``build`` gives and bind the views again."""
        self.params_max = None       # (older pickles lack it)
        self.__dict__.update(state)
        if self.built:
            for vector_name in ("params", "grads", "buffers"):
                setattr(self, vector_name, _memory.copy(getattr(self, vector_name)))
            self._bind()

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise RuntimeError(f"the model is not built yet: call build(input_shape), or fit or "
                               f"predict once, before {what}")

    # ------------------------------------------------------------------ compute
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Raw outputs (logits for classification losses) of a batch ``x`` that
        is already checked and of the model's dtype. Layers change their buffers
        only when ``training`` is true."""
        for layer in self.layers:
            x = layer.forward(x, training)
            # A layer of the user's that returns the wrong thing is named here, not
            # by a NumPy error in the next layer (a few attribute reads per layer).
            if type(x) is not np.ndarray or x.shape[1:] != layer.output_shape or x.dtype != self.dtype:
                _wrong_array(layer, "forward", x, layer.output_shape, self.dtype)
        return x

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        """Fill ``self.grads`` from dL/d(output); return dL/dx when the first layer computes it.
        Backpropagation stops at the first layer with ``needs_input_grad`` false: the
        layers before it have no parameters (``_bind``), so nothing there needs a gradient."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
            if not layer.needs_input_grad:
                return None
            if (type(grad_out) is not np.ndarray or grad_out.shape[1:] != layer.input_shape
                    or grad_out.dtype != self.dtype):
                _wrong_array(layer, "backward", grad_out, layer.input_shape, self.dtype)
        return grad_out

    # ------------------------------------------------------------ configuration
    def compile(self, loss: Union[str, Loss, None] = None,
                optimizer: Union[str, Optimizer, None] = None,
                metrics: Optional[Sequence[str]] = None) -> "Sequential":
        """Set the loss, optimizer and metrics that ``fit`` and ``evaluate`` use.
        Any of them may also be passed to ``fit`` directly."""
        new_loss = get_loss(loss)
        if new_loss is not None:
            self.loss = new_loss
        new_optimizer = get_optimizer(optimizer)
        if new_optimizer is not None:
            self.optimizer = new_optimizer
        if metrics is not None:
            if isinstance(metrics, str):
                metrics = [metrics]
            if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
                raise TypeError(f"metrics must be a list of metric names such as ['accuracy'], "
                                f"got {describe(metrics)}")
            self.metrics = list(metrics)
        if self.loss is not None:
            _metrics.check_names(self.metrics, self.loss)
            self._check_head()
        return self

    def _check_head(self) -> None:
        """Refuse a last layer that applies the activation the loss applies itself
        (a Keras habit: Softmax before cross_entropy gives softmax twice, a wrong
        loss and probabilities squashed towards 1/k)."""
        fused = _FUSED_ACTIVATION.get(type(self.loss))
        if fused is None or not self.layers:
            return
        last = self.layers[-1]
        activation = getattr(last, "activation", None)
        if isinstance(last, fused) or activation == fused.__name__.lower():
            where = (f"the last layer's activation={activation!r}" if activation else
                     f"the last layer, {type(last).__name__}(),")
            raise ValueError(f"{type(self.loss).__name__} applies {fused.__name__.lower()} to the raw "
                             f"outputs itself, so {where} would apply it twice: remove it (the model "
                             f"then outputs logits; predict_proba gives the probabilities)")

    @property
    def metric_names(self) -> list[str]:
        """The metrics ``fit`` logs and ``evaluate`` returns: ``metrics`` when set,
        else the loss's defaults (accuracy; or mae and r2)."""
        return self.metrics if self.metrics is not None else _metrics.default_names(self.loss)

    def compute_metrics(self, target: np.ndarray, output: np.ndarray) -> dict[str, float]:
        """The model's metrics of raw ``output`` against a prepared ``target``
        (what ``check_data`` returns)."""
        names = self.metric_names
        if not names:
            return {}
        if self.loss.classification:
            truth, predicted = self.loss.true_labels(target), self.loss.predicted_labels(output)
        else:
            truth, predicted = target, output
        available = _metrics.available(self.loss)
        return {name: available[name](truth, predicted) for name in names}

    # ------------------------------------------------------------------- checks
    def check_input(self, X, argument: str = "X") -> np.ndarray:
        """``X`` as a finite array of the model's dtype whose samples have the
        model's input shape (building the model on first use); else an error
        naming ``argument``."""
        if self.built and len(self.input_shape) == 1 and _is_one_sample(X, self.input_shape[0]):
            raise ValueError(f"{argument} must be a 2-D array (n_samples, {self.input_shape[0]}), got "
                             f"one sample of shape ({self.input_shape[0]},); for one sample use "
                             f"{argument}.reshape(1, -1) (or {argument}[i:i + 1] instead of {argument}[i])")
        X = as_float_array(X, argument, self.dtype)
        if not self.built:
            self._build(X.shape[1:], argument)
        elif X.shape[1:] != self.input_shape:
            if len(self.input_shape) == 1 and X.ndim == 2:
                raise ValueError(f"{argument} has {X.shape[1]} features per sample, but the model "
                                 f"expects {self.input_shape[0]}")
            raise ValueError(f"{argument} has samples of shape {X.shape[1:]}, but the model expects "
                             f"samples of shape {self.input_shape}"
                             + (" (images are channels last: (height, width, channels))"
                                if len(self.input_shape) == 3 else ""))
        return X

    def check_data(self, X, y, x_name: str = "X", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
        """``(X, target)``: ``check_input(X)``, and ``y`` checked and converted by the
        loss for the model's output shape (labels, one-hot rows or values), of the same length."""
        X = self.check_input(X, x_name)
        if y is None:
            raise ValueError(f"{y_name} is required, got None")
        self._check_outputs_fit_loss()
        classes = None
        if self.loss.classification:
            y, classes = self._encode_labels(y, y_name)
        target = self.loss.prepare_target(y, self.output_shape, self.dtype, y_name)
        check_same_length(X, target, x_name, y_name)
        if classes is not None:
            self.classes = classes
        return X, target

    def _check_outputs_fit_loss(self) -> None:
        if isinstance(self.loss, CrossEntropy) and self.output_shape[-1] == 1:
            raise ValueError("cross_entropy needs one output per class, and this model has 1 "
                             "(its last layer outputs shape "
                             f"{(None, *self.output_shape)}): for two classes use Dense(2) as the "
                             "last layer, or keep Dense(1) with loss='binary_cross_entropy'")

    def _encode_labels(self, y, argument: str) -> tuple[object, Optional[np.ndarray]]:
        """Class labels that are not numbers (strings, as scikit-learn accepts them) as
        integer codes: through ``model.classes`` when it is set, else sorted, with
        ``model.classes`` to be set to them. Numbers pass unchanged (they are codes
        0..k-1, one-hot rows or probabilities). Returns ``(y, new classes or None)``."""
        if isinstance(y, np.ndarray):
            labels = y
        else:
            try:
                labels = np.asarray(y)
            except (ValueError, TypeError):
                return y, None                # ragged: prepare_target says so
        if labels.dtype.kind not in "USO" or labels.size == 0:
            return y, None
        if labels.dtype.kind == "O" and all(isinstance(v, numbers.Number) and not isinstance(v, bool)
                                            for v in labels.ravel()[:1000]):
            return y, None                    # numbers in an object array (a pandas column)
        values, codes = _unique_labels(labels, argument)
        if self.classes is not None:
            classes = io.check_classes(self.classes, self, "model.classes")
            known = {c: i for i, c in enumerate(classes)}
            unknown = [v for v in values.tolist() if v not in known]    # tolist: plain values
            if unknown:
                raise ValueError(f"{argument} has labels that are not in model.classes "
                                 f"{classes!r:.200}: {unknown[:5]!r}")
            mapping = np.array([known[v] for v in values.tolist()], dtype=np.int64)
            return mapping[codes].reshape(labels.shape), None
        expected = 2 if self.output_shape[-1] == 1 else self.output_shape[-1]
        if len(values) != expected:
            raise ValueError(
                f"{argument} has {len(values)} distinct labels {values.tolist()!r:.200}, but the model "
                f"has {self.output_shape[-1]} output{'s' if self.output_shape[-1] != 1 else ''}, "
                f"for {expected} classes: give the last layer one output per class, or set "
                "model.classes to every label (in the order of the outputs) before fit")
        return codes.reshape(labels.shape), values

    # ----------------------------------------------------------------- training
    def fit(self, X, y, *, loss: Union[str, Loss, None] = None,
            optimizer: Union[str, Optimizer, None] = None,
            metrics: Optional[Sequence[str]] = None,
            epochs: int = 1, batch_size: Optional[int] = 32, shuffle: bool = True,
            validation_data: Optional[tuple] = None, validation_split: float = 0.0,
            callbacks: Sequence[Callback] = (), verbose: int = 0, sample_weight=None,
            class_weight=None) -> History:
        """Train the model; return a History of per-epoch figures. The loop is
        ``scratchnn.training.fit``.

        Args:
            X: inputs ``(N, features...)``.
            y: targets: integer labels ``(N,)`` or one-hot rows for ``cross_entropy``;
                0/1 labels for ``binary_cross_entropy``; values ``(N,)`` or ``(N, k)``
                for regression losses (for outputs ``(N, ..., k)``: ``(N, ...)``).
            loss, optimizer, metrics: as in ``compile`` (the optimizer defaults to Adam).
            epochs: passes over the data.
            batch_size: samples per step; ``None`` for the full batch. The last,
                smaller batch of an epoch is kept.
            shuffle: reshuffle the samples at the start of every epoch.
            validation_data: ``(X_val, y_val)``, evaluated after every epoch.
            validation_split: fraction of ``X, y`` (taken from the end, before
                shuffling, as in Keras) held out for validation instead.
            callbacks: Callback instances (EarlyStopping, ModelCheckpoint, ...).
            verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
            sample_weight: one non-negative weight per sample ``(N,)``: the loss of
                each batch is the weighted mean (``sum w l / sum w``), and the epoch's
                loss the weighted mean over the epoch. With ``validation_split`` the
                held-out samples' weights are not used.
            class_weight: ``{class: weight}`` (the labels of ``model.classes`` when it is
                set, else the class indices) or ``"balanced"``; multiplies
                ``sample_weight``. See ``training.sample_weights``.

        With an optimizer that needs a closure (``LBFGS``) every epoch is one
        iteration on the full batch (``batch_size`` and ``shuffle`` do not apply),
        and training stops early when it has converged (``history.converged`` says why).

        Ctrl-C stops training cleanly after the current batch (a second Ctrl-C
        interrupts at once); the model keeps the weights of its last step and
        ``history.interrupted`` is True. A NaN or infinite loss or gradient
        raises DivergenceError, naming the layer and the step, and leaves the
        weights and buffers of the last finite step. NumPy's overflow and
        invalid-value warnings, which would only precede that error, are silenced
        while ``fit`` runs (``np.errstate(over="ignore", invalid="ignore")``,
        entered once; callbacks run inside it too).
        """
        return training.fit(self, X, y, loss=loss, optimizer=optimizer, metrics=metrics,
                            epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                            validation_data=validation_data, validation_split=validation_split,
                            callbacks=callbacks, verbose=verbose, sample_weight=sample_weight,
                            class_weight=class_weight)

    # --------------------------------------------------------------- inference
    def output(self, X, *, batch_size: Optional[int] = None) -> np.ndarray:
        """Raw outputs ``(N, *output_shape)`` of ``X`` (logits for classification
        losses), checked and computed in batches of ``batch_size`` with
        ``training=False``. The default batch (``inference_batch_size``) keeps the
        largest array of a batch near 4 Mi numbers, so predicting 10,000 images never
        needs more memory than a training step does. An output that overflows the dtype is an error
        naming the sample."""
        return self._output_checked(self.check_input(X), batch_size)

    def _output_checked(self, X: np.ndarray, batch_size: Optional[int]) -> np.ndarray:
        """``output`` of inputs that ``check_input`` returned."""
        batch_size = (check_positive_int(batch_size, "batch_size", allow_none=True)
                      or self.inference_batch_size)
        # Finite inputs can still overflow the dtype inside the network (huge values
        # times large weights); say so instead of letting NumPy warn about a matmul.
        with quiet_overflow():
            if len(X) <= batch_size:
                output = np.array(self.forward(X, training=False), copy=True)
            else:
                output = np.concatenate([self.forward(X[i:i + batch_size], training=False)
                                         for i in range(0, len(X), batch_size)])
        for layer in self.layers:     # the last batch's caches: inference needs no backward
            layer._cache = None
        if not np.all(np.isfinite(output)):
            row = int(np.argwhere(~np.isfinite(output))[0][0])
            raise ValueError(f"the model's output for sample {row} of X is NaN or infinite: the "
                             f"inputs are too large for {self.dtype.name} with these weights "
                             "(scale the inputs, or use dtype='float64')")
        return output

    @property
    def inference_batch_size(self) -> int:
        """The default batch of ``output``, ``predict`` and ``evaluate``: at most 8192
        samples, and fewer when the arrays one sample needs, added over the layers
        (its input, every layer's output, and the scratch a layer declares in
        ``scratch_size``, such as Conv2D's patches), times the batch would pass
        ``2**22`` numbers (16 MiB in float32). Added, not the largest: each layer
        keeps what its backward would need until its next forward."""
        self._require_built("inference_batch_size")
        per_sample = math.prod(self.input_shape) + sum(
            math.prod(layer.output_shape) + getattr(layer, "scratch_size", 0) for layer in self.layers)
        return max(1, min(8192, 2 ** 22 // per_sample))

    def evaluate(self, X, y, *, batch_size: Optional[int] = None) -> dict[str, float]:
        """Loss and metrics on ``X, y``: ``{"loss": ..., "accuracy": ...}``."""
        require_loss(self.loss, "evaluate()")
        return self.evaluate_checked(*self.check_data(X, y), batch_size=batch_size)

    def evaluate_checked(self, X: np.ndarray, target: np.ndarray, *,
                         batch_size: Optional[int] = None) -> dict[str, float]:
        """``evaluate`` of what ``check_data`` returned, without checking it again
        (the training loop's validation data, every epoch)."""
        _metrics.check_names(self.metrics, self.loss)
        output = self._output_checked(X, batch_size)
        return {"loss": self.loss.forward(output, target), **self.compute_metrics(target, output)}

    def predict(self, X, *, batch_size: Optional[int] = None) -> np.ndarray:
        """Predictions: class labels ``(N,)`` for classification losses (mapped
        through ``model.classes`` when it is set), raw outputs ``(N, k)`` otherwise."""
        output = self.output(X, batch_size=batch_size)
        if self.loss is None or not self.loss.classification:
            return output
        labels = self.loss.predicted_labels(output)
        if self.classes is None:
            return labels
        return np.asarray(io.check_classes(self.classes, self, "model.classes"))[labels]

    def predict_proba(self, X, *, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities: softmax rows ``(N, k)`` for ``cross_entropy``,
        sigmoid outputs ``(N, k)`` for ``binary_cross_entropy``."""
        if self.loss is None or not self.loss.classification:
            raise ValueError("predict_proba() needs a classification loss (cross_entropy or "
                             "binary_cross_entropy); use predict() for regression")
        return self.loss.probabilities(self.output(X, batch_size=batch_size))

    # ------------------------------------------------------------------ display
    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print each layer's name, type, output shape and parameter count."""
        self._require_built("summary()")
        if not callable(print_fn):
            raise TypeError(f"print_fn must be a function that takes a string, got {describe(print_fn)}")
        rows = [("Layer (type)", "Output shape", "Params")]
        for layer in self.layers:
            n = sum(spec.size for spec in layer.param_specs)
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         str((None, *layer.output_shape)), f"{n:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        out = [f'Model "{self.name}"  input {(None, *self.input_shape)}  dtype {self.dtype.name}', line]
        for i, row in enumerate(rows):
            out.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
            if i == 0:
                out.append(line)
        out += [line, f"Total params: {self.count_params():,} "
                      f"({self.params.nbytes / 1024:,.1f} KiB)"]
        if self.buffers.size:
            out.append(f"Buffers (not trained): {self.buffers.size:,} "
                       f"({self.buffers.nbytes / 1024:,.1f} KiB)")
        print_fn("\n".join(out))

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(repr(layer) for layer in self.layers)}])"

    def save(self, path, include_optimizer: bool = True, metadata: Optional[dict] = None) -> str:
        """Write the model to one ``.npz`` file; see ``scratchnn.io.save``."""
        return io.save(self, path, include_optimizer, metadata)


def _initial_values(layer: Layer, spec, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """What ``spec.initializer`` returns, if it is a finite array of the parameter's shape
    in ``dtype`` (an initializer of the user's may return anything)."""
    argument = getattr(layer, "initializer_arguments", {}).get(spec.name)
    where = (f"layer {layer.name!r}: the initializer of {spec.name!r}"
             + (f" ({argument})" if argument else ""))
    try:
        values = spec.initializer(rng, spec.shape, spec.fan_in, spec.fan_out)
        array = as_real_array(values, where, "numbers")
    except (TypeError, ValueError, ArithmeticError) as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{where} failed: {type(error).__name__}: {error}") from None
    if array.shape != tuple(spec.shape):
        raise ValueError(f"{where} returned shape {array.shape}, expected {tuple(spec.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"{where} returned values that are not finite {dtype.name} numbers")
    return cast


def _wrong_array(layer: Layer, method: str, value, shape: tuple, dtype: np.dtype):
    what = "output" if method == "forward" else "gradient dL/dx"
    if type(value) is not np.ndarray:
        got = "None" if value is None else f"a {type(value).__name__}"
    elif value.dtype != dtype:
        got = f"an array of dtype {value.dtype}"
    else:
        got = f"shape {value.shape}"
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): {method}() must return its "
                     f"{what} as a {dtype.name} array of shape (N, {', '.join(map(str, shape))}), "
                     f"got {got}")


def _is_one_sample(X, n_features: int) -> bool:
    """Whether ``X`` looks like one sample ``(n_features,)`` rather than a batch."""
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and X.shape[0] == n_features and n_features > 1
    if isinstance(X, (list, tuple)) and len(X) == n_features > 1:
        return all(isinstance(v, numbers.Number) for v in X)
    return False


def _unique_labels(labels: np.ndarray, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct labels and each label's index among them."""
    flat = labels.ravel()
    if flat.dtype.kind == "O":
        for i, v in enumerate(flat.tolist()):
            if v is None or (isinstance(v, float) and v != v):
                raise ValueError(f"{argument} has a missing label (None or NaN) at sample {i}")
    try:
        values, codes = np.unique(flat, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in flat.tolist()})
        raise TypeError(f"{argument} mixes label types that cannot be sorted ({', '.join(kinds)}); "
                        "use labels of one type") from None
    return values, codes.reshape(-1)


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def _physical_memory() -> Optional[int]:
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


# Model files name the class of their model; io looks it up here (it cannot import
# this module, which imports io to save).
io.MODELS["Sequential"] = Sequential
