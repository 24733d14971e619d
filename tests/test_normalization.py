"""BatchNormalization, LayerNormalization and Reshape: central-difference gradient
checks, PyTorch's values and gradients, the running statistics, dtypes, copies
and model files.

Images are channels last here, ``(N, H, W, C)``; PyTorch's are ``(N, C, H, W)``,
so its inputs and results are permuted.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
import warnings
import zlib

import numpy as np
import pytest

import scratchnn as snn

TOL = 1e-6          # gradcheck's relative error
TORCH_TOL = 1e-9    # float64 against PyTorch, relative and absolute


def seed_of(*case) -> int:
    """A seed for one parametrized case, the same in every run (``hash`` of a
    string is not)."""
    return zlib.crc32(repr(case).encode())


def built(layer, sample_shape, dtype="float64", seed=0):
    """``layer`` in a built one-layer model, computing dL/dx."""
    model = snn.Sequential([layer], seed=seed, dtype=dtype)
    model.build(sample_shape)
    layer.needs_input_grad = True
    return model


def randomize(layer, rng):
    """Random gamma and beta (and running statistics) instead of ones and zeros, so
    that every term of the gradient is exercised."""
    for name in ("gamma", "beta", "running_mean"):
        if hasattr(layer, name):
            getattr(layer, name)[...] = rng.standard_normal(getattr(layer, name).shape)
    if hasattr(layer, "running_var"):
        layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)


def assert_gradients_match(errors, expected_keys):
    assert set(errors) == expected_keys, errors
    for name, error in errors.items():
        assert error < TOL, f"{name}: relative error {error:.3g} >= {TOL} ({errors})"


def param_keys(layer, center, scale):
    return {"input"} | {f"{layer.name}.{p}" for p, on in (("gamma", scale), ("beta", center)) if on}


# ------------------------------------------------------------------ gradcheck
AFFINE = [(True, True), (False, True), (True, False), (False, False)]


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("shape", [(5, 4), (1, 3, 2, 3), (3, 3, 2, 2), (2, 2, 3, 1, 2)],
                         ids=["2d-n5", "4d-n1", "4d-n3", "5d-n2"])
@pytest.mark.parametrize("center, scale", AFFINE, ids=["affine", "no-center", "no-scale", "none"])
def test_batch_norm_gradcheck(shape, training, center, scale):
    rng = np.random.default_rng(seed_of(shape, training, center, scale))
    layer = snn.BatchNormalization(momentum=0.7, eps=1e-3, center=center, scale=scale, name="bn")
    model = built(layer, shape[1:])
    randomize(layer, rng)
    x = 2.0 + 1.5 * rng.standard_normal(shape)
    errors = snn.gradcheck(model, x, training=training, seed=1)
    assert_gradients_match(errors, param_keys(layer, center, scale))


def test_batch_norm_gradcheck_in_inference_with_a_batch_of_one():
    rng = np.random.default_rng(4)
    layer = snn.BatchNormalization(name="bn")
    model = built(layer, (6,))
    randomize(layer, rng)
    errors = snn.gradcheck(model, rng.standard_normal((1, 6)), training=False)
    assert_gradients_match(errors, param_keys(layer, True, True))


@pytest.mark.parametrize("shape, axis", [
    ((3, 5), -1), ((3, 5), 1), ((2, 3, 4), (1, 2)), ((2, 3, 4), 1), ((2, 3, 4), -2),
    ((2, 2, 3, 2), (1, 3)), ((2, 2, 3, 2), (-1, -2, -3)), ((1, 4), -1),
])
@pytest.mark.parametrize("center, scale", AFFINE, ids=["affine", "no-center", "no-scale", "none"])
def test_layer_norm_gradcheck(shape, axis, center, scale):
    rng = np.random.default_rng(seed_of(shape, axis, center, scale))
    layer = snn.LayerNormalization(eps=1e-3, axis=axis, center=center, scale=scale, name="ln")
    model = built(layer, shape[1:])
    randomize(layer, rng)
    x = 1.0 + rng.standard_normal(shape)
    errors = snn.gradcheck(model, x, training=True, seed=2)
    assert_gradients_match(errors, param_keys(layer, center, scale))


@pytest.mark.parametrize("target, sample_shape", [((2, -1), (12,)), ((3, 2, 2), (4, 3)), ((-1,), (2, 3, 2))])
def test_reshape_gradcheck(target, sample_shape):
    rng = np.random.default_rng(5)
    # a Dense after the reshape makes every output position matter differently
    model = snn.Sequential([snn.Reshape(target), snn.Flatten(), snn.Dense(3)], seed=0, dtype="float64")
    errors = snn.gradcheck(model, rng.standard_normal((3, *sample_shape)))
    assert max(errors.values()) < TOL, errors
    assert snn.gradcheck(snn.Reshape(target), rng.standard_normal((2, *sample_shape)))["input"] < TOL


# --------------------------------------------------------------- against PyTorch
def to_torch(a, torch):
    """Channels last to channels first, as a float64 tensor."""
    t = torch.tensor(a, dtype=torch.float64)
    return t.permute(0, a.ndim - 1, *range(1, a.ndim - 1)) if a.ndim > 2 else t


def from_torch(t):
    a = t.detach().numpy()
    return a.transpose(0, *range(2, a.ndim), 1) if a.ndim > 2 else a


def close(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=TORCH_TOL, atol=TORCH_TOL)


@pytest.mark.parametrize("shape", [(6, 5), (37, 32), (3, 4, 5, 3), (3, 5, 5, 16), (2, 3, 2, 2, 4)],
                         ids=["2d", "2d-wide-remainder", "4d", "4d-wide-remainder", "5d"])
@pytest.mark.parametrize("center, scale", [(True, True), (False, False)], ids=["affine", "none"])
def test_batch_norm_matches_torch_in_training(shape, center, scale):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    momentum, eps = 0.8, 1e-3
    layer = snn.BatchNormalization(momentum, eps, center=center, scale=scale)
    built(layer, shape[1:])
    randomize(layer, rng)
    channels = shape[-1]
    mean_t = torch.tensor(layer.running_mean.copy())
    var_t = torch.tensor(layer.running_var.copy())
    weight = torch.tensor(layer.gamma.copy(), requires_grad=True) if scale else None
    bias = torch.tensor(layer.beta.copy(), requires_grad=True) if center else None
    for step in range(3):       # the running statistics after one and after several steps
        x = 3.0 * step + (1 + step) * rng.standard_normal(shape)
        g = rng.standard_normal(shape)
        x_t = to_torch(x, torch).requires_grad_()
        for p in (weight, bias):
            if p is not None:
                p.grad = None
        y_t = F.batch_norm(x_t, mean_t, var_t, weight, bias, training=True,
                           momentum=1 - momentum, eps=eps)
        y_t.backward(to_torch(g, torch))

        y = layer.forward(x, training=True)
        grad_in = layer.backward(g)
        close(y, from_torch(y_t))
        close(grad_in, from_torch(x_t.grad))
        if scale:
            close(layer.dgamma, weight.grad.numpy())
        if center:
            close(layer.dbeta, bias.grad.numpy())
        close(layer.running_mean, mean_t.numpy())
        close(layer.running_var, var_t.numpy())
        assert layer.running_mean.shape == layer.running_var.shape == (channels,)


@pytest.mark.parametrize("shape", [(6, 5), (1, 5), (3, 4, 5, 3), (3, 5, 5, 16)],
                         ids=["2d", "2d-n1", "4d", "4d-wide-remainder"])
def test_batch_norm_matches_torch_in_inference(shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    layer = snn.BatchNormalization(eps=1e-4)
    built(layer, shape[1:])
    randomize(layer, rng)
    mean_t = torch.tensor(layer.running_mean.copy())
    var_t = torch.tensor(layer.running_var.copy())
    weight = torch.tensor(layer.gamma.copy(), requires_grad=True)
    bias = torch.tensor(layer.beta.copy(), requires_grad=True)
    x, g = 1 + 2 * rng.standard_normal(shape), rng.standard_normal(shape)
    x_t = to_torch(x, torch).requires_grad_()
    y_t = F.batch_norm(x_t, mean_t, var_t, weight, bias, training=False, eps=1e-4)
    y_t.backward(to_torch(g, torch))

    y = layer.forward(x, training=False)
    grad_in = layer.backward(g)
    close(y, from_torch(y_t))
    close(grad_in, from_torch(x_t.grad))
    close(layer.dgamma, weight.grad.numpy())
    close(layer.dbeta, bias.grad.numpy())


@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((2, 3, 4, 5), (1, 2, 3)),
                                         ((2, 3, 4, 5), (-2, -1)), ((3, 4, 8), 2)])
def test_layer_norm_matches_torch(shape, axis):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(9)
    layer = snn.LayerNormalization(eps=1e-3, axis=axis)
    built(layer, shape[1:])
    randomize(layer, rng)
    axes = (axis,) if isinstance(axis, int) else axis
    normalized_shape = shape[len(shape) - len(axes):]          # the trailing dimensions
    assert layer.gamma.shape == layer.beta.shape == normalized_shape
    x, g = 2 + 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    x_t = torch.tensor(x, requires_grad=True)
    weight = torch.tensor(layer.gamma.copy(), requires_grad=True)
    bias = torch.tensor(layer.beta.copy(), requires_grad=True)
    y_t = F.layer_norm(x_t, normalized_shape, weight, bias, eps=1e-3)
    y_t.backward(torch.tensor(g))

    close(layer.forward(x, training=True), y_t.detach().numpy())
    close(layer.forward(x, training=False), y_t.detach().numpy())      # the same in inference
    close(layer.backward(g), x_t.grad.numpy())
    close(layer.dgamma, weight.grad.numpy())
    close(layer.dbeta, bias.grad.numpy())


# ------------------------------------------------------------ batch norm's state
def test_batch_norm_by_hand():
    # one channel, values 1, 2, 3, 6 over a 2x2 image of batch 1: mean 3, biased var 3.5
    layer = snn.BatchNormalization(momentum=0.75, eps=0.5)
    built(layer, (2, 2, 1))
    x = np.array([1.0, 2.0, 3.0, 6.0]).reshape(1, 2, 2, 1)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.ravel(), (x.ravel() - 3) / 2, rtol=1e-15)   # sqrt(3.5 + 0.5) = 2
    np.testing.assert_allclose(layer.running_mean, [0.25 * 3], rtol=1e-15)
    # unbiased variance 14 / 3
    np.testing.assert_allclose(layer.running_var, [0.75 + 0.25 * 14 / 3], rtol=1e-15)
    y = layer.forward(x, training=False)
    np.testing.assert_allclose(y.ravel(), (x.ravel() - 0.75) / np.sqrt(0.75 + 0.25 * 14 / 3 + 0.5),
                               rtol=1e-15)


def test_inference_never_changes_the_running_statistics():
    rng = np.random.default_rng(10)
    layer = snn.BatchNormalization()
    model = built(layer, (3, 3, 4))
    randomize(layer, rng)
    before = model.buffers.copy()
    x = rng.standard_normal((5, 3, 3, 4))
    first = layer.forward(x, training=False)
    layer.backward(rng.standard_normal(x.shape))
    np.testing.assert_array_equal(layer.forward(x, training=False), first)
    model.output(x)
    np.testing.assert_array_equal(model.buffers, before)
    layer.forward(x, training=True)          # training does change them
    assert not np.array_equal(model.buffers, before)


@pytest.mark.parametrize("shape", [(1, 4), (1, 1, 1, 3), (0, 4)])
def test_a_batch_of_one_in_training_is_an_error(shape):
    layer = snn.BatchNormalization(name="bn")
    model = built(layer, shape[1:])
    before = model.buffers.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=re.escape(
                f"BatchNormalization 'bn' needs more than one value per channel in training, got a "
                f"batch of {shape[0]} sample(s) of shape {shape[1:]}: use a batch size above 1")):
            layer.forward(np.ones(shape), training=True)
        np.testing.assert_array_equal(model.buffers, before)
        # inference is fine, and so is a batch of one image of several pixels in training
        assert np.all(np.isfinite(layer.forward(np.ones(shape), training=False)))


def test_a_batch_of_one_image_of_several_pixels_trains():
    layer = snn.BatchNormalization()
    built(layer, (2, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(np.arange(12.0).reshape(1, 2, 2, 3), training=True)
    # each channel's 4 values are c, c + 3, c + 6, c + 9 (variance 11.25): -1.34, -0.45, 0.45, 1.34
    expected = 3 * (np.arange(4.0) - 1.5) / np.sqrt(11.25 + 1e-5)
    np.testing.assert_allclose(y.reshape(4, 3), np.repeat(expected[:, None], 3, axis=1), rtol=1e-12)


def test_fit_names_a_last_batch_of_one():
    X = np.random.default_rng(0).standard_normal((5, 3))
    model = snn.Sequential([snn.Dense(4), snn.BatchNormalization(name="bn"), snn.Dense(2)], seed=0)
    model.build((3,))
    before = model.get_weights()
    with pytest.raises(ValueError, match=re.escape(
            "5 training samples in batches of 2 leave a last batch of 1, and layer 'bn' "
            "(BatchNormalization) needs at least 2 samples per batch in training: choose a "
            "batch_size that leaves 2 or more (such as batch_size=3)")):
        model.fit(X, np.array([0, 1, 0, 1, 1]), loss="cross_entropy", batch_size=2, shuffle=False)
    # refused before the first step: nothing changed
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(value, before[name])
    # images have several values per channel in a batch of one: no such limit
    images = snn.Sequential([snn.Conv2D(2, 2), snn.BatchNormalization(), snn.Flatten(), snn.Dense(2)], seed=0)
    images.fit(np.ones((5, 3, 3, 1)), np.array([0, 1, 0, 1, 1]), loss="cross_entropy", batch_size=2)


def test_constant_channels_give_zeros_not_nan():
    layer = snn.BatchNormalization()
    built(layer, (2, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(np.full((2, 2, 2, 3), 7.0), training=True)
        grad_in = layer.backward(np.ones(y.shape))
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_array_equal(grad_in, 0.0)


@pytest.mark.parametrize("layer", [lambda: snn.BatchNormalization(), lambda: snn.LayerNormalization(),
                                   lambda: snn.LayerNormalization(axis=(1, 2, 3))],
                         ids=["batch", "layer", "layer-all-axes"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_float32_stays_float32(layer, training):
    rng = np.random.default_rng(11)
    x64 = 3 + 2 * rng.standard_normal((8, 13, 13, 32))   # 1352 rows of 32 channels: a remainder
    g64 = rng.standard_normal(x64.shape)
    results = {}
    for dtype in ("float32", "float64"):
        instance = layer()
        model = built(instance, x64.shape[1:], dtype=dtype)
        randomize(instance, np.random.default_rng(12))
        x, g = x64.astype(dtype), g64.astype(dtype)
        y = instance.forward(x, training=training)
        grad_in = instance.backward(g)
        arrays = [y, grad_in, instance.dgamma, instance.dbeta, model.buffers]
        assert all(a.dtype == np.dtype(dtype) for a in arrays), [a.dtype for a in arrays]
        results[dtype] = arrays
    for a32, a64 in zip(*results.values()):
        np.testing.assert_allclose(a32, a64, rtol=2e-4, atol=2e-4 * np.abs(a64).max(initial=0))


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_non_contiguous_inputs_and_gradients(training):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 3, 3, 10))[..., ::2]           # 5 channels, strided
    g = np.asfortranarray(rng.standard_normal((4, 3, 3, 5)))
    for make in (snn.BatchNormalization, lambda: snn.LayerNormalization(axis=(2, 3))):
        results = []
        for xx, gg in ((x, g), (np.ascontiguousarray(x), np.ascontiguousarray(g))):
            layer = make()
            built(layer, (3, 3, 5))
            randomize(layer, np.random.default_rng(14))
            results.append((layer.forward(xx, training), layer.backward(gg), layer.dgamma.copy()))
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_parameters_and_buffers_are_declared():
    layer = snn.BatchNormalization(name="bn")
    model = built(layer, (4, 4, 3))
    assert [name for name, _ in model.named_parameters()] == ["bn.gamma", "bn.beta"]
    assert [name for name, _ in model.named_buffers()] == ["bn.running_mean", "bn.running_var"]
    np.testing.assert_array_equal(layer.gamma, 1.0)
    np.testing.assert_array_equal(layer.beta, 0.0)
    np.testing.assert_array_equal(layer.running_mean, 0.0)
    np.testing.assert_array_equal(layer.running_var, 1.0)
    bare = snn.BatchNormalization(center=False, scale=False, name="bare")
    assert built(bare, (3,)).named_parameters() == []
    ln = snn.LayerNormalization(axis=(1, 3), name="ln")
    model = built(ln, (2, 3, 4))
    assert ln.gamma.shape == ln.beta.shape == (2, 4) and model.buffers.size == 0


# ------------------------------------------------------------- models and copies
def small_cnn(dtype="float64"):
    return snn.Sequential([
        snn.Reshape((4, 4, 2)), snn.BatchNormalization(momentum=0.5), snn.ReLU(),
        snn.LayerNormalization(axis=(1, 2, 3)), snn.Flatten(), snn.Dense(8),
        snn.BatchNormalization(), snn.Dense(3),
    ], seed=0, dtype=dtype)


def fitted(dtype="float64"):
    rng = np.random.default_rng(15)
    X = 2 + rng.standard_normal((40, 32))
    y = rng.integers(0, 3, 40)
    model = small_cnn(dtype)
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8)
    return model, X


def test_fitted_model_round_trips_through_a_file(tmp_path):
    model, X = fitted()
    for name, buffer in model.named_buffers():   # the running statistics moved
        assert not np.all(buffer == (1.0 if name.endswith("var") else 0.0)), name
    loaded = snn.load(model.save(tmp_path / "cnn.npz"))
    np.testing.assert_array_equal(loaded.buffers, model.buffers)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.output(X), model.output(X))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]


def test_fitted_model_copies_predict_the_same():
    model, X = fitted()
    expected = model.output(X)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin.buffers, model.buffers)
        np.testing.assert_array_equal(twin.output(X), expected)
        twin.layers[1].running_mean[...] = 5.0      # the copy's own buffers, bound to its vector
        assert twin.buffers[0] == 5.0 and model.buffers[0] != 5.0


def test_astype_keeps_the_running_statistics():
    model, X = fitted("float32")
    wide = model.astype("float64")
    assert wide.buffers.dtype == np.float64
    np.testing.assert_array_equal(wide.buffers, model.buffers.astype(np.float64))
    bn = wide.layers[1]
    np.testing.assert_array_equal(bn.running_mean, model.layers[1].running_mean)
    np.testing.assert_allclose(wide.output(X), model.output(X), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------- configs
@pytest.mark.parametrize("layer", [
    snn.BatchNormalization(), snn.BatchNormalization(0.99, 1e-3, center=False, scale=False, name="bn"),
    snn.LayerNormalization(), snn.LayerNormalization(1e-6, axis=(1, -1), scale=False, name="ln"),
    snn.Reshape((2, -1)), snn.Reshape([7], name="r"),
], ids=repr)
def test_get_config_round_trips(layer):
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    twin = type(layer)(**config)
    assert twin.get_config() == config


def test_configs():
    assert snn.BatchNormalization().get_config() == {
        "momentum": 0.9, "eps": 1e-5, "center": True, "scale": True, "name": None}
    assert snn.LayerNormalization(axis=(1, 2)).get_config() == {
        "eps": 1e-5, "axis": [1, 2], "center": True, "scale": True, "name": None}
    assert snn.LayerNormalization(axis=2).get_config()["axis"] == 2
    assert snn.Reshape((3, -1)).get_config() == {"shape": [3, -1], "name": None}


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, match", [
    ({"momentum": 1.5}, "momentum must be a number in"), ({"momentum": -0.1}, "momentum"),
    ({"eps": 0}, "eps must be a number in"), ({"eps": float("nan")}, "eps"),
    ({"center": "yes"}, "center must be True or False"), ({"scale": 1}, "scale must be True or False"),
])
def test_batch_norm_refuses_bad_settings(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        snn.BatchNormalization(**kwargs)


@pytest.mark.parametrize("axis", [True, "last", (), [1, 2.0], None, 1.0, 65, (1, -10 ** 400)])
def test_layer_norm_refuses_bad_axis_types(axis):
    with pytest.raises(ValueError, match=r"axis must be an axis \(an integer from -64 to 64\) or a non-empty tuple"):
        snn.LayerNormalization(axis=axis)


@pytest.mark.parametrize("axis, match", [
    (0, "includes the batch axis 0"), (-4, "includes the batch axis 0"), ((1, 0), "batch axis"),
    (4, "out of range"), (-5, "out of range"), ((1, 1), "twice"), ((1, -3), "twice"),
])
def test_layer_norm_refuses_bad_axes_at_build(axis, match):
    model = snn.Sequential([snn.LayerNormalization(axis=axis)])
    with pytest.raises(ValueError, match=re.escape(f"axis={axis!r} for inputs of shape (N, 3, 4, 5)")
                       + f".*{match}"):
        model.build((3, 4, 5))


def test_reshape_infers_minus_one_and_checks_sizes():
    model = snn.Sequential([snn.Reshape((-1, 4))], dtype="float64")
    model.build((3, 4, 2))
    assert model.output_shape == (6, 4)
    x = np.arange(48.0).reshape(2, 3, 4, 2)
    np.testing.assert_array_equal(model.forward(x), x.reshape(2, 6, 4))
    np.testing.assert_array_equal(model.layers[0].backward(x.reshape(2, 6, 4)), x)
    with pytest.raises(ValueError, match=r"samples of shape \(3, 4, 2\) \(24 values\) into samples "
                                         r"of shape \(5, 5\) \(25 values\)"):
        snn.Sequential([snn.Reshape((5, 5))]).build((3, 4, 2))
    with pytest.raises(ValueError, match=r"\(3, 4, 2\) \(24 values\).*\(-1, 5\) \(a multiple of 5"):
        snn.Sequential([snn.Reshape((-1, 5))]).build((3, 4, 2))


@pytest.mark.parametrize("shape", [(), (2, -1, -1), (0, 3), (-2, 3), (2.0, 3), (True, 2), 6, "23", None])
def test_reshape_refuses_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape must be a non-empty tuple of positive integers"):
        snn.Reshape(shape)
