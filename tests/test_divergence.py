"""A diverged fit keeps the weights, optimizer state and buffers of its last finite step.

Finite gradients times a huge learning rate overflow the parameters in the update
itself; the training step then puts the parameters back from a copy taken before
the step and raises DivergenceError. Every fit that raises or returns leaves
finite weights.
"""

import warnings

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import training
from scratchnn.optimizers import OPTIMIZERS
from test_core import centered_model


def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=n)


def mlp(dtype="float32", seed=0):
    return snn.Sequential([snn.Dense(16), snn.ReLU(), snn.Dense(1)], seed=seed, dtype=dtype)


class Snapshots(snn.Callback):
    """The parameters after every step that completed."""

    def __init__(self):
        self.params = []

    def on_train_begin(self, logs=None):
        self.params.append(self.model.params.copy())

    def on_batch_end(self, batch, logs=None):
        self.params.append(self.model.params.copy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
# (LBFGS takes no step that overflows: its line search treats one as a step too far and
# shortens it; tests/test_lbfgs.py checks that)
@pytest.mark.parametrize("name", sorted(n for n, c in OPTIMIZERS.items() if not getattr(c, "needs_closure", False)))
def test_an_update_that_overflows_is_put_back_bit_for_bit(name, dtype):
    """Three good steps, then one with a learning rate that overflows every
    optimizer's update: the error names the step and the parameter, and the
    parameters are those of step 3 exactly (bit for bit). The optimizer counts
    the rejected step (its moments have seen that gradient)."""
    X, y = regression()
    model = mlp(dtype)
    optimizer = OPTIMIZERS[name](lr=1e-3)
    snapshots = Snapshots()
    model.fit(X, y, loss="mse", optimizer=optimizer, epochs=1, batch_size=16, shuffle=False,
              callbacks=[snapshots])
    optimizer.lr = float(np.finfo(dtype).max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(snn.DivergenceError, match=r"step 5: the optimizer's update made "
                                                      r"parameter 'W' of layer 'dense_0'.*put back"):
            model.fit(X * 1e3, y, epochs=1, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(model.params, snapshots.params[-1])
    assert model.optimizer.iterations == 5
    optimizer.lr = 1e-3                      # and training goes on from there
    model.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    assert np.all(np.isfinite(model.params)) and model.optimizer.iterations == 9


def test_the_first_step_put_back_leaves_the_initial_weights():
    X, y = regression()
    model = mlp("float64")
    model.build((3,))
    before = model.params.copy()
    with pytest.raises(snn.DivergenceError, match="step 1: the optimizer's update"):
        model.fit(X, y, loss="mse", optimizer=snn.Adam(lr=1e308), epochs=1, batch_size=None)
    np.testing.assert_array_equal(model.params, before)


def test_the_issue_examples_leave_finite_weights():
    """SGD(lr=1e38) raises on step 2 with the weights of step 1; full batch, one
    epoch returns with finite weights; float64 and lr=1e308 (the CLI's xor example)."""
    X, y = regression()
    model = mlp()
    snapshots = Snapshots()
    with pytest.raises(snn.DivergenceError, match="batch 2"):
        model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=1e38), epochs=5, batch_size=16,
                  callbacks=[snapshots])
    np.testing.assert_array_equal(model.params, snapshots.params[-1])
    assert np.all(np.isfinite(model.params))
    for dtype, lr in [("float32", 1e38), ("float64", 1e308)]:
        model = mlp(dtype)
        try:
            model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=lr), epochs=1, batch_size=None)
        except snn.DivergenceError:
            pass
        assert np.all(np.isfinite(model.params))


def test_a_diverged_update_restores_the_buffers():
    X, y = regression()
    targets = np.stack([y, -y, 2 * y], axis=1)
    model = centered_model(dtype="float64")
    model.fit(X, targets, loss="mse", optimizer=snn.SGD(lr=0.1), epochs=1, batch_size=None)
    buffers, params = model.buffers.copy(), model.params.copy()
    # a finite loss (about 1e200) and finite gradients (about 1e100), but lr * gradient overflows
    with pytest.raises(snn.DivergenceError, match="update"):
        model.fit(X, targets * 1e100, optimizer=snn.SGD(lr=1e250), epochs=1, batch_size=None)
    np.testing.assert_array_equal(model.buffers, buffers)
    np.testing.assert_array_equal(model.params, params)
    assert not np.array_equal(buffers, centered_model(dtype="float64").build((3,)).buffers)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_with_the_smallest_learning_rate_trains_without_a_warning(dtype):
    """lr=1e-323 makes Adam's folded scalar k1 overflow (and ZeroDivisionError
    before); the unfolded update is tiny, so the weights barely move and stay finite."""
    X, y = regression()
    model = mlp(dtype)
    model.build((3,))
    before = model.params.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, loss="mse", optimizer=snn.Adam(lr=1e-323), epochs=2, batch_size=16)
    np.testing.assert_allclose(model.params, before, rtol=0, atol=1e-300)
    assert model.optimizer.iterations == 8


def test_adam_unfolded_equals_folded_where_both_apply():
    """The fallback form is the same update: forced on a normal learning rate,
    it agrees with the folded form to rounding."""
    class Unfolded(snn.Adam):
        def _begin_step(self, dtype):
            super()._begin_step(dtype)
            self._k = None

    rng = np.random.default_rng(1)
    p0, grads = rng.normal(size=1000), [rng.normal(size=1000) for _ in range(5)]
    pf, pu = p0.copy(), p0.copy()
    folded, unfolded = snn.Adam(lr=0.01), Unfolded(lr=0.01)
    for g in grads:
        folded.step(pf, g.copy())
        unfolded.step(pu, g.copy())
    assert not np.array_equal(pf, p0)
    np.testing.assert_allclose(pu, pf, rtol=1e-13, atol=0)


def test_adam_with_a_huge_learning_rate_in_float32_diverges_without_a_warning():
    """lr=1e44 makes k2 underflow to 0 in float32 (a division by zero before)."""
    X, y = regression()
    model = mlp("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(snn.DivergenceError, match="step 1: the optimizer's update"):
            model.fit(X, y, loss="mse", optimizer=snn.Adam(lr=1e44), epochs=1)
    assert np.all(np.isfinite(model.params))


# ------------------------------------------------- the bound that skips the guard
def _optimizers():
    return [snn.SGD(lr=0.1), snn.SGD(lr=0.1, momentum=0.9), snn.SGD(lr=0.1, momentum=0.9, nesterov=True),
            snn.SGD(lr=0.05, momentum=0.5, weight_decay=0.1), snn.AdaGrad(lr=0.1, weight_decay=0.01),
            snn.RMSProp(lr=0.01), snn.RMSProp(lr=0.01, momentum=0.9, weight_decay=0.1),
            snn.Adam(lr=0.01), snn.Adam(lr=0.01, weight_decay=0.1, eps=1e-3),
            snn.AdamW(lr=0.01, weight_decay=0.5), snn.AdamW(lr=3.0, weight_decay=1.0)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("index", range(len(_optimizers())))
def test_update_bound_holds_over_many_steps(index, dtype):
    """The bound every built-in optimizer gives before a step is >= max |p| after it,
    step after step (its running state bounds included), for gradients of every scale,
    and after load_state_dict (when it measures the state again)."""
    optimizer = _optimizers()[index]
    rng = np.random.default_rng(index)
    p = rng.normal(size=500).astype(dtype)
    for t in range(60):
        scale = 10.0 ** rng.integers(-8, 6)
        g = (rng.standard_cauchy(size=500) * scale).astype(dtype)
        g[rng.random(500) < 0.3] = 0
        if t == 30:        # a state from elsewhere: measured, not assumed
            state = optimizer.state_dict()
            for name in optimizer.state_names():
                state[name] = state[name] * 1e3
            optimizer.load_state_dict(state)
        bound = optimizer.update_bound(float(np.abs(p).max()), float(np.linalg.norm(g.astype(np.float64))))
        optimizer.step(p, g.copy())
        assert np.abs(p).max() <= bound * (1 + 1e-6), (t, np.abs(p).max(), bound)


def test_a_custom_optimizer_without_a_bound_is_guarded_on_every_step(monkeypatch):
    class PlainSGD(snn.Optimizer):
        def _update(self, p, g, state, tmp):
            p -= np.multiply(g, self.lr, out=tmp[0])

    copies = []
    backup = training._backup
    monkeypatch.setattr(training, "_backup", lambda model: copies.append(1) or backup(model))
    X, y = regression()
    mlp().fit(X, y, loss="mse", optimizer=PlainSGD(lr=0.01), epochs=2, batch_size=16)
    assert len(copies) == 8
    copies.clear()
    mlp().fit(X, y, loss="mse", optimizer=snn.Adam(lr=0.01), epochs=2, batch_size=16)
    assert copies == []                      # the built-in optimizers: no copy needed
    model = mlp()
    with pytest.raises(snn.DivergenceError):
        model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=1e38), epochs=2, batch_size=16)
    assert copies                            # a huge learning rate: guarded
    assert np.all(np.isfinite(model.params))


def test_writing_the_weights_forgets_the_bound():
    X, y = regression()
    model = mlp()
    model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=0.01), epochs=1)
    assert model.params_max is not None and model.params_max >= np.abs(model.params).max()
    model.set_weights(model.get_weights())
    assert model.params_max is None


def test_weights_written_between_fits_or_by_a_callback_are_measured_again():
    """The bound of max |p| is not trusted across fits, nor across epochs when callbacks
    run (they may write model.params directly): a huge weight written there is seen."""
    X, y = regression()
    model = mlp("float32")
    model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=1e-3), epochs=1, batch_size=None)
    model.params[0] = 3e38                        # written directly, not by set_weights
    with pytest.raises(snn.DivergenceError):
        model.fit(X, y, optimizer=snn.SGD(lr=1e-3), epochs=1, batch_size=None)
    assert np.all(np.isfinite(model.params))

    class WriteHugeWeight(snn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.params[0] = 3e38

    model = mlp("float32")
    with pytest.raises(snn.DivergenceError):
        model.fit(X, y, loss="mse", optimizer=snn.SGD(lr=1e-3), epochs=3, batch_size=None,
                  callbacks=[WriteHugeWeight()])
    assert np.all(np.isfinite(model.params))
