"""Hostile and odd files for every reader (model files, IDX, CSV): each gets our error,
naming the file, and nothing blocks, allocates what a file merely claims, or leaks a
parser's own exception. Dangerous reads run bounded: in a thread that a FIFO writer can
release, or in a subprocess under RLIMIT_AS and a timeout."""

from __future__ import annotations

import gzip
import io
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest

from scratchnn import CrossEntropy, Dense, Sequential
from scratchnn.datasets import load_csv, load_csv_features, read_idx
from scratchnn.io import load, open_regular_file, save

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, sockets and devices are POSIX")


# ------------------------------------------------------------------ helpers
def bounded(call, fifo=None, timeout=20):
    """``call()`` in a thread; if it is still running after ``timeout`` s (blocked in
    ``open`` on ``fifo``), open the FIFO's other end to release it, and fail."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:     # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout)
        pytest.fail(f"{call} blocked for more than {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_limited(code: str, memory=1 << 30, timeout=120) -> str:
    """Run ``code`` in a fresh interpreter limited to ``memory`` bytes of address space;
    return its stdout."""
    script = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (%d, %d))\n" % (memory, memory)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def model_file(tmp_path):
    """A small valid model file, and its members' bytes."""
    model = Sequential([Dense(3)], seed=0).build((4,))
    model.loss = CrossEntropy()
    model.classes = np.array(["a", "b", "c"])
    path = save(model, tmp_path / "good.npz")
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    return path, members


def write_zip(path, members: dict):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy(header: str, version=(1, 0), data=b"") -> bytes:
    """A .npy member with the header text ``header`` (padded as NumPy pads it)."""
    text = header.encode("latin1")
    length_format = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(text)) + text + data


# ------------------------------------------------------ malformed .npy headers
GOOD = "{'descr': '<f4', 'fortran_order': False, 'shape': (15,), }"


@pytest.mark.parametrize("member, header, message", [
    # tokenize.TokenError from NumPy's Python-2 fallback parser
    ("params.npy", "{'descr': '''<f4   \n", "malformed .npy header"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (15L,), }", "malformed .npy header"),
    ("config.npy", "{'descr': '|u1', 'shape': (3,", r"malformed .npy header \(SyntaxError"),
    ("params.npy", "[1, 2, 3]", r"expected \{'descr': str, 'fortran_order': bool, 'shape': tuple"),
    ("params.npy", "{'descr': '<f4', 'shape': (15,)}", "malformed .npy header: expected"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (15,)}", "malformed .npy header: expected"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': 15}", "malformed .npy header: expected"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", "malformed .npy header: expected"),
    ("params.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (15,)}", "malformed .npy header"),
    ("params.npy", "{'descr': '<zz9', 'fortran_order': False, 'shape': (15,)}", r"invalid dtype '<zz9'"),
    ("params.npy", "{'descr': '(2,)<f4,<i8', 'fortran_order': False, 'shape': (15,)}", "only numbers are allowed"),
    ("params.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (15,)}", "only numbers are allowed"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "declares shape"),
    ("params.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1180591620717411303424,)}", "declares shape"),
    ("params.npy", "(" * 5000 + ")" * 5000, "malformed .npy header"),   # the parser's nesting limit
    ("params.npy", "{" + "'x': 1, " * 1250 + "}", "at most 10000 are read"),
])
def test_a_malformed_npy_header_is_our_error(model_file, tmp_path, member, header, message):
    path, members = model_file
    bad = write_zip(tmp_path / "bad.npz", {**members, member: npy(header, data=bytes(64))})
    with pytest.raises(ValueError, match=message) as error:
        load(bad)
    assert str(bad) in str(error.value) and repr(member[:-4]) in str(error.value)


@pytest.mark.parametrize("raw, message", [
    (b"\x93NUMPX\x01\x00", "has no .npy magic number"),
    (b"\x93NUMPY\x03\x00" + struct.pack("<I", 10) + b"{}" * 5, r"format version \(3, 0\)"),
    (b"\x93NUMPY\x09\x09", r"format version \(9, 9\)"),
    (b"\x93NUMPY\x01\x00\x10", "truncated .npy header"),
    (b"\x93NUMPY\x01\x00" + struct.pack("<H", 500) + b"{'descr'", r"truncated .npy header \(8 of 500"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{", "declares a .npy header of 2147483648 bytes"),
    (b"", "has no .npy magic number"),
])
def test_a_broken_npy_frame_is_our_error(model_file, tmp_path, raw, message):
    path, members = model_file
    bad = write_zip(tmp_path / "bad.npz", {**members, "params.npy": raw})
    with pytest.raises(ValueError, match=message) as error:
        load(bad)
    assert str(bad) in str(error.value) and "'params'" in str(error.value)


def test_a_member_twice_is_refused(model_file, tmp_path):
    path, members = model_file
    bad = tmp_path / "twice.npz"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("params.npy", members["params.npy"])
    with pytest.raises(ValueError, match="holds the member 'params.npy' twice"):
        load(bad)


def test_random_damage_to_a_model_file_is_always_our_error(model_file, tmp_path):
    """Seeded byte flips, truncations and splices anywhere in a valid file: load
    returns a model or raises ValueError, never another exception."""
    path, _ = model_file
    original = pathlib.Path(path).read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(400):
        blob = bytearray(original)
        kind = trial % 4
        if kind == 0:
            for index in rng.integers(0, len(blob), size=rng.integers(1, 4)):
                blob[index] ^= int(rng.integers(1, 256))
        elif kind == 1:
            blob = blob[: int(rng.integers(0, len(blob)))]
        elif kind == 2:
            start = int(rng.integers(0, len(blob) - 8))
            blob[start:start + 4] = struct.pack("<I", int(rng.integers(0, 2**32)))
        else:
            start = int(rng.integers(0, len(blob)))
            blob[start:start] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8))
        damaged = tmp_path / "damaged.npz"
        damaged.write_bytes(bytes(blob))
        try:
            load(damaged)
            outcomes["loaded"] += 1
        except ValueError as error:
            assert str(damaged) in str(error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 300


# ------------------------------------------------------ absurd sizes in the JSON
def model_document(members):
    return json.loads(np.load(io.BytesIO(members["config.npy"])).tobytes())


def with_document(members, doc):
    config = io.BytesIO()
    np.save(config, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    return {**members, "config.npy": config.getvalue()}


@pytest.mark.parametrize("input_shape, layers, n_params, message", [
    # an int too large for int64 used to raise OverflowError from np.prod
    ([2**64], [{"class": "Dense", "config": {"units": 3}}], 15,
     r"input_shape \(18446744073709551616,\) declares 18446744073709551616 elements"),
    # 2**64 elements wrap to 0 in int64: Flatten declared 0 features, and the file loaded
    ([2**32, 2**32], [{"class": "Flatten", "config": {}}, {"class": "Dense", "config": {"units": 3}}], 3,
     r"input_shape \(4294967296, 4294967296\) declares 18446744073709551616 elements"),
    ([4], [{"class": "Dense", "config": {"units": 2**62}}], 5 * 2**62,
     r"layers\[0\] \(Dense\) W \(4, 4611686018427387904\) declares"),
    ([4], [{"class": "Dense", "config": {"units": 10**30}}], 15, r"layers\[0\] \(Dense\)"),
])
def test_absurd_shapes_in_the_document_are_refused_before_allocation(model_file, tmp_path, input_shape,
                                                                      layers, n_params, message):
    path, members = model_file
    doc = dict(model_document(members), input_shape=input_shape, layers=layers, n_params=n_params,
               optimizer=None, classes=None)
    bad = write_zip(tmp_path / "absurd.npz", with_document(members, doc))
    with pytest.raises(ValueError, match=message) as error:
        load(bad)
    assert str(bad) in str(error.value)


def test_a_member_claiming_more_bytes_than_the_file_is_refused(model_file, tmp_path):
    path, members = model_file
    blob = bytearray(pathlib.Path(path).read_bytes())
    # the central directory's uncompressed size of the first member: offset 24 of its record
    first = blob.index(b"PK\x01\x02")
    struct.pack_into("<I", blob, first + 24, 2**32 - 1)
    bad = tmp_path / "claims.npz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"claims 4294967295 bytes, more than the whole file") as error:
        load(bad)
    assert str(bad) in str(error.value)


# ------------------------------------------------------ files that are no files
LOADERS = {
    "load": (lambda path: load(path), "model file"),
    "read_idx": (lambda path: read_idx(path), "IDX file"),
    "load_csv": (lambda path: load_csv(path, "t"), "CSV file"),
    "load_csv_features": (lambda path: load_csv_features(path, None), "CSV file"),
}


@posix_only
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_fifo_is_refused_without_blocking(tmp_path, loader):
    """Opening a FIFO for reading blocks until a writer comes: refused before that."""
    call, what = LOADERS[loader]
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=rf"{what} '{fifo}' is a FIFO \(named pipe\), not a regular file"):
        bounded(lambda: call(fifo), fifo=fifo)


@posix_only
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_directory_socket_or_device_is_refused(tmp_path, loader):
    call, what = LOADERS[loader]
    directory = tmp_path / "dir.npz"
    directory.mkdir()
    with pytest.raises(ValueError, match=rf"{what} '{directory}' is a directory"):
        call(directory)
    sock_path = tmp_path / "s.npz"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_path))
        with pytest.raises(ValueError, match=rf"{what} '{sock_path}' is a socket"):
            bounded(lambda: call(sock_path))
    finally:
        server.close()
    with pytest.raises(ValueError, match=rf"{what} '/dev/null' is a character device"):
        call("/dev/null")


@posix_only
def test_endless_devices_are_refused_in_a_bounded_process():
    """/dev/zero never ends: a reader that opened it would read until memory ran out
    (load_csv reads lines, and /dev/zero has none). Run under 1 GiB and a timeout."""
    out = run_limited("""
        from scratchnn.datasets import load_csv, read_idx
        from scratchnn.io import load
        for name, call in [("load", lambda: load("/dev/zero")),
                           ("read_idx", lambda: read_idx("/dev/zero")),
                           ("load_csv", lambda: load_csv("/dev/zero", "t")),
                           ("load_random", lambda: load("/dev/urandom"))]:
            try:
                call()
                print(name, "LOADED")
            except ValueError as error:
                print(name, "ValueError", error)
            except BaseException as error:
                print(name, "OTHER", type(error).__name__, error)
    """, timeout=60)
    lines = out.splitlines()
    assert len(lines) == 4, out
    for line in lines:
        assert " ValueError " in line and "is a character device, not a regular file" in line, line


@posix_only
def test_a_fifo_swapped_in_after_the_check_cannot_block(tmp_path, monkeypatch):
    """Between os.stat and open the path may become a FIFO: the open is non-blocking,
    and fstat of the open descriptor refuses it."""
    fifo = tmp_path / "swap.csv"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):   # what stat said a moment before the swap
        return regular if os.fspath(path) == str(fifo) else real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stale_stat)
    with pytest.raises(ValueError, match=rf"CSV file '{fifo}' is a FIFO \(named pipe\)"):
        bounded(lambda: open_regular_file(str(fifo), "CSV file"), fifo=fifo)
    with pytest.raises(ValueError, match="is a FIFO"):
        bounded(lambda: load_csv(fifo, "t"), fifo=fifo)


def test_open_regular_file_reads_a_regular_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"data")
    with open_regular_file(str(path)) as file:
        assert file.read() == b"data"
        assert os.get_blocking(file.fileno())
    with pytest.raises(FileNotFoundError, match="no file at"):
        open_regular_file(str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="no file at"):
        open_regular_file(str(path / "below-a-file"))


# ------------------------------------------------------ IDX claims under a memory limit
@posix_only
def test_idx_claims_larger_than_memory_are_refused_under_rlimit(tmp_path):
    """Under 1 GiB of address space: a 100-byte file claiming 93 GiB (the reader used to
    ask for it: MemoryError), and a 3 GiB claim padded past the deflate-ratio bound with
    only 1 MB of real data (an allocate-first reader fails; ours grows with the data)."""
    tiny = tmp_path / "tiny-idx3-ubyte.gz"
    tiny.write_bytes(gzip.compress(struct.pack(">BBBB3I", 0, 0, 8, 3, 100000, 1000, 1000) + bytes(64),
                                   mtime=0))
    padded = tmp_path / "padded-idx1-ubyte.gz"
    claim = 3 << 30
    padded.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, claim) + bytes(1 << 20), mtime=0)
                       + bytes(claim // 1000))
    out = run_limited(f"""
        from scratchnn.datasets import read_idx
        for path in [{str(tiny)!r}, {str(padded)!r}]:
            try:
                read_idx(path)
                print("LOADED")
            except ValueError as error:
                print("ValueError", error)
            except BaseException as error:
                print("OTHER", type(error).__name__, error)
    """)
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith(f"ValueError {tiny}: IDX payload truncated") and \
        "more than its" in lines[0], lines[0]
    assert lines[1].startswith(f"ValueError {padded}: IDX payload truncated") and \
        f"the file holds {1 << 20} bytes" in lines[1], lines[1]


# ------------------------------------------------------ image claims under a memory limit
@posix_only
def test_model_files_of_huge_images_load_or_are_refused_under_rlimit(model_file, tmp_path):
    """Under 1 GiB of address space, small files declaring image layers for images of
    2**30 to 2**40 values: loading builds the layers, and no build may allocate an image
    (AvgPool2D's counts of real pixels once padded an image of ones in build: 8 GiB here).
    Those whose parameters the file holds load; the others are refused by their declared
    sizes or by their padding."""
    _, members = model_file
    base = dict(model_document(members), optimizer=None, classes=None, loss=None, metrics=None)
    avg = {"class": "AvgPool2D", "config": {"pool_size": 3, "stride": 1, "padding": 1,
                                            "count_include_pad": False}}
    cases = {
        "pools": ([2**15, 2**15, 1], [avg, {"class": "MaxPool2D", "config": {"padding": "same"}},
                                      {"class": "GlobalAveragePooling2D", "config": {}}], 0),
        "conv": ([2**15, 2**15, 1], [{"class": "Conv2D", "config": {"filters": 2, "kernel_size": 3,
                                                                     "padding": "same"}}, avg,
                                     {"class": "GlobalAveragePooling2D", "config": {}}], 20),
        "normalized": ([2**14, 2**14, 4], [{"class": "LayerNormalization", "config": {"axis": [1, 2, 3]}},
                                           {"class": "BatchNormalization", "config": {}}], 2 * 2**30 + 8),
        "padding": ([8, 8, 1], [{"class": "Conv2D", "config": {"filters": 1, "kernel_size": 1,
                                                                "padding": 2**40}}], 2),
    }
    paths = {}
    for name, (input_shape, layers, n_params) in cases.items():
        doc = dict(base, input_shape=input_shape, layers=layers, n_params=n_params,
                   n_buffers=8 if name == "normalized" else 0)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (n_params,)})
        claimed = {**with_document(members, doc), "params.npy": header.getvalue() + bytes(80)}
        if name == "normalized":
            buffers = io.BytesIO()
            np.save(buffers, np.zeros(8, np.float32))
            claimed["buffers.npy"] = buffers.getvalue()
        paths[name] = str(write_zip(tmp_path / f"{name}.npz", claimed))
    out = run_limited(f"""
        from scratchnn.io import load
        for name, path in {paths!r}.items():
            try:
                model = load(path)
                print(name, "LOADED", model.output_shape, model.count_params())
            except ValueError as error:
                print(name, "ValueError", error)
            except BaseException as error:
                print(name, "OTHER", type(error).__name__, error)
    """)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines.keys() == cases.keys(), out
    assert lines["pools"] == "LOADED (1,) 0", out
    assert lines["conv"] == "LOADED (2,) 20", out            # 20 weights, in the file
    assert lines["normalized"].startswith("ValueError") and "more data than" in lines["normalized"], out
    assert lines["padding"].startswith("ValueError") and "padding (1099511627776, 1099511627776)" in \
        lines["padding"], out
