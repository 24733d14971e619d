"""The ``scratchnn`` command.

    scratchnn train DATASET [options]     train, report test figures, save, plot
    scratchnn evaluate MODEL DATASET      loss and metrics of a saved model
    scratchnn predict MODEL INPUT.csv     write predictions for a CSV file
    scratchnn info MODEL                  the summary of a saved model

DATASET is ``xor``, ``spirals``, ``moons``, ``fashion-mnist`` or the path of a
CSV file (with ``--target COLUMN``). Errors are reported in one line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import datasets
from .callbacks import Callback, EarlyStopping, LearningRateScheduler, ReduceLROnPlateau
from .datasets.fashion_mnist import CLASS_NAMES, DatasetNotFoundError
from .io import load
from .layers import ACTIVATIONS, Dense, Dropout, Sigmoid
from .model import Sequential
from .training import DivergenceError
from .optimizers import OPTIMIZERS
from .preprocessing import LabelEncoder, StandardScaler, train_test_split
from .schedules import CosineDecay, ExponentialDecay, StepDecay

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


class CLIError(Exception):
    """An error reported as one line, without a traceback."""


# ============================================================================ data
@dataclass
class Data:
    """A data set ready for training: standardized features, encoded labels."""

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


def _csv_task(y: np.ndarray, task: str) -> str:
    if task != "auto":
        return task
    if y.dtype.kind in "US":
        return "classification"
    if y.dtype.kind in "iu" and len(np.unique(y)) <= 20:
        return "classification"
    return "regression"


def load_training_data(args: argparse.Namespace) -> Data:
    """Load DATASET, split off a test set, standardize (training statistics only)."""
    name = args.dataset
    if name == "xor":
        X, y = datasets.xor()
        return Data("xor", X, y, X, y, "binary", 1, class_names=["0", "1"])
    if name in ("spirals", "moons"):
        maker = datasets.spirals if name == "spirals" else datasets.moons
        X, y = maker(n_samples=args.samples, seed=args.seed) if args.samples else maker(seed=args.seed)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=True,
                                                            seed=args.seed)
        scaler = StandardScaler().fit(X_train)
        k = int(y.max()) + 1
        return Data(name, scaler.transform(X_train), y_train, scaler.transform(X_test), y_test,
                    "classification", k, class_names=[str(i) for i in range(k)], scaler=scaler)
    if name == "fashion-mnist":
        X_train, y_train, X_test, y_test = datasets.load_fashion_mnist(args.data_dir)
        return Data(name, X_train, y_train, X_test, y_test, "classification", 10,
                    class_names=list(CLASS_NAMES), classes=list(CLASS_NAMES))
    if not name.lower().endswith(".csv") and not os.path.isfile(name):
        raise CLIError(f"DATASET must be one of xor, spirals, moons, fashion-mnist or a CSV file, got {name!r}")
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


# =========================================================================== train
def _settings(args: argparse.Namespace) -> dict:
    """The preset of the data set, overridden by the options given."""
    preset = PRESETS[args.dataset if args.dataset in PRESETS else "csv"]
    settings = {key: getattr(args, key) if getattr(args, key, None) is not None else value
                for key, value in preset.items()}
    if settings["batch_size"] == 0:
        settings["batch_size"] = None
    return settings


def build_model(data: Data, settings: dict, seed: int) -> Sequential:
    init = {"kernel_initializer": settings["init"]} if settings["init"] else \
        {"kernel_initializer": "he_uniform" if settings["activation"] in ("relu", "leaky_relu", "elu", "gelu") else "glorot_uniform"}
    layers = []
    for units in settings["hidden"]:
        layers += [Dense(units, **init), ACTIVATIONS[settings["activation"]]()]
        if settings["dropout"]:
            layers.append(Dropout(settings["dropout"]))
    layers.append(Dense(data.n_outputs, **init))
    if data.task == "binary" and settings.get("loss") == "mse":
        layers.append(Sigmoid())   # the tutorials' variant: squared error of a sigmoid output
    return Sequential(layers, seed=seed)


def _loss_for(data: Data, settings: dict) -> str:
    if data.task == "binary":
        return "mse" if settings.get("loss") == "mse" else "binary_cross_entropy"
    if data.task == "classification":
        return "cross_entropy"
    return settings.get("loss") if settings.get("loss") in ("mse", "mae", "huber") else "mse"


class _PrintEvery(Callback):
    """Print the training loss every ``every`` epochs (the tutorials' log)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if (epoch + 1) % self.every == 0:
            print(f"epoch {epoch + 1:>6}  loss {logs['loss']:.6f}", flush=True)


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


def _describe(data: Data, settings: dict, loss: str) -> str:
    sizes = "-".join(str(s) for s in (data.X_train.shape[1], *settings["hidden"], data.n_outputs))
    batch = settings["batch_size"] or "full"
    extras = [f"dropout {settings['dropout']}"] if settings["dropout"] else []
    if settings["schedule"] != "none":
        extras.append(f"{settings['schedule']} schedule")
    if settings["early_stopping"]:
        extras.append(f"early stopping (patience {settings['early_stopping']})")
    return (f"{data.name}: {len(data.X_train)} training samples; MLP {sizes}, {settings['activation']}, "
            f"{loss}, {settings['optimizer']} lr {settings['lr']}, {settings['epochs']} epochs, batch {batch}"
            + "".join(f", {e}" for e in extras))


def _report(scores: dict, prefix: str = "") -> str:
    return "  ".join(f"{prefix}{key} {value:.4f}" for key, value in scores.items())


def command_train(args: argparse.Namespace) -> None:
    data = load_training_data(args)
    settings = _settings(args)
    if args.loss:
        settings["loss"] = args.loss
    loss = _loss_for(data, settings)
    model = build_model(data, settings, args.seed)
    model.classes = data.classes
    optimizer = OPTIMIZERS[settings["optimizer"]](lr=settings["lr"])
    if data.name == "xor" and args.print_every is None:
        args.print_every = 1000
    verbose = args.verbose if args.verbose is not None else (0 if args.print_every else 1)
    print(_describe(data, settings, loss), flush=True)

    start = time.perf_counter()
    history = model.fit(data.X_train, data.y_train, loss=loss, optimizer=optimizer,
                        epochs=settings["epochs"], batch_size=settings["batch_size"],
                        validation_split=settings["validation_split"],
                        callbacks=_callbacks(settings, args), verbose=verbose)
    seconds = time.perf_counter() - start
    stopped = " (interrupted)" if history.interrupted else ""
    print(f"trained {len(history.epoch)} epochs in {seconds:.1f} s{stopped}")

    if data.name == "xor":
        output = model.predict(data.X_train) if loss == "mse" else model.predict_proba(data.X_train)
        print("input   prediction")
        for x, p in zip(data.X_train.astype(int), output[:, 0]):
            print(f"{x[0]} {x[1]}     {p:.4f}")
    test_scores = model.evaluate(data.X_test, data.y_test)
    if data.name != "xor":
        print(_report(test_scores, prefix="test "))

    if args.output:
        metadata = {"dataset": data.name, "task": data.task, "feature_names": data.feature_names,
                    "target": data.target, "class_names": data.class_names,
                    "scaler": data.scaler.to_dict() if data.scaler else None,
                    "test_scores": test_scores, "epochs_trained": len(history.epoch),
                    "train_seconds": round(seconds, 2), "settings": settings}
        print(f"saved {model.save(args.output, metadata=metadata)}")
    if args.plots:
        for path in _plots(model, data, history, args.plots):
            print(f"plot {path}")


def _plots(model: Sequential, data: Data, history, directory: str) -> list[str]:
    from . import plots   # matplotlib is an optional extra: import it only here
    paths = [plots.plot_history(history, os.path.join(directory, "history.png"),
                                title=f"{data.name}: training")]
    if data.task != "regression":
        names = data.class_names
        paths.append(plots.plot_confusion_matrix(
            data.y_test, _predicted_codes(model, data.X_test), os.path.join(directory, "confusion_matrix.png"),
            class_names=names, title=f"{data.name}: test set"))
    if data.X_train.shape[1] == 2 and data.task != "regression":
        paths.append(plots.plot_decision_boundary(
            model, data.X_test, _decoded(model, data.y_test), os.path.join(directory, "decision_boundary.png"),
            title=f"{data.name}: decision boundary (test set)"))
    return paths


def _predicted_codes(model: Sequential, X: np.ndarray) -> np.ndarray:
    return model.loss.predicted_labels(model.output(X))


def _decoded(model: Sequential, codes: np.ndarray) -> np.ndarray:
    return codes if model.classes is None else np.asarray(model.classes)[codes]


# ======================================================================= evaluate
def _load_model(path: str) -> Sequential:
    model = load(path)
    if model.loss is None:
        raise CLIError(f"{path}: the model has no loss; it was saved before it was trained")
    return model


def _data_for_saved_model(model: Sequential, dataset: str, args: argparse.Namespace):
    """X, y (encoded as the model expects) of DATASET, preprocessed as in training."""
    meta = model.metadata
    if dataset == "xor":
        return datasets.xor()
    if dataset in ("spirals", "moons"):
        maker = datasets.spirals if dataset == "spirals" else datasets.moons
        X, y = maker(seed=args.seed)
    elif dataset == "fashion-mnist":
        _, _, X, y = datasets.load_fashion_mnist(args.data_dir)
    else:
        target = args.target or meta.get("target")
        if not target:
            raise CLIError("the model file does not name its target column; pass --target COLUMN")
        table = datasets.load_csv(dataset, target)
        names = meta.get("feature_names")
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
    if meta.get("scaler"):
        X = StandardScaler.from_dict(meta["scaler"]).transform(X)
    return X, y


def command_evaluate(args: argparse.Namespace) -> None:
    model = _load_model(args.model)
    X, y = _data_for_saved_model(model, args.dataset, args)
    scores = model.evaluate(X, y)
    print(f"{args.dataset}: {len(X)} samples")
    print(_report(scores))


# ======================================================================== predict
def command_predict(args: argparse.Namespace) -> None:
    model = _load_model(args.model)
    meta = model.metadata
    # every column when the model was trained without names
    X = datasets.load_csv_features(args.input, meta.get("feature_names") or None)
    if meta.get("scaler"):
        X = StandardScaler.from_dict(meta["scaler"]).transform(X)
    output = model.output(X)      # one forward pass for labels and probabilities
    if model.loss.classification:
        predictions = _decoded(model, model.loss.predicted_labels(output))
    else:
        predictions = output
    header, rows = ["prediction"], [[p] for p in np.asarray(predictions).reshape(len(X), -1)[:, 0].tolist()]
    if model.loss.classification:
        proba = model.loss.probabilities(output)
        labels = model.classes if model.classes is not None else meta.get("class_names") or range(proba.shape[1])
        if proba.shape[1] == 1:
            header.append("probability")
        else:
            header += [f"p_{label}" for label in labels]
        rows = [row + [f"{p:.6f}" for p in probs] for row, probs in zip(rows, proba.tolist())]
    _write_rows(args.output, header, rows)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}")


def _write_rows(path: Optional[str], header: list, rows: list) -> None:
    if path is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    try:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# =========================================================================== info
def command_info(args: argparse.Namespace) -> None:
    model = load(args.model)
    model.summary()
    meta = model.metadata
    optimizer = model.optimizer
    lines = [f"loss: {type(model.loss).__name__ if model.loss else None}",
             f"optimizer: {optimizer!r}, {optimizer.iterations} steps" if optimizer else "optimizer: none"]
    if model.classes is not None:
        lines.append(f"classes: {model.classes}")
    for key in ("dataset", "task", "target", "feature_names", "class_names", "epochs_trained",
                "train_seconds", "test_scores"):
        if meta.get(key) is not None:
            lines.append(f"{key}: {json.dumps(meta[key]) if not isinstance(meta[key], str) else meta[key]}")
    print("\n".join(lines))


# ========================================================================= parser
def _number(convert, valid, expected: str):
    """An argparse type: ``convert`` the text and check it, or say what was expected."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers such as 256,128, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchnn", description="Neural networks from scratch in NumPy: train, evaluate, predict.",
        epilog="Run 'scratchnn COMMAND --help' for the options of each command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a model on a data set",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train a model on DATASET, print its test figures, and optionally save it "
                    "and plot its training. Each data set has a default recipe (shown in the first "
                    "line of output); every option below overrides it.",
        epilog="examples:\n  scratchnn train xor\n  scratchnn train spirals --plots plots/\n"
               "  scratchnn train fashion-mnist --output fashion.npz\n"
               "  scratchnn train data.csv --target species --output model.npz")
    train.formatter_class = argparse.RawDescriptionHelpFormatter
    train.add_argument("dataset", metavar="DATASET",
                       help="xor, spirals, moons, fashion-mnist, or the path of a CSV file with a header row")
    model = train.add_argument_group("model")
    model.add_argument("--hidden", type=_sizes, metavar="SIZES",
                       help="hidden layer sizes, comma-separated (xor 4; spirals 64,64; moons 16,16; "
                            "fashion-mnist 512,256; csv 64,32)")
    model.add_argument("--activation", choices=["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"],
                       help="hidden activation (xor sigmoid; others relu)")
    model.add_argument("--dropout", type=_fraction, metavar="RATE",
                       help="dropout rate after each hidden layer (fashion-mnist 0.2; others 0)")
    model.add_argument("--loss", choices=["bce", "mse", "mae", "huber"],
                       help="xor: bce (binary cross-entropy, default) or mse (squared error of a sigmoid "
                            "output); CSV regression: mse (default), mae or huber. Classification uses "
                            "cross-entropy")
    training = train.add_argument_group("training")
    training.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                          help="optimizer (xor sgd; others adam)")
    training.add_argument("--lr", type=_positive_float, help="learning rate (xor 0.1; spirals, moons 0.01; "
                                                             "fashion-mnist, csv 0.001)")
    training.add_argument("--epochs", type=_positive_int,
                          help="epochs (xor 10000; spirals 300; moons 200; fashion-mnist 30; csv 200)")
    training.add_argument("--batch-size", type=_non_negative_int, metavar="N",
                          help="samples per step; 0 for the full batch (xor 0; fashion-mnist 128; others 32)")
    training.add_argument("--validation-split", type=_fraction, metavar="FRACTION",
                          help="fraction of the training data held out for validation (xor 0; "
                               "fashion-mnist 0.1; others 0.2)")
    training.add_argument("--early-stopping", type=_non_negative_int, metavar="PATIENCE",
                          help="stop after PATIENCE epochs without improvement of the validation loss "
                               "and keep the best weights; 0 turns it off (csv 20; others 0)")
    training.add_argument("--schedule", choices=["none", "cosine", "step", "exponential", "plateau"],
                          help="learning-rate schedule (fashion-mnist cosine; others none)")
    training.add_argument("--seed", type=_non_negative_int, default=42, help="random seed (default 42)")
    data = train.add_argument_group("data")
    data.add_argument("--target", metavar="COLUMN", help="CSV: the target column")
    data.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                      help="CSV: auto treats text labels and integers with at most 20 values as classes")
    data.add_argument("--samples", type=_positive_int, metavar="N",
                      help="spirals, moons: number of generated samples (300 and 200)")
    data.add_argument("--data-dir", metavar="DIR",
                      help="fashion-mnist: directory holding the four IDX .gz files (default: "
                           "$SCRATCHNN_DATA, /usr/share/datasets/fashion-mnist, then the user cache)")
    out = train.add_argument_group("output")
    out.add_argument("--output", "-o", metavar="MODEL.npz", help="save the trained model to this file")
    out.add_argument("--plots", metavar="DIR", help="save history, confusion-matrix and (2-D data) "
                                                    "decision-boundary PNGs in DIR (needs matplotlib)")
    out.add_argument("--verbose", type=int, choices=[0, 1, 2],
                     help="0 silent, 1 a progress bar per epoch (default), 2 one line per epoch")
    out.add_argument("--print-every", type=_positive_int, metavar="N",
                     help="print the training loss every N epochs (xor 1000)")
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser(
        "evaluate", help="loss and metrics of a saved model on a data set",
        description="Print the loss and metrics of a saved model on DATASET: the test split of "
                    "fashion-mnist, freshly generated spirals/moons (--seed), xor, or a CSV file "
                    "with the model's target column. Features are standardized as in training.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file saved by 'scratchnn train --output'")
    evaluate.add_argument("dataset", metavar="DATASET", help="xor, spirals, moons, fashion-mnist or a CSV path")
    evaluate.add_argument("--target", metavar="COLUMN", help="CSV: the target column (default: the one used in training)")
    evaluate.add_argument("--seed", type=_non_negative_int, default=1000,
                          help="spirals, moons: seed of the generated sample (default 1000)")
    evaluate.add_argument("--data-dir", metavar="DIR", help="fashion-mnist: directory of the IDX files")
    evaluate.set_defaults(run=command_evaluate)

    predict = commands.add_parser(
        "predict", help="write predictions for the rows of a CSV file",
        description="Predict every row of INPUT.csv (a header row, and the feature columns the model "
                    "was trained on, in any order; other columns are ignored). Writes a CSV with a "
                    "'prediction' column, plus one probability column per class for classifiers.")
    predict.add_argument("model", metavar="MODEL", help="a model file saved by 'scratchnn train --output'")
    predict.add_argument("input", metavar="INPUT.csv", help="the rows to predict")
    predict.add_argument("--output", "-o", metavar="FILE.csv", help="write here instead of standard output")
    predict.set_defaults(run=command_predict)

    info = commands.add_parser("info", help="show a saved model's layers and training record",
                               description="Print the summary of a saved model: layers, output shapes, "
                                           "parameter counts, loss, optimizer, classes and training record.")
    info.add_argument("model", metavar="MODEL", help="a model file")
    info.set_defaults(run=command_info)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except DatasetNotFoundError as error:
        # Several lines on purpose: where we looked, and how to get the files.
        print(f"scratchnn: error: {error}", file=sys.stderr)
        return 2
    except (CLIError, DivergenceError, ValueError, TypeError, OSError, ImportError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"scratchnn: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scratchnn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
