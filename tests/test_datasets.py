"""Data sets: generated problems, the Fashion-MNIST IDX reader and loader, CSV files."""

import gzip
import hashlib
import io
import os
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from scratchnn import datasets
from scratchnn.datasets import (CLASS_NAMES, CSVData, DatasetNotFoundError, load_csv,
                                load_csv_features, load_fashion_mnist, moons, read_idx, spirals,
                                xor)
from scratchnn.datasets import fashion_mnist as fm

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_public_names():
    for name in ("xor", "spirals", "moons", "load_fashion_mnist", "read_idx", "CLASS_NAMES",
                 "load_csv", "load_csv_features", "CSVData", "DatasetNotFoundError"):
        assert name in datasets.__all__
        assert callable(getattr(datasets, name)) or name == "CLASS_NAMES"
    assert len(datasets.CLASS_NAMES) == 10 and all(isinstance(c, str) for c in datasets.CLASS_NAMES)
    assert issubclass(DatasetNotFoundError, OSError)


# ----------------------------------------------------------------------------- generated
def test_xor_is_the_truth_table():
    X, y = xor()
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(np.int64))


@pytest.mark.parametrize("make", [lambda seed: spirals(seed=seed), lambda seed: moons(seed=seed)])
def test_same_seed_same_data_different_seed_different_data(make):
    X1, y1 = make(7)
    X2, y2 = make(7)
    X3, _ = make(8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


def test_spirals_shapes_counts_and_geometry():
    X, y = spirals(n_samples=301, n_classes=4, noise=0.3, seed=0)
    assert X.shape == (301, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [76, 75, 75, 75])
    radius = np.hypot(X[:, 0], X[:, 1])
    # noise moves the angle only: every point keeps a radius in [0.1, 1]
    assert radius.min() >= 0.1 - 1e-12 and radius.max() <= 1.0 + 1e-12
    assert np.isclose(radius.min(), 0.1) and np.isclose(radius.max(), 1.0)
    assert not np.array_equal(y, np.sort(y)), "samples must come shuffled"


def test_spirals_without_noise_lie_on_their_arms():
    K = 3
    X, y = spirals(n_samples=90, n_classes=K, noise=0.0, seed=1)
    radius = np.hypot(X[:, 0], X[:, 1])
    position = (radius - 0.1) / 0.9
    expected_angle = 4.0 * position + 2.0 * np.pi * y / K
    angle_error = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - expected_angle)))
    np.testing.assert_allclose(angle_error, 0.0, atol=1e-9)


def test_moons_without_noise_lie_on_the_two_half_circles():
    X, y = moons(n_samples=101, noise=0.0, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50, 51])
    outer, inner = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0)
    assert outer[:, 1].min() >= -1e-12                      # the upper half
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0)
    assert inner[:, 1].max() <= 0.5 + 1e-12                 # the lower half
    assert X[:, 0].min() == pytest.approx(-1.0) and X[:, 0].max() == pytest.approx(2.0)
    assert X[:, 1].min() == pytest.approx(-0.5) and 0.999 < X[:, 1].max() <= 1.0   # pi/2 not hit


def test_moons_noise_has_the_requested_spread():
    clean, y_clean = moons(n_samples=20000, noise=0.0, seed=5)
    noisy, y_noisy = moons(n_samples=20000, noise=0.1, seed=5)
    np.testing.assert_array_equal(y_clean, y_noisy)        # same shuffle, then the noise
    assert np.std(noisy - clean) == pytest.approx(0.1, rel=0.03)


def test_seed_may_be_a_generator():
    X1, _ = moons(seed=np.random.default_rng(4))
    X2, _ = moons(seed=np.random.default_rng(4))
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize("call, argument", [
    (lambda: spirals(n_samples=0), "n_samples"),
    (lambda: spirals(n_samples=10**12), "n_samples must be at most 10,000,000"),
    (lambda: moons(n_samples=2**31 - 1), "n_samples must be at most 10,000,000"),
    (lambda: spirals(n_samples=2, n_classes=3), "n_samples"),
    (lambda: spirals(n_classes=1), "n_classes"),
    (lambda: spirals(n_classes=2.5), "n_classes"),
    (lambda: spirals(noise=-0.1), "noise"),
    (lambda: moons(noise=float("nan")), "noise"),
    (lambda: moons(noise=True), "noise"),
    (lambda: moons(n_samples=1), "n_samples"),
    (lambda: moons(n_samples=True), "n_samples"),
    (lambda: moons(seed=-1), "seed"),
    (lambda: spirals(seed="abc"), "seed"),
])
def test_generated_arguments_are_validated(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


# ----------------------------------------------------------------------------- IDX files
def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX of a uint8 array."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload, mtime=0))
    return path


def fake_files(n_train=12, n_test=5, seed=0) -> dict:
    """The four files' .gz bytes for a small valid fake Fashion-MNIST, and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        fm.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        fm.TRAIN_LABELS: np.arange(n_train, dtype=np.uint8) % 10,
        fm.TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        fm.TEST_LABELS: (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    arrays[fm.TRAIN_IMAGES][0, 0, 0], arrays[fm.TRAIN_IMAGES][0, 0, 1] = 0, 255
    return {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in arrays.items()}, arrays


def write_fake_dir(directory: Path, **kwargs) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    blobs, arrays = fake_files(**kwargs)
    for name, blob in blobs.items():
        (directory / name).write_bytes(blob)
    return arrays


def test_read_idx_reads_shape_and_values(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_gz(tmp_path / "a.gz", idx_bytes(array)))
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_read_idx_reads_big_endian_types(tmp_path):
    values = np.array([[1, -2, 300], [70000, -5, 6]], dtype=">i4")
    payload = struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">2I", 2, 3) + values.tobytes()
    out = read_idx(write_gz(tmp_path / "ints.gz", payload))
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, [[1, -2, 300], [70000, -5, 6]])


@pytest.mark.parametrize("payload, message", [
    (b"\x03\x08\x00\x00" + struct.pack(">3I", 1, 28, 28) + bytes(784), "magic number"),  # little-endian
    (b"\x00\x00\x07\x01" + struct.pack(">I", 3) + bytes(3), "magic number"),        # unknown type
    (b"\x01\x00\x08\x01" + struct.pack(">I", 3) + bytes(3), "magic number"),
    (b"\x00\x00\x08\x00", "magic number"),                               # 0 dimensions
    (b"\x00\x00", "too short"),
    (struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">2I", 1, 28), "truncated IDX header"),
    (struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10) + bytes(9), "truncated"),
    (struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10) + bytes(11), "trailing bytes"),
])
def test_read_idx_rejects_a_bad_header_or_length_naming_the_file(tmp_path, payload, message):
    path = write_gz(tmp_path / "bad-idx1-ubyte.gz", payload)
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_a_non_gzip_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match="not a valid gzip") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_truncated_and_corrupt_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7), mtime=0)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(blob[: len(blob) // 2])                  # EOFError inside gzip
    with pytest.raises(ValueError, match="not a valid gzip") as error:
        read_idx(cut)
    assert str(cut) in str(error.value)
    corrupt = bytearray(blob)
    corrupt[-6] ^= 0xFF                                     # the CRC-32 trailer
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="CRC") as error:
        read_idx(bad_crc)
    assert str(bad_crc) in str(error.value)


def test_read_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


def idx_header(type_code: int, shape) -> bytes:
    return struct.pack(">BBBB", 0, 0, type_code, len(shape)) + b"".join(
        int(n).to_bytes(4, "big") for n in shape)


@pytest.mark.parametrize("shape, message", [
    ((2**32 - 1,) * 3, r"declares shape \(4294967295, 4294967295, 4294967295\).*more than its "
                       r"\d+ compressed bytes can hold"),            # 2**96 elements
    ((100000, 1000, 1000), r"\(100000000000 bytes of uint8\), more than its \d+ compressed bytes"),
    ((1,) * 33, "declares 33 dimensions; at most 32"),
    ((1,) * 65, "declares 65 dimensions; at most 32"),
    ((0, 2**32 - 1, 2**32 - 1, 2**32 - 1), "which no array can have"),
])
def test_read_idx_refuses_absurd_headers_before_allocating(tmp_path, shape, message):
    """A tiny file claiming a huge or impossible shape: our error naming the file, where
    the reader used to ask NumPy for the claim (MemoryError for 93 GiB, NumPy's own
    errors for 2**96 elements or 65 dimensions)."""
    path = write_gz(tmp_path / "claims-idx3-ubyte.gz", idx_header(0x08, shape) + bytes(100))
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_memory_follows_the_payload_not_the_claim(tmp_path):
    """50 MB claimed, 10 bytes there, the file padded (gzip allows zeros after a member)
    so that the claim passes the deflate-ratio bound: the reader allocates as data come."""
    import tracemalloc
    claimed = 50_000_000
    blob = gzip.compress(idx_header(0x08, (claimed,)) + bytes(10), mtime=0) + bytes(claimed // 1000)
    path = tmp_path / "short-idx1-ubyte.gz"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"truncated: the header declares shape \(50000000,\).*"
                                             r"the file holds 10 bytes") as error:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(error.value)
    assert peak < 5_000_000


def test_read_idx_decompresses_at_most_the_claim_and_one_byte(tmp_path, monkeypatch):
    """A bomb behind a small claim: 1000 bytes declared, 20 MB of payload. The reader
    stops after the claim plus the one byte that shows the payload is too long."""
    produced = []
    real_next = fm._GzipStream._next

    def counting(self, size):
        data = real_next(self, size)
        produced.append(len(data))
        return data

    monkeypatch.setattr(fm._GzipStream, "_next", counting)
    path = write_gz(tmp_path / "bomb-idx1-ubyte.gz", idx_header(0x08, (1000,)) + bytes(20_000_000))
    with pytest.raises(ValueError, match="trailing bytes") as error:
        read_idx(path)
    assert str(path) in str(error.value)
    assert sum(produced) == 8 + 1000 + 1


@pytest.mark.parametrize("shape", [(0,), (0, 28, 28), (3, 0)])
def test_read_idx_zero_dimension_gives_an_empty_array(tmp_path, shape):
    out = read_idx(write_gz(tmp_path / "empty.gz", idx_header(0x08, shape)))
    assert out.shape == shape and out.dtype == np.uint8 and out.size == 0
    with pytest.raises(ValueError, match=r"trailing bytes") as error:
        read_idx(write_gz(tmp_path / "empty-junk.gz", idx_header(0x08, shape) + b"x"))
    assert "empty-junk.gz" in str(error.value)


def test_loader_refuses_a_split_without_samples(isolated):
    directory = isolated / "data"
    write_fake_dir(directory, n_test=0)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: the file holds no images"):
        load_fashion_mnist(directory)


def test_read_idx_multi_member_gzip_padding_and_garbage(tmp_path):
    array = (np.arange(3000) % 251).astype(np.uint8)
    payload = idx_bytes(array)
    members = gzip.compress(payload[:1000], mtime=0) + gzip.compress(payload[1000:], mtime=0)
    np.testing.assert_array_equal(read_idx(write_gz(tmp_path / "x.gz", payload)), array)
    multi = tmp_path / "multi.gz"
    multi.write_bytes(members)
    np.testing.assert_array_equal(read_idx(multi), array)        # as gzip.decompress reads it
    padded = tmp_path / "padded.gz"
    padded.write_bytes(members + bytes(5000))
    np.testing.assert_array_equal(read_idx(padded), array)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(members + b"<html>")
    with pytest.raises(ValueError, match="not a valid gzip.*not a gzip file") as error:
        read_idx(junk)
    assert str(junk) in str(error.value)
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a valid gzip.*the file is empty"):
        read_idx(empty)


def test_read_idx_result_owns_its_memory(tmp_path):
    array = np.arange(3 * 5, dtype=np.uint8).reshape(3, 5)
    out = read_idx(write_gz(tmp_path / "a.gz", idx_bytes(array)))
    assert out.flags.owndata and out.flags.writeable and out.flags.c_contiguous
    big = (np.arange(3_000_000) % 256).astype(np.uint8).reshape(3000, 1000)   # several growth steps
    np.testing.assert_array_equal(read_idx(write_gz(tmp_path / "big.gz", idx_bytes(big))), big)


def test_read_idx_path_must_be_a_path(tmp_path):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike path, got bytes"):
        read_idx(b"a.gz")
    with pytest.raises(ValueError, match="path is an empty string"):
        read_idx("")
    with pytest.raises(ValueError, match="IDX file .* is a directory, not a regular file"):
        read_idx(tmp_path)


# ----------------------------------------------------------------------------- loader
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $SCRATCHNN_DATA, no system directory, an empty cache, and no network."""
    monkeypatch.delenv("SCRATCHNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "no-system-dir")

    def no_network(url, timeout=None):
        raise AssertionError(f"unexpected download of {url}")
    monkeypatch.setattr(fm, "_urlopen", no_network)
    return tmp_path


def test_load_from_explicit_path(isolated):
    arrays = write_fake_dir(isolated / "data")
    X_train, y_train, X_test, y_test = load_fashion_mnist(isolated / "data")
    assert X_train.shape == (12, 784) and X_test.shape == (5, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(X_train, arrays[fm.TRAIN_IMAGES].reshape(12, 784) / np.float32(255))
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(y_train, arrays[fm.TRAIN_LABELS])
    np.testing.assert_array_equal(y_test, arrays[fm.TEST_LABELS])


def test_load_raw_images(isolated):
    arrays = write_fake_dir(isolated / "data")
    X_train, _, X_test, _ = load_fashion_mnist(str(isolated / "data"), flatten=False, normalize=False)
    assert X_train.shape == (12, 28, 28) and X_train.dtype == np.uint8
    np.testing.assert_array_equal(X_test, arrays[fm.TEST_IMAGES])


def test_load_images_channels_last(isolated):
    arrays = write_fake_dir(isolated / "data")
    X_train, y_train, X_test, y_test = load_fashion_mnist(isolated / "data", images=True)
    assert X_train.shape == (12, 28, 28, 1) and X_test.shape == (5, 28, 28, 1)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(X_train[..., 0], arrays[fm.TRAIN_IMAGES] / np.float32(255))
    np.testing.assert_array_equal(X_test[..., 0], arrays[fm.TEST_IMAGES] / np.float32(255))
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(y_test, arrays[fm.TEST_LABELS])
    # the same pixels as the rows, in the same order (row i is image i read row by row)
    rows = load_fashion_mnist(isolated / "data")[0]
    np.testing.assert_array_equal(X_train.reshape(12, 784), rows)
    # flatten=False is the explicit spelling of the images' layout without a channel axis
    X_raw, _, _, _ = load_fashion_mnist(isolated / "data", images=True, flatten=False,
                                        normalize=False)
    assert X_raw.shape == (12, 28, 28, 1) and X_raw.dtype == np.uint8
    np.testing.assert_array_equal(X_raw[..., 0], arrays[fm.TRAIN_IMAGES])


def test_images_and_flatten_together_are_refused_before_any_file_is_read(isolated):
    with pytest.raises(ValueError, match=r"images=True and flatten=True") as error:
        load_fashion_mnist(isolated / "nowhere", images=True, flatten=True)
    assert "(N, 28, 28, 1)" in str(error.value) and "(N, 784)" in str(error.value)
    # flatten's default depends on images: rows without, images with
    write_fake_dir(isolated / "data")
    assert load_fashion_mnist(isolated / "data", flatten=None)[0].shape == (12, 784)
    assert load_fashion_mnist(isolated / "data", images=True, flatten=None)[2].shape == (5, 28, 28, 1)


def test_explicit_path_lacking_files_is_an_error_not_a_fall_through(isolated, monkeypatch):
    write_fake_dir(isolated / "env")
    monkeypatch.setenv("SCRATCHNN_DATA", str(isolated / "env"))   # would be found otherwise
    partial = isolated / "partial"
    write_fake_dir(partial)
    (partial / fm.TEST_LABELS).unlink()
    (partial / fm.TRAIN_IMAGES).unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load_fashion_mnist(partial)
    named_missing = str(error.value).split("lacks")[1].split(";")[0]
    assert fm.TEST_LABELS in named_missing and fm.TRAIN_IMAGES in named_missing
    assert fm.TEST_IMAGES not in named_missing and fm.TRAIN_LABELS not in named_missing
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        load_fashion_mnist(isolated / "nowhere")


def test_search_order_env_then_system_then_cache(isolated, monkeypatch):
    write_fake_dir(isolated / "cache" / "scratchnn" / "fashion-mnist", n_train=3)
    assert len(load_fashion_mnist()[0]) == 3
    write_fake_dir(isolated / "no-system-dir", n_train=4)
    assert len(load_fashion_mnist()[0]) == 4
    write_fake_dir(isolated / "env", n_train=5)
    monkeypatch.setenv("SCRATCHNN_DATA", str(isolated / "env"))
    assert len(load_fashion_mnist()[0]) == 5
    # a directory with only some of the files does not count
    (isolated / "env" / fm.TEST_IMAGES).unlink()
    assert len(load_fashion_mnist()[0]) == 4


def test_download_into_the_cache(isolated, monkeypatch):
    blobs, arrays = fake_files()
    for name, blob in blobs.items():
        monkeypatch.setitem(fm.MD5, name, hashlib.md5(blob).hexdigest())
    requested = []

    def server(url, timeout=None):
        requested.append(url)
        return io.BytesIO(blobs[url.rsplit("/", 1)[1]])
    monkeypatch.setattr(fm, "_urlopen", server)

    X_train, y_train, _, _ = load_fashion_mnist()
    assert requested == [fm.URL + name for name in fm.FILES]
    assert fm.URL == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    cache = isolated / "cache" / "scratchnn" / "fashion-mnist"
    assert sorted(os.listdir(cache)) == sorted(fm.FILES)      # no temporary files left
    for name in fm.FILES:
        assert (cache / name).read_bytes() == blobs[name]
    np.testing.assert_array_equal(y_train, arrays[fm.TRAIN_LABELS])

    requested.clear()
    load_fashion_mnist()                                      # now found in the cache
    assert requested == []


def test_download_fetches_only_the_missing_files(isolated, monkeypatch):
    blobs, _ = fake_files()
    for name, blob in blobs.items():
        monkeypatch.setitem(fm.MD5, name, hashlib.md5(blob).hexdigest())
    cache = isolated / "cache" / "scratchnn" / "fashion-mnist"
    cache.mkdir(parents=True)
    (cache / fm.TRAIN_IMAGES).write_bytes(blobs[fm.TRAIN_IMAGES])
    requested = []

    def server(url, timeout=None):
        requested.append(url.rsplit("/", 1)[1])
        return io.BytesIO(blobs[requested[-1]])
    monkeypatch.setattr(fm, "_urlopen", server)
    load_fashion_mnist()
    assert requested == [fm.TRAIN_LABELS, fm.TEST_IMAGES, fm.TEST_LABELS]


def test_download_checksum_mismatch_leaves_nothing(isolated, monkeypatch):
    blobs, _ = fake_files()       # the official MD5s do not match these fake files
    monkeypatch.setattr(fm, "_urlopen", lambda url, timeout=None: io.BytesIO(blobs[url.rsplit("/", 1)[1]]))
    with pytest.raises(ValueError, match="MD5 checksum mismatch") as error:
        load_fashion_mnist()
    assert fm.MD5[fm.TRAIN_IMAGES] in str(error.value)
    assert hashlib.md5(blobs[fm.TRAIN_IMAGES]).hexdigest() in str(error.value)
    cache = isolated / "cache" / "scratchnn" / "fashion-mnist"
    assert os.listdir(cache) == []


def test_network_failure_gives_the_clear_error(isolated, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(fm, "_urlopen", offline)
    with pytest.raises(DatasetNotFoundError) as error:
        load_fashion_mnist()
    message = str(error.value)
    for expected in ("$SCRATCHNN_DATA (not set)", str(isolated / "no-system-dir"),
                     str(isolated / "cache" / "scratchnn" / "fashion-mnist"),
                     "Name or service not known", "apt-get install dataset-fashion-mnist",
                     "SCRATCHNN_DATA", "path="):
        assert expected in message
    assert isinstance(error.value.__cause__, urllib.error.URLError)
    assert os.listdir(isolated / "cache" / "scratchnn" / "fashion-mnist") == []


def test_a_download_cut_off_midway_leaves_no_temporary_file(isolated, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(10)
    monkeypatch.setattr(fm, "_urlopen", lambda url, timeout=None: Broken(bytes(100)))
    with pytest.raises(DatasetNotFoundError, match="connection reset"):
        load_fashion_mnist()
    assert os.listdir(isolated / "cache" / "scratchnn" / "fashion-mnist") == []


def test_a_download_removes_the_parts_that_killed_downloads_left(isolated, monkeypatch):
    """A download killed by kill -9 leaves its .part file; the next download of that file
    removes it, but never the .part of a download still running in another process."""
    import subprocess
    import sys
    from scratchnn.io import _temporary_prefix
    blobs, _ = fake_files()
    cache = isolated / "cache" / "scratchnn" / "fashion-mnist"
    cache.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        prefix = _temporary_prefix(fm.TRAIN_IMAGES)
        stale = cache / f"{prefix}{dead.pid}.k1ll3d.part"
        running = cache / f"{prefix}{live.pid}.runn1ng.part"
        stale.write_bytes(b"half")
        running.write_bytes(b"half")
        monkeypatch.setattr(fm, "MD5", {name: hashlib.md5(b).hexdigest() for name, b in blobs.items()})
        monkeypatch.setattr(fm, "_urlopen", lambda url, timeout=None: io.BytesIO(blobs[url.rsplit("/", 1)[1]]))
        load_fashion_mnist()
        assert sorted(os.listdir(cache)) == sorted([*fm.FILES, running.name])
    finally:
        live.kill()
        live.wait()


def test_no_download_when_download_is_false(isolated):
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_fashion_mnist(download=False)


def test_loader_checks_the_files_fit_together(isolated):
    directory = isolated / "data"
    write_fake_dir(directory)
    write_gz(directory / fm.TEST_LABELS, idx_bytes(np.zeros(4, dtype=np.uint8)))     # 4 != 5
    with pytest.raises(ValueError, match="must agree") as error:
        load_fashion_mnist(directory)
    assert fm.TEST_IMAGES in str(error.value) and fm.TEST_LABELS in str(error.value)

    write_gz(directory / fm.TEST_LABELS, idx_bytes(np.full(5, 10, dtype=np.uint8)))  # label 10
    with pytest.raises(ValueError, match=r"labels must be 0..9, found 10"):
        load_fashion_mnist(directory)

    write_gz(directory / fm.TEST_LABELS, idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8)))
    with pytest.raises(ValueError, match="0x00000801") as error:                    # images as labels
        load_fashion_mnist(directory)
    assert fm.TEST_LABELS in str(error.value)

    write_fake_dir(directory)                           # a valid IDX file, but magic 2052 (4-D)
    write_gz(directory / fm.TRAIN_IMAGES, idx_bytes(np.zeros((12, 28, 28, 1), dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"0x00000803 \(2051") as error:
        load_fashion_mnist(directory)
    assert fm.TRAIN_IMAGES in str(error.value)

    write_gz(directory / fm.TRAIN_IMAGES, idx_bytes(np.zeros((12, 27, 28), dtype=np.uint8)))
    with pytest.raises(ValueError, match="28x28"):
        load_fashion_mnist(directory)


@pytest.mark.parametrize("argument", ["flatten", "images", "normalize", "download"])
def test_loader_flags_must_be_bool(isolated, argument):
    with pytest.raises(TypeError, match=argument):
        load_fashion_mnist(**{argument: "yes"})


# ----------------------------------------------------------------------------- real data
needs_real_data = pytest.mark.skipif(not all((REAL_DIR / name).is_file() for name in fm.FILES),
                                     reason=f"Fashion-MNIST not installed in {REAL_DIR} "
                                            "(apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def real():
    with pytest.MonkeyPatch.context() as patch:    # found by the default search
        patch.delenv("SCRATCHNN_DATA", raising=False)
        return load_fashion_mnist(download=False)


@needs_real_data
def test_real_fashion_mnist(real):
    X_train, y_train, X_test, y_test = real
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 1000))
    assert len(CLASS_NAMES) == 10 and CLASS_NAMES[0] == "T-shirt/top" and CLASS_NAMES[9] == "Ankle boot"
    # the published first labels: ankle boot, T-shirt/top, T-shirt/top, dress, T-shirt/top
    np.testing.assert_array_equal(y_train[:5], [9, 0, 0, 3, 0])
    # the flat rows are the 28x28 images, divided by 255
    raw = read_idx(REAL_DIR / fm.TRAIN_IMAGES)
    assert raw.shape == (60000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(X_train[:100], raw[:100].reshape(100, 784) / np.float32(255))


@needs_real_data
def test_real_fashion_mnist_as_images(real):
    X_train, y_train, X_test, y_test = load_fashion_mnist(REAL_DIR, images=True)
    assert X_train.shape == (60000, 28, 28, 1) and X_test.shape == (10000, 28, 28, 1)
    assert X_train.dtype == np.float32 and X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(X_test.reshape(10000, 784), real[2])
    np.testing.assert_array_equal(y_train, real[1])


@needs_real_data
def test_real_payloads_match_the_official_release():
    for name in fm.FILES:
        payload = gzip.decompress((REAL_DIR / name).read_bytes())
        assert hashlib.md5(payload).hexdigest() == fm.RAW_MD5[name], name


@needs_real_data
def test_truncated_copy_of_a_real_file(tmp_path):
    payload = gzip.decompress((REAL_DIR / fm.TEST_LABELS).read_bytes())
    short = write_gz(tmp_path / fm.TEST_LABELS, payload[:-100])        # valid gzip, short IDX
    with pytest.raises(ValueError, match=r"truncated.*\(10000,\).*9900 bytes") as error:
        read_idx(short)
    assert str(short) in str(error.value)
    blob = (REAL_DIR / fm.TEST_IMAGES).read_bytes()
    cut = tmp_path / fm.TEST_IMAGES
    cut.write_bytes(blob[: len(blob) - 1000])                          # a download cut short
    with pytest.raises(ValueError, match="not a valid gzip") as error:
        read_idx(cut)
    assert str(cut) in str(error.value)


# ----------------------------------------------------------------------------- CSV
def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_with_string_target(tmp_path):
    path = write_text(tmp_path / "iris.csv",
                      "sepal_length, sepal_width ,species\n"
                      "5.1,3.5,setosa\n"
                      "\n"
                      "6.2, 2.9 , versicolor\n"
                      "-1e-3,7,\"virginica\"\n")
    data = load_csv(path, "species")
    assert isinstance(data, CSVData)
    assert data.X.dtype == np.float64 and data.X.shape == (3, 2)
    np.testing.assert_array_equal(data.X, [[5.1, 3.5], [6.2, 2.9], [-0.001, 7.0]])
    np.testing.assert_array_equal(data.y, ["setosa", "versicolor", "virginica"])
    assert data.y.dtype.kind == "U"
    assert data.feature_names == ["sepal_length", "sepal_width"]
    assert data.target_name == "species"


def test_load_csv_target_in_the_middle_and_numeric_targets(tmp_path):
    path = write_text(tmp_path / "a.csv", "a,label,b\n1,2,3\n4,0,6\n")
    data = load_csv(path, "label")
    np.testing.assert_array_equal(data.X, [[1, 3], [4, 6]])
    assert data.y.dtype == np.int64 and data.y.tolist() == [2, 0]
    assert data.feature_names == ["a", "b"]
    data = load_csv(write_text(tmp_path / "b.csv", "a,t\n1,2.0\n2,3.0\n"), "t")
    assert data.y.dtype == np.int64 and data.y.tolist() == [2, 3]
    data = load_csv(write_text(tmp_path / "c.csv", "a,t\n1,2.5\n2,-3\n"), "t")
    assert data.y.dtype == np.float64 and data.y.tolist() == [2.5, -3.0]
    data = load_csv(write_text(tmp_path / "d.csv", "a,t\n1,1\n2,two\n"), "t")
    assert data.y.dtype.kind == "U" and data.y.tolist() == ["1", "two"]


def test_load_csv_other_delimiter_and_bom(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_bytes("\ufeffx;y;t\n1.5;2;a\n".encode("utf-8"))
    data = load_csv(path, "t", delimiter=";")
    assert data.feature_names == ["x", "y"]
    np.testing.assert_array_equal(data.X, [[1.5, 2.0]])


def test_load_csv_unknown_target_lists_the_columns(tmp_path):
    path = write_text(tmp_path / "a.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"'label' not found.*\['a', 'b', 'c'\]"):
        load_csv(path, "label")


@pytest.mark.parametrize("text, message", [
    ("a,b,t\n1,2,x\n3,oops,y\n", r"line 3, column 'b' \(column 2\): the cell is 'oops'"),
    ("a,b,t\n1,2,x\n\n3,,y\n", r"line 4, column 'b' \(column 2\): the cell is empty"),
    ("a,b,t\n1,nan,x\n", r"line 2, column 'b' .*'nan'.*finite"),
    ("a,b,t\n1,2,x\n1,2\n", r"line 3: 2 cells, but the header has 3 columns"),
    ("a,b,t\n1,2,x,4\n", r"line 2: 4 cells"),
    ("a,b,t\n1,2, \n", r"line 2: the target column 't' is empty"),
    ("", "the file is empty"),
    ("\n\n", "the file is empty"),
    ("a,b,t\n", "header but no data rows"),
    ("a,a,t\n1,2,3\n", r"duplicate column names \['a'\]"),
    ("a,,t\n1,2,3\n", "column 2 of the header has no name"),
    ("t\n1\n", "no feature columns"),
])
def test_load_csv_errors_name_the_file_and_place(tmp_path, text, message):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message) as error:
        load_csv(path, "t")
    assert str(path) in str(error.value)


def test_load_csv_rejects_non_utf8_and_bad_arguments(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,t\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_csv(path, "t")
    good = write_text(tmp_path / "good.csv", "a,t\n1,2\n")
    with pytest.raises(ValueError, match="delimiter"):
        load_csv(good, "t", delimiter=";;")
    with pytest.raises(TypeError, match="target"):
        load_csv(good, 1)
    with pytest.raises(FileNotFoundError):
        load_csv(tmp_path / "absent.csv", "t")


def test_load_csv_features_reorders_and_ignores_other_columns(tmp_path):
    path = write_text(tmp_path / "new.csv", "id,b,species,a\n7,2.5,x,1\n8,4,y,3\n")
    X = load_csv_features(path, ["a", "b"])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[1.0, 2.5], [3.0, 4.0]])


def test_load_csv_features_none_reads_every_column_as_load_csv_reads_headers(tmp_path):
    # names stripped and blank lines skipped, as in load_csv
    path = write_text(tmp_path / "rows.csv", "\na, b\n1,2.5\n\n3,4\n")
    np.testing.assert_array_equal(load_csv_features(path, None), [[1.0, 2.5], [3.0, 4.0]])
    with pytest.raises(ValueError, match="empty"):
        load_csv_features(write_text(tmp_path / "empty.csv", "\n"), None)


def test_load_csv_features_round_trips_with_load_csv(tmp_path):
    path = write_text(tmp_path / "train.csv", "x1,x2,t\n1,2,a\n3,4,b\n")
    data = load_csv(path, "t")
    np.testing.assert_array_equal(load_csv_features(path, data.feature_names), data.X)


def test_load_csv_features_errors(tmp_path):
    path = write_text(tmp_path / "new.csv", "a,c\n1,2\n3,x\n")
    with pytest.raises(ValueError, match=r"missing the feature column\(s\) \['b', 'd'\]") as error:
        load_csv_features(path, ["a", "b", "d"])
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match=r"line 3, column 'c'"):
        load_csv_features(path, ["c"])
    assert load_csv_features(path, ["a"]).tolist() == [[1.0], [3.0]]     # column c is not read
    with pytest.raises(TypeError, match="feature_names"):
        load_csv_features(path, "a")
    with pytest.raises(ValueError, match="feature_names"):
        load_csv_features(path, [])
    with pytest.raises(ValueError, match="duplicates"):
        load_csv_features(path, ["a", "a"])


@pytest.mark.parametrize("text, line", [
    ('a,b,t\n1,2,"x\n3,4,y\n5,6,z\n', 2),                       # used to load as one row
    ('a,t\n1,"multi\nline"\n2,"open\n3,x\n', 4),                # after a closed multi-line cell
    ('"a,b,t\n1,2,3\n', 1),                                     # in the header
    ('a,b,t\n1,"x\n3,4,y\n', 2),                                # and the cell count is off too
    ('a,t\n1,x\n2,"' + ("y" * 200 + "\n") * 1000, 3),           # past csv's field size limit
])
def test_load_csv_unterminated_quote_names_the_line_it_opened_on(tmp_path, text, line):
    path = write_text(tmp_path / "quote.csv", text)
    with pytest.raises(ValueError, match=rf"line {line}: unterminated quote: the quoted cell that "
                                         rf"opens on line {line} is never closed") as error:
        load_csv(path, "t")
    assert str(path) in str(error.value)


@pytest.mark.parametrize("data, line", [(b"\x00\x01binary", 1), (b"a,t\n1,x\n2,\x00y\n", 3)])
def test_load_csv_refuses_a_file_that_is_not_text(tmp_path, data, line):
    """NUL bytes are valid UTF-8 and csv reads them as data: a binary file gave
    "the file has a header but no data rows"."""
    path = tmp_path / "bin.csv"
    path.write_bytes(data)
    for load in (lambda: load_csv(path, "t"), lambda: load_csv_features(path, None)):
        with pytest.raises(ValueError, match=rf"bin.csv, line {line}: not a text file \(it holds NUL bytes\)"):
            load()


def test_load_csv_quotes_that_are_well_formed_still_load(tmp_path):
    path = write_text(tmp_path / "q.csv",
                      'a,t\n1,ab"c\n2,"say ""hi"""\n3,"x"y\n4,"two\nlines"\n5,""\n')
    with pytest.raises(ValueError, match="line 7: the target column 't' is empty"):
        load_csv(path, "t")
    path = write_text(tmp_path / "q.csv", 'a,t\n1,ab"c\n2,"say ""hi"""\n3,"x"y\n4,"two\nlines"\n')
    data = load_csv(path, "t")
    assert data.y.tolist() == ['ab"c', 'say "hi"', "xy", "two\nlines"]
    assert data.X.tolist() == [[1.0], [2.0], [3.0], [4.0]]


def test_load_csv_header_check_is_linear_in_the_columns():
    """Counted, not timed: hashing and comparing each name a bounded number of times
    (the check used header.count, n**2 comparisons: 9 s for 32,000 columns)."""
    from scratchnn.datasets import csv as csv_module
    calls = {"eq": 0, "hash": 0}

    class Name(str):
        def __eq__(self, other):
            calls["eq"] += 1
            return str.__eq__(self, other)

        def __hash__(self):
            calls["hash"] += 1
            return str.__hash__(self)

    n = 3000
    header = [Name(f"c{i}") for i in range(n)]
    csv_module._check_header(Path("wide.csv"), header, 1)
    assert calls["eq"] + calls["hash"] <= 3 * n
    with pytest.raises(ValueError, match=r"wide.csv, line 1: duplicate column names \['c1', 'c7'\]"):
        csv_module._check_header(Path("wide.csv"), header + [Name("c7"), Name("c1"), Name("c7")], 1)


def test_load_csv_with_32000_columns(tmp_path):
    import time
    n = 32_000
    names = [f"feature_{i}" for i in range(n - 1)] + ["t"]
    path = write_text(tmp_path / "wide.csv", ",".join(names) + "\n" + ",".join(["1"] * (n - 1) + ["a"]) + "\n")
    start = time.perf_counter()
    data = load_csv(path, "t")
    assert time.perf_counter() - start < 5      # very loose: linear takes well under 0.5 s
    assert data.X.shape == (1, n - 1) and data.feature_names[-1] == f"feature_{n - 2}"
    duplicated = write_text(tmp_path / "dup.csv", ",".join(names + ["feature_5"]) + "\n" + ",".join(["1"] * (n + 1)) + "\n")
    with pytest.raises(ValueError, match=r"dup.csv, line 1: duplicate column names \['feature_5'\]"):
        load_csv(duplicated, "t")


def test_load_csv_path_must_be_a_regular_file(tmp_path):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike path, got bytes"):
        load_csv(b"a.csv", "t")
    with pytest.raises(ValueError, match="path is an empty string"):
        load_csv("", "t")
    with pytest.raises(ValueError, match="CSV file .* is a directory, not a regular file"):
        load_csv(tmp_path, "t")
    with pytest.raises(FileNotFoundError, match="no CSV file at .*absent.csv"):
        load_csv_features(tmp_path / "absent.csv", None)
