"""Where the vectors that every training step streams through the cache live.

A step reads and writes the flat parameter, gradient and optimizer-state vectors a
dozen times (Adam alone makes ten passes), block by cache-sized block. In ordinary
4 KiB pages those vectors lie at scattered physical addresses, and the CPU's L2 cache
picks a line's place from its physical address: some parts of the cache get more of
the vectors than others, and lines evict each other. How many do changes with the
pages a process happens to get: the same training ran up to 12% faster or slower
from one process to the next. Within a 2 MiB huge page, memory is physically
contiguous and spreads evenly over the cache: with its vectors there, the benchmark
MLP's epochs were 5-9% faster, in every one of three pairs of runs.

On Linux, NumPy asks the kernel for huge pages (``madvise(MADV_HUGEPAGE)``) for every
array of 4 MiB or more. ``zeros`` places a vector at a 2 MiB boundary inside such an
array. Only the pages the vector covers are ever touched, so it costs at most one
partly used 2 MiB page of memory per vector. Small vectors, and other systems, get
a plain ``np.zeros``.
"""

from __future__ import annotations

import sys

import numpy as np

HUGE_PAGE = 2 ** 21
#: NumPy's threshold for asking for huge pages
NUMPY_HUGE_PAGE_MIN = 2 ** 22
#: smaller vectors stay in the cache anyway
MIN_BYTES = 256 * 1024


def zeros(size: int, dtype) -> np.ndarray:
    """``np.zeros(size, dtype)``, starting on a 2 MiB boundary of huge-page memory
    when the vector is large enough for that to matter (see the module's docstring)."""
    dtype = np.dtype(dtype)
    nbytes = size * dtype.itemsize
    if nbytes < MIN_BYTES or not sys.platform.startswith("linux"):
        return np.zeros(size, dtype)
    raw = np.zeros(max(nbytes, NUMPY_HUGE_PAGE_MIN) + HUGE_PAGE, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    return raw[start:start + nbytes].view(dtype)


def zeros_like(vector: np.ndarray) -> np.ndarray:
    """``zeros(vector.size, vector.dtype)``: optimizer state beside its parameters."""
    return zeros(vector.size, vector.dtype)


def copy(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` (any shape) in the memory ``zeros`` gives."""
    out = zeros(array.size, array.dtype).reshape(array.shape)
    out[...] = array
    return out
