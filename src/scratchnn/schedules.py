"""Learning-rate schedules: pure functions of the epoch number.

Each schedule is a callable ``schedule(epoch) -> lr`` (epochs count from 0);
``LearningRateScheduler(schedule)`` applies one at the start of every epoch.
They are plain objects, so ``StepDecay(0.1, 10, 0.5)(25)`` can be printed or
plotted without a model.
"""

from __future__ import annotations

import math

from ._validation import check_non_negative_int, check_number, check_positive_int


class StepDecay:
    """``lr = initial_lr * gamma ** (epoch // step_size)``: multiply by ``gamma``
    every ``step_size`` epochs."""

    def __init__(self, initial_lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.initial_lr = check_number("initial_lr", initial_lr, 0.0, low_open=True)
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_number("gamma", gamma, 0.0, low_open=True)

    def __call__(self, epoch: int) -> float:
        return _decayed(self, self.gamma, _epoch(epoch) // self.step_size)


class ExponentialDecay:
    """``lr = initial_lr * gamma ** epoch``."""

    def __init__(self, initial_lr: float, gamma: float) -> None:
        self.initial_lr = check_number("initial_lr", initial_lr, 0.0, low_open=True)
        self.gamma = check_number("gamma", gamma, 0.0, low_open=True)

    def __call__(self, epoch: int) -> float:
        return _decayed(self, self.gamma, _epoch(epoch))


class CosineDecay:
    """Cosine annealing from ``initial_lr`` to ``min_lr`` over ``total_epochs``::

        lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * min(epoch, total_epochs) / total_epochs)) / 2
    """

    def __init__(self, initial_lr: float, total_epochs: int, min_lr: float = 0.0) -> None:
        self.initial_lr = check_number("initial_lr", initial_lr, 0.0, low_open=True)
        self.total_epochs = check_positive_int(total_epochs, "total_epochs")
        self.min_lr = check_number("min_lr", min_lr, 0.0, self.initial_lr)

    def __call__(self, epoch: int) -> float:
        progress = min(_epoch(epoch), self.total_epochs) / self.total_epochs
        # the factor (1 + cos) / 2 first: it is at most 1, so nothing overflows
        return self.min_lr + (self.initial_lr - self.min_lr) * ((1 + math.cos(math.pi * progress)) / 2)


def _epoch(epoch) -> int:
    return check_non_negative_int(epoch, "epoch")


def _decayed(schedule, gamma: float, exponent: int) -> float:
    """``initial_lr * gamma ** exponent``, or an error when a growing rate (gamma > 1)
    leaves the floats."""
    try:
        lr = schedule.initial_lr * gamma ** exponent
    except OverflowError:
        lr = math.inf
    if not math.isfinite(lr):
        raise ValueError(f"{type(schedule).__name__}: the learning rate initial_lr * gamma ** {exponent} "
                         f"= {schedule.initial_lr:g} * {gamma:g} ** {exponent} is larger than any float")
    return lr
