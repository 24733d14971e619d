"""RandomFlip and RandomTranslation: exact values, the identity in inference, adjoint
gradients, seeding, files, and where backpropagation stops."""

import numpy as np
import pytest

import scratchnn as snn


def _built(layer, shape=(5, 6, 2), seed=0):
    model = snn.Sequential([layer], seed=seed, dtype="float64", input_shape=shape)
    layer.needs_input_grad = True
    return model


def test_flip_values_and_inference_identity():
    x = np.random.default_rng(0).standard_normal((64, 5, 6, 2))
    layer = snn.RandomFlip()
    _built(layer)
    assert layer.forward(x, training=False) is x
    y = layer.forward(x, training=True)
    flipped = np.array([np.array_equal(y[n], x[n, :, ::-1]) for n in range(64)])
    kept = np.array([np.array_equal(y[n], x[n]) for n in range(64)])
    assert np.all(flipped ^ kept) and 16 < flipped.sum() < 48
    g = np.random.default_rng(1).standard_normal(x.shape)
    # the adjoint: <flip(x), g> == <x, flip^T(g)>
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * layer.backward(g)), rtol=1e-12)
    both = snn.RandomFlip("horizontal_and_vertical")
    _built(both)
    y = both.forward(x, training=True)
    # every image is one of the four; with a mask per axis, all four occur in 64 images
    variants = [[np.array_equal(y[n], v) for v in (x[n], x[n, ::-1], x[n, :, ::-1], x[n, ::-1, ::-1])]
                for n in range(64)]
    assert all(sum(row) == 1 for row in variants)
    assert np.all(np.sum(variants, axis=0) > 0)
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * both.backward(g)), rtol=1e-12)


def test_translation_values_match_a_zero_filled_shift():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 7, 9, 3))
    layer = snn.RandomTranslation(0.3, 0.2)
    _built(layer, (7, 9, 3))
    assert layer._largest == (2, 2)
    y = layer.forward(x, training=True)
    dh, dw = layer._cache
    assert set(np.unique(dh)) <= set(range(-2, 3)) and len(np.unique(dh)) > 1
    for n in range(40):
        expected = np.zeros_like(x[n])
        for i in range(7):
            for j in range(9):
                if 0 <= i - dh[n] < 7 and 0 <= j - dw[n] < 9:
                    expected[i, j] = x[n, i - dh[n], j - dw[n]]
        np.testing.assert_array_equal(y[n], expected)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * layer.backward(g)), rtol=1e-12)
    assert layer.forward(x, training=False) is x


def test_augmentation_is_seeded_and_survives_files(tmp_path):
    x = np.random.default_rng(3).random((32, 8, 8, 1)).astype(np.float32)
    labels = np.arange(32) % 3

    def trained(seed):
        model = snn.Sequential([snn.RandomFlip(), snn.RandomTranslation(0.2), snn.Conv2D(2, 3),
                                snn.Flatten(), snn.Dense(3)], seed=seed)
        model.fit(x, labels, loss="cross_entropy", epochs=2, batch_size=8)
        return model

    a, b = trained(0), trained(0)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, trained(1).params)
    loaded = snn.load(a.save(tmp_path / "augmented.npz"))
    np.testing.assert_array_equal(loaded.output(x), a.output(x))
    assert [type(layer).__name__ for layer in loaded.layers[:2]] == ["RandomFlip", "RandomTranslation"]


def test_backpropagation_stops_at_the_first_layer_with_parameters():
    model = snn.Sequential([snn.RandomFlip(), snn.RandomTranslation(0.2), snn.Conv2D(2, 3),
                            snn.ReLU(), snn.Flatten(), snn.Dense(3)], seed=0, input_shape=(6, 6, 1))
    assert [layer.needs_input_grad for layer in model.layers] == [False, False, False, True, True, True]
    calls = []
    for layer in model.layers[:2]:
        layer.backward = lambda g, name=layer.name: calls.append(name)
    y = model.forward(np.ones((4, 6, 6, 1), dtype=np.float32), training=True)
    assert model.backward(np.ones_like(y)) is None and calls == []
    # gradcheck still checks the input's gradient through every layer
    errors = snn.gradcheck(snn.Sequential([snn.RandomTranslation(0.3), snn.Conv2D(2, 2)], seed=0),
                           np.random.default_rng(4).standard_normal((3, 5, 5, 1)), training=True)
    assert set(errors) == {"conv2d_0.W", "conv2d_0.b", "input"} and max(errors.values()) < 1e-6


@pytest.mark.parametrize("make, match", [
    (lambda: snn.RandomFlip("diagonal"), "mode must be one of"),
    (lambda: snn.RandomFlip(None), "mode must be one of"),
    (lambda: snn.RandomTranslation(1.0), "height_factor"),
    (lambda: snn.RandomTranslation(-0.1), "height_factor"),
    (lambda: snn.RandomTranslation(0.1, float("nan")), "width_factor"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_flat_samples_are_refused():
    for layer in (snn.RandomFlip(), snn.RandomTranslation()):
        with pytest.raises(ValueError, match=r"images \(N, height, width, channels\)"):
            snn.Sequential([layer], input_shape=(784,))
