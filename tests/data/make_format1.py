"""Writes the format-1 model files that tests/test_io.py loads, with what the code that
wrote them computed from them, so that later releases can be checked against it.

Run once, with scratchnn 0.1.0 as of commit 6604606 (the last release that wrote format 1):

    PYTHONPATH=<checkout of 6604606>/src python tests/data/make_format1.py

It writes format1_adam_float64.npz, format1_sgd_float32.npz and format1_expected.npz here.
"""

from pathlib import Path

import numpy as np
import scratchnn as snn

HERE = Path(__file__).resolve().parent


def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def main() -> None:
    X, y = data()
    expected = {}
    recipes = {
        "adam_float64": dict(dtype="float64", optimizer=lambda: snn.Adam(lr=0.01)),
        "sgd_float32": dict(dtype="float32", optimizer=lambda: snn.SGD(lr=0.05, momentum=0.9)),
    }
    for name, recipe in recipes.items():
        model = snn.Sequential([snn.Dense(8), snn.ReLU(), snn.Dropout(0.25), snn.Dense(3)],
                               seed=3, dtype=recipe["dtype"])
        model.classes = np.array(["a", "b", "c"])
        model.fit(X, y, loss="cross_entropy", optimizer=recipe["optimizer"](), epochs=2, batch_size=8)
        path = model.save(HERE / f"format1_{name}.npz", metadata={"written_by": "make_format1.py"})
        loaded = snn.load(path)
        expected[f"{name}/proba"] = loaded.predict_proba(X)
        expected[f"{name}/params"] = loaded.params.copy()
        loaded.fit(X, y, epochs=2, batch_size=8)
        expected[f"{name}/params_after_2_more_epochs"] = loaded.params.copy()
    np.savez(HERE / "format1_expected.npz", **expected)


if __name__ == "__main__":
    main()
