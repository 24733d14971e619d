"""The ONNX exporter: ONNX Runtime's outputs against scratchnn's, layer by layer and for
whole networks, in float32 and float64, for a batch of 1 and of 1000."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import scratchnn as snn  # noqa: E402
from scratchnn.onnx import export_onnx, to_onnx  # noqa: E402

#: relative tolerance per dtype. Outputs near 0 are compared relative to the largest
#: output (an entry of 1e-9 among entries of 1 is not held to 1e-14 absolute).
RTOL = {"float32": 1e-5, "float64": 1e-10}
BATCHES = [1, 1000]


def session(onnx_model):
    return ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    rtol = RTOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(1.0, np.abs(expected).max()))


def built(layers, input_shape, dtype, loss=None, seed=0):
    """A model of ``layers`` with random parameters and running statistics."""
    model = snn.Sequential(layers, seed=seed, dtype=dtype, input_shape=input_shape)
    rng = np.random.default_rng(seed)
    model.params[...] = rng.normal(scale=0.5, size=model.params.shape)
    for layer in model.layers:
        if isinstance(layer, snn.BatchNormalization):
            layer.running_mean[...] = rng.normal(size=layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2.0, size=layer.running_var.shape)
    if loss is not None:
        model.compile(loss)
    return model


def inputs(model, n, seed=1):
    return (np.random.default_rng(seed).normal(scale=2.0, size=(n, *model.input_shape))
            .astype(model.dtype))


def check_outputs(model, onnx_model=None):
    onnx_model = onnx_model or to_onnx(model)
    onnx.checker.check_model(onnx_model, full_check=True)
    s = session(onnx_model)
    for n in BATCHES:
        X = inputs(model, n)
        (out,) = s.run(None, {"input": X})
        assert_close(out, model.output(X), model.dtype.name)


FLAT = (6,)
IMAGE = (7, 6, 3)
ACTIVATION_NAMES = sorted(snn.layers.ACTIVATIONS)
LAYER_CASES = {
    "dense": (lambda: [snn.Dense(4)], FLAT),
    "dense_no_bias": (lambda: [snn.Dense(4, use_bias=False)], FLAT),
    **{f"dense_{a}": (lambda a=a: [snn.Dense(4, activation=a)], FLAT) for a in ACTIVATION_NAMES},
    "identity": (lambda: [snn.Identity()], FLAT),
    "sigmoid": (lambda: [snn.Sigmoid()], FLAT),
    "tanh": (lambda: [snn.Tanh()], FLAT),
    "relu": (lambda: [snn.ReLU()], FLAT),
    "leaky_relu": (lambda: [snn.LeakyReLU(0.2)], FLAT),
    "elu": (lambda: [snn.ELU(0.7)], FLAT),
    "gelu": (lambda: [snn.GELU()], FLAT),
    "softmax": (lambda: [snn.Softmax()], FLAT),
    "dropout": (lambda: [snn.Dropout(0.5)], FLAT),
    "flatten": (lambda: [snn.Flatten()], IMAGE),
    "reshape": (lambda: [snn.Reshape((3, -1))], FLAT),
    "reshape_to_images": (lambda: [snn.Reshape((2, 3, 1)), snn.Conv2D(2, 2, padding="same"), snn.Flatten()], FLAT),
    "batch_norm_flat": (lambda: [snn.BatchNormalization()], FLAT),
    "batch_norm_plain": (lambda: [snn.BatchNormalization(center=False, scale=False)], FLAT),
    "batch_norm_images": (lambda: [snn.BatchNormalization()], IMAGE),
    "batch_norm_after_conv": (lambda: [snn.Conv2D(4, 3), snn.BatchNormalization(), snn.Softmax()], IMAGE),
    "layer_norm": (lambda: [snn.LayerNormalization()], FLAT),
    "layer_norm_images_last": (lambda: [snn.LayerNormalization()], IMAGE),
    "layer_norm_images_all": (lambda: [snn.LayerNormalization(axis=(1, 2, 3))], IMAGE),
    "layer_norm_images_hw": (lambda: [snn.LayerNormalization(axis=(1, 2), center=False)], IMAGE),
    "layer_norm_after_conv": (lambda: [snn.Conv2D(4, 3), snn.LayerNormalization(axis=(-2, -1), scale=False)], IMAGE),
    "random_flip": (lambda: [snn.RandomFlip("horizontal_and_vertical")], IMAGE),
    "random_translation": (lambda: [snn.RandomTranslation(0.2, 0.2)], IMAGE),
    "softmax_images": (lambda: [snn.Softmax()], IMAGE),
    "conv_softmax": (lambda: [snn.Conv2D(3, 3, padding="same", activation="softmax")], IMAGE),
    "global_average_pooling": (lambda: [snn.GlobalAveragePooling2D()], IMAGE),
    "conv_global_average_pooling": (lambda: [snn.Conv2D(4, 3), snn.GlobalAveragePooling2D(), snn.Dense(2)], IMAGE),
    "conv_flatten_dense": (lambda: [snn.Conv2D(4, 3, activation="relu"), snn.MaxPool2D(), snn.Flatten(), snn.Dense(3)], IMAGE),
}
CONV_CASES = {
    "valid_3": dict(kernel_size=3),
    "same_3": dict(kernel_size=3, padding="same"),
    "same_2_stride_2": dict(kernel_size=2, stride=2, padding="same"),
    "same_4_stride_3": dict(kernel_size=4, stride=3, padding="same"),
    "pad_1": dict(kernel_size=3, padding=1),
    "pad_2_0": dict(kernel_size=(3, 2), padding=(2, 0)),
    "stride_2_1": dict(kernel_size=3, stride=(2, 1)),
    "stride_3_dropping_rows": dict(kernel_size=2, stride=3, padding=1),
    "dilation_2": dict(kernel_size=3, dilation=2),
    "dilation_2_1_same": dict(kernel_size=3, dilation=(2, 1), padding="same"),
    "kernel_1": dict(kernel_size=1),
    "relu_no_bias": dict(kernel_size=3, activation="relu", use_bias=False),
    "gelu_stride_2": dict(kernel_size=3, stride=2, padding="same", activation="gelu"),
}
POOL_CASES = {
    "default": dict(),
    "3_stride_2_same": dict(pool_size=3, stride=2, padding="same"),
    "3_stride_1_pad_1": dict(pool_size=3, stride=1, padding=1),
    "2x3_stride_1x2": dict(pool_size=(2, 3), stride=(1, 2)),
    "2_stride_2_same": dict(pool_size=2, padding="same"),
    "3_pad_1_0": dict(pool_size=3, stride=2, padding=(1, 0)),
}
for case, kwargs in CONV_CASES.items():
    LAYER_CASES[f"conv_{case}"] = (lambda kwargs=kwargs: [snn.Conv2D(4, **kwargs)], IMAGE)
for case, kwargs in POOL_CASES.items():
    LAYER_CASES[f"max_pool_{case}"] = (lambda kwargs=kwargs: [snn.MaxPool2D(**kwargs)], IMAGE)
    for include in (True, False):
        LAYER_CASES[f"avg_pool_{case}_{'with' if include else 'without'}_pad"] = (
            lambda kwargs=kwargs, include=include: [snn.AvgPool2D(**kwargs, count_include_pad=include)],
            IMAGE)


def test_every_registered_layer_has_a_case():
    covered = {type(layer).__name__ for make, _ in LAYER_CASES.values() for layer in make()}
    builtin = {name for name, cls in snn.layers.LAYERS.items() if cls.__module__.startswith("scratchnn.layers")}
    assert covered == builtin


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_each_layer_matches_onnx_runtime(case, dtype):
    make, input_shape = LAYER_CASES[case]
    check_outputs(built(make(), input_shape, dtype))


# -- probabilities and labels ------------------------------------------------------

def check_probabilities(model):
    onnx_model = to_onnx(model, probabilities=True)
    onnx.checker.check_model(onnx_model, full_check=True)
    s = session(onnx_model)
    assert [o.name for o in s.get_outputs()] == ["output", "label"]
    for n in BATCHES:
        X = inputs(model, n)
        proba, label = s.run(None, {"input": X})
        assert_close(proba, model.predict_proba(X), model.dtype.name)
        expected = model.predict(X)
        if expected.dtype.kind == "U":
            expected = expected.astype(object)
        assert label.shape == expected.shape
        np.testing.assert_array_equal(label, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("classes", [None, [3, 1, 7], ["cat", "dog", "émeu"], [0.5, 1.5, 2.5]])
def test_cross_entropy_probabilities_and_labels(classes, dtype):
    model = built([snn.Dense(8, activation="tanh"), snn.Dense(3)], FLAT, dtype, "cross_entropy")
    model.classes = None if classes is None else np.asarray(classes)
    check_probabilities(model)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("classes", [None, ["no", "yes"], [False, True]])
def test_binary_cross_entropy_probabilities_and_labels(classes, dtype):
    model = built([snn.Dense(8, activation="relu"), snn.Dense(1)], FLAT, dtype, "binary_cross_entropy")
    model.classes = classes
    check_probabilities(model)


def test_binary_cross_entropy_with_several_outputs_labels_each():
    model = built([snn.Dense(3)], FLAT, "float32", "binary_cross_entropy")
    model.classes = ["off", "on"]
    check_probabilities(model)


def test_probabilities_of_images_classified_per_pixel():
    model = built([snn.Conv2D(4, 3, padding="same")], IMAGE, "float64", "cross_entropy")
    check_probabilities(model)


def test_probabilities_need_a_classification_loss():
    for loss in (None, "mse"):
        model = built([snn.Dense(2)], FLAT, "float32", loss)
        with pytest.raises(ValueError, match="probabilities=True needs a model compiled with CrossEntropy"):
            to_onnx(model, probabilities=True)
        check_outputs(model)        # the raw outputs export


# -- whole networks -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xor_network(dtype):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([0, 1, 1, 0])
    model = snn.Sequential([snn.Dense(4, activation="tanh"), snn.Dense(1)], seed=0, dtype=dtype)
    model.fit(X, y, loss="binary_cross_entropy", optimizer=snn.Adam(0.05), epochs=300, batch_size=4)
    s = session(to_onnx(model, probabilities=True))
    proba, label = s.run(None, {"input": X})
    assert_close(proba, model.predict_proba(X), dtype)
    np.testing.assert_array_equal(label, model.predict(X))
    check_outputs(model)


@pytest.fixture(scope="module")
def fashion_test_images():
    try:
        _, _, X_test, y_test = snn.datasets.load_fashion_mnist(images=True, download=False)
    except snn.datasets.DatasetNotFoundError:
        return None
    return X_test[:1000]


def fashion_mlp(dtype):
    return built([snn.Flatten(), snn.Dense(128, activation="relu"), snn.Dropout(0.2), snn.Dense(10)],
                 (28, 28, 1), dtype, "cross_entropy")


def fashion_cnn(dtype):
    return built([snn.Conv2D(32, 3, activation="relu"), snn.MaxPool2D(), snn.Conv2D(64, 3, activation="relu"),
                  snn.MaxPool2D(), snn.Flatten(), snn.Dropout(0.5), snn.Dense(10)], (28, 28, 1), dtype,
                 "cross_entropy")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("network", [fashion_mlp, fashion_cnn])
def test_fashion_mnist_shaped_networks(network, dtype):
    model = network(dtype)
    model.params *= 0.2                   # logits of a sensible size
    model.classes = list(snn.datasets.CLASS_NAMES)
    check_outputs(model)
    check_probabilities(model)


@pytest.mark.parametrize("network", [fashion_mlp, fashion_cnn])
def test_fashion_mnist_real_images(network, fashion_test_images):
    if fashion_test_images is None:
        pytest.skip("Fashion-MNIST files not installed")
    model = network("float32")
    model.params *= 0.2
    X = fashion_test_images.astype(np.float32)
    proba, label = session(to_onnx(model, probabilities=True)).run(None, {"input": X})
    assert_close(proba, model.predict_proba(X), "float32")
    np.testing.assert_array_equal(label, model.predict(X))


# -- the file, the graph, the errors ------------------------------------------------

def test_export_writes_a_checked_file_with_metadata(tmp_path):
    model = built([snn.Conv2D(2, 3), snn.Flatten(), snn.Dense(3)], IMAGE, "float32", "cross_entropy")
    model.classes = ["a", "b", "c"]
    path = str(tmp_path / "model.onnx")
    assert snn.export_onnx(model, path, probabilities=True) == path
    loaded = onnx.load(path)
    onnx.checker.check_model(loaded, full_check=True)
    props = {p.key: p.value for p in loaded.metadata_props}
    assert props["scratchnn_version"] == snn.__version__
    assert props["input_layout"] == "NHWC"
    assert props["loss"] == "CrossEntropy"
    assert json.loads(props["classes"]) == ["a", "b", "c"]
    assert loaded.producer_name == "scratchnn"
    assert loaded.opset_import[0].version == 17
    graph_input = loaded.graph.input[0]
    assert graph_input.name == "input"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(IMAGE)
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    X = inputs(model, 5)
    assert_close(s.run(["output"], {"input": X})[0], model.predict_proba(X), "float32")
    assert [f for f in os.listdir(tmp_path)] == ["model.onnx"]     # no temporary left
    flat = built([snn.Dense(2)], FLAT, "float64")
    props = {p.key: p.value for p in to_onnx(flat).metadata_props}
    assert props["input_layout"] == "features" and "classes" not in props
    assert to_onnx(flat).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_export_refuses_an_existing_file_unless_overwrite(tmp_path):
    model = built([snn.Dense(2)], FLAT, "float32")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"model\.onnx exists; pass overwrite=True"):
        export_onnx(model, path)
    assert path.read_bytes() == b"keep me"
    assert export_onnx(model, path, overwrite=True) == str(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


class MyLayer(snn.Layer):
    def forward(self, x, training=False):
        return 2 * x


class MyReLU(snn.ReLU):
    """A subclass may compute anything: no ONNX form either."""


@pytest.mark.parametrize("cls", [MyLayer, MyReLU])
def test_a_layer_without_onnx_form_is_an_error_naming_it(cls, tmp_path):
    model = snn.Sequential([snn.Dense(3), cls(name="my_0")], input_shape=FLAT)
    with pytest.raises(ValueError, match=rf"layer 'my_0' \({cls.__name__}\) has no ONNX form"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_unbuilt_model_and_a_bad_opset_are_errors():
    with pytest.raises(RuntimeError, match="not built yet"):
        to_onnx(snn.Sequential([snn.Dense(2)]))
    model = built([snn.Dense(2)], FLAT, "float32")
    for opset in (16, 10 ** 6, "17", 17.0):
        with pytest.raises(ValueError, match="opset must be an integer from 17"):
            to_onnx(model, opset=opset)


@pytest.mark.parametrize("opset", [18, 21])
def test_newer_opsets(opset):
    model = built([snn.Conv2D(3, 3, padding="same"), snn.LayerNormalization(axis=(1, 2)),
                   snn.GlobalAveragePooling2D(), snn.Dense(2)], IMAGE, "float64")
    onnx_model = to_onnx(model, opset=opset)
    assert onnx_model.opset_import[0].version == opset
    check_outputs(model, onnx_model)


def test_import_scratchnn_does_not_import_onnx():
    code = ("import sys, scratchnn; assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules; "
            "assert callable(scratchnn.export_onnx)")
    subprocess.run([sys.executable, "-c", code], check=True)
