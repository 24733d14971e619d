"""The ``scratchnn`` command.

    scratchnn train DATASET [options]     train, report test figures, save, plot
    scratchnn evaluate MODEL DATASET      loss and metrics of a saved model
    scratchnn predict MODEL INPUT.csv     write predictions for a CSV file
    scratchnn info MODEL                  the summary of a saved model
    scratchnn export MODEL OUT.onnx       write the model as an ONNX file (needs onnx)

DATASET is ``xor``, ``spirals``, ``moons``, ``fashion-mnist`` or the path of a
CSV file (with ``--target COLUMN``).

What a user can get wrong is checked before any training: options that do not
apply to the data set, the loss against the task, the output file and the plot
folder, matplotlib for ``--plots``. Every error is one line on standard error,
``scratchnn: error: ...`` (``scratchnn train: error: ...`` for a bad option of
``train``), with exit status 2; only the "Fashion-MNIST not found" message has
several lines (where it looked, and how to get the files). Ctrl-C during
training stops after the current batch, saves and plots what was asked for,
and exits with status 130; a closed pipe (``scratchnn train xor | head -1``)
ends the command quietly with status 141, as SIGPIPE ends other Unix tools.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import os
import stat
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import __version__, datasets
from .callbacks import (Callback, EarlyStopping, LearningRateScheduler, ReduceLROnPlateau,
                        format_number)
from .datasets.generated import MAX_SAMPLES
from .datasets import fashion_mnist
from .datasets.fashion_mnist import CLASS_NAMES, DatasetNotFoundError
from .io import load
from .layers import (ACTIVATIONS, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Layer,
                     MaxPool2D, ReLU, Sigmoid)
from .model import Sequential
from .optimizers import OPTIMIZERS
from .preprocessing import LabelEncoder, StandardScaler, train_test_split
from .schedules import CosineDecay, ExponentialDecay, StepDecay

BUILTIN = ("xor", "spirals", "moons", "fashion-mnist")

#: Each data set's default recipe; every entry can be overridden by an option.
PRESETS: dict[str, dict] = {
    # The tutorials' network: 2-4-1 sigmoid, standard-normal weights, full-batch gradient descent.
    "xor": dict(hidden=[4], activation="sigmoid", dropout=0.0, optimizer="sgd", lr=0.1,
                epochs=10_000, batch_size=0, validation_split=0.0, early_stopping=0,
                schedule="none", init="standard_normal"),
    "spirals": dict(hidden=[64, 64], activation="relu", dropout=0.0, optimizer="adam", lr=0.01,
                    epochs=300, batch_size=32, validation_split=0.2, early_stopping=0,
                    schedule="none", init=None),
    "moons": dict(hidden=[16, 16], activation="relu", dropout=0.0, optimizer="adam", lr=0.01,
                  epochs=200, batch_size=32, validation_split=0.2, early_stopping=0,
                  schedule="none", init=None),
    "fashion-mnist": dict(hidden=[512, 256], activation="relu", dropout=0.2, optimizer="adam",
                          lr=1e-3, epochs=30, batch_size=128, validation_split=0.1,
                          early_stopping=0, schedule="cosine", init=None),
    "csv": dict(hidden=[64, 32], activation="relu", dropout=0.0, optimizer="adam", lr=1e-3,
                epochs=200, batch_size=32, validation_split=0.2, early_stopping=20,
                schedule="none", init=None),
}

#: ``--model cnn`` (fashion-mnist only): the training settings, each the default of its
#: option, and ``cnn_layers`` below are the whole recipe. Tune it here.
CNN_PRESET: dict = dict(dropout=0.3, optimizer="adam", lr=1e-3, epochs=15, batch_size=128,
                        validation_split=0.1, early_stopping=0, schedule="cosine", init=None)


def cnn_layers(n_outputs: int, dropout: float) -> list[Layer]:
    """The network of ``--model cnn`` for (28, 28, 1) images, channels last: two blocks
    of 3x3 convolution (32, then 64 filters, "same" padding), batch normalization, ReLU
    and 2x2 max pooling (28x28 -> 14x14 -> 7x7), then Dense(128), ReLU, Dropout and the
    output layer. ``--dropout`` sets the rate (0 leaves the Dropout layer out).

    Measured on 2026-12-02 (15 epochs, cosine schedule, test accuracy): this network,
    0.9216; with RandomFlip and 1-pixel RandomTranslation in front, 0.9187; with a
    Dropout(0.25) before Flatten and the last rate 0.4, 0.9189. Both regularizers
    slowed learning more than they cut overfitting within 15 epochs."""
    layers: list[Layer] = []
    for filters in (32, 64):
        layers += [Conv2D(filters, 3, padding="same"), BatchNormalization(), ReLU(), MaxPool2D(2)]
    layers += [Flatten(), Dense(128, kernel_initializer="he_uniform"), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    return layers + [Dense(n_outputs)]


#: ``cnn_layers`` as ``--help`` shows them: keep the two together.
CNN_LAYERS_HELP = ("Conv2D(32, 3, padding='same'), BatchNormalization, ReLU, MaxPool2D(2), "
                   "Conv2D(64, 3, padding='same'), BatchNormalization, ReLU, MaxPool2D(2), "
                   "Flatten, Dense(128), ReLU, Dropout, Dense(10)")

#: Where ``--model cnn`` applies: data sets of images.
CNN_DATASETS = ("fashion-mnist",)

#: The --loss choices each task accepts, and the loss each trains with.
LOSSES = {
    "binary": {"bce": "binary_cross_entropy", "mse": "mse"},                 # xor
    "classification": {},                                                    # cross-entropy only
    "regression": {"mse": "mse", "mae": "mae", "huber": "huber"},            # CSV regression
}
DEFAULT_LOSS = {"binary": "binary_cross_entropy", "classification": "cross_entropy",
                "regression": "mse"}

#: The largest layer size --hidden accepts: products of two sizes stay within int64.
MAX_UNITS = 2**31 - 1

PLOT_FILES = ("history.png", "confusion_matrix.png", "decision_boundary.png", "filters.png",
              "predictions.png")

#: Test images shown in predictions.png: a grid of rows x columns.
PREDICTION_GRID = (5, 8)


class CLIError(Exception):
    """An error reported as one line, without a traceback."""


# ============================================================================ data
@dataclass
class Data:
    """A data set ready for training: standardized features, encoded labels.

    ``X_test`` is None for xor, whose four points are all there is: its figures
    are those of the training set, and ``evaluated_on`` says so."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    task: str                                   # "binary", "classification" or "regression"
    n_outputs: int
    class_names: Optional[list] = None          # how classes are shown
    classes: Optional[list] = None              # labels that predictions decode to (CSV)
    feature_names: Optional[list] = None
    target: Optional[str] = None
    scaler: Optional[StandardScaler] = None
    image_shape: Optional[tuple] = None         # (height, width) of image data, rows or not

    @property
    def evaluated_on(self) -> str:
        return "training" if self.X_test is None else "test"

    @property
    def X_eval(self) -> np.ndarray:
        return self.X_train if self.X_test is None else self.X_test

    @property
    def y_eval(self) -> np.ndarray:
        return self.y_train if self.y_test is None else self.y_test


def _csv_task(y: np.ndarray, task: str) -> str:
    if task != "auto":
        return task
    if y.dtype.kind in "US":
        return "classification"
    if y.dtype.kind in "iu" and len(np.unique(y)) <= 20:
        return "classification"
    return "regression"


def _dataset_kind(name: str) -> str:
    """``name`` itself for the built-in data sets, ``"csv"`` for a file; else a CLIError."""
    if name in BUILTIN:
        return name
    if os.path.isdir(name):
        raise CLIError(f"DATASET {name!r} is a directory; expected one of xor, spirals, moons, "
                       "fashion-mnist or a CSV file")
    if os.path.lexists(name) or name.lower().endswith(".csv"):
        return "csv"   # the CSV reader says what is wrong with the file, if anything
    close = difflib.get_close_matches(name, BUILTIN, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else " (no such file)"
    raise CLIError(f"DATASET must be one of xor, spirals, moons, fashion-mnist or a CSV file, "
                   f"got {name!r}{hint}")


def _check_options_apply(args: argparse.Namespace, kind: str) -> None:
    """Refuse the options that would be silently ignored for this data set (or model)."""
    where = {"--target": ("target", ("csv",)),
             "--samples": ("samples", ("spirals", "moons", "fashion-mnist")),
             "--data-dir": ("data_dir", ("fashion-mnist",))}
    for option, (key, kinds) in where.items():
        if getattr(args, key, None) is not None and kind not in kinds:
            applies = ("CSV files" if kinds == ("csv",) else
                       " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds))
            raise CLIError(f"{option} applies to {applies} only, not to {_shown(args.dataset, kind)}")
    if getattr(args, "task", "auto") != "auto" and kind != "csv":
        raise CLIError(f"--task applies to CSV files only, not to {_shown(args.dataset, kind)}")
    if getattr(args, "model", None) == "cnn":
        if kind not in CNN_DATASETS:
            raise CLIError(f"--model cnn applies to {', '.join(CNN_DATASETS)} only (images), not to "
                           f"{_shown(args.dataset, kind)}")
        for option, key in (("--hidden", "hidden"), ("--activation", "activation")):
            if getattr(args, key) is not None:
                raise CLIError(f"{option} applies to --model mlp only; the layers of --model cnn "
                               "are fixed (see 'scratchnn train --help')")


def _check_data_dir(directory: Optional[str]) -> None:
    if directory is None:
        return
    if not os.path.isdir(directory):
        problem = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise CLIError(f"--data-dir {directory!r} {problem}")
    missing = fashion_mnist._missing(Path(directory))
    if missing:
        raise CLIError(f"--data-dir {directory!r} lacks {', '.join(missing)}; it must hold the four "
                       "Fashion-MNIST files (apt-get install dataset-fashion-mnist puts them in "
                       "/usr/share/datasets/fashion-mnist)")


def _check_named(path: str, what: str) -> None:
    if not path:
        raise CLIError(f"{what} is an empty string; expected a file name")


def _shown(dataset: str, kind: str) -> str:
    return dataset if kind != "csv" else f"the CSV file {dataset!r}"


def load_training_data(args: argparse.Namespace) -> Data:
    """Load DATASET, split off a test set, standardize (training statistics only)."""
    name = args.dataset
    if name == "xor":
        X, y = datasets.xor()
        return Data("xor", X, y, None, None, "binary", 1, class_names=["0", "1"])
    if name in ("spirals", "moons"):
        maker = datasets.spirals if name == "spirals" else datasets.moons
        least = 3 if name == "spirals" else 2      # a point per class
        if args.samples is not None and not least <= args.samples <= MAX_SAMPLES:
            raise CLIError(f"--samples must be between {least} (a point per class) and "
                           f"{MAX_SAMPLES:,} for {name}, got {args.samples:,}")
        X, y = maker(n_samples=args.samples, seed=args.seed) if args.samples else maker(seed=args.seed)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=True,
                                                            seed=args.seed)
        scaler = StandardScaler().fit(X_train)
        k = int(y.max()) + 1
        return Data(name, scaler.transform(X_train), y_train, scaler.transform(X_test), y_test,
                    "classification", k, class_names=[str(i) for i in range(k)], scaler=scaler)
    if name == "fashion-mnist":
        # the CNN takes images (N, 28, 28, 1), the MLP rows (N, 784)
        X_train, y_train, X_test, y_test = datasets.load_fashion_mnist(
            args.data_dir, images=args.model == "cnn")
        if args.samples is not None:
            X_train, y_train, X_test, y_test = _fashion_subset(X_train, y_train, X_test, y_test,
                                                               args.samples, args.seed)
        return Data(name, X_train, y_train, X_test, y_test, "classification", 10,
                    class_names=list(CLASS_NAMES), classes=list(CLASS_NAMES), image_shape=(28, 28))
    if not args.target:
        raise CLIError(f"training on the CSV file {name!r} needs --target COLUMN")
    table = datasets.load_csv(name, args.target)
    task = _csv_task(table.y, args.task)
    if task == "classification":
        encoder = LabelEncoder().fit(table.y)
        y, classes = encoder.transform(table.y), encoder.classes_.tolist()
        if len(classes) < 2:
            raise CLIError(f"the target column {args.target!r} has a single class; classification needs two or more")
    else:
        if table.y.dtype.kind not in "iuf":
            raise CLIError(f"--task regression needs a numeric target column, {args.target!r} holds text")
        y, classes = table.y.astype(np.float64), None
    stratify = task == "classification" and np.min(np.bincount(y)) >= 2
    X_train, X_test, y_train, y_test = train_test_split(table.X, y, test_size=0.2,
                                                        stratify=stratify, seed=args.seed)
    scaler = StandardScaler().fit(X_train)
    return Data(os.path.basename(name), scaler.transform(X_train), y_train,
                scaler.transform(X_test), y_test, task,
                len(classes) if classes else 1, class_names=[str(c) for c in classes] if classes else None,
                classes=classes, feature_names=table.feature_names, target=args.target, scaler=scaler)


def _fashion_subset(X_train, y_train, X_test, y_test, samples: int, seed: int):
    """``--samples N`` of fashion-mnist: N training images and the same fraction of the
    test images (at least one), each a stratified random sample drawn with ``seed``."""
    if samples > len(X_train):
        raise CLIError(f"--samples must be at most {len(X_train):,} for fashion-mnist (its "
                       f"training images), got {samples:,}")
    n_test = max(1, round(samples * len(X_test) / len(X_train)))
    parts = []
    for X, y, n in ((X_train, y_train, samples), (X_test, y_test, n_test)):
        if n < len(X):
            # a sample of the indices, not of the images: no copy of the 47 MB not kept
            _, keep, _, _ = train_test_split(np.arange(len(X)), y, test_size=n, stratify=True,
                                             seed=seed)
            keep = np.sort(keep)
            X, y = X[keep], y[keep]
        parts += [X, y]
    return tuple(parts)


# ====================================================================== outputs
def _check_output_file(path: str, option: str, suffix: str = "", example: str = "model.npz") -> str:
    """The file that will be written for ``option`` (``suffix`` appended when
    missing, as ``save`` does), checked now: not a directory, in an existing
    directory where we can create files. Returns the path to write."""
    if not path:
        raise CLIError(f"{option} needs a file name, got ''")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise CLIError(f"{option} {path!r} names a directory; give a file name such as "
                       f"{os.path.join(path, example)!r}")
    target = path if not suffix or path.endswith(suffix) else path + suffix
    if os.path.isdir(target):
        raise CLIError(f"{option} {path!r}: {target!r} is a directory")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise CLIError(f"{option} {path!r}: the directory {os.path.dirname(target)!r} does not exist")
    if os.path.exists(target) and not os.path.isfile(target):
        if suffix:   # a model file is replaced atomically: only a regular file can be
            raise CLIError(f"{option} {path!r} is not a regular file")
        return target   # a FIFO or a device such as /dev/stdout: written to directly
    _check_writable(directory, f"{option} {path!r}")
    return target


def _check_writable(directory: str, what: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise CLIError(f"{what}: cannot create files in {directory!r} "
                       f"({error.strerror or error})") from None


def _check_plot_dir(directory: str) -> None:
    """matplotlib importable, and DIR a directory we can write in (or can create)."""
    try:
        from . import plots
        plots._pyplot()
    except ImportError:
        raise CLIError("--plots needs matplotlib: pip install 'scratchnn[plots]'") from None
    if not directory:
        raise CLIError("--plots needs a directory name, got ''")
    path = os.path.abspath(directory)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise CLIError(f"--plots {directory!r} is not a directory")
        for name in PLOT_FILES:
            file = os.path.join(path, name)
            if os.path.exists(file) and not os.path.isfile(file):
                raise CLIError(f"--plots {directory!r}: {name} exists and is not a regular file")
        _check_writable(path, f"--plots {directory!r}")
        return
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CLIError(f"--plots {directory!r}: {parent!r} is not a directory")
    try:   # the one sure test: make (and remove) a folder where DIR will be made
        os.rmdir(tempfile.mkdtemp(dir=parent))
    except OSError as error:
        raise CLIError(f"--plots {directory!r}: cannot create it in {parent!r} "
                       f"({error.strerror or error})") from None


def _write_failed(path: str, error: OSError) -> CLIError:
    """An OSError while writing ``path``, named by the user's path (not a temporary file's)."""
    return CLIError(f"cannot write {path!r}: {error.strerror or error}")


# =========================================================================== train
def _settings(args: argparse.Namespace) -> dict:
    """The preset of the data set (or of --model cnn), overridden by the options given."""
    if args.model == "cnn":
        preset = CNN_PRESET
    else:
        preset = PRESETS[args.dataset if args.dataset in PRESETS else "csv"]
    settings = {key: getattr(args, key) if getattr(args, key, None) is not None else value
                for key, value in preset.items()}
    if settings["batch_size"] == 0:
        settings["batch_size"] = None
    settings["model"] = args.model
    return settings


def _choose_loss(data: Data, requested: Optional[str]) -> str:
    accepted = LOSSES[data.task]
    if requested is None:
        return DEFAULT_LOSS[data.task]
    if requested not in accepted:
        if data.task == "classification":
            why = f"{data.name} is a classification task, trained with cross-entropy (no --loss)"
        else:
            kind = "xor" if data.task == "binary" else f"{data.name} is a regression task, which"
            why = f"{kind} accepts --loss {', '.join(accepted)}"
        raise CLIError(f"--loss {requested} does not apply here: {why}; --loss is for xor "
                       "(bce, mse) and CSV regression (mse, mae, huber)")
    return accepted[requested]


def _check_settings(args: argparse.Namespace, data: Data, settings: dict) -> tuple[int, int]:
    """Settings against the data, before training. Returns the sizes of the
    training and validation parts of the training data."""
    split = settings["validation_split"]
    if settings["early_stopping"] and not split:
        if args.early_stopping:
            raise CLIError(f"--early-stopping watches the validation loss, and {data.name} trains "
                           "without a validation split: add --validation-split FRACTION (such as 0.2)")
        settings["early_stopping"] = 0   # the CSV recipe's, turned off by --validation-split 0
    n = len(data.X_train)
    n_val = int(round(n * split)) if split else 0   # as fit() splits (training.split_validation)
    if split and not 1 <= n_val < n:
        given = "" if args.validation_split is not None else f" (the {data.name} default)"
        raise CLIError(f"--validation-split {split:g}{given} of {_plural(n, 'training sample')} leaves {n_val} "
                       f"for validation and {n - n_val} for training; both need at least one "
                       "(use more samples or --validation-split 0)")
    return n - n_val, n_val


def build_model(data: Data, settings: dict, seed: int) -> Sequential:
    if settings["model"] == "cnn":
        return Sequential(cnn_layers(data.n_outputs, settings["dropout"]), seed=seed,
                          input_shape=data.X_train.shape[1:])
    init = {"kernel_initializer": settings["init"]} if settings["init"] else \
        {"kernel_initializer": "he_uniform" if settings["activation"] in ("relu", "leaky_relu", "elu", "gelu") else "glorot_uniform"}
    layers = []
    for units in settings["hidden"]:
        layers += [Dense(units, **init), ACTIVATIONS[settings["activation"]]()]
        if settings["dropout"]:
            layers.append(Dropout(settings["dropout"]))
    layers.append(Dense(data.n_outputs, **init))
    if data.task == "binary" and settings["loss"] == "mse":
        layers.append(Sigmoid())   # the tutorials' variant: squared error of a sigmoid output
    return Sequential(layers, seed=seed)


class _PrintEvery(Callback):
    """Print the training loss every ``every`` epochs (the tutorials' log)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if (epoch + 1) % self.every == 0:
            print(f"epoch {epoch + 1:>6}  loss {format_number(logs['loss'], 6)}", flush=True)


def _callbacks(settings: dict, args: argparse.Namespace) -> list[Callback]:
    callbacks: list[Callback] = []
    monitor = "val_loss" if settings["validation_split"] else "loss"
    schedule, lr, epochs = settings["schedule"], settings["lr"], settings["epochs"]
    if schedule == "cosine":
        callbacks.append(LearningRateScheduler(CosineDecay(lr, epochs)))
    elif schedule == "step":
        callbacks.append(LearningRateScheduler(StepDecay(lr, max(1, epochs // 3), 0.1)))
    elif schedule == "exponential":
        callbacks.append(LearningRateScheduler(ExponentialDecay(lr, 0.95)))
    elif schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=3))
    if settings["early_stopping"]:
        callbacks.append(EarlyStopping(monitor=monitor, patience=settings["early_stopping"]))
    if args.print_every:
        callbacks.append(_PrintEvery(args.print_every))
    return callbacks


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _layer_text(layer: Layer) -> str:
    """A layer of the CNN as the first line of output shows it: ``conv3x3 32``, ``maxpool 2``."""
    def size(pair: tuple) -> str:
        return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
    if isinstance(layer, Conv2D):
        return f"conv{layer.kernel_size[0]}x{layer.kernel_size[1]} {layer.filters}"
    if isinstance(layer, MaxPool2D):
        return f"maxpool {size(layer.pool_size)}"
    if isinstance(layer, BatchNormalization):
        return "batchnorm"
    if isinstance(layer, Dense):
        return f"dense {layer.units}"
    if isinstance(layer, Dropout):
        return f"dropout {layer.rate:g}"
    return type(layer).__name__.lower()


def _architecture(model: Sequential, settings: dict, data: Data) -> str:
    """``MLP 784-512-256-10, relu``, or the CNN's input shape and layers."""
    if settings["model"] == "cnn":
        shape = "x".join(str(s) for s in model.input_shape)
        return f"CNN {shape}: " + ", ".join(_layer_text(layer) for layer in model.layers)
    sizes = "-".join(str(s) for s in (data.X_train.shape[1], *settings["hidden"], data.n_outputs))
    return f"MLP {sizes}, {settings['activation']}"


def _describe(model: Sequential, data: Data, settings: dict, n_fit: int, n_val: int) -> str:
    batch = settings["batch_size"]
    batch = "full" if batch is None or batch >= n_fit else batch
    extras = []
    if settings["dropout"] and settings["model"] != "cnn":   # the CNN's is among its layers
        extras.append(f"dropout {settings['dropout']:g}")
    if settings["schedule"] != "none":
        extras.append(f"{settings['schedule']} schedule")
    if settings["early_stopping"]:
        extras.append(f"early stopping (patience {settings['early_stopping']})")
    counts = [f"{n_fit} training"]
    if n_val:
        counts.append(f"{n_val} validation")
    if data.X_test is not None:
        counts.append(f"{len(data.X_test)} test")
    samples = (", ".join(counts[:-1]) + " and " + counts[-1]) if len(counts) > 1 else counts[0]
    return (f"{data.name}: {samples} samples; {_architecture(model, settings, data)}, "
            f"{settings['loss']}, {settings['optimizer']} lr {settings['lr']:g}, "
            f"{_plural(settings['epochs'], 'epoch')}, batch {batch}"
            + "".join(f", {e}" for e in extras))


def _report(scores: dict, prefix: str = "") -> str:
    return "  ".join(f"{prefix}{key} {format_number(value)}" for key, value in scores.items())


@dataclass
class _Progress:
    """How far training got, the same numbers in every message and in the model file."""

    completed_epochs: int
    interrupted: bool
    interrupted_batches: int       # batches run in the epoch cut short (0: between epochs)
    batches_per_epoch: int

    @classmethod
    def of(cls, history, batches_per_epoch: int) -> "_Progress":
        return cls(history.completed_epochs, history.interrupted, history.interrupted_batches,
                   batches_per_epoch)

    def describe(self) -> str:
        """``"3 epochs"``, or ``"2 epochs and 5 of 10 batches of epoch 3"``."""
        text = _plural(self.completed_epochs, "epoch")
        if self.interrupted_batches:
            text += (f" and {self.interrupted_batches} of {self.batches_per_epoch} batches of "
                     f"epoch {self.completed_epochs + 1}")
        return text


def _restored_epoch(stopper: Optional[EarlyStopping], progress: _Progress) -> Optional[int]:
    """The epoch (from 1) whose weights EarlyStopping put back, when not the last one run."""
    if stopper is None or stopper.best_epoch is None or not stopper.restore_best_weights:
        return None
    if stopper.best_epoch + 1 == progress.completed_epochs and not progress.interrupted_batches:
        return None
    return stopper.best_epoch + 1


def _early_stopping_note(stopper: Optional[EarlyStopping], restored: Optional[int]) -> str:
    if stopper is None or stopper.best_epoch is None:
        return ""
    notes = []
    if stopper.stopped_epoch is not None:
        notes.append(f"early stopping: {stopper.monitor} did not improve for {stopper.patience} "
                     f"epoch{'' if stopper.patience == 1 else 's'}")
    if restored is not None:
        notes.append(f"kept the weights of epoch {restored}, {stopper.monitor} "
                     f"{format_number(stopper.best)}")
    return "; ".join(notes)


def command_train(args: argparse.Namespace) -> int:
    # -- everything that can be checked before the data are loaded
    kind = _dataset_kind(args.dataset)
    _check_options_apply(args, kind)
    _check_data_dir(args.data_dir)
    output = _check_output_file(args.output, "--output", ".npz") if args.output is not None else None
    if args.plots is not None:
        _check_plot_dir(args.plots)

    # -- the data, and the settings checked against them
    data = load_training_data(args)
    settings = _settings(args)
    loss = _choose_loss(data, args.loss)
    settings["loss"] = loss
    n_fit, n_val = _check_settings(args, data, settings)
    model = build_model(data, settings, args.seed)
    model.classes = data.classes
    optimizer = OPTIMIZERS[settings["optimizer"]](lr=settings["lr"])
    if kind == "xor" and args.print_every is None:
        args.print_every = 1000
    verbose = args.verbose if args.verbose is not None else (0 if args.print_every else 1)
    batch_size = min(settings["batch_size"] or n_fit, n_fit)
    n_batches = -(-n_fit // batch_size)
    print(_describe(model, data, settings, n_fit, n_val), flush=True)

    # -- training
    callbacks = _callbacks(settings, args)
    start = time.perf_counter()
    history = model.fit(data.X_train, data.y_train, loss=loss, optimizer=optimizer,
                        epochs=settings["epochs"], batch_size=batch_size,
                        validation_split=settings["validation_split"],
                        callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    progress = _Progress.of(history, n_batches)
    stopper = next((c for c in callbacks if isinstance(c, EarlyStopping)), None)
    restored = _restored_epoch(stopper, progress)
    notes = ["interrupted by Ctrl-C"] if progress.interrupted else []
    if note := _early_stopping_note(stopper, restored):
        notes.append(note)
    print(f"trained {progress.describe()} in {seconds:.1f} s" + "".join(f" ({n})" for n in notes),
          flush=True)

    # -- results, the model file, the plots
    if kind == "xor":
        values = model.predict(data.X_train) if loss == "mse" else model.predict_proba(data.X_train)
        print("input   prediction")
        for x, p in zip(data.X_train.astype(int), values[:, 0]):
            print(f"{x[0]} {x[1]}     {p:.4f}")
    scores = model.evaluate(data.X_eval, data.y_eval)
    if data.X_test is not None:
        print(_report(scores, prefix="test "))
    if output is not None:
        metadata = {"dataset": data.name, "task": data.task, "feature_names": data.feature_names,
                    "target": data.target, "class_names": data.class_names,
                    "scaler": data.scaler.to_dict() if data.scaler else None,
                    f"{data.evaluated_on}_scores": scores,
                    "samples": {"training": n_fit, "validation": n_val,
                                "test": 0 if data.X_test is None else len(data.X_test)},
                    "epochs_trained": progress.completed_epochs,
                    "interrupted": progress.interrupted,
                    "interrupted_batches": progress.interrupted_batches,
                    "batches_per_epoch": n_batches,
                    "weights_of_epoch": restored,
                    "train_seconds": round(seconds, 2), "settings": settings}
        try:
            print(f"saved {model.save(output, metadata=metadata)}", flush=True)
        except OSError as error:
            raise _write_failed(output, error) from None
    if args.plots is not None:
        for line in _plots(model, data, history, args.plots):
            print(line, flush=True)
    if progress.interrupted:
        print("scratchnn: interrupted", file=sys.stderr)
        return 130
    return 0


def _plots(model: Sequential, data: Data, history, directory: str) -> list[str]:
    """Draw the plots that apply; return one line of output per plot."""
    from . import plots   # matplotlib is an optional extra: import it only here
    shown = "test set" if data.X_test is not None else "training set; xor has no test set"
    lines = []
    try:
        if history.history.get("loss"):
            lines.append("plot " + plots.plot_history(history, os.path.join(directory, "history.png"),
                                                      title=f"{data.name}: training"))
        else:
            lines.append("plot history.png skipped: no epoch was completed")
        if data.task != "regression":
            predicted = _predicted_codes(model, data.X_eval)
            lines.append("plot " + plots.plot_confusion_matrix(
                data.y_eval, predicted, os.path.join(directory, "confusion_matrix.png"),
                class_names=data.class_names, title=f"{data.name}: {shown}"))
            if data.image_shape is not None:
                n = math.prod(PREDICTION_GRID)
                images = data.X_eval[:n].reshape(-1, *data.image_shape)   # rows of the MLP too
                wrong = int(np.sum(data.y_eval[:n] != predicted[:n]))
                lines.append("plot " + plots.plot_predictions(
                    images, data.y_eval[:n], predicted[:n],
                    os.path.join(directory, "predictions.png"), class_names=data.class_names,
                    n_rows=PREDICTION_GRID[0], n_cols=PREDICTION_GRID[1],
                    title=f"{data.name}: the first {len(images)} images of the {shown}, {wrong} "
                          "wrong (in red as predicted (true))"))
        if any(isinstance(layer, Conv2D) for layer in model.layers):
            lines.append("plot " + plots.plot_filters(model, os.path.join(directory, "filters.png")))
        if data.X_train.ndim == 2 and data.X_train.shape[1] == 2 and data.task != "regression":
            lines.append("plot " + plots.plot_decision_boundary(
                model, data.X_eval, _decoded(model, data.y_eval),
                os.path.join(directory, "decision_boundary.png"),
                title=f"{data.name}: decision boundary ({shown})"))
    except OSError as error:
        raise _write_failed(error.filename or directory, error) from None
    return lines


def _predicted_codes(model: Sequential, X: np.ndarray) -> np.ndarray:
    return model.loss.predicted_labels(model.output(X))


def _as_model_input(model: Sequential, X: np.ndarray, source: str) -> np.ndarray:
    """Rows ``(N, F)`` shaped as the model's samples: images ``(N, 28, 28, 1)`` for a
    model that takes 28x28x1 images, read row by row (the layout of
    ``load_fashion_mnist``). A model of flat rows gets ``X`` as it is (and checks it)."""
    shape = model.input_shape
    if shape is None or len(shape) == 1 or X.shape[1:] == shape:
        return X
    if X.ndim == 2 and X.shape[1] == math.prod(shape):
        return X.reshape(len(X), *shape)
    raise CLIError(f"{source} has {X.shape[1]:,} values per sample, but the model takes samples of "
                   f"shape {shape} ({math.prod(shape):,} values, read row by row)")


def _decoded(model: Sequential, codes: np.ndarray) -> np.ndarray:
    return codes if model.classes is None else np.asarray(model.classes)[codes]


# ======================================================================= evaluate
def _load_model(path: str) -> Sequential:
    model = load(path)
    if model.loss is None:
        raise CLIError(f"{path}: the model has no loss; it was saved before it was trained")
    return model


def _check_dataset_matches(model: Sequential, dataset: str, kind: str) -> None:
    trained_on = model.metadata.get("dataset")
    if not isinstance(trained_on, str):
        return     # saved from Python: nothing to compare
    trained_kind = trained_on if trained_on in BUILTIN else "csv"
    if trained_kind != kind or (kind != "csv" and trained_on != dataset):
        raise CLIError(f"the model was trained on {trained_on}"
                       f"{' (a CSV file)' if trained_kind == 'csv' else ''}, not on "
                       f"{_shown(dataset, kind)}")


def _feature_names(meta: dict) -> Optional[list]:
    """The feature columns the model file names, or None (a model saved from Python)."""
    names = meta.get("feature_names")
    if names is None or names == []:
        return None
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise CLIError(f"the model file's metadata 'feature_names' must be a list of column names, "
                       f"got {_json(names):.80}")
    return names


def _data_for_saved_model(model: Sequential, dataset: str, args: argparse.Namespace):
    """X, y (encoded as the model expects) of DATASET, preprocessed as in training."""
    meta = model.metadata
    if dataset == "xor":
        return datasets.xor()
    if dataset in ("spirals", "moons"):
        maker = datasets.spirals if dataset == "spirals" else datasets.moons
        X, y = maker(seed=1000 if args.seed is None else args.seed)
    elif dataset == "fashion-mnist":
        # rows; _as_model_input below shapes them as the model takes them (images for a CNN)
        _, _, X, y = datasets.load_fashion_mnist(args.data_dir)
    else:
        target = args.target or meta.get("target")
        if not target:
            raise CLIError("the model file does not name its target column; pass --target COLUMN")
        table = datasets.load_csv(dataset, target)
        names = _feature_names(meta)
        if not names:
            X = table.X
        elif set(names) <= set(table.feature_names):   # the columns read already, in training order
            X = table.X[:, [table.feature_names.index(name) for name in names]]
        else:   # a column is missing (the reader says which) or is the --target column
            X = datasets.load_csv_features(dataset, names)
        y = table.y
        if model.classes is not None:
            index = {c: i for i, c in enumerate(model.classes)}
            unknown = [v for v in np.unique(y).tolist() if v not in index]
            if unknown:
                raise CLIError(f"{dataset}: target labels {unknown[:5]} are not among the model's "
                               f"classes {model.classes}")
            y = np.array([index[v] for v in y.tolist()])
        elif not model.loss.classification and y.dtype.kind not in "iuf":
            raise CLIError(f"{dataset}: the target column {target!r} holds text, but the model "
                           "predicts numbers (regression)")
    if meta.get("scaler"):
        X = StandardScaler.from_dict(meta["scaler"]).transform(X)
    return _as_model_input(model, X, dataset), y


def command_evaluate(args: argparse.Namespace) -> int:
    _check_named(args.model, "MODEL")
    kind = _dataset_kind(args.dataset)
    _check_options_apply(args, kind)
    _check_data_dir(args.data_dir)
    if args.seed is not None and kind not in ("spirals", "moons"):
        raise CLIError(f"--seed applies to spirals and moons only, not to {_shown(args.dataset, kind)}")
    model = _load_model(args.model)
    _check_dataset_matches(model, args.dataset, kind)
    X, y = _data_for_saved_model(model, args.dataset, args)
    scores = model.evaluate(X, y)
    print(f"{args.dataset}: {len(X)} samples")
    print(_report(scores))
    return 0


# ======================================================================== predict
def command_predict(args: argparse.Namespace) -> int:
    _check_named(args.model, "MODEL")
    _check_named(args.input, "INPUT.csv")
    output_path = (_check_output_file(args.output, "--output", example="predictions.csv")
                   if args.output is not None else None)
    model = _load_model(args.model)
    meta = model.metadata
    # every column when the model was trained without names
    X = datasets.load_csv_features(args.input, _feature_names(meta))
    if meta.get("scaler"):
        X = StandardScaler.from_dict(meta["scaler"]).transform(X)
    X = _as_model_input(model, X, args.input)
    # one forward pass for labels and probabilities
    output = model.output(X)
    if model.loss.classification:
        proba = model.loss.probabilities(output)
        if proba.ndim != 2:
            raise CLIError(f"predict writes one prediction per row; this model's outputs have "
                           f"shape {output.shape[1:]} per row")
        # (N,) labels, or (N, k) for binary cross-entropy on k outputs (k yes/no answers)
        predictions = np.asarray(_decoded(model, model.loss.predicted_labels(output))).reshape(len(X), -1)
        k = predictions.shape[1]
        header = ["prediction"] if k == 1 else [f"prediction_{i}" for i in range(k)]
        rows = predictions.tolist()
        if proba.shape[1] == 1:
            header.append("probability")
        elif k > 1:                                # one probability per yes/no output
            header += [f"probability_{i}" for i in range(k)]
        else:                                      # one probability per class
            labels = (model.classes if model.classes is not None
                      else meta.get("class_names") or range(proba.shape[1]))
            header += [f"p_{label}" for label in labels]
        rows = [row + [f"{p:.6f}" for p in probs] for row, probs in zip(rows, proba.tolist())]
    else:
        values = output.reshape(len(X), -1)
        header = (["prediction"] if values.shape[1] == 1 else
                  [f"prediction_{i}" for i in range(values.shape[1])])
        # str of the NumPy scalar: the shortest text that reads back as the same value in
        # the model's own precision (206.92464, not float32 noise such as 206.9246368408203)
        rows = [[str(v) for v in row] for row in values]
    if output_path is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
    else:
        if _write_rows(output_path, header, rows):   # not into /dev/stdout or a pipe
            print(f"wrote {len(rows)} predictions to {output_path}")
    return 0


def _write_rows(path: str, header: list, rows: list) -> bool:
    """Write a CSV file atomically (a temporary file renamed onto ``path``) and
    return True; a FIFO or a device (``/dev/stdout``) is written to directly
    (and False returned). Errors name ``path``."""
    try:
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            with open(path, "w", newline="", encoding="utf-8") as handle:
                _write_csv(handle, header, rows)
            return False
        directory = os.path.dirname(os.path.abspath(path))
        handle = tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=directory,
                                             prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                             delete=False)
        try:
            with handle:
                _write_csv(handle, header, rows)
            os.chmod(handle.name, 0o666 & ~_umask())
            os.replace(handle.name, path)
            return True
        except BaseException:
            if os.path.exists(handle.name):
                os.remove(handle.name)
            raise
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            raise
        raise _write_failed(path, error) from None


def _write_csv(handle, header: list, rows: list) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _umask() -> int:
    mask = os.umask(0)   # the only portable way to read the umask is to set it
    os.umask(mask)
    return mask


# =========================================================================== info
def _training_record(meta: dict) -> list[str]:
    lines = []
    epochs = meta.get("epochs_trained")
    if epochs is not None:
        text = f"epochs_trained: {_json(epochs)}"
        batches, per_epoch = meta.get("interrupted_batches") or 0, meta.get("batches_per_epoch")
        if meta.get("interrupted") and isinstance(epochs, int) and isinstance(batches, int) and batches:
            text += (f", then {batches} of {per_epoch} batches of epoch {epochs + 1} "
                     "(interrupted by Ctrl-C)")
        elif meta.get("interrupted"):
            text += f" (interrupted by Ctrl-C after epoch {epochs})"
        lines.append(text)
    if meta.get("weights_of_epoch") is not None:
        lines.append(f"weights_of_epoch: {meta['weights_of_epoch']} (the best epoch, kept by early "
                     "stopping)")
    samples = meta.get("samples")
    if isinstance(samples, dict):
        lines.append("samples: " + ", ".join(f"{key} {value}" for key, value in samples.items()
                                              if value))
    return lines


def command_info(args: argparse.Namespace) -> int:
    _check_named(args.model, "MODEL")
    model = load(args.model)
    model.summary()
    meta = model.metadata
    optimizer = model.optimizer
    lines = [f"loss: {type(model.loss).__name__ if model.loss else None}",
             f"optimizer: {optimizer!r}, {optimizer.iterations:,} steps" if optimizer else "optimizer: none"]
    if model.classes is not None:
        lines.append(f"classes: {_json(np.asarray(model.classes).tolist())}")
    for key in ("dataset", "task", "target", "feature_names", "class_names"):
        if meta.get(key) is not None:
            lines.append(f"{key}: {_json(meta[key])}")
    lines += _training_record(meta)
    for key in ("train_seconds", "training_scores", "test_scores"):
        if meta.get(key) is not None:
            lines.append(f"{key}: {_json(meta[key])}")
    print("\n".join(lines))
    return 0


def _json(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ========================================================================= export
EXPORT_OPTIONS = "pip install 'scratchnn[onnx]'"


def _import_onnx():
    """The onnx package, or a one-line CLIError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise CLIError(f"export needs the onnx package: {EXPORT_OPTIONS}") from None
    return onnx


def _check_export_target(path: str, overwrite: bool) -> str:
    """OUT checked before anything is loaded: a file name in a directory we can
    write in, and not an existing file unless --overwrite."""
    target = _check_output_file(path, "OUT", example="model.onnx")
    if os.path.lexists(target):
        if not os.path.isfile(target):
            raise CLIError(f"OUT {path!r} exists and is not a regular file")
        if not overwrite:
            raise CLIError(f"OUT {path!r} exists; pass --overwrite to replace it")
    return target


def _fold_scaler(model: Sequential) -> Optional[str]:
    """A model trained by ``scratchnn train`` on standardized features (a ``scaler``
    in its metadata) takes raw features in the graph: the scaling is folded into
    the first Dense layer, ``(x - mean) / scale @ W + b = x @ (W / scale) + (b -
    (mean / scale) @ W)``. Returns what the success line says about it, or None
    when the model file has no scaler."""
    saved = model.metadata.get("scaler")
    if not saved:
        return None
    scaler = StandardScaler.from_dict(saved)
    first = model.layers[0] if model.layers else None
    mean = np.asarray(scaler.mean_, dtype=np.float64).ravel()
    scale = np.asarray(scaler.scale_, dtype=np.float64).ravel()
    if (not isinstance(first, Dense) or not first.use_bias or first.W.ndim != 2
            or first.W.shape[0] != mean.size):
        return ("the graph takes standardized features: the model file's scaler is not in it "
                "(its first layer is not a Dense layer to fold it into)")
    W = first.W.astype(np.float64)
    folded_W = W / scale[:, None]
    folded_b = first.b.astype(np.float64) - (mean / scale) @ W
    first.W[...] = folded_W
    first.b[...] = folded_b
    model.metadata.pop("scaler")   # applied: the graph's metadata must not offer it again
    return "the feature scaling of training is folded into the first layer: the graph takes raw features"


def _value_info_text(value) -> str:
    """``'output' float [N, 10]`` of an ONNX graph input or output."""
    import onnx
    tensor = value.type.tensor_type
    dims = ", ".join(d.dim_param or str(d.dim_value) for d in tensor.shape.dim)
    return f"{value.name!r} {onnx.TensorProto.DataType.Name(tensor.elem_type).lower()} [{dims}]"


def command_export(args: argparse.Namespace) -> int:
    _check_named(args.model, "MODEL")
    target = _check_export_target(args.out, args.overwrite)
    onnx = _import_onnx()
    from .onnx import DEFAULT_OPSET, export_onnx   # imported here: the CLI starts without onnx
    newest = onnx.defs.onnx_opset_version()
    if not DEFAULT_OPSET <= args.opset <= newest:
        raise CLIError(f"--opset must be from {DEFAULT_OPSET} to {newest} (the newest that the "
                       f"installed onnx {onnx.__version__} knows), got {args.opset}")
    model = load(args.model)
    if args.probabilities and model.loss is None:
        raise CLIError(f"{args.model}: --probabilities needs the model's loss, and the model has "
                       "none (it was saved before it was trained)")
    scaling = _fold_scaler(model)
    try:
        written = export_onnx(model, target, probabilities=args.probabilities, opset=args.opset,
                              overwrite=args.overwrite)
    except FileExistsError:   # created since the check above
        raise CLIError(f"OUT {args.out!r} exists; pass --overwrite to replace it") from None
    except OSError as error:
        raise _write_failed(args.out, error) from None
    graph = onnx.load(written)
    opsets = [entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")]
    kind = "probabilities" if args.probabilities else "raw outputs"
    outputs = [_value_info_text(value) + (f" ({kind})" if value.name == "output" else "")
               for value in graph.graph.output]
    line = (f"wrote {written}: ONNX opset {opsets[0] if opsets else args.opset}, input "
            f"{', '.join(_value_info_text(value) for value in graph.graph.input)}, "
            f"output{'s' if len(outputs) > 1 else ''} {', '.join(outputs)}")
    print(line + (f"; {scaling}" if scaling else ""))
    return 0


# ========================================================================= parser
class _Parser(argparse.ArgumentParser):
    """argparse's parser with one-line errors, ``PROG: error: MESSAGE``; the
    usage block is printed only by --help. Its subcommands' parsers are of this
    class too, so ``scratchnn train`` names itself in its errors."""

    def error(self, message: str):
        if message == "the following arguments are required: COMMAND":
            message = "missing COMMAND: train, evaluate, predict, info or export"
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(convert, valid, expected: str, maximum: Optional[int] = None):
    """An argparse type: ``convert`` the text and check it, or say what was expected."""
    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {text}")
        return value
    return parse


INT64_MAX = 2**63 - 1   # the library's counts (epochs, batch sizes, patience) are int64
_positive_int = _number(int, lambda v: v >= 1, "a positive integer", INT64_MAX)
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0", INT64_MAX)
_unbounded_int = _number(int, lambda v: v >= 0, "an integer >= 0")   # seeds; batch sizes (capped at N)
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _sizes(text: str) -> list[int]:
    error = argparse.ArgumentTypeError(
        f"must be comma-separated positive integers such as 256,128, got {text!r}")
    try:
        sizes = [int(part) for part in text.split(",")]   # an empty part is refused
    except ValueError:
        raise error from None
    if not sizes or min(sizes) < 1:
        raise error
    if max(sizes) > MAX_UNITS:
        raise argparse.ArgumentTypeError(f"layer sizes must be at most {MAX_UNITS:,}, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scratchnn", description="Neural networks from scratch in NumPy: train, evaluate, predict.",
        epilog="Run 'scratchnn COMMAND --help' for the options of each command.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model on a data set", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on DATASET, print its test figures, and optionally save it "
                    "and plot its training. Each data set has a default recipe (shown in the first\n"
                    "line of output); every option below overrides it. Options that do not apply to "
                    "DATASET are refused,\nand so is everything else that can be checked before "
                    "training. Ctrl-C stops after the current batch,\nsaves and plots what was asked "
                    "for, and exits with status 130.",
        epilog="examples:\n  scratchnn train xor\n  scratchnn train spirals --plots plots/\n"
               "  scratchnn train fashion-mnist --output fashion.npz\n"
               "  scratchnn train fashion-mnist --model cnn --output cnn.npz --plots plots/\n"
               "  scratchnn train fashion-mnist --model cnn --samples 6000 --epochs 2   (a quick try)\n"
               "  scratchnn train data.csv --target species --output model.npz")
    train.add_argument("dataset", metavar="DATASET",
                       help="xor, spirals, moons, fashion-mnist, or the path of a CSV file with a "
                            "header row (./xor for a file named xor)")
    model = train.add_argument_group("model")
    cnn = CNN_PRESET
    model.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                       help=f"mlp (default): dense layers, sized by --hidden. cnn (fashion-mnist "
                            f"only; trained on 28x28x1 images): {CNN_LAYERS_HELP}; dropout "
                            f"{cnn['dropout']:g}, {cnn['optimizer']} lr {cnn['lr']:g}, batch "
                            f"{cnn['batch_size']}, {cnn['epochs']} epochs, schedule "
                            f"{cnn['schedule']}, {cnn['validation_split'] * 100:g}%% held out for "
                            "validation. Options override these, but --hidden and --activation "
                            "are refused")
    model.add_argument("--hidden", type=_sizes, metavar="SIZES",
                       help="hidden layer sizes, comma-separated (xor 4; spirals 64,64; moons 16,16; "
                            "fashion-mnist 512,256; csv 64,32)")
    model.add_argument("--activation", choices=["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"],
                       help="hidden activation (xor sigmoid; others relu)")
    model.add_argument("--dropout", type=_fraction, metavar="RATE",
                       help="dropout rate after each hidden layer (fashion-mnist 0.2; others 0); "
                            f"for --model cnn the rate of its Dropout ({cnn['dropout']:g}; 0 "
                            "leaves it out)")
    model.add_argument("--loss", choices=["bce", "mse", "mae", "huber"],
                       help="xor: bce (binary cross-entropy, default) or mse (squared error of a sigmoid "
                            "output); CSV regression: mse (default), mae or huber. Classification "
                            "(spirals, moons, fashion-mnist, CSV classes) trains with cross-entropy "
                            "and refuses --loss")
    training = train.add_argument_group("training")
    training.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                          help="optimizer (xor sgd; others adam)")
    training.add_argument("--lr", type=_positive_float, help="learning rate (xor 0.1; spirals, moons 0.01; "
                                                             "fashion-mnist, csv 0.001)")
    training.add_argument("--epochs", type=_positive_int,
                          help="epochs (xor 10000; spirals 300; moons 200; fashion-mnist 30, with "
                               f"--model cnn {cnn['epochs']}; csv 200)")
    training.add_argument("--batch-size", type=_unbounded_int, metavar="N",
                          help="samples per step; 0 for the full batch (xor 0; fashion-mnist 128; others 32)")
    training.add_argument("--validation-split", type=_fraction, metavar="FRACTION",
                          help="fraction of the training data held out for validation (xor 0; "
                               "fashion-mnist 0.1; others 0.2)")
    training.add_argument("--early-stopping", type=_non_negative_int, metavar="PATIENCE",
                          help="stop after PATIENCE epochs without improvement of the validation loss "
                               "and keep the best weights; 0 turns it off (csv 20; others 0). It needs "
                               "a validation split: refused with --validation-split 0 (and on xor), and "
                               "the csv default is off then")
    training.add_argument("--schedule", choices=["none", "cosine", "step", "exponential", "plateau"],
                          help="learning-rate schedule (fashion-mnist cosine, with --model cnn "
                               f"{cnn['schedule']}; others none); plateau "
                               "watches the validation loss, or the training loss without a split")
    training.add_argument("--seed", type=_unbounded_int, default=42, help="random seed (default 42)")
    data = train.add_argument_group("data")
    data.add_argument("--target", metavar="COLUMN", help="CSV: the target column")
    data.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                      help="CSV: auto treats text labels and integers with at most 20 values as classes")
    data.add_argument("--samples", type=_positive_int, metavar="N",
                      help="spirals, moons: number of generated samples (300 and 200); "
                           "fashion-mnist: train on N of the 60,000 training images and test on "
                           "the same fraction of the 10,000 test images (stratified samples drawn "
                           "with --seed), for a quick try")
    data.add_argument("--data-dir", metavar="DIR",
                      help="fashion-mnist: directory holding the four IDX .gz files (default: "
                           "$SCRATCHNN_DATA, /usr/share/datasets/fashion-mnist, then the user cache)")
    out = train.add_argument_group("output")
    out.add_argument("--output", "-o", metavar="MODEL.npz",
                     help="save the trained model to this file (.npz is appended when missing); "
                          "its directory must exist")
    out.add_argument("--plots", metavar="DIR", help="save history, confusion-matrix and (2-D data) "
                                                    "decision-boundary PNGs in DIR, created if needed "
                                                    "(needs matplotlib); for fashion-mnist also "
                                                    "predictions.png (test images and their "
                                                    "predicted classes) and, for --model cnn, "
                                                    "filters.png (the first Conv2D's filters)")
    out.add_argument("--verbose", type=int, choices=[0, 1, 2],
                     help="0 silent, 1 a progress bar per epoch (default), 2 one line per epoch")
    out.add_argument("--print-every", type=_positive_int, metavar="N",
                     help="print the training loss every N epochs (xor 1000)")
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser(
        "evaluate", help="loss and metrics of a saved model on a data set", allow_abbrev=False,
        description="Print the loss and metrics of a saved model on DATASET: the test split of "
                    "fashion-mnist, freshly generated spirals/moons (--seed), xor, or a CSV file "
                    "with the model's target column. Features are standardized as in training, and "
                    "shaped as the model's input (rows, or images for a CNN). "
                    "DATASET must be the kind the model was trained on.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file saved by 'scratchnn train --output'")
    evaluate.add_argument("dataset", metavar="DATASET", help="xor, spirals, moons, fashion-mnist or a CSV path")
    evaluate.add_argument("--target", metavar="COLUMN", help="CSV: the target column (default: the one used in training)")
    evaluate.add_argument("--seed", type=_unbounded_int,
                          help="spirals, moons: seed of the generated sample (default 1000)")
    evaluate.add_argument("--data-dir", metavar="DIR", help="fashion-mnist: directory of the IDX files")
    evaluate.set_defaults(run=command_evaluate)

    predict = commands.add_parser(
        "predict", help="write predictions for the rows of a CSV file", allow_abbrev=False,
        description="Predict every row of INPUT.csv (a header row, and the feature columns the model "
                    "was trained on, in any order; other columns are ignored). A model of images "
                    "(a CNN of 28x28x1 Fashion-MNIST images) takes one row of pixels per image, "
                    "784 columns read row by row, in its training scale ([0, 1]). Writes a CSV with a "
                    "'prediction' column, plus one probability column per class for classifiers.")
    predict.add_argument("model", metavar="MODEL", help="a model file saved by 'scratchnn train --output'")
    predict.add_argument("input", metavar="INPUT.csv", help="the rows to predict")
    predict.add_argument("--output", "-o", metavar="FILE.csv", help="write here instead of standard output")
    predict.set_defaults(run=command_predict)

    info = commands.add_parser("info", help="show a saved model's layers and training record",
                               allow_abbrev=False,
                               description="Print the summary of a saved model: layers, output shapes, "
                                           "parameter counts, loss, optimizer, classes and training record.")
    info.add_argument("model", metavar="MODEL", help="a model file")
    info.set_defaults(run=command_info)

    export = commands.add_parser(
        "export", help="write a saved model as an ONNX file, for ONNX Runtime", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Write the saved MODEL as the ONNX file OUT, for ONNX Runtime (C++, C#, Java, "
            "JavaScript, Python; no scratchnn needed). The graph has one input, named 'input': "
            "the model's samples with a dynamic batch dimension first, in the model's dtype "
            "(float32 or float64); images are channels last, (batch, height, width, channels), "
            "as scratchnn takes them. Its output 'output' holds the raw outputs (the logits of a "
            "classifier) or, with --probabilities, the softmax or sigmoid that the model's loss "
            "implies, and a second output, 'label', the predicted label of each sample (the "
            "model's class labels when it has them, else class indices). A model trained by 'scratchnn train' on "
            "standardized features takes raw features in the graph: the scaling is folded into "
            "its first Dense layer. OUT is never replaced unless --overwrite is given. Needs the "
            f"onnx package: {EXPORT_OPTIONS}.", 79),
        epilog="examples:\n  scratchnn export cnn.npz cnn.onnx\n"
               "  scratchnn export cnn.npz cnn.onnx --probabilities --overwrite\n"
               "  python -c \"import onnxruntime as ort; s = ort.InferenceSession('cnn.onnx'); "
               "print(s.run(None, {'input': x})[0])\"")
    export.add_argument("model", metavar="MODEL", help="a model file saved by 'scratchnn train "
                                                       "--output' or Sequential.save")
    export.add_argument("out", metavar="OUT", help="the ONNX file to write, such as model.onnx; "
                                                   "its directory must exist")
    export.add_argument("--probabilities", action="store_true",
                        help="end the graph with softmax or sigmoid (as the loss implies) and add "
                             "the output 'label' (the class labels, or class indices for a model "
                             "without them); refused for a regression model")
    export.add_argument("--opset", type=_positive_int, default=17, metavar="N",
                        help="the ONNX opset of the graph: 17 (default) up to the newest that the "
                             "installed onnx knows")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.set_defaults(run=command_export)
    parser.commands = {"train": train, "evaluate": evaluate, "predict": predict, "info": info,
                       "export": export}
    return parser


def _unrecognized(parser: argparse.ArgumentParser, command: str, extras: list) -> None:
    """Report arguments the command does not know, naming the command (and the
    option that was probably meant)."""
    sub = parser.commands[command]
    options = [option for action in sub._actions for option in action.option_strings]
    hints = []
    for extra in extras:
        if extra.startswith("-"):
            close = difflib.get_close_matches(extra.split("=", 1)[0], options, n=1)
            hints += close
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    sub.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = error.filename if error.filename is not None else ""
        text = f"{where}: {error.strerror}" if where != "" else error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _silence_stdout() -> None:
    """After a closed pipe: point standard output at /dev/null, so that the
    interpreter's last flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _unrecognized(parser, args.command, extras)
    try:
        return args.run(args)
    except BrokenPipeError:
        _silence_stdout()
        return 141     # 128 + SIGPIPE, what the shell reports for head's other writers
    except KeyboardInterrupt:
        print("scratchnn: interrupted", file=sys.stderr)
        return 130
    except DatasetNotFoundError as error:
        # Several lines on purpose: where we looked, and how to get the files.
        print(f"scratchnn: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:
        print(f"scratchnn: error: not enough memory: {_one_line(error)}", file=sys.stderr)
        return 2
    except (CLIError, ValueError, TypeError, OSError, ImportError, ArithmeticError,
            RuntimeError) as error:
        # DivergenceError is an ArithmeticError (FloatingPointError)
        print(f"scratchnn: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if os.environ.get("SCRATCHNN_DEBUG"):
            raise
        print(f"scratchnn: error: internal error, {type(error).__name__}: {_one_line(error)} "
              "(a bug in scratchnn; SCRATCHNN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
