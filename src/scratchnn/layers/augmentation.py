"""Data augmentation as layers, active only in training (as Keras's ``RandomFlip`` and
``RandomTranslation``): each training batch sees its images changed at random, and
inference (``predict``, ``evaluate``, validation) sees them as they are.

Images are channels last, ``(N, H, W, C)``. The random draws come from the model's
generator, so a seeded model augments the same way every run.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._validation import check_number
from .base import Layer
from .conv import check_images


class RandomFlip(Layer):
    """Each image mirrored left to right with probability 1/2, in training only:
    ``y[n] = x[n, :, ::-1]`` if ``m[n]`` else ``x[n]``, with ``m[n] ~ Bernoulli(1/2)``
    drawn per image and call; the identity in inference.

    Gradient: ``dL/dx[n] = g[n, :, ::-1]`` if ``m[n]`` else ``g[n]`` (a flip is its
    own inverse).

    Args:
        mode: ``"horizontal"`` (left-right, default), ``"vertical"`` (up-down) or
            ``"horizontal_and_vertical"`` (each drawn on its own), as in Keras.
    """

    _AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (2, 1)}

    #: training-mode outputs are random (an optimizer with a line search refuses it)
    random_in_training = True

    def __init__(self, mode: str = "horizontal", name: Optional[str] = None) -> None:
        super().__init__(name)
        if not (isinstance(mode, str) and mode in self._AXES):
            raise ValueError(f"mode must be one of {sorted(self._AXES)}, got {mode!r}")
        self.mode = mode

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        check_images(self, input_shape)
        return tuple(input_shape)

    def _flip(self, x: np.ndarray, masks: list) -> np.ndarray:
        y = x
        for axis, mask in zip(self._AXES[self.mode], masks):
            flipped = np.flip(y, axis=axis)
            y = np.where(mask[:, None, None, None], flipped, y)
        return y

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training:
            self._cache = (False, [])
            return x
        masks = [self.rng.random(len(x)) < 0.5 for _ in self._AXES[self.mode]]
        self._cache = (True, masks)
        return self._flip(x, masks)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        training, masks = self._saved()
        if not training:
            return grad_out
        # flips along different axes commute, so the same flips undo them
        return self._flip(grad_out, masks)

    def get_config(self) -> dict:
        return {"mode": self.mode, "name": self.name}


class RandomTranslation(Layer):
    """Each image shifted by a random whole number of pixels, in training only, the
    pixels shifted in being 0:

        y[n, i, j] = x[n, i - dh[n], j - dw[n]]   (0 where that is outside the image)

    with ``dh[n]`` uniform in ``-round(height_factor * H) .. +round(height_factor * H)``
    (and ``dw`` likewise), drawn per image and call; the identity in inference.

    Gradient: ``dL/dx[n, i, j] = g[n, i + dh[n], j + dw[n]]`` (0 outside), the shift back.

    Args:
        height_factor: the largest vertical shift as a fraction of the height, in [0, 1)
            (Keras's name; 0.1 shifts a 28-pixel image by up to 3 pixels).
        width_factor: the same for the width (default: ``height_factor``).
    """

    #: training-mode outputs are random (an optimizer with a line search refuses it)
    random_in_training = True

    def __init__(self, height_factor: float = 0.1, width_factor: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.height_factor = check_number("height_factor", height_factor, 0.0, 1.0, high_open=True)
        self.width_factor = (self.height_factor if width_factor is None else
                             check_number("width_factor", width_factor, 0.0, 1.0, high_open=True))

    def build(self, input_shape: tuple, rng: np.random.Generator) -> tuple:
        check_images(self, input_shape)
        self._largest = (round(self.height_factor * input_shape[0]),
                         round(self.width_factor * input_shape[1]))
        return tuple(input_shape)

    @staticmethod
    def _shift(x: np.ndarray, dh: np.ndarray, dw: np.ndarray) -> np.ndarray:
        """``y[n, i, j] = x[n, i - dh[n], j - dw[n]]``, 0 outside: one gather for the batch."""
        n, h, w, _ = x.shape
        rows = np.arange(h)[None, :] - dh[:, None]                  # (N, H)
        cols = np.arange(w)[None, :] - dw[:, None]                  # (N, W)
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        y = x[np.arange(n)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
              np.clip(cols, 0, w - 1)[:, None, :]]
        y *= inside[:, :, :, None]
        return y

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self._largest == (0, 0):
            self._cache = (None, None)
            return x
        top, side = self._largest
        dh = self.rng.integers(-top, top + 1, len(x))
        dw = self.rng.integers(-side, side + 1, len(x))
        self._cache = (dh, dw)
        return self._shift(x, dh, dw)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dh, dw = self._saved()
        if dh is None:
            return grad_out
        return self._shift(grad_out, -dh, -dw)

    def get_config(self) -> dict:
        return {"height_factor": self.height_factor, "width_factor": self.width_factor,
                "name": self.name}
