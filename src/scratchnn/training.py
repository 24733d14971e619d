"""The training loop: what ``Sequential.fit`` runs, top to bottom.

    fit(model, X, y, ...)
        check the settings and the data; split off the validation data
        callbacks: the user's, then the History, then the progress display
        for each epoch:
            shuffle; for each batch: train_step (forward, loss, backward, optimizer)
            the epoch's loss and metrics, the validation figures; callbacks
        stop early when a callback asks, or after Ctrl-C

    train_step(model, x, target)
        forward -> loss -> backward -> (gradients finite?) -> optimizer.step

The loop takes the model as an argument and uses only its public API: ``compile``,
``check_data``, ``forward``, ``backward``, ``params``/``grads``/``buffers``,
``layers`` and their ``param_specs``, ``compute_metrics``, ``evaluate_checked``,
``check_parameter_views``, ``loss``, ``optimizer``, ``rng``, ``output_shape``.
"""

from __future__ import annotations

import math
import numbers
import signal
import sys
import threading
import weakref
from typing import Optional, Sequence

import numpy as np

from . import _memory
from ._validation import as_sample_weight, check_bool, check_number, check_positive_int, describe
from .functional import max_abs
from .callbacks import Callback, EpochLogger, History, ProgressBar
from .losses import require_loss
from .optimizers import Adam


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient."""


def quiet_overflow() -> np.errstate:
    """Silence NumPy's overflow, invalid-value and division warnings inside the network
    (training steps, inference): a value they would warn about is NaN or infinite,
    and is reported with what caused it (a DivergenceError naming the layer and
    step, or the sample whose output is not finite); NumPy's warnings would only
    say "overflow in matmul"."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


class _StopOnInterrupt:
    """While active, the first Ctrl-C only sets ``requested`` (the loop checks it after
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


# ============================================================================ fit
def fit(model, X, y, *, loss=None, optimizer=None, metrics: Optional[Sequence[str]] = None,
        epochs: int = 1, batch_size: Optional[int] = 32, shuffle: bool = True,
        validation_data: Optional[tuple] = None, validation_split: float = 0.0,
        callbacks: Sequence[Callback] = (), verbose: int = 0, sample_weight=None,
        class_weight=None) -> History:
    """Train ``model``; return a History of per-epoch figures. See ``Sequential.fit``."""
    # -- settings and data
    model.compile(loss, optimizer, metrics)
    require_loss(model.loss, "fit()")
    if model.optimizer is None:
        model.optimizer = Adam()
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size", allow_none=True)
    shuffle = check_bool(shuffle, "shuffle")
    if isinstance(verbose, (bool, np.bool_)) or not isinstance(verbose, numbers.Integral) \
            or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {describe(verbose)}")
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of Callback instances, got {describe(callbacks)}")
    X, target = model.check_data(X, y)
    if sample_weight is not None:
        sample_weight = as_sample_weight(sample_weight, len(X), model.dtype)
    X, target, validation = split_validation(model, X, target, validation_data, validation_split)
    n = len(X)
    # (validation_split holds out the end: its samples' weights are not used, nor counted
    # by class_weight="balanced")
    weights = sample_weights(model, target, None if sample_weight is None else sample_weight[:n],
                             class_weight)
    if weights is not None and not weights.any():
        raise ValueError("the sample weights give weight 0 to every training sample (the "
                         "samples before validation_split's part): at least one must have a "
                         "non-zero weight")
    closure_optimizer = getattr(model.optimizer, "needs_closure", False)
    if closure_optimizer:
        _check_deterministic(model)
        if hasattr(model.optimizer, "reset"):
            model.optimizer.reset()           # this fit's objective, not the last one's
        batch_size = None                     # L-BFGS: the full batch, every iteration
    batch_size = n if batch_size is None else min(batch_size, n)
    n_batches = -(-n // batch_size)
    _check_batches_fit_layers(model, n, batch_size)
    closure = full_batch_closure(model, X, target, weights) if closure_optimizer else None

    # -- callbacks: the user's first, so that what they add to the logs (such as
    # "lr") is recorded by the History and shown by the display that follow
    history = History()
    callback_list = [*callbacks, history]
    if verbose == 1:
        callback_list.append(ProgressBar(epochs, n_batches))
    elif verbose == 2:
        callback_list.append(EpochLogger(epochs))
    for callback in callback_list:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(callback).__name__}")
        callback.set_model(model)
    model.history = history
    model.stop_training = False
    # (the History counts how far training got: completed_epochs, interrupted_batches)
    model.params_max = None          # measured on the first step (anyone may have written params)

    # -- the loop
    with _StopOnInterrupt() as interrupt, quiet_overflow():
        _call(callback_list, "on_train_begin", {})
        for epoch in range(epochs):
            _call(callback_list, "on_epoch_begin", epoch, {})
            if callbacks:                # the user's callbacks may write the weights
                model.params_max = None  # (measured again on the next step)
            if closure_optimizer:
                order = None
                mean_loss, outputs, batch = _closure_epoch(model, X, closure, callback_list, epoch)
            else:
                order = model.rng.permutation(n) if shuffle and batch_size < n else None
                mean_loss, outputs, batch = _train_epoch(model, X, target, weights, order,
                                                         batch_size, callback_list, interrupt, epoch)
            if interrupt.requested and batch + 1 < n_batches:     # cut short: no figures
                history.interrupted, history.interrupted_batches = True, batch + 1
                break
            if epoch == 0:
                model.check_parameter_views()   # a layer that rebinds W is caught at once
            seen = target if order is None else target[order]
            logs = {"loss": mean_loss, **model.compute_metrics(seen, outputs)}
            if validation is not None:
                scores = model.evaluate_checked(*validation)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            _call(callback_list, "on_epoch_end", epoch, logs)
            history.completed_epochs = epoch + 1
            if interrupt.requested:          # during the epoch's last batch, or its callbacks
                history.interrupted = True
                break
            if model.stop_training:
                break
            if closure_optimizer and model.optimizer.converged:
                history.converged = model.optimizer.converged_reason
                break
        weights_at_stop = model.params.copy() if history.interrupted else None
        _call(callback_list, "on_train_end", {})
    if history.interrupted and verbose:
        _report_interrupt(history, n_batches, not np.array_equal(model.params, weights_at_stop))
    model.check_parameter_views()
    return history


def _report_interrupt(history: History, n_batches: int, restored: bool) -> None:
    done = history.completed_epochs
    where = (f"in epoch {done + 1} after batch {history.interrupted_batches} of {n_batches}"
             if history.interrupted_batches else f"after epoch {done}")
    kept = ("a callback (EarlyStopping) then restored the weights of an earlier epoch" if restored
            else "the model keeps the weights of its last step")
    print(f"\ninterrupted {where}: {done} complete epoch{'' if done == 1 else 's'}; {kept}",
          file=sys.stderr)


def _call(callbacks: list, hook: str, *args) -> None:
    for callback in callbacks:
        getattr(callback, hook)(*args)


def _train_epoch(model, X: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray],
                 order: Optional[np.ndarray], batch_size: int, callbacks: list,
                 interrupt: _StopOnInterrupt, epoch: int):
    """One pass over the data in ``order`` (None: as stored). Returns the mean
    training loss (weighted by the batches' weights, when there are sample weights),
    the outputs of every sample (in the order seen) and the index of the last batch
    run (fewer than all when interrupted)."""
    n = len(X)
    outputs = None if batch_size >= n else np.empty((n, *model.output_shape), dtype=model.dtype)
    total_loss = total_weight = 0.0
    wb = None
    for batch, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        _call(callbacks, "on_batch_begin", batch, {"size": stop - start})
        if order is None:
            xb, tb = X[start:stop], target[start:stop]
            if weights is not None:
                wb = weights[start:stop]
        else:
            index = order[start:stop]
            xb, tb = X[index], target[index]
            if weights is not None:
                wb = weights[index]
        try:
            batch_loss, output = train_step(model, xb, tb, wb)
        except DivergenceError as error:
            raise DivergenceError(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: "
                                  f"{error}") from None
        if outputs is None:      # the full batch: no copy
            outputs = output
        else:
            outputs[start:stop] = output
        batch_weight = stop - start if wb is None else float(np.sum(wb, dtype=np.float64))
        total_loss += batch_loss * batch_weight
        total_weight += batch_weight
        _call(callbacks, "on_batch_end", batch, {"loss": batch_loss, "size": stop - start})
        if interrupt.requested:
            break
    return total_loss / total_weight, outputs, batch


def full_batch_closure(model, X: np.ndarray, target: np.ndarray,
                       sample_weight: Optional[np.ndarray] = None):
    """The objective of an optimizer that needs a closure (``LBFGS``): a function of no
    argument that evaluates the loss (data term and penalties) of the whole of ``X``
    at the current ``model.params`` and fills ``model.grads``. A trial point where the
    loss is not finite returns inf (the line search then steps back) and leaves the
    buffers as they were. ``closure.output`` holds the outputs of the latest evaluation."""
    def closure() -> float:
        buffers_before = _kept_copy(model, "buffers") if model.buffers.size else None
        try:
            loss, closure.output = _loss_and_gradients(model, X, target, sample_weight,
                                                       buffers_before)
        except DivergenceError:
            closure.output = None
            return math.inf
        model.params_max = None
        closure.loss = loss
        return loss

    closure.output, closure.loss = None, None
    return closure


def _closure_epoch(model, X: np.ndarray, closure, callbacks: list, epoch: int):
    """One iteration of an optimizer that needs a closure (``LBFGS``) on the full batch
    (``closure``: ``full_batch_closure`` of the training data), as one batch of one
    epoch. Returns what ``_train_epoch`` returns."""
    n = len(X)
    _call(callbacks, "on_batch_begin", 0, {"size": n})
    try:
        loss = model.optimizer.iterate(model.params, model.grads, closure)
    except DivergenceError as error:         # the starting point's loss or gradient
        raise DivergenceError(f"training diverged in epoch {epoch + 1}: {error}") from None
    # The outputs at the accepted point: the latest evaluation's when that was the
    # accepted point (nearly always), else one more forward pass.
    output = closure.output
    if output is None or loss != closure.loss:
        output = np.array(model.forward(X, training=False), copy=True)
    _call(callbacks, "on_batch_end", 0, {"loss": loss, "size": n})
    return loss, output, 0


def sample_weights(model, target: np.ndarray, sample_weight=None,
                   class_weight=None) -> Optional[np.ndarray]:
    """The weight of each sample in ``fit`` (None when every weight is 1): ``sample_weight``
    (already checked by ``as_sample_weight``, as ``fit`` does before splitting off the
    validation part) times, with ``class_weight``, the weight of the sample's class.

    ``class_weight`` is a dict from class to weight, as in Keras and scikit-learn: its
    keys are the labels of ``model.classes`` when the model has them (strings, say),
    else the class indices 0..k-1 (0 and 1 for ``binary_cross_entropy`` of one output);
    a class left out weighs 1. ``"balanced"`` (scikit-learn's) weighs each class by
    ``n_samples / (n_classes * count)``."""
    n = len(target)
    if class_weight is None:
        return sample_weight
    if not model.loss.classification:
        raise ValueError("class_weight is for classification losses (cross_entropy, "
                         f"binary_cross_entropy), and the loss is {type(model.loss).__name__}")
    labels = model.loss.true_labels(target)
    if labels.ndim != 1:
        raise ValueError("class_weight needs one class per sample, and the targets have shape "
                         f"{target.shape} (several labels per sample): use sample_weight instead")
    n_classes = 2 if model.output_shape[-1] == 1 else model.output_shape[-1]
    classes = model.classes if model.classes is not None else np.arange(n_classes)
    counts = np.bincount(labels, minlength=n_classes)
    if isinstance(class_weight, str) and class_weight == "balanced":
        with np.errstate(divide="ignore"):
            per_class = np.where(counts > 0, n / (n_classes * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        known = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
        per_class = np.ones(n_classes)
        for key, value in class_weight.items():
            plain = key.item() if isinstance(key, np.generic) else key
            if plain not in known:
                raise ValueError(f"class_weight has the class {key!r}, which is not one of the "
                                 f"model's classes {list(known)!r:.200}")
            per_class[known[plain]] = check_number(f"class_weight[{key!r}]", value, 0.0)
    else:
        raise TypeError(f"class_weight must be a dict {{class: weight}} or 'balanced', "
                        f"got {describe(class_weight)}")
    per_sample = per_class[labels]
    if sample_weight is not None:
        per_sample = per_sample * sample_weight    # in float64: checked in the dtype below
    return as_sample_weight(per_sample, n, model.dtype, "sample_weight times class_weight")


def split_validation(model, X: np.ndarray, target: np.ndarray, validation_data, validation_split):
    """``(X_train, target_train, (X_val, target_val) or None)`` from ``fit``'s arguments."""
    if validation_data is not None and validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val, t_val = model.check_data(*validation_data, "validation_data[0]", "validation_data[1]")
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


# ===================================================================== one step
def train_step(model, x: np.ndarray, target: np.ndarray,
               sample_weight: Optional[np.ndarray] = None) -> tuple[float, np.ndarray]:
    """One step on one checked batch: forward, loss, backward, penalties, optimizer.
    Returns the batch loss (the weighted mean when ``sample_weight``, a checked
    vector of the batch's weights, is given; plus the layers' regularization
    penalties) and the outputs.

    Raises DivergenceError when the loss or a gradient is NaN or infinite (before
    the optimizer changes anything) or when the update makes a parameter NaN or
    infinite (the parameters are then put back), with the buffers as they were
    before the step: the model keeps the weights and buffers of its last finite
    step. After an update that overflowed, the optimizer's state (its step count,
    Adam's moments) includes the rejected step's gradient. ``model.params_max`` is a
    bound of ``max |model.params|`` that the step keeps up to date (None: unknown, to
    be measured); whoever writes ``model.params`` otherwise sets it to None. ``fit`` runs it
    inside ``quiet_overflow()``, which the caller of a step of its own should enter too.
    """
    buffers_before = _kept_copy(model, "buffers") if model.buffers.size else None
    loss, output = _loss_and_gradients(model, x, target, sample_weight, buffers_before)
    # One BLAS pass: the squared norm is NaN or inf when any gradient is
    # (or when the norm itself overflows, which is divergence too).
    grads_sq = float(np.dot(model.grads, model.grads))
    if not math.isfinite(grads_sq):
        _restore(model, buffers_before)
        raise DivergenceError(_diagnose_gradients(model))
    # Finite gradients times a large learning rate can still overflow the parameters
    # in the update itself. The optimizer bounds max |p| after the update from a bound
    # of max |p| now and the gradients' norm; where that bound is far inside the
    # floats (nearly always) nothing can overflow and the step runs as it is. Otherwise
    # the parameters are copied first and checked after, and put back if the update
    # left any of them NaN or infinite. (The copy and the check on every step cost about
    # 9% of a Fashion-MNIST MLP step; the bound, nothing measurable: see
    # benchmarks/divergence_guard.py.)
    optimizer = model.optimizer
    params_max = model.params_max if model.params_max is not None else max_abs(model.params)
    bound = optimizer.update_bound(params_max, math.sqrt(grads_sq))
    if bound <= _SAFE_MAX[model.dtype.type]:
        _optimizer_step(model)
        model.params_max = bound
        return loss, output
    params_before = _backup(model)
    _optimizer_step(model)
    model.params_max = None                             # measured again next step
    if not all_finite(model.params):
        message = _diagnose_update(model)
        model.params[...] = params_before
        _restore(model, buffers_before)
        raise DivergenceError(message)
    return loss, output


def _loss_and_gradients(model, x: np.ndarray, target: np.ndarray,
                        sample_weight: Optional[np.ndarray],
                        buffers_before: Optional[np.ndarray]) -> tuple[float, np.ndarray]:
    """Forward, loss, backward and the layers' penalties on one batch: the loss
    (data term plus penalties) and the outputs, with ``model.grads`` filled. A loss
    that is not finite is a DivergenceError (the buffers put back first)."""
    output = model.forward(x, training=True)
    if sample_weight is None:
        loss = model.loss.forward(output, target)
    else:
        loss = model.loss.forward(output, target, sample_weight)
    if not math.isfinite(loss):
        message = _diagnose_forward(model, x)
        _restore(model, buffers_before)
        raise DivergenceError(message)
    model.backward(model.loss.backward())
    penalty = regularization_penalty(model, add_gradients=True)
    if penalty:
        loss += penalty
        if not math.isfinite(loss):
            _restore(model, buffers_before)
            raise DivergenceError(f"step {model.optimizer.iterations + 1}: the regularization "
                                  "penalty of the weights overflows; lower the learning rate")
    return loss, output


def regularization_penalty(model, add_gradients: bool = False) -> float:
    """The sum of every layer's regularization penalty (``kernel_regularizer=``),
    adding their gradients into ``model.grads`` when ``add_gradients`` is true
    (after ``backward``, which overwrites the gradients). 0.0 without regularizers."""
    return sum(layer.regularization_penalty(add_gradients) for layer in model.layers
               if getattr(layer, "regularizers", None))


def _optimizer_step(model) -> None:
    """``model.optimizer.step``, handing it the model's parameter arrays (as slices of
    the flat vector) when it clips each one's gradient norm (``clipnorm``)."""
    optimizer = model.optimizer
    if getattr(optimizer, "clipnorm", None) is not None:
        optimizer.step(model.params, model.grads, overwrite_grads=True,
                       variables=model.parameter_slices)
    else:
        optimizer.step(model.params, model.grads, overwrite_grads=True)


#: the largest bound of max |p| that is far enough inside the floats (4: room for rounding)
_SAFE_MAX = {t: float(np.finfo(t).max) / 4 for t in (np.float32, np.float64)}

# The copies a step takes of a model's vectors, kept between steps so that a step allocates nothing.
_KEPT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _kept_copy(model, vector_name: str) -> np.ndarray:
    """A copy of ``model.<vector_name>`` (``"params"``, ``"buffers"``), written into a
    vector kept for the model between steps."""
    vector, kept = getattr(model, vector_name), _KEPT.setdefault(model, {})
    copy = kept.get(vector_name)
    if copy is None or copy.shape != vector.shape or copy.dtype != vector.dtype:
        copy = kept[vector_name] = _memory.zeros_like(vector)
    np.copyto(copy, vector)
    return copy


def _backup(model) -> np.ndarray:
    """A copy of ``model.params`` taken before a guarded update."""
    return _kept_copy(model, "params")


def all_finite(vector: np.ndarray) -> bool:
    """Whether every value of a flat vector is finite: one BLAS pass (the squared norm
    is finite when every value is, unless the norm alone overflows; only then are
    the values tested one by one)."""
    return math.isfinite(float(np.dot(vector, vector))) or bool(np.isfinite(vector).all())


def _restore(model, buffers: Optional[np.ndarray]) -> None:
    if buffers is not None:
        model.buffers[...] = buffers


def _diagnose_update(model) -> str:
    """Which parameter the optimizer's update made NaN or infinite (before it is undone)."""
    step = model.optimizer.iterations
    culprit = next((f"parameter {spec.name!r} of layer {layer.name!r}"
                    for layer in model.layers for spec in layer.param_specs
                    if not np.isfinite(getattr(layer, spec.name)).all()), "the parameters")
    return (f"step {step}: the optimizer's update made {culprit} NaN or infinite "
            f"({type(model.optimizer).__name__} with lr={model.optimizer.lr:g}); the weights "
            "were put back as they were before that step; lower the learning rate")


def _diagnose_forward(model, x: np.ndarray) -> str:
    """Which parameter or layer output became NaN or infinite (the forward pass is
    run again, layer by layer; the caller restores the buffers afterwards)."""
    step = model.optimizer.iterations + 1
    for layer in model.layers:
        for spec in layer.param_specs:
            if not np.all(np.isfinite(getattr(layer, spec.name))):
                return f"step {step}: parameter {spec.name!r} of layer {layer.name!r} is NaN or infinite"
    with np.errstate(all="ignore"):
        for layer in model.layers:
            x = layer.forward(x, training=True)
            if not np.all(np.isfinite(x)):
                return (f"step {step}: the output of layer {layer.name!r} ({type(layer).__name__}) "
                        "became NaN or infinite; lower the learning rate or scale the inputs")
    return f"step {step}: the loss ({type(model.loss).__name__}) became NaN or infinite"


def _diagnose_gradients(model) -> str:
    step = model.optimizer.iterations + 1
    for layer in reversed(model.layers):
        for spec in reversed(layer.param_specs):
            grad = getattr(layer, "d" + spec.name).ravel()
            if not np.all(np.isfinite(grad)) or not math.isfinite(float(np.dot(grad, grad))):
                return (f"step {step}: the gradient of {spec.name!r} in layer {layer.name!r} "
                        f"({type(layer).__name__}) is NaN or infinite (or its norm overflows); "
                        "lower the learning rate or scale the inputs")
    return f"step {step}: the gradient norm overflows"


def _check_deterministic(model) -> None:
    """Refuse layers that draw random numbers in training (dropout, augmentation) with
    an optimizer that needs a closure: its line search compares losses of one
    objective, which such layers change at every evaluation."""
    for layer in model.layers:
        if getattr(layer, "random_in_training", False):
            raise ValueError(f"{type(model.optimizer).__name__} needs the same loss at every "
                             f"evaluation, and layer {layer.name!r} ({type(layer).__name__}) is "
                             "random in training: remove it, or use a stochastic optimizer "
                             "such as Adam")


def _check_batches_fit_layers(model, n: int, batch_size: int) -> None:
    """Refuse, before the first step, batches smaller than a layer needs in training
    (``layer.min_training_batch``: 2 for batch normalization of flat samples, which
    has no variance in one sample), such as the last batch of 1 that 33 samples in
    batches of 32 leave."""
    def last_batch(size: int) -> int:
        return (n - 1) % size + 1

    last = last_batch(batch_size)
    for layer in model.layers:
        need = getattr(layer, "min_training_batch", 1)
        if last >= need:
            continue
        # the nearest batch size that works (n itself does when n >= need)
        fits = (b for distance in range(1, n) for b in (batch_size - distance, batch_size + distance)
                if need <= b <= n and last_batch(b) >= need)
        nearest = next(fits, None)
        hint = f"such as batch_size={nearest}" if nearest else f"at least {need} training samples"
        raise ValueError(f"{n} training samples in batches of {batch_size} leave a last batch of "
                         f"{last}, and layer {layer.name!r} ({type(layer).__name__}) needs at least "
                         f"{need} samples per batch in training: choose a batch_size that leaves "
                         f"{need} or more ({hint})")
