"""Plots: the confusion-matrix counts by value, every plot written as a real PNG,
the figure layouts, argument checks, and matplotlib staying optional."""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

import scratchnn as snn  # noqa: E402
from scratchnn.plots import (_pyplot, confusion_matrix, confusion_matrix_figure,  # noqa: E402
                             decision_boundary_figure, filters_figure, history_figure,
                             plot_confusion_matrix, plot_decision_boundary, plot_filters,
                             plot_history, plot_predictions, predictions_figure)

plt = _pyplot()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[0.0, 3.0], [3.0, -1.5], [-3.0, -1.5]])
    return centers[y] + rng.normal(size=(n, 2)), y


@pytest.fixture(scope="module")
def trained():
    X, y = blobs()
    model = snn.Sequential([snn.Dense(8), snn.Tanh(), snn.Dense(3)], seed=0)
    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.05), epochs=30,
                        validation_split=0.2)
    return model, history, X, y


@pytest.fixture(autouse=True)
def no_figure_left_open():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function left a figure open"


def check_png(path, min_size=200):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    height, width, channels = image.shape
    assert min_size <= height <= 4000 and min_size <= width <= 4000
    assert channels in (3, 4)
    colors = np.unique(image[..., :3].reshape(-1, 3), axis=0)
    assert len(colors) > 10, "the image is (almost) one flat colour"


# ------------------------------------------------------------ confusion_matrix
def test_confusion_matrix_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 0, 1, 1, 2, 0, 2, 1]
    expected = np.array([[2, 1, 0],
                         [0, 2, 0],
                         [1, 1, 2]])
    C = confusion_matrix(y_true, y_pred)
    assert C.dtype == np.int64
    np.testing.assert_array_equal(C, expected)
    assert C.sum() == 9 and np.trace(C) == 6


def test_confusion_matrix_n_classes_and_label_forms():
    C = confusion_matrix(np.array([1, 1]), np.array([1.0, 0.0]), n_classes=4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1, 1] = expected[1, 0] = 1
    np.testing.assert_array_equal(C, expected)
    np.testing.assert_array_equal(confusion_matrix([True, False], [True, True]), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(confusion_matrix(np.array([[2], [0]]), [2, 2]),
                                  [[0, 0, 1], [0, 0, 0], [0, 0, 1]])
    assert confusion_matrix([], [], n_classes=2).tolist() == [[0, 0], [0, 0]]


def test_confusion_matrix_matches_a_loop_on_random_labels():
    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 5, 1000), rng.integers(0, 5, 1000)
    expected = np.zeros((5, 5), dtype=np.int64)
    for i, j in zip(t, p):
        expected[i, j] += 1
    np.testing.assert_array_equal(confusion_matrix(t, p, n_classes=5), expected)


@pytest.mark.parametrize("y_true, y_pred, n_classes, match", [
    ([0, 1], [0], None, "y_pred has 1 samples but y_true has 2"),
    ([0, -1], [0, 1], None, "y_true must hold class indices >= 0"),
    ([0, 1], [0, 1.5], None, "y_pred must hold integer class indices"),
    (["a", "b"], [0, 1], None, "y_true must hold integer class indices"),
    ([0, 3], [0, 1], 3, "y_true holds the label 3, outside"),
    ([0, 1], [0, 1], 0, "n_classes must be a positive integer"),
    (np.zeros((2, 2)), [0, 1], None, "y_true must be a 1-D array"),
])
def test_confusion_matrix_rejects_bad_labels(y_true, y_pred, n_classes, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, n_classes=n_classes)


# ---------------------------------------------------------------- plot_history
def test_history_figure_has_one_panel_per_curve_family(trained):
    _, history, _, _ = trained
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    fig = history_figure(history)
    try:
        assert len(fig.axes) == 2
        loss_ax, accuracy_ax = fig.axes
        assert loss_ax.get_title() == "loss" and accuracy_ax.get_title() == "accuracy"
        assert loss_ax.get_xlabel() == "epoch"
        assert [line.get_label() for line in accuracy_ax.get_lines()] == ["training", "validation"]
        assert loss_ax.get_legend() is not None
        x = loss_ax.get_lines()[0].get_xdata()
        np.testing.assert_array_equal(x, np.arange(1, 31))     # epochs count from 1
        np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), history.history["loss"])
    finally:
        plt.close(fig)


@pytest.mark.parametrize("keys, n_axes, titles", [
    (["loss"], 1, ["loss"]),
    (["loss", "accuracy"], 2, ["loss", "accuracy"]),
    (["loss", "val_loss", "accuracy", "val_accuracy", "lr"], 3, ["loss", "accuracy", "learning rate"]),
    (["loss", "mae", "r2", "val_loss", "val_mae", "val_r2", "mse"], 4, ["loss", "mae", "r2", "mse"]),
])
def test_history_figure_layout_from_a_dict(keys, n_axes, titles):
    logs = {key: list(np.linspace(1.0, 0.1, 7)) for key in keys}
    fig = history_figure(logs, title="run 1")
    try:
        assert len(fig.axes) == n_axes
        assert [ax.get_title() for ax in fig.axes] == titles
        assert fig._suptitle.get_text() == "run 1"
        for ax in fig.axes:
            n_val = sum(line.get_label() == "validation" for line in ax.get_lines())
            assert n_val == (f"val_{ax.get_title()}" in logs)
    finally:
        plt.close(fig)


def test_history_figure_puts_positive_losses_on_a_log_axis():
    """A loss that falls from 1 to 1e-4 is a flat line after a few epochs on a linear
    axis; on a log one every decade shows. Accuracy and R2 stay linear, and so does
    a loss with a value <= 0 (a log axis cannot show it)."""
    falling = list(np.geomspace(1.0, 1e-4, 20))
    fig = history_figure({"loss": falling, "val_loss": falling, "accuracy": list(np.linspace(0.5, 1, 20)),
                          "mae": falling, "r2": list(np.linspace(-1, 1, 20))})
    try:
        assert {ax.get_title(): ax.get_yscale() for ax in fig.axes} == {
            "loss": "log", "accuracy": "linear", "mae": "log", "r2": "linear"}
    finally:
        plt.close(fig)
    fig = history_figure({"loss": [1.0, 0.5, 0.0], "val_loss": [1.0, 0.5, 0.25]})
    try:
        assert fig.axes[0].get_yscale() == "linear"
    finally:
        plt.close(fig)


def test_plot_history_writes_png_with_and_without_validation(trained, tmp_path):
    _, history, _, _ = trained
    path = plot_history(history, tmp_path / "new" / "dir" / "curves.png")
    assert path == str(tmp_path / "new" / "dir" / "curves.png")
    check_png(path)
    train_only = {k: v for k, v in history.history.items() if not k.startswith("val_")}
    check_png(plot_history(train_only, str(tmp_path / "train.png"), title="training only"))


def test_plot_history_rejects_bad_history(tmp_path):
    with pytest.raises(ValueError, match="history has no 'loss'"):
        plot_history({"accuracy": [0.5, 0.9]}, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"history\['loss'\] must be a non-empty list"):
        plot_history({"loss": []}, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"history\['accuracy'\] must be a list of numbers"):
        plot_history({"loss": [1.0], "accuracy": ["high"]}, tmp_path / "h.png")
    with pytest.raises(TypeError, match="history must be a History"):
        plot_history([1.0, 0.5], tmp_path / "h.png")
    with pytest.raises(ValueError, match="path must name a .png file"):
        plot_history({"loss": [1.0]}, tmp_path / "h.jpg")
    assert not any(tmp_path.iterdir())


# -------------------------------------------------------- plot_confusion_matrix
def test_plot_confusion_matrix_writes_png(trained, tmp_path):
    model, _, X, y = trained
    check_png(plot_confusion_matrix(y, model.predict(X), tmp_path / "cm.png",
                                    class_names=["north", "south-east", "south-west"]))
    check_png(plot_confusion_matrix(y, model.predict(X), tmp_path / "cm_norm.png", normalize=True))


def cell_texts(fig):
    ax = fig.axes[0]
    return [text.get_text() for text in ax.texts]


def test_confusion_matrix_figure_maps_any_labels():
    y_true = np.array(["dog", "cat", "cat", "bird", "dog"])
    y_pred = np.array(["dog", "cat", "dog", "bird", "cat"])
    fig = confusion_matrix_figure(y_true, y_pred)     # classes sorted: bird, cat, dog
    try:
        assert len(fig.axes) == 2                       # the matrix and its colour bar
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["bird", "cat", "dog"]
        assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
        assert cell_texts(fig) == ["1", "0", "0", "0", "1", "1", "0", "1", "1"]
    finally:
        plt.close(fig)
    # class_names fixes the order of labels given by name ...
    fig = confusion_matrix_figure(y_true, y_pred, class_names=["dog", "cat", "bird"])
    try:
        assert cell_texts(fig) == ["1", "1", "0", "1", "1", "0", "0", "0", "1"]
    finally:
        plt.close(fig)
    # ... and names integer labels 0..k-1, including classes that never occur.
    fig = confusion_matrix_figure([0, 1, 1], [0, 1, 0], class_names=["a", "b", "c"], normalize=True)
    try:
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
        assert cell_texts(fig) == ["1.00", "0.00", "0.00", "0.50", "0.50", "0.00",
                                   "0.00", "0.00", "0.00"]
    finally:
        plt.close(fig)


def test_confusion_matrix_text_is_readable_on_dark_cells():
    fig = confusion_matrix_figure([0] * 50 + [1], [0] * 50 + [1])
    try:
        colors = {text.get_text(): text.get_color() for text in fig.axes[0].texts}
        assert colors["50"] == "white" and colors["0"] == "black"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("kwargs, match", [
    ({"y_true": [0, 1], "y_pred": [0, 1, 1]}, "y_pred has 3 samples but y_true has 2"),
    ({"y_true": [], "y_pred": []}, "y_true is empty"),
    ({"y_true": [0, 3], "y_pred": [0, 1], "class_names": ["a", "b"]}, "y_true holds the label 3"),
    ({"y_true": ["a", "z"], "y_pred": ["a", "b"], "class_names": ["a", "b"]},
     "y_true holds the label 'z'"),
    ({"y_true": [0, 1], "y_pred": [0, 1], "class_names": ["a", "a"]}, "class_names must be"),
    ({"y_true": ["a", "b"], "y_pred": [0, 1]}, "same kind"),
])
def test_plot_confusion_matrix_rejects_bad_labels(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        plot_confusion_matrix(path=tmp_path / "cm.png", **kwargs)


# ------------------------------------------------------- plot_decision_boundary
def test_plot_decision_boundary_writes_png(trained, tmp_path):
    model, _, X, y = trained
    check_png(plot_decision_boundary(model, X, y, tmp_path / "boundary.png", resolution=60))


def test_decision_boundary_predicts_the_grid_in_one_call(trained, monkeypatch):
    model, _, X, y = trained
    calls = []
    predict = model.predict

    def counting_predict(points, **kwargs):
        calls.append(np.asarray(points).shape)
        return predict(points, **kwargs)

    monkeypatch.setattr(model, "predict", counting_predict)
    fig = decision_boundary_figure(model, X, y, resolution=50)
    try:
        assert calls == [(50 * 50 + len(X), 2)]      # the grid and the data, together
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
        low, high = X.min(axis=0), X.max(axis=0)
        x_low, x_high = ax.get_xlim()
        assert x_low < low[0] and x_high > high[0]   # the data range plus a margin
        accuracy = np.mean(predict(X) == y)
        assert ax.get_title() == f"decision boundary (accuracy {accuracy:.1%} on these {len(X)} points)"
    finally:
        plt.close(fig)


def test_decision_boundary_of_a_binary_sigmoid_model_shades_probability(tmp_path, monkeypatch):
    X, y = blobs(60)
    y = (y == 0).astype(int)
    model = snn.Sequential([snn.Dense(8), snn.Tanh(), snn.Dense(1)], seed=0)
    model.fit(X, y, loss="binary_cross_entropy", optimizer=snn.Adam(lr=0.05), epochs=30)
    calls = []
    proba = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda P: calls.append(len(P)) or proba(P))
    fig = decision_boundary_figure(model, X, y, resolution=40)
    try:
        assert calls == [40 * 40 + len(X)]
        assert len(fig.axes) == 2                          # the plane and the P(class 1) bar
        assert fig.axes[1].get_xlabel() == "P(class = 1)"
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert legend == ["0", "1", "P = 0.5"]
    finally:
        plt.close(fig)
    check_png(plot_decision_boundary(model, X, y, tmp_path / "binary.png", resolution=40))


def test_decision_boundary_uses_model_classes(tmp_path):
    X, y = blobs(60)
    names = np.array(["north", "south-east", "south-west"])
    model = snn.Sequential([snn.Dense(8), snn.Tanh(), snn.Dense(3)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.05), epochs=30)
    model.classes = names
    fig = decision_boundary_figure(model, X, names[y], resolution=30)
    try:
        assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == names.tolist()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="y holds the label 'west'"):
        plot_decision_boundary(model, X, np.where(y == 0, "west", names[y]), tmp_path / "b.png")


@pytest.mark.parametrize("X, match", [
    (np.zeros((5, 3)), r"X must have shape \(n_samples, 2\).*got shape \(5, 3\)"),
    (np.zeros((5, 2, 2)), r"X must have shape \(n_samples, 2\).*got shape \(5, 2, 2\)"),
    (np.zeros(5), r"X must have shape \(n_samples, 2\)"),
    (np.zeros((0, 2)), r"X must have shape \(n_samples, 2\)"),
    (np.array([[0.0, np.nan]] * 5), "X contains NaN"),
])
def test_decision_boundary_rejects_bad_X(trained, X, match, tmp_path):
    model, _, _, _ = trained
    with pytest.raises(ValueError, match=match):
        plot_decision_boundary(model, X, np.zeros(len(X), dtype=int), tmp_path / "b.png")
    assert not any(tmp_path.iterdir())


def test_decision_boundary_rejects_other_bad_arguments(trained, tmp_path):
    model, _, X, y = trained
    path = tmp_path / "b.png"
    with pytest.raises(ValueError, match="y has 89 samples but X has 90"):
        plot_decision_boundary(model, X, y[:-1], path)
    with pytest.raises(ValueError, match="resolution must be at least 2"):
        plot_decision_boundary(model, X, y, path, resolution=1)
    with pytest.raises(ValueError, match="y holds the label 7"):
        plot_decision_boundary(model, X, np.full(len(X), 7), path)
    regression = snn.Sequential([snn.Dense(1)], seed=0)
    regression.fit(X, y.astype(float), loss="mse", epochs=1)
    with pytest.raises(ValueError, match="model must be a classifier"):
        plot_decision_boundary(regression, X, y, path)


# ------------------------------------------------------------------ conv filters
@pytest.fixture
def figure_of():
    """``figure_of(make, *args)``: call a *_figure function and close its figure after the test."""
    made = []

    def make_figure(make, *args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]
    yield make_figure
    for fig in made:
        plt.close(fig)


def filter_axes(fig):
    """The filter panels (they hold an image and a title), without the colorbar."""
    return [ax for ax in fig.axes if ax.images and ax.get_title()]


def test_filters_figure_draws_each_filter_on_its_own_symmetric_scale(figure_of):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 3, 1, 12))
    W[..., 5] *= 100                       # a filter of large weights keeps its own contrast
    W[..., 7] = 0                          # an all-zero filter is mid-gray, not NaN
    fig = figure_of(filters_figure, W)
    panels = filter_axes(fig)
    assert len(panels) == 12 and len(fig.axes) == 13         # 12 filters and the colorbar
    for i, ax in enumerate(panels):
        shown = np.asarray(ax.images[0].get_array())
        scale = np.abs(W[..., 0, i]).max()
        np.testing.assert_allclose(shown, W[..., 0, i] / (scale if scale else 1.0))
        assert ax.images[0].get_clim() == (-1.0, 1.0)          # symmetric: 0 is mid-gray
        assert ax.get_title() == f"{i}: ±{scale:.2g}"
    assert np.abs(np.asarray(panels[5].images[0].get_array())).max() == 1.0
    assert np.all(np.asarray(panels[7].images[0].get_array()) == 0)
    assert panels[7].get_title() == "7: ±0"
    colorbar = next(ax for ax in fig.axes if ax not in panels)
    assert "max |w|" in colorbar.get_ylabel()
    assert fig._suptitle.get_text() == "kernel: 12 filters (3x3); each scaled to its own max |w|"


def test_filters_figure_channels_and_the_first_filters(figure_of):
    W = np.random.default_rng(1).normal(size=(5, 3, 4, 20))
    fig = figure_of(filters_figure, W, max_filters=8)
    panels = filter_axes(fig)
    assert len(panels) == 8
    mean = W[..., 3].mean(axis=2)
    np.testing.assert_allclose(panels[3].images[0].get_array(), mean / np.abs(mean).max())
    assert panels[0].images[0].get_array().shape == (5, 3)
    assert "the first 8 of 20 filters (5x3, mean over 4 input channels)" in fig._suptitle.get_text()
    fig = figure_of(filters_figure, W, channel=2, title="mine")
    panels = filter_axes(fig)
    assert len(panels) == 20 and fig._suptitle.get_text() == "mine"
    np.testing.assert_allclose(panels[19].images[0].get_array(),
                               W[:, :, 2, 19] / np.abs(W[:, :, 2, 19]).max())


def test_filters_of_a_model_are_those_of_its_first_conv2d(figure_of, tmp_path):
    model = snn.Sequential([snn.Conv2D(6, 3), snn.ReLU(), snn.Conv2D(4, 3), snn.Flatten(),
                            snn.Dense(2)], seed=0, input_shape=(8, 8, 2))
    first = model.layers[0]
    for source in (model, first):
        fig = figure_of(filters_figure, source, channel=1)
        panels = filter_axes(fig)
        assert len(panels) == 6
        np.testing.assert_allclose(panels[2].images[0].get_array(),
                                   first.W[:, :, 1, 2] / np.abs(first.W[:, :, 1, 2]).max(),
                                   rtol=1e-6)
        assert fig._suptitle.get_text().startswith(f"{first.name} (Conv2D): 6 filters (3x3, "
                                                   "input channel 1 of 2)")
    check_png(plot_filters(model, tmp_path / "filters.png"))


@pytest.mark.parametrize("source, kwargs, error, match", [
    (None, {}, ValueError, "model_or_kernel is required"),
    (np.zeros((3, 3, 4)), {}, ValueError, r"shape \(kernel_height, kernel_width, in_channels, "
                                          r"filters\), as Conv2D.W, got shape \(3, 3, 4\)"),
    (np.zeros((3, 3, 1, 0)), {}, ValueError, "got shape"),
    (np.full((3, 3, 1, 2), np.nan), {}, ValueError, "NaN or infinity"),
    (np.full((3, 3, 1, 2), "a"), {}, TypeError, "must hold numbers"),
    (np.zeros((3, 3, 2, 2)), {"channel": 2}, ValueError, r"channel must be in \[0, 2\)"),
    (np.zeros((3, 3, 2, 2)), {"channel": "max"}, ValueError, "channel must be 'mean' or"),
    (np.zeros((3, 3, 2, 2)), {"channel": 1.0}, TypeError, "channel must be 'mean' or an int"),
    (np.zeros((3, 3, 2, 2)), {"channel": True}, TypeError, "channel must be 'mean' or an int"),
    (np.zeros((3, 3, 2, 2)), {"max_filters": 0}, ValueError, "max_filters"),
])
def test_plot_filters_rejects_bad_arguments(source, kwargs, error, match, tmp_path):
    with pytest.raises(error, match=match):
        plot_filters(source, tmp_path / "f.png", **kwargs)
    assert not any(tmp_path.iterdir())


def test_plot_filters_needs_a_built_conv2d(trained, tmp_path):
    model = trained[0]
    with pytest.raises(ValueError, match=r"has no Conv2D layer \(its layers: Dense, Tanh, Dense\)"):
        plot_filters(model, tmp_path / "f.png")
    with pytest.raises(ValueError, match="not built yet"):
        plot_filters(snn.Sequential([snn.Conv2D(4, 3)]), tmp_path / "f.png")
    with pytest.raises(TypeError, match="got a Dense layer"):
        plot_filters(model.layers[0], tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plot_filters(np.ones((3, 3, 1, 2)), tmp_path / "f.jpg")
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ predictions
def digits(n, seed=0, shape=(6, 5)):
    return np.random.default_rng(seed).random((n, *shape))


def test_predictions_figure_titles_each_image_and_marks_mistakes_in_red(figure_of):
    names = ["zero", "one", "two", "three"]
    y_true = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
    y_pred = np.array([0, 1, 3, 3, 0, 2, 2, 3, 0, 1, 2, 0])     # mistakes at 2, 5 and 11
    images = digits(12)
    fig = figure_of(predictions_figure, images, y_true, y_pred, class_names=names, n_rows=2,
                    n_cols=4)
    assert len(fig.axes) == 8                                  # the first 2 x 4 images
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["zero", "one", "three (two)", "three", "zero", "two (one)", "two", "three"]
    colors = [matplotlib.colors.to_hex(ax.title.get_color()) for ax in fig.axes]
    assert colors == ["#000000"] * 2 + ["#ff0000"] + ["#000000"] * 2 + ["#ff0000"] + ["#000000"] * 2
    for i, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), images[i])
        assert ax.images[0].get_clim() == (images[:8].min(), images[:8].max())   # one scale
    assert fig._suptitle.get_text() == ("predictions for the first 8 images: 2 wrong, in red as "
                                        "predicted (true)")


def test_predictions_figure_layouts_and_labels(figure_of):
    # (N, H, W, 1) images, fewer than the grid holds: one row of 3; labels are the names
    images = digits(3)[..., None]
    fig = figure_of(predictions_figure, images, ["cat", "dog", "dog"], ["cat", "cat", "dog"])
    assert [ax.get_title() for ax in fig.axes] == ["cat", "cat (dog)", "dog"]
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), images[1, ..., 0])
    # RGB images, integer labels without names
    rgb = digits(10, shape=(4, 4, 3)) * 255
    fig = figure_of(predictions_figure, rgb, np.arange(10) % 3, np.zeros(10, int), n_cols=4,
                    title="colour")
    assert len(fig.axes) == 10 and fig._suptitle.get_text() == "colour"
    assert fig.axes[4].get_title() == "0 (1)"
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (4, 4, 3) and shown.min() >= 0 and shown.max() <= 1


def test_plot_predictions_writes_png(tmp_path):
    y = np.arange(12) % 10
    path = plot_predictions(digits(12, shape=(28, 28)), y, (y + (y == 3)) % 10, tmp_path / "p.png",
                            class_names=[f"class {i}" for i in range(10)], n_rows=3, n_cols=4)
    check_png(path)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"images": None}, ValueError, "images is required"),
    ({"images": np.zeros((4, 784))}, ValueError, r"rows of shape \(4, 784\); reshape them first"),
    ({"images": np.zeros((4, 5, 5, 2))}, ValueError, "1 or 3 channels"),
    ({"images": np.zeros((4,))}, ValueError, "images must be"),
    ({"images": np.full((4, 5, 5), np.inf)}, ValueError, "images contains NaN or infinity"),
    ({"images": np.full((4, 5, 5), "x")}, TypeError, "images must be numeric"),
    ({"images": np.zeros((3, 5, 5))}, ValueError, "y_true has 4 samples but images has 3"),
    ({"y_pred": [0, 1, 1]}, ValueError, "y_pred has 3 samples but y_true has 4"),
    ({"y_true": [0, 1, 1, 9], "class_names": ["a", "b"]}, ValueError, "y_true holds the label 9"),
    ({"n_rows": 0}, ValueError, "n_rows"),
    ({"n_cols": 2.5}, ValueError, "n_cols must be a positive integer"),
])
def test_plot_predictions_rejects_bad_arguments(kwargs, error, match, tmp_path):
    arguments = {"images": np.zeros((4, 5, 5)), "y_true": [0, 1, 1, 0], "y_pred": [0, 1, 0, 0],
                 **kwargs}
    with pytest.raises(error, match=match):
        plot_predictions(path=tmp_path / "p.png", **arguments)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------- optional dependency
def run_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_scratchnn_does_not_import_matplotlib():
    out = run_python("import sys, scratchnn, scratchnn.plots; "
                     "print('matplotlib' in sys.modules)")
    assert out == "False"


def test_missing_matplotlib_gives_an_install_hint():
    out = run_python(
        "import sys\n"
        "sys.modules['matplotlib'] = None  # makes `import matplotlib` fail\n"
        "from scratchnn.plots import plot_history\n"
        "try:\n"
        "    plot_history({'loss': [1.0]}, 'never-written.png')\n"
        "except ImportError as error:\n"
        "    print(error)\n")
    assert out == "plots need matplotlib: pip install 'scratchnn[plots]'"


def test_pyplot_uses_agg_without_touching_an_existing_pyplot():
    out = run_python("import os; os.environ.pop('MPLBACKEND', None)\n"
                     "from scratchnn.plots import _pyplot\n"
                     "print(_pyplot().get_backend())")
    assert out.lower() == "agg"
    out = run_python("import matplotlib; matplotlib.use('svg')\n"
                     "import matplotlib.pyplot as plt\n"
                     "from scratchnn.plots import _pyplot\n"
                     "print(_pyplot() is plt, plt.get_backend())")
    assert out == "True svg"
