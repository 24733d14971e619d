"""Preprocessing: StandardScaler, LabelEncoder, one_hot, train_test_split."""

import json

import numpy as np
import pytest

from scratchnn.preprocessing import LabelEncoder, StandardScaler, one_hot, train_test_split


# ----------------------------------------------------------------------------- StandardScaler
def test_scaler_hand_worked():
    X = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [6.0, 10.0]])
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.mean_, [3.0, 10.0])
    np.testing.assert_allclose(scaler.scale_, [np.sqrt((4 + 1 + 0 + 9) / 4), 1.0])  # constant: 1
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z[:, 0], (X[:, 0] - 3.0) / np.sqrt(3.5))
    np.testing.assert_array_equal(Z[:, 1], 0.0)                  # exactly 0, no rounding residue


def test_scaler_standardizes_and_inverts():
    rng = np.random.default_rng(0)
    X = rng.normal([5.0, -3.0, 100.0], [2.0, 0.1, 30.0], size=(500, 3))
    scaler = StandardScaler()
    Z = scaler.fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-12)
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, X.std(axis=0), rtol=1e-12)
    assert scaler.mean_.dtype == np.float64 and scaler.scale_.shape == (3,)


def test_scaler_constant_column_with_inexact_mean_stays_exactly_zero():
    X = np.full((7, 1), 0.1)        # the float mean of seven 0.1s is not exactly 0.1
    Z = StandardScaler().fit_transform(X)
    np.testing.assert_array_equal(Z, 0.0)


def test_scaler_fits_training_statistics_only():
    train = np.array([[0.0], [2.0]])
    test = np.array([[4.0]])
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(scaler.transform(test), [[3.0]])  # (4 - 1) / 1


def test_scaler_keeps_float32_and_chunks_large_inputs(monkeypatch):
    import scratchnn.preprocessing as preprocessing
    monkeypatch.setattr(preprocessing, "_VARIANCE_CHUNK", 7)   # many blocks
    rng = np.random.default_rng(1)
    X = rng.normal(3.0, 2.0, size=(100, 4)).astype(np.float32)
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.scale_, X.astype(np.float64).std(axis=0), rtol=1e-12)
    Z = scaler.transform(X)
    assert Z.dtype == np.float32
    assert StandardScaler().fit_transform(X.astype(np.int64)).dtype == np.float64


def test_scaler_errors():
    scaler = StandardScaler()
    with pytest.raises(RuntimeError, match="not fitted"):
        scaler.transform([[1.0]])
    with pytest.raises(RuntimeError, match="not fitted"):
        scaler.to_dict()
    scaler.fit([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="X has 3 features, but this StandardScaler was fitted on 2"):
        scaler.transform([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="NaN"):
        scaler.transform([[1.0, np.nan]])
    with pytest.raises(ValueError, match="2-D"):
        StandardScaler().fit([1.0, 2.0])
    with pytest.raises(ValueError, match="2-D"):
        StandardScaler().fit(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="empty"):
        StandardScaler().fit(np.zeros((0, 3)))


def test_scaler_dict_round_trip_through_json():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3)) * [1.0, 1e-3, 1e4]
    scaler = StandardScaler().fit(X)
    state = json.loads(json.dumps(scaler.to_dict()))
    assert state["type"] == "StandardScaler" and len(state["mean"]) == 3
    restored = StandardScaler.from_dict(state)
    np.testing.assert_array_equal(restored.mean_, scaler.mean_)
    np.testing.assert_array_equal(restored.scale_, scaler.scale_)
    np.testing.assert_array_equal(restored.transform(X), scaler.transform(X))


@pytest.mark.parametrize("state, message", [
    ({"mean": [0.0], "scale": [1.0]}, "type 'StandardScaler'"),
    ([1, 2], "type 'StandardScaler'"),
    ({"type": "StandardScaler", "mean": [0.0]}, "lacks the key 'scale'"),
    ({"type": "StandardScaler", "mean": [0.0, 1.0], "scale": [1.0]}, "must match"),
    ({"type": "StandardScaler", "mean": [0.0], "scale": [0.0]}, "> 0"),
    ({"type": "StandardScaler", "mean": [float("nan")], "scale": [1.0]}, "finite"),
    ({"type": "StandardScaler", "mean": ["a"], "scale": [1.0]}, "list of numbers"),
])
def test_scaler_from_dict_checks_each_field(state, message):
    with pytest.raises(ValueError, match=message):
        StandardScaler.from_dict(state)


# ----------------------------------------------------------------------------- LabelEncoder
@pytest.mark.parametrize("labels, classes", [
    (["dog", "cat", "dog", "bird"], ["bird", "cat", "dog"]),
    ([10, -1, 10, 3], [-1, 3, 10]),
    ([0.5, 2.5, 0.5], [0.5, 2.5]),
    (np.array(["b", "a", "b"], dtype=object), ["a", "b"]),
])
def test_label_encoder_round_trip(labels, classes):
    encoder = LabelEncoder()
    codes = encoder.fit_transform(labels)
    assert encoder.classes_.tolist() == classes
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, [classes.index(label) for label in labels])
    np.testing.assert_array_equal(encoder.inverse_transform(codes), labels)


def test_label_encoder_unknown_labels_are_named():
    encoder = LabelEncoder().fit(["cat", "dog"])
    with pytest.raises(ValueError, match=r"label 'cow' not seen in fit \(1 unknown"):
        encoder.transform(["dog", "cow"])
    with pytest.raises(ValueError, match=r"label 'zebra'"):    # beyond the last class
        encoder.transform(["zebra"])
    numeric = LabelEncoder().fit([0, 1, 2])
    with pytest.raises(ValueError, match=r"label 5"):
        numeric.transform([1, 5])
    with pytest.raises(ValueError, match=r"y holds <U1 values but the encoder was fitted on int64"):
        numeric.transform(["1"])


def test_label_encoder_errors():
    encoder = LabelEncoder()
    with pytest.raises(RuntimeError, match="not fitted"):
        encoder.transform([1])
    with pytest.raises(RuntimeError, match="not fitted"):
        encoder.inverse_transform([0])
    with pytest.raises(ValueError, match="empty"):
        encoder.fit([])
    with pytest.raises(ValueError, match=r"1-D.*y.ravel\(\)"):
        encoder.fit(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        encoder.fit([1.0, np.nan])
    encoder.fit(["a", "b", "c"])
    with pytest.raises(ValueError, match=r"^codes must hold class codes in \[0, 3\), got 3 "
                                         r"\(first at sample 1\)$"):
        encoder.inverse_transform([0, 3])
    with pytest.raises(ValueError, match=r"codes must hold class codes in \[0, 3\), got -1"):
        encoder.inverse_transform([-1])
    with pytest.raises(ValueError, match=r"codes must hold integer class codes in \[0, 3\), got 0.5"):
        encoder.inverse_transform([0.5])
    np.testing.assert_array_equal(encoder.inverse_transform(np.array([2.0, 0.0])), ["c", "a"])


def test_label_encoder_dict_round_trip_through_json():
    for labels in (["b", "a"], [3, 1], [0.25, 1.5]):
        encoder = LabelEncoder().fit(labels)
        restored = LabelEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
        np.testing.assert_array_equal(restored.classes_, encoder.classes_)
        assert restored.classes_.dtype.kind == encoder.classes_.dtype.kind
    with pytest.raises(ValueError, match="repeated"):
        LabelEncoder.from_dict({"type": "LabelEncoder", "classes": ["a", "a"]})
    with pytest.raises(ValueError, match="non-empty list"):
        LabelEncoder.from_dict({"type": "LabelEncoder", "classes": []})


# ----------------------------------------------------------------------------- one_hot
def test_one_hot():
    out = one_hot([2, 0, 1, 2])
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    wide = one_hot(np.array([1], dtype=np.uint8), n_classes=4, dtype=np.float64)
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(wide, [[0, 1, 0, 0]])
    assert one_hot([], n_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, n_classes, message", [
    ([0, 3], 3, r"^y must hold class indices in \[0, 3\), got 3 \(first at sample 1\)$"),
    ([-1, 0], None, r"got -1 \(first at sample 0\)"),
    ([0.5], None, r"y must hold integer class indices .*got 0.5"),
    (["a"], None, "integer class indices"),
    ([[0, 1]], None, "1-D"),
    ([], None, "empty"),
    ([0], 0, "n_classes"),
])
def test_one_hot_errors(y, n_classes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        one_hot(y, n_classes)


# ----------------------------------------------------------------------------- train_test_split
def test_split_sizes_and_no_sample_lost_or_repeated():
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    assert X_train.shape == (40, 2) and X_test.shape == (10, 2)
    np.testing.assert_array_equal(X_train[:, 0] // 2, y_train)        # rows stay with labels
    np.testing.assert_array_equal(X_test[:, 0] // 2, y_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)
    assert not np.array_equal(y_train, np.sort(y_train))              # shuffled
    assert len(train_test_split(X, y, test_size=0.21, seed=0)[1]) == 11   # ceil(10.5)
    assert len(train_test_split(X, y, test_size=7, seed=0)[1]) == 7


def test_split_is_seeded():
    X, y = np.arange(30.0).reshape(-1, 1), np.arange(30) % 3
    a = train_test_split(X, y, seed=5)
    b = train_test_split(X, y, seed=5)
    c = train_test_split(X, y, seed=6)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[3], c[3])
    for stratify in (False, True):
        d = train_test_split(X, y, stratify=stratify, seed=np.random.default_rng(9))
        e = train_test_split(X, y, stratify=stratify, seed=np.random.default_rng(9))
        np.testing.assert_array_equal(d[1], e[1])


def test_split_keeps_images_and_string_labels():
    X = np.arange(6 * 2 * 2, dtype=np.uint8).reshape(6, 2, 2)
    y = np.array(["a", "b", "c", "d", "e", "f"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=2, seed=1)
    assert X_train.shape == (4, 2, 2) and X_train.dtype == np.uint8
    for images, labels in ((X_train, y_train), (X_test, y_test)):
        np.testing.assert_array_equal(images[:, 0, 0] // 4, [ord(c) - ord("a") for c in labels])


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(["cat", "dog", "bird"], [500, 300, 200])
    X = np.arange(len(y))
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=True, seed=3)
    counts = {label: int((y_test == label).sum()) for label in ("cat", "dog", "bird")}
    assert counts == {"cat": 125, "dog": 75, "bird": 50}
    np.testing.assert_array_equal(y[X_test], y_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([X_train, X_test])), X)
    assert len(set(y_test[:20])) == 3                                   # classes interleaved


def test_stratified_split_rounds_to_the_exact_total():
    y = np.repeat([0, 1, 2], [10, 10, 10])
    _, X_test, _, y_test = train_test_split(np.zeros(30), y, test_size=0.1, stratify=True, seed=0)
    assert len(y_test) == 3
    np.testing.assert_array_equal(np.bincount(y_test), [1, 1, 1])
    _, _, _, y_test = train_test_split(np.zeros(30), y, test_size=4, stratify=True, seed=0)
    assert len(y_test) == 4 and sorted(np.bincount(y_test, minlength=3)) == [1, 1, 2]


def test_stratified_split_gives_small_classes_both_sides():
    y = np.array([0] * 96 + [1, 1] + [2, 2])
    X_train, X_test, y_train, y_test = train_test_split(np.arange(100), y, test_size=0.1,
                                                        stratify=True, seed=0)
    assert len(y_test) == 10
    # proportional shares would be 9.6, 0.2, 0.2: classes 1 and 2 still get one test sample each
    np.testing.assert_array_equal(np.bincount(y_test), [8, 1, 1])
    np.testing.assert_array_equal(np.bincount(y_train), [88, 1, 1])
    # the same with a large test part: every class keeps a training sample
    _, _, y_train, y_test = train_test_split(np.arange(100), y, test_size=0.9, stratify=True, seed=0)
    np.testing.assert_array_equal(np.bincount(y_train), [8, 1, 1])


def test_stratified_split_singletons_stay_in_training():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    _, _, y_train, y_test = train_test_split(np.arange(9), y, test_size=0.5, stratify=True, seed=0)
    assert 2 in y_train and 2 not in y_test
    assert len(y_test) == 5 and (y_test == 0).sum() >= 2 and (y_test == 1).sum() >= 2


def test_stratified_split_with_more_classes_than_test_samples():
    y = np.repeat(np.arange(5), 4)                  # 5 classes, test part of 2: not all can be
    _, _, y_train, y_test = train_test_split(np.arange(20), y, test_size=2, stratify=True, seed=0)
    assert len(y_test) == 2 and len(set(y_test)) == 2
    np.testing.assert_array_equal(np.bincount(y_train, minlength=5) >= 3, True)


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": 0.0}, "test_size"),
    ({"test_size": 1.0}, "test_size"),
    ({"test_size": 1.5}, "test_size"),
    ({"test_size": 0}, "test_size"),
    ({"test_size": 10}, r"test_size=10 as a count must be in 1..9"),
    ({"test_size": True}, "test_size"),
    ({"test_size": "0.2"}, "test_size"),
    ({"test_size": 0.95}, "no training sample"),
    ({"seed": -3}, "seed"),
])
def test_split_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_test_split(np.zeros((10, 2)), np.zeros(10), **kwargs)


def test_split_input_errors():
    with pytest.raises(ValueError, match="y has 9 samples but X has 10"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="at least 2"):
        train_test_split(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(TypeError, match="stratify"):
        train_test_split(np.zeros((10, 2)), np.zeros(10), stratify="yes")
    with pytest.raises(ValueError, match="1-D"):
        train_test_split(np.zeros((10, 2)), np.zeros((10, 3)), stratify=True)


def test_one_hot_infers_at_most_65536_classes():
    """One stray label id (4194304) made a 67 MB array from four labels."""
    import scratchnn.preprocessing as P
    with pytest.raises(ValueError, match=r"largest label is 4194304, so one_hot would infer "
                                         r"4,194,305 classes; above 65,536 pass n_classes="):
        P.one_hot([0, 1, 2, 4194304])
    wide = P.one_hot([65535])
    assert wide.shape == (1, 65536) and np.flatnonzero(wide[0]).tolist() == [65535]
    explicit = P.one_hot([0, 70000], n_classes=70001)
    assert explicit.shape == (2, 70001) and [np.flatnonzero(row).tolist() for row in explicit] == [[0], [70000]]
