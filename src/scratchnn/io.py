"""Model files: save a Sequential model to one ``.npz`` and load it back.

A model file is an uncompressed ``.npz`` archive (``np.savez``) of plain
number arrays::

    config             uint8 (n,)   UTF-8 bytes of the JSON document below
    params             float (P,)   the model's flat parameter vector
    buffers            float (B,)   the model's flat buffer vector (state that is not
                                    trained), when the model has buffers
    optimizer/<name>   float (P,)   each optimizer state vector ("m", "v", "velocity", ...),
                                    under the meaning its class documents (Adam's "m" and
                                    "v" are torch.optim.Adam's exp_avg and exp_avg_sq)

and the JSON document (``format_version`` 3) describes everything else::

    {"format": "scratchnn-model", "format_version": 3, "scratchnn_version": "0.1.0",
     "model": "Sequential",
     "name": "sequential", "dtype": "float32", "seed": 42, "input_shape": [4],
     "image_layout": "channels_last",
     "layers": [{"class": "Dense", "config": {"units": 16, "use_bias": true, ...}}, ...],
     "loss": {"class": "cross_entropy", "config": {}},                       (or null)
     "optimizer": {"class": "adam", "config": {"lr": 0.001, ...},
                   "iterations": 40, "state": ["m", "v"]},                  (or null)
     "metrics": ["accuracy"],                                                (or null)
     "classes": ["cat", "dog", "bird"],                                      (or null)
     "rng_state": {"bit_generator": "PCG64", "state": {...}, ...},
     "n_params": 131, "n_buffers": 0,
     "metadata": {...}}

``image_layout`` is the order of the axes of an image sample: ``"channels_last"``,
``(height, width, channels)``, the only layout scratchnn has (``Conv2D`` and the
pooling layers take ``(N, H, W, C)``); it is written in every file, images or not,
and a file of another layout is refused rather than read with its axes mixed up.
``model`` is a key of ``MODELS``, ``layers[i].class`` a key of ``scratchnn.layers.LAYERS``,
``loss.class`` a key of ``LOSSES`` and ``optimizer.class`` a key of ``OPTIMIZERS``; each ``config``
holds the keyword arguments of that class's constructor. A value there may itself
be such an entry, of plain values only: a layer's ``"kernel_regularizer": {"class": "l2",
"config": {"l2": 0.01}}``, whose class is a key of ``scratchnn.regularizers.REGULARIZERS``
(the layer's constructor checks it). ``rng_state`` is the state of ``model.rng``, so
training resumed from a file shuffles and drops out exactly as an uninterrupted run would.

A file is data, never code. ``load`` reads only number arrays (an array of
Python objects is refused, not decoded), builds classes only from the registries
by name, passes only the keyword arguments their constructors
declare, and checks every field, the size of every array and the finiteness of
every value before it returns a model. No array is read before its declared
size is checked against the bytes the archive really holds, and every count the
JSON declares (``n_params``, the layers' shapes) is computed in Python integers
and matched against those arrays, so a small file cannot make ``load`` allocate
a large model. ``classes`` must fit the model (``check_classes``). Only regular
files are opened: a FIFO, a device or a directory is refused, never read.

``save`` writes a temporary file in the target's directory and renames it over
the target, so a crash, a ``kill -9`` or a full disk never leaves a half-written
model behind, and concurrent writers each rename a complete file of their own.
A temporary file is named ``.<target>.<host>.<pid>.<random>.tmp``; each save
removes the temporary files of the same target that a dead process of this host
left behind (never one whose writer is alive).

Files of the earlier formats still load, and ``save`` writes them again as format 3:

- format 2 (scratchnn 0.1.0 with buffers, before images) has no ``image_layout``:
  it is read as ``"channels_last"``, the only layout there has ever been;
- format 1 (scratchnn 0.1.0 before buffers) has no ``model``, ``n_buffers``,
  ``buffers`` or ``image_layout`` either, and its Adam and AdamW state holds
  ``m / (1 - beta1)`` and ``v / (1 - beta2)``, which ``load`` converts to the moments.

This module knows models only through their public API; it never imports
``scratchnn.model`` (which imports it): ``MODELS`` is filled in by that module.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import inspect
import json
import math
import numbers
import os
import re
import socket
import stat
import struct
import tempfile
import threading
import zipfile
import zlib
from typing import Any, Optional, Union

import numpy as np

from . import metrics as _metrics
from ._validation import DTYPES, check_bool
from .layers import LAYERS
from .losses import LOSSES, BinaryCrossEntropy
from .optimizers import OPTIMIZERS

FORMAT = "scratchnn-model"
FORMAT_VERSION = 3
#: the values of a file's ``image_layout``: the axes of one image sample, in order
IMAGE_LAYOUTS = {"channels_last": "(height, width, channels)"}
IMAGE_LAYOUT = "channels_last"

#: Model classes by the name a file gives them (scratchnn.model adds Sequential).
MODELS: dict[str, type] = {}

_FIELDS_V1 = ("format", "format_version", "scratchnn_version", "name", "dtype", "seed",
              "input_shape", "layers", "loss", "optimizer", "metrics", "classes", "rng_state",
              "n_params", "metadata")
_FIELDS = {1: _FIELDS_V1, 2: (*_FIELDS_V1, "model", "n_buffers")}
_FIELDS[3] = (*_FIELDS[2], "image_layout")
_STATE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# What reading a damaged or hostile archive can raise inside numpy and zipfile.
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, RuntimeError, NotImplementedError,
                OverflowError, struct.error, zipfile.BadZipFile, zlib.error)
# A .npy header: magic, version, the header's length (by version), then a Python dict literal.
_NPY_MAGIC = b"\x93NUMPY"
_NPY_LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I"}
_NPY_MAX_HEADER = 10_000      # bytes; NumPy's own limit for headers it reads without pickle
# Shapes a file declares are multiplied in Python integers, and refused above this many
# elements (the layers' own counts use int64).
_MAX_ELEMENTS = 2**62

PathLike = Union[str, os.PathLike]


# ============================================================================ save
def save(model, path: PathLike, include_optimizer: bool = True,
         metadata: Optional[dict] = None) -> str:
    """Write ``model`` to one ``.npz`` file, atomically; return the path written.

    Args:
        model: a built model (a Sequential).
        path: the file (a ``str`` or ``os.PathLike``; bytes are refused); ``".npz"``
            is appended when the name does not end with it. An existing file is
            replaced only once the new one is complete.
        include_optimizer: also save the optimizer's settings and state vectors,
            so that ``fit`` can resume where it stopped. When False the file has
            no optimizer (``"optimizer": null``).
        metadata: a dict of JSON values to keep with the model (a scaler's mean
            and scale, a data-set name, ...); NumPy scalars and arrays are stored
            as numbers and lists. Defaults to ``model.metadata`` when the model
            has one (a loaded model does), else ``{}``.

    Raises:
        TypeError: ``model`` is not a Sequential, or ``path`` is not a str or os.PathLike.
        ValueError: ``path`` is empty, names a directory or another non-regular file,
            or has no name before ``.npz``; ``model.classes`` does not fit the model
            (see ``check_classes``); a value cannot be stored.
        FileNotFoundError, PermissionError: the directory does not exist or is not
            writable (checked before anything is written).
    """
    if not isinstance(model, tuple(MODELS.values())):
        raise TypeError(f"model must be a scratchnn Sequential, got {type(model).__name__}")
    if not model.built:
        raise RuntimeError("the model is not built yet: call build(input_shape), or fit or "
                           "predict once, before save()")
    path = _save_target(path)
    if metadata is None:
        metadata = getattr(model, "metadata", None)
    document, state = _describe(model, check_bool(include_optimizer, "include_optimizer"), metadata)
    text = json.dumps(document, allow_nan=False, ensure_ascii=False)
    arrays = {"config": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
              "params": model.params}
    if model.buffers.size:
        arrays["buffers"] = model.buffers
    arrays.update({f"optimizer/{name}": vector for name, vector in state.items()})
    _write_atomically(path, arrays)
    return path


def check_path(path, argument: str = "path") -> str:
    """``path`` (a ``str`` or ``os.PathLike`` of str) as a non-empty ``str``, else a
    TypeError or ValueError naming ``argument``. Bytes are refused: decode them
    with ``os.fsdecode``. ``save``, ``load`` and the data sets' readers use it."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise TypeError(f"{argument} must be a str or os.PathLike path, got {type(path).__name__} "
                        f"{bytes(path)!r:.80}; decode it first (os.fsdecode)")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a str or os.PathLike path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a path of str, but os.fspath({argument}) gave "
                        f"{type(text).__name__}; decode it first (os.fsdecode)")
    if not text:
        raise ValueError(f"{argument} is an empty string; expected a file path such as 'model.npz'")
    if "\0" in text:
        raise ValueError(f"{argument} {text!r:.80} contains a NUL character, which no file name can hold")
    return text


def _save_target(path, suffix: Optional[str] = ".npz") -> str:
    """The file ``save`` writes: ``path`` (``suffix`` appended when missing; None appends
    nothing, as the ONNX exporter writes), checked before any work is done: a file name,
    in an existing writable directory, not a directory itself."""
    given = check_path(path)
    target = given if suffix is None or given.endswith(suffix) else given + suffix
    if given.endswith((os.sep, "/")):                # ("/" is os.altsep on Windows)
        raise ValueError(f"path {given!r} ends with a path separator; expected a file path "
                         f"such as 'models/model{suffix or '.onnx'}', not a directory")
    if suffix is not None and os.path.basename(target) == suffix:
        raise ValueError(f"path {given!r} has no file name before '.npz'; expected a path such "
                         "as 'model.npz'")
    directory = os.path.dirname(os.path.abspath(target))
    try:
        directory_mode = os.stat(directory).st_mode
    except OSError:
        raise FileNotFoundError(f"cannot save to {target!r}: the directory {directory!r} does not "
                                "exist") from None
    if not stat.S_ISDIR(directory_mode):
        raise ValueError(f"cannot save to {target!r}: {directory!r} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot save to {target!r}: the directory {directory!r} is not "
                              "writable")
    try:
        target_mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise ValueError(f"cannot save to {target!r}: {error.strerror}") from None
    if not stat.S_ISREG(target_mode):
        raise ValueError(f"cannot save to {target!r}: it is {_file_kind(target_mode)}, not a regular "
                         "file; expected a new path or an existing model file to replace")
    return target


def _describe(model, include_optimizer: bool, metadata) -> tuple[dict, dict]:
    """The JSON document of ``model`` and the optimizer state vectors to store."""
    from . import __version__

    layers = []
    for i, layer in enumerate(model.layers):
        name = type(layer).__name__
        if LAYERS.get(name) is not type(layer):
            raise ValueError(f"layers[{i}] is a {name}, which is not in scratchnn.layers.LAYERS; "
                             "a model file can only hold registered layers")
        layers.append({"class": name, "config": _jsonable(layer.get_config(), f"layers[{i}] config")})

    loss = None
    if model.loss is not None:
        loss = {"class": _registry_key(LOSSES, model.loss, "loss", "LOSSES"),
                "config": _jsonable(model.loss.get_config(), "loss config")}

    optimizer, state = None, {}
    if include_optimizer and model.optimizer is not None:
        opt = model.optimizer
        saved = opt.state_dict()
        state = {k: v for k, v in saved.items() if k != "iterations"}
        for name, vector in state.items():
            if not (isinstance(name, str) and _STATE_NAME.match(name)):
                raise ValueError(f"optimizer state name {name!r} is not a plain identifier")
            if not (isinstance(vector, np.ndarray) and vector.shape == model.params.shape
                    and vector.dtype == model.dtype):
                raise ValueError(f"optimizer state {name!r} must be a {model.dtype.name} vector of "
                                 f"{model.params.size} values like params, got "
                                 f"{getattr(vector, 'shape', type(vector).__name__)}")
        optimizer = {"class": _registry_key(OPTIMIZERS, opt, "optimizer", "OPTIMIZERS"),
                     "config": _jsonable(opt.get_config(), "optimizer config"),
                     "iterations": int(saved["iterations"]),
                     "state": sorted(state)}

    if not isinstance(model.name, str):
        raise ValueError(f"model.name must be a string, got {model.name!r}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")

    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scratchnn_version": __version__,
        "model": _registry_key(MODELS, model, "model", "MODELS"),
        "name": model.name,
        "dtype": model.dtype.name,
        "seed": None if model.seed is None else int(model.seed),
        "input_shape": [int(s) for s in model.input_shape],
        "image_layout": IMAGE_LAYOUT,
        "layers": layers,
        "loss": loss,
        "optimizer": optimizer,
        "metrics": None if model.metrics is None else _jsonable(list(model.metrics), "metrics"),
        "classes": check_classes(model.classes, model, "model.classes"),
        "rng_state": _jsonable(model.rng.bit_generator.state, "model.rng state"),
        "n_params": int(model.params.size),
        "n_buffers": int(model.buffers.size),
        "metadata": _jsonable(metadata, "metadata"),
    }
    return document, {k: state[k] for k in sorted(state)}


def _registry_key(registry: dict, obj, what: str, registry_name: str) -> str:
    """The first key of ``registry`` whose class is exactly ``type(obj)``."""
    for key, cls in registry.items():
        if cls is type(obj):
            return key
    raise ValueError(f"the {what} is a {type(obj).__name__}, which is not in {registry_name}; "
                     "a model file can only hold registered classes"
                     + ("" if what != "optimizer" else " (or save with include_optimizer=False)"))


#: how deeply lists and dicts may nest in what a model file stores (metadata)
MAX_NESTING = 64


def _jsonable(value, where: str, depth: int = 0):
    """``value`` as JSON types: NumPy scalars and arrays become numbers and lists;
    anything else that JSON cannot hold is an error naming ``where``."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where} nests lists or dicts more than {MAX_NESTING} levels deep")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise TypeError(f"{where} holds an array of dtype {value.dtype}; only numbers, "
                            "booleans and strings can be saved")
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} holds {value}, which a model file cannot store "
                             "(JSON has no NaN or infinity)")
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}; keys must be strings")
            out[key] = _jsonable(v, f"{where}[{key!r}]", depth + 1)
        return out
    raise TypeError(f"{where} holds a {type(value).__name__} ({value!r:.60}), which is not "
                    "JSON-serialisable")


def check_classes(classes, model, argument: str = "classes") -> Optional[list]:
    """``classes`` as a list of labels that fits ``model``; ``None`` stays ``None``.

    ``predict`` returns ``classes[i]`` for each class index ``i`` that the loss
    predicts, so there must be exactly one label per index the loss can give::

        CrossEntropy (outputs (N, ..., k))     k labels: classes[i] names output unit i
        BinaryCrossEntropy (any k)             2 labels: classes[0] for a logit <= 0,
                                               classes[1] for a logit > 0
        MSE, MAE, Huber (regression)           None: predictions are values, not classes
        no loss yet                            None: the rule depends on the loss

    (another classification loss is held to the CrossEntropy rule.) The labels
    must be a list, tuple or 1-D array of one type (str, int, float or bool;
    NumPy scalars become Python ones), finite and distinct.

    Raises:
        ValueError naming ``argument``: the labels are malformed or their number
            does not fit the model's loss and outputs.
    """
    if classes is None:
        return None
    if isinstance(classes, np.ndarray):
        if classes.ndim != 1:
            raise ValueError(f"{argument} must be a 1-D list of labels, got an array of shape "
                             f"{classes.shape}")
        classes = classes.tolist()
    if not isinstance(classes, (list, tuple)):
        raise ValueError(f"{argument} must be a list, tuple or 1-D array of labels, got "
                         f"{type(classes).__name__}")
    labels = [c.item() if isinstance(c, np.generic) else c for c in classes]
    kinds = {next((t for t in (bool, int, float, str) if isinstance(c, t)), None) for c in labels}
    if not labels or len(kinds) != 1 or None in kinds:
        raise ValueError(f"{argument} must be a non-empty list of labels of one type (strings, "
                         f"integers, floats or booleans), got {classes!r:.100}")
    kind = kinds.pop()
    labels = [kind(c) for c in labels]      # plain str, int, ... (np.str_ is a str subclass)
    if kind is float and not all(math.isfinite(c) for c in labels):
        raise ValueError(f"{argument} must hold finite labels, got {labels!r:.100}")
    if len(set(labels)) != len(labels):
        seen, duplicates = set(), []
        for c in labels:
            if c in seen and c not in duplicates:
                duplicates.append(c)
            seen.add(c)
        raise ValueError(f"{argument} must hold distinct labels (one per class), but "
                         f"{duplicates!r:.100} appear more than once")

    loss = model.loss
    if loss is None or not loss.classification:
        what = "the model has no loss yet" if loss is None else \
            f"the model's loss {type(loss).__name__} is a regression loss"
        raise ValueError(f"{argument} must be None: {what}, and only a classification loss "
                         f"(cross_entropy, binary_cross_entropy) predicts classes; got {labels!r:.100}")
    if model.output_shape is None:
        raise ValueError(f"{argument} cannot be checked before the model is built: its number "
                         "of outputs is not known yet")
    if isinstance(loss, BinaryCrossEntropy):
        expected = 2
        why = (f"classes[0] for a logit <= 0 and classes[1] for a logit > 0 under "
               f"{type(loss).__name__}")
    else:
        expected = int(model.output_shape[-1])
        why = (f"one per output unit under {type(loss).__name__} (the model's outputs are "
               f"{tuple(model.output_shape)} per sample)")
    if len(labels) != expected:
        raise ValueError(f"{argument} must have {expected} labels, {why}; got {len(labels)}: "
                         f"{labels!r:.100}")
    return labels


def _write_atomically(path: str, arrays: dict) -> None:
    """``np.savez`` into a temporary file beside ``path``, flushed to disk, then
    renamed onto ``path``: readers see the old file or the new one, never a part."""
    mode = _file_mode(path)
    with temporary_file_for(path) as (descriptor, tmp):
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)   # a file object: savez adds no suffix
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def temporary_file_for(path: str, suffix: str = ".tmp"):
    """A new temporary file beside ``path``, to be renamed onto it: yields
    ``(descriptor, temporary path)``; the caller closes the descriptor and renames.

    The name, ``.<name>.<host>.<pid>.<random><suffix>``, says who writes it. First,
    the temporary files of ``path`` with this ``suffix`` that a dead process of this
    host left behind (a save or download killed by ``kill -9``) are removed; a file
    whose writer is alive is never touched. On an exception the temporary file is
    deleted. ``save`` and the Fashion-MNIST download use it."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(os.path.basename(path))
    with _WRITING_LOCK:
        _remove_stale_temporaries(directory, prefix, suffix)
        descriptor, tmp = tempfile.mkstemp(dir=directory, prefix=f"{prefix}{os.getpid()}.",
                                           suffix=suffix)
        tmp = os.path.abspath(tmp)
        _WRITING.add(tmp)
    try:
        yield descriptor, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _WRITING_LOCK:
            _WRITING.discard(tmp)


# The temporary files this process is writing now: a file named with this
# process's pid but not listed here was left by an earlier process of the same pid.
_WRITING: set = set()
_WRITING_LOCK = threading.Lock()


def _temporary_prefix(name: str) -> str:
    """``.<name>.<host>.`` (the pid, a random part and ``.tmp`` follow). A long
    ``name`` is cut and completed by a hash so that the whole name stays short."""
    if len(name) > 120:
        name = name[:100] + "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
    return f".{name}.{host}."


def _remove_stale_temporaries(directory: str, prefix: str, suffix: str = ".tmp") -> None:
    """Delete ``<prefix><pid>.<random><suffix>`` files whose writer is dead. A pid of
    another process is alive while it can be signalled (``os.kill(pid, 0)``);
    this process's own pid is alive for the files in ``_WRITING``. The host is in
    the prefix, so a writer on another machine sharing the directory is never
    judged. Best effort: nothing here makes a save fail. Called under ``_WRITING_LOCK``."""
    if os.name != "posix":      # os.kill(pid, 0) is no liveness test on Windows
        return
    pattern = re.compile(re.escape(prefix) + r"([0-9]{1,10})\.[A-Za-z0-9_]+" + re.escape(suffix) + r"\Z")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            stale = os.path.abspath(entry.path) not in _WRITING
        else:
            stale = not _process_alive(pid)
        if stale:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (unsure counts as alive)."""
    if pid <= 0:
        return True               # os.kill(0, ...) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):   # PermissionError: it exists, owned by someone else
        return True
    return True


def _file_mode(path: str) -> int:
    """The permissions the file gets: those of the file it replaces, else the
    usual ``0o666`` less the umask (temporary files are created ``0o600``)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)   # the only portable way to read the umask is to set it
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ============================================================================ load
class _NotAModelFile(Exception):
    """The file is not an archive of ours at all (random bytes, truncated, another format)."""


class _BadField(Exception):
    """The file is a model archive, but a field or an array in it is invalid."""


def load(path: PathLike):
    """Read a model written by ``save``; return it ready to ``predict`` or to
    resume ``fit`` (loss, optimizer state, class labels and random state restored).

    The file's ``metadata`` dict is set as ``model.metadata``.

    Raises:
        TypeError: ``path`` is not a str or os.PathLike (bytes are refused).
        FileNotFoundError: there is no file at ``path`` (nor at ``path + ".npz"``).
        ValueError: ``path`` is empty or not a regular file (a directory, a FIFO, a
            device, ...), the file is not a scratchnn model file, or one of its
            fields or arrays is invalid; the message names the file and the field.
    """
    path = check_path(path)
    if not path.endswith(".npz") and not os.path.lexists(path) and os.path.lexists(path + ".npz"):
        path += ".npz"
    try:
        with _open_archive(path) as (archive, file_size):
            return _load_archive(archive, file_size)
    except _NotAModelFile as error:
        raise ValueError(f"{path!r} is not a scratchnn model file: {error}") from None
    except _BadField as error:
        raise ValueError(f"invalid scratchnn model file {path!r}: {error}") from None


def open_regular_file(path: str, what: str = "file"):
    """Open ``path`` for reading (binary) only if it is a regular file.

    A FIFO, a socket, a device (``/dev/zero``) or a directory is refused before
    any read, so reading never blocks or runs forever. The check is made twice:
    ``os.stat`` before opening, and ``os.fstat`` on the opened descriptor, which
    is opened with ``O_NONBLOCK`` so that a FIFO swapped in between cannot block
    the ``open`` itself. The data sets' readers use it too.

    Raises:
        FileNotFoundError: nothing is at ``path`` (the message says ``what`` was looked for).
        ValueError: ``path`` is not a regular file, or cannot be looked up.
        PermissionError: as ``open``.
    """
    def refuse(mode: int):
        raise ValueError(f"{what} {path!r} is {_file_kind(mode)}, not a regular file; expected "
                         f"a regular {what}")

    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"no {what} at {path!r}") from None
    except PermissionError:
        raise
    except (OSError, ValueError) as error:   # ELOOP, ENAMETOOLONG, ...
        raise ValueError(f"cannot read {what} {path!r}: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    if not stat.S_ISREG(mode):
        refuse(mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path!r}") from None
    except PermissionError:
        raise
    except OSError as error:    # ENXIO: a socket swapped in after the stat
        raise ValueError(f"cannot open {what} {path!r}: {error.strerror}; expected a regular "
                         f"{what}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            refuse(mode)
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: "a directory", "a FIFO (named pipe)", ..."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "a special file"


@contextlib.contextmanager
def _open_archive(path: str):
    """The file as an NpzFile, and the file's size; the file is ours to close
    even when numpy fails."""
    with open_regular_file(path, "model file") as f:
        if f.read(4) != b"PK\x03\x04":
            raise _NotAModelFile("it is not an .npz (zip) archive")
        f.seek(0)
        try:
            archive = np.load(f, allow_pickle=False)   # never decode Python objects from a file
        except Exception as error:    # zipfile's parser on hostile bytes: any of several errors
            raise _NotAModelFile(f"it is not a readable .npz archive ({type(error).__name__}: "
                                 f"{error})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _NotAModelFile("it is not an .npz archive")
        with archive:
            yield archive, os.fstat(f.fileno()).st_size


def _load_archive(archive: np.lib.npyio.NpzFile, file_size: int):
    try:
        members = archive.zip.infolist()
    except _READ_ERRORS as error:
        raise _NotAModelFile(f"its zip directory is unreadable ({error})") from None
    infos = {}
    for info in members:
        if not info.filename.endswith(".npy"):
            raise _NotAModelFile(f"it holds {info.filename!r}, which is not an .npy array")
        if info.compress_type != zipfile.ZIP_STORED:
            # Model files are written uncompressed, which also bounds every array by the file size.
            raise _NotAModelFile(f"its member {info.filename!r} is compressed")
        if info.file_size > file_size:
            raise _NotAModelFile(f"its member {info.filename!r} claims {info.file_size} bytes, "
                                 f"more than the whole file ({file_size})")
        if info.filename[:-4] in infos:
            raise _NotAModelFile(f"it holds the member {info.filename!r} twice")
        infos[info.filename[:-4]] = info
    if "config" not in infos:
        raise _NotAModelFile("it has no 'config' array")

    doc = _read_document(archive, infos["config"])
    spec = _check_document(doc)

    version = spec["format_version"]
    expected_arrays = {"config", "params", *(f"optimizer/{n}" for n in spec["state_names"])}
    if spec["n_buffers"]:
        expected_arrays.add("buffers")
    unexpected = sorted(set(infos) - expected_arrays)
    if unexpected:
        raise _BadField(f"unexpected array(s) {unexpected}")
    missing = sorted(expected_arrays - set(infos))
    if missing:
        raise _BadField(f"the array(s) {missing} are missing")

    layers = [_construct(LAYERS, entry, f"layers[{i}]", "LAYERS")
              for i, entry in enumerate(spec["layers"])]
    # Count what the layers declare before the model allocates any of it: with
    # every array's size checked against the bytes it holds, a small file cannot
    # make load allocate a large model.
    n_params, n_buffers = spec["n_params"], spec["n_buffers"]
    counted_params, counted_buffers = _count_declared(layers, spec["input_shape"])
    if counted_params != n_params:
        raise _BadField(f"the layers declare {counted_params} parameters for input_shape "
                        f"{spec['input_shape']}, but n_params is {n_params}")
    if counted_buffers != n_buffers:
        raise _BadField(f"the layers declare {counted_buffers} buffer values for input_shape "
                        f"{spec['input_shape']}, but " + (f"n_buffers is {n_buffers}" if version >= 2
                                                          else "format 1 holds no buffers"))
    dtype = np.dtype(spec["dtype"])
    vectors = {name: _read_vector(archive, infos[name], name,
                                  n_buffers if name == "buffers" else n_params, dtype)
               for name in sorted(expected_arrays - {"config"})}

    try:
        model = MODELS[spec["model"]](layers, seed=spec["seed"], dtype=spec["dtype"], name=spec["name"])
        model.build(spec["input_shape"])
    except (TypeError, ValueError) as error:
        raise _BadField(f"the model cannot be rebuilt: {error}") from None
    model.params[...] = vectors["params"]
    if "buffers" in vectors:
        model.buffers[...] = vectors["buffers"]

    if spec["loss"] is not None:
        model.loss = _construct(LOSSES, spec["loss"], "loss", "LOSSES")
    model.metrics = spec["metrics"]
    if model.loss is not None and model.metrics is not None:
        try:
            _metrics.check_names(model.metrics, model.loss)
        except ValueError as error:
            raise _BadField(f"metrics: {error}") from None
    if spec["optimizer"] is not None:
        model.optimizer = _restore_optimizer(spec["optimizer"], vectors, model, version)
    try:
        classes = check_classes(spec["classes"], model)
    except ValueError as error:
        raise _BadField(str(error)) from None
    model.classes = None if classes is None else np.asarray(classes)
    _restore_rng(model, spec["rng_state"])
    model.metadata = spec["metadata"]
    return model


# ------------------------------------------------------------------ the document
def _read_document(archive, info: zipfile.ZipInfo) -> dict:
    shape, dtype = _array_header(archive, info, "config")
    if dtype != np.uint8 or len(shape) != 1:
        raise _NotAModelFile(f"its 'config' array must be 1-D uint8 (UTF-8 JSON bytes), "
                             f"got dtype {dtype} and shape {shape}")
    raw = _read_array(archive, "config")
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise _NotAModelFile(f"its 'config' is not UTF-8 text ({error})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise _NotAModelFile(f"its 'config' is not valid JSON ({error})") from None
    if not isinstance(doc, dict):
        raise _NotAModelFile(f"its 'config' must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise _NotAModelFile(f"its 'format' is {doc.get('format')!r}, expected {FORMAT!r}")
    return doc


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_document(doc: dict) -> dict:
    """Check every field's type and range; return the fields, normalized."""
    version = doc.get("format_version")
    if not _is_int(version) or version < 1:
        raise _BadField(f"format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        from . import __version__
        raise _BadField(f"it was written in model format version {version}, but scratchnn "
                        f"{__version__} reads versions 1 to {FORMAT_VERSION}; upgrade scratchnn "
                        "to load it")
    fields = _FIELDS[version]
    missing = [k for k in fields if k not in doc]
    if missing:
        raise _BadField(f"missing field(s) {missing}")
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise _BadField(f"unknown field(s) {unknown}")

    def need(ok: bool, field: str, expected: str) -> None:
        if not ok:
            raise _BadField(f"{field} must be {expected}, got {doc[field]!r:.100}")

    need(isinstance(doc["scratchnn_version"], str), "scratchnn_version", "a string")
    need(isinstance(doc["name"], str), "name", "a string")
    need(doc["dtype"] in DTYPES, "dtype", f"one of {list(DTYPES)}")
    need(doc["seed"] is None or (_is_int(doc["seed"]) and doc["seed"] >= 0), "seed",
         "a non-negative integer or null")
    shape = doc["input_shape"]
    need(isinstance(shape, list) and len(shape) > 0 and all(_is_int(s) and s > 0 for s in shape),
         "input_shape", "a non-empty list of positive integers")
    need(_is_int(doc["n_params"]) and doc["n_params"] >= 0, "n_params", "a non-negative integer")
    if version == 1:
        doc = {**doc, "model": "Sequential", "n_buffers": 0}
    if version <= 2:
        doc = {**doc, "image_layout": IMAGE_LAYOUT}    # the only layout there has been
    need(isinstance(doc["image_layout"], str) and doc["image_layout"] in IMAGE_LAYOUTS, "image_layout",
         " or ".join(f"{name!r} (image samples {axes})" for name, axes in IMAGE_LAYOUTS.items()))
    need(isinstance(doc["model"], str) and doc["model"] in MODELS, "model", f"one of {sorted(MODELS)}")
    need(_is_int(doc["n_buffers"]) and doc["n_buffers"] >= 0, "n_buffers", "a non-negative integer")
    layers = doc["layers"]
    need(isinstance(layers, list) and len(layers) > 0, "layers", "a non-empty list")
    for i, entry in enumerate(layers):
        _check_entry(entry, f"layers[{i}]")
    if doc["loss"] is not None:
        _check_entry(doc["loss"], "loss")
    state_names: list[str] = []
    if doc["optimizer"] is not None:
        opt = doc["optimizer"]
        _check_entry(opt, "optimizer", extra=("iterations", "state"))
        if not (_is_int(opt["iterations"]) and opt["iterations"] >= 0):
            raise _BadField(f"optimizer.iterations must be a non-negative integer, "
                            f"got {opt['iterations']!r:.100}")
        state_names = opt["state"]
        if not (isinstance(state_names, list)
                and all(isinstance(n, str) and _STATE_NAME.match(n) for n in state_names)
                and len(set(state_names)) == len(state_names)):
            raise _BadField(f"optimizer.state must be a list of distinct identifiers, "
                            f"got {state_names!r:.100}")
    metrics = doc["metrics"]
    need(metrics is None or (isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)),
         "metrics", "a list of metric names or null")
    classes = doc["classes"]
    if classes is not None:
        kinds = {type(c) for c in classes} if isinstance(classes, list) else set()
        need(len(kinds) == 1 and kinds <= {str, int, float, bool}, "classes",
             "null or a non-empty list of labels of one type (strings, integers, floats "
             "or booleans)")
    need(isinstance(doc["rng_state"], dict), "rng_state", "an object (a NumPy bit generator state)")
    need(isinstance(doc["metadata"], dict), "metadata", "an object")
    return {**doc, "state_names": state_names}


def _check_entry(entry, where: str, extra: tuple = (), nested: bool = True) -> None:
    """``{"class": str, "config": {str: value}}`` (plus ``extra`` keys), each value a
    JSON scalar, a list of them or (when ``nested``) an entry of plain values itself,
    such as a layer's ``kernel_regularizer`` ``{"class": "l2", "config": {"l2": 0.01}}``."""
    keys = {"class", "config", *extra}
    if not isinstance(entry, dict) or set(entry) != keys:
        raise _BadField(f"{where} must be an object with the keys {sorted(keys)}, got {entry!r:.100}")
    if not isinstance(entry["class"], str):
        raise _BadField(f"{where}.class must be a string, got {entry['class']!r:.100}")
    config = entry["config"]
    if not isinstance(config, dict):
        raise _BadField(f"{where}.config must be an object, got {config!r:.100}")
    for key, value in config.items():
        if nested and isinstance(value, dict) and set(value) == {"class", "config"}:
            _check_entry(value, f"{where}.config[{key!r}]", nested=False)
        elif not _is_plain(value):
            raise _BadField(f"{where}.config[{key!r}] must be a number, string, boolean, null, "
                            "a list of them" + (" or an object {\"class\": ..., \"config\": {...}}"
                                                if nested else "") + f", got {value!r:.100}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_plain(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, list) and all(_is_plain(v) for v in value)


def _construct(registry: dict, entry: dict, where: str, registry_name: str):
    """``registry[entry["class"]](**entry["config"])``, with the class looked up by
    name only and every keyword checked against the constructor's signature."""
    name = entry["class"]
    cls = registry.get(name)
    if cls is None:
        raise _BadField(f"{where}: unknown class {name!r}; it must be one of {sorted(registry)} "
                        f"(scratchnn's {registry_name})")
    parameters = inspect.signature(cls).parameters
    accepted = [p for p, v in parameters.items()
                if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
    for key in entry["config"]:
        if key not in accepted:
            raise _BadField(f"{where} ({cls.__name__}): unknown argument {key!r}; "
                            f"{cls.__name__} accepts {accepted}")
    if "name" in entry["config"] and entry["config"]["name"] is not None \
            and not isinstance(entry["config"]["name"], str):
        raise _BadField(f"{where} ({cls.__name__}): name must be a string or null")
    try:
        return cls(**entry["config"])
    except (TypeError, ValueError) as error:
        raise _BadField(f"{where} ({cls.__name__}): {error}") from None


def _count_declared(layers: list, input_shape: list) -> tuple[int, int]:
    """How many parameters and buffer values ``layers`` declare for ``input_shape``,
    without allocating them. Every shape is multiplied in Python integers and
    bounded by ``_MAX_ELEMENTS``, so that the int64 arithmetic of the layers
    (which ``build`` uses) cannot wrap around on a hostile ``input_shape``."""
    shape, n_params, n_buffers = tuple(input_shape), 0, 0
    _check_elements(shape, "input_shape")
    rng = np.random.default_rng(0)   # layers declare in build; they draw nothing
    for i, layer in enumerate(layers):
        where = f"layers[{i}] ({type(layer).__name__})"
        try:
            shape = tuple(layer.build(shape, rng))
        except (TypeError, ValueError, OverflowError) as error:
            raise _BadField(f"{where} cannot take inputs of shape {shape}: {error}") from None
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                   for s in shape):
            raise _BadField(f"{where} gives outputs of shape {shape}; expected positive sizes")
        _check_elements(shape, f"{where} output shape")
        n_params += sum(_check_elements(spec.shape, f"{where} {spec.name}") for spec in layer.param_specs)
        n_buffers += sum(_check_elements(spec.shape, f"{where} {spec.name}") for spec in layer.buffer_specs)
    return n_params, n_buffers


def _check_elements(shape: tuple, where: str) -> int:
    """The number of elements of ``shape``, if it is at most ``_MAX_ELEMENTS``."""
    count = math.prod(int(s) for s in shape)
    if count > _MAX_ELEMENTS:
        raise _BadField(f"{where} {tuple(shape)} declares {count} elements; at most "
                        f"{_MAX_ELEMENTS} are possible")
    return count


# ------------------------------------------------------------------------ arrays
def _array_header(archive, info: zipfile.ZipInfo, name: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype from an array's ``.npy`` header, read and checked before
    its data: the header is parsed here (``ast.literal_eval`` of at most
    ``_NPY_MAX_HEADER`` bytes, whatever error a hostile header makes it raise
    turned into ours), so NumPy's own parser later only re-reads a header that parses."""
    try:
        with archive.zip.open(info) as fp:
            start = fp.read(len(_NPY_MAGIC) + 2)
            version = tuple(start[len(_NPY_MAGIC):])
            if len(start) < len(_NPY_MAGIC) + 2 or not start.startswith(_NPY_MAGIC):
                raise _NotAModelFile(f"its array {name!r} has no .npy magic number")
            if version not in _NPY_LENGTH_FORMATS:
                raise _NotAModelFile(f"its array {name!r} is in .npy format version {version}; "
                                     f"only {sorted(_NPY_LENGTH_FORMATS)} are read")
            length_format = _NPY_LENGTH_FORMATS[version]
            raw_length = fp.read(struct.calcsize(length_format))
            if len(raw_length) < struct.calcsize(length_format):
                raise _NotAModelFile(f"its array {name!r} has a truncated .npy header")
            (length,) = struct.unpack(length_format, raw_length)
            if length > _NPY_MAX_HEADER:
                raise _NotAModelFile(f"its array {name!r} declares a .npy header of {length} bytes; "
                                     f"at most {_NPY_MAX_HEADER} are read")
            text = fp.read(length)
    except _READ_ERRORS as error:
        raise _NotAModelFile(f"its array {name!r} has no valid .npy header ({error})") from None
    if len(text) < length:
        raise _NotAModelFile(f"its array {name!r} has a truncated .npy header ({len(text)} of "
                             f"{length} bytes)")
    try:
        header = ast.literal_eval(text.decode("latin1"))
    except Exception as error:   # SyntaxError, ValueError, MemoryError, RecursionError, ...
        raise _NotAModelFile(f"its array {name!r} has a malformed .npy header "
                             f"({type(error).__name__}: {error})") from None
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}
            and isinstance(header["descr"], str) and isinstance(header["fortran_order"], bool)
            and isinstance(header["shape"], tuple) and all(_is_int(n) for n in header["shape"])):
        raise _NotAModelFile(f"its array {name!r} has a malformed .npy header: expected "
                             "{'descr': str, 'fortran_order': bool, 'shape': tuple of int}, "
                             f"got {header!r:.200}")
    try:
        dtype = np.dtype(header["descr"])
    except Exception as error:   # TypeError, ValueError, SyntaxError from dtype strings
        raise _NotAModelFile(f"its array {name!r} has the invalid dtype {header['descr']!r:.100} "
                             f"({type(error).__name__}: {error})") from None
    shape = header["shape"]
    if dtype.hasobject or dtype.kind not in "biuf":
        raise _BadField(f"the array {name!r} has dtype {dtype}; only numbers are allowed")
    if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize > info.file_size:
        raise _NotAModelFile(f"its array {name!r} declares shape {tuple(shape)} of {dtype}, more "
                             f"data than its {info.file_size} bytes hold")
    return tuple(shape), dtype


def _read_array(archive, name: str) -> np.ndarray:
    """The array ``name``, whose header ``_array_header`` checked."""
    try:
        return archive[name]
    except Exception as error:   # numpy's and zipfile's readers: short data, bad CRC, ...
        raise _NotAModelFile(f"its array {name!r} is unreadable ({type(error).__name__}: "
                             f"{error})") from None


def _read_vector(archive, info: zipfile.ZipInfo, name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A finite 1-D float vector of ``size`` values of ``dtype`` (any byte order)."""
    shape, file_dtype = _array_header(archive, info, name)
    if file_dtype.kind != "f" or file_dtype.itemsize != dtype.itemsize:
        raise _BadField(f"the array {name!r} has dtype {file_dtype}, but the model's dtype is "
                        f"{dtype.name}")
    if shape != (size,):
        count = "n_buffers" if name == "buffers" else "n_params"
        raise _BadField(f"the array {name!r} has shape {shape}, but the model has {count} = "
                        f"{size} (expected shape ({size},))")
    vector = _read_array(archive, name)     # the shape checked above, from the same header
    if vector.shape != shape or vector.dtype != file_dtype:
        raise _NotAModelFile(f"its array {name!r} changed while it was read")
    if not np.all(np.isfinite(vector)):
        raise _BadField(f"the array {name!r} contains NaN or infinity "
                        f"(first at index {int(np.argmin(np.isfinite(vector)))})")
    return vector


# -------------------------------------------------------------- optimizer and rng
def _restore_optimizer(entry: dict, vectors: dict, model, version: int):
    optimizer = _construct(OPTIMIZERS, entry, "optimizer", "OPTIMIZERS")
    iterations = entry["iterations"]
    names = set(entry["state"])
    # The state an optimizer of these settings keeps once it has taken a step.
    expected = set(optimizer.state_names()) if iterations > 0 else set()
    if names != expected:
        raise _BadField(f"optimizer ({type(optimizer).__name__}, {iterations} iterations) keeps "
                        f"the state {sorted(expected)}, but the file has {sorted(names)}")
    # load_state_dict copies them (the byte order may still differ, the size does not)
    state = {name: vectors[f"optimizer/{name}"].astype(model.dtype, copy=False) for name in names}
    if version == 1 and "m" in state and hasattr(optimizer, "beta1"):
        # Format 1 kept Adam's moments without their constant factors.
        state = {"m": state["m"] * (1 - optimizer.beta1), "v": state["v"] * (1 - optimizer.beta2)}
    optimizer.load_state_dict({"iterations": iterations, **state})
    return optimizer


def _restore_rng(model, state: dict) -> None:
    """Set the state of ``model.rng`` in place: the layers hold the same Generator."""
    bit_generator = model.rng.bit_generator
    expected = type(bit_generator).__name__
    if state.get("bit_generator") != expected:
        raise _BadField(f"rng_state.bit_generator must be {expected!r}, "
                        f"got {state.get('bit_generator')!r:.100}")
    if expected == "PCG64" and not _is_pcg64_state(state):
        raise _BadField("rng_state is not a valid PCG64 state: expected {'bit_generator': 'PCG64', "
                        "'state': {'state': int, 'inc': int} (each in [0, 2**128)), "
                        f"'has_uint32': 0 or 1, 'uinteger': int in [0, 2**32)}}, got {state!r:.200}")
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise _BadField(f"rng_state is not a valid {expected} state ({error!r})") from None


def _is_pcg64_state(state: dict) -> bool:
    inner = state.get("state")
    return (set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and isinstance(inner, dict) and set(inner) == {"state", "inc"}
            and all(_is_int(v) and 0 <= v < 2**128 for v in inner.values())
            and state["has_uint32"] in (0, 1) and _is_int(state["has_uint32"])
            and _is_int(state["uinteger"]) and 0 <= state["uinteger"] < 2**32)
