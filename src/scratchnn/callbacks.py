"""Callbacks: code that runs at fixed points of ``fit``.

Subclass ``Callback`` and override any of its hooks; ``self.model`` is the model
being trained. ``logs`` is a dict of the latest figures (``"loss"``,
``"accuracy"``, ``"val_loss"``, ...). Setting ``self.model.stop_training = True``
ends training after the current epoch.
"""

from __future__ import annotations

from typing import Any, Optional


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


class History(Callback):
    """Per-epoch figures of one ``fit`` call: ``history.history["loss"][i]`` is the
    mean training loss of epoch ``i``; ``history.epoch`` lists the epoch numbers."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items()}
        return f"History(epochs={len(self.epoch)}, last={last})"
