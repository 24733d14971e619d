"""A short training run on the real Fashion-MNIST files (skipped where they are absent)."""

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.datasets import DatasetNotFoundError, load_fashion_mnist


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")


def test_one_epoch_on_a_subset_is_far_above_chance(fashion):
    X_train, y_train, X_test, y_test = fashion
    model = snn.Sequential([snn.Dense(128, kernel_initializer="he_uniform"), snn.ReLU(),
                            snn.Dense(10)], seed=0)
    history = model.fit(X_train[:20_000], y_train[:20_000], loss="cross_entropy",
                        optimizer=snn.Adam(lr=1e-3), epochs=1, batch_size=128)
    scores = model.evaluate(X_test, y_test)
    assert scores["accuracy"] > 0.80            # chance is 0.10
    assert history.history["accuracy"][0] > 0.70
    predicted = model.predict(X_test)
    assert set(np.unique(predicted)) == set(range(10))


def test_a_small_cnn_on_a_subset_is_far_above_chance(fashion):
    X_train, y_train, X_test, y_test = fashion
    images_train, images_test = X_train[:4000].reshape(-1, 28, 28, 1), X_test[:2000].reshape(-1, 28, 28, 1)
    model = snn.Sequential([snn.Conv2D(8, 3), snn.ReLU(), snn.MaxPool2D(2),
                            snn.Conv2D(16, 3), snn.ReLU(), snn.MaxPool2D(2),
                            snn.Flatten(), snn.Dense(10)], seed=0)
    history = model.fit(images_train, y_train[:4000], loss="cross_entropy",
                        optimizer=snn.Adam(lr=2e-3), epochs=2, batch_size=64)
    assert model.output_shape == (10,) and model[3].output_shape == (11, 11, 16)
    scores = model.evaluate(images_test, y_test[:2000])
    assert scores["accuracy"] > 0.70            # chance is 0.10
    assert history.history["loss"][1] < history.history["loss"][0]
    assert set(np.unique(model.predict(images_test))) == set(range(10))
