"""Plots of training and of trained models: learning curves, a confusion matrix,
the decision boundary of a classifier on 2-D inputs, the filters of a
convolution, and a grid of images with their predicted labels.

matplotlib is optional (``pip install 'scratchnn[plots]'``). It is imported when
a plot is drawn, never by ``import scratchnn``, and it draws with the
non-interactive Agg backend unless pyplot was already imported (or a backend
was chosen with ``MPLBACKEND``), so plots work on a server without a display.

Each ``plot_*`` function saves a PNG, closes its figure and returns the path.
Each ``*_figure`` function returns the figure instead, to edit or show; close
it with ``matplotlib.pyplot.close(fig)`` when done::

    history = model.fit(X, y, loss="cross_entropy", epochs=50, validation_split=0.2)
    plot_history(history, "runs/curves.png")
    plot_confusion_matrix(y_test, model.predict(X_test), "runs/confusion.png")
    plot_decision_boundary(model, X, y, "runs/boundary.png")
    plot_filters(cnn, "runs/filters.png")                  # its first Conv2D
    plot_predictions(X_images, y_test, cnn.predict(X_images), "runs/predictions.png",
                     class_names=CLASS_NAMES)
"""

from __future__ import annotations

import contextlib

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ._validation import check_positive_int, check_same_length
from .losses import BinaryCrossEntropy

__all__ = [
    "confusion_matrix",
    "plot_history", "history_figure",
    "plot_confusion_matrix", "confusion_matrix_figure",
    "plot_decision_boundary", "decision_boundary_figure",
    "plot_filters", "filters_figure",
    "plot_predictions", "predictions_figure",
]

PathLike = Union[str, "os.PathLike[str]"]

DPI = 120


# ------------------------------------------------------------------- helpers
def _pyplot():
    """``matplotlib.pyplot``, imported on first use with the Agg backend.

    A user who already imported pyplot keeps the backend they have. So does
    one who chose a backend in the ``MPLBACKEND`` environment variable (Jupyter
    sets it for inline figures); switching it here would break their plots.
    """
    if sys.modules.get("matplotlib.pyplot") is not None:
        return sys.modules["matplotlib.pyplot"]
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'scratchnn[plots]'") from None
    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@contextlib.contextmanager
def _closed_on_error(fig):
    """Close ``fig`` if drawing it fails, so that a failed plot leaves no open figure."""
    try:
        yield fig
    except BaseException:
        _pyplot().close(fig)
        raise


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must name a .png file, got {str(path)!r}")
    return path


def _save(fig, path: Path) -> str:
    """Write ``fig`` as a PNG at ``path`` (creating its folder), then close it."""
    plt = _pyplot()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return str(path)


def _is_numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _as_labels(values, argument: str) -> np.ndarray:
    """Labels of any type as a 1-D array; ``(N, 1)`` columns are flattened."""
    if values is None:
        raise ValueError(f"{argument} is required, got None")
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        hint = "; for one-hot rows pass labels.argmax(axis=1)" if array.ndim == 2 else ""
        raise ValueError(f"{argument} must be a 1-D array of labels (n_samples,), got shape "
                         f"{array.shape}{hint}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{argument} contains NaN or infinity")
    return array


def _as_indices(labels: np.ndarray, argument: str) -> np.ndarray:
    """1-D labels that must be class indices 0, 1, 2, ... as int64."""
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        raise ValueError(f"{argument} must hold integer class indices, got non-integer values")
    if not _is_numeric(labels):
        raise ValueError(f"{argument} must hold integer class indices, got an array of dtype "
                         f"{labels.dtype}; plot_confusion_matrix accepts labels of any type")
    indices = labels.astype(np.int64)
    if np.any(indices < 0):
        raise ValueError(f"{argument} must hold class indices >= 0, got {indices.min()}")
    return indices


def _encode(labels: np.ndarray, names: np.ndarray, argument: str) -> np.ndarray:
    """Position of each label in ``names`` (any order); every label must occur there."""
    if _is_numeric(labels) != _is_numeric(names):
        raise ValueError(f"{argument} holds labels of dtype {labels.dtype}, which cannot match "
                         f"the classes {names.tolist()}")
    order = np.argsort(names, kind="stable")
    ranked = names[order]
    position = np.minimum(np.searchsorted(ranked, labels), len(names) - 1)
    found = ranked[position] == labels
    if not np.all(found):
        raise ValueError(f"{argument} holds the label {labels[~found][0].item()!r}, which is not "
                         f"among the classes {names.tolist()}")
    return order[position]


def _class_colors(k: int) -> list:
    """k distinct colours: the tab10 / tab20 palettes, then evenly spaced hues."""
    from matplotlib import colormaps
    if k <= 10:
        return [colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [colormaps["tab20"](i) for i in range(k)]
    return [colormaps["hsv"](i / k) for i in range(k)]


# ------------------------------------------------------------- learning curves
def _history_curves(history) -> dict[str, np.ndarray]:
    logs = history if isinstance(history, Mapping) else getattr(history, "history", None)
    if not isinstance(logs, Mapping):
        raise TypeError(f"history must be a History (returned by fit) or its dict of lists, "
                        f"got {type(history).__name__}")
    if "loss" not in logs:
        raise ValueError(f"history has no 'loss' curve (it has {sorted(logs)}); pass the "
                         "History returned by fit() or its .history dict")
    curves = {}
    for key, values in logs.items():
        try:
            curve = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"history[{key!r}] must be a list of numbers") from None
        if curve.ndim != 1 or curve.size == 0:
            raise ValueError(f"history[{key!r}] must be a non-empty list of numbers, one per "
                             f"epoch, got shape {curve.shape}")
        curves[str(key)] = curve
    return curves


def _history_panels(curves: Mapping[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """``[(panel name, [keys drawn in it]), ...]``: loss first, then each metric
    with its ``val_`` twin in the order they were logged, the learning rate last."""
    panels = [("loss", ["loss", "val_loss"])]
    seen = {"loss", "lr"}
    for key in curves:
        name = key[len("val_"):] if key.startswith("val_") else key
        if name not in seen:
            seen.add(name)
            panels.append((name, [name, "val_" + name]))
    if "lr" in curves:
        panels.append(("learning rate", ["lr"]))
    return [(name, [key for key in keys if key in curves]) for name, keys in panels]


#: Panels of figures that shrink towards 0 as training goes on: drawn on a log
#: axis when every value is positive, where a linear one flattens the late epochs.
_ERROR_PANELS = frozenset({"loss", "mse", "mae"})


def _all_positive(curves) -> bool:
    return all(np.all(np.isfinite(curve) & (curve > 0)) for curve in curves)


def history_figure(history, *, title: Optional[str] = None):
    """The learning curves of ``history`` as a matplotlib Figure, one panel each
    for the loss, every other metric (training and ``val_`` curves) and the
    learning rate ``"lr"`` when logged; the x axis counts epochs from 1.

    The loss (and the mse and mae) panels have a log y axis when every value
    in them is positive, a linear one otherwise; the learning rate has a log
    axis when it spans a factor of 10 or more."""
    curves = _history_curves(history)
    panels = _history_panels(curves)
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n_cols = min(len(panels), 3)
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.4 * n_cols, 3.4 * n_rows),
                             squeeze=False, layout="constrained")
    with _closed_on_error(fig):
        for ax in axes.flat[len(panels):]:
            fig.delaxes(ax)
        for ax, (name, keys) in zip(axes.flat, panels):
            for key in keys:
                curve = curves[key]
                epochs = np.arange(1, len(curve) + 1)
                style = {"marker": "o", "markersize": 3} if len(curve) <= 30 else {}
                if key == "lr":
                    ax.plot(epochs, curve, color="C2", **style)
                    positive = curve[np.isfinite(curve) & (curve > 0)]
                    if positive.size == curve.size and positive.max() >= 10 * positive.min():
                        ax.set_yscale("log")
                else:
                    validation = key.startswith("val_")
                    ax.plot(epochs, curve, color="C1" if validation else "C0",
                            label="validation" if validation else "training", **style)
            if name in _ERROR_PANELS and _all_positive(curves[key] for key in keys):
                ax.set_yscale("log")
            if name == "loss" and "val_loss" in curves and np.any(np.isfinite(curves["val_loss"])):
                best = int(np.nanargmin(curves["val_loss"])) + 1
                ax.axvline(best, color="0.5", linestyle=":", label=f"best val_loss (epoch {best})")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if max(len(curves[key]) for key in keys) == 1:
                ax.set_xlim(0.5, 1.5)   # one point autoscales to ticks like 0.96, 0.98
                ax.set_xticks([1])
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        if title is not None:
            fig.suptitle(title)
    return fig


def plot_history(history, path: PathLike, *, title: Optional[str] = None) -> str:
    """Save the learning curves of ``history`` (a History or its dict) as a PNG
    at ``path``; return the path. See ``history_figure``."""
    path = _check_path(path)
    return _save(history_figure(history, title=title), path)


# ------------------------------------------------------------ confusion matrix
def confusion_matrix(y_true, y_pred, n_classes: Optional[int] = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Args:
        y_true, y_pred: class indices ``(N,)`` in ``[0, n_classes)``.
        n_classes: the number of classes k; by default one more than the largest label.

    Returns:
        int64 array ``(k, k)``: rows are true classes, columns predicted ones;
        ``C.sum() == N`` and ``trace(C) / N`` is the accuracy.
    """
    t = _as_indices(_as_labels(y_true, "y_true"), "y_true")
    p = _as_indices(_as_labels(y_pred, "y_pred"), "y_pred")
    check_same_length(t, p, "y_true", "y_pred")
    largest = int(max(t.max(initial=-1), p.max(initial=-1)))
    if n_classes is None:
        k = largest + 1
    else:
        k = check_positive_int(n_classes, "n_classes")
        for labels, argument in ((t, "y_true"), (p, "y_pred")):
            if labels.size and labels.max() >= k:
                raise ValueError(f"{argument} holds the label {labels.max()}, outside "
                                 f"[0, {k}) for n_classes={k}")
    # Pair (i, j) becomes the single index i * k + j; one bincount counts them all.
    counts = np.bincount(t * k + p, minlength=k * k)
    return counts.reshape(k, k).astype(np.int64, copy=False)


def _confusion_indices(y_true, y_pred, class_names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class indices of both label arrays and the name of each class."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    check_same_length(t, p, "y_true", "y_pred")
    if t.size == 0:
        raise ValueError("y_true is empty: expected at least one sample")
    if class_names is None:
        if _is_numeric(t) != _is_numeric(p):
            raise ValueError(f"y_true (dtype {t.dtype}) and y_pred (dtype {p.dtype}) must hold "
                             "labels of the same kind")
        names, inverse = np.unique(np.concatenate([t, p]), return_inverse=True)
        return inverse[:len(t)], inverse[len(t):], [str(name) for name in names.tolist()]
    names = np.asarray(class_names)
    if names.ndim != 1 or names.size == 0 or len(np.unique(names)) != names.size:
        raise ValueError(f"class_names must be a non-empty list of distinct names, got {class_names!r}")
    if _is_numeric(t) and _is_numeric(p) and not _is_numeric(names):
        # Integer labels index the names: label 2 is class_names[2].
        t, p = _as_indices(t, "y_true"), _as_indices(p, "y_pred")
        for labels, argument in ((t, "y_true"), (p, "y_pred")):
            if labels.max() >= names.size:
                raise ValueError(f"{argument} holds the label {labels.max()}, but class_names "
                                 f"names only {names.size} classes (labels 0..{names.size - 1})")
    else:
        # Labels are the names themselves; class_names sets their order.
        t, p = _encode(t, names, "y_true"), _encode(p, names, "y_pred")
    return t, p, [str(name) for name in names.tolist()]


def confusion_matrix_figure(y_true, y_pred, *, class_names: Optional[Sequence] = None,
                            normalize: bool = False, title: Optional[str] = None):
    """The confusion matrix of ``y_pred`` against ``y_true`` as a matplotlib Figure.

    Labels may be of any type: the classes are the distinct labels of both
    arrays, sorted. ``class_names`` either names integer labels ``0..k-1``
    (``class_names[i]`` for label ``i``) or lists the labels themselves in the
    order to show them. With ``normalize`` each row is divided by its total, so
    cell ``(i, j)`` is the fraction of true class ``i`` predicted as ``j`` (the
    diagonal is each class's recall).
    """
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    t, p, names = _confusion_indices(y_true, y_pred, class_names)
    counts = confusion_matrix(t, p, n_classes=len(names))
    k, n = len(names), len(t)
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    else:
        values = counts

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    side = float(np.clip(2.6 + 0.45 * k, 4.4, 14.0))
    fig, ax = plt.subplots(figsize=(side + 1.3, side), layout="constrained")
    with _closed_on_error(fig):
        image = ax.imshow(values, cmap="Blues", vmin=0,
                          vmax=1.0 if normalize else max(int(counts.max()), 1))
        bar = fig.colorbar(image, ax=ax, shrink=0.8,
                           label="fraction of the true class" if normalize else "samples")
        if not normalize:
            bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xticks(np.arange(k), names)
        ax.set_yticks(np.arange(k), names)
        if max(len(name) for name in names) > 2:
            ax.tick_params(axis="x", labelrotation=45)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if k <= 30:   # beyond that the numbers cannot be read anyway
            fontsize = float(np.clip(15 - 0.3 * k, 7, 11))
            for (i, j), value in np.ndenumerate(values):
                # Dark text on light cells, white on dark ones (relative luminance).
                r, g, b, _ = image.cmap(image.norm(value))
                color = "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black"
                text = f"{value:.2f}" if normalize else f"{value:d}"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
        accuracy = np.trace(counts) / n
        ax.set_title(title if title is not None else
                     f"confusion matrix (accuracy {accuracy:.1%}, n = {n})")
    return fig


def plot_confusion_matrix(y_true, y_pred, path: PathLike, *, class_names: Optional[Sequence] = None,
                          normalize: bool = False, title: Optional[str] = None) -> str:
    """Save the confusion matrix as a PNG at ``path``; return the path. See
    ``confusion_matrix_figure``."""
    path = _check_path(path)
    return _save(confusion_matrix_figure(y_true, y_pred, class_names=class_names,
                                         normalize=normalize, title=title), path)


# ----------------------------------------------------------- decision boundary
def _finite_float64(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as float64, or an error naming it when it holds NaN or infinity."""
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity")
    return array


def _check_points(X) -> np.ndarray:
    if X is None:
        raise ValueError("X is required, got None")
    array = np.asarray(X)
    if not _is_numeric(array):
        raise TypeError(f"X must be numeric, got an array of dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(f"X must have shape (n_samples, 2): a decision boundary is drawn for "
                         f"2-D inputs only, got shape {array.shape}")
    return _finite_float64(array, "X")


def decision_boundary_figure(model, X, y, *, resolution: int = 200, title: Optional[str] = None):
    """The classes a 2-D classifier predicts over the plane, with the data on top,
    as a matplotlib Figure.

    The grid spans the range of ``X`` plus 10% on each side, ``resolution``
    points along each axis, and is predicted in one call. A softmax model
    (``cross_entropy``) shades each point by its predicted class; a single-output
    sigmoid model (``binary_cross_entropy``) shades P(class 1) and draws the 0.5
    contour. ``y`` holds the labels of ``X`` (``model.classes`` when it is set,
    class indices otherwise).
    """
    X = _check_points(X)
    y = _as_labels(y, "y")
    check_same_length(X, y, "X", "y")
    resolution = check_positive_int(resolution, "resolution")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    loss = getattr(model, "loss", None)
    if loss is None or not getattr(loss, "classification", False):
        raise ValueError("model must be a classifier trained with loss='cross_entropy' or "
                         f"'binary_cross_entropy', got loss {loss!r}")
    binary = isinstance(loss, BinaryCrossEntropy)

    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * np.where(high > low, high - low, 1.0)
    gx, gy = np.meshgrid(np.linspace(low[0] - margin[0], high[0] + margin[0], resolution),
                         np.linspace(low[1] - margin[1], high[1] + margin[1], resolution))
    # The grid and the data go through the model together, in one call.
    points = np.concatenate([np.column_stack([gx.ravel(), gy.ravel()]), X])
    n_grid = gx.size
    if binary:
        proba = model.predict_proba(points)
        if proba.shape[1] != 1:
            raise ValueError(f"model has {proba.shape[1]} sigmoid outputs (multi-label); a decision "
                             "boundary needs a single output or a softmax classifier")
        proba = proba[:, 0].astype(np.float64)
        names = np.asarray(model.classes) if model.classes is not None else np.array([0, 1])
        field = proba[:n_grid].reshape(gx.shape)
        predicted = (proba[n_grid:] > 0.5).astype(np.int64)
    else:
        labels = np.asarray(model.predict(points))
        names = (np.asarray(model.classes) if model.classes is not None
                 else np.arange(int(np.prod(model.output_shape))))
        classes = _encode(labels, names, "model.predict(X)")
        field = classes[:n_grid].reshape(gx.shape)
        predicted = classes[n_grid:]
    y_index = _encode(y, names, "y")
    accuracy = float(np.mean(predicted == y_index))

    plt = _pyplot()
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    k = len(names)
    fig, ax = plt.subplots(figsize=(7.2 if binary else 6.8, 5.4), layout="constrained")
    with _closed_on_error(fig):
        if binary:
            cmap = colormaps["RdBu_r"]
            colors = [cmap(0.08), cmap(0.92)]
            shade = ax.contourf(gx, gy, field, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.45)
            fig.colorbar(shade, ax=ax, location="bottom", shrink=0.7, aspect=35,
                         label=f"P(class = {names[1]})")
            if field.min() < 0.5 < field.max():
                ax.contour(gx, gy, field, levels=[0.5], colors="k", linewidths=1.5)
        else:
            # A class field has steps, not slopes: contour lines along it come out
            # as staircases, so the filled regions alone show the boundaries.
            colors = _class_colors(k)
            ax.contourf(gx, gy, field, levels=np.arange(k + 1) - 0.5, colors=colors, alpha=0.3)
        size = float(np.clip(4000 / len(X), 10, 45))
        for i, name in enumerate(names.tolist()):
            mask = y_index == i
            if np.any(mask):
                ax.scatter(X[mask, 0], X[mask, 1], color=colors[i], s=size, edgecolors="k",
                           linewidths=0.5, label=str(name))
        handles, labels = ax.get_legend_handles_labels()
        if binary:
            handles.append(Line2D([], [], color="k", linewidth=1.5))
            labels.append("P = 0.5")
        # Outside the axes, so that it hides neither points nor boundary.
        ax.legend(handles, labels, title="class", loc="upper left", bbox_to_anchor=(1.02, 1),
                  borderaxespad=0)
        ax.set_xlim(gx[0, 0], gx[0, -1])
        ax.set_ylim(gy[0, 0], gy[-1, 0])
        ax.set_xlabel("x[:, 0]")
        ax.set_ylabel("x[:, 1]")
        ax.set_title(title if title is not None else
                     f"decision boundary (accuracy {accuracy:.1%} on these {len(X)} points)")
    return fig


def plot_decision_boundary(model, X, y, path: PathLike, *, resolution: int = 200,
                           title: Optional[str] = None) -> str:
    """Save the decision boundary of ``model`` over 2-D inputs ``X`` as a PNG at
    ``path``; return the path. See ``decision_boundary_figure``."""
    path = _check_path(path)
    return _save(decision_boundary_figure(model, X, y, resolution=resolution, title=title), path)


# ------------------------------------------------------------------ conv filters
def _first_kernel(model_or_kernel) -> tuple[np.ndarray, str]:
    """The kernel ``(kh, kw, in_channels, filters)`` to draw, and what it is called."""
    from .layers import Conv2D, Layer
    if model_or_kernel is None:
        raise ValueError("model_or_kernel is required, got None")
    if isinstance(model_or_kernel, Layer):
        if not isinstance(model_or_kernel, Conv2D):
            raise TypeError(f"model_or_kernel must be a model, a Conv2D layer or a kernel array, "
                            f"got a {type(model_or_kernel).__name__} layer")
        layer = model_or_kernel
    elif isinstance(getattr(model_or_kernel, "layers", None), list):       # a Sequential
        layer = next((layer for layer in model_or_kernel.layers if isinstance(layer, Conv2D)), None)
        if layer is None:
            kinds = ", ".join(type(layer).__name__ for layer in model_or_kernel.layers) or "none"
            raise ValueError(f"model_or_kernel has no Conv2D layer (its layers: {kinds}); "
                             "filters are drawn from the first Conv2D")
    else:
        return _check_kernel(model_or_kernel), "kernel"
    if getattr(layer, "W", None) is None:
        raise ValueError(f"the Conv2D layer {layer.name or 'conv2d'!r} is not built yet: build or "
                         "fit the model first")
    return _check_kernel(layer.W), f"{layer.name} (Conv2D)"


def _check_kernel(kernel) -> np.ndarray:
    array = np.asarray(kernel)
    if not _is_numeric(array) or array.dtype.kind == "b":
        raise TypeError(f"the kernel must hold numbers, got an array of dtype {array.dtype}")
    if array.ndim != 4 or 0 in array.shape:
        raise ValueError(f"the kernel must have shape (kernel_height, kernel_width, in_channels, "
                         f"filters), as Conv2D.W, got shape {array.shape}")
    return _finite_float64(array, "the kernel")


def filters_figure(model_or_kernel, *, channel: Union[int, str] = "mean", max_filters: int = 64,
                   title: Optional[str] = None):
    """The filters of a convolution as a grid of small grayscale images, a matplotlib Figure.

    ``model_or_kernel`` is a model (its first ``Conv2D`` layer is drawn), a ``Conv2D``
    layer, or a kernel array ``(kernel_height, kernel_width, in_channels, filters)``,
    the layout of ``Conv2D.W``. Filter ``f`` is shown as ``W[:, :, channel, f]``, or
    with ``channel="mean"`` (the default) as ``W[:, :, :, f].mean(axis=2)``, the
    average over the input channels (the same for a single channel).

    Each filter has its own colour scale, symmetric around 0: pixel ``w`` is drawn
    as ``w / max|w|`` of that filter, black for -1, mid-gray for 0, white for +1;
    the title above it gives its ``max|w|`` and a colorbar shows the scale. At most
    ``max_filters`` filters are drawn, the first ones.
    """
    kernel, name = _first_kernel(model_or_kernel)
    kh, kw, n_channels, n_filters = kernel.shape
    if isinstance(channel, str):
        if channel != "mean":
            raise ValueError(f"channel must be 'mean' or an input channel index, got {channel!r}")
        maps = kernel.mean(axis=2)
        which = f"mean over {n_channels} input channels" if n_channels > 1 else ""
    else:
        if isinstance(channel, (bool, np.bool_)) or not isinstance(channel, (int, np.integer)):
            raise TypeError(f"channel must be 'mean' or an int, got {channel!r}")
        if not 0 <= channel < n_channels:
            raise ValueError(f"channel must be in [0, {n_channels}) for a kernel of {n_channels} "
                             f"input channels, got {channel}")
        maps = kernel[:, :, int(channel), :]
        which = f"input channel {int(channel)} of {n_channels}"
    max_filters = check_positive_int(max_filters, "max_filters")
    n = min(n_filters, max_filters)
    maps = np.moveaxis(maps[:, :, :n], -1, 0)                       # (n, kh, kw)
    scales = np.abs(maps).max(axis=(1, 2))

    plt = _pyplot()
    n_cols = min(n, 8)
    n_rows = -(-n // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.15 * n_cols + 1.3, 1.25 * n_rows + 0.9),
                             squeeze=False, layout="constrained")
    with _closed_on_error(fig):
        for ax in axes.flat[n:]:
            fig.delaxes(ax)
        image = None
        for i, (ax, weights, scale) in enumerate(zip(axes.flat, maps, scales)):
            # an all-zero filter is drawn gray (0 / 1), not as NaN
            image = ax.imshow(weights / (scale if scale > 0 else 1.0), cmap="gray", vmin=-1,
                              vmax=1, interpolation="nearest")
            ax.set_title(f"{i}: ±{scale:.2g}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=list(axes.flat[:n]), shrink=0.8, ticks=[-1, 0, 1],
                     label="w / the filter's max |w|")
        shown = f"{n} filters" if n == n_filters else f"the first {n} of {n_filters} filters"
        details = ", ".join(part for part in (f"{kh}x{kw}", which) if part)
        fig.suptitle(title if title is not None else
                     f"{name}: {shown} ({details}); each scaled to its own max |w|")
    return fig


def plot_filters(model_or_kernel, path: PathLike, *, channel: Union[int, str] = "mean",
                 max_filters: int = 64, title: Optional[str] = None) -> str:
    """Save the filters of a convolution as a PNG at ``path``; return the path. See
    ``filters_figure``."""
    path = _check_path(path)
    return _save(filters_figure(model_or_kernel, channel=channel, max_filters=max_filters,
                                title=title), path)


# ------------------------------------------------------------------ predictions
def _check_images(images) -> np.ndarray:
    if images is None:
        raise ValueError("images is required, got None")
    array = np.asarray(images)
    if not _is_numeric(array) or array.dtype.kind == "b":
        raise TypeError(f"images must be numeric, got an array of dtype {array.dtype}")
    if array.ndim == 2:
        raise ValueError(f"images must be (N, height, width) or (N, height, width, channels), "
                         f"got rows of shape {array.shape}; reshape them first, such as "
                         "X.reshape(-1, 28, 28) for Fashion-MNIST")
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[3] in (1, 3))) or 0 in array.shape:
        raise ValueError(f"images must be (N, height, width) or (N, height, width, channels) with "
                         f"1 or 3 channels, got shape {array.shape}")
    array = _finite_float64(array, "images")
    return array[..., 0] if array.ndim == 4 and array.shape[3] == 1 else array


def predictions_figure(images, y_true, y_pred, *, class_names: Optional[Sequence] = None,
                       n_rows: int = 5, n_cols: int = 8, title: Optional[str] = None):
    """The first ``n_rows * n_cols`` images in a grid, each titled with its predicted
    label, as a matplotlib Figure. A mistake is titled ``"predicted (true)"`` in red.

    ``images`` are ``(N, height, width)`` or channels last ``(N, height, width, C)``
    with C = 1 (grayscale) or 3 (RGB); all are drawn on one scale, from the smallest
    to the largest pixel shown. Labels are read as in ``confusion_matrix_figure``:
    ``class_names`` names integer labels ``0..k-1`` or lists the labels themselves.
    """
    pixels = _check_images(images)
    t, p, names = _confusion_indices(y_true, y_pred, class_names)
    check_same_length(pixels, t, "images", "y_true")
    n_rows, n_cols = check_positive_int(n_rows, "n_rows"), check_positive_int(n_cols, "n_cols")
    n = min(len(pixels), n_rows * n_cols)
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    shown = pixels[:n]
    low, high = float(shown.min()), float(shown.max())
    if high <= low:
        high = low + 1.0
    wrong = t[:n] != p[:n]

    plt = _pyplot()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.45 * n_cols + 0.4, 1.6 * n_rows + 0.7),
                             squeeze=False, layout="constrained")
    with _closed_on_error(fig):
        for ax in axes.flat[n:]:
            fig.delaxes(ax)
        for i, ax in enumerate(axes.flat[:n]):
            if shown.ndim == 4:                                   # RGB: imshow wants [0, 1]
                ax.imshow((shown[i] - low) / (high - low), interpolation="nearest")
            else:
                ax.imshow(shown[i], cmap="binary", vmin=low, vmax=high, interpolation="nearest")
            label = names[p[i]] if not wrong[i] else f"{names[p[i]]} ({names[t[i]]})"
            ax.set_title(label, fontsize=7, color="red" if wrong[i] else "black")
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(title if title is not None else
                     f"predictions for the first {n} images: {int(wrong.sum())} wrong, "
                     "in red as predicted (true)")
    return fig


def plot_predictions(images, y_true, y_pred, path: PathLike, *,
                     class_names: Optional[Sequence] = None, n_rows: int = 5, n_cols: int = 8,
                     title: Optional[str] = None) -> str:
    """Save a grid of images with their predicted labels as a PNG at ``path``; return
    the path. See ``predictions_figure``."""
    path = _check_path(path)
    return _save(predictions_figure(images, y_true, y_pred, class_names=class_names,
                                    n_rows=n_rows, n_cols=n_cols, title=title), path)
