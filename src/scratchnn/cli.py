"""The ``scratchnn`` command.

    scratchnn train xor            the tutorials' 2-4-1 sigmoid network on XOR
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

from . import datasets
from .callbacks import Callback
from .layers import ACTIVATIONS, Dense, Sigmoid
from .model import Sequential
from .optimizers import OPTIMIZERS


class CLIError(Exception):
    """An error reported as one line, without a traceback."""


class _PrintEvery(Callback):
    """Print the training loss every ``every`` epochs."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if (epoch + 1) % self.every == 0:
            print(f"epoch {epoch + 1:>6}  loss {logs['loss']:.6f}", flush=True)


def train_xor(args: argparse.Namespace) -> None:
    """The seed recipe: 2-4-1, sigmoid hidden units, standard-normal weights, zero
    biases, binary cross-entropy, full-batch gradient descent."""
    X, y = datasets.xor()
    hidden = ACTIVATIONS[args.activation]
    layers = [Dense(args.hidden, kernel_initializer="standard_normal"), hidden(),
              Dense(1, kernel_initializer="standard_normal")]
    if args.loss == "mse":
        layers.append(Sigmoid())   # MSE on the sigmoid's output, as the tutorials do
        loss = "mse"
    else:
        loss = "binary_cross_entropy"
    model = Sequential(layers, seed=args.seed)
    optimizer = OPTIMIZERS[args.optimizer](lr=args.lr)
    print(f"XOR: 2-{args.hidden}-1, {args.activation} hidden units, {loss}, "
          f"{type(optimizer).__name__}(lr={args.lr}), {args.epochs} full-batch epochs, seed {args.seed}")
    model.fit(X, y, loss=loss, optimizer=optimizer, epochs=args.epochs, batch_size=None,
              callbacks=[_PrintEvery(args.print_every)])
    output = model.predict_proba(X) if loss != "mse" else model.predict(X)
    print("input   prediction")
    for x, p in zip(X.astype(int), output[:, 0]):
        print(f"{x[0]} {x[1]}     {p:.4f}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchnn", description="Neural networks from scratch in NumPy.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a model on a data set",
                                description="Train a model on a data set and report its results.")
    train.add_argument("dataset", choices=["xor"], help="the data set: xor (the tutorials' problem)")
    train.add_argument("--hidden", type=_positive_int, default=4, help="hidden units (default 4)")
    train.add_argument("--activation", choices=["sigmoid", "tanh", "relu"], default="sigmoid",
                       help="hidden activation (default sigmoid)")
    train.add_argument("--loss", choices=["bce", "mse"], default="bce",
                       help="bce: binary cross-entropy on logits (default); mse: squared error of a sigmoid output")
    train.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"], default="sgd",
                       help="optimizer (default sgd: plain gradient descent)")
    train.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default 0.1)")
    train.add_argument("--epochs", type=_positive_int, default=10_000, help="epochs (default 10000)")
    train.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    train.add_argument("--print-every", type=_positive_int, default=1000,
                       help="print the loss every N epochs (default 1000)")
    train.set_defaults(run=train_xor)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (CLIError, ValueError, TypeError, OSError) as error:
        print(f"scratchnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scratchnn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
