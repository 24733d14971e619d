"""Gradient clipping (Keras's clipnorm, global_clipnorm, clipvalue) on every optimizer:
against PyTorch's clip_grad_norm_ / clip_grad_value_ followed by its SGD and Adam, by
hand, at the limits, on zero and on huge gradients, settings refused, the caller's
gradients untouched, update_bound still a bound, and model files."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.optimizers import OPTIMIZERS

#: the optimizers that step from a gradient (L-BFGS's line search takes no clipping)
STEP_OPTIMIZERS = [name for name, cls in OPTIMIZERS.items() if not getattr(cls, "needs_closure", False)]

#: three "parameter arrays" in one flat vector, as a model lays them out
SHAPES = [(3, 4), (4,), (2, 3)]
SIZES = [math.prod(s) for s in SHAPES]
SLICES = [slice(sum(SIZES[:i]), sum(SIZES[:i + 1])) for i in range(len(SIZES))]
TOTAL = sum(SIZES)

MODES = ["clipnorm", "global_clipnorm", "clipvalue"]


def gradients(seed, scale=1.0, n=3):
    """``n`` flat gradients whose parameter arrays have different norms, so that a limit
    clips some of them and not others."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(n):
        g = rng.standard_normal(TOTAL) * scale
        g[SLICES[1]] *= 0.05 * (step + 1)           # a small array: under the limit
        out.append(g)
    return out


def torch_clip(torch, params, mode, limit):
    if mode == "global_clipnorm":
        torch.nn.utils.clip_grad_norm_(params, limit)
    elif mode == "clipnorm":
        for param in params:
            torch.nn.utils.clip_grad_norm_([param], limit)
    else:
        torch.nn.utils.clip_grad_value_(params, limit)


# ------------------------------------------------------------------ PyTorch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_steps_match_torch_clipping_then_its_optimizer(mode, optimizer):
    """PyTorch's clip_grad_norm_ divides by ``norm + 1e-6``, Keras and scratchnn by
    the norm: with norms near 1e8 that difference is 1e-14, under the tolerance."""
    torch = pytest.importorskip("torch")
    scale = 1.0 if mode == "clipvalue" else 3e7
    limit = {"clipnorm": 5e7, "global_clipnorm": 1e8, "clipvalue": 0.8}[mode]
    settings = {"SGD": dict(lr=1e-8 if scale > 1 else 0.1, momentum=0.9), "Adam": dict(lr=0.01)}[optimizer]
    rng = np.random.default_rng(0)
    p = rng.standard_normal(TOTAL)
    ours = getattr(snn, optimizer)(**settings, **{mode: limit})
    params = [torch.tensor(p[s].reshape(shape), requires_grad=True) for s, shape in zip(SLICES, SHAPES)]
    theirs = getattr(torch.optim, optimizer)(params, **settings)
    clipped_any = unclipped_any = False
    for g in gradients(1, scale):
        ours.step(p, g.copy(), variables=SLICES)
        for param, s, shape in zip(params, SLICES, SHAPES):
            param.grad = torch.tensor(g[s].reshape(shape))
        torch_clip(torch, params, mode, limit)
        clipped = np.concatenate([param.grad.numpy().ravel() for param in params])
        clipped_any |= not np.array_equal(clipped, g)
        unclipped_any |= any(np.array_equal(clipped[s], g[s]) for s in SLICES)
        theirs.step()
        np.testing.assert_allclose(p, np.concatenate([q.detach().numpy().ravel() for q in params]),
                                   rtol=1e-12, atol=1e-14)
    assert clipped_any
    if mode == "clipnorm":
        assert unclipped_any                 # the small array kept its gradient


# --------------------------------------------------------------- by hand
def clipped(opt, g, variables=None):
    """The gradient ``opt`` steps with: SGD without weight decay leaves it in ``grads``
    when it may overwrite them."""
    assert isinstance(opt, snn.SGD) and opt.weight_decay == 0
    g = np.array(g, dtype=np.float64) if not isinstance(g, np.ndarray) else g.copy()
    opt.step(np.zeros(g.shape, g.dtype), g, overwrite_grads=True, variables=variables)
    return g


def test_by_hand():
    g = [3.0, 4.0, 0.0, 1.0]                         # norms: [3, 4] 5, [0, 1] 1, all sqrt(26)
    halves = [slice(0, 2), slice(2, 4)]
    assert clipped(snn.SGD(clipnorm=2.5), g, halves).tolist() == [1.5, 2.0, 0.0, 1.0]
    np.testing.assert_allclose(clipped(snn.SGD(clipnorm=2.5), g), np.multiply(g, 2.5 / math.sqrt(26)),
                               rtol=1e-15)           # no variables: the vector is one variable
    np.testing.assert_allclose(clipped(snn.SGD(global_clipnorm=1.0), g, halves),
                               np.multiply(g, 1 / math.sqrt(26)), rtol=1e-15)
    assert clipped(snn.SGD(clipvalue=2.0), [3.0, -4.0, 0.5, -2.0]).tolist() == [2.0, -2.0, 0.5, -2.0]


@pytest.mark.parametrize("mode", MODES)
def test_gradients_within_the_limits_are_unchanged_exactly(mode):
    g = gradients(2)[0]
    limit = {"clipnorm": max(np.linalg.norm(g[s]) for s in SLICES),
             "global_clipnorm": np.linalg.norm(g), "clipvalue": np.abs(g).max()}[mode]
    for factor in (1.0, 2.0):                        # at the limit and below it
        assert np.array_equal(clipped(snn.SGD(**{mode: limit * factor}), g, SLICES), g)
    # and the steps are those of the same optimizer without clipping
    for make in (lambda **k: snn.Adam(lr=0.1, **k), lambda **k: snn.RMSProp(momentum=0.5, **k)):
        p, q = np.ones(TOTAL), np.ones(TOTAL)
        a, b = make(**{mode: limit}), make()
        for grad in (g, g * 0.5):
            a.step(p, grad.copy(), variables=SLICES)
            b.step(q, grad.copy())
        assert np.array_equal(p, q)


@pytest.mark.parametrize("mode", ["clipnorm", "global_clipnorm"])
def test_a_clipped_norm_is_the_limit(mode):
    g = gradients(3, scale=10.0)[0]
    out = clipped(snn.SGD(**{mode: 0.5}), g, SLICES)
    norms = [np.linalg.norm(out[s]) for s in SLICES] if mode == "clipnorm" else [np.linalg.norm(out)]
    np.testing.assert_allclose(norms, 0.5, rtol=1e-15)


def test_clipping_comes_before_weight_decay():
    # g clipped to [0.6, 0.8]; then g + 0.5 p = [1.1, 1.8]; p - 0.1 * that
    opt = snn.SGD(lr=0.1, weight_decay=0.5, clipnorm=1.0)
    p = np.array([1.0, 2.0])
    opt.step(p, np.array([30.0, 40.0]))
    np.testing.assert_allclose(p, [1.0 - 0.11, 2.0 - 0.18], rtol=1e-15)
    # AdamW's decoupled decay is not clipped: p (1 - lr wd), then the first Adam step
    # lr g / (|g| + eps) of the clipped g = [1e-3, -1e-3]
    opt = snn.AdamW(lr=0.1, weight_decay=0.5, clipvalue=1e-3)
    p = np.array([1.0, -2.0])
    opt.step(p, np.array([30.0, -40.0]))
    step = 0.1 * 1e-3 / (1e-3 + 1e-8)
    np.testing.assert_allclose(p, [0.95 - step, -1.9 + step], rtol=1e-14)


# ------------------------------------------------------------- extremes
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_gradients_are_left_alone_without_warnings(mode, dtype):
    g = np.zeros(TOTAL, dtype)
    assert np.array_equal(clipped(snn.SGD(**{mode: 1.0}), g, SLICES), g)
    p = np.ones(TOTAL, dtype)
    snn.Adam(**{mode: 1.0}).step(p, g, variables=SLICES)
    assert np.array_equal(p, np.ones(TOTAL, dtype))


@pytest.mark.parametrize("mode", ["clipnorm", "global_clipnorm"])
@pytest.mark.parametrize("dtype, value", [(np.float32, 3e38), (np.float64, 1e308),
                                          (np.float32, 1e-30), (np.float64, 1e-300)])
def test_norms_of_huge_and_tiny_gradients_neither_overflow_nor_underflow(mode, dtype, value):
    """The sum of squares of 1e38-sized float32 gradients overflows, that of 1e-30-sized
    ones underflows; the norm is measured after scaling by max |g|."""
    g = np.full(TOTAL, value, dtype)
    g[::3] *= -0.5
    limit = value / 4 if value > 1 else value * 2
    parts = SLICES if mode == "clipnorm" else [slice(None)]
    out = clipped(snn.SGD(**{mode: limit}), g, parts)
    assert np.all(np.isfinite(out)) and out.dtype == dtype
    # the reference, in float64 and in units of value: ||g|| = value * ||g / value||
    expected = g.astype(np.float64)
    clipped_any = False
    for part in parts:
        ratio, relative_limit = np.linalg.norm(expected[part] / value), limit / value
        if ratio > relative_limit:
            expected[part] *= relative_limit / ratio
            clipped_any = True
    assert clipped_any
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype is np.float32 else 1e-14)


def test_gradients_that_are_not_finite_are_not_norm_clipped():
    for bad in (np.nan, np.inf):
        g = np.array([bad, 1.0, 2.0])
        out = clipped(snn.SGD(global_clipnorm=1.0), g)
        np.testing.assert_array_equal(out, g)
    assert clipped(snn.SGD(clipvalue=1.0), [np.inf, -np.inf, 0.5]).tolist() == [1.0, -1.0, 0.5]


def test_float32_gradients_stay_float32():
    g = gradients(4, scale=10.0)[0].astype(np.float32)
    for mode in MODES:
        out = clipped(snn.SGD(**{mode: 0.5}), g, SLICES)
        assert out.dtype == np.float32 and not np.array_equal(out, g)


# ------------------------------------------------------------- the caller's gradients
@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("mode", MODES)
def test_overwrite_grads_false_leaves_grads_untouched_and_gives_the_same_steps(name, mode):
    p0 = np.random.default_rng(5).standard_normal(TOTAL)
    plain, scratch = OPTIMIZERS[name](**{mode: 0.3}), OPTIMIZERS[name](**{mode: 0.3})
    p, q = p0.copy(), p0.copy()
    for g in gradients(6, scale=2.0, n=4):
        before = g.copy()
        plain.step(p, g, variables=SLICES)
        np.testing.assert_array_equal(g, before)
        scratch.step(q, g.copy(), overwrite_grads=True, variables=SLICES)
    np.testing.assert_array_equal(p, q)
    assert not np.array_equal(p, p0)


# ------------------------------------------------------------- update_bound
@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("mode", MODES)
def test_update_bound_still_bounds_the_parameters(name, mode):
    p = np.random.default_rng(7).standard_normal(TOTAL)
    opt = OPTIMIZERS[name](lr=0.05, **{mode: 0.2})
    unclipped = OPTIMIZERS[name](lr=0.05)
    for g in gradients(8, scale=5.0, n=5):
        params_max, norm = float(np.abs(p).max()), float(np.linalg.norm(g))
        assert opt.update_bound(params_max, norm) <= unclipped.update_bound(params_max, norm)
        bound = opt.update_bound(params_max, norm)
        opt.step(p, g, variables=SLICES)
        assert np.abs(p).max() <= bound


# ------------------------------------------------------------- settings
@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
def test_every_optimizer_takes_each_setting_and_its_config_round_trips(name):
    cls = OPTIMIZERS[name]
    assert not set(MODES) & set(cls().get_config())   # configs without clipping are unchanged
    for mode in MODES:
        opt = cls(**{mode: 2.5})
        assert getattr(opt, mode) == 2.5 and opt.get_config()[mode] == 2.5
        assert cls(**opt.get_config()).get_config() == opt.get_config()
        assert f"{mode}=2.5" in repr(opt)
        clone = pickle.loads(pickle.dumps(opt))
        assert copy.deepcopy(opt).get_config() == clone.get_config() == opt.get_config()


@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True, [1.0], 10 ** 400])
def test_bad_values_are_refused(name, mode, value):
    with pytest.raises(ValueError, match=rf"{mode} must be a number in \(0, inf\)"):
        OPTIMIZERS[name](**{mode: value})


@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("pair", [("clipnorm", "global_clipnorm"), ("clipnorm", "clipvalue"),
                                  ("global_clipnorm", "clipvalue")])
def test_two_settings_are_refused_as_in_keras(name, pair):
    with pytest.raises(ValueError, match="set at most one of clipnorm, clipvalue and global_clipnorm"):
        OPTIMIZERS[name](**{pair[0]: 1.0, pair[1]: 2.0})


def test_a_second_setting_given_later_is_refused_at_the_step():
    opt = snn.Adam(clipnorm=1.0)
    opt.global_clipnorm = 2.0                # as Keras's issue 17278 did by accident
    with pytest.raises(ValueError, match=r"got clipnorm=1.0, global_clipnorm=2.0"):
        opt.step(np.ones(3), np.ones(3))


@pytest.mark.parametrize("variables, message", [
    ([slice(0, 5), slice(6, TOTAL)], r"variables\[1\] is slice\(6, 22, None\)"),
    ([slice(0, 5), slice(4, TOTAL)], r"variables\[1\]"),
    ([slice(0, TOTAL, 2)], r"variables\[0\]"),
    ([slice(0, 5)], "cover the flat vector up to 5, but it has 22"),
    ([slice(0, TOTAL + 3)], r"variables\[0\]"),
    ([0, 1], r"variables\[0\] must be a slice"),
    (slice(0, TOTAL), "variables must be a sequence of slices"),
    ("all", "variables must be a sequence of slices"),
])
def test_bad_variables_are_refused(variables, message):
    with pytest.raises(ValueError, match=message):
        snn.SGD(clipnorm=1.0).step(np.zeros(TOTAL), np.ones(TOTAL), variables=variables)


def test_an_optimizer_pickled_before_clipping_existed_has_none():
    opt = snn.Adam()
    state = opt.__getstate__()
    for name in (*MODES, "_clip_scratch"):
        del state[name]
    old = snn.Adam.__new__(snn.Adam)
    old.__setstate__(state)
    assert (old.clipnorm, old.global_clipnorm, old.clipvalue) == (None, None, None)
    old.step(np.ones(3), np.ones(3))


# ------------------------------------------------------------- model files
@pytest.mark.parametrize("mode", MODES)
def test_model_files_round_trip_the_setting(tmp_path, mode):
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((16, 4)), np.arange(16) % 3
    model = snn.Sequential([snn.Dense(5), snn.ReLU(), snn.Dense(3)], seed=1)
    model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.01, **{mode: 0.05}), epochs=2,
              batch_size=8)
    loaded = snn.load(snn.save(model, tmp_path / "model.npz"))
    assert type(loaded.optimizer) is snn.Adam
    assert getattr(loaded.optimizer, mode) == 0.05
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for trained in (model, loaded):
        trained.fit(X, y, epochs=1, batch_size=8)
    np.testing.assert_array_equal(loaded.params, model.params)
