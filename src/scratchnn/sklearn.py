"""scikit-learn estimators: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

    from scratchnn.sklearn import NeuralNetClassifier
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(64, 32)))
    clf.fit(X_train, y_train).predict_proba(X_test)

Each estimator trains a ``scratchnn.Sequential`` (``model_`` once fitted) the way
scikit-learn's ``MLPClassifier``/``MLPRegressor`` train theirs, with their parameter
names and meanings: the same solvers (``"adam"``, ``"sgd"``, ``"lbfgs"``), the same
objective (the mean loss plus ``alpha / (2 n) ||W||^2`` over the weights, ``n`` the
batch's size or summed sample weights), the same stopping rules (``tol``,
``n_iter_no_change``, ``early_stopping``) and the same learned attributes
(``loss_curve_``, ``best_loss_``, ``validation_scores_``, ``n_iter_``, ``t_``). On top
of that: any stack of scratchnn layers (``layers=``, convolutional ones included, with
``input_shape=`` to reshape rows into images), ``dropout``, and ``dtype`` (float32 by
default).

scikit-learn is an optional extra (``pip install scratchnn[sklearn]``); ``import
scratchnn`` never imports this module. The estimators pass scikit-learn's own
``check_estimator`` suite with no expected failures (``tests/test_sklearn_checks.py``).

Two choices that scikit-learn's checks make visible:

* Sample weights are frequency weights, exactly: fitting with integer weights gives
  the same model, bit for bit, as fitting on the data with each sample repeated that
  many times (and a weight of 0 as leaving the sample out). To make that exact,
  ``fit`` merges identical samples (same features, same target) into one, weighted by
  their total weight, drops samples of weight 0, and orders the samples by a hash of
  their bytes, before training (after early stopping's validation split). Unweighted
  data without duplicates is used as given. With duplicates or weights, an epoch is a
  pass over the distinct samples in that order (``shuffle=False`` keeps it; ``t_``
  still counts the samples given).
* ``NeuralNetRegressor`` minimizes the mean squared error; scikit-learn's squared
  loss is half of it. ``loss_curve_`` and ``tol`` use scikit-learn's (halved) value, and
  ``alpha`` is scaled to match, so settings mean what they mean in ``MLPRegressor``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import warnings
from typing import Optional

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (check_classification_targets, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as error:           # pragma: no cover - depends on the installation
    raise ImportError("scratchnn.sklearn needs scikit-learn 1.6 or later: "
                      "pip install 'scratchnn[sklearn]'") from error

from . import training
from ._validation import check_bool, check_dtype, check_number, check_positive_int, describe
from .layers import Conv2D, Dense, Dropout, Flatten, Layer
from .lbfgs import LBFGS
from .losses import MSE, BinaryCrossEntropy, CrossEntropy
from .model import Sequential
from .optimizers import SGD, Adam
from .regularizers import L2, Regularizer

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

#: scikit-learn's activation names, and scratchnn's own
_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "sigmoid": "sigmoid", "leaky_relu": "leaky_relu", "elu": "elu", "gelu": "gelu"}
_SOLVERS = ("adam", "sgd", "lbfgs")
_SCHEDULES = ("constant", "invscaling", "adaptive")


class _NeuralNetBase(BaseEstimator):
    """What the classifier and the regressor share: settings, the network, the loops."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 layers=None, input_shape=None, dropout=0.0, dtype="float32"):
        # scikit-learn's convention: settings are stored as given and checked in fit.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.layers = layers
        self.input_shape = input_shape
        self.dropout = dropout
        self.dtype = dtype

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False          # dense arrays only: sparse X is refused
        tags.input_tags.allow_nan = False
        return tags

    # -------------------------------------------------------------- settings
    def _check_settings(self) -> dict:
        """Every setting checked (errors name it); returns the ones the loops use, converted."""
        s = {}
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {describe(self.solver)}")
        if self.learning_rate not in _SCHEDULES:
            raise ValueError(f"learning_rate must be one of {_SCHEDULES}, got "
                             f"{describe(self.learning_rate)}")
        if self.layers is None:
            if not (isinstance(self.activation, str) and self.activation in _ACTIVATIONS):
                raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got "
                                 f"{describe(self.activation)}")
            sizes = self.hidden_layer_sizes
            if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
                sizes = (sizes,)
            if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
                raise ValueError("hidden_layer_sizes must be a tuple of positive integers such "
                                 f"as (100,), got {describe(self.hidden_layer_sizes)}")
            s["hidden"] = tuple(check_positive_int(h, "hidden_layer_sizes") for h in sizes)
        elif not (callable(self.layers) or isinstance(self.layers, (list, tuple))):
            raise TypeError("layers must be a function returning a list of scratchnn layers "
                            f"(or that list), got {describe(self.layers)}")
        s["alpha"] = check_number("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            s["batch_size"] = check_positive_int(self.batch_size, "batch_size ('auto' or)")
        s["lr"] = check_number("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        s["power_t"] = check_number("power_t", self.power_t, 0.0)
        s["max_iter"] = check_positive_int(self.max_iter, "max_iter")
        s["max_fun"] = check_positive_int(self.max_fun, "max_fun")
        s["n_iter_no_change"] = check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        s["tol"] = check_number("tol", self.tol, 0.0)
        s["momentum"] = check_number("momentum", self.momentum, 0.0, 1.0)
        s["beta_1"] = check_number("beta_1", self.beta_1, 0.0, 1.0, high_open=True)
        s["beta_2"] = check_number("beta_2", self.beta_2, 0.0, 1.0, high_open=True)
        s["epsilon"] = check_number("epsilon", self.epsilon, 0.0, low_open=True)
        s["validation_fraction"] = check_number("validation_fraction", self.validation_fraction,
                                                0.0, 1.0, low_open=True, high_open=True)
        s["dropout"] = check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            s[name] = check_bool(getattr(self, name), name)
        if isinstance(self.verbose, (bool, np.bool_)) or isinstance(self.verbose, numbers.Integral):
            s["verbose"] = int(self.verbose)
        else:
            raise ValueError(f"verbose must be a bool or an int, got {describe(self.verbose)}")
        s["dtype"] = check_dtype(self.dtype)
        if self.solver == "lbfgs" and s["dropout"] > 0:
            raise ValueError("dropout > 0 needs a stochastic solver ('adam' or 'sgd'): L-BFGS "
                             "compares the losses of one objective, which dropout changes")
        return s

    # --------------------------------------------------------------- network
    def _sample_shape(self, n_features: int) -> tuple:
        """The shape one row of X takes for the network: ``input_shape`` (one -1 is
        inferred), or ``(n_features,)``."""
        if self.input_shape is None:
            return (n_features,)
        shape = self.input_shape
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not shape or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and (s >= 1 or s == -1)
                for s in shape) or list(shape).count(-1) > 1:
            raise ValueError("input_shape must be a tuple of positive integers (at most one -1, "
                             f"inferred), such as (28, 28, 1), got {describe(self.input_shape)}")
        known = math.prod(int(s) for s in shape if s != -1)
        if -1 in shape:
            if n_features % known:
                raise ValueError(f"X has {n_features} features, which input_shape={tuple(shape)} "
                                 f"cannot hold: {n_features} is not a multiple of {known}")
            shape = tuple(n_features // known if s == -1 else int(s) for s in shape)
        elif known != n_features:
            raise ValueError(f"input_shape={tuple(shape)} holds {known} values per sample, but X "
                             f"has {n_features} features")
        return tuple(int(s) for s in shape)

    def _as_input(self, X: np.ndarray) -> np.ndarray:
        """Rows of X shaped for the network (a view)."""
        return X.reshape((len(X), *self._input_shape))

    def _new_layers(self, settings: dict, n_outputs: int) -> list:
        """The network's layers: ``layers`` (called with ``n_outputs`` when it takes an
        argument), or Dense layers of ``hidden_layer_sizes`` and an output layer."""
        if self.layers is None:
            activation = _ACTIVATIONS[self.activation]
            layers = [Flatten()] if len(self._input_shape) > 1 else []
            for units in settings["hidden"]:
                layers.append(Dense(units, activation=activation))
                if settings["dropout"]:
                    layers.append(Dropout(settings["dropout"]))
            return layers + [Dense(n_outputs)]
        if callable(self.layers):
            try:
                takes_argument = bool(inspect.signature(self.layers).parameters)
            except (TypeError, ValueError):
                takes_argument = False
            layers = self.layers(n_outputs) if takes_argument else self.layers()
        else:
            import copy
            layers = copy.deepcopy(list(self.layers))   # fresh layers for every fit
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)) or not all(
                isinstance(layer, Layer) for layer in layers):
            raise TypeError(f"layers must give a list of scratchnn layers, got {describe(layers)}")
        return list(layers)

    def _new_model(self, settings: dict, n_features: int, n_outputs: int, rng) -> Sequential:
        self._input_shape = self._sample_shape(n_features)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        model = Sequential(self._new_layers(settings, n_outputs), seed=seed, dtype=settings["dtype"])
        model.build(self._input_shape)
        if model.output_shape != (n_outputs,):
            raise ValueError(f"the network built from layers outputs shape {model.output_shape} per "
                             f"sample, but the targets need ({n_outputs},): end the layers with "
                             f"Dense({n_outputs}), or let layers take n_outputs as its argument")
        model.compile(loss=self._new_loss(n_outputs))      # (_fit gives it its optimizer)
        return model

    @contextlib.contextmanager
    def _alpha_penalty(self):
        """While training: alpha's L2 penalty on every kernel (Dense and Conv2D weights, as
        MLPClassifier's alpha covers its coefs_), beside a layer's own regularizer, its
        coefficient set for each batch by ``_set_alpha``. Taken off afterwards, so that
        ``model_`` (and a model file saved from it) holds only the layers' own settings."""
        self._l2 = L2(0.0)
        kernels = [layer for layer in self.model_.layers if isinstance(layer, (Dense, Conv2D))]
        own = [layer.regularizers.get("W") for layer in kernels]
        for layer, previous in zip(kernels, own):
            layer.regularizers["W"] = self._l2 if previous is None else _Sum(previous, self._l2)
        try:
            yield
        finally:
            for layer, previous in zip(kernels, own):
                if previous is None:
                    del layer.regularizers["W"]
                else:
                    layer.regularizers["W"] = previous

    def _new_optimizer(self, s: dict):
        if self.solver == "adam":
            return Adam(s["lr"], beta1=s["beta_1"], beta2=s["beta_2"], eps=s["epsilon"])
        if self.solver == "sgd":
            # MLP's momentum is in [0, 1]; torch-style SGD's in [0, 1)
            momentum = min(s["momentum"], 1 - 1e-12)
            return SGD(s["lr"] * self._loss_scale, momentum=momentum,
                       nesterov=s["nesterovs_momentum"] and momentum > 0)
        # scikit-learn hands tol to scipy's L-BFGS-B as gtol, on its objective
        return LBFGS(history_size=10, tolerance_grad=s["tol"] / self._loss_scale)

    def _set_alpha(self, alpha: float, weight: float) -> None:
        """The L2 coefficient of one batch: scikit-learn's ``alpha / (2 n)`` with n the
        batch's weight, in this loss's scale."""
        self._l2.l2 = alpha / (2.0 * weight * self._loss_scale) if weight > 0 else 0.0

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Train on ``X, y`` (from scratch unless ``warm_start``); returns self.

        Args:
            X: ``(n_samples, n_features)`` numbers (rows reshaped to ``input_shape``).
            y: labels (classifier) or targets ``(n_samples,)`` / ``(n_samples, n_outputs)``.
            sample_weight: ``(n_samples,)`` non-negative frequency weights, or None.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _target_dtype(self, first: bool) -> np.dtype:
        """The dtype of the network's float targets: the new network's (``dtype``) on a
        first fit, the fitted one's when training goes on."""
        return check_dtype(self.dtype) if first else self.model_.dtype

    def _stochastic(self) -> bool:
        """Whether the solver trains in epochs (``partial_fit`` exists only then, as in
        scikit-learn)."""
        return self.solver in ("adam", "sgd")

    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        settings = self._check_settings()
        fitted = hasattr(self, "model_")
        first = not fitted or not (incremental or settings["warm_start"])
        X, y = validate_data(self, X, y, reset=first, dtype=settings["dtype"].type,
                             multi_output=True, y_numeric=not is_classifier(self),
                             ensure_min_samples=1)
        if not first and X.dtype != self.model_.dtype:
            X = X.astype(self.model_.dtype)
        target, n_outputs = self._encode_targets(_ravel_column(y), first, classes, incremental)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
            if not weights.any():
                raise ValueError(f"sample_weight must contain at least one non-zero weight: "
                                 f"all {len(weights)} are zero")
        if incremental and settings["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True")
        if first:
            self._random = check_random_state(self.random_state)
            self.model_ = self._new_model(settings, X.shape[1], n_outputs, self._random)
            self._start_training_state()
        elif n_outputs != self.model_.output_shape[-1]:
            raise ValueError(f"y has {n_outputs} outputs, but the fitted network has "
                             f"{self.model_.output_shape[-1]} (warm_start/partial_fit continue "
                             "the same network)")
        if not incremental or not fitted:
            # as MLPClassifier: every fit starts a new optimizer (warm_start keeps the weights
            # only), partial_fit goes on with the last one
            self.model_.optimizer = self._new_optimizer(settings)
        Xi = self._as_input(X)
        with training.quiet_overflow(), self._alpha_penalty():
            if self.solver == "lbfgs":
                self._fit_lbfgs(*_merge_duplicates(Xi, target, weights), settings)
            else:
                self._fit_stochastic(Xi, target, weights, settings, incremental)
        return self

    def _start_training_state(self) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.loss_ = None
        self._no_improvement_count = 0
        self.best_loss_ = None if self.early_stopping else math.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -math.inf if self.early_stopping else None
        self._best_params = None
        self.n_layers_ = len(self.model_.layers)
        self.n_outputs_ = self.model_.output_shape[-1]

    def _fit_stochastic(self, X, target, weights, s: dict, incremental: bool) -> None:
        """scikit-learn's ``_fit_stochastic``: epochs of mini-batches until the loss (or
        the validation score) stops improving, or ``max_iter``; one epoch in ``partial_fit``."""
        model = self.model_
        early_stopping = s["early_stopping"]
        X_val = t_val = w_val = None
        if early_stopping:
            X, X_val, target, t_val, weights, w_val = self._split_validation(X, target, weights, s)
            for part, w in (("training", weights), ("validation", w_val)):
                if w is not None and not w.any():
                    raise ValueError(f"sample_weight: every sample of early stopping's {part} part "
                                     "has weight 0; give more samples a non-zero weight, or "
                                     "another random_state or validation_fraction")
        n_rows = len(X)                        # t_ counts samples, as in scikit-learn
        X, target, weights = _merge_duplicates(X, target, weights)
        n = len(X)
        batch_size = min(200, n) if "batch_size" not in s else min(s["batch_size"], n)
        if "batch_size" in s and s["batch_size"] > n:
            warnings.warn(f"batch_size={s['batch_size']} is larger than the {n} training samples; "
                          f"using batch_size={n}", UserWarning, stacklevel=4)
        total_weight = n if weights is None else float(np.sum(weights, dtype=np.float64))
        self.n_iter_ = 0
        try:
            for _ in range(1 if incremental else s["max_iter"]):
                order = model.rng.permutation(n) if s["shuffle"] else np.arange(n)
                accumulated = 0.0
                for start in range(0, n, batch_size):
                    index = order[start:start + batch_size]
                    wb = None if weights is None else weights[index]
                    batch_weight = len(index) if wb is None else float(np.sum(wb, dtype=np.float64))
                    self._set_alpha(s["alpha"], batch_weight)
                    try:
                        loss, _ = training.train_step(model, X[index], target[index], wb)
                    except training.DivergenceError as error:
                        raise training.DivergenceError(f"training diverged in iteration "
                                                       f"{self.n_iter_ + 1}: {error}") from None
                    accumulated += loss * batch_weight
                self.n_iter_ += 1
                self.t_ += n_rows
                self.loss_ = accumulated / total_weight * self._loss_scale
                self.loss_curve_.append(self.loss_)
                if s["verbose"]:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if self._count_no_improvement(early_stopping, X_val, t_val, w_val, s):
                    self._best_params = model.params.copy()
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    model.optimizer.lr = s["lr"] * self._loss_scale / (self.t_ + 1) ** s["power_t"]
                if self._no_improvement_count > s["n_iter_no_change"]:
                    what = "Validation score" if early_stopping else "Training loss"
                    message = (f"{what} did not improve more than tol={s['tol']:f} for "
                               f"{s['n_iter_no_change']} consecutive epochs.")
                    if self.solver == "sgd" and self.learning_rate == "adaptive":
                        lr = model.optimizer.lr / self._loss_scale
                        if lr > 1e-6:
                            model.optimizer.lr /= 5.0
                            self._no_improvement_count = 0
                            if s["verbose"]:
                                print(message + f" Setting learning rate to {lr / 5.0:f}")
                        else:
                            if s["verbose"]:
                                print(message + " Learning rate too small. Stopping.")
                            break
                    else:
                        if s["verbose"]:
                            print(message + " Stopping.")
                        break
                if incremental:
                    break
                if self.n_iter_ == s["max_iter"]:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({s['max_iter']}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=4)
        except KeyboardInterrupt:                 # as MLPClassifier: stop, keep a usable model
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if early_stopping and self._best_params is not None:   # keep the best epoch's weights
            model.params[...] = self._best_params
            model.params_max = None

    def _count_no_improvement(self, early_stopping, X_val, t_val, w_val, s) -> bool:
        """scikit-learn's rule: count the epochs without an improvement of more than tol
        (of the validation score with early stopping, else of the training loss).
        Returns whether this epoch is the best so far."""
        if early_stopping:
            score = self._score_prepared(X_val, t_val, w_val)
            self.validation_scores_.append(score)
            if s["verbose"]:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + s["tol"]:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                return True
            return False
        if self.loss_curve_[-1] > self.best_loss_ - s["tol"]:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]
            return True
        return False

    def _split_validation(self, X, target, weights, s):
        """scikit-learn's split: ``validation_fraction`` of the samples, stratified for a
        binary or multi-class target (not multi-label), drawn from the estimator's random state."""
        stratify = target if self._stratify else None
        arrays = [X, target] + ([weights] if weights is not None else [])
        try:
            parts = train_test_split(*arrays, random_state=self._random,
                                     test_size=s["validation_fraction"], stratify=stratify)
        except ValueError as error:
            raise ValueError(f"early_stopping: validation_fraction={s['validation_fraction']} of "
                             f"{len(X)} samples cannot be split off: {error}") from None
        X_train, X_val, t_train, t_val = parts[:4]
        w_train, w_val = parts[4:] if weights is not None else (None, None)
        if len(X_val) < 2:
            raise ValueError(f"early_stopping: validation_fraction={s['validation_fraction']} of "
                             f"{len(X)} samples leaves {len(X_val)} for validation; it needs at "
                             "least 2 (raise validation_fraction or give more data)")
        return X_train, X_val, t_train, t_val, w_train, w_val

    def _fit_lbfgs(self, X, target, weights, s: dict) -> None:
        """scikit-learn's ``_fit_lbfgs``: L-BFGS on the full batch until it converges, or
        ``max_iter`` iterations, or ``max_fun`` evaluations (of this fit)."""
        model = self.model_
        optimizer = model.optimizer
        optimizer.reset()
        self._set_alpha(s["alpha"], len(X) if weights is None else float(np.sum(weights, dtype=np.float64)))
        closure = training.full_batch_closure(model, X, target, weights)
        iterations, interrupted = 0, False
        try:
            while iterations < s["max_iter"]:
                self.loss_ = optimizer.iterate(model.params, model.grads, closure) * self._loss_scale
                self.loss_curve_.append(self.loss_)
                iterations += 1
                if s["verbose"]:
                    print(f"Iteration {iterations}, loss = {self.loss_:.8f}")
                if optimizer.converged or optimizer.n_evaluations >= s["max_fun"]:
                    break
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
            interrupted = True
        model.params_max = None
        self.n_iter_ = iterations
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        if not optimizer.converged and not interrupted:
            limit = ("max_fun" if optimizer.n_evaluations >= s["max_fun"] else "max_iter")
            warnings.warn(f"lbfgs failed to converge after {iterations} iterations: {limit} "
                          "reached; increase it or scale the data", ConvergenceWarning, stacklevel=4)

    # -------------------------------------------------------------- predict
    def _outputs(self, X) -> np.ndarray:
        """The network's raw outputs for X, checked as scikit-learn checks inputs."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.model_.dtype.type)
        return self.model_.output(self._as_input(X))

    def _score_prepared(self, X, target, weights) -> float:
        raise NotImplementedError

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


class NeuralNetClassifier(ClassifierMixin, _NeuralNetBase):
    """A neural-network classifier with scikit-learn's conventions (``MLPClassifier``'s
    parameters, plus ``layers``, ``input_shape``, ``dropout`` and ``dtype``).

    Labels may be of any type scikit-learn accepts (strings, ints, booleans), with two
    or more classes; a 2-D 0/1 indicator ``y`` is multi-label. The network ends in one
    output per class with softmax cross-entropy, or, for two classes and for
    multi-label targets, in sigmoid outputs with binary cross-entropy, as in
    ``MLPClassifier``.

    Learned attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_``),
    ``model_`` (the trained ``scratchnn.Sequential``: ``model_.save(path)`` writes a
    model file that predicts the same labels without this wrapper), ``n_iter_``, ``t_``,
    ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @available_if(_NeuralNetBase._stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X, y``, continuing from the current weights (the first call
        builds the network and needs ``classes``, every label y will ever hold). Only for
        the stochastic solvers, as in scikit-learn."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _encode_targets(self, y, first: bool, classes, incremental: bool):
        """Targets for the network from labels: int codes (multi-class), 0/1 floats
        (binary, multi-label); sets ``classes_`` on the first fit."""
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"{type(self).__name__} supports binary, multi-class and multi-label "
                             f"(indicator) targets, got y of type {kind!r}")
        multilabel = kind == "multilabel-indicator"
        if first:
            if incremental:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit: "
                                     "every label y may hold")
                self.classes_ = np.arange(y.shape[1]) if multilabel else unique_labels(classes)
            else:
                self.classes_ = np.arange(y.shape[1]) if multilabel else unique_labels(y)
            self._multilabel = multilabel
            if not multilabel and len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, and y "
                                 f"has only one class: {self.classes_[0]!r}")
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r:.200} differs from the classes of the first "
                             f"call, {self.classes_!r:.200}")
        elif not incremental and not multilabel and not np.array_equal(unique_labels(y), self.classes_):
            raise ValueError(f"warm_start can only be used where y has the same classes as in the "
                             f"previous call to fit: previously {self.classes_!r:.200}, y has "
                             f"{unique_labels(y)!r:.200}")
        if multilabel != self._multilabel:
            raise ValueError("y is multi-label now and was not before (or the reverse); "
                             "fit again from scratch")
        if multilabel:
            if y.shape[1] != len(self.classes_):
                raise ValueError(f"y has {y.shape[1]} labels per sample, expected {len(self.classes_)}")
            self._stratify = False
            return y.astype(self._target_dtype(first)), y.shape[1]
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels that are not in classes_ {self.classes_!r:.200}: "
                             f"{unknown[:5]!r}")
        codes = np.searchsorted(self.classes_, y)
        self._stratify = len(self.classes_) == 2      # as scikit-learn: one output only
        if len(self.classes_) == 2:          # one sigmoid output: targets (n, 1)
            return codes.astype(self._target_dtype(first)).reshape(-1, 1), 1
        return codes.astype(np.int64), len(self.classes_)

    def _new_loss(self, n_outputs: int):
        binary = self._multilabel or len(self.classes_) == 2
        self.out_activation_ = "logistic" if binary else "softmax"
        # scikit-learn's log loss sums over the labels of a multi-label target; ours averages
        self._loss_scale = float(n_outputs) if self._multilabel else 1.0
        return BinaryCrossEntropy() if binary else CrossEntropy()

    def _new_model(self, settings, n_features, n_outputs, rng):
        model = super()._new_model(settings, n_features, n_outputs, rng)
        if not self._multilabel:
            model.classes = self.classes_       # a saved model_ predicts these labels
        return model

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` (float64), in the order of ``classes_``."""
        z = self._outputs(X).astype(np.float64)
        if self._multilabel:
            return BinaryCrossEntropy.probabilities(z)
        if len(self.classes_) == 2:
            p = BinaryCrossEntropy.probabilities(z[:, 0])
            return np.column_stack([1.0 - p, p])
        return CrossEntropy.probabilities(z)

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``, computed without taking the log of 0."""
        z = self._outputs(X).astype(np.float64)
        from .functional import log_softmax, log_sigmoid
        if self._multilabel:
            return log_sigmoid(z)
        if len(self.classes_) == 2:
            return np.column_stack([log_sigmoid(-z[:, 0]), log_sigmoid(z[:, 0])])
        return log_softmax(z, axis=-1)

    def predict(self, X) -> np.ndarray:
        """Labels: ``classes_[argmax(predict_proba)]``, or a 0/1 indicator matrix for
        multi-label targets."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def _score_prepared(self, X, target, weights) -> float:
        output = self.model_.output(X)
        if len(self.classes_) == 2 and not self._multilabel:
            predicted, truth = output[:, 0] > 0, target[:, 0] > 0.5
        elif self._multilabel:
            predicted, truth = output > 0, target > 0.5
            exact = np.all(predicted == truth, axis=1)
            return float(np.average(exact, weights=weights))
        else:
            predicted, truth = np.argmax(output, axis=1), target
        return float(np.average(predicted == truth, weights=weights))


class NeuralNetRegressor(RegressorMixin, _NeuralNetBase):
    """A neural-network regressor with scikit-learn's conventions (``MLPRegressor``'s
    parameters, plus ``layers``, ``input_shape``, ``dropout`` and ``dtype``).

    ``y`` of shape ``(n_samples,)`` gives predictions ``(n_samples,)``; ``(n_samples,
    n_outputs)`` several outputs. The network minimizes the mean squared error (see the
    module docstring for how ``loss_curve_`` and ``alpha`` match scikit-learn's halved
    squared loss). Learned attributes as in ``NeuralNetClassifier``, without ``classes_``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @available_if(_NeuralNetBase._stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``, continuing from the current weights (the first call
        builds the network). Only for the stochastic solvers, as in scikit-learn."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _encode_targets(self, y, first: bool, classes, incremental: bool):
        if first:
            self._single_output = y.ndim == 1
        elif (y.ndim == 1) != self._single_output:
            raise ValueError("y has a different number of outputs than in the first fit")
        self._stratify = False
        target = y.reshape(len(y), -1).astype(self._target_dtype(first))
        return target, target.shape[1]

    def _new_loss(self, n_outputs: int):
        self.out_activation_ = "identity"
        self._loss_scale = 0.5       # scikit-learn's squared loss is half the MSE
        return MSE()

    def predict(self, X) -> np.ndarray:
        """Predicted values: ``(n_samples,)``, or ``(n_samples, n_outputs)`` when fitted on
        several outputs."""
        output = self._outputs(X).astype(np.float64)     # scikit-learn's regressors return float64
        return output[:, 0] if self._single_output else output

    def _score_prepared(self, X, target, weights) -> float:
        from sklearn.metrics import r2_score
        output = self.model_.output(X)
        return float(r2_score(target, output, sample_weight=weights))


class _Sum(Regularizer):
    """Two regularizers of one parameter: a layer's own and the estimator's alpha."""

    def __init__(self, first: Regularizer, second: Regularizer) -> None:
        self.first, self.second = first, second

    def penalty(self, W: np.ndarray) -> float:
        return self.first.penalty(W) + self.second.penalty(W)

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        self.first.add_gradient(W, dW)
        self.second.add_gradient(W, dW)

    def get_config(self) -> dict:
        return {}


# ------------------------------------------------------------------ helpers
def _ravel_column(y: np.ndarray) -> np.ndarray:
    """A column ``(n, 1)`` as ``(n,)``, with scikit-learn's DataConversionWarning (as
    MLPClassifier and MLPRegressor do); other shapes unchanged."""
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples,), for example using ravel().",
                      DataConversionWarning, stacklevel=4)
        return y.ravel()
    return y


def _row_hashes(a: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes (integer arithmetic wraps; it never warns)."""
    words = np.ascontiguousarray(a).reshape(len(a), -1).view(np.uint8)
    pad = (-words.shape[1]) % 4
    if pad:
        words = np.pad(words, ((0, 0), (0, pad)))
    words = words.view(np.uint32)
    multipliers = (np.arange(1, words.shape[1] + 1, dtype=np.uint64)
                   * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    hashes = np.zeros(len(a), dtype=np.uint64)
    for start in range(0, len(a), 4096):        # a few MiB of temporaries at a time
        block = words[start:start + 4096].astype(np.uint64)
        block *= multipliers
        hashes[start:start + 4096] = block.sum(axis=1, dtype=np.uint64)
    return hashes


def _merge_duplicates(X: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray]):
    """Identical samples (features and target) merged into one whose weight is their
    total weight, and samples of weight 0 dropped, in an order that depends only on the
    samples: the order of their hashes (so that weights and repeats train identically:
    see the module docstring). Unweighted data without duplicates is returned as it is.
    A merged weight beyond the dtype (two weights of 3e38 in float32) is an error."""
    hashes = _row_hashes(X) * np.uint64(31) + _row_hashes(target)
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    if len(starts) == len(X) and weights is None:
        return X, target, weights
    sizes = np.diff(np.r_[starts, len(X)])
    if np.any(sizes > 1):
        # the samples of each group of equal hashes must be equal: compare those only
        shared = sizes > 1
        members = order[np.repeat(shared, sizes)]
        firsts = order[np.repeat(starts[shared], sizes[shared])]
        if not (np.array_equal(X[members], X[firsts]) and np.array_equal(target[members], target[firsts])):
            # two different samples with one hash: group by the bytes themselves (slower, exact)
            rows = np.concatenate([np.ascontiguousarray(X).reshape(len(X), -1).view(np.uint8),
                                   np.ascontiguousarray(target).reshape(len(X), -1).view(np.uint8)],
                                  axis=1)
            inverse = np.unique(rows, axis=0, return_inverse=True)[1].ravel()
            order = np.argsort(inverse, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    keep = order[starts]
    base = np.ones(len(X)) if weights is None else weights.astype(np.float64)
    merged = np.add.reduceat(base[order], starts)
    if not np.all(merged <= float(np.finfo(X.dtype).max)):
        raise ValueError(f"sample_weight: the weights of identical samples add up to more than "
                         f"the largest {X.dtype.name} ({float(merged.max()):.3g}); scale the weights")
    nonzero = merged > 0
    return X[keep[nonzero]], target[keep[nonzero]], merged[nonzero].astype(X.dtype)
