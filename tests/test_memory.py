"""Where the training vectors live (scratchnn._memory): zeros, of the right size and type,
on a 2 MiB boundary when they are large enough to be worth a huge page."""

import sys

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import _memory

LINUX = sys.platform.startswith("linux")


@pytest.mark.parametrize("size, dtype", [(10, np.float32), (65_536, np.float32), (200_000, np.float32),
                                         (235_146, np.float64), (700_000, np.float64)])
def test_zeros_are_zeros_of_the_size_and_type_asked(size, dtype):
    vector = _memory.zeros(size, dtype)
    assert vector.shape == (size,) and vector.dtype == dtype
    assert vector.flags.c_contiguous and vector.flags.writeable
    assert not np.any(vector)
    vector[:] = 1                          # all of it is usable, and nothing else is touched
    assert vector.sum() == size
    large = size * np.dtype(dtype).itemsize >= _memory.MIN_BYTES
    on_boundary = vector.ctypes.data % _memory.HUGE_PAGE == 0
    assert on_boundary == (large and LINUX)
    if large and LINUX:
        # inside an array big enough for NumPy to ask for huge pages
        assert vector.base.nbytes >= _memory.NUMPY_HUGE_PAGE_MIN


def test_two_vectors_never_share_memory():
    a, b = _memory.zeros(300_000, np.float32), _memory.zeros(300_000, np.float32)
    assert not np.shares_memory(a, b)


def test_copy_keeps_values_shape_and_type():
    source = np.arange(300_000, dtype=np.float32).reshape(600, 500)
    copied = _memory.copy(source)
    np.testing.assert_array_equal(copied, source)
    assert copied.dtype == source.dtype and not np.shares_memory(copied, source)


@pytest.mark.skipif(not LINUX, reason="huge-page placement is for Linux only")
def test_a_models_training_vectors_start_on_huge_page_boundaries():
    model = snn.Sequential([snn.Dense(256), snn.ReLU(), snn.Dense(10)], seed=0)
    X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=32)
    vectors = [model.params, model.grads, *model.optimizer.state.values()]
    assert all(v.ctypes.data % _memory.HUGE_PAGE == 0 for v in vectors)
    # and so do those of a copy in another dtype, with the same values
    wide = model.astype("float64")
    assert all(v.ctypes.data % _memory.HUGE_PAGE == 0
               for v in (wide.params, wide.grads, *wide.optimizer.state.values()))
    np.testing.assert_array_equal(wide.params, model.params.astype(np.float64))
    # the optimizer's state stays there when it is restored
    optimizer = snn.Adam()
    optimizer.load_state_dict(model.optimizer.state_dict())
    for name, vector in optimizer.state.items():
        assert vector.ctypes.data % _memory.HUGE_PAGE == 0
        np.testing.assert_array_equal(vector, model.optimizer.state[name])
