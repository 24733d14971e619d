"""Regularizers: penalties against their formulas, gradients against central differences
and PyTorch, Keras's names, validation, copies, model files (round trip and hostile
entries), and the extreme values that must neither warn nor overflow."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.gradcheck import numerical_gradient
from scratchnn.layers.conv import kernel_to_torch, kernel_from_torch
from scratchnn.regularizers import (L1, L1L2, L2, REGULARIZERS, Regularizer, get_regularizer,
                                    serialize)

SHAPES = [(7,), (3, 4), (2, 3, 2, 3)]


def formula(W, l1=0.0, l2=0.0):
    """The penalty, written out in float64."""
    W = np.asarray(W, dtype=np.float64)
    return l1 * np.abs(W).sum() + l2 * (W ** 2).sum()


def away_from_zero(rng, shape, margin=0.1):
    """Values at least ``margin`` from 0, where |W| is differentiable for central differences."""
    W = rng.standard_normal(shape)
    return np.where(np.abs(W) < margin, np.copysign(margin, W) + W, W)


# ------------------------------------------------------------- the formulas
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("regularizer, l1, l2", [
    (L1(0.3), 0.3, 0.0), (L2(0.2), 0.0, 0.2), (L1L2(l1=0.1, l2=0.05), 0.1, 0.05),
])
def test_gradient_matches_central_differences(shape, regularizer, l1, l2):
    rng = np.random.default_rng(sum(shape))
    W = away_from_zero(rng, shape)
    assert regularizer.penalty(W) == pytest.approx(formula(W, l1, l2), rel=1e-14)
    numeric = numerical_gradient(lambda: regularizer.penalty(W), W)
    dW = np.zeros_like(W)
    regularizer.add_gradient(W, dW)
    np.testing.assert_allclose(dW, numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dW, l1 * np.sign(W) + 2 * l2 * W, rtol=1e-15, atol=0)


def test_add_gradient_adds_into_dW():
    W = np.array([[-2.0, 0.0], [0.5, 3.0]])
    dW = np.array([[1.0, 1.0], [1.0, 1.0]])
    L1L2(l1=0.5, l2=0.25).add_gradient(W, dW)
    # 1 + 0.5 sign(W) + 0.5 W; the L1 term is 0 at W = 0, as in Keras and PyTorch
    np.testing.assert_array_equal(dW, [[1 - 0.5 - 1.0, 1.0], [1 + 0.5 + 0.25, 1 + 0.5 + 1.5]])


def test_penalty_by_hand():
    W = np.array([3.0, -4.0])
    assert L1(0.1).penalty(W) == pytest.approx(0.7)
    assert L2(0.1).penalty(W) == pytest.approx(2.5)
    assert L1L2(l1=0.1, l2=0.1).penalty(W) == pytest.approx(3.2)
    assert L2(0.1)(W) == L2(0.1).penalty(W)              # callable, as in Keras
    assert isinstance(L2().penalty(W.astype(np.float32)), float)


def test_zero_coefficients_cost_nothing_and_add_nothing():
    W = np.array([np.inf, 1.0])                         # 0 * inf would be NaN
    dW = np.zeros(2)
    for regularizer in (L1(0.0), L2(0.0), L1L2()):
        assert regularizer.penalty(W) == 0.0
        regularizer.add_gradient(W, dW)
    np.testing.assert_array_equal(dW, 0.0)


def test_coefficients_are_mutable_attributes():
    regularizer = L2(0.01)
    W = np.array([1.0, 2.0])
    regularizer.l2 = 0.5                                # a scikit-learn estimator does this per batch
    assert regularizer.penalty(W) == pytest.approx(2.5)
    assert regularizer.get_config() == {"l2": 0.5}
    both = L1L2(l1=0.1)
    both.l2 = 1.0
    assert both.penalty(W) == pytest.approx(0.3 + 5.0)


# ------------------------------------------------------------------ numerics
def test_float32_weights_are_summed_in_float64():
    W = np.full(1000, 3e38, dtype=np.float32)           # W^2 overflows float32, not float64
    assert L2(1.0).penalty(W) == pytest.approx(1000 * float(np.float32(3e38)) ** 2, rel=1e-12)
    W = np.full(10 ** 6, 0.1, dtype=np.float32)         # a float32 sum would drift
    assert L1(1.0).penalty(W) == pytest.approx(10 ** 6 * float(np.float32(0.1)), rel=1e-12)


def test_float64_overflow_is_computed_safely_or_inf_quietly():
    W = np.array([1e200, -1e200, 3e199])
    # sum W^2 = 2.09e400 is beyond float64, l2 times it is not
    assert L2(1e-300).penalty(W) == pytest.approx(2.09e100, rel=1e-12)
    assert L2(0.01).penalty(W) == np.inf
    W = np.full(10, 1e308)                              # sum |W| = 1e309
    assert L1(1e-10).penalty(W) == pytest.approx(1e299, rel=1e-12)
    assert L1(1.0).penalty(W) == np.inf
    assert L2(1.0).penalty(np.array([np.inf, 0.0])) == np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_of_huge_weights_or_coefficients_is_inf_quietly_and_zero_at_zero(dtype):
    big = np.finfo(dtype).max
    W = np.array([big, -big, 0.0, 1.0], dtype=dtype)
    dW = np.zeros_like(W)
    L2(1.0).add_gradient(W, dW)
    np.testing.assert_array_equal(dW, [np.inf, -np.inf, 0.0, 2.0])
    # coefficients beyond the dtype's range (2 * 1e308 is beyond float64's too)
    for regularizer, expected in ((L2(1e308), np.inf), (L1(1e300), 1e300 if dtype is np.float64 else np.inf)):
        dW = np.zeros_like(W)
        regularizer.add_gradient(W, dW)
        assert dW.dtype == dtype
        np.testing.assert_array_equal(dW[[0, 2]], [expected, 0.0])


# -------------------------------------------------------- names and settings
def test_keras_names_and_defaults():
    assert get_regularizer("l2").get_config() == {"l2": 0.01}      # Keras: "l2" is L2(0.01)
    assert get_regularizer("L1").get_config() == {"l1": 0.01}
    assert get_regularizer("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}
    assert get_regularizer(None) is None
    instance = L2(0.5)
    assert get_regularizer(instance) is instance
    built = get_regularizer({"class": "l1l2", "config": {"l1": 0.25, "l2": 0.5}})
    assert type(built) is L1L2 and built.get_config() == {"l1": 0.25, "l2": 0.5}


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_every_registry_entry_builds_and_round_trips(name):
    regularizer = get_regularizer(name)
    assert type(regularizer) is REGULARIZERS[name]
    entry = serialize(regularizer)
    assert entry == {"class": name, "config": regularizer.get_config()}
    again = get_regularizer(json.loads(json.dumps(entry)))
    assert type(again) is type(regularizer) and again.get_config() == regularizer.get_config()


@pytest.mark.parametrize("make, message", [
    (lambda: L2(-1), r"l2 must be a number in \[0, inf\), got -1"),
    (lambda: L2(float("nan")), "l2 must be a number"),
    (lambda: L2(float("inf")), "l2 must be a number"),
    (lambda: L2("0.1"), "l2 must be a number"),
    (lambda: L2(True), "l2 must be a number"),
    (lambda: L2(10 ** 400), "l2 must be a number.*beyond the float range"),
    (lambda: L1(-0.5), "l1 must be a number"),
    (lambda: L1L2(l1=0.1, l2=-1e-9), "l2 must be a number"),
    (lambda: get_regularizer("l3", "kernel_regularizer"),
     r"kernel_regularizer: unknown regularizer 'l3'; it must be one of \['l1', 'l1l2', 'l2'\]"),
    (lambda: get_regularizer({"class": "l2"}, "kernel_regularizer"), "kernel_regularizer must be"),
    (lambda: get_regularizer({"class": "l2", "config": []}, "kernel_regularizer"),
     "kernel_regularizer must be"),
    (lambda: get_regularizer({"class": "os.system", "config": {}}, "kernel_regularizer"),
     "unknown regularizer 'os.system'"),
    (lambda: get_regularizer({"class": "l2", "config": {"l1": 0.1}}, "bias_regularizer"),
     r"bias_regularizer \(L2\): unknown argument 'l1'; L2 accepts \['l2'\]"),
    (lambda: get_regularizer({"class": "l2", "config": {"l2": -1}}, "kernel_regularizer"),
     r"kernel_regularizer \(L2\): l2 must be a number"),
    (lambda: snn.Dense(3, kernel_regularizer="l3"), "kernel_regularizer: unknown regularizer"),
    (lambda: snn.Conv2D(3, 2, bias_regularizer="x"), "bias_regularizer: unknown regularizer"),
    (lambda: snn.Dense(3, use_bias=False, bias_regularizer="l2"), "bias_regularizer needs use_bias"),
])
def test_invalid_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("value", [5, 0.01, ["l2"], L2, object()])
def test_other_types_are_a_type_error_naming_the_argument(value):
    with pytest.raises(TypeError, match="kernel_regularizer must be None, a Regularizer"):
        snn.Dense(3, kernel_regularizer=value)


def test_an_unregistered_regularizer_cannot_be_saved(tmp_path):
    class Mine(Regularizer):
        def penalty(self, W):
            return 0.0

        def add_gradient(self, W, dW):
            pass

    layer = snn.Dense(2, kernel_regularizer=Mine())
    model = snn.Sequential([layer], seed=0, input_shape=(3,))
    assert model.layers[0].regularization_penalty(True) == 0.0
    with pytest.raises(ValueError, match="kernel_regularizer is a Mine, which is not in "
                                         "scratchnn.regularizers.REGULARIZERS"):
        snn.save(model, tmp_path / "m.npz")


# ------------------------------------------------------------------ layers
def dense_model(dtype="float64"):
    return snn.Sequential([snn.Dense(5, kernel_regularizer=L1L2(l1=0.03, l2=0.02),
                                     bias_regularizer=L2(0.5)),
                           snn.ReLU(), snn.Dense(2, kernel_regularizer="l1")],
                          seed=3, dtype=dtype, input_shape=(4,))


def conv_model():
    return snn.Sequential([snn.Conv2D(3, 2, kernel_regularizer=L2(0.05), bias_regularizer=L1(0.2)),
                           snn.Flatten(), snn.Dense(2, kernel_regularizer=L1L2(l2=1e-3))],
                          seed=4, dtype="float64", input_shape=(5, 4, 2))


def expected_penalty(model):
    total = 0.0
    for layer in model.layers:
        for name, regularizer in layer.regularizers.items():
            config = regularizer.get_config()
            total += formula(getattr(layer, name), config.get("l1", 0.0), config.get("l2", 0.0))
    return total


@pytest.mark.parametrize("make", [dense_model, conv_model])
def test_layer_penalty_equals_the_formula_and_leaves_gradients_alone(make):
    model = make()
    model.params[...] = np.random.default_rng(0).standard_normal(model.params.size)
    model.grads[...] = 1.5
    total = sum(layer.regularization_penalty(False) for layer in model.layers)
    assert total == pytest.approx(expected_penalty(model), rel=1e-13)
    np.testing.assert_array_equal(model.grads, 1.5)
    assert set(model.layers[0].regularizers) == {"W", "b"}
    assert snn.ReLU().regularization_penalty(True) == 0.0           # none: nothing to do


def test_layer_gradients_land_in_the_gradient_views():
    model = dense_model()
    model.grads[...] = 0.0
    penalty = sum(layer.regularization_penalty(True) for layer in model.layers)
    assert penalty > 0
    first = model.layers[0]
    np.testing.assert_allclose(first.dW, 0.03 * np.sign(first.W) + 0.04 * first.W, rtol=1e-15)
    np.testing.assert_allclose(first.db, 1.0 * first.b, rtol=1e-15)
    model.check_parameter_views()


def test_an_unbuilt_layer_says_so():
    with pytest.raises(RuntimeError, match="build the model first"):
        snn.Dense(3, kernel_regularizer="l2").regularization_penalty(False)


def test_dense_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    l1, l2, bias_l2 = 0.03, 0.02, 0.5
    model = snn.Sequential([snn.Dense(5, kernel_regularizer=L1L2(l1=l1, l2=l2),
                                      bias_regularizer=L2(bias_l2))],
                           seed=0, dtype="float64", input_shape=(4,))
    layer = model.layers[0]
    layer.b[...] = rng.standard_normal(5)
    x, g = rng.standard_normal((6, 4)), rng.standard_normal((6, 5))
    y = model.forward(x, training=True)
    model.backward(g)
    penalty = layer.regularization_penalty(True)

    Wt = torch.tensor(layer.W, requires_grad=True)
    bt = torch.tensor(layer.b, requires_grad=True)
    yt = torch.from_numpy(x) @ Wt + bt
    reg = l2 * (Wt ** 2).sum() + l1 * Wt.abs().sum() + bias_l2 * (bt ** 2).sum()
    ((yt * torch.from_numpy(g)).sum() + reg).backward()       # dL/dy = g
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    assert penalty == pytest.approx(reg.item(), rel=1e-13)
    np.testing.assert_allclose(layer.dW, Wt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.db, bt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_conv2d_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    l1, l2, bias_l1 = 0.02, 0.05, 0.2
    model = snn.Sequential([snn.Conv2D(3, 2, padding="valid", kernel_regularizer=L1L2(l1=l1, l2=l2),
                                       bias_regularizer=L1(bias_l1))],
                           seed=0, dtype="float64", input_shape=(5, 4, 2))
    layer = model.layers[0]
    layer.b[...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 5, 4, 2))
    y = model.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    model.backward(g)
    penalty = layer.regularization_penalty(True)

    Wt = torch.tensor(kernel_to_torch(layer.W), requires_grad=True)
    bt = torch.tensor(layer.b, requires_grad=True)
    yt = F.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), Wt, bt)
    reg = l2 * (Wt ** 2).sum() + l1 * Wt.abs().sum() + bias_l1 * bt.abs().sum()
    ((yt * torch.from_numpy(g.transpose(0, 3, 1, 2).copy())).sum() + reg).backward()
    assert penalty == pytest.approx(reg.item(), rel=1e-13)
    np.testing.assert_allclose(layer.dW, kernel_from_torch(Wt.grad), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.db, bt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_configs_without_regularizers_are_unchanged():
    assert "kernel_regularizer" not in snn.Dense(3).get_config()
    assert "bias_regularizer" not in snn.Conv2D(3, 2).get_config()
    config = snn.Dense(3, kernel_regularizer="l2").get_config()
    assert config["kernel_regularizer"] == {"class": "l2", "config": {"l2": 0.01}}
    assert "bias_regularizer" not in config
    assert snn.Dense(**config).get_config() == config


# -------------------------------------------------------------------- copies
@pytest.mark.parametrize("copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_copies_keep_the_regularizers(copier):
    model = dense_model()
    clone = copier(model)
    for a, b in zip(model.layers, clone.layers):
        assert {k: (type(v), v.get_config()) for k, v in a.regularizers.items()} == \
               {k: (type(v), v.get_config()) for k, v in b.regularizers.items()}
        assert all(b.regularizers[k] is not v for k, v in a.regularizers.items())
    assert sum(layer.regularization_penalty(False) for layer in clone.layers) == \
           sum(layer.regularization_penalty(False) for layer in model.layers)
    clone.check_parameter_views()


def test_a_layer_pickled_before_regularizers_existed_has_none():
    layer = snn.Dense(3)
    state = layer.__getstate__()
    del state["regularizers"]
    old = snn.Dense.__new__(snn.Dense)
    old.__setstate__(state)
    assert old.regularizers == {}


# --------------------------------------------------------------- model files
def test_save_and_load_round_trip(tmp_path):
    model = conv_model()
    X = np.random.default_rng(1).standard_normal((8, 5, 4, 2))
    y = np.arange(8) % 2
    model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.01), epochs=1, batch_size=4)
    path = snn.save(model, tmp_path / "model.npz")
    loaded = snn.load(path)
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    assert loaded.layers[0].get_config()["kernel_regularizer"] == {"class": "l2", "config": {"l2": 0.05}}
    assert type(loaded.layers[2].regularizers["W"]) is L1L2
    assert sum(layer.regularization_penalty(False) for layer in loaded.layers) == \
           sum(layer.regularization_penalty(False) for layer in model.layers)


def _read(path):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("config").tobytes().decode("utf-8")), arrays


def _write(path, doc, arrays):
    text = json.dumps(doc).replace('"1e400 unquoted"', "1e400")      # JSON reads it as inf
    config = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, config=config, **arrays)
    return path


@pytest.mark.parametrize("entry, message", [
    ({"class": "os.system", "config": {}},
     r"layers\[0\] \(Dense\): kernel_regularizer: unknown regularizer 'os.system'"),
    ({"class": "l2", "config": {"l2": -1}}, r"layers\[0\] \(Dense\): kernel_regularizer \(L2\): l2 must be"),
    ({"class": "l2", "config": {"l2": "0.1"}}, r"kernel_regularizer \(L2\): l2 must be a number"),
    ({"class": "l2", "config": {"l2": "1e400 unquoted"}}, r"kernel_regularizer \(L2\): l2 must be a number"),
    ({"class": "l2", "config": {"l2": [0.1]}}, r"kernel_regularizer \(L2\): l2 must be a number"),
    ({"class": "l2", "config": {"__class__": 1}}, r"kernel_regularizer \(L2\): unknown argument '__class__'"),
    ({"class": "l2", "config": {"l2": {"class": "l2", "config": {}}}},
     r"layers\[0\].config\['kernel_regularizer'\].config\['l2'\] must be a number"),
    ({"class": 5, "config": {}}, r"layers\[0\].config\['kernel_regularizer'\].class must be a string"),
    ({"class": "l2", "config": "x"}, r"layers\[0\].config\['kernel_regularizer'\].config must be an object"),
    ({"class": "l2"}, r"layers\[0\].config\['kernel_regularizer'\] must be a number, string"),
    ({"class": "l2", "config": {}, "x": 1}, r"layers\[0\].config\['kernel_regularizer'\] must be a number"),
    ("l3", r"layers\[0\] \(Dense\): kernel_regularizer: unknown regularizer 'l3'"),
    (["l2"], r"layers\[0\] \(Dense\): kernel_regularizer must be None, a Regularizer"),
    (7, r"layers\[0\] \(Dense\): kernel_regularizer must be None, a Regularizer"),
])
def test_a_bad_regularizer_entry_in_a_model_file_is_our_error(tmp_path, entry, message):
    model = snn.Sequential([snn.Dense(3, kernel_regularizer="l2")], seed=0, input_shape=(4,))
    doc, arrays = _read(snn.save(model, tmp_path / "good.npz"))
    doc["layers"][0]["config"]["kernel_regularizer"] = entry
    path = _write(tmp_path / "bad.npz", doc, arrays)
    with pytest.raises(ValueError, match="invalid scratchnn model file .*" + message):
        snn.load(path)


def test_a_bias_regularizer_on_a_layer_without_bias_in_a_model_file_is_refused(tmp_path):
    model = snn.Sequential([snn.Dense(3, use_bias=False)], seed=0, input_shape=(4,))
    doc, arrays = _read(snn.save(model, tmp_path / "good.npz"))
    doc["layers"][0]["config"]["bias_regularizer"] = {"class": "l2", "config": {"l2": 0.1}}
    with pytest.raises(ValueError, match=r"layers\[0\] \(Dense\): bias_regularizer needs use_bias"):
        snn.load(_write(tmp_path / "bad.npz", doc, arrays))
