"""Fashion-MNIST: 70,000 real 28x28 grayscale images of clothing in 10 classes.

The data come as four gzip-compressed IDX files (the format of the original MNIST)::

    train-images-idx3-ubyte.gz   60,000 images   magic 2051, shape (60000, 28, 28), uint8
    train-labels-idx1-ubyte.gz   60,000 labels   magic 2049, shape (60000,),        uint8 0..9
    t10k-images-idx3-ubyte.gz    10,000 images
    t10k-labels-idx1-ubyte.gz    10,000 labels

``load_fashion_mnist`` looks for a directory holding all four files, in order:

1. the ``path`` argument (if given, it must hold them: no fall-through);
2. ``$SCRATCHNN_DATA``;
3. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu: ``apt-get install dataset-fashion-mnist``);
4. the user cache, ``$XDG_CACHE_HOME/scratchnn/fashion-mnist`` or
   ``~/.cache/scratchnn/fashion-mnist``.

If none holds them and ``download=True``, the missing files are downloaded from the official
source into the user cache, each checked against its official MD5 and written atomically.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import urllib.request
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..io import check_path, open_regular_file, temporary_file_for

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# MD5 of the official .gz files (zalandoresearch/fashion-mnist README); downloads are checked
# against these.
MD5 = {
    TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
    TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
    TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
}
# MD5 of the decompressed IDX payloads. Debian's package recompresses the files (its .gz bytes,
# hence their MD5s, differ from the official ones), but the payloads match these.
RAW_MD5 = {
    TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
    TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
    TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
}

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT = 60.0   # seconds without data before a download gives up

# The function that opens a URL; tests replace it with a fake server.
_urlopen = urllib.request.urlopen

# IDX type byte -> big-endian dtype of the payload.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGES_MAGIC = 0x00000803   # 2051: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801   # 2049: unsigned bytes, 1 dimension

PathLike = Union[str, "os.PathLike[str]"]


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are in none of the places searched and could not be downloaded."""


def read_idx(path: PathLike) -> np.ndarray:
    """Read one gzip-compressed IDX file into an array.

    Layout (all integers big-endian)::

        magic   4 bytes: 0x00, 0x00, type (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64), number of dimensions d (1 to 32)
        shape   d x uint32
        data    prod(shape) values, row-major

    The header is checked before any data is read, and the payload is decompressed in
    chunks into an array that grows with the data actually there: a small file that
    claims a huge shape, or a gzip bomb, is refused without allocating the claim, and
    no more than the claimed size plus one byte is ever decompressed. A dimension of 0
    gives an empty array of that shape (the loader refuses a split with no samples).

    Returns:
        an array of ``shape`` in the native byte order (``uint8`` for the MNIST files),
        writable and owning its memory.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError (naming the file): not a regular file (a directory, a FIFO, a device),
            not a gzip file, truncated or corrupt compressed data, unknown magic number, more
            than 32 dimensions, a shape more than the compressed file could hold, or a payload
            whose length is not exactly the header's shape.
    """
    path = Path(check_path(path))
    with open_regular_file(str(path), "IDX file") as file:
        stream = _GzipStream(file)
        try:
            return _read_idx_stream(path, stream, os.fstat(file.fileno()).st_size)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: not a valid gzip-compressed IDX file (truncated or corrupt "
                             f"download?): {error}") from None


class _GzipStream:
    """The decompressed bytes of a gzip file (one member or several, zero padding
    between them allowed as ``gzip`` allows it), produced only as asked for:
    ``read(n)`` decompresses at most ``n`` bytes. zlib checks each member's CRC-32
    and length at its end."""

    _INPUT_CHUNK = 1 << 16      # compressed bytes read at a time
    _OUTPUT_CHUNK = 1 << 20     # decompressed bytes produced at a time

    def __init__(self, file) -> None:
        self._file = file
        self._input = b""            # compressed bytes read but not yet decompressed
        self._file_ended = False
        self._decompressor = None    # None between members
        self._members = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the data (callers read headers:
        a few bytes)."""
        buffer = bytearray(size)
        return bytes(buffer[:self.readinto(memoryview(buffer))])

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` (bytes) as far as the data go; return the count written."""
        filled = 0
        while filled < len(buffer):
            data = self._next(min(len(buffer) - filled, self._OUTPUT_CHUNK))
            if not data:
                break
            buffer[filled:filled + len(data)] = data
            filled += len(data)
        return filled

    def _next(self, size: int) -> bytes:
        """At most ``size`` (> 0) decompressed bytes; b"" at the end of the data."""
        while True:
            if not self._input and not self._file_ended:
                self._input = self._file.read(self._INPUT_CHUNK)
                self._file_ended = not self._input
            if self._decompressor is None:           # between members
                self._input = self._input.lstrip(b"\x00") if self._members else self._input
                if not self._input:
                    if not self._file_ended:
                        continue                     # zero padding: read on
                    if not self._members:
                        raise EOFError("the file is empty")
                    return b""
                self._decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                self._members += 1
            before = len(self._input)
            try:
                # from an empty input too: zlib may hold output it had no room for
                data = self._decompressor.decompress(self._input, size)
            except zlib.error as error:
                raise zlib.error(_zlib_message(error)) from None
            if self._decompressor.eof:
                self._input, self._decompressor = self._decompressor.unused_data, None
            else:
                self._input = self._decompressor.unconsumed_tail
            if data:
                return data
            if self._decompressor is not None:
                if not self._input and self._file_ended:
                    raise EOFError("compressed file ended before the end-of-stream marker was "
                                   "reached")
                if self._input and len(self._input) == before:
                    raise zlib.error("the decompressor made no progress (corrupt data)")


def _zlib_message(error: zlib.error) -> str:
    text = str(error)
    if "incorrect data check" in text:
        return f"CRC-32 check failed ({text})"
    if "incorrect length check" in text:
        return f"the stored length does not match the data ({text})"
    if "incorrect header check" in text:
        return f"not a gzip file ({text})"
    return text


_MAX_NDIM = 32              # NumPy 1's limit; real IDX files have 1 to 3 dimensions
_MAX_DEFLATE_RATIO = 1032   # deflate never expands data more than this (zlib's documented bound)


def _read_idx_stream(path: Path, stream: "_GzipStream", compressed_size: int) -> np.ndarray:
    magic_bytes = stream.read(4)
    if len(magic_bytes) < 4:
        raise ValueError(f"{path}: {len(magic_bytes)} bytes after decompression, too short for the "
                         "4-byte IDX magic number")
    magic = int.from_bytes(magic_bytes, "big")
    zero, type_code, ndim = magic_bytes[0:2], magic_bytes[2], magic_bytes[3]
    if zero != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08X}; expected 0x0000TTDD with "
                         f"type TT in {{{', '.join(f'{t:02X}' for t in _IDX_DTYPES)}}} and "
                         "DD >= 1 dimensions (images: 0x00000803, labels: 0x00000801)")
    if ndim > _MAX_NDIM:
        raise ValueError(f"{path}: the IDX header declares {ndim} dimensions; at most {_MAX_NDIM} "
                         "are supported (images have 3, labels 1)")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
                         f"the file has {4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize      # Python ints: no overflow
    described = (f"the header declares shape {shape} ({expected} bytes of "
                 f"{dtype.newbyteorder('=').name})")
    if 4 + 4 * ndim + expected > _MAX_DEFLATE_RATIO * compressed_size:
        raise ValueError(f"{path}: IDX payload truncated: {described}, more than its "
                         f"{compressed_size} compressed bytes can hold (deflate expands at most "
                         f"{_MAX_DEFLATE_RATIO}:1)")
    if expected == 0:
        nonzero = math.prod(s for s in shape if s)
        if nonzero * dtype.itemsize > np.iinfo(np.intp).max:
            raise ValueError(f"{path}: the IDX header declares shape {shape}, which no array can "
                             "have")
        array = np.empty(shape, dtype=dtype)
    else:
        array = _read_payload(path, stream, expected, dtype, described)
        array.resize(shape, refcheck=False)   # in place: it owns its memory, and no view exists
    if stream.read(1):
        raise ValueError(f"{path}: IDX payload has trailing bytes: {described}, the file holds "
                         "more")
    return array.astype(dtype.newbyteorder("="), copy=False)   # native byte order


def _read_payload(path: Path, stream: "_GzipStream", expected: int, dtype: np.dtype,
                  described: str) -> np.ndarray:
    """``expected`` bytes of ``stream`` in a 1-D array of ``dtype``, which grows (doubling)
    as the data arrive, so that memory follows the real payload and not the header's claim."""
    capacity = min(expected, 1 << 20)
    array = np.empty(capacity // dtype.itemsize, dtype=dtype)
    filled = 0
    try:
        while filled < expected:
            if filled == capacity:
                capacity = min(expected, 2 * capacity)
                array.resize(capacity // dtype.itemsize, refcheck=False)
            with memoryview(array) as view, view.cast("B") as buffer:
                count = stream.readinto(buffer[filled:capacity])
            if not count:
                break
            filled += count
    except MemoryError:
        raise ValueError(f"{path}: {described}, more than this machine's memory holds") from None
    if filled < expected:
        raise ValueError(f"{path}: IDX payload truncated: {described}, the file holds {filled} bytes")
    return array


def load_fashion_mnist(path: Optional[PathLike] = None, *, images: bool = False,
                       flatten: Optional[bool] = None, normalize: bool = True,
                       download: bool = True
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load Fashion-MNIST as ``(X_train, y_train, X_test, y_test)``.

    Shapes of ``X_train`` and ``X_test``:

    ========================  ======================================
    default (rows)            (60000, 784) and (10000, 784)
    ``images=True``           (60000, 28, 28, 1) and (10000, 28, 28, 1): channels last,
                              the layout of ``Conv2D``
    ``flatten=False``         (60000, 28, 28) and (10000, 28, 28)
    ========================  ======================================

    Row ``i`` of the flat layout is image ``i`` read row by row: ``X_rows[i] ==
    X_images[i].reshape(784)``. ``y_*`` are int64 class indices 0..9 (names in
    ``CLASS_NAMES``).

    Args:
        path: a directory holding the four ``.gz`` files. If given it must hold all four;
            otherwise ``$SCRATCHNN_DATA``, ``/usr/share/datasets/fashion-mnist`` and the user
            cache are searched (see the module docstring).
        images: each sample as a ``(28, 28, 1)`` image (height, width, channels), for
            convolutional networks.
        flatten: each sample as a row of 784 pixels, or (``False``) as a 28x28 array. The
            default ``None`` means rows unless ``images=True``; ``images=True, flatten=True``
            asks for two layouts and is an error.
        normalize: float32 pixels ``p / 255`` in [0, 1] (default); ``False`` keeps the raw
            uint8 pixels 0..255.
        download: when no directory holds the files, download them into the user cache
            (checked against the official MD5s).

    Raises:
        DatasetNotFoundError: the files were not found (and not downloaded); the message lists
            the places searched and how to get the files.
        ValueError: ``images=True`` with ``flatten=True``; a file is corrupt, the files do not
            fit together (the message names the file), or a downloaded file fails its MD5
            check (nothing is saved then).
    """
    for argument, value in (("images", images), ("normalize", normalize), ("download", download)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{argument} must be True or False, got {value!r}")
    if flatten is not None and not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be None, True or False, got {flatten!r}")
    if images and flatten:
        raise ValueError("images=True and flatten=True ask for two layouts: images gives "
                         "(N, 28, 28, 1) arrays, flatten (N, 784) rows; pass only one of them")
    directory = _find_directory(path, bool(download))
    X_train, y_train = _load_split(directory / TRAIN_IMAGES, directory / TRAIN_LABELS)
    X_test, y_test = _load_split(directory / TEST_IMAGES, directory / TEST_LABELS)
    if images:                                   # views: no copy of the pixels
        X_train, X_test = X_train[..., np.newaxis], X_test[..., np.newaxis]
    elif flatten is None or flatten:
        X_train = X_train.reshape(len(X_train), -1)
        X_test = X_test.reshape(len(X_test), -1)
    if normalize:
        X_train, X_test = _to_unit_float(X_train), _to_unit_float(X_test)
    return X_train, y_train, X_test, y_test


def _to_unit_float(pixels: np.ndarray) -> np.ndarray:
    # one pass, uint8 in and float32 out; a division, not * (1/255): 255 maps to exactly 1.0
    return np.divide(pixels, np.float32(255), dtype=np.float32)


def _load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    for file, array, magic in ((images_path, images, _IMAGES_MAGIC), (labels_path, labels, _LABELS_MAGIC)):
        expected_ndim = magic & 0xFF
        if array.dtype != np.uint8 or array.ndim != expected_ndim:
            raise ValueError(f"{file}: expected IDX magic 0x{magic:08X} ({magic}: uint8, "
                             f"{expected_ndim} dimensions), got {array.dtype} data of shape "
                             f"{array.shape}")
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected 28x28 images, got shape {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{images_path}: the file holds no images (shape {images.shape}); a "
                         "Fashion-MNIST split has at least one sample")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels; the counts must agree")
    if labels.max() >= len(CLASS_NAMES):         # (a split holds at least one sample)
        raise ValueError(f"{labels_path}: labels must be 0..{len(CLASS_NAMES) - 1}, found "
                         f"{int(labels.max())}")
    return images, labels.astype(np.int64)


# ------------------------------------------------------------------ finding the files
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/scratchnn/fashion-mnist``, or ``~/.cache/scratchnn/fashion-mnist``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "scratchnn" / "fashion-mnist"


def _missing(directory: Path) -> list[str]:
    return [name for name in FILES if not (directory / name).is_file()]


def _find_directory(path: Optional[PathLike], download: bool) -> Path:
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a directory path (str or os.PathLike), got "
                            f"{type(path).__name__}")
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise DatasetNotFoundError(f"path={str(path)!r} is not a directory; expected a "
                                       f"directory holding the Fashion-MNIST files {', '.join(FILES)}")
        missing = _missing(directory)
        if missing:
            raise DatasetNotFoundError(f"path={str(path)!r} lacks the Fashion-MNIST files "
                                       f"{', '.join(missing)}; it must hold all four of "
                                       f"{', '.join(FILES)}")
        return directory

    searched = []   # (place, what was wrong) for the error message
    environment = os.environ.get("SCRATCHNN_DATA")
    candidates = ([(f"$SCRATCHNN_DATA={environment}", Path(environment).expanduser())]
                  if environment else [])
    if not environment:
        searched.append(("$SCRATCHNN_DATA", "not set"))
    cache = cache_dir()
    candidates += [(str(SYSTEM_DIR), SYSTEM_DIR), (str(cache), cache)]
    for place, directory in candidates:
        if not directory.is_dir():
            searched.append((place, "no such directory"))
            continue
        missing = _missing(directory)
        if not missing:
            return directory
        searched.append((place, f"missing {', '.join(missing)}"))

    failure = "download=False, so no download was tried"
    if download:
        try:
            _download(cache, _missing(cache))
            return cache
        except (OSError, http.client.HTTPException) as error:
            failure = f"downloading from {URL} into {cache} failed: {error}"
            _raise_not_found(searched, failure, error)
    _raise_not_found(searched, failure, None)


def _raise_not_found(searched, failure: str, cause: Optional[BaseException]):
    places = "\n".join(f"  - {place} ({why})" for place, why in searched)
    raise DatasetNotFoundError(
        f"Fashion-MNIST not found. Looked for a directory holding {', '.join(FILES)} in:\n"
        f"{places}\n"
        f"and {failure}.\n"
        "Get the files in one of these ways:\n"
        "  - sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; installs them in "
        f"{SYSTEM_DIR})\n"
        f"  - download the four files from {URL} into a directory and set SCRATCHNN_DATA to it\n"
        "  - pass load_fashion_mnist(path='/directory/with/the/files')"
    ) from cause


# ------------------------------------------------------------------ downloading
def _download(directory: Path, names: list[str]) -> None:
    """Download each of ``names`` into ``directory``, MD5-checked and written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        _download_file(URL + name, directory / name, MD5[name])


def _download_file(url: str, destination: Path, md5: str) -> None:
    """Stream ``url`` into a temporary file beside ``destination``, check its MD5, then
    rename it into place; on any failure the temporary file is deleted, and the ``.part``
    files of earlier downloads that were killed are removed (``io.temporary_file_for``)."""
    with temporary_file_for(str(destination), ".part") as (descriptor, temporary):
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(descriptor, "wb") as out, _urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise ValueError(f"{url}: MD5 checksum mismatch: expected {md5}, got "
                             f"{digest.hexdigest()} (corrupted download, or a proxy answered "
                             f"instead of the server); nothing was saved to {destination.parent}")
        os.replace(temporary, destination)
