"""NeuralNetClassifier and NeuralNetRegressor beyond scikit-learn's own checks: the
issue's examples, scikit-learn's objective and stopping rules, frequency weights,
partial_fit, warm starts, image models, model files and copies."""

import copy
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import scratchnn as snn  # noqa: E402
from scratchnn.sklearn import NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=240, classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=classes,
                               class_sep=1.5, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_pipeline_and_grid_search_with_string_labels_in_processes():
    X, y = _data()
    labels = np.array(["cat", "dog", "eel"])[y]
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(16,), max_iter=60,
                                                              learning_rate_init=0.01, random_state=0))
    search = GridSearchCV(clf, {"neuralnetclassifier__alpha": [1e-4, 1e-1]}, cv=3, n_jobs=2)
    search.fit(X[:180], labels[:180])
    assert search.best_score_ > 0.75
    predicted = search.predict(X[180:])
    assert predicted.dtype == labels.dtype and set(predicted) <= {"cat", "dog", "eel"}
    assert np.mean(predicted == labels[180:]) > 0.7
    proba = search.predict_proba(X[180:])
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(search.classes_, ["cat", "dog", "eel"])


@pytest.mark.parametrize("labels", [np.array([3, 7]), np.array([False, True]),
                                    np.array(["no", "yes"])])
def test_any_label_type_comes_back_as_given(labels):
    X, y = _data(classes=2)
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=40, learning_rate_init=0.01,
                              random_state=0).fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, labels)
    predicted = clf.predict(X)
    assert predicted.dtype == labels.dtype
    assert np.mean(predicted == labels[y]) > 0.8
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.model_.output_shape == (1,)            # binary: one sigmoid output, as MLPClassifier
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X), rtol=1e-12)


def test_multilabel_and_multioutput_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5]).astype(int)
    clf = NeuralNetClassifier(hidden_layer_sizes=(32,), max_iter=150, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == (300, 3) and set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.predict_proba(X).shape == (300, 3)
    assert np.mean(clf.predict(X) == Y) > 0.9
    targets = np.column_stack([X[:, 0] * 2 + X[:, 1], np.sin(X[:, 2])])
    reg = NeuralNetRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01,
                             random_state=0).fit(X, targets)
    assert reg.predict(X).shape == (300, 2) and reg.predict(X).dtype == np.float64
    assert reg.score(X, targets) > 0.9
    single = NeuralNetRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, targets[:, 0])
    assert single.predict(X).shape == (300,)


@pytest.mark.parametrize("lowest", [0, 1])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("Estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_integer_weights_equal_repeated_samples_exactly(Estimator, solver, lowest):
    """Frequency weights: weight k is k copies, weight 0 no sample, bit for bit in float32,
    in mini-batches too (fit merges identical samples; see the module docstring), with or
    without weights of 0."""
    rng = np.random.default_rng(1)
    X, y = _data(n=60)
    if Estimator is NeuralNetRegressor:
        y = X[:, 0] - 2 * X[:, 1]
    weights = rng.integers(lowest, 4, size=len(X))
    settings = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=7, max_iter=15, random_state=3)
    weighted = Estimator(**settings).fit(X, y, sample_weight=weights)
    order = rng.permutation(int(weights.sum()))
    repeated = Estimator(**settings).fit(X.repeat(weights, axis=0)[order],
                                         y.repeat(weights, axis=0)[order])
    method = "predict_proba" if Estimator is NeuralNetClassifier else "predict"
    np.testing.assert_array_equal(getattr(weighted, method)(X), getattr(repeated, method)(X))
    assert weighted.loss_curve_ == repeated.loss_curve_


def test_weights_change_the_fit():
    X, y = _data(classes=2)
    plain = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    heavy = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(
        X, y, sample_weight=np.where(y == 1, 20.0, 1.0))
    assert heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.05


def _sklearn_objective(est, X, y, coefs, intercepts, alpha):
    """scikit-learn's objective at given weights: the mean loss plus alpha/(2n) ||W||^2
    (log loss of a classifier; half the mean squared error of a regressor)."""
    a = X
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = a @ W + b
        if i < len(coefs) - 1:
            a = np.tanh(a)
    penalty = alpha / (2 * len(X)) * sum(float(np.sum(W * W)) for W in coefs)
    if isinstance(est, (NeuralNetRegressor, MLPRegressor)):
        return 0.5 * np.mean((a.ravel() - y) ** 2) + penalty
    p = 1 / (1 + np.exp(-a.ravel()))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + penalty


def _weights_of(est):
    dense = [layer for layer in est.model_.layers if isinstance(layer, snn.Dense)]
    return [layer.W.copy() for layer in dense], [layer.b.copy() for layer in dense]


@pytest.mark.parametrize("Ours, Theirs", [(NeuralNetClassifier, MLPClassifier),
                                          (NeuralNetRegressor, MLPRegressor)])
def test_lbfgs_minimizes_scikit_learns_objective_from_the_same_start(Ours, Theirs):
    """Our loss_ is scikit-learn's objective at our weights; started from the same
    weights, our L-BFGS and scikit-learn's (scipy's) reach the same minimum."""
    X, y = _data(n=150, classes=2, seed=4)
    if Ours is NeuralNetRegressor:
        y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    settings = dict(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs", alpha=2.0,
                    random_state=0, tol=1e-10)
    ours = Ours(**settings, dtype="float64", max_iter=1, warm_start=True).fit(X, y)
    theirs = Theirs(**settings, max_iter=1, warm_start=True).fit(X, y)
    # both start from our initial weights
    start_W, start_b = _weights_of(Ours(**settings, dtype="float64", max_iter=1).fit(X, y))
    for layer, W, b in zip([l for l in ours.model_.layers if isinstance(l, snn.Dense)], start_W, start_b):
        layer.W[...], layer.b[...] = W, b
    theirs.coefs_ = [W.copy() for W in start_W]
    theirs.intercepts_ = [b.copy() for b in start_b]
    ours.set_params(max_iter=2000).fit(X, y)
    theirs.set_params(max_iter=2000).fit(X, y)
    W, b = _weights_of(ours)
    assert ours.loss_ == pytest.approx(_sklearn_objective(ours, X, y, W, b, 2.0), rel=1e-10)
    assert theirs.loss_ == pytest.approx(
        _sklearn_objective(theirs, X, y, theirs.coefs_, theirs.intercepts_, 2.0), rel=1e-8)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-5)
    np.testing.assert_allclose(ours.predict(X) if Ours is NeuralNetRegressor else ours.predict_proba(X),
                               theirs.predict(X) if Ours is NeuralNetRegressor else theirs.predict_proba(X),
                               atol=1e-3)


def test_stochastic_loss_curve_is_scikit_learns_objective():
    """After each epoch's steps the figure is the epoch's mean batch objective, as in
    MLPClassifier: with one full batch and lr tiny, it is the objective at the start."""
    X, y = _data(n=50, classes=2)
    est = NeuralNetClassifier(hidden_layer_sizes=(4,), activation="tanh", alpha=3.0, dtype="float64",
                              learning_rate_init=1e-12, max_iter=1, random_state=0)
    start = NeuralNetClassifier(**{**est.get_params(), "max_iter": 1, "learning_rate_init": 1e-300})
    W, b = _weights_of(start.fit(X, y))
    est.fit(X, y)
    assert est.loss_curve_[0] == pytest.approx(_sklearn_objective(est, X, y, W, b, 3.0), rel=1e-9)


def test_partial_fit_needs_classes_first_and_runs_one_epoch_per_call():
    X, y = _data()
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    first = clf.predict_proba(X)
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 2 and clf.t_ == len(X)   # as MLPClassifier
    assert not np.array_equal(first, clf.predict_proba(X))
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)
    assert not hasattr(NeuralNetClassifier(solver="lbfgs"), "partial_fit")
    reg = NeuralNetRegressor(hidden_layer_sizes=(8,), random_state=0)
    reg.partial_fit(X, X[:, 0]).partial_fit(X, X[:, 0])
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 2
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        NeuralNetClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_warm_start_continues_from_the_fitted_weights():
    X, y = _data()
    est = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, warm_start=True)
    est.fit(X, y)
    model, optimizer, weights = est.model_, est.model_.optimizer, est.model_.params.copy()
    est.fit(X, y)
    # as MLPClassifier: the same network goes on from its weights with a new optimizer;
    # n_iter_ counts this fit's epochs, loss_curve_ and t_ all of them
    assert est.model_ is model and est.model_.optimizer is not optimizer
    assert est.n_iter_ == 5 and len(est.loss_curve_) == 10 and est.t_ == 10 * len(X)
    assert not np.array_equal(weights, est.model_.params)
    assert est.loss_curve_[5] < est.loss_curve_[0]          # it went on, it did not start again
    # the second fit is a fresh fit started from the first one's weights
    again = clone(est).set_params(max_iter=5).fit(X, y)
    again.model_.params[...] = weights
    again.fit(X, y)
    np.testing.assert_array_equal(again.model_.params, est.model_.params)


def test_early_stopping_keeps_the_best_epoch():
    X, y = _data(n=400)
    est = NeuralNetClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                              max_iter=300, random_state=0, learning_rate_init=0.05).fit(X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_ < 300
    assert est.best_validation_score_ == max(est.validation_scores_)
    best = int(np.argmax(est.validation_scores_))
    assert best < est.n_iter_ - 1                  # it stopped after epochs without improvement
    # the weights kept are the best epoch's: those of the same run cut after that epoch
    cut = clone(est).set_params(max_iter=best + 1).fit(X, y)
    np.testing.assert_array_equal(cut.model_.params, est.model_.params)


def test_max_iter_without_convergence_warns_as_mlp_does():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        NeuralNetClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)


def test_a_convolutional_network_on_digit_images():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    def layers():
        return [snn.Conv2D(8, 3, activation="relu"), snn.MaxPool2D(2), snn.Flatten(), snn.Dense(10)]

    clf = NeuralNetClassifier(layers=layers, input_shape=(8, 8, 1), batch_size=64,
                              learning_rate_init=0.01, max_iter=15, random_state=0)
    clf.fit(X_train, y_train)
    assert isinstance(clf.model_.layers[0], snn.Conv2D) and clf.model_.input_shape == (8, 8, 1)
    assert clf.score(X_test, y_test) > 0.9


def test_the_fitted_model_saves_to_a_model_file(tmp_path):
    X, y = _data()
    labels = np.array(["a", "b", "c"])[y]
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, labels)
    path = clf.model_.save(tmp_path / "clf.npz")
    loaded = snn.load(path)
    np.testing.assert_array_equal(loaded.predict(X.astype(np.float32)), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X.astype(np.float32)), clf.predict_proba(X),
                               rtol=1e-6)


def test_copies_predict_and_train_alike():
    X, y = _data()
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(X, y)
    for twin in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    a, b = copy.deepcopy(clf), pickle.loads(pickle.dumps(clf))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    fresh = clone(clf)
    assert not hasattr(fresh, "model_") and fresh.get_params() == clf.get_params()


@pytest.mark.parametrize("setting, value, message", [
    ("solver", "newton", "solver must be one of"),
    ("hidden_layer_sizes", (10, 0), "hidden_layer_sizes"),
    ("activation", "swish", "activation must be one of"),
    ("alpha", -1.0, "alpha"),
    ("batch_size", 0, "batch_size"),
    ("learning_rate_init", 0.0, "learning_rate_init"),
    ("validation_fraction", 1.0, "validation_fraction"),
    ("dtype", "float16", "dtype"),
    ("input_shape", (3, 3), "input_shape"),
    ("layers", "dense", "layers must be"),
])
def test_bad_settings_are_refused_in_fit_naming_them(setting, value, message):
    X, y = _data()
    est = NeuralNetClassifier(**{setting: value})           # stored unchanged, no error yet
    assert est.get_params()[setting] == value
    with pytest.raises((ValueError, TypeError), match=message):
        est.fit(X, y)


def test_layers_whose_output_does_not_fit_the_targets_are_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"end the layers with\s+Dense\(3\)"):
        NeuralNetClassifier(layers=lambda: [snn.Dense(5)]).fit(X, y)
    with pytest.raises(ValueError, match="dropout > 0 needs a stochastic solver"):
        NeuralNetClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


def test_one_class_is_refused_naming_the_class():
    X, _ = _data()
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralNetClassifier().fit(X, np.ones(len(X)))


def test_dropout_and_float64():
    X, y = _data()
    est = NeuralNetClassifier(hidden_layer_sizes=(16,), dropout=0.3, dtype="float64", max_iter=30,
                              learning_rate_init=0.01, random_state=0).fit(X, y)
    assert any(isinstance(layer, snn.Dropout) for layer in est.model_.layers)
    assert est.model_.dtype == np.float64
    assert est.score(X, y) > 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(X)


def test_import_scratchnn_imports_no_optional_extra():
    import subprocess
    import sys
    code = ("import sys, scratchnn; print(sorted(m for m in ('sklearn', 'scipy', 'dask', 'distributed', "
            "'matplotlib', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import scratchnn.sklearn\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'scratchnn[sklearn]'" in out.stdout


def test_merged_weights_beyond_the_dtype_are_refused():
    X, y = _data(n=20, classes=2)
    X, y = np.vstack([X, X[:1]]), np.r_[y, y[:1]]
    weights = np.full(len(X), 3e38)
    with pytest.raises(ValueError, match="sample_weight: the weights of identical samples add up"):
        NeuralNetClassifier(max_iter=2).fit(X, y, sample_weight=weights)


def test_multilabel_loss_is_scikit_learns_sum_over_labels():
    """MLPClassifier's multi-label loss sums the labels' log losses: the first epoch's
    figure, from the same start with a learning rate too small to move, is the same."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    Y = (X[:, :3] > 0).astype(int)
    settings = dict(hidden_layer_sizes=(5,), activation="tanh", alpha=0.7, random_state=0,
                    max_iter=1, batch_size=40, learning_rate_init=1e-300)
    ours = NeuralNetClassifier(**settings, dtype="float64").fit(X, Y)
    theirs = MLPClassifier(**settings, warm_start=True).fit(X, Y)
    W, b = _weights_of(ours)
    theirs.coefs_, theirs.intercepts_ = W, b
    theirs.fit(X, Y)
    assert ours.loss_curve_[0] == pytest.approx(theirs.loss_curve_[-1], rel=1e-9)


def test_mlp_refusals_for_warm_start_classes_and_weightless_parts():
    X, y = _data()
    est = NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True, random_state=0)
    est.fit(X, y)
    with pytest.raises(ValueError, match="warm_start can only be used where y has the same classes"):
        est.fit(X[y != 2], y[y != 2])
    weights = np.zeros(len(X))
    weights[:3] = 1.0                         # too few to reach both parts of the split
    with pytest.raises(ValueError, match="early stopping's (training|validation) part has weight 0"):
        NeuralNetClassifier(early_stopping=True, validation_fraction=0.5, random_state=0).fit(
            X, y, sample_weight=weights)


def test_the_adaptive_schedule_still_warns_at_max_iter():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        NeuralNetClassifier(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1,
                            max_iter=3, random_state=0).fit(X, y)
