"""Model files: exact round trips, resumed training, atomic writes, hostile files."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

from scratchnn import (SGD, Adam, CrossEntropy, Dense, Dropout, Flatten, Huber, LeakyReLU, ReLU,
                       Sequential, Tanh)
from scratchnn.callbacks import ModelCheckpoint
from scratchnn.io import FORMAT_VERSION, load, save
from scratchnn.layers import LAYERS
from scratchnn.optimizers import OPTIMIZERS

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "scratchnn"


# ------------------------------------------------------------------- helpers
def make_data(n=44, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y % classes


def make_model(dtype="float32", seed=7):
    return Sequential([Dense(16), ReLU(), Dropout(0.25), Dense(3)], seed=seed, dtype=dtype)


def trained_model(dtype="float32", epochs=3):
    X, y = make_data()
    model = make_model(dtype)
    model.fit(X, y, loss=CrossEntropy(), optimizer=Adam(lr=0.01), epochs=epochs, batch_size=8)
    return model, X, y


def read_npz(path):
    """The arrays of a model file, as a dict; the config as a JSON dict."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    doc = json.loads(arrays.pop("config").tobytes().decode("utf-8"))
    return doc, arrays


def write_npz(path, doc, arrays):
    """Write a (possibly broken) model file with the given config document and arrays."""
    config = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, config=config, **arrays)
    return path


@pytest.fixture
def saved(tmp_path):
    """A trained model and the (config, arrays) of its file."""
    model, X, y = trained_model()
    path = save(model, tmp_path / "model.npz")
    doc, arrays = read_npz(path)
    return model, doc, arrays


# --------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, dtype):
    model, X, y = trained_model(dtype)
    path = save(model, tmp_path / "model.npz")
    assert path == str(tmp_path / "model.npz")
    loaded = load(path)

    assert loaded.dtype == np.dtype(dtype) and loaded.params.dtype == np.dtype(dtype)
    assert np.array_equal(loaded.params, model.params)
    assert loaded.params is not model.params
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)
    # Layers are views of the loaded flat vector, not copies.
    loaded.check_parameter_views()
    assert np.shares_memory(loaded.layers[0].W, loaded.params)

    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    assert (loaded.name, loaded.seed, loaded.input_shape) == (model.name, model.seed, (5,))
    assert isinstance(loaded.loss, CrossEntropy)
    assert loaded.metadata == {}

    assert type(loaded.optimizer) is Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    expected, got = model.optimizer.state_dict(), loaded.optimizer.state_dict()
    assert got.keys() == expected.keys() == {"iterations", "m", "v"}
    assert got["iterations"] == expected["iterations"] == 3 * 6
    for name in ("m", "v"):
        assert got[name].dtype == np.dtype(dtype)
        assert np.array_equal(got[name], expected[name])
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state


def test_file_layout(saved):
    model, doc, arrays = saved
    assert set(arrays) == {"params", "optimizer/m", "optimizer/v"}
    assert doc["format"] == "scratchnn-model" and doc["format_version"] == FORMAT_VERSION == 3
    assert doc["image_layout"] == "channels_last"          # written by every file, images or not
    assert doc["model"] == "Sequential" and doc["n_buffers"] == 0    # no buffers: no "buffers" array
    assert doc["dtype"] == "float32" and doc["seed"] == 7 and doc["input_shape"] == [5]
    assert doc["n_params"] == 5 * 16 + 16 + 16 * 3 + 3 == arrays["params"].size
    assert [entry["class"] for entry in doc["layers"]] == ["Dense", "ReLU", "Dropout", "Dense"]
    assert doc["layers"][2]["config"] == {"rate": 0.25, "name": "dropout_0"}
    assert doc["loss"] == {"class": "cross_entropy", "config": {}}
    assert doc["optimizer"]["class"] == "adam" and doc["optimizer"]["state"] == ["m", "v"]
    assert doc["optimizer"]["config"]["lr"] == 0.01
    assert doc["rng_state"]["bit_generator"] == "PCG64"


def test_config_is_a_byte_array_not_an_object_array(tmp_path):
    model, _, _ = trained_model()
    path = save(model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            assert archive[name].dtype.kind in "uf", name
        assert archive["config"].dtype == np.uint8 and archive["config"].ndim == 1


def test_string_classes_round_trip(tmp_path):
    model, X, y = trained_model()
    model.classes = np.array(["cat", "dog", "bird"])
    loaded = load(save(model, tmp_path / "m.npz"))
    assert loaded.classes.tolist() == ["cat", "dog", "bird"]
    predicted = loaded.predict(X)
    assert predicted.dtype.kind == "U"
    assert predicted.tolist() == model.predict(X).tolist()
    expected = np.array(["cat", "dog", "bird"])[model.predict_proba(X).argmax(axis=1)]
    assert predicted.tolist() == expected.tolist()


def test_numpy_integer_classes_become_json_ints(tmp_path):
    model, X, _ = trained_model()
    model.classes = np.array([10, 20, 30], dtype=np.int64)
    path = save(model, tmp_path / "m.npz")
    assert read_npz(path)[0]["classes"] == [10, 20, 30]
    assert load(path).predict(X).tolist() == model.predict(X).tolist()


def test_continued_training_matches_an_uninterrupted_run(tmp_path):
    X, y = make_data()
    settings = dict(batch_size=8, shuffle=True)

    uninterrupted = make_model(seed=123)
    uninterrupted.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=4, **settings)

    first_half = make_model(seed=123)
    first_half.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=2, **settings)
    path = save(first_half, tmp_path / "checkpoint")
    resumed = load(path)
    resumed.fit(X, y, epochs=2, **settings)

    assert np.array_equal(resumed.params, uninterrupted.params)
    assert resumed.optimizer.iterations == uninterrupted.optimizer.iterations == 4 * 6
    assert np.array_equal(resumed.optimizer.state["v"], uninterrupted.optimizer.state["v"])

    # The check has teeth: without the saved random state (shuffling, dropout) it fails.
    reseeded = load(path)
    reseeded.rng.bit_generator.state = np.random.default_rng(123).bit_generator.state
    reseeded.fit(X, y, epochs=2, **settings)
    assert not np.array_equal(reseeded.params, uninterrupted.params)


def test_resume_from_a_model_checkpoint_written_during_fit(tmp_path):
    X, y = make_data()
    model = make_model(seed=5)
    checkpoint = ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.npz"), monitor="loss")
    model.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=4, batch_size=8,
              callbacks=[checkpoint])
    assert checkpoint.saved == [str(tmp_path / f"ckpt-{e}.npz") for e in (1, 2, 3, 4)]
    assert np.array_equal(load(checkpoint.saved[-1]).params, model.params)
    resumed = load(checkpoint.saved[1])
    resumed.fit(X, y, epochs=2, batch_size=8)
    assert np.array_equal(resumed.params, model.params)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_state_round_trips(tmp_path, name):
    X, y = make_data()
    kwargs = {"sgd": dict(momentum=0.9, nesterov=True), "rmsprop": dict(momentum=0.5)}.get(name, {})
    model = Sequential([Dense(4), Tanh(), Dense(3)], seed=1)
    model.fit(X, y, loss="cross_entropy", optimizer=OPTIMIZERS[name](**kwargs), epochs=1, batch_size=16)
    loaded = load(save(model, tmp_path / "m"))
    assert type(loaded.optimizer) is OPTIMIZERS[name]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    expected, got = model.optimizer.state_dict(), loaded.optimizer.state_dict()
    # (L-BFGS keeps only its step count: its pairs are not saved, see its docstring)
    assert got.keys() == expected.keys() and (len(got) > 1 or name == "lbfgs")
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


def test_regression_model_without_optimizer_state(tmp_path):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((30, 2, 3)), rng.standard_normal((30, 2))
    model = Sequential([Flatten(), Dense(4), LeakyReLU(0.2), Dense(2)], seed=None, dtype="float64",
                       name="regressor")
    model.fit(X, y, loss=Huber(delta=0.5), optimizer=SGD(lr=0.05), metrics=["mae"], epochs=2)
    loaded = load(save(model, tmp_path / "r.npz"))
    assert (loaded.name, loaded.seed, loaded.input_shape) == ("regressor", None, (2, 3))
    assert loaded.loss.delta == 0.5 and loaded.metrics == ["mae"]
    assert loaded.optimizer.state == {} and loaded.optimizer.iterations == model.optimizer.iterations
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_include_optimizer_false(tmp_path):
    model, _, _ = trained_model()
    path = save(model, tmp_path / "m.npz", include_optimizer=False)
    doc, arrays = read_npz(path)
    assert doc["optimizer"] is None and set(arrays) == {"params"}
    loaded = load(path)
    assert loaded.optimizer is None and np.array_equal(loaded.params, model.params)


def test_built_but_untrained_model(tmp_path):
    model = Sequential([Dense(2)], seed=0).build((3,))
    loaded = load(save(model, tmp_path / "m.npz"))
    assert loaded.loss is None and loaded.optimizer is None and loaded.classes is None
    assert np.array_equal(loaded.params, model.params)


def test_metadata_round_trips_and_is_kept_on_resave(tmp_path):
    model, _, _ = trained_model()
    mean = np.array([0.5, -1.25, 3.0])
    path = model.save(tmp_path / "m", metadata={"mean": mean, "scale": np.float32(2.0), "note": "ok"})
    assert path == str(tmp_path / "m.npz")
    loaded = load(path)
    assert loaded.metadata == {"mean": [0.5, -1.25, 3.0], "scale": 2.0, "note": "ok"}
    again = load(save(loaded, tmp_path / "again.npz"))
    assert again.metadata == loaded.metadata


@pytest.mark.parametrize("metadata, error", [
    ({"scaler": object()}, TypeError),
    ({"values": {1, 2}}, TypeError),
    ({1: "non-string key"}, TypeError),
    (["not", "a", "dict"], TypeError),
    ({"mean": float("nan")}, ValueError),
])
def test_metadata_must_be_json(tmp_path, metadata, error):
    model, _, _ = trained_model(epochs=1)
    with pytest.raises(error, match="metadata"):
        save(model, tmp_path / "m.npz", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(RuntimeError, match="not built"):
        save(make_model(), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_unregistered_layer_cannot_be_saved(tmp_path):
    class MyReLU(ReLU):
        pass

    model = Sequential([Dense(2), MyReLU()], seed=0).build((3,))
    with pytest.raises(ValueError, match="MyReLU.*LAYERS"):
        save(model, tmp_path / "m.npz")


def test_load_adds_the_npz_suffix_like_save(tmp_path):
    model, _, _ = trained_model(epochs=1)
    save(model, tmp_path / "m")
    assert np.array_equal(load(tmp_path / "m").params, model.params)


def test_load_missing_file(tmp_path):
    missing = tmp_path / "nothing-here.npz"
    with pytest.raises(FileNotFoundError, match="nothing-here.npz"):
        load(missing)


# -------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("target", ["savez", "replace"])
def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, target):
    model, _, _ = trained_model(epochs=1)
    path = tmp_path / "model.npz"
    save(model, path)
    before = path.read_bytes()

    if target == "savez":
        def broken(file, **arrays):
            file.write(b"PK\x03\x04 half a model")
            raise OSError("disk full")
        monkeypatch.setattr(np, "savez", broken)
    else:
        def broken(src, dst):
            raise OSError("rename failed")
        monkeypatch.setattr(os, "replace", broken)

    model.params[0] += 1
    with pytest.raises(OSError):
        save(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_save_replaces_an_existing_file_and_leaves_no_temporary(tmp_path):
    model, _, _ = trained_model(epochs=1)
    path = tmp_path / "model.npz"
    save(model, path)
    os.chmod(path, 0o640)
    model.params[0] += 1
    save(model, path)
    assert load(path).params[0] == model.params[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_into_a_missing_directory(tmp_path):
    model, _, _ = trained_model(epochs=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(model, tmp_path / "no" / "such" / "dir" / "m.npz")


# -------------------------------------------------------------- hostile files
class _Payload:
    """Unpickling this creates the directory ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_object_array_is_never_decoded(tmp_path):
    # A .npy of a dict holding the payload, as np.save(..., allow_pickle=True) writes it.
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.save(f, np.array({"config": _Payload(marker)}, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a scratchnn model file"):
        load(path)
    assert not marker.exists()

    # The payload is live: the same file, decoded without the guard, runs it.
    probe = tmp_path / "probe"
    with open(tmp_path / "probe.npy", "wb") as f:
        np.save(f, np.array([_Payload(probe)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "probe.npy", allow_pickle=True)
    assert probe.exists()


@pytest.mark.parametrize("member", ["config", "params"])
def test_object_array_inside_an_npz_is_never_decoded(saved, tmp_path, member):
    _, doc, arrays = saved
    marker = tmp_path / "pwned"
    arrays = dict(arrays, config=np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    arrays[member] = np.array([_Payload(marker)], dtype=object)
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="only numbers are allowed"):
        load(path)
    assert not marker.exists()


def test_random_bytes(tmp_path):
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="is not a scratchnn model file"):
        load(path)


def test_random_bytes_behind_a_zip_signature(tmp_path):
    path = tmp_path / "random.npz"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="is not a scratchnn model file"):
        load(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_model_file(tmp_path, fraction):
    model, _, _ = trained_model(epochs=1)
    data = pathlib.Path(save(model, tmp_path / "m.npz")).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ValueError, match="is not a scratchnn model file"):
        load(truncated)


def test_plain_npy_and_empty_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "empty.npz").write_bytes(b"")
    for name in ("a.npy", "empty.npz"):
        with pytest.raises(ValueError, match="is not a scratchnn model file"):
            load(tmp_path / name)


def test_compressed_member_is_refused(saved, tmp_path):
    _, doc, arrays = saved
    path = tmp_path / "c.npz"
    with open(path, "wb") as f:
        np.savez_compressed(f, config=np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8), **arrays)
    with pytest.raises(ValueError, match="compressed"):
        load(path)


def test_huge_declared_shapes_allocate_nothing(saved, tmp_path):
    """A small file claiming a model of 10**12 parameters is refused before any allocation."""
    _, doc, _ = saved
    doc = _set(doc, "input_shape", [10**6])
    doc = _set(doc, "layers", [{"class": "Dense", "config": {"units": 10**6, "use_bias": False}}])
    doc = _set(doc, "n_params", 10**12)
    doc = _set(doc, "optimizer", None)
    path = tmp_path / "huge.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    config = io.BytesIO()
    np.save(config, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("config.npy", config.getvalue())
        archive.writestr("params.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ValueError, match=r"declares shape \(1000000000000,\).*more data than"):
        load(path)


def _set(doc, dotted, value):
    """A deep copy of ``doc`` with the field at ``dotted`` ("layers.0.config.units") set."""
    doc = json.loads(json.dumps(doc))
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize("field, value, message", [
    ("layers.0.class", "os.system", r"layers\[0\]: unknown class 'os.system'"),
    ("layers.1.class", "__import__", "unknown class '__import__'"),
    ("layers.0.config.dropout_rate", 0.5, r"layers\[0\] \(Dense\): unknown argument 'dropout_rate'"),
    ("layers.2.config.__class__", "x", r"layers\[2\] \(Dropout\): unknown argument '__class__'"),
    ("layers.0.config.units", "16", r"layers\[0\] \(Dense\): units must be a positive integer"),
    ("layers.0.config.units", 17, "the layers declare .* but n_params is"),
    ("layers.0.config.units", {"a": 1}, r"layers\[0\].config\['units'\] must be a number"),
    ("layers.0.config.kernel_initializer", "os.system", r"layers\[0\] \(Dense\): kernel_initializer"),
    ("layers.0.config.name", 5, "name must be a string"),
    ("layers.0.config", [], r"layers\[0\].config must be an object"),
    ("layers.2.config.rate", 1.5, r"layers\[2\] \(Dropout\): rate must be"),
    ("layers.3.config.name", "dense_0", "layer names must be unique"),
    ("layers.0", "Dense", r"layers\[0\] must be an object"),
    ("layers", [], "layers must be a non-empty list"),
    ("layers", {"0": {}}, "layers must be a non-empty list"),
    ("loss.class", "pickle.loads", "loss: unknown class 'pickle.loads'"),
    ("loss.config.delta", 1.0, r"loss \(CrossEntropy\): unknown argument 'delta'"),
    ("optimizer.class", "Adam", "optimizer: unknown class 'Adam'"),
    ("optimizer.config.lr", "fast", r"optimizer \(Adam\): lr must be"),
    ("optimizer.config.lr", -1, r"optimizer \(Adam\): lr must be"),
    ("optimizer.config.momentum", 0.9, r"optimizer \(Adam\): unknown argument 'momentum'"),
    ("optimizer.iterations", -1, "optimizer.iterations must be a non-negative integer"),
    ("optimizer.iterations", 0, r"keeps the state \[\], but the file has \['m', 'v'\]"),
    ("optimizer.iterations", True, "optimizer.iterations must be a non-negative integer"),
    ("optimizer.state", ["m"], "unexpected array"),
    ("optimizer.state", ["m", "v", "../../etc"], "optimizer.state must be a list of distinct identifiers"),
    ("dtype", "float16", "dtype must be one of"),
    ("dtype", "object", "dtype must be one of"),
    ("dtype", 32, "dtype must be one of"),
    ("name", 5, "name must be a string"),
    ("seed", -1, "seed must be a non-negative integer or null"),
    ("seed", "7", "seed must be a non-negative integer or null"),
    ("seed", 7.0, "seed must be a non-negative integer or null"),
    ("input_shape", "5", "input_shape must be a non-empty list of positive integers"),
    ("input_shape", [0], "input_shape must be a non-empty list of positive integers"),
    ("input_shape", [6], "the layers declare .* but n_params is"),
    ("input_shape", [5, 2], r"layers\[0\] \(Dense\) cannot take inputs of shape \(5, 2\)"),
    ("n_params", "147", "n_params must be a non-negative integer"),
    ("n_params", 10**12, "the layers declare .* but n_params is"),
    ("metrics", "accuracy", "metrics must be a list of metric names or null"),
    ("metrics", ["r2"], "metrics: metrics must be names from"),
    ("classes", {"0": "cat"}, "classes must be null or a non-empty list"),
    ("classes", ["cat", 1, 2], "classes must be null or a non-empty list"),
    ("classes", [], "classes must be null or a non-empty list"),
    ("classes", [["a"], ["b"], ["c"]], "classes must be null or a non-empty list"),
    ("rng_state", "PCG64", "rng_state must be an object"),
    ("rng_state.bit_generator", "MT19937", "rng_state.bit_generator must be 'PCG64'"),
    ("rng_state.state.state", -5, "rng_state is not a valid PCG64 state"),
    ("rng_state.state.inc", "x", "rng_state is not a valid PCG64 state"),
    ("rng_state.has_uint32", 7, "rng_state is not a valid PCG64 state"),
    ("metadata", [1, 2], "metadata must be an object"),
    ("scratchnn_version", 1, "scratchnn_version must be a string"),
    ("format_version", 0, "format_version must be a positive integer"),
    ("format_version", "1", "format_version must be a positive integer"),
    ("format_version", FORMAT_VERSION + 1,
     f"model format version {FORMAT_VERSION + 1}, but scratchnn .* reads versions 1 to {FORMAT_VERSION}"),
    ("image_layout", "channels_first", r"image_layout must be 'channels_last' \(image samples "
                                       r"\(height, width, channels\)\), got 'channels_first'"),
    ("image_layout", None, "image_layout must be 'channels_last'"),
    ("image_layout", ["channels_last"], "image_layout must be 'channels_last'"),
    ("image_layout", "CHANNELS_LAST", "image_layout must be 'channels_last'"),
    ("image_layout", _DELETE, r"missing field\(s\) \['image_layout'\]"),
    ("extra_field", 1, r"unknown field\(s\) \['extra_field'\]"),
    ("model", ["Sequential"], r"model must be one of \['Sequential'\]"),
    ("model", "Functional", r"model must be one of \['Sequential'\]"),
    ("n_buffers", -1, "n_buffers must be a non-negative integer"),
    ("n_buffers", 1.0, "n_buffers must be a non-negative integer"),
    ("n_buffers", 2, r"the array\(s\) \['buffers'\] are missing"),
    ("metadata", _DELETE, r"missing field\(s\) \['metadata'\]"),
    ("layers.0.class", _DELETE, r"layers\[0\] must be an object with the keys"),
])
def test_invalid_field(saved, tmp_path, field, value, message):
    _, doc, arrays = saved
    path = write_npz(tmp_path / "bad.npz", _set(doc, field, value), arrays)
    with pytest.raises(ValueError, match=message):
        load(path)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(params=a["params"][:-1]), r"'params' has shape \(146,\).*n_params = 147"),
    (lambda a: a.update(params=np.append(a["params"], np.float32(0))), r"'params' has shape \(148,\)"),
    (lambda a: a.update(params=a["params"].reshape(7, 21)), r"'params' has shape \(7, 21\)"),
    (lambda a: a.update(params=a["params"].astype(np.float64)), "'params' has dtype float64"),
    (lambda a: a.update(params=a["params"].view(np.int32)), "'params' has dtype int32"),
    (lambda a: a.__setitem__("params", np.where(np.arange(147) == 7, np.nan, a["params"])
                             .astype(np.float32)), "'params' contains NaN or infinity .*index 7"),
    (lambda a: a["params"].__setitem__(3, np.inf), "'params' contains NaN or infinity"),
    (lambda a: a.pop("params"), r"\['params'\] are missing"),
    (lambda a: a.pop("optimizer/v"), r"\['optimizer/v'\] are missing"),
    (lambda a: a.update({"optimizer/v": a["optimizer/v"][:10]}), "'optimizer/v' has shape"),
    (lambda a: a["optimizer/m"].__setitem__(0, np.nan), "'optimizer/m' contains NaN"),
    (lambda a: a.update(extra=np.zeros(2)), r"unexpected array\(s\) \['extra'\]"),
])
def test_invalid_array(saved, tmp_path, change, message):
    _, doc, arrays = saved
    arrays = {k: v.copy() for k, v in arrays.items()}
    change(arrays)
    path = write_npz(tmp_path / "bad.npz", doc, arrays)
    with pytest.raises(ValueError, match=message):
        load(path)


@pytest.mark.parametrize("config, message", [
    (None, "has no 'config' array"),
    (np.frombuffer(b"\xff\xfe not utf-8", dtype=np.uint8), "not UTF-8"),
    (np.frombuffer(b"{not json", dtype=np.uint8), "not valid JSON"),
    (np.frombuffer(b"[1, 2]", dtype=np.uint8), "must be a JSON object"),
    (np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8), "not valid JSON"),
    (np.frombuffer(b'{"format": "keras"}', dtype=np.uint8), "'format' is 'keras'"),
    (np.frombuffer(b'{"format": "scratchnn-model", "x": NaN}', dtype=np.uint8), "NaN is not a JSON number"),
    (np.array([123], dtype=np.int64), "'config' array must be 1-D uint8"),
    (np.zeros((2, 2), dtype=np.uint8), "'config' array must be 1-D uint8"),
])
def test_invalid_config_array(saved, tmp_path, config, message):
    _, _, arrays = saved
    path = tmp_path / "bad.npz"
    extra = {} if config is None else {"config": config}
    with open(path, "wb") as f:
        np.savez(f, **arrays, **extra)
    with pytest.raises(ValueError, match=message):
        load(path)


def test_no_pickle_in_the_sources():
    """The package never pickles: no import of pickle (or of its kin), no pickle call,
    and the one np.load guarded with allow_pickle=False. (Docstrings may say that a
    model object survives pickling, which Python does without code of ours.)"""
    code = [(path.name, line.strip()) for path in SRC.rglob("*.py")
            for line in path.read_text(encoding="utf-8").splitlines()]
    used = [hit for hit in code if re.search(r"import (c?pickle|dill|marshal|shelve)|pickle\.|"
                                             r"allow_pickle=True|np\.load\(", hit[1])]
    assert used == [("io.py", "archive = np.load(f, allow_pickle=False)   # never decode "
                              "Python objects from a file")]


# ------------------------------------------------------------ format versions
DATA = pathlib.Path(__file__).resolve().parent / "data"


def format1_data():
    """The data tests/data/make_format1.py trained on (its own function)."""
    spec = importlib.util.spec_from_file_location("make_format1", DATA / "make_format1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.data()


@pytest.mark.parametrize("name", ["adam_float64", "sgd_float32"])
def test_a_format_1_file_predicts_and_trains_on_as_the_release_that_wrote_it(name):
    """The files were written by scratchnn 0.1.0 (format 1), with what that release
    computed from them: the predictions, and the weights after 2 more epochs."""
    path = DATA / f"format1_{name}.npz"
    assert read_npz(path)[0]["format_version"] == 1
    expected = np.load(DATA / "format1_expected.npz", allow_pickle=False)
    X, y = format1_data()
    model = load(path)
    assert model.buffers.size == 0 and model.classes.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(model.params, expected[f"{name}/params"])
    np.testing.assert_array_equal(model.predict_proba(X), expected[f"{name}/proba"])
    model.fit(X, y, epochs=2, batch_size=8)
    after = expected[f"{name}/params_after_2_more_epochs"]
    if name == "sgd_float32":     # SGD's velocity kept its meaning: the very same numbers
        np.testing.assert_array_equal(model.params, after)
    else:                         # Adam's moments are converted and updated in another order
        np.testing.assert_allclose(model.params, after, rtol=1e-12, atol=1e-14)
        assert not np.array_equal(model.params, expected[f"{name}/params"])


def test_format_1_adam_state_is_read_as_the_moments(tmp_path):
    _, arrays = read_npz(DATA / "format1_adam_float64.npz")
    model = load(DATA / "format1_adam_float64.npz")
    np.testing.assert_allclose(model.optimizer.state["m"], arrays["optimizer/m"] * (1 - 0.9), rtol=1e-15)
    np.testing.assert_allclose(model.optimizer.state["v"], arrays["optimizer/v"] * (1 - 0.999), rtol=1e-15)
    # saved again, it is a file of the current format holding the moments themselves
    doc, resaved = read_npz(save(model, tmp_path / "again.npz"))
    assert doc["format_version"] == FORMAT_VERSION == 3 and doc["image_layout"] == "channels_last"
    np.testing.assert_array_equal(resaved["optimizer/m"], model.optimizer.state["m"])


def test_adam_moments_are_saved_as_torch_defines_them(tmp_path):
    """After one full-batch step from zero, exp_avg = (1 - beta1) g, exp_avg_sq = (1 - beta2) g^2."""
    X, y = make_data()
    model = make_model(dtype="float64")
    model.compile(loss="cross_entropy", optimizer=Adam(lr=0.01, beta1=0.8, beta2=0.99))
    twin = make_model(dtype="float64").build((5,))
    twin.compile(loss="cross_entropy")
    x, target = twin.check_data(X, y)
    twin.loss.forward(twin.forward(x, training=False), target)
    twin.backward(twin.loss.backward())
    model.layers[2].rate = twin.layers[2].rate = 0.0          # the same function in both
    model.fit(X, y, epochs=1, batch_size=None, shuffle=False)
    _, arrays = read_npz(save(model, tmp_path / "m.npz"))
    np.testing.assert_allclose(arrays["optimizer/m"], 0.2 * twin.grads, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(arrays["optimizer/v"], 0.01 * twin.grads ** 2, rtol=1e-12, atol=1e-300)


def test_a_model_with_buffers_writes_them_and_checks_their_count(tmp_path, monkeypatch):
    class Counter(Dropout):
        """Dropout that counts its training calls in a buffer."""

        def build(self, input_shape, rng):
            self.add_buffer("calls", (2,), fill=1.5)
            return tuple(input_shape)

        def forward(self, x, training=False):
            if training:
                self.calls += 1
            return super().forward(x, training)

    monkeypatch.setitem(LAYERS, "Counter", Counter)
    X, y = make_data()
    model = Sequential([Dense(4), Counter(0.1), Dense(3)], seed=2)
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=22)
    path = save(model, tmp_path / "m.npz")
    doc, arrays = read_npz(path)
    assert doc["n_buffers"] == 2 and arrays["buffers"].tolist() == [5.5, 5.5]
    assert load(path).layers[1].calls.tolist() == [5.5, 5.5]
    bad = write_npz(tmp_path / "bad.npz", dict(doc, n_buffers=3), arrays)
    with pytest.raises(ValueError, match="the layers declare 2 buffer values .* but n_buffers is 3"):
        load(bad)
    bad = write_npz(tmp_path / "bad.npz", doc, dict(arrays, buffers=np.array([1.0, np.inf], np.float32)))
    with pytest.raises(ValueError, match="'buffers' contains NaN or infinity"):
        load(bad)
    missing = {k: v for k, v in arrays.items() if k != "buffers"}
    with pytest.raises(ValueError, match=r"the array\(s\) \['buffers'\] are missing"):
        load(write_npz(tmp_path / "bad.npz", doc, missing))
    with pytest.raises(ValueError, match="format 1 holds no buffers"):
        load(write_npz(tmp_path / "v1.npz", {k: v for k, v in doc.items() if k not in ("model", "n_buffers", "image_layout")}
                       | {"format_version": 1}, missing))


# ------------------------------------------------------------------ classes
from scratchnn import MSE, BinaryCrossEntropy   # noqa: E402
from scratchnn.io import check_classes          # noqa: E402


def built(units, loss):
    model = Sequential([Dense(units)], seed=0).build((4,))
    model.loss = loss
    return model


@pytest.mark.parametrize("units, loss, classes, expected", [
    (3, CrossEntropy(), ["a", "b", "c"], ["a", "b", "c"]),
    (3, CrossEntropy(), np.array([10, 20, 30]), [10, 20, 30]),
    (1, BinaryCrossEntropy(), ("no", "yes"), ["no", "yes"]),
    (4, BinaryCrossEntropy(), [False, True], [False, True]),      # multi-label: each output 0/1
    (3, CrossEntropy(), [np.float32(0.5), 1.5, 2.5], [0.5, 1.5, 2.5]),
    (3, MSE(), None, None),
    (3, None, None, None),
])
def test_check_classes_accepts_one_label_per_predicted_index(units, loss, classes, expected):
    result = check_classes(classes, built(units, loss))
    assert result == expected
    assert result is None or all(type(c) is type(expected[0]) for c in result)   # plain Python


@pytest.mark.parametrize("units, loss, classes, message", [
    (3, CrossEntropy(), ["a", "b"], r"classes must have 3 labels, one per output unit under "
                                    r"CrossEntropy .*\(3,\).*got 2: \['a', 'b'\]"),
    (3, CrossEntropy(), ["a", "b", "c", "d"], "classes must have 3 labels.*got 4"),
    (1, BinaryCrossEntropy(), ["yes"], r"classes must have 2 labels, classes\[0\] for a logit "
                                       r"<= 0 and classes\[1\] for a logit > 0.*got 1"),
    (3, BinaryCrossEntropy(), ["a", "b", "c"], "classes must have 2 labels.*got 3"),
    (3, MSE(), ["a", "b", "c"], "classes must be None: the model's loss MSE is a regression loss"),
    (3, None, ["a", "b", "c"], "classes must be None: the model has no loss yet"),
    (3, CrossEntropy(), ["a", "b", "a"], r"classes must hold distinct labels .*\['a'\] appear"),
    (3, CrossEntropy(), [1, 1.0, 2], "classes must be a non-empty list of labels of one type"),
    (3, CrossEntropy(), ["a", 1, 2], "classes must be a non-empty list of labels of one type"),
    (3, CrossEntropy(), [True, 1, 2], "of one type"),
    (3, CrossEntropy(), [], "non-empty list"),
    (3, CrossEntropy(), [0.5, float("nan"), 1.0], "finite labels"),
    (3, CrossEntropy(), np.array([["a", "b", "c"]]), r"1-D list of labels, got an array of shape \(1, 3\)"),
    (3, CrossEntropy(), "abc", "list, tuple or 1-D array of labels, got str"),
    (3, CrossEntropy(), [["a"], ["b"], ["c"]], "of one type"),
])
def test_check_classes_refuses_labels_that_do_not_fit(units, loss, classes, message):
    with pytest.raises(ValueError, match=message):
        check_classes(classes, built(units, loss))


def test_check_classes_needs_a_built_model():
    model = Sequential([Dense(3)])
    model.loss = CrossEntropy()
    with pytest.raises(ValueError, match="classes cannot be checked before the model is built"):
        check_classes(["a", "b", "c"], model)
    assert check_classes(None, model) is None


@pytest.mark.parametrize("classes, message", [
    (["cat", "dog"], r"classes must have 3 labels, one per output unit.*got 2"),
    (["cat", "dog", "bird", "fish"], "classes must have 3 labels.*got 4"),
    (["cat", "dog", "cat"], r"classes must hold distinct labels.*\['cat'\]"),
])
def test_a_file_whose_classes_do_not_fit_the_model_is_refused(saved, tmp_path, classes, message):
    """Such a file used to load; predict then raised IndexError (or mapped every
    class to a wrong label) and the CLI wrote rows narrower than their header."""
    _, doc, arrays = saved
    path = write_npz(tmp_path / "bad.npz", dict(doc, classes=classes), arrays)
    with pytest.raises(ValueError, match=message) as error:
        load(path)
    assert str(path) in str(error.value)


def test_a_regression_file_with_classes_is_refused(tmp_path):
    X, y = make_data()
    model = Sequential([Dense(2)], seed=0)
    model.fit(X, np.stack([y, y], axis=1).astype(float), loss="mse", epochs=1)
    doc, arrays = read_npz(save(model, tmp_path / "r.npz"))
    path = write_npz(tmp_path / "bad.npz", dict(doc, classes=["a", "b"]), arrays)
    with pytest.raises(ValueError, match="classes must be None: the model's loss MSE is a regression"):
        load(path)


@pytest.mark.parametrize("classes, message", [
    (np.array(["cat", "dog"]), "model.classes must have 3 labels"),
    (["a", "b", "b"], "model.classes must hold distinct labels"),
])
def test_classes_that_do_not_fit_are_refused_on_save_and_nothing_is_written(tmp_path, classes, message):
    model, _, _ = trained_model(epochs=1)
    model.classes = classes
    with pytest.raises(ValueError, match=message):
        save(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- paths
@pytest.mark.parametrize("path, error, message", [
    ("", ValueError, "path is an empty string; expected a file path"),
    (b"m.npz", TypeError, r"path must be a str or os.PathLike path, got bytes b'm.npz'.*os.fsdecode"),
    (bytearray(b"m.npz"), TypeError, "path must be a str or os.PathLike path, got bytearray"),
    (42, TypeError, "path must be a str or os.PathLike path, got int"),
    (None, TypeError, "path must be a str or os.PathLike path, got NoneType"),
    ("m\0.npz", ValueError, "contains a NUL character"),
])
def test_save_and_load_refuse_a_path_that_is_not_one(tmp_path, monkeypatch, path, error, message):
    monkeypatch.chdir(tmp_path)
    model, _, _ = trained_model(epochs=1)
    with pytest.raises(error, match=message):
        save(model, path)
    with pytest.raises(error, match=message):
        load(path)
    assert list(tmp_path.iterdir()) == []            # no hidden ./.npz, nothing else


def test_a_pathlike_that_gives_bytes_is_refused(tmp_path):
    class BytesPath:
        def __fspath__(self):
            return os.fsencode(str(tmp_path / "m.npz"))

    model, _, _ = trained_model(epochs=1)
    with pytest.raises(TypeError, match=r"os.fspath\(path\) gave bytes"):
        save(model, BytesPath())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_directories_and_nameless_paths(tmp_path):
    model, _, _ = trained_model(epochs=1)
    (tmp_path / "models.npz").mkdir()
    (tmp_path / "a-file").write_text("x")
    cases = [
        (str(tmp_path) + os.sep, ValueError, "ends with a path separator"),
        (tmp_path / "models.npz", ValueError, r"models.npz.*is a directory, not a regular file"),
        (tmp_path / ".npz", ValueError, "has no file name before '.npz'"),
        (tmp_path / "sub" / ".npz", ValueError, "has no file name before '.npz'"),
        (tmp_path / "a-file" / "m.npz", ValueError, "a-file' is not a directory"),
        (tmp_path / "missing" / "m.npz", FileNotFoundError, "the directory .*missing' does not exist"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "models.npz"]
    assert list((tmp_path / "models.npz").iterdir()) == []


def test_save_checks_the_directory_is_writable_before_any_work(tmp_path, monkeypatch):
    model, _, _ = trained_model(epochs=1)
    described = []
    monkeypatch.setattr("scratchnn.io._describe", lambda *a: described.append(a))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match=r"the directory .* is not writable"):
        save(model, tmp_path / "m.npz")
    assert described == [] and list(tmp_path.iterdir()) == []


def test_load_refuses_a_directory(tmp_path):
    (tmp_path / "m.npz").mkdir()
    with pytest.raises(ValueError, match=r"model file '.*m.npz' is a directory, not a regular file"):
        load(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="is a directory"):
        load(tmp_path / "m")            # the suffix is added, and the directory refused


# ---------------------------------------------------- temporaries of killed saves
from scratchnn.io import _temporary_prefix   # noqa: E402


def dead_pid():
    """The pid of a process that has exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporary_names_identify_their_writer(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    model, _, _ = trained_model(epochs=1)
    save(model, tmp_path / "model.npz")
    prefix = _temporary_prefix("model.npz")
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
    assert prefix == f".model.npz.{host}."
    assert len(seen) == 1 and re.fullmatch(re.escape(prefix) + rf"{os.getpid()}\.\w+\.tmp", seen[0])


def test_save_removes_stale_temporaries_of_its_target_only(tmp_path):
    model, _, _ = trained_model(epochs=1)
    prefix = _temporary_prefix("model.npz")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f"{prefix}{dead_pid()}.abc123_x.tmp"
        alive = tmp_path / f"{prefix}{live.pid}.abc123_y.tmp"
        mine_stale = tmp_path / f"{prefix}{os.getpid()}.earlier.tmp"   # an earlier process, same pid
        other_target = tmp_path / f"{_temporary_prefix('other.npz')}{dead_pid()}.abc.tmp"
        other_host = tmp_path / f".model.npz.elsewhere.{dead_pid()}.abc.tmp"
        not_ours = tmp_path / f"{prefix}notapid.abc.tmp"
        for path in (stale, alive, mine_stale, other_target, other_host, not_ours):
            path.write_bytes(b"PK\x03\x04 half a model")
        save(model, tmp_path / "model.npz")
        assert not stale.exists() and not mine_stale.exists()
        assert alive.exists() and other_target.exists() and other_host.exists() and not_ours.exists()
        assert np.array_equal(load(tmp_path / "model.npz").params, model.params)
    finally:
        live.kill()
        live.wait()


def test_a_save_killed_midway_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    """kill -9 during a save: the target is the old model or the new one, never a part,
    and the temporary file the dead writer left is removed by the next save."""
    path = tmp_path / "big.npz"
    script = (
        "import sys, numpy as np\n"
        "from scratchnn import Sequential, Dense\n"
        "from scratchnn.io import save\n"
        "model = Sequential([Dense(1000)], seed=0).build((1000,))\n"
        f"save(model, {str(path)!r})\n"
        "print('saved', flush=True)\n"
        "i = 0\n"
        "while True:\n"
        "    model.params[0] = i; i += 1\n"
        f"    save(model, {str(path)!r})\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "saved\n"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]:
            time.sleep(0.001)          # wait until a save is under way
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    model = load(path)                              # complete, whichever save it is
    assert model.params.size == 1000 * 1000 + 1000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert all(f".{child.pid}." in name for name in leftovers)
    save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npz"]


def test_concurrent_writers_each_rename_a_complete_file(tmp_path):
    models = []
    for seed in range(4):
        model = Sequential([Dense(50)], seed=seed).build((50,))
        models.append(model)
    path = tmp_path / "shared.npz"
    errors = []

    def writer(model):
        try:
            for _ in range(5):
                save(model, path)
        except Exception as error:     # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = load(path)
    assert any(np.array_equal(loaded.params, m.params) for m in models)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.npz"]


# ------------------------------------------------------------ format 2 (before images)
def format2_data():
    """The data tests/data/make_format2.py trained on (its own function)."""
    spec = importlib.util.spec_from_file_location("make_format2", DATA / "make_format2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.data()


def test_a_format_2_file_predicts_and_trains_on_as_the_release_that_wrote_it(tmp_path):
    """Written by scratchnn 0.1.0 at a9e1183 (format 2, no image_layout): Dense, Tanh,
    Dropout, Dense, ReLU, Dense with Adam, and what that release computed from it."""
    path = DATA / "format2_adam_float32.npz"
    doc, arrays = read_npz(path)
    assert doc["format_version"] == 2 and "image_layout" not in doc and doc["n_buffers"] == 0
    expected = np.load(DATA / "format2_expected.npz", allow_pickle=False)
    X, y = format2_data()
    model = load(path)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Tanh", "Dropout", "Dense",
                                                                 "ReLU", "Dense"]
    assert model.dtype == np.float32 and model.classes.tolist() == ["low", "mid", "high"]
    assert model.metrics == ["accuracy"] and model.metadata == {"written_by": "make_format2.py"}
    assert type(model.optimizer) is Adam and model.optimizer.iterations == 15
    np.testing.assert_array_equal(model.params, expected["params"])
    np.testing.assert_array_equal(model.optimizer.state["m"], expected["m"])   # the moments, as saved
    np.testing.assert_array_equal(model.optimizer.state["v"], expected["v"])
    np.testing.assert_array_equal(model.output(X), expected["output"])
    np.testing.assert_array_equal(model.predict_proba(X), expected["proba"])

    # saved again, it is a file of format 3 that loads as the same model
    resaved_path = save(model, tmp_path / "again.npz")
    resaved_doc, resaved = read_npz(resaved_path)
    assert resaved_doc["format_version"] == FORMAT_VERSION == 3
    assert resaved_doc["image_layout"] == "channels_last"
    assert ({k: v for k, v in resaved_doc.items() if k not in ("format_version", "image_layout")}
            == {k: v for k, v in doc.items() if k != "format_version"})
    for name in arrays:
        np.testing.assert_array_equal(resaved[name], arrays[name])
    again = load(resaved_path)
    np.testing.assert_array_equal(again.predict_proba(X), expected["proba"])

    # and training resumes exactly as it did in that release (Dropout's random state too)
    for resumed in (model, again):
        resumed.fit(X, y, epochs=2, batch_size=8)
        np.testing.assert_array_equal(resumed.params, expected["params_after_2_more_epochs"])


@pytest.mark.parametrize("version", [1, 2])
def test_files_before_format_3_have_no_image_layout_field(saved, tmp_path, version):
    _, doc, arrays = saved
    old = {k: v for k, v in doc.items() if k != "image_layout"} | {"format_version": version}
    if version == 1:
        old = {k: v for k, v in old.items() if k not in ("model", "n_buffers")}
        arrays = {k: v for k, v in arrays.items() if not k.startswith("optimizer/")}
        old["optimizer"] = None
    assert load(write_npz(tmp_path / "old.npz", old, arrays)).input_shape == (5,)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['image_layout'\]"):
        load(write_npz(tmp_path / "bad.npz", old | {"image_layout": "channels_last"}, arrays))


# ------------------------------------------------------------------- images
from scratchnn import (AvgPool2D, BatchNormalization, Conv2D, GlobalAveragePooling2D,  # noqa: E402
                       LayerNormalization, MaxPool2D)
from scratchnn.layers import Layer                                                       # noqa: E402

#: BatchNormalization is written by another engineer; until it lands it is a placeholder
BATCH_NORM = BatchNormalization.forward is not Layer.forward
needs_batch_norm = pytest.mark.skipif(not BATCH_NORM, reason="BatchNormalization is a placeholder")


def image_data(n=24, size=8, channels=2, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, size, size, channels))
    y = (X[:, :4, :4, 0].mean(axis=(1, 2)) > 0).astype(int) + (X[:, 4:, 4:, -1].mean(axis=(1, 2)) > 0.3)
    return X, y.astype(int)


def cnn(dtype="float32", seed=1):
    layers = [Conv2D(4, 3, padding="same")]
    if BATCH_NORM:
        layers.append(BatchNormalization())
    layers += [ReLU(), MaxPool2D(2), Conv2D(3, 2, stride=2), AvgPool2D(2, padding="same",
                                                                        count_include_pad=False),
               Dropout(0.2), Flatten(), Dense(3)]
    return Sequential(layers, seed=seed, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_cnn_round_trips_exactly_with_its_buffers_and_optimizer_state(tmp_path, dtype):
    X, y = image_data()
    model = cnn(dtype)
    model.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=2, batch_size=8)
    path = save(model, tmp_path / "cnn.npz")
    doc, arrays = read_npz(path)
    assert doc["image_layout"] == "channels_last" and doc["input_shape"] == [8, 8, 2]
    assert doc["n_params"] == model.count_params() == arrays["params"].size
    assert doc["n_buffers"] == (2 * 4 if BATCH_NORM else 0) == model.buffers.size
    loaded = load(path)
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.buffers, model.buffers)
    if BATCH_NORM:                       # the running statistics moved away from 0 and 1
        assert not np.array_equal(loaded[1].running_mean, np.zeros(4))
        np.testing.assert_array_equal(loaded[1].running_var, model[1].running_var)
    for name, value in model.optimizer.state_dict().items():
        np.testing.assert_array_equal(loaded.optimizer.state_dict()[name], value)
    np.testing.assert_array_equal(loaded.output(X), model.output(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    loaded.check_parameter_views()
    # resumed, it trains on exactly as the original (dropout's random state, the moments,
    # the running statistics)
    for m in (model, loaded):
        m.fit(X, y, epochs=1, batch_size=8)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.buffers, model.buffers)


def test_a_cnn_file_of_another_image_layout_is_refused(tmp_path):
    X, y = image_data()
    model = cnn()
    model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=12)
    doc, arrays = read_npz(save(model, tmp_path / "cnn.npz"))
    path = write_npz(tmp_path / "nchw.npz", dict(doc, image_layout="channels_first"), arrays)
    with pytest.raises(ValueError, match=r"nchw.npz.*image_layout must be 'channels_last' \(image samples "
                                         r"\(height, width, channels\)\), got 'channels_first'"):
        load(path)


def _image_document(saved_doc, layers, input_shape, n_params, n_buffers=0):
    """A model document of ``layers`` (configs) for ``input_shape``, without optimizer."""
    return dict(saved_doc, layers=layers, input_shape=input_shape, n_params=n_params,
                n_buffers=n_buffers, optimizer=None, classes=None, loss=None, metrics=None)


def _write_claim(path, doc, arrays):
    """A model file whose arrays are headers that claim ``arrays`` (name: (shape, dtype))
    followed by a few bytes of data, as a hostile writer would make it."""
    config = io.BytesIO()
    np.save(config, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("config.npy", config.getvalue())
        for name, (shape, descr) in arrays.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False,
                                                          "shape": shape})
            archive.writestr(f"{name}.npy", header.getvalue() + b"\0" * 64)
    return path


def _load_peak(path) -> tuple[str, int]:
    """load(path)'s error message and the peak of memory it allocated (tracemalloc sees NumPy's)."""
    import tracemalloc
    tracemalloc.start()
    try:
        load(path)
    except ValueError as error:
        message = str(error)
    else:
        message = ""
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return message, peak


def conv_config(filters, kernel, **others):
    return {"class": "Conv2D", "config": {"filters": filters, "kernel_size": kernel, **others}}


@pytest.mark.parametrize("layers, input_shape, claim, message", [
    # a Conv2D of 9 * 10**12 weights: declared consistently, but the file holds 64 bytes
    ([conv_config(10**12, 3)], [8, 8, 1], 9 * 10**12 + 10**12,
     r"declares shape \(10000000000000,\) of float32, more data than its \d+ bytes hold"),
    # a kernel of more weights than an array can index
    ([conv_config(2**40, [2**20, 2**20])], [2**20, 2**20, 1], 2**80,
     r"layers\[0\] \(Conv2D\)"),
    # a kernel larger than the image
    ([conv_config(4, 9)], [8, 8, 1], 4 * 81 + 4,
     r"layers\[0\] \(Conv2D\) cannot take inputs of shape \(8, 8, 1\).*window of 9 pixels "
     r"\(kernel_size \(9, 9\).*does not fit"),
    ([conv_config(4, [3, 3, 3])], [8, 8, 1], 0, r"layers\[0\] \(Conv2D\): kernel_size must be"),
    ([conv_config(4, 3, padding=2**62)], [8, 8, 1], 40,
     r"layers\[0\] \(Conv2D\) cannot take inputs .*padding \(4611686018427387904, "
     r"4611686018427387904\) .*more than the 1152921504606846976 values an image may have"),
    ([conv_config(4, 3)], [64], 40, r"Conv2D expects images \(N, height, width, channels\), got "
                                    r"samples of shape \(64,\)"),
    ([{"class": "MaxPool2D", "config": {"pool_size": 2**40, "padding": "same"}}], [8, 8, 1], 0,
     r"layers\[0\] \(MaxPool2D\) cannot take inputs .*padding 'same' with pool_size"),
    # a LayerNormalization over a huge image: its gamma and beta alone are 2 * 2**40 values
    ([{"class": "LayerNormalization", "config": {"axis": [1, 2, 3]}}], [2**20, 2**20, 1], 2**41,
     r"declares shape \(2199023255552,\) of float32, more data than"),
])
def test_hostile_cnn_files_are_refused_without_allocating_what_they_claim(saved, tmp_path, layers,
                                                                          input_shape, claim, message):
    _, doc, _ = saved
    path = _write_claim(tmp_path / "hostile.npz", _image_document(doc, layers, input_shape, claim),
                        {"params": ((claim,), "<f4")})
    error, peak = _load_peak(path)
    assert re.search(message, error), error
    assert "hostile.npz" in error
    assert peak < 2**22, f"load allocated {peak} bytes for a file of {path.stat().st_size}"


def test_a_pooling_file_of_huge_images_loads_without_allocating_them(saved, tmp_path):
    """No parameters, so nothing to refuse: but loading builds the layers, and a build
    must not allocate anything of the image's size (AvgPool2D's counts of real pixels
    once made a padded image of ones in build)."""
    _, doc, _ = saved
    layers = [{"class": "AvgPool2D", "config": {"pool_size": 3, "stride": 1, "padding": 1,
                                                "count_include_pad": False}},
              {"class": "MaxPool2D", "config": {"pool_size": 2, "padding": "same"}},
              {"class": "GlobalAveragePooling2D", "config": {}}]
    path = _write_claim(tmp_path / "wide.npz", _image_document(doc, layers, [2**12, 2**12, 4], 0),
                        {"params": ((0,), "<f4")})
    error, peak = _load_peak(path)
    assert error == ""
    assert peak < 2**22, f"load allocated {peak} bytes for images of 2**26 values"
    model = load(path)
    assert model.output_shape == (4,) and model.count_params() == 0
    # the same layers on small images compute the counts when they are used
    small = write_npz(tmp_path / "small.npz", _image_document(doc, layers, [5, 5, 1], 0),
                      {"params": np.zeros(0, np.float32)})
    x = np.arange(25, dtype=np.float64).reshape(5, 5) ** 1.5
    averaged = np.array([[x[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].mean() for j in range(5)]
                         for i in range(5)])                       # the real pixels only
    pooled = [averaged[i:i + 2, j:j + 2].max() for i in range(0, 5, 2) for j in range(0, 5, 2)]
    out = load(small).output(x.reshape(1, 5, 5, 1).astype(np.float32))
    np.testing.assert_allclose(out, [[np.mean(pooled)]], rtol=1e-6)
