"""Callbacks: code that runs at fixed points of ``fit``.

Write your own by subclassing ``Callback`` and overriding any hook, or pass
functions to ``LambdaCallback``. ``self.model`` is the model being trained;
``logs`` holds the latest figures (``"loss"``, ``"accuracy"``, ``"val_loss"``,
...). Setting ``self.model.stop_training = True`` ends training after the
current epoch.

Order of calls in ``fit``::

    on_train_begin
    for each epoch:  on_epoch_begin, (on_batch_begin, on_batch_end) per batch, on_epoch_end
    on_train_end
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from typing import Any, Callable, Optional

from ._validation import check_bool, check_non_negative_int, check_number, describe


class Callback:
    """Base class; every hook does nothing."""

    model: Any = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: Optional[dict] = None) -> None: ...
    def on_train_end(self, logs: Optional[dict] = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Optional[dict] = None) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks: Callable) -> None:
        known = {name for name in dir(Callback) if name.startswith("on_")}
        for name, function in hooks.items():
            if name not in known:
                raise ValueError(f"LambdaCallback hooks must be among {sorted(known)}, got {name!r}")
            if not callable(function):
                raise TypeError(f"{name} must be callable")
            setattr(self, name, function)


class History(Callback):
    """Per-epoch figures of one ``fit`` call: ``history.history["loss"][i]`` is the
    mean training loss of epoch ``i``; ``history.epoch`` lists the epoch numbers.

    ``history["loss"]`` exists from the start, an empty list until an epoch
    ends (as after a Ctrl-C in the first epoch). After Ctrl-C, ``interrupted``
    is True, ``completed_epochs`` counts the epochs whose figures are recorded
    and ``interrupted_batches`` the batches run in the epoch cut short (0 when
    the interrupt came between epochs). ``converged`` is None, or why an optimizer
    that tests its own convergence (``LBFGS``) stopped training: ``"gradient"``,
    ``"loss change"`` or ``"line search"``.

    A History is a record: copying or pickling it keeps the figures and the
    counts, not the model it was attached to (``model`` is None in the copy).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {"loss": []}
        self.epoch: list[int] = []
        self.interrupted = False
        self.completed_epochs = 0
        self.interrupted_batches = 0
        self.converged: Optional[str] = None

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self.history.setdefault("loss", [])

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("model", None)
        return state

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


# --------------------------------------------------------------------- display
def format_number(value: float, decimals: int = 4) -> str:
    """A logged figure for display: ``decimals`` places (``0.1234``) while they
    show three significant digits, three significant digits below that
    (``0.00123``, ``1.23e-05`` for ``decimals=4``), so that a small learning rate
    or loss does not show as ``0.0000``."""
    value = float(value)
    if value == 0 or not math.isfinite(value) or abs(value) >= 10.0 ** (2 - decimals):
        return f"{value:.{decimals}f}"
    return f"{value:.3g}"


def _format_logs(logs: dict) -> str:
    return "  ".join(f"{key} {format_number(value)}" for key, value in logs.items())


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


class EpochLogger(Callback):
    """``verbose=2``: one line per epoch with its time and figures."""

    def __init__(self, epochs: int, stream=None) -> None:
        self.epochs = epochs
        self.stream = stream

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        elapsed = time.perf_counter() - self._start
        print(f"epoch {epoch + 1}/{self.epochs}  {elapsed:.1f}s  {_format_logs(logs or {})}",
              file=self.stream or sys.stdout, flush=True)


class ProgressBar(Callback):
    """``verbose=1``: a bar per epoch with batches done, running loss, throughput
    and time left; it ends with the epoch's figures. On a terminal it redraws in
    place (at most ten times a second); elsewhere (logs, pipes) it prints only
    each epoch's final line."""

    def __init__(self, epochs: int, n_batches: int, stream=None, width: int = 24) -> None:
        self.epochs, self.n_batches, self.width = epochs, n_batches, width
        self.stream = stream

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._out = self.stream or sys.stdout
        self._live = hasattr(self._out, "isatty") and self._out.isatty()
        self._epoch, self._start, self._last_draw = epoch, time.perf_counter(), 0.0
        self._samples, self._loss_sum = 0, 0.0

    def on_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        size = logs["size"]
        self._samples += size
        self._loss_sum += logs["loss"] * size
        now = time.perf_counter()
        if self._live and (now - self._last_draw > 0.1 or batch + 1 == self.n_batches):
            self._last_draw = now
            elapsed = now - self._start
            done = batch + 1
            left = elapsed / done * (self.n_batches - done)
            self._draw(done, f"loss {format_number(self._loss_sum / self._samples)}  "
                             f"{self._samples / max(elapsed, 1e-9):,.0f} samples/s  ETA {_format_seconds(left)}")

    def _bar(self, done: int) -> str:
        filled = self.width * done // self.n_batches
        arrow = ">" if filled < self.width else ""
        return "[" + "=" * filled + arrow + "." * (self.width - filled - len(arrow)) + "]"

    def _line(self, done: int, text: str) -> str:
        digits = len(str(self.n_batches))
        return f"epoch {self._epoch + 1}/{self.epochs} {done:>{digits}}/{self.n_batches} {self._bar(done)} {text}"

    def _draw(self, done: int, text: str) -> None:
        line = self._line(done, text)
        columns = shutil.get_terminal_size((120, 20)).columns
        self._out.write("\r" + line[:columns - 1].ljust(columns - 1))
        self._out.flush()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        elapsed = time.perf_counter() - self._start
        line = self._line(self.n_batches, f"{_format_seconds(elapsed)}  {_format_logs(logs or {})}")
        self._out.write(("\r" if self._live else "") + line + "\n")
        self._out.flush()


# -------------------------------------------------------------- monitoring
class _Monitor:
    """Tracks the best value of one logged figure."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be the name of a logged figure such as 'val_loss', "
                            f"got {describe(monitor)}")
        if not isinstance(mode, str) or mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {describe(mode)}")
        min_delta = check_number("min_delta", min_delta, 0.0)
        if mode == "auto":
            mode = "max" if monitor.endswith(("accuracy", "r2")) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.reset()

    def reset(self) -> None:
        """Forget the best value (at the start of each training run)."""
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: Optional[dict], who: str) -> float:
        if not logs or self.monitor not in logs:
            hint = " (pass validation_data or validation_split to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{who} monitors {self.monitor!r}, which fit() does not log{hint}; "
                             f"logged: {sorted(logs or {})}")
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when the monitored figure has not improved for ``patience`` epochs.

    An epoch improves on the best so far when it is lower by more than
    ``min_delta`` (higher, for accuracy and R2). With ``restore_best_weights``
    (the default) the model ends with the weights of its best epoch: its
    parameters and its buffers (``model.get_weights()``).

    After training, ``best_epoch``, ``best`` and ``stopped_epoch`` (``None`` if it
    never stopped) tell what happened.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.monitor = monitor
        self.patience = check_non_negative_int(patience, "patience")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self._monitor.reset()
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self._best_weights = None

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        value = self._monitor.value(logs, "EarlyStopping")
        if self._monitor.improved(value):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when the monitored figure improves.

    ``path`` may contain ``{epoch}`` (1-based) and any logged figure, as in
    ``"model-{epoch:03d}-{val_loss:.3f}.npz"``. Files are written atomically.
    """

    def __init__(self, path: str, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", min_delta: float = 0.0) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ValueError(f"path must be a file name, got {path!r}")
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.saved: list[str] = []

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self._monitor.reset()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if self.save_best_only and not self._monitor.improved(self._monitor.value(logs, "ModelCheckpoint")):
            return
        try:
            path = self.path.format(epoch=epoch + 1, **(logs or {}))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as error:
            raise ValueError(f"ModelCheckpoint path {self.path!r} could not be formatted: {error}") from None
        self.saved.append(self.model.save(path))


# ------------------------------------------------------------- learning rate
class LearningRateScheduler(Callback):
    """Set ``optimizer.lr = schedule(epoch)`` at the start of every epoch (see
    ``scratchnn.schedules``); the rate used is logged as ``"lr"``."""

    def __init__(self, schedule: Callable[[int], float]) -> None:
        if not callable(schedule):
            raise TypeError("schedule must be callable: epoch -> learning rate")
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        # a learning rate is a finite number > 0 (and as a float: 10**400 is not one)
        self.model.optimizer.lr = check_number(f"the learning rate schedule({epoch})",
                                               self.schedule(epoch), 0.0, low_open=True)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs["lr"] = self.model.optimizer.lr


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when the monitored figure has not
    improved for ``patience`` epochs, then wait ``cooldown`` epochs; never below ``min_lr``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
                 mode: str = "auto") -> None:
        self.factor = check_number("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.min_lr = check_number("min_lr", min_lr, 0.0)
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.patience, self.cooldown = check_non_negative_int(patience, "patience"), check_non_negative_int(cooldown, "cooldown")

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self._monitor.reset()
        self.wait = self.cooling = 0

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        value = self._monitor.value(logs, "ReduceLROnPlateau")
        if self._monitor.improved(value):
            self.wait = 0
        elif self.cooling > 0:
            self.cooling -= 1
        else:
            self.wait += 1
            if self.wait >= self.patience and self.model.optimizer.lr > self.min_lr:
                self.model.optimizer.lr = max(self.model.optimizer.lr * self.factor, self.min_lr)
                self.wait, self.cooling = 0, self.cooldown
        if logs is not None:
            logs["lr"] = self.model.optimizer.lr
