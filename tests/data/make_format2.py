"""Writes the format-2 model file that tests/test_io.py loads, with what the code that
wrote it computed from it, so that later releases can be checked against it.

Run once, with scratchnn 0.1.0 as of commit a9e1183 (the last release that wrote format 2,
before format 3 added "image_layout"):

    git worktree add /tmp/release-f2 a9e1183
    PYTHONPATH=/tmp/release-f2/src python tests/data/make_format2.py
    git worktree remove /tmp/release-f2

It writes format2_adam_float32.npz and format2_expected.npz here.
"""

from pathlib import Path

import numpy as np
import scratchnn as snn

HERE = Path(__file__).resolve().parent


def data():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(36, 5))
    y = (X[:, 0] - X[:, 3] > 0).astype(int) + (X[:, 1] > 0.8).astype(int)
    return X, y


def main() -> None:
    assert snn.io.FORMAT_VERSION == 2, "run this with the release that writes format 2"
    X, y = data()
    model = snn.Sequential([snn.Dense(12), snn.Tanh(), snn.Dropout(0.3), snn.Dense(6), snn.ReLU(),
                            snn.Dense(3)], seed=5, dtype="float32")
    model.classes = np.array(["low", "mid", "high"])
    model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.02), metrics=["accuracy"],
              epochs=3, batch_size=8)
    path = model.save(HERE / "format2_adam_float32.npz", metadata={"written_by": "make_format2.py"})
    loaded = snn.load(path)
    expected = {"proba": loaded.predict_proba(X), "output": loaded.output(X),
                "params": loaded.params.copy(),
                "m": loaded.optimizer.state_dict()["m"], "v": loaded.optimizer.state_dict()["v"]}
    loaded.fit(X, y, epochs=2, batch_size=8)
    expected["params_after_2_more_epochs"] = loaded.params.copy()
    np.savez(HERE / "format2_expected.npz", **expected)


if __name__ == "__main__":
    main()
