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
