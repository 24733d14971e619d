"""L-BFGS with a strong-Wolfe line search, on the flat parameter vector.

Unlike the optimizers of ``optimizers.py``, L-BFGS cannot take a step from one
gradient: its line search evaluates the objective at trial points. So it has no
``step(params, grads)``; ``iterate(params, grads, closure)`` makes one iteration,
calling ``closure()`` to evaluate the loss and gradient wherever ``params`` holds.
``model.fit(..., optimizer=LBFGS())`` trains on the full batch, one iteration per epoch.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from . import _memory
from ._validation import check_number, check_positive_int
from .functional import max_abs
from .optimizers import OPTIMIZERS, Optimizer, _lr
from .training import DivergenceError

#: how far past the last trial step the bracketing phase may extrapolate, as multiples
#: of the last step increase (Moré & Thuente's xtrapl and xtrapu, scipy's dcsrch too)
_EXTRAPOLATE = (1.1, 4.0)
#: a zoom trial keeps at least this fraction of the interval from either end, so
#: that every evaluation shrinks the interval to at most 90% of it
_SAFEGUARD = 0.1


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a . b`` in the vectors' dtype, as a Python float: inf (or NaN) where the
    sum overflows (the callers test the result). Called inside ``iterate``'s
    ``np.errstate``, which silences NumPy's overflow warning once per iteration: one
    errstate per product cost a quarter of a small model's L-BFGS fit."""
    return float(np.dot(a, b))


def _cubic_minimizer(a1: float, f1: float, g1: float, a2: float, f2: float, g2: float
                     ) -> Optional[float]:
    """The minimizer of the cubic that interpolates ``phi`` and ``phi'`` at two steps
    (Nocedal & Wright, eq. 3.59)::

        d1 = phi'(a1) + phi'(a2) - 3 (phi(a1) - phi(a2)) / (a1 - a2)
        d2 = sign(a2 - a1) sqrt(d1^2 - phi'(a1) phi'(a2))
        a  = a2 - (a2 - a1) (phi'(a2) + d2 - d1) / (phi'(a2) - phi'(a1) + 2 d2)

    None where the cubic has no minimizer (d1^2 < phi'(a1) phi'(a2)) or the formula
    does not give a finite number (Python floats: overflow gives inf, never a warning)."""
    if a1 == a2:
        return None
    d1 = g1 + g2 - 3 * (f1 - f2) / (a1 - a2)
    square = d1 * d1 - g1 * g2
    if not square >= 0 or not math.isfinite(square):     # (also False for NaN)
        return None
    d2 = math.copysign(math.sqrt(square), a2 - a1)
    denominator = g2 - g1 + 2 * d2
    if denominator == 0:
        return None
    a = a2 - (a2 - a1) * (g2 + d2 - d1) / denominator
    return a if math.isfinite(a) else None


class LBFGS(Optimizer):
    """Limited-memory BFGS (Nocedal, 1980; Liu & Nocedal, 1989), with a line search
    satisfying the strong Wolfe conditions (Nocedal & Wright, *Numerical
    Optimization*, 2nd ed., Algorithms 7.4, 3.5 and 3.6). One ``iterate`` is one
    iteration k::

        (f, g = closure() at p, on the first call or when p changed since the last)
        if max |g| <= tolerance_grad: converged ("gradient"), no step
        # direction d = -H g, by the two-loop recursion over the last m pairs
        q = g
        for i = k-1, ..., k-m:   a_i = rho_i s_i.q;  q = q - a_i y_i      (rho_i = 1 / y_i.s_i)
        r = gamma q                                   gamma = s_{k-1}.y_{k-1} / y_{k-1}.y_{k-1}
        for i = k-m, ..., k-1:   b = rho_i y_i.r;    r = r + (a_i - b) s_i
        d = -r                                        (-g when there is no pair yet)
        if g.d >= 0: forget every pair, d = -g
        # line search on phi(a) = f(p + a d), from a0 = lr (lr min(1, 1/||g||_1) when d = -g)
        find a with  phi(a) <= phi(0) + c1 a phi'(0)          (sufficient decrease)
                and  |phi'(a)| <= c2 |phi'(0)|                 (curvature, strong form)
        s = a d,  y = g(p + s) - g,  p = p + s
        keep (s, y) if s.y > eps |y|^2 (the oldest pair goes beyond m = history_size)
        converged if max |g| <= tolerance_grad ("gradient")
              or (f_old - f) / max(|f_old|, |f|, 1) <= tolerance_change ("loss change")

    The line search brackets a step interval that contains Wolfe points (Algorithm
    3.5: trial steps grow by cubic extrapolation, kept within 1.1 to 4 times the
    last increase) and then zooms into it (Algorithm 3.6: the minimizer of the cubic
    through both ends' phi and phi', kept at least 10% of the interval from either
    end; bisection where the cubic has no minimizer or an end is not finite). A
    trial whose loss or gradient is not finite (inf, NaN: the step went too far,
    into overflow) is treated as a loss too high, so the interval shrinks towards
    the last good step. It calls ``closure`` at most ``max_evaluations`` times
    in one ``iterate``, the evaluation of the starting point included (made only on
    the first call, after ``load_state_dict``, or when someone else wrote ``params``;
    so with ``max_evaluations=1`` that first call takes no step).
    If no trial meets the Wolfe conditions within that, the trial of lowest loss
    that met the sufficient decrease is taken; if none did, ``params`` and ``grads``
    are left at the starting point, the pairs are forgotten (a further ``iterate``
    starts again from steepest descent, as scipy restarts) and the optimizer reports
    converged ("line search"): no decrease can be found along d.

    ``iterate`` returns the loss at the accepted point, with ``params`` holding it and
    ``grads`` its gradient, and sets ``converged`` and ``converged_reason`` ("" while
    not converged). ``iterations`` counts the iterations that ran a line search,
    ``n_evaluations`` every ``closure()`` call so far. Vectors are kept in the
    parameters' dtype (float32 or float64); scalar products are that dtype's
    ``np.dot``. A starting point whose loss or gradient is not finite (or whose
    gradient's squared norm overflows) raises ``DivergenceError``, a
    ``FloatingPointError``: there is no descent to search for from there.

    State: the pairs (s, y) and the last point, loss and gradient are kept between
    calls, but not saved (``state_names()`` is empty, ``state_dict`` holds
    ``iterations`` only): a model file does not carry them, and a resumed ``fit``
    evaluates its starting point and rebuilds the pairs, beginning with a
    steepest-descent step. ``lr`` (``learning_rate``) scales the first trial step
    of every line search; 1 is the natural step of a quasi-Newton direction.

    Differences from the reference implementations, each of which is also "L-BFGS":

    * ``scipy.optimize.minimize(method="L-BFGS-B")`` handles bounds (projected
      gradients, a generalized Cauchy point, then a subspace minimization; none here),
      stores H in the compact form of Byrd, Nocedal & Schnabel (without bounds it is
      the same matrix as the two-loop recursion's), and searches with Moré &
      Thuente's algorithm (``dcsrch``, with ftol 1e-3 and gtol 0.9 as c1 and c2) instead
      of the Nocedal–Wright zoom. Its first trial step is ``1 / ||d||_2`` on the first
      iteration (``min(1, 1/||g||_1)`` here, PyTorch's); it skips a pair when
      ``s.y <= eps (-g.s)``. Its stopping tests are the ones here: ``gtol`` is
      ``tolerance_grad`` (max |projected g|), ``ftol`` is ``tolerance_change``.
    * ``torch.optim.LBFGS``: one ``step(closure)`` runs up to ``max_iter`` (20)
      iterations, and ``max_eval`` (25 by default) counts the closure calls of all of
      them together; here one ``iterate`` is one iteration and ``max_evaluations``
      limits that iteration. Its line search is off unless
      ``line_search_fn="strong_wolfe"`` (a port of minFunc's, much like this one; without
      it every step is a fixed ``lr d``, scaled as here on the first iteration). It keeps a pair when ``y.s > 1e-10`` (absolute), and
      its ``tolerance_change`` compares absolute changes of the loss and of the
      parameters, where this one is scipy's relative change of the loss.
    """

    #: the training loop hands this optimizer a closure (``iterate``), not a gradient
    needs_closure = True

    def __init__(self, lr: float = 1.0, history_size: int = 10, max_evaluations: int = 20,
                 tolerance_grad: float = 1e-5, tolerance_change: float = 2.220446049250313e-09,
                 c1: float = 1e-4, c2: float = 0.9, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(_lr(lr, learning_rate, 1.0))
        self.history_size = check_positive_int(history_size, "history_size")
        self.max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
        self.tolerance_grad = check_number("tolerance_grad", tolerance_grad, 0.0)
        self.tolerance_change = check_number("tolerance_change", tolerance_change, 0.0)
        self.c1 = check_number("c1", c1, 0.0, 1.0, low_open=True, high_open=True)
        self.c2 = check_number("c2", c2, 0.0, 1.0, low_open=True, high_open=True)
        if not self.c1 < self.c2:
            # with c1 >= c2 a step meeting both Wolfe conditions need not exist
            raise ValueError(f"c1 must be smaller than c2 (0 < c1 < c2 < 1), got c1={self.c1:g}, "
                             f"c2={self.c2:g}")
        self.n_evaluations = 0
        self.converged = False
        self.converged_reason = ""
        self._forget_point()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget the kept point, loss, gradient and pairs, so that the next ``iterate``
        evaluates its starting point afresh. A new objective needs it (other data, another
        penalty) even where ``params`` has not changed: ``fit`` calls it at its start."""
        self._forget_point()

    def _forget_point(self) -> None:
        """Drop the kept point, its loss and gradient, and the pairs: the next
        ``iterate`` evaluates its starting point."""
        self._x: Optional[np.ndarray] = None      # the last accepted point (a copy)
        self._g: Optional[np.ndarray] = None      # its gradient (a copy)
        self._f = math.nan                        # its loss
        self._pairs: list[tuple[np.ndarray, np.ndarray, float]] = []   # (s, y, rho), oldest first
        self._gamma = 1.0                         # s.y / y.y of the newest pair

    def state_names(self) -> tuple[str, ...]:
        """None: the pairs (s, y) are not saved (see the class's docstring)."""
        return ()

    def state_dict(self) -> dict:
        """``{"iterations": int}``: the pairs are not saved, a resumed fit rebuilds them."""
        return {"iterations": self.iterations}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``iterations``; the pairs and the kept point are forgotten."""
        self.iterations = int(state["iterations"])
        self._forget_point()

    def get_config(self) -> dict:
        return {"lr": self.lr, "history_size": self.history_size,
                "max_evaluations": self.max_evaluations, "tolerance_grad": self.tolerance_grad,
                "tolerance_change": self.tolerance_change, "c1": self.c1, "c2": self.c2}

    def step(self, params: np.ndarray, grads: np.ndarray, *, overwrite_grads: bool = False) -> None:
        """Refused: a line search needs to evaluate the loss at trial points."""
        raise TypeError("LBFGS needs a closure that evaluates the loss and gradient at trial "
                        "points, so it has no step(params, grads): train with model.fit(..., "
                        "optimizer=LBFGS()) (full batch, one iteration per epoch) or call "
                        "iterate(params, grads, closure)")

    # ------------------------------------------------------------- iteration
    def iterate(self, params: np.ndarray, grads: np.ndarray, closure: Callable[[], float]) -> float:
        """One L-BFGS iteration from the point in ``params``; returns the loss at the
        accepted point, which ``params`` then holds (``grads``: its gradient).

        ``closure()`` evaluates the objective at the current contents of ``params``,
        writes the gradient into ``grads`` and returns the loss (inf or NaN where a
        trial point diverges). Overflow and invalid-value warnings are silenced while
        it runs, closure included: a trial whose values overflow is a step too far,
        which the line search handles."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self._iterate(params, grads, closure)

    def _iterate(self, params: np.ndarray, grads: np.ndarray, closure: Callable[[], float]) -> float:
        self._check_vectors(params, grads, closure)
        self._evaluations_left = self.max_evaluations
        self.converged, self.converged_reason = False, ""
        if self._x is not None and (self._x.dtype != params.dtype):
            self._forget_point()                       # model.astype: start again
        if self._x is None or not np.array_equal(params, self._x):
            self._evaluate_start(params, grads, closure)
        else:
            np.copyto(grads, self._g)                  # (anyone may have used grads)
        g0, f0 = self._g, self._f
        if max_abs(g0) <= self.tolerance_grad:
            self.converged, self.converged_reason = True, "gradient"
            return f0
        if not self._evaluations_left:                 # max_evaluations = 1, spent on the start
            return f0

        d, dphi0 = self._direction(g0)
        if not self._pairs:
            # steepest descent has no scale: a first step of at most 1 / ||g||_1 (PyTorch's),
            # written 1 / max|g| / sum(|g| / max|g|) so that nothing overflows
            g_max = max_abs(g0)
            sum_scaled = float(np.sum(np.abs(g0) / g0.dtype.type(g_max), dtype=np.float64))
            alpha = self.lr * min(1.0, 1.0 / g_max / sum_scaled)
        else:
            alpha = self.lr
        self.iterations += 1
        f = self._line_search(params, grads, closure, d, f0, dphi0, alpha)
        if f is None:
            self._pairs.clear()
            self.converged, self.converged_reason = True, "line search"
            return f0
        self._remember(params, grads)
        if max_abs(grads) <= self.tolerance_grad:
            self.converged, self.converged_reason = True, "gradient"
        elif (f0 - f) / max(abs(f0), abs(f), 1.0) <= self.tolerance_change:
            self.converged, self.converged_reason = True, "loss change"
        self._f = f
        return f

    @staticmethod
    def _check_vectors(params, grads, closure) -> None:
        for name, vector in (("params", params), ("grads", grads)):
            if not isinstance(vector, np.ndarray) or vector.ndim != 1 \
                    or vector.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name} must be a flat float32 or float64 NumPy vector, got "
                                f"{type(vector).__name__}"
                                + (f" of shape {vector.shape} and dtype {vector.dtype}"
                                   if isinstance(vector, np.ndarray) else ""))
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError(f"grads ({grads.shape}, {grads.dtype}) must match params "
                             f"({params.shape}, {params.dtype})")
        if not callable(closure):
            raise TypeError(f"closure must be a function of no argument, got "
                            f"{type(closure).__name__}")

    def _evaluate_start(self, params: np.ndarray, grads: np.ndarray, closure) -> None:
        if self._x is not None and self._x.shape != params.shape:
            raise ValueError(f"this optimizer's pairs were made for {self._x.size} parameters, "
                             f"but params has {params.size}; use a new optimizer for another model")
        f = self._call(closure)
        if not math.isfinite(f) or not math.isfinite(max_abs(grads)):
            what = f"the loss is {f}" if not math.isfinite(f) else "the gradient is NaN or infinite"
            raise DivergenceError(f"LBFGS cannot start from this point: {what}")
        if self._x is None:
            self._x, self._g = _memory.copy(params), _memory.copy(grads)
            # scratch: the direction, and the gradient of the best trial so far
            self._d, self._g_best = _memory.zeros_like(params), _memory.zeros_like(params)
        else:
            np.copyto(self._x, params)
            np.copyto(self._g, grads)
        self._f = f

    def _call(self, closure) -> float:
        self._evaluations_left -= 1
        self.n_evaluations += 1
        return float(closure())

    def _direction(self, g: np.ndarray) -> tuple[np.ndarray, float]:
        """``d = -H g`` by the two-loop recursion, and ``g.d``; ``-g`` (the pairs
        forgotten) where that is not a descent direction."""
        d = self._d
        np.copyto(d, g)
        if self._pairs:
            scratch = self._g_best                 # free until the line search
            with np.errstate(over="ignore", invalid="ignore"):
                a = []
                for s, y, rho in reversed(self._pairs):
                    a.append(rho * _dot(s, d))
                    d -= np.multiply(y, a[-1], out=scratch)
                d *= self._gamma
                for (s, y, rho), a_i in zip(self._pairs, reversed(a)):
                    b = rho * _dot(y, d)
                    d += np.multiply(s, a_i - b, out=scratch)
            np.negative(d, out=d)
            dphi0 = _dot(g, d)
            # H is positive definite, so g.d < 0 in exact arithmetic; rounding, or an
            # overflow to inf or NaN, can break that: then steepest descent
            if dphi0 < 0 and math.isfinite(dphi0):
                return d, dphi0
            self._pairs.clear()
            np.copyto(d, g)
        np.negative(d, out=d)
        dphi0 = _dot(g, d)
        if not math.isfinite(dphi0):
            raise DivergenceError(f"LBFGS: the squared norm of the gradient overflows "
                                  f"{g.dtype.name} (max |g| = {max_abs(g):.3g}); scale the inputs")
        return d, dphi0

    def _remember(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Add the pair of the step just taken, and keep the new point and gradient."""
        if len(self._pairs) == self.history_size:
            s, y, _ = self._pairs.pop(0)           # the oldest pair's memory is reused
        else:
            s, y = _memory.zeros_like(params), _memory.zeros_like(params)
        np.subtract(params, self._x, out=s)
        np.subtract(grads, self._g, out=y)
        sy, yy = _dot(s, y), _dot(y, y)
        # Keep a pair only when its curvature s.y is positive, and not negligible next to
        # |y|^2: that keeps H positive definite (every direction a descent direction) and
        # gamma = s.y / y.y >= eps a usable scale. Strong Wolfe steps give s.y > 0 in exact
        # arithmetic, but a step taken on sufficient decrease alone, or rounding near the
        # minimum, need not; y = 0 (then s.y = 0) is skipped too, so gamma is never 0/0.
        eps = float(np.finfo(params.dtype).eps)
        if sy > eps * yy and math.isfinite(sy) and math.isfinite(1.0 / sy):
            self._pairs.append((s, y, 1.0 / sy))
            self._gamma = sy / yy
        np.copyto(self._x, params)
        np.copyto(self._g, grads)

    # ----------------------------------------------------------- line search
    def _line_search(self, params: np.ndarray, grads: np.ndarray, closure, d: np.ndarray,
                     f0: float, dphi0: float, alpha: float) -> Optional[float]:
        """A step ``a`` along ``d`` meeting the strong Wolfe conditions (Nocedal & Wright,
        Algorithms 3.5 and 3.6): ``params`` and ``grads`` are left at ``x0 + a d``, and its
        loss is returned. Past ``max_evaluations``, the trial of lowest loss that met
        the sufficient decrease; None (``params``, ``grads`` back at the start) if none did."""
        x0, c1, c2 = self._x, self.c1, self.c2
        best = [0.0, f0]                    # the lowest sufficient-decrease trial: a, phi
        here = [False]                      # whether params and grads hold that trial

        def phi(a: float) -> tuple[float, float]:
            """phi(a) and phi'(a) = g(x0 + a d).d; (inf, nan) where either is not finite."""
            if here[0]:                     # keep the best trial's gradient before it goes
                np.copyto(self._g_best, grads)
                here[0] = False
            with np.errstate(over="ignore", invalid="ignore"):
                np.multiply(d, a, out=params)
                np.add(params, x0, out=params)
            if not math.isfinite(max_abs(params)):     # the step overflowed: no evaluation
                self._evaluations_left -= 1
                return math.inf, math.nan
            f = self._call(closure)
            dphi = _dot(grads, d)
            if not (math.isfinite(f) and math.isfinite(dphi)):
                return math.inf, math.nan
            return f, dphi

        def decreases(a: float, f: float) -> bool:
            return f <= f0 + c1 * a * dphi0

        def keep_if_best(a: float, f: float) -> None:
            if f < best[1]:
                best[0], best[1], here[0] = a, f, True

        # Algorithm 3.5: bracketing
        lo = hi = None
        prev = (0.0, f0, dphi0)
        a = alpha
        while self._evaluations_left > 0:
            f, dphi = phi(a)
            if not decreases(a, f) or (prev[0] > 0 and f >= prev[1]):
                lo, hi = prev, (a, f, dphi)
                break
            keep_if_best(a, f)
            if abs(dphi) <= -c2 * dphi0:
                return f
            if dphi >= 0:
                lo, hi = (a, f, dphi), prev
                break
            # phi still falls steeply: extrapolate, by the cubic through prev and a
            low, high = (a + k * (a - prev[0]) for k in _EXTRAPOLATE)
            guess = _cubic_minimizer(prev[0], prev[1], prev[2], a, f, dphi)
            prev, a = (a, f, dphi), min(max(guess if guess is not None else high, low), high)

        # Algorithm 3.6: zoom into [lo, hi] (either may be the larger step); lo has the
        # lowest loss of the sufficient-decrease trials, and phi'(lo) (hi - lo) < 0
        while lo is not None and self._evaluations_left > 0:
            width = hi[0] - lo[0]
            low, high = sorted((lo[0] + _SAFEGUARD * width, hi[0] - _SAFEGUARD * width))
            guess = _cubic_minimizer(*lo, *hi) if math.isfinite(hi[1]) else None
            a = min(max(guess if guess is not None else lo[0] + 0.5 * width, low), high)
            if a == lo[0] or a == hi[0]:    # the interval is below floating-point resolution
                break
            f, dphi = phi(a)
            if not decreases(a, f) or f >= lo[1]:
                hi = (a, f, dphi)
                continue
            keep_if_best(a, f)
            if abs(dphi) <= -c2 * dphi0:
                return f
            if dphi * width >= 0:
                hi = lo
            lo = (a, f, dphi)

        # no Wolfe point within max_evaluations: the best trial, or the start
        a, f = best
        if here[0]:
            return f
        if a == 0:
            np.copyto(params, x0)
            np.copyto(grads, self._g)
            return None
        np.multiply(d, a, out=params)       # the trial's own arithmetic: the same point
        params += x0
        np.copyto(grads, self._g_best)
        return f


# Model files name their optimizer by a key of OPTIMIZERS (optimizers.py cannot import
# this module, which imports it).
OPTIMIZERS["lbfgs"] = LBFGS
