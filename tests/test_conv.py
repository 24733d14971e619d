"""Conv2D and pooling: central differences, PyTorch in float64, shapes and edge cases."""

import copy
import pickle

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.layers.conv import kernel_from_torch, kernel_to_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _run(layer, x, rng, training=False):
    """Forward and backward of ``layer`` alone in a float64 model: (y, dx, grads, g)."""
    model = snn.Sequential([layer], seed=0, dtype="float64", input_shape=x.shape[1:])
    layer.needs_input_grad = True
    y = model.forward(x, training)
    g = rng.standard_normal(y.shape)
    dx = model.backward(g)
    return y, dx, {name: grad.copy() for name, grad in model.named_gradients()}, g


def _torch_padding(padding, kernel, stride, dilation, size):
    """(left, right, top, bottom) zeros of our padding, for F.pad."""
    from scratchnn.layers.conv import as_padding, spatial_plan
    layer = snn.Conv2D(1, kernel, stride, padding, dilation)
    _, before, after = spatial_plan(layer, (*size, 1), layer.kernel_size, layer.stride,
                                    layer.dilation, as_padding(padding))
    return (before[1], after[1], before[0], after[0])


CONV_CASES = [
    # (N, H, W, C, F, kernel, stride, padding, dilation)
    (1, 5, 5, 1, 2, 3, 1, "valid", 1),
    (2, 6, 7, 3, 4, 3, 2, 1, 1),
    (3, 7, 6, 2, 3, (3, 2), (2, 1), "same", 1),
    (2, 8, 8, 2, 2, 3, 1, "same", 2),
    (1, 9, 7, 2, 3, (2, 3), 3, (2, 1), (2, 1)),
    (2, 4, 4, 3, 2, 1, 1, "valid", 1),
    (2, 5, 6, 1, 2, 4, 2, "same", 1),
    (1, 3, 3, 2, 2, 3, 1, 3, 1),            # padding larger than the data
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch_float64(case):
    n, h, w, c, f, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, h, w, c))
    layer = snn.Conv2D(f, kernel, stride, padding, dilation)
    y, dx, grads, g = _run(layer, x, rng)
    xt = _nchw(x).requires_grad_(True)
    wt = torch.from_numpy(kernel_to_torch(layer.W)).requires_grad_(True)
    bt = torch.from_numpy(layer.b.copy()).requires_grad_(True)
    pads = _torch_padding(padding, kernel, stride, dilation, (h, w))
    yt = F.conv2d(F.pad(xt, pads), wt, bt, stride=layer.stride, dilation=layer.dilation)
    yt.backward(_nchw(g))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads[f"{layer.name}.W"], kernel_from_torch(wt.grad), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads[f"{layer.name}.b"], bt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")   # PyTorch's own
def test_conv2d_same_padding_equals_torch_same_for_stride_one():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 2))
    for kernel in (3, 4, (2, 5)):
        layer = snn.Conv2D(3, kernel, padding="same")
        y, *_ = _run(layer, x, rng)
        yt = F.conv2d(_nchw(x), torch.from_numpy(kernel_to_torch(layer.W)),
                      torch.from_numpy(layer.b.copy()), padding="same")
        np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-9, atol=1e-12)
        assert y.shape == (2, 6, 5, 3)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradcheck(case):
    n, h, w, c, f, kernel, stride, padding, dilation = case
    x = np.random.default_rng(3).standard_normal((n, h, w, c))
    errors = snn.gradcheck(snn.Conv2D(f, kernel, stride, padding, dilation), x)
    assert set(errors) == {"conv2d_0.W", "conv2d_0.b", "input"}
    assert max(errors.values()) < 1e-6, errors


def test_conv2d_without_bias_and_kernel_round_trip():
    layer = snn.Conv2D(4, (2, 3), use_bias=False)
    snn.Sequential([layer], seed=0, input_shape=(5, 5, 3))
    assert [s.name for s in layer.param_specs] == ["W"]
    assert layer.W.shape == (2, 3, 3, 4)
    assert np.array_equal(kernel_from_torch(kernel_to_torch(layer.W)), layer.W)
    assert kernel_to_torch(layer.W).shape == (4, 3, 2, 3)


def test_conv2d_he_uniform_bounds():
    layer = snn.Conv2D(64, 3)
    snn.Sequential([layer], seed=0, input_shape=(10, 10, 32), dtype="float64")
    bound = np.sqrt(6 / (3 * 3 * 32))
    assert np.abs(layer.W).max() <= bound
    assert np.abs(layer.W).max() > 0.95 * bound
    assert np.all(layer.b == 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0, "kernel_size": 3}, "filters"),
    ({"filters": 2, "kernel_size": 0}, "kernel_size"),
    ({"filters": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
    ({"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
    ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    ({"filters": 2, "kernel_size": 3, "padding": -1}, "padding"),
    ({"filters": 2, "kernel_size": 3, "dilation": 1.5}, "dilation"),
])
def test_conv2d_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        snn.Conv2D(**kwargs)


def test_conv2d_build_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"images \(N, height, width, channels\).*\(784,\)"):
        snn.Sequential([snn.Conv2D(2, 3)], input_shape=(784,))
    with pytest.raises(ValueError, match="does not fit"):
        snn.Sequential([snn.Conv2D(2, 5)], input_shape=(3, 3, 1))
    with pytest.raises(ValueError, match="does not fit"):
        snn.Sequential([snn.Conv2D(2, 3, dilation=3)], input_shape=(6, 6, 1))


POOL_CASES = [
    # (N, H, W, C, pool, stride, padding)
    (1, 4, 4, 1, 2, None, "valid"),
    (2, 5, 7, 3, 2, None, "valid"),          # sizes that do not divide by the stride
    (2, 7, 6, 2, 3, 2, 1),                  # overlapping windows, padding
    (3, 5, 5, 2, (3, 2), (1, 2), "valid"),
    (2, 1, 1, 2, 3, 1, 1),                  # padding larger than the data
    (1, 6, 5, 2, 2, 1, "valid"),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_matches_torch_float64(case):
    n, h, w, c, pool, stride, padding = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, h, w, c))
    layer = snn.MaxPool2D(pool, stride, padding)
    y, dx, _, g = _run(layer, x, rng)
    xt = _nchw(x).requires_grad_(True)
    yt = F.max_pool2d(xt, layer.pool_size, layer.stride,
                      padding=0 if isinstance(padding, str) else padding)
    yt.backward(_nchw(g))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool_matches_torch_float64(case, include):
    n, h, w, c, pool, stride, padding = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, h, w, c))
    layer = snn.AvgPool2D(pool, stride, padding, count_include_pad=include)
    y, dx, _, g = _run(layer, x, rng)
    xt = _nchw(x).requires_grad_(True)
    yt = F.avg_pool2d(xt, layer.pool_size, layer.stride,
                      padding=0 if isinstance(padding, str) else padding, count_include_pad=include)
    yt.backward(_nchw(g))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-9, atol=1e-12)


def test_max_pool_ties_go_to_the_first_maximum_as_in_torch():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 2, size=(2, 6, 6, 3)).astype(np.float64)     # many ties
    for pool, stride in ((2, None), (3, 1), (2, 1)):
        layer = snn.MaxPool2D(pool, stride)
        y, dx, _, g = _run(layer, x, rng)
        xt = _nchw(x).requires_grad_(True)
        F.max_pool2d(xt, layer.pool_size, layer.stride).backward(_nchw(g))
        # the same winners (overlapping windows add in another order: last-bit differences)
        np.testing.assert_array_equal(dx != 0, _nhwc(xt.grad) != 0)
        np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-14)
    constant = np.ones((1, 2, 2, 1))
    layer = snn.MaxPool2D(2)
    _, dx, _, g = _run(layer, constant, rng)
    assert dx[0, :, :, 0].tolist() == [[g[0, 0, 0, 0], 0.0], [0.0, 0.0]]


def test_same_padding_pools():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 5, 2))
    layer = snn.MaxPool2D(2, padding="same")
    y, *_ = _run(layer, x, rng)
    assert y.shape == (2, 3, 3, 2)
    assert y[0, 2, 2, 0] == x[0, 4, 4, 0]                 # the padding is never the maximum
    layer = snn.AvgPool2D(2, padding="same", count_include_pad=False)
    y, *_ = _run(layer, x, rng)
    np.testing.assert_allclose(y[0, 2, 2], x[0, 4, 4])
    np.testing.assert_allclose(y[0, 0, 2], x[0, :2, 4].mean(axis=0))


@pytest.mark.parametrize("layer", [
    lambda: snn.MaxPool2D(2), lambda: snn.MaxPool2D(3, 2, 1), lambda: snn.MaxPool2D((2, 3), 1),
    lambda: snn.AvgPool2D(2), lambda: snn.AvgPool2D(3, 2, 1, count_include_pad=False),
    lambda: snn.AvgPool2D((3, 2), (1, 2), "same"), lambda: snn.GlobalAveragePooling2D()])
@pytest.mark.parametrize("n", [1, 3])
def test_pooling_gradcheck(layer, n):
    x = np.random.default_rng(8).standard_normal((n, 5, 6, 2))
    errors = snn.gradcheck(layer(), x)
    assert max(errors.values()) < 1e-6, errors


def test_global_average_pooling():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 5, 2))
    y, dx, _, g = _run(snn.GlobalAveragePooling2D(), x, rng)
    np.testing.assert_allclose(y, x.mean(axis=(1, 2)))
    np.testing.assert_allclose(dx, np.broadcast_to(g[:, None, None, :] / 20, x.shape))
    xt = _nchw(x).requires_grad_(True)
    F.adaptive_avg_pool2d(xt, 1).flatten(1).backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12)


def test_pool_bad_arguments():
    with pytest.raises(ValueError, match="at most half"):
        snn.MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="pool_size"):
        snn.AvgPool2D(0)
    with pytest.raises(ValueError, match="does not fit"):
        snn.Sequential([snn.MaxPool2D(3)], input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="images"):
        snn.Sequential([snn.GlobalAveragePooling2D()], input_shape=(4, 4))


def test_float32_stays_float32():
    rng = np.random.default_rng(10)
    model = snn.Sequential([snn.Conv2D(4, 3, padding="same"), snn.ReLU(), snn.MaxPool2D(2),
                            snn.AvgPool2D(2), snn.GlobalAveragePooling2D(), snn.Dense(3)],
                           seed=0, input_shape=(8, 8, 2))
    x = rng.standard_normal((5, 8, 8, 2)).astype(np.float32)
    y = model.forward(x, training=True)
    assert y.dtype == np.float32
    assert model.backward(np.ones_like(y)) is None
    assert model.grads.dtype == np.float32 and np.all(np.isfinite(model.grads))


def test_small_cnn_one_adam_step_equals_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 8, 8, 2))
    labels = np.array([0, 1, 2, 1])
    model = snn.Sequential([snn.Conv2D(3, 3, padding=1), snn.ReLU(), snn.MaxPool2D(2),
                            snn.Conv2D(4, 3, stride=2, padding="same"), snn.ReLU(),
                            snn.AvgPool2D(2), snn.Flatten(), snn.Dense(3)],
                           seed=0, dtype="float64", input_shape=(8, 8, 2))
    conv1, conv2, dense = model[0], model[3], model[7]
    tconv1 = torch.nn.Conv2d(2, 3, 3, padding=1).double()
    tconv2 = torch.nn.Conv2d(3, 4, 3, stride=2).double()
    tdense = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        for t, ours in ((tconv1, conv1), (tconv2, conv2)):
            t.weight.copy_(torch.from_numpy(kernel_to_torch(ours.W)))
            t.bias.copy_(torch.from_numpy(ours.b.copy()))
        tdense.weight.copy_(torch.from_numpy(dense.W.T.copy()))
        tdense.bias.copy_(torch.from_numpy(dense.b.copy()))

    def torch_forward(xt):
        h = F.max_pool2d(F.relu(tconv1(xt)), 2)                    # (4, 3, 4, 4)
        h = F.relu(tconv2(F.pad(h, (0, 1, 0, 1))))                 # "same", stride 2: (4, 4, 2, 2)
        h = F.avg_pool2d(h, 2)                                     # (4, 4, 1, 1)
        return tdense(h.permute(0, 2, 3, 1).flatten(1))            # our flatten order: H, W, C

    params = [*tconv1.parameters(), *tconv2.parameters(), *tdense.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.01)
    loss = F.cross_entropy(torch_forward(_nchw(x)), torch.from_numpy(labels))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.fit(x, labels, loss="cross_entropy", optimizer=snn.Adam(lr=0.01), epochs=1,
              batch_size=None, shuffle=False)
    np.testing.assert_allclose(conv1.W, kernel_from_torch(tconv1.weight.detach()), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(conv2.W, kernel_from_torch(tconv2.weight.detach()), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dense.W, tdense.weight.detach().numpy().T, rtol=1e-9, atol=1e-12)
    for ours, theirs in ((conv1, tconv1), (conv2, tconv2), (dense, tdense)):
        np.testing.assert_allclose(ours.b, theirs.bias.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.history.history["loss"][0], loss.item(), rtol=1e-9)


def test_cnn_copies_and_files_predict_identically(tmp_path):
    rng = np.random.default_rng(12)
    x = rng.random((20, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    model = snn.Sequential([snn.Conv2D(4, 3, padding="same"), snn.ReLU(), snn.MaxPool2D(2),
                            snn.Flatten(), snn.Dense(3)], seed=0)
    model.fit(x, y, loss="cross_entropy", epochs=2, batch_size=8)
    expected = model.output(x)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model)),
                  snn.load(model.save(tmp_path / "cnn.npz"))):
        np.testing.assert_array_equal(other.output(x), expected)
        assert other[0].get_config() == model[0].get_config()
    assert np.allclose(model.astype("float64").output(x), expected, rtol=1e-5, atol=1e-6)


def test_conv2d_activation_equals_separate_layers():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 6, 6, 2))
    fused = snn.Conv2D(4, 3, activation="ReLU")
    y, dx, grads, g = _run(fused, x, rng)
    plain = snn.Conv2D(4, 3)
    model = snn.Sequential([plain, snn.ReLU()], seed=0, dtype="float64", input_shape=(6, 6, 2))
    plain.needs_input_grad = True
    np.testing.assert_array_equal(model.forward(x), y)
    np.testing.assert_array_equal(model.backward(g), dx)
    for (_, ours), (_, theirs) in zip(sorted(grads.items()), model.named_gradients()):
        np.testing.assert_array_equal(ours, theirs)
    assert fused.get_config()["activation"] == "relu"
    assert max(snn.gradcheck(snn.Conv2D(3, 2, activation="tanh"), x).values()) < 1e-6
    with pytest.raises(ValueError, match="activation must be None or one of"):
        snn.Conv2D(4, 3, activation="swish")


def test_cnn_with_batch_norm_two_adam_steps_equal_torch():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((6, 6, 6, 1))
    labels = np.array([0, 1, 2, 1, 0, 2])
    model = snn.Sequential([snn.Conv2D(3, 3, padding="same"), snn.BatchNormalization(), snn.ReLU(),
                            snn.MaxPool2D(2), snn.Flatten(), snn.Dense(3)],
                           seed=0, dtype="float64", input_shape=(6, 6, 1))
    conv, norm, dense = model[0], model[1], model[5]
    tconv = torch.nn.Conv2d(1, 3, 3, padding=1).double()
    tnorm = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5).double()
    tdense = torch.nn.Linear(27, 3).double()
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(kernel_to_torch(conv.W)))
        tconv.bias.copy_(torch.from_numpy(conv.b.copy()))
        tdense.weight.copy_(torch.from_numpy(dense.W.T.copy()))
        tdense.bias.copy_(torch.from_numpy(dense.b.copy()))
    params = [*tconv.parameters(), *tnorm.parameters(), *tdense.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.01)
    for _ in range(2):                  # full batch, no shuffling: the same steps
        h = F.max_pool2d(F.relu(tnorm(tconv(_nchw(x)))), 2)
        loss = F.cross_entropy(tdense(h.permute(0, 2, 3, 1).flatten(1)), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.fit(x, labels, loss="cross_entropy", optimizer=snn.Adam(lr=0.01), epochs=2,
              batch_size=None, shuffle=False)
    np.testing.assert_allclose(conv.W, kernel_from_torch(tconv.weight.detach()), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(norm.gamma, tnorm.weight.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(norm.beta, tnorm.bias.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(norm.running_mean, tnorm.running_mean.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(norm.running_var, tnorm.running_var.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dense.W, tdense.weight.detach().numpy().T, rtol=1e-9, atol=1e-11)
    # (the conv's bias before batch norm has a gradient of rounding noise: Adam turns it
    # into steps of 1e-11 in both libraries, not comparable)
    np.testing.assert_allclose(dense.b, tdense.bias.detach().numpy(), rtol=1e-9, atol=1e-11)
    tnorm.eval()
    with torch.no_grad():
        h = F.max_pool2d(F.relu(tnorm(tconv(_nchw(x)))), 2)
        expected = tdense(h.permute(0, 2, 3, 1).flatten(1)).numpy()
    np.testing.assert_allclose(model.output(x), expected, rtol=1e-9, atol=1e-11)
