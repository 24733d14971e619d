"""Export a built ``Sequential`` model to ONNX, to serve it with ONNX Runtime (C++, C#,
Java, JavaScript, GPUs) without scratchnn. Needs the ``onnx`` extra
(``pip install scratchnn[onnx]``); ``import scratchnn`` never imports it.

    path = scratchnn.onnx.export_onnx(model, "model.onnx", probabilities=True)
    session = onnxruntime.InferenceSession(path)
    proba, labels = session.run(None, {"input": X})

The graph, built with ``onnx.helper``:

- input ``"input"``: ``(batch, *model.input_shape)`` in the model's dtype (float32 or
  float64), the batch dimension dynamic. Images are channels last ``(N, H, W, C)``, as
  scratchnn takes them (metadata ``input_layout`` ``"NHWC"``; ``"features"`` otherwise).
- output ``"output"``: the raw outputs (logits), what ``model.output(X)`` returns; with
  ``probabilities=True`` softmax (``CrossEntropy``) or sigmoid (``BinaryCrossEntropy``)
  of them, what ``predict_proba`` returns.
- with ``probabilities=True``, a second output ``"label"``: what ``predict`` returns
  (the labels of ``model.classes`` when it is set, else class indices as int64).
- metadata: ``scratchnn_version``, ``input_layout``, ``loss``, ``classes`` (JSON).

Layers (the exact classes; a subclass or a layer of one's own has no ONNX form and is an
error naming it): Dense and Conv2D (with their ``activation=``), every activation,
Dropout, RandomFlip and RandomTranslation (the identity at inference), Flatten, Reshape,
MaxPool2D, AvgPool2D, GlobalAveragePooling2D, BatchNormalization (running statistics
folded into a scale and shift, computed as scratchnn computes them) and
LayerNormalization (any axes).

Layout: ONNX's Conv and pooling are channels first. In float32, a Transpose to NCHW
goes before the first of them, and one back to NHWC only where a layer needs
scratchnn's layout (Flatten, Reshape, Dense, LayerNormalization, the outputs), so that
Flatten reads (H, W, C) order. ONNX Runtime has no float64 Conv or AveragePool on CPU,
so in float64 these two are written with Pad, Slice, Concat and MatMul in channels-last
layout, as scratchnn computes them (im2col).

Activations are written with the ONNX ops that compute what scratchnn computes:
LeakyReLU as ``Where(x > 0, x, alpha x)`` (the LeakyRelu op's float32 alpha would be
off in float64), ELU with ``expm1(m) = tanh(m/2) (exp(m) + 1)`` (accurate near 0, where
``exp(m) - 1`` is not), GELU in its tanh form from Tanh, Mul and Add (scratchnn's GELU
is PyTorch's ``approximate="tanh"``; there is no erf in it).

Opset: 17 (default) up to the newest that the installed ``onnx`` knows.

The scikit-learn estimators (``scratchnn.sklearn``) export too, with the outputs skl2onnx
gives scikit-learn's own (``estimator_to_onnx``; ``to_onnx`` and ``export_onnx`` take them):
a classifier's ``"label"`` and ``"probabilities"``, a regressor's ``"variable"``, for rows
``(batch, n_features)``. A ``Pipeline`` ending in one exports with its other steps, which
skl2onnx converts (``pip install 'scratchnn[onnx-sklearn]'``): StandardScaler, MinMaxScaler,
PCA and the other transformers skl2onnx supports; a step it cannot convert (a
FunctionTransformer, say) is an error naming the steps. scratchnn writes no converter for
scikit-learn's transformers.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional

import numpy as np
import onnx
import onnx.version_converter
from onnx import TensorProto, helper, numpy_helper

from . import io as _io
from .layers import (ELU, GELU, AvgPool2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                     GlobalAveragePooling2D, Identity, LayerNormalization, LeakyReLU, MaxPool2D,
                     RandomFlip, RandomTranslation, ReLU, Reshape, Sigmoid, Softmax, Tanh)
from .layers.conv import kernel_to_torch, window_slices
from .losses import BinaryCrossEntropy, CrossEntropy

#: the default opset, and the oldest accepted (LayerNormalization and today's Softmax
#: semantics are in it)
DEFAULT_OPSET = 17

_ELEMENT_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


class _Graph:
    """The nodes and constants of the graph being built, with unique tensor names.

    A tensor travels as ``(name, nchw)``: ``nchw`` is true for an image batch that was
    transposed to channels first for ONNX's Conv and pooling."""

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        self.dtype, self.opset = dtype, opset
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value, dtype=None) -> str:
        """A constant tensor: floats in the model's dtype unless ``dtype`` says otherwise."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, hint: str, values) -> str:
        return self.const(hint, list(values), np.int64)

    def op(self, op_type: str, inputs: list, hint: str, **attributes) -> str:
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attributes))
        return out

    def nhwc(self, x: str, nchw: bool, hint: str) -> str:
        return self.op("Transpose", [x], f"{hint}_to_nhwc", perm=_TO_NHWC) if nchw else x

    def nchw(self, x: str, nchw: bool, hint: str) -> str:
        return x if nchw else self.op("Transpose", [x], f"{hint}_to_nchw", perm=_TO_NCHW)

    def reduce_mean(self, x: str, axes, hint: str) -> str:
        """ReduceMean keeping the axes: ``axes`` an attribute up to opset 17, an input from 18."""
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.ints(f"{hint}_axes", axes)], hint, keepdims=1)
        return self.op("ReduceMean", [x], hint, axes=list(axes), keepdims=1)


# -- layers ------------------------------------------------------------------
# Each converter takes (graph, layer, x, nchw, hint) and returns (y, nchw).

def _passthrough(g, layer, x, nchw, hint):
    return x, nchw


def _unary(op_type: str) -> Callable:
    def convert(g, layer, x, nchw, hint):
        return g.op(op_type, [x], hint), nchw
    return convert


def _leaky_relu(g, layer, x, nchw, hint):
    # y = where(x > 0, x, alpha x), alpha in the model's dtype
    positive = g.op("Greater", [x, g.const(f"{hint}_zero", 0)], f"{hint}_positive")
    scaled = g.op("Mul", [x, g.const(f"{hint}_alpha", layer.alpha)], f"{hint}_scaled")
    return g.op("Where", [positive, x, scaled], hint), nchw


def _elu(g, layer, x, nchw, hint):
    # y = where(x > 0, x, alpha expm1(min(x, 0))), expm1(m) = tanh(m/2) (exp(m) + 1)
    zero = g.const(f"{hint}_zero", 0)
    m = g.op("Min", [x, zero], f"{hint}_min")
    half = g.op("Tanh", [g.op("Mul", [m, g.const(f"{hint}_half", 0.5)], f"{hint}_halved")], f"{hint}_tanh")
    exp_plus_1 = g.op("Add", [g.op("Exp", [m], f"{hint}_exp"), g.const(f"{hint}_one", 1)], f"{hint}_exp1")
    expm1 = g.op("Mul", [half, exp_plus_1], f"{hint}_expm1")
    negative = g.op("Mul", [g.const(f"{hint}_alpha", layer.alpha), expm1], f"{hint}_negative")
    positive = g.op("Greater", [x, zero], f"{hint}_positive")
    return g.op("Where", [positive, x, negative], hint), nchw


def _gelu(g, layer, x, nchw, hint):
    # As GELU.forward: xc = clip(x, -10, 10), t = tanh(c (xc + k xc^3)), y = 0.5 x (1 + t)
    from .layers.activations import _GELU_C, _GELU_K
    xc = g.op("Clip", [x, g.const(f"{hint}_low", -10), g.const(f"{hint}_high", 10)], f"{hint}_clip")
    cube = g.op("Mul", [g.op("Mul", [xc, xc], f"{hint}_square"), xc], f"{hint}_cube")
    inner = g.op("Add", [xc, g.op("Mul", [g.const(f"{hint}_k", _GELU_K), cube], f"{hint}_kx3")], f"{hint}_inner")
    t = g.op("Tanh", [g.op("Mul", [g.const(f"{hint}_c", _GELU_C), inner], f"{hint}_u")], f"{hint}_t")
    half_x = g.op("Mul", [g.const(f"{hint}_half", 0.5), x], f"{hint}_half_x")
    one_plus_t = g.op("Add", [g.const(f"{hint}_one", 1), t], f"{hint}_1t")
    return g.op("Mul", [half_x, one_plus_t], hint), nchw


def _softmax(g, layer, x, nchw, hint):
    # scratchnn's last axis is the channels: axis 1 of a channels-first batch
    return g.op("Softmax", [x], hint, axis=1 if nchw else -1), nchw


def _activation_after(g, layer, y, nchw, hint):
    """The ``activation=`` of Dense and Conv2D, fused after the affine map."""
    if layer._activation is None:
        return y, nchw
    activation = layer._activation
    return _CONVERTERS[type(activation)](g, activation, y, nchw, f"{hint}_{layer.activation}")


def _dense(g, layer, x, nchw, hint):
    # y = x W + b: samples are 1-D, so never channels first here
    y = g.op("MatMul", [x, g.const(f"{hint}_W", layer.W)], f"{hint}_matmul")
    if layer.use_bias:
        y = g.op("Add", [y, g.const(f"{hint}_b", layer.b)], f"{hint}_add")
    return _activation_after(g, layer, y, False, hint)


def _padded_nhwc(g, x, layer, hint, fill: float = 0.0):
    """``x`` (N, H, W, C) with the layer's zeros around its spatial axes (Pad)."""
    (top, left), (bottom, right) = layer._before, layer._after
    if not (top or left or bottom or right):
        return x
    pads = g.ints(f"{hint}_pads", [0, top, left, 0, 0, bottom, right, 0])
    return g.op("Pad", [x, pads, g.const(f"{hint}_fill", fill)], f"{hint}_pad", mode="constant")


def _window_views(g, xp, kernel, stride, dilation, out, hint):
    """For each kernel position, the (N, Ho, Wo, C) slice of the padded image that it
    reads (``scratchnn.layers.conv.window_slices``), as Slice nodes."""
    views = []
    for (p, q), rows, cols in window_slices(kernel, stride, dilation, out):
        starts = g.ints(f"{hint}_starts", [rows.start, cols.start])
        ends = g.ints(f"{hint}_ends", [rows.stop, cols.stop])
        views.append(g.op("Slice", [xp, starts, ends, g.ints(f"{hint}_axes", [1, 2]),
                                    g.ints(f"{hint}_steps", [rows.step, cols.step])], f"{hint}_{p}_{q}"))
    return views


def _native_spatial(g) -> bool:
    """Whether ONNX Runtime has Conv and AveragePool for the model's dtype (float32 only)."""
    return g.dtype == np.float32


def _spatial_attributes(layer, kernel) -> dict:
    (top, left), (bottom, right) = layer._before, layer._after
    return {"kernel_shape": list(kernel), "strides": list(layer.stride),
            "pads": [top, left, bottom, right]}


def _conv2d(g, layer, x, nchw, hint):
    if _native_spatial(g):
        x = g.nchw(x, nchw, hint)
        inputs = [x, g.const(f"{hint}_W", kernel_to_torch(layer.W))]
        if layer.use_bias:
            inputs.append(g.const(f"{hint}_b", layer.b))
        y = g.op("Conv", inputs, hint, dilations=list(layer.dilation),
                 **_spatial_attributes(layer, layer.kernel_size))
        return _activation_after(g, layer, y, True, hint)
    # im2col, channels last: the patches (N, Ho, Wo, kh*kw*C) times W as (kh*kw*C, F)
    x = g.nhwc(x, nchw, hint)
    xp = _padded_nhwc(g, x, layer, hint)
    views = _window_views(g, xp, layer.kernel_size, layer.stride, layer.dilation, layer._out, hint)
    patches = g.op("Concat", views, f"{hint}_patches", axis=-1) if len(views) > 1 else views[0]
    kernel = layer.W.reshape(-1, layer.filters)
    y = g.op("MatMul", [patches, g.const(f"{hint}_W", kernel)], f"{hint}_matmul")
    if layer.use_bias:
        y = g.op("Add", [y, g.const(f"{hint}_b", layer.b)], f"{hint}_add")
    return _activation_after(g, layer, y, False, hint)


def _max_pool2d(g, layer, x, nchw, hint):
    # ONNX's MaxPool ignores its padding, as scratchnn's -inf padding does
    x = g.nchw(x, nchw, hint)
    return g.op("MaxPool", [x], hint, **_spatial_attributes(layer, layer.pool_size)), True


def _avg_pool2d(g, layer, x, nchw, hint):
    if _native_spatial(g):
        x = g.nchw(x, nchw, hint)
        return g.op("AveragePool", [x], hint, count_include_pad=int(layer.count_include_pad),
                    **_spatial_attributes(layer, layer.pool_size)), True
    # As AvgPool2D.forward: the sum of the window's slices, times 1 / count
    x = g.nhwc(x, nchw, hint)
    xp = _padded_nhwc(g, x, layer, hint)
    views = _window_views(g, xp, layer.pool_size, layer.stride, (1, 1), layer._out, hint)
    total = views[0]
    for view in views[1:]:
        total = g.op("Add", [total, view], f"{hint}_sum")
    scale = (1 / layer._count).astype(g.dtype)
    return g.op("Mul", [total, g.const(f"{hint}_scale", scale)], hint), False


def _global_average_pooling2d(g, layer, x, nchw, hint):
    # The mean over the spatial axes, then (N, C); ReduceMean runs in float32 and float64
    mean = g.reduce_mean(x, [2, 3] if nchw else [1, 2], f"{hint}_mean")
    return g.op("Flatten", [mean], hint, axis=1), False


def _flatten(g, layer, x, nchw, hint):
    # scratchnn flattens in (H, W, C) order: back to channels last first
    return g.op("Flatten", [g.nhwc(x, nchw, hint)], hint, axis=1), False


def _reshape(g, layer, x, nchw, hint):
    shape = g.ints(f"{hint}_shape", [0, *layer._target])      # 0: keep the batch size
    return g.op("Reshape", [g.nhwc(x, nchw, hint), shape], hint), False


def _batch_normalization(g, layer, x, nchw, hint):
    # As BatchNormalization.forward at inference: y = x * factor + shift over the last
    # axis (the channels; axis 1 of a channels-first batch), both computed here in the
    # model's dtype exactly as scratchnn computes them.
    inv_std = 1 / np.sqrt(layer.running_var + layer.eps)
    factor = layer.gamma * inv_std if layer.scale else inv_std
    shift = -layer.running_mean * factor
    if layer.center:
        shift += layer.beta
    if nchw:
        factor, shift = factor.reshape(-1, 1, 1), shift.reshape(-1, 1, 1)
    y = g.op("Mul", [x, g.const(f"{hint}_factor", factor)], f"{hint}_scaled")
    return g.op("Add", [y, g.const(f"{hint}_shift", shift)], hint), nchw


def _layer_normalization(g, layer, x, nchw, hint):
    # As LayerNormalization.forward, over its axes of the channels-last batch:
    # xhat = (x - mean) / sqrt(mean((x - mean)^2) + eps),  y = gamma xhat + beta
    x = g.nhwc(x, nchw, hint)
    axes = list(layer._axes)
    centered = g.op("Sub", [x, g.reduce_mean(x, axes, f"{hint}_mean")], f"{hint}_centered")
    var = g.reduce_mean(g.op("Mul", [centered, centered], f"{hint}_squares"), axes, f"{hint}_var")
    std = g.op("Sqrt", [g.op("Add", [var, g.const(f"{hint}_eps", layer.eps)], f"{hint}_var_eps")], f"{hint}_std")
    inv_std = g.op("Div", [g.const(f"{hint}_one", 1), std], f"{hint}_inv_std")
    y = g.op("Mul", [centered, inv_std], f"{hint}_xhat")
    if layer.scale:
        y = g.op("Mul", [y, g.const(f"{hint}_gamma", layer.gamma.reshape(layer._broadcast_shape))], f"{hint}_scaled")
    if layer.center:
        y = g.op("Add", [y, g.const(f"{hint}_beta", layer.beta.reshape(layer._broadcast_shape))], f"{hint}_shifted")
    return y, False


#: the exact layer class -> its converter (a subclass may compute something else)
_CONVERTERS: dict[type, Callable] = {
    Identity: _passthrough, Dropout: _passthrough, RandomFlip: _passthrough,
    RandomTranslation: _passthrough,
    Sigmoid: _unary("Sigmoid"), Tanh: _unary("Tanh"), ReLU: _unary("Relu"),
    LeakyReLU: _leaky_relu, ELU: _elu, GELU: _gelu, Softmax: _softmax,
    Dense: _dense, Conv2D: _conv2d, MaxPool2D: _max_pool2d, AvgPool2D: _avg_pool2d,
    GlobalAveragePooling2D: _global_average_pooling2d, Flatten: _flatten, Reshape: _reshape,
    BatchNormalization: _batch_normalization, LayerNormalization: _layer_normalization,
}


def _unsupported(layer) -> Optional[str]:
    """Why ``layer`` cannot be exported, or None."""
    if type(layer) not in _CONVERTERS:
        return (f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX form; the exporter "
                f"knows {', '.join(sorted(c.__name__ for c in _CONVERTERS))} (exact classes, "
                "not subclasses)")
    activation = getattr(layer, "_activation", None)
    if activation is not None and type(activation) not in _CONVERTERS:
        return (f"layer {layer.name!r} ({type(layer).__name__}): its activation "
                f"{type(activation).__name__} has no ONNX form")
    return None


# -- the model ------------------------------------------------------------------

def _check_opset(opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if not (isinstance(opset, int) and not isinstance(opset, bool) and DEFAULT_OPSET <= opset <= newest):
        raise ValueError(f"opset must be an integer from {DEFAULT_OPSET} to {newest} (the newest "
                         f"that onnx {onnx.__version__} knows), got {opset!r}")
    return opset


def _classes_tensor(g, classes: list) -> str:
    """The labels as a constant: int64, float64, bool or string, as they are."""
    name = g.fresh("classes")
    first = classes[0]
    if isinstance(first, str):
        tensor = helper.make_tensor(name, TensorProto.STRING, [len(classes)],
                                    [c.encode("utf-8") for c in classes])
    else:
        dtype = np.bool_ if isinstance(first, bool) else np.int64 if isinstance(first, int) else np.float64
        tensor = numpy_helper.from_array(np.asarray(classes, dtype=dtype), name)
    g.initializers.append(tensor)
    return name


def to_onnx(model, probabilities: bool = False, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX model of a built ``Sequential`` (see the module's docstring).

    Raises:
        RuntimeError: the model is not built.
        ValueError: a layer has no ONNX form (naming it); ``probabilities=True`` without
            a classification loss; an opset out of range.
    """
    from . import __version__
    if _is_estimator(model):          # a scikit-learn estimator: its own outputs, as skl2onnx's
        if not isinstance(probabilities, bool):
            raise TypeError(f"probabilities must be True or False, got {probabilities!r}")
        return estimator_to_onnx(model, opset)
    from .model import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"to_onnx exports a scratchnn Sequential, a fitted NeuralNetClassifier or "
                        f"NeuralNetRegressor, or a Pipeline ending in one; got {type(model).__name__}")
    if not getattr(model, "built", False):
        raise RuntimeError("the model is not built yet: call build(input_shape), or fit or load "
                           "it, before exporting it to ONNX")
    opset = _check_opset(opset)
    if not isinstance(probabilities, bool):
        raise TypeError(f"probabilities must be True or False, got {probabilities!r}")
    for layer in model.layers:
        reason = _unsupported(layer)
        if reason:
            raise ValueError(reason)
    loss = model.loss
    if probabilities and not isinstance(loss, (CrossEntropy, BinaryCrossEntropy)):
        what = "no loss" if loss is None else f"the regression loss {type(loss).__name__}"
        raise ValueError(f"probabilities=True needs a model compiled with CrossEntropy or "
                         f"BinaryCrossEntropy; this one has {what} (export its raw outputs "
                         "with probabilities=False)")

    dtype = np.dtype(model.dtype)
    g = _Graph(dtype, opset)
    x, nchw = "input", False
    for index, layer in enumerate(model.layers):
        x, nchw = _CONVERTERS[type(layer)](g, layer, x, nchw, f"{index}_{layer.name}")
    logits = g.nhwc(x, nchw, "logits")

    element = _ELEMENT_TYPES[dtype]
    out_shape = ["batch", *model.output_shape]
    outputs = [helper.make_tensor_value_info("output", element, out_shape)]
    if not probabilities:
        g.nodes.append(helper.make_node("Identity", [logits], ["output"], name="output"))
    else:
        op_type = "Softmax" if isinstance(loss, CrossEntropy) else "Sigmoid"
        attributes = {"axis": -1} if op_type == "Softmax" else {}
        g.nodes.append(helper.make_node(op_type, [logits], ["output"], name="output", **attributes))
        # the labels, as predict gives them: from the logits, as the loss's predicted_labels
        if isinstance(loss, CrossEntropy):
            index = g.op("ArgMax", [logits], "class_index", axis=-1, keepdims=0)
            label_shape = out_shape[:-1]
        else:
            positive = g.op("Greater", [logits, g.const("zero", 0)], "positive")
            index = g.op("Cast", [positive], "class_index", to=TensorProto.INT64)
            label_shape = out_shape
            if model.output_shape[-1] == 1:
                index = g.op("Squeeze", [index, g.ints("last_axis", [-1])], "class_index")
                label_shape = out_shape[:-1]
        classes = _io.check_classes(model.classes, model, "model.classes")
        if classes is None:
            g.nodes.append(helper.make_node("Identity", [index], ["label"], name="label"))
            label_type = TensorProto.INT64
        else:
            g.nodes.append(helper.make_node("Gather", [_classes_tensor(g, classes), index], ["label"],
                                            name="label", axis=0))
            label_type = g.initializers[-1].data_type
        outputs.append(helper.make_tensor_value_info("label", label_type, label_shape))

    graph = helper.make_graph(
        g.nodes, model.name or "scratchnn", [helper.make_tensor_value_info(
            "input", element, ["batch", *model.input_shape])], outputs, g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(graph, producer_name="scratchnn", producer_version=__version__,
                                   opset_imports=opsets,
                                   ir_version=helper.find_min_ir_version_for(opsets))
    onnx_model.doc_string = (f"scratchnn {__version__} Sequential {model.name!r}: "
                             + ("probabilities and labels" if probabilities else "raw outputs"))
    props = {"scratchnn_version": __version__,
             "input_layout": "NHWC" if len(model.input_shape) == 3 else "features",
             "loss": "none" if loss is None else type(loss).__name__,
             "outputs": "probabilities" if probabilities else "raw"}
    if model.classes is not None:
        props["classes"] = json.dumps(_io.check_classes(model.classes, model, "model.classes"))
    helper.set_model_props(onnx_model, props)
    return onnx_model


# ------------------------------------------------------ scikit-learn estimators
def _is_estimator(model) -> bool:
    """A NeuralNetClassifier/NeuralNetRegressor, or a Pipeline ending in one (checked by
    name, so that this module never imports scikit-learn itself)."""
    steps = getattr(model, "steps", None) if type(model).__name__ == "Pipeline" else None
    final = steps[-1][1] if steps else model
    return type(final).__name__ in ("NeuralNetClassifier", "NeuralNetRegressor")


def estimator_to_onnx(estimator, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX model of a fitted ``NeuralNetClassifier`` or ``NeuralNetRegressor``, or of a
    scikit-learn ``Pipeline`` ending in one whose other steps skl2onnx converts (``pip
    install skl2onnx``; its converters, not ours, write those steps).

    Input ``"input"``: rows ``(batch, n_features)`` in the estimator's dtype, as ``predict``
    takes them (reshaped inside the graph to ``input_shape`` for an image model). Outputs,
    as skl2onnx writes a scikit-learn classifier's: ``"label"`` (what ``predict`` returns)
    and ``"probabilities"`` (``predict_proba``: ``(batch, n_classes)``, two columns for a
    binary classifier); a regressor's one output ``"variable"`` (``predict``: ``(batch,)``
    for one target).
    """
    pipeline = type(estimator).__name__ == "Pipeline"
    final = estimator.steps[-1][1] if pipeline else estimator
    if not hasattr(final, "model_"):
        raise RuntimeError(f"the {type(final).__name__} is not fitted yet: fit it before exporting it")
    net = final.model_
    classifier = type(final).__name__ == "NeuralNetClassifier"
    core = to_onnx(net, probabilities=classifier, opset=opset)
    label_type = core.graph.output[1].type.tensor_type.elem_type if classifier else None
    core = onnx.compose.add_prefix(core, "nn_")        # its tensors: nn_input ... nn_output
    dtype = np.dtype(net.dtype)
    element = _ELEMENT_TYPES[dtype]
    n_features = int(final.n_features_in_)
    g = _Graph(dtype, _check_opset(opset))
    # before the network: rows as predict takes them, reshaped for an image model
    if tuple(net.input_shape) != (n_features,):
        g.nodes.append(helper.make_node("Reshape", ["input", g.ints("image_shape", [-1, *net.input_shape])],
                                        ["nn_input"], name="image_shape"))
    else:
        g.nodes.append(helper.make_node("Identity", ["input"], ["nn_input"], name="rows"))
    head = g.nodes[:]
    g.nodes.clear()
    # after it: what predict and predict_proba return
    if classifier:
        proba = "nn_output"
        if not final._multilabel and len(final.classes_) == 2:      # [1 - p, p]
            proba = g.op("Concat", [g.op("Sub", [g.const("one", 1), proba], "negative"), proba],
                         "two_columns", axis=1)
        g.nodes.append(helper.make_node("Identity", ["nn_label"], ["label"], name="label"))
        g.nodes.append(helper.make_node("Identity", [proba], ["probabilities"], name="probabilities"))
        label_shape = ["batch", len(final.classes_)] if final._multilabel else ["batch"]
        outputs = [helper.make_tensor_value_info("label", label_type, label_shape),
                   helper.make_tensor_value_info("probabilities", element, ["batch", len(final.classes_)])]
    else:
        y = "nn_output"
        shape = ["batch"] if final._single_output else ["batch", net.output_shape[-1]]
        if final._single_output:
            y = g.op("Reshape", [y, g.ints("flat", [-1])], "flat")
        g.nodes.append(helper.make_node("Identity", [y], ["variable"], name="variable"))
        outputs = [helper.make_tensor_value_info("variable", element, shape)]
    graph = helper.make_graph(head + list(core.graph.node) + g.nodes, f"{type(final).__name__}",
                              [helper.make_tensor_value_info("input", element, ["batch", n_features])],
                              outputs, g.initializers + list(core.graph.initializer))
    merged = helper.make_model(graph, opset_imports=list(core.opset_import), ir_version=core.ir_version,
                               producer_name="scratchnn", producer_version=core.producer_version)
    if pipeline and len(estimator.steps) > 1:
        merged = _with_preprocessing(estimator, merged, n_features, dtype, opset)
    props = {p.key: p.value for p in core.metadata_props}
    helper.set_model_props(merged, {**props, "input_layout": "features",
                                    "estimator": type(final).__name__,
                                    "pipeline": json.dumps([n for n, _ in estimator.steps]) if pipeline else "none"})
    return merged


def _with_preprocessing(pipeline, model: onnx.ModelProto, n_features: int,
                        dtype: np.dtype, opset: int) -> onnx.ModelProto:
    """``model`` after the pipeline's other steps, converted by skl2onnx."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
        from sklearn.pipeline import Pipeline
    except ImportError:
        raise ImportError("exporting a Pipeline's preprocessing needs skl2onnx: "
                          "pip install skl2onnx") from None
    tensor = DoubleTensorType if dtype == np.float64 else FloatTensorType
    steps = Pipeline(pipeline.steps[:-1])
    n_in = getattr(pipeline, "n_features_in_", n_features)
    try:
        pre = convert_sklearn(steps, initial_types=[("input", tensor([None, n_in]))],
                              target_opset={"": opset, "ai.onnx.ml": 3})
    except Exception as error:            # skl2onnx's errors have no common base class
        names = [name for name, _ in pipeline.steps[:-1]]
        raise ValueError(f"skl2onnx cannot convert the pipeline's steps {names}: "
                         f"{type(error).__name__}: {str(error)[:300]}") from None
    # skl2onnx writes the lowest opset its converters need (13, 14): brought to the network's,
    # which merge_models requires, by onnx's version converter (which adapts any op whose
    # definition changed between the two)
    domain_opset = {o.domain: o.version for o in pre.opset_import}
    if domain_opset.get("", opset) != opset:
        try:
            pre = onnx.version_converter.convert_version(pre, opset)
        except Exception as error:        # the converter's errors have no common base class
            raise ValueError(f"the pipeline's preprocessing (ONNX opset {domain_opset['']}) cannot "
                             f"be brought to opset {opset}: {type(error).__name__}: "
                             f"{str(error)[:200]}") from None
    pre = onnx.compose.add_prefix(pre, "pre_", rename_inputs=False)
    for entry in list(model.opset_import):
        if not any(o.domain == entry.domain for o in pre.opset_import):
            pre.opset_import.append(entry)
    for entry in list(pre.opset_import):
        if not any(o.domain == entry.domain for o in model.opset_import):
            model.opset_import.append(entry)
    model.ir_version = pre.ir_version = max(model.ir_version, pre.ir_version)
    # the network's input becomes an inner edge fed by the preprocessing's output
    model = onnx.compose.add_prefix(model, "est_", rename_outputs=False)
    return onnx.compose.merge_models(pre, model, io_map=[(pre.graph.output[0].name, "est_input")])


def export_onnx(model, path, *, probabilities: bool = False, opset: int = DEFAULT_OPSET,
                overwrite: bool = False) -> str:
    """Write ``to_onnx(model, probabilities, opset)`` to ``path``, checked with
    ``onnx.checker.check_model(full_check=True)``; returns the path written.

    The file is written beside ``path`` and renamed onto it (as ``scratchnn.save``):
    readers never see a part. An existing ``path`` is refused unless ``overwrite=True``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        and what ``to_onnx`` raises.
    """
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    # checked before any work: a file name in an existing writable directory, not a directory
    path = _io._save_target(path, suffix=None)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    onnx_model = to_onnx(model, probabilities=probabilities, opset=opset)
    onnx.checker.check_model(onnx_model, full_check=True)
    data = onnx_model.SerializeToString()
    mode = _io._file_mode(path)
    with _io.temporary_file_for(path) as (descriptor, tmp):
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    _io._fsync_directory(os.path.dirname(os.path.abspath(path)))
    return path


__all__ = ["export_onnx", "to_onnx", "estimator_to_onnx", "DEFAULT_OPSET"]
