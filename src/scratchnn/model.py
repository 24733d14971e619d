"""Sequential: a stack of layers trained as one flat parameter vector."""

from __future__ import annotations

import copy
import math
import numbers
import operator
import signal
import sys
import threading
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _memory
from ._validation import as_float_array, check_number, check_positive_int, check_same_length
from .callbacks import Callback, EpochLogger, History, ProgressBar
from .layers.base import Layer
from .losses import Loss, get_loss
from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from .optimizers import Adam, Optimizer, get_optimizer

DTYPES = ("float32", "float64")


def _check_dtype(dtype) -> None:
    if np.dtype(dtype).name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def _quiet_overflow() -> np.errstate:
    """Silence NumPy's overflow and invalid-value warnings inside the network (training
    steps, inference): overflow there is reported by the caller with what caused it (a
    DivergenceError naming the layer and step, or the sample whose output is not finite);
    NumPy's warnings would only say "overflow in matmul"."""
    return np.errstate(over="ignore", invalid="ignore")


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient."""


class _StopOnInterrupt:
    """While active, the first Ctrl-C only sets ``requested`` (fit checks it after
    each batch); a second one raises KeyboardInterrupt as usual. Signal handlers
    can be set only in the main thread; elsewhere this does nothing."""

    def __enter__(self) -> "_StopOnInterrupt":
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _defines(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` does something in ``hook`` (a method of its class, or a
    function set on the instance, as LambdaCallback does)."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


class Sequential:
    """A stack of layers applied in order, with Keras-style training.

    Example::

        model = Sequential([Dense(4), Sigmoid(), Dense(1)], seed=42)
        history = model.fit(X, y, loss="binary_cross_entropy", optimizer=SGD(lr=0.1),
                            epochs=10_000, batch_size=None)
        model.predict_proba(X)

    Parameters live in one flat vector ``model.params`` and their gradients in
    ``model.grads``; every layer's ``W``, ``b``, ``dW``, ``db`` are views into
    them. ``model.backward`` fills ``grads``; a training step (``train_step``,
    ``fit``) then lets the optimizer use them as scratch space, so read
    gradients after ``backward``, not after a step. The model is built (input
    size inferred, parameters initialized) on the first call to ``fit``,
    ``predict`` or ``evaluate``, or by ``build``.

    Args:
        layers: the layers, first to last.
        seed: seed of the model's random generator (initialization, shuffling,
            dropout); ``None`` draws fresh entropy.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    def __init__(self, layers: Iterable[Layer] = (), *, seed: Optional[int] = None,
                 dtype: str = "float32", name: str = "sequential") -> None:
        _check_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.layers: list[Layer] = []
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self.params: Optional[np.ndarray] = None
        self.grads: Optional[np.ndarray] = None
        self.loss: Optional[Loss] = None
        self.optimizer: Optional[Optimizer] = None
        self.metrics: Optional[list[str]] = None
        self.classes: Optional[np.ndarray] = None
        self.history: Optional[History] = None
        self.stop_training = False
        self._views: list[tuple[Layer, str, np.ndarray, np.ndarray]] = []
        self._view_checks: tuple = ((), (), ())
        for layer in layers:
            self.add(layer)

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
        allocate and initialize the flat parameter vector."""
        if not self.layers:
            raise ValueError("the model has no layers")
        shape = tuple(check_positive_int(s, "input_shape") for s in input_shape)
        self.input_shape = shape
        counts: dict[str, int] = {}
        for layer in self.layers:
            if layer.name is None:
                layer.name = f"{layer.kind}_{counts.get(layer.kind, 0)}"
                counts[layer.kind] = counts.get(layer.kind, 0) + 1
            layer.dtype, layer.rng, layer.params = self.dtype, self.rng, []
            layer.input_shape = shape
            shape = tuple(layer.build(shape, self.rng))
            layer.output_shape = shape
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        self.output_shape = shape
        size = sum(p.size for layer in self.layers for p in layer.params)
        self.params = _memory.zeros(size, self.dtype)
        self.grads = _memory.zeros(size, self.dtype)
        self._bind()
        for layer in self.layers:
            for p in layer.params:
                getattr(layer, p.name)[...] = p.initializer(self.rng, p.shape, p.fan_in, p.fan_out)
        return self

    def _bind(self) -> None:
        """Hand each layer its views into ``params`` and ``grads``."""
        self._views = []
        offset = 0
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = i > 0   # nothing needs dL/dX of the data
            for p in layer.params:
                param = self.params[offset:offset + p.size].reshape(p.shape)
                grad = self.grads[offset:offset + p.size].reshape(p.shape)
                setattr(layer, p.name, param)
                setattr(layer, "d" + p.name, grad)
                self._views.append((layer, p.name, param, grad))
                offset += p.size
        checks = [(layer, attr, view) for layer, name, param, grad in self._views
                  for attr, view in ((name, param), ("d" + name, grad))]
        self._view_checks = tuple(zip(*checks)) if checks else ((), (), ())

    def check_parameter_views(self) -> None:
        """Raise if a layer replaced one of its parameter or gradient arrays
        (``self.W = ...``) instead of writing into it (``self.W[...] = ...``):
        a replaced array is no longer trained, saved or checked."""
        # The common case, all in place, in one pass of C-level iteration.
        layers, attrs, views = self._view_checks
        if all(map(operator.is_, map(getattr, layers, attrs), views)):
            return
        for layer, name, param, grad in self._views:
            for attr, view, vector in ((name, param, "parameter"), ("d" + name, grad, "gradient")):
                if getattr(layer, attr, None) is not view:
                    raise RuntimeError(
                        f"layer {layer.name!r} rebound {attr!r}: it is no longer a view of the "
                        f"model's flat {vector} vector. Write in place instead "
                        f"(self.{attr}[...] = value, or np.matmul(..., out=self.{attr}))")

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """``[("dense_0.W", view), ...]`` in the order of the flat vector."""
        return [(f"{layer.name}.{name}", getattr(layer, name)) for layer, name, _, _ in self._views]

    def count_params(self) -> int:
        return 0 if self.params is None else int(self.params.size)

    def astype(self, dtype: str) -> "Sequential":
        """A copy of this model with parameters (and optimizer state) cast to ``dtype``."""
        _check_dtype(dtype)
        clone = copy.deepcopy(self)
        clone.dtype = np.dtype(dtype)
        for layer in clone.layers:
            layer.dtype = clone.dtype
            layer._cache = None
        if clone.built:      # in the memory build() gives them (see _memory)
            clone.params = _memory.copy(self.params.astype(dtype, copy=False))
            clone.grads = _memory.copy(self.grads.astype(dtype, copy=False))
            clone._bind()
        if clone.optimizer is not None and clone.optimizer.state:
            clone.optimizer.load_state_dict({k: (v.astype(dtype) if isinstance(v, np.ndarray) else v)
                                             for k, v in clone.optimizer.state_dict().items()})
        return clone

    # ------------------------------------------------------------------ compute
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Raw outputs (logits for classification losses) of a batch ``x`` that
        is already checked and of the model's dtype."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        """Fill ``self.grads`` from dL/d(output); return dL/dx when the first layer computes it."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
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
            self.metrics = list(metrics)
        if self.loss is not None:
            self._check_metrics()
        return self

    def _check_metrics(self) -> None:
        available = self._available_metrics()
        for name in self.metrics or []:
            if name not in available:
                raise ValueError(f"metrics must be names from {sorted(available)} for "
                                 f"{type(self.loss).__name__}, got {name!r}")

    def _available_metrics(self) -> dict:
        return CLASSIFICATION_METRICS if self.loss.classification else REGRESSION_METRICS

    def _metric_names(self) -> list[str]:
        if self.metrics is not None:
            return self.metrics
        return ["accuracy"] if self.loss.classification else ["mae", "r2"]

    def _metric_truth(self, target: np.ndarray) -> np.ndarray:
        """What metrics compare predictions with: class labels, or the targets themselves."""
        return self.loss.true_labels(target) if self.loss.classification else target

    def compute_metrics(self, target: np.ndarray, output: np.ndarray,
                        truth: Optional[np.ndarray] = None) -> dict[str, float]:
        """The model's metrics of raw ``output`` against a prepared ``target``
        (``truth``: ``_metric_truth(target)``, when the caller has it already)."""
        names = self._metric_names()
        if not names:
            return {}
        if truth is None:
            truth = self._metric_truth(target)
        predicted = self.loss.predicted_labels(output) if self.loss.classification else output
        available = self._available_metrics()
        return {name: available[name](truth, predicted) for name in names}

    # ------------------------------------------------------------------- checks
    def _check_X(self, X, argument: str = "X") -> np.ndarray:
        X = as_float_array(X, argument, self.dtype)
        if not self.built:
            self.build(X.shape[1:])
        elif X.shape[1:] != self.input_shape:
            expected = self.input_shape[0] if len(self.input_shape) == 1 else self.input_shape
            got = X.shape[1] if X.ndim == 2 else X.shape[1:]
            raise ValueError(f"{argument} has {got} features per sample, but the model "
                             f"expects {expected}")
        return X

    def _check_Xy(self, X, y, x_name: str = "X", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, x_name)
        if y is None:
            raise ValueError(f"{y_name} is required, got None")
        target = self.loss.prepare_target(y, int(np.prod(self.output_shape)), self.dtype, y_name)
        check_same_length(X, target, x_name, y_name)
        return X, target

    def _require_loss(self, what: str) -> None:
        if self.loss is None:
            raise ValueError(f"{what} needs a loss: pass loss=... (for example "
                             "loss='cross_entropy') to fit() or compile()")

    # ----------------------------------------------------------------- training
    def train_step(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """One step on one batch: forward, loss, backward, optimizer. Returns the
        batch loss and the outputs.

        Raises DivergenceError, before the optimizer changes anything, when the
        loss or a gradient is NaN or infinite; the weights stay the last finite ones.
        """
        with _quiet_overflow():
            return self._train_step(x, target)

    def _train_step(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """``train_step`` for callers that have entered ``_quiet_overflow()`` already
        (``fit`` enters it once: entering it costs as much as a fifth of an XOR step)."""
        output = self.forward(x, training=True)
        loss = self.loss.forward(output, target)
        if not math.isfinite(loss):
            raise DivergenceError(self._diagnose_forward(x))
        self.backward(self.loss.backward())
        # One BLAS pass: the squared norm is NaN or inf when any gradient is
        # (or when the norm itself overflows, which is divergence too).
        if not math.isfinite(float(np.dot(self.grads, self.grads))):
            raise DivergenceError(self._diagnose_gradients())
        self.optimizer.step(self.params, self.grads, overwrite_grads=True)
        return loss, output

    def _diagnose_forward(self, x: np.ndarray) -> str:
        step = self.optimizer.iterations + 1
        for layer, name, param, _ in self._views:
            if not np.all(np.isfinite(param)):
                return f"step {step}: parameter {name!r} of layer {layer.name!r} is NaN or infinite"
        with np.errstate(all="ignore"):
            for layer in self.layers:
                x = layer.forward(x, training=True)
                if not np.all(np.isfinite(x)):
                    return (f"step {step}: the output of layer {layer.name!r} ({type(layer).__name__}) "
                            "became NaN or infinite; lower the learning rate or scale the inputs")
        return f"step {step}: the loss ({type(self.loss).__name__}) became NaN or infinite"

    def _diagnose_gradients(self) -> str:
        step = self.optimizer.iterations + 1
        for layer, name, _, grad in reversed(self._views):
            if not np.all(np.isfinite(grad)) or not math.isfinite(float(np.dot(grad.ravel(), grad.ravel()))):
                return (f"step {step}: the gradient of {name!r} in layer {layer.name!r} "
                        f"({type(layer).__name__}) is NaN or infinite (or its norm overflows); "
                        "lower the learning rate or scale the inputs")
        return f"step {step}: the gradient norm overflows"

    def fit(self, X, y, *, loss: Union[str, Loss, None] = None,
            optimizer: Union[str, Optimizer, None] = None,
            metrics: Optional[Sequence[str]] = None,
            epochs: int = 1, batch_size: Optional[int] = 32, shuffle: bool = True,
            validation_data: Optional[tuple] = None, validation_split: float = 0.0,
            callbacks: Sequence[Callback] = (), verbose: int = 0) -> History:
        """Train the model; return a History of per-epoch figures.

        Args:
            X: inputs ``(N, features...)``.
            y: targets: integer labels ``(N,)`` or one-hot rows for ``cross_entropy``;
                0/1 labels for ``binary_cross_entropy``; values ``(N,)`` or ``(N, k)``
                for regression losses.
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

        Ctrl-C stops training cleanly after the current batch (a second Ctrl-C
        interrupts at once); the model keeps the weights of its last step and
        ``history.interrupted`` is True. A NaN or infinite loss or gradient
        raises DivergenceError, naming the layer and the step, and leaves the
        weights of the last finite step. NumPy's overflow and invalid-value
        warnings, which would only precede that error, are silenced while
        ``fit`` runs (``np.errstate(over="ignore", invalid="ignore")``, entered
        once; callbacks run inside it too).
        """
        self.compile(loss, optimizer, metrics)
        self._require_loss("fit()")
        if self.optimizer is None:
            self.optimizer = Adam()
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size", allow_none=True)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        X, target = self._check_Xy(X, y)
        X, target, validation = self._split_validation(X, target, validation_data, validation_split)
        n = len(X)
        batch_size = n if batch_size is None else min(batch_size, n)
        n_batches = -(-n // batch_size)

        # User callbacks first, so that what they add to the logs (such as "lr")
        # is recorded by the History and shown by the display that follow.
        history = History()
        callback_list = [*callbacks, history]
        if verbose == 1:
            callback_list.append(ProgressBar(epochs, n_batches))
        elif verbose == 2:
            callback_list.append(EpochLogger(epochs))
        for callback in callback_list:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(callback).__name__}")
            callback.set_model(self)
        # Each hook is called only on the callbacks that define it: an epoch of the
        # XOR recipe takes 35 microseconds, so even empty calls would show.
        hooks = {name: [c for c in callback_list if _defines(c, name)]
                 for name in ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end",
                              "on_epoch_end", "on_train_end")}
        self.history = history
        self.stop_training = False

        truth = self._metric_truth(target)
        with _StopOnInterrupt() as interrupt, _quiet_overflow():
            for callback in hooks["on_train_begin"]:
                callback.on_train_begin({})
            for epoch in range(epochs):
                for callback in hooks["on_epoch_begin"]:
                    callback.on_epoch_begin(epoch, {})
                order = self.rng.permutation(n) if shuffle and batch_size < n else None
                mean_loss, output, batch = self._train_epoch(X, target, order, batch_size, hooks,
                                                             interrupt, epoch)
                if interrupt.requested:
                    history.interrupted = True
                    if verbose:
                        print(f"\ninterrupted: training stopped after epoch {epoch + 1}, batch "
                              f"{batch + 1}; the model keeps the weights of that step", file=sys.stderr)
                    break
                self.check_parameter_views()
                seen = truth if order is None else truth[order]
                logs = {"loss": mean_loss, **self.compute_metrics(None, output, seen)}
                if validation is not None:
                    scores = self._evaluate_checked(*validation)
                    logs.update({f"val_{k}": v for k, v in scores.items()})
                for callback in hooks["on_epoch_end"]:
                    callback.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            for callback in hooks["on_train_end"]:
                callback.on_train_end({})
        return history

    def _train_epoch(self, X: np.ndarray, target: np.ndarray, order: Optional[np.ndarray],
                     batch_size: int, hooks: dict, interrupt: "_StopOnInterrupt", epoch: int):
        """One pass over the data in ``order`` (None: as stored). Returns the mean
        training loss, the outputs of every sample (in the order seen) and the
        index of the last batch run (fewer than all when interrupted)."""
        n = len(X)
        if batch_size >= n:      # the full batch: no copies
            outputs = None
        else:
            outputs = np.empty((n, *self.output_shape), dtype=self.dtype)
        total_loss = 0.0
        for batch, start in enumerate(range(0, n, batch_size)):
            stop = min(start + batch_size, n)
            for callback in hooks["on_batch_begin"]:
                callback.on_batch_begin(batch, {"size": stop - start})
            if order is None:
                xb, tb = X[start:stop], target[start:stop]
            else:
                index = order[start:stop]
                xb, tb = X[index], target[index]
            try:
                batch_loss, output = self._train_step(xb, tb)
            except DivergenceError as error:
                raise DivergenceError(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: "
                                      f"{error}") from None
            if outputs is None:
                outputs = output
            else:
                outputs[start:stop] = output
            total_loss += batch_loss * (stop - start)
            for callback in hooks["on_batch_end"]:
                callback.on_batch_end(batch, {"loss": batch_loss, "size": stop - start})
            if interrupt.requested:
                break
        return total_loss / n, outputs, batch

    def _split_validation(self, X, target, validation_data, validation_split):
        if validation_data is not None and validation_split:
            raise ValueError("pass validation_data or validation_split, not both")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            X_val, t_val = self._check_Xy(*validation_data, "validation_data[0]", "validation_data[1]")
            return X, target, (X_val, t_val)
        validation_split = check_number("validation_split", validation_split, 0.0, 1.0, high_open=True)
        if validation_split == 0:
            return X, target, None
        n_val = int(round(len(X) * validation_split))
        if n_val < 1 or n_val >= len(X):
            raise ValueError(f"validation_split={validation_split} of {len(X)} samples leaves "
                             f"{n_val} for validation and {len(X) - n_val} for training; both need at least one")
        cut = len(X) - n_val
        return X[:cut], target[:cut], (X[cut:], target[cut:])

    # --------------------------------------------------------------- inference
    def _output(self, X: np.ndarray, batch_size: Optional[int] = None) -> np.ndarray:
        """Raw outputs of checked inputs, computed in batches (training=False)."""
        batch_size = batch_size or 8192
        # Finite inputs can still overflow the dtype inside the network (huge values
        # times large weights); say so instead of letting NumPy warn about a matmul.
        with _quiet_overflow():
            if len(X) <= batch_size:
                output = np.array(self.forward(X, training=False), copy=True)
            else:
                output = np.concatenate([self.forward(X[i:i + batch_size], training=False)
                                         for i in range(0, len(X), batch_size)])
        if not np.all(np.isfinite(output)):
            row = int(np.argwhere(~np.isfinite(output))[0][0])
            raise ValueError(f"the model's output for sample {row} of X is NaN or infinite: the "
                             f"inputs are too large for {self.dtype.name} with these weights "
                             "(scale the inputs, or use dtype='float64')")
        return output

    def _evaluate_checked(self, X: np.ndarray, target: np.ndarray,
                          batch_size: Optional[int] = None) -> dict[str, float]:
        output = self._output(X, batch_size)
        return {"loss": self.loss.forward(output, target), **self.compute_metrics(target, output)}

    def evaluate(self, X, y, *, batch_size: Optional[int] = None) -> dict[str, float]:
        """Loss and metrics on ``X, y``: ``{"loss": ..., "accuracy": ...}``."""
        self._require_loss("evaluate()")
        self._check_metrics()
        batch_size = check_positive_int(batch_size, "batch_size", allow_none=True)
        return self._evaluate_checked(*self._check_Xy(X, y), batch_size)

    def predict(self, X, *, batch_size: Optional[int] = None) -> np.ndarray:
        """Predictions: class labels ``(N,)`` for classification losses (mapped
        through ``model.classes`` when it is set), raw outputs ``(N, k)`` otherwise."""
        output = self._output(self._check_X(X), check_positive_int(batch_size, "batch_size", allow_none=True))
        if self.loss is None or not self.loss.classification:
            return output
        labels = self.loss.predicted_labels(output)
        return labels if self.classes is None else np.asarray(self.classes)[labels]

    def predict_proba(self, X, *, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities: softmax rows ``(N, k)`` for ``cross_entropy``,
        sigmoid outputs ``(N, k)`` for ``binary_cross_entropy``."""
        if self.loss is None or not self.loss.classification:
            raise ValueError("predict_proba() needs a classification loss (cross_entropy or "
                             "binary_cross_entropy); use predict() for regression")
        output = self._output(self._check_X(X), check_positive_int(batch_size, "batch_size", allow_none=True))
        return self.loss.probabilities(output)

    # ------------------------------------------------------------------ display
    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print each layer's name, type, output shape and parameter count."""
        if not self.built:
            raise RuntimeError("the model is not built yet: call build(input_shape), or fit or "
                               "predict once, before summary()")
        rows = [("Layer (type)", "Output shape", "Params")]
        for layer in self.layers:
            n = sum(p.size for p in layer.params)
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
        print_fn("\n".join(out))

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(repr(layer) for layer in self.layers)}])"

    def save(self, path, include_optimizer: bool = True, metadata: Optional[dict] = None) -> str:
        """Write the model to one ``.npz`` file; see ``scratchnn.io.save``."""
        from .io import save
        return save(self, path, include_optimizer, metadata)
