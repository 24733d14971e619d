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
