"""Small generated data sets: the tutorials' XOR, and seeded toy problems."""

from __future__ import annotations


import numpy as np

from .._validation import check_number, check_positive_int, make_rng

#: The most samples a toy problem is generated with (generating takes about 100 bytes a
#: sample at its peak, so 1 GB here); more is refused with a ValueError, not a MemoryError.
MAX_SAMPLES = 10_000_000

def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points: ``X`` (4, 2) float64 and ``y`` (4,) int64 = [0, 1, 1, 0]."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
            seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n toy problem).

    Class ``k`` has about ``n_samples / n_classes`` points (sizes differ by at most one)::

        r = linspace(0.1, 1, n_k)                       radius, 0.1 to 1
        t = 4 r' + 2 pi k / n_classes + noise * N(0, 1)  angle (radians); r' = (r - 0.1) / 0.9
        x = (r cos t, r sin t)

    so every arm turns 4 radians outward and the arms are rotated evenly; ``noise`` blurs the
    angle only, hence ``0.1 <= |x| <= 1`` always. The samples come shuffled.

    Returns:
        ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 in ``0..n_classes-1``.
    """
    n_samples = _check_samples(n_samples)
    n_classes = check_positive_int(n_classes, "n_classes")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    if n_samples < n_classes:
        raise ValueError(f"n_samples must be at least n_classes={n_classes} (one point per "
                         f"class), got {n_samples}")
    noise = _check_noise(noise)
    rng = make_rng(seed)

    sizes = np.full(n_classes, n_samples // n_classes)
    sizes[: n_samples % n_classes] += 1
    y = np.repeat(np.arange(n_classes, dtype=np.int64), sizes)
    # position along its arm, 0 at the inner end and 1 at the outer end
    position = np.concatenate([np.linspace(0.0, 1.0, size) if size > 1 else np.zeros(1)
                               for size in sizes])
    radius = 0.1 + 0.9 * position
    angle = 4.0 * position + 2.0 * np.pi * y / n_classes + noise * rng.standard_normal(n_samples)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    order = rng.permutation(n_samples)
    return X[order], y[order]


def moons(n_samples: int = 200, noise: float = 0.1, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (like scikit-learn's ``make_moons``).

    Class 0 (``n_samples // 2`` points) lies on the upper unit half circle, class 1 (the rest)
    on a lower half circle shifted right and down::

        class 0: (cos t, sin t),                 t = linspace(0, pi, n_0)
        class 1: (1 - cos t, 0.5 - sin t),       t = linspace(0, pi, n_1)

    then Gaussian noise of standard deviation ``noise`` is added to each coordinate. The
    samples come shuffled.

    Returns:
        ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 in {0, 1}.
    """
    n_samples = _check_samples(n_samples)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 (one point per moon), got {n_samples}")
    noise = _check_noise(noise)
    rng = make_rng(seed)

    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    t_outer = np.linspace(0.0, np.pi, n_outer)
    t_inner = np.linspace(0.0, np.pi, n_inner)
    X = np.concatenate([np.column_stack([np.cos(t_outer), np.sin(t_outer)]),
                        np.column_stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)])])
    y = np.concatenate([np.zeros(n_outer, dtype=np.int64), np.ones(n_inner, dtype=np.int64)])
    order = rng.permutation(n_samples)
    X, y = X[order], y[order]
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return X, y


def _check_samples(n_samples) -> int:
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples > MAX_SAMPLES:
        raise ValueError(f"n_samples must be at most {MAX_SAMPLES:,} for a generated toy problem, "
                         f"got {n_samples:,}")
    return n_samples


#: the largest noise accepted: far more than blurs any structure away, and small enough
#: that noise * N(0, 1) cannot overflow
MAX_NOISE = 1e6


def _check_noise(noise) -> float:
    return check_number("noise", noise, 0.0, MAX_NOISE)
