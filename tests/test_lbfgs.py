"""L-BFGS: the same problems as scipy's L-BFGS-B, iterated to convergence (minimizers,
losses, iteration counts); the strong Wolfe conditions at every accepted step;
float32; zero, infinite and NaN losses; the evaluation budget; kept state (a
changed start, pickle, state_dict); argument checks."""

from __future__ import annotations

import copy
import inspect
import json
import math
import pickle

import numpy as np
import pytest
import scratchnn as snn
from scratchnn.functional import sigmoid


# ----------------------------------------------------------------- helpers
class Recorder:
    """A closure over ``fun(x) -> (f, g)`` that writes into ``p`` and ``g`` as
    ``iterate`` expects, recording every call: ``calls`` holds (x, f, g) copies."""

    def __init__(self, fun, p: np.ndarray, g: np.ndarray):
        self.fun, self.p, self.g, self.calls = fun, p, g, []

    def __call__(self) -> float:
        assert np.isfinite(self.p).all(), "a trial point that is not finite reached the closure"
        f, grad = self.fun(self.p)
        self.g[...] = grad
        self.calls.append((self.p.copy(), f, self.g.copy()))
        return f


def run(fun, x0, dtype=np.float64, max_iterations=5000, **settings):
    """Iterate ``LBFGS(**settings)`` from ``x0`` to convergence. Returns the point,
    the last loss, the optimizer, the recorder and, for each iterate, (x, f, g) before,
    (x, f, g) after and the number of closure calls it made."""
    p = np.array(x0, dtype=dtype)
    g = np.zeros_like(p)
    record = Recorder(fun, p, g)
    opt = snn.LBFGS(**settings)
    steps = []
    for _ in range(max_iterations):
        x, grad, calls = p.copy(), g.copy(), len(record.calls)
        f = opt.iterate(p, g, record)
        loss, grad_here = fun(p)        # what iterate returns and leaves: the accepted point's
        assert f == loss and np.array_equal(g, grad_here)
        f_before = steps[-1][1][1] if steps else record.calls[0][1]   # the start's loss
        grad = grad if steps else record.calls[0][2]
        steps.append(((x, f_before, grad), (p.copy(), f, g.copy()), len(record.calls) - calls))
        if opt.converged:
            break
    assert opt.converged, "did not converge"
    return p, f, opt, record, steps


def scipy_lbfgs(fun, x0, gtol, ftol):
    minimize = pytest.importorskip("scipy.optimize").minimize
    return minimize(fun, np.array(x0, dtype=np.float64), jac=True, method="L-BFGS-B",
                    options={"maxcor": 10, "gtol": gtol, "ftol": ftol, "maxiter": 100000,
                             "maxfun": 100000})


def same_order(ours: int, theirs: int) -> bool:
    return ours <= 2 * theirs and theirs <= 2 * ours


# ----------------------------------------------------------------- problems
def quadratic(n=50, condition=1e4, seed=0, dtype=np.float64):
    """``f = (x - x*)' A (x - x*) / 2`` with eigenvalues of A from 1 to ``condition``
    (written around x*, so that f and its rounding shrink together near the minimum)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, math.log10(condition), n)) @ q.T
    a = ((a + a.T) / 2).astype(dtype)
    x_star = rng.standard_normal(n).astype(dtype)

    def fun(x):
        r = x - x_star
        ar = a @ r
        return float(np.dot(r, ar)) / 2, ar
    return fun, x_star


def rosen_der(x):
    r, u = x[1:] - x[:-1] ** 2, 1 - x[:-1]
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * r - 2 * u
    g[1:] += 200 * r
    return g


def rosenbrock(x):
    """``f = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` (scipy's ``rosen``), and its gradient."""
    r, u = x[1:] - x[:-1] ** 2, 1 - x[:-1]
    return float(100 * np.dot(r, r) + np.dot(u, u)), rosen_der(x)


ROSENBROCK_START = {2: [-1.2, 1.0], 10: [-1.2, 1.0] * 5}


def logistic_regression(seed=0, n=300, d=6, l2=1e-2):
    """Mean logistic loss of ``z = X w + b`` with labels +-1, plus ``l2 |w|^2 / 2``
    (strictly convex: one minimizer). Parameters are ``[w, b]``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(rng.random(n) < sigmoid(X @ rng.standard_normal(d) + 0.3), 1.0, -1.0)

    def fun(theta):
        w, b = theta[:-1], theta[-1]
        margin = y * (X @ w + b)
        loss = float(np.mean(np.logaddexp(0.0, -margin)) + l2 * np.dot(w, w) / 2)
        dz = -y * sigmoid(-margin) / n
        return loss, np.concatenate([X.T @ dz + l2 * w, [dz.sum()]])
    return fun, np.zeros(d + 1)


def mlp_problem():
    """The MSE of a small scratchnn MLP as a function of its flat parameter vector;
    the closure evaluates at whatever ``model.params`` holds."""
    model = snn.Sequential([snn.Dense(8, activation="tanh"), snn.Dense(1)], seed=0,
                           dtype="float64", input_shape=(3,))
    model.compile(loss="mse")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 3))
    target = np.sin(X @ np.array([1.0, -2.0, 0.5]))[:, None]

    def closure():
        output = model.forward(X, training=True)
        loss = model.loss.forward(output, target)
        model.backward(model.loss.backward())
        return loss
    return model, closure


# ------------------------------------------------------------ against scipy
def test_quadratic_reaches_the_minimizer_like_scipy():
    fun, x_star = quadratic()
    x0 = np.zeros(50)
    # tolerance_change 0: stop on the gradient alone (|x - x*| <= |g| / lambda_min = |g|)
    p, f, opt, _, _ = run(fun, x0, tolerance_grad=1e-10, tolerance_change=0.0)
    theirs = scipy_lbfgs(fun, x0, gtol=1e-10, ftol=0.0)
    assert opt.converged_reason == "gradient"
    np.testing.assert_allclose(p, x_star, rtol=0, atol=1e-8)
    np.testing.assert_allclose(theirs.x, x_star, rtol=0, atol=1e-8)
    assert same_order(opt.iterations, theirs.nit), (opt.iterations, theirs.nit)


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_reaches_the_minimum_like_scipy(n):
    x0 = ROSENBROCK_START[n]
    p, f, opt, _, _ = run(rosenbrock, x0, tolerance_grad=1e-8, tolerance_change=0.0)
    theirs = scipy_lbfgs(rosenbrock, x0, gtol=1e-8, ftol=0.0)
    assert f < 1e-10 and theirs.fun < 1e-10
    np.testing.assert_allclose(p, np.ones(n), atol=1e-5)
    np.testing.assert_allclose(theirs.x, np.ones(n), atol=1e-5)
    assert same_order(opt.iterations, theirs.nit), (opt.iterations, theirs.nit)
    assert opt.n_evaluations <= 2 * theirs.nfev


def test_logistic_regression_has_scipys_minimizer():
    fun, x0 = logistic_regression()
    # on the gradient alone: the default relative loss change of 2.2e-9 stops both
    # about 3e-5 from the minimizer, at different points
    p, f, opt, _, _ = run(fun, x0, tolerance_grad=1e-10, tolerance_change=0.0)
    theirs = scipy_lbfgs(fun, x0, gtol=1e-10, ftol=0.0)
    assert opt.converged_reason == "gradient" and theirs.success
    np.testing.assert_allclose(p, theirs.x, rtol=0, atol=1e-6)
    assert f == pytest.approx(theirs.fun, rel=1e-12)
    assert np.abs(p).max() > 0.1                  # (not a trivial minimizer at the start)


def test_mlp_loss_as_low_as_scipys_from_the_same_start():
    model, closure = mlp_problem()
    start = model.params.copy()
    opt = snn.LBFGS(tolerance_grad=1e-8)
    loss = closure()
    first_loss = loss
    for _ in range(5000):
        loss = opt.iterate(model.params, model.grads, closure)
        if opt.converged:
            break
    assert opt.converged

    def fun(w):
        model.params[...] = w
        return closure(), model.grads.copy()
    theirs = scipy_lbfgs(fun, start, gtol=1e-8, ftol=2.220446049250313e-09)
    assert loss < 0.2 * first_loss                 # it learned something
    assert loss <= theirs.fun * (1 + 1e-6), (loss, theirs.fun)


# ----------------------------------------------------------- line search
def strong_wolfe_holds(before, after, c1=1e-4, c2=0.9) -> tuple[bool, bool]:
    """Both conditions for the step s = x1 - x0 (a d = s, so phi'(a) a = g(x1).s):
    f1 <= f0 + c1 g0.s and |g1.s| <= c2 |g0.s|, with room for the rounding of s."""
    (x0, f0, g0), (x1, f1, g1) = before, after
    s = x1 - x0
    slope0, slope1 = float(np.dot(g0, s)), float(np.dot(g1, s))
    decrease = f1 <= f0 + c1 * slope0 + 1e-13 * abs(f0)
    curvature = abs(slope1) <= c2 * abs(slope0) * (1 + 1e-9)
    return decrease, curvature


@pytest.mark.parametrize("lr", [1e-3, 1.0, 30.0])
@pytest.mark.parametrize("c2", [0.9, 0.1])
@pytest.mark.parametrize("n", [2, 10])
def test_every_accepted_step_satisfies_the_strong_wolfe_conditions(n, lr, c2):
    # lr 1e-3: the first trials are too short (extrapolation); 30: too long (zoom)
    p, f, opt, record, steps = run(rosenbrock, ROSENBROCK_START[n], lr=lr, c2=c2,
                                   tolerance_grad=1e-5, tolerance_change=0.0)
    # In 10-D some of these paths end in the local minimum near (-1, 1, ..., 1), f = 3.99,
    # where a gradient of 1e-6 is below what float64 losses can resolve (a step would
    # lower f by about 1e-15): tolerance_grad 1e-5.
    assert opt.converged_reason == "gradient" and np.abs(rosen_der(p)).max() <= 1e-5
    checked = 0
    for before, after, _ in steps:
        if not np.array_equal(before[0], after[0]):
            assert strong_wolfe_holds(before, after, c2=c2) == (True, True), checked
            checked += 1
    assert checked == opt.iterations > 10
    # the line search did more than accept its first trial somewhere
    assert max(calls for _, _, calls in steps) > 2


def test_evaluation_budget_per_iteration():
    # max_evaluations 3, starting point included on the first iteration
    p, f, opt, record, steps = run(rosenbrock, ROSENBROCK_START[2], max_evaluations=3,
                                   tolerance_grad=1e-6)
    assert max(calls for _, _, calls in steps) <= 3
    assert opt.n_evaluations == len(record.calls) == sum(calls for _, _, calls in steps)
    assert f < 1e-8


def test_without_a_wolfe_point_in_the_budget_the_best_trial_is_taken():
    # First trials of a tenth of the natural step, c2 = 0.1, 3 evaluations: most line
    # searches end before the curvature condition holds, on the lowest trial that met
    # sufficient decrease (run checks that params, grads and the loss agree each time)
    p, f, opt, record, steps = run(rosenbrock, ROSENBROCK_START[2], max_evaluations=3,
                                   lr=0.1, c2=0.1, tolerance_grad=1e-6)
    assert f < 1e-10 and opt.converged_reason == "gradient"
    wolfe = [strong_wolfe_holds(before, after, c2=0.1) for before, after, _ in steps
             if not np.array_equal(before[0], after[0])]
    assert all(decrease for decrease, _ in wolfe)
    assert sum(not curvature for _, curvature in wolfe) > 5
    losses = [after[1] for _, after, _ in steps]
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_max_evaluations_one_takes_the_first_trial_or_nothing():
    fun, x_star = quadratic(n=5, condition=10)
    p, f, opt, record, steps = run(fun, np.zeros(5), max_evaluations=1, tolerance_grad=1e-9,
                                   tolerance_change=0.0)
    assert [calls for _, _, calls in steps] == [1] * len(steps)
    assert np.array_equal(steps[0][0][0], steps[0][1][0])   # the first evaluates the start only
    np.testing.assert_allclose(p, x_star, atol=1e-8)


def test_a_loss_that_never_decreases_ends_in_line_search_at_the_start():
    x0 = np.array([0.5, -1.0, 2.0])
    p, g = x0.copy(), np.zeros(3)
    calls = []

    def closure():                      # a flat loss with a (lying) nonzero gradient
        calls.append(p.copy())
        g[...] = 1.0
        return 1.0
    opt = snn.LBFGS(max_evaluations=7)
    assert opt.iterate(p, g, closure) == 1.0
    assert opt.converged and opt.converged_reason == "line search"
    assert np.array_equal(p, x0) and np.array_equal(g, np.ones(3))
    assert 2 <= len(calls) <= 7 and opt.iterations == 1


def test_steps_that_overflow_float32_never_reach_the_closure():
    # f = -x, unbounded below, from near the top of float32: the trials x + a overflow
    p, g = np.array([3e38], dtype=np.float32), np.zeros(1, dtype=np.float32)

    def fun(x):
        return -float(x[0]), np.array([-1.0], dtype=np.float32)
    record = Recorder(fun, p, g)
    opt = snn.LBFGS(lr=1e38, max_evaluations=10)
    loss = opt.iterate(p, g, record)
    assert math.isfinite(loss) and loss < -3e38 and np.isfinite(p).all()
    assert loss == -float(p[0]) and p.dtype == np.float32
    assert len(record.calls) < 10       # overflowing trials did not call it


@pytest.mark.parametrize("bad_loss, bad_gradient", [(math.inf, math.inf), (math.nan, math.nan),
                                                    (None, math.nan)])
def test_non_finite_losses_far_away_shrink_the_step(bad_loss, bad_gradient):
    # a quadratic that is inf or NaN (or has a NaN gradient: None) beyond |x| = 3;
    # lr 1e3 overshoots by far
    def fun(x):
        loss = float(np.dot(x - 2, x - 2))
        if np.abs(x).max() > 3:
            return (loss if bad_loss is None else bad_loss), np.full_like(x, bad_gradient)
        return loss, 2 * (x - 2)
    p, f, opt, record, _ = run(fun, np.zeros(5), lr=1e3, tolerance_grad=1e-9)
    assert sum(1 for _, _, grad in record.calls if not np.isfinite(grad).all()) >= 3
    np.testing.assert_allclose(p, np.full(5, 2.0), atol=1e-9)
    assert opt.converged_reason == "gradient"


# ------------------------------------------------------------------ float32
def test_float32_converges_to_the_float32_accurate_minimum():
    fun, x_star = quadratic(n=20, condition=1e2, seed=3, dtype=np.float32)
    p, f, opt, record, _ = run(fun, np.zeros(20), dtype=np.float32)
    assert p.dtype == np.float32 and record.g.dtype == np.float32
    assert all(s.dtype == y.dtype == np.float32 for s, y, _ in opt._pairs)
    # condition 1e2 times float32's eps 1.2e-7: about 1e-5 relative is what float32 allows
    error = np.linalg.norm(p.astype(np.float64) - x_star) / np.linalg.norm(x_star)
    assert error < 1e-4, error
    assert opt.iterations < 100


# ---------------------------------------------------------- starting point
def test_zero_gradient_at_the_start_converges_at_once():
    x0 = np.array([1.0, -2.0, 3.0])
    p, g = x0.copy(), np.zeros(3)
    calls = []

    def closure():
        calls.append(1)
        g[...] = 2 * (p - x0)             # exactly 0 at x0
        return float(np.dot(p - x0, p - x0)) + 5.0
    opt = snn.LBFGS()
    assert opt.iterate(p, g, closure) == 5.0
    assert opt.converged and opt.converged_reason == "gradient"
    assert np.array_equal(p, x0) and not g.any()
    assert len(calls) == opt.n_evaluations == 1 and opt.iterations == 0
    assert opt.iterate(p, g, closure) == 5.0 and len(calls) == 1    # kept, not re-evaluated


@pytest.mark.parametrize("loss, gradient, message", [
    (math.nan, 1.0, "the loss is nan"),
    (math.inf, 1.0, "the loss is inf"),
    (1.0, math.nan, "gradient is NaN"),
])
def test_non_finite_start_is_a_divergence_error(loss, gradient, message):
    p, g = np.zeros(3), np.zeros(3)

    def closure():
        g[...] = gradient
        return loss
    with pytest.raises(snn.DivergenceError, match=message) as error:
        snn.LBFGS().iterate(p, g, closure)
    assert isinstance(error.value, FloatingPointError)
    assert not p.any()


# ----------------------------------------------------------------- state
def test_the_start_is_evaluated_again_only_when_params_changed():
    fun, _ = quadratic(n=10, condition=100)
    p, g = np.zeros(10), np.zeros(10)
    record = Recorder(fun, p, g)
    opt = snn.LBFGS()
    opt.iterate(p, g, record)
    accepted = p.copy()
    n = len(record.calls)
    opt.iterate(p, g, record)
    assert not any(np.array_equal(x, accepted) for x, _, _ in record.calls[n:])
    p[3] += 0.5                         # someone else writes the parameters
    moved = p.copy()
    n = len(record.calls)
    loss = opt.iterate(p, g, record)
    assert np.array_equal(record.calls[n][0], moved)
    assert loss == fun(p)[0] and np.allclose(g, fun(p)[1], rtol=1e-14, atol=0)


def test_pickle_and_deepcopy_continue_identically():
    fun, x0 = logistic_regression(seed=2)
    p, g = x0.copy(), np.zeros_like(x0)
    opt = snn.LBFGS(history_size=4)
    for _ in range(6):
        opt.iterate(p, g, Recorder(fun, p, g))
    assert len(opt._pairs) == 4
    twins = [copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))]
    runs = []
    for o in [opt, *twins]:
        q, h = p.copy(), g.copy()
        record = Recorder(fun, q, h)
        losses = [o.iterate(q, h, record) for _ in range(5)]
        runs.append((q, losses, len(record.calls), o.n_evaluations))
    for q, losses, calls, evaluations in runs[1:]:
        assert np.array_equal(q, runs[0][0]) and losses == runs[0][1]
        assert calls == runs[0][2] and evaluations == runs[0][3]
    assert not np.array_equal(runs[0][0], p)            # they did move


def test_state_dict_keeps_iterations_and_forgets_the_pairs():
    fun, _ = quadratic(n=10, condition=100)
    p, g = np.zeros(10), np.zeros(10)
    opt = snn.LBFGS()
    for _ in range(4):
        opt.iterate(p, g, Recorder(fun, p, g))
    assert opt.state_names() == () and opt.state_dict() == {"iterations": 4}
    fresh = snn.LBFGS()
    fresh.load_state_dict(opt.state_dict())
    assert fresh.iterations == 4
    start = p.copy()
    record = Recorder(fun, p, g)
    fresh.iterate(p, g, record)
    assert fresh.iterations == 5
    # the start is evaluated again, and the first trial is steepest descent
    (x_start, _, g_start), (x_trial, _, _) = record.calls[:2]
    assert np.array_equal(x_start, start)
    step = x_trial - start
    cosine = np.dot(step, -g_start) / (np.linalg.norm(step) * np.linalg.norm(g_start))
    assert cosine == pytest.approx(1.0, abs=1e-12)


def test_a_direction_that_overflows_falls_back_to_steepest_descent():
    fun, x_star = quadratic(n=8, condition=10, dtype=np.float32)
    p, g = np.zeros(8, dtype=np.float32), np.zeros(8, dtype=np.float32)
    record = Recorder(fun, p, g)
    opt = snn.LBFGS()
    for _ in range(3):
        opt.iterate(p, g, record)
    opt._gamma = 1e300                  # (internal) an initial scale beyond float32
    start, g_start, n = p.copy(), g.copy(), len(record.calls)
    loss = opt.iterate(p, g, record)    # no warning (warnings are errors here)
    step = record.calls[n][0] - start
    cosine = np.dot(step, -g_start) / (np.linalg.norm(step) * np.linalg.norm(g_start))
    assert cosine == pytest.approx(1.0, abs=1e-5)
    assert loss < fun(start)[0] and len(opt._pairs) <= 1


# ---------------------------------------------------------- configuration
def test_step_without_a_closure_is_a_type_error():
    with pytest.raises(TypeError, match="closure.*model.fit"):
        snn.LBFGS().step(np.zeros(3), np.zeros(3))
    assert snn.LBFGS.needs_closure is True


def test_config_round_trip():
    opt = snn.LBFGS(lr=0.5, history_size=3, max_evaluations=7, tolerance_grad=1e-7,
                    tolerance_change=0.0, c1=1e-3, c2=0.5)
    config = opt.get_config()
    arguments = set(inspect.signature(snn.LBFGS).parameters) - {"learning_rate"}
    assert set(config) == arguments
    assert json.loads(json.dumps(config)) == config
    assert snn.LBFGS(**config).get_config() == config
    assert snn.LBFGS(learning_rate=0.25).lr == 0.25
    assert repr(opt).startswith("LBFGS(lr=0.5, history_size=3")


@pytest.mark.parametrize("argument, value", [
    ("lr", 0), ("lr", -1.0), ("lr", math.nan), ("lr", "1"),
    ("history_size", 0), ("history_size", 2.0), ("history_size", True),
    ("max_evaluations", 0), ("max_evaluations", None),
    ("tolerance_grad", -1e-9), ("tolerance_grad", math.inf),
    ("tolerance_change", -1.0), ("tolerance_change", math.nan),
    ("c1", 0.0), ("c1", 1.0), ("c2", 1.0), ("c2", -0.5),
    ("learning_rate", 0.0),
])
def test_invalid_arguments_are_refused_by_name(argument, value):
    with pytest.raises(ValueError, match=argument):
        snn.LBFGS(**{argument: value})


def test_c1_must_be_below_c2_and_lr_not_given_twice():
    with pytest.raises(ValueError, match="c1 must be smaller than c2"):
        snn.LBFGS(c1=0.5, c2=0.4)
    with pytest.raises(ValueError, match="not both"):
        snn.LBFGS(lr=0.5, learning_rate=0.5)


@pytest.mark.parametrize("params, grads, closure, error, message", [
    (np.zeros((2, 2)), np.zeros((2, 2)), lambda: 0.0, TypeError, "params must be a flat"),
    (np.zeros(3, dtype=int), np.zeros(3, dtype=int), lambda: 0.0, TypeError, "params"),
    (np.zeros(3), np.zeros(4), lambda: 0.0, ValueError, "grads"),
    (np.zeros(3), np.zeros(3, dtype=np.float32), lambda: 0.0, ValueError, "grads"),
    (np.zeros(3), np.zeros(3), None, TypeError, "closure"),
])
def test_iterate_checks_its_arguments(params, grads, closure, error, message):
    with pytest.raises(error, match=message):
        snn.LBFGS().iterate(params, grads, closure)


def test_params_of_another_size_are_refused():
    fun, _ = quadratic(n=4, condition=10)
    p, g = np.zeros(4), np.zeros(4)
    opt = snn.LBFGS()
    opt.iterate(p, g, Recorder(fun, p, g))
    q, h = np.zeros(5), np.zeros(5)
    with pytest.raises(ValueError, match="made for 4 parameters"):
        opt.iterate(q, h, lambda: 0.0)
