"""What Keras and PyTorch users type, and the mistakes they make, at the model level:
Dense(activation=), learning_rate=, model[0], summary before fit, string labels,
register_layer, a Softmax before cross_entropy, Dense(1) with cross_entropy, one
sample instead of a batch, layers of the user's that return the wrong thing, absurd
sizes, gradcheck's own arguments."""

import warnings

import numpy as np
import pytest

import scratchnn as snn
from scratchnn.layers import ACTIVATIONS, LAYERS
from scratchnn.optimizers import OPTIMIZERS


def blobs(n=60, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return rng.normal(scale=3.0, size=(classes, 4))[y] + rng.normal(size=(n, 4)), y


# ------------------------------------------------------------ Dense(activation=)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_dense_with_an_activation_equals_dense_then_the_activation(name):
    """Same outputs and the same gradients as the two layers, for every activation
    name; the gradients are checked against central differences too."""
    X, y = blobs()
    fused = snn.Sequential([snn.Dense(5, activation=name), snn.Dense(3)], seed=1, dtype="float64")
    split = snn.Sequential([snn.Dense(5), ACTIVATIONS[name](), snn.Dense(3)], seed=1, dtype="float64")
    for model in (fused, split):
        model.compile("cross_entropy", snn.SGD(lr=0.1))
    np.testing.assert_allclose(fused.output(X), split.output(X), rtol=1e-12, atol=1e-12)
    fused.fit(X, y, epochs=2, batch_size=20, shuffle=False)
    split.fit(X, y, epochs=2, batch_size=20, shuffle=False)
    np.testing.assert_allclose(fused.params, split.params, rtol=1e-10, atol=1e-12)
    errors = snn.gradcheck(fused, X[:4], y[:4])
    assert max(errors.values()) < 1e-6, errors


def test_dense_activation_is_saved_and_validated(tmp_path):
    X, y = blobs()
    model = snn.Sequential([snn.Dense(5, activation="ReLU"), snn.Dense(3)], seed=0)
    model.fit(X, y, loss="cross_entropy", epochs=1)
    assert model[0].activation == "relu" and model[0].get_config()["activation"] == "relu"
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(snn.load(tmp_path / "m.npz").output(X), model.output(X))
    for bad in ("relu6", 3, snn.ReLU()):
        with pytest.raises(ValueError, match="activation must be None or one of"):
            snn.Dense(4, activation=bad)


# -------------------------------------------------------------- learning_rate=
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_learning_rate_is_another_name_for_lr(name):
    cls = OPTIMIZERS[name]
    assert cls(learning_rate=0.25).lr == 0.25
    assert cls(learning_rate=0.25).get_config() == cls(lr=0.25).get_config()
    with pytest.raises(ValueError, match="pass lr or learning_rate"):
        cls(lr=0.5, learning_rate=0.25)
    with pytest.raises(ValueError, match="learning_rate must be a number in"):
        cls(learning_rate=-1.0)


# ------------------------------------------------------- indexing and summary
def test_model_indexing_by_position_and_name():
    model = snn.Sequential([snn.Dense(4), snn.ReLU(), snn.Dense(2)], input_shape=(3,))
    assert model[0] is model.layers[0] and model[-1] is model.layers[2] and len(model) == 3
    assert model["re_lu_0"] is model.layers[1] and list(model) == model.layers
    with pytest.raises(IndexError, match="layer index 3 is out of range for a model of 3 layers"):
        model[3]
    with pytest.raises(KeyError, match="no layer named 'dense_9'"):
        model["dense_9"]
    with pytest.raises(TypeError, match="model.layers"):
        model[0:2]


def test_summary_before_the_first_fit_when_the_input_shape_is_given():
    lines = []
    model = snn.Sequential([snn.Dense(4, activation="relu"), snn.Dense(2)], input_shape=(3,))
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "input (None, 3)" in text and "dense_0 (Dense)  (None, 4)         16" in text
    assert "Total params: 26" in text
    assert snn.Sequential([snn.Dense(2)], input_shape=5).input_shape == (5,)
    for bad, error in [((0,), ValueError), ("784", TypeError), ((), ValueError), ((2.5,), ValueError)]:
        with pytest.raises(error, match="input_shape"):
            snn.Sequential([snn.Dense(2)], input_shape=bad)
    with pytest.raises(TypeError, match=r"Sequential\(\[Dense\(...\)\]\)"):
        snn.Sequential(snn.Dense(2))


# -------------------------------------------------------------- string labels
def test_string_labels_are_encoded_and_predictions_speak_them(tmp_path):
    X, codes = blobs()
    names = np.array(["cat", "dog", "bird"])[codes]          # sorted: bird, cat, dog
    model = snn.Sequential([snn.Dense(16, activation="relu"), snn.Dense(3)], seed=0)
    model.fit(X, names.tolist(), loss="cross_entropy", optimizer=snn.Adam(lr=0.05), epochs=30)
    assert model.classes.tolist() == ["bird", "cat", "dog"]
    assert model.evaluate(X, names)["accuracy"] == 1.0
    predicted = model.predict(X)
    assert predicted.tolist() == names.tolist()
    model.save(tmp_path / "m.npz")
    assert snn.load(tmp_path / "m.npz").predict(X).tolist() == names.tolist()
    # later data is mapped through model.classes; unknown labels are named
    with pytest.raises(ValueError, match=r"not in model.classes \['bird', 'cat', 'dog'\]: \['fish'\]"):
        model.evaluate(X[:2], ["cat", "fish"])
    # integer labels stay codes 0..k-1 (indices into model.classes)
    assert model.evaluate(X, np.searchsorted(model.classes, names))["accuracy"] == 1.0


def test_string_labels_for_binary_cross_entropy_and_validation_data():
    X, codes = blobs(classes=2)
    names = np.where(codes == 1, "yes", "no")
    model = snn.Sequential([snn.Dense(8, activation="tanh"), snn.Dense(1)], seed=0)
    history = model.fit(X, names, loss="binary_cross_entropy", optimizer=snn.Adam(lr=0.05),
                        epochs=20, validation_data=(X[:10], names[:10]))
    assert model.classes.tolist() == ["no", "yes"]
    predicted = model.predict(X)
    assert set(predicted.tolist()) <= {"no", "yes"}
    assert history.history["val_accuracy"][-1] == np.mean(predicted[:10] == names[:10])
    assert model.evaluate(X, names)["accuracy"] == np.mean(predicted == names) > 0.8


def test_label_counts_and_kinds_that_cannot_be_encoded():
    X, codes = blobs()
    model = snn.Sequential([snn.Dense(4)], seed=0)
    with pytest.raises(ValueError, match=r"y has 3 distinct labels \['a', 'b', 'c'\], but the "
                                         r"model has 4 outputs, for 4 classes"):
        model.fit(X, np.array(["a", "b", "c"])[codes], loss="cross_entropy")
    assert model.classes is None                         # nothing set by a fit that failed
    with pytest.raises(TypeError, match="mixes label types"):
        model.fit(X[:2], np.array(["a", 1], dtype=object), loss="cross_entropy")
    with pytest.raises(ValueError, match="missing label"):
        snn.Sequential([snn.Dense(2)]).fit(X[:3], np.array(["a", None, "b"], dtype=object),
                                           loss="cross_entropy")
    with pytest.raises(ValueError, match="y has 2 samples but X has 3"):
        snn.Sequential([snn.Dense(2)]).fit(X[:3], ["a", "b"], loss="cross_entropy")


# ------------------------------------------------------------- register_layer
def test_register_layer_lets_model_files_hold_a_layer_of_your_own(tmp_path):
    @snn.register_layer
    class Doubling(snn.Layer):
        """y = 2x;  dL/dx = 2g."""

        def forward(self, x, training=False):
            self._cache = True
            return 2 * x

        def backward(self, grad_out):
            self._saved()
            return 2 * grad_out

    try:
        assert LAYERS["Doubling"] is Doubling and snn.register_layer(Doubling) is Doubling
        model = snn.Sequential([snn.Dense(3), Doubling(), snn.Dense(2)], seed=0)
        X, _ = blobs()
        model.build((4,))
        model.save(tmp_path / "m.npz")
        np.testing.assert_array_equal(snn.load(tmp_path / "m.npz").output(X), model.output(X))

        class Other(snn.Layer):
            pass
        Other.__name__ = "Dense"
        with pytest.raises(ValueError, match="'Dense' is taken by scratchnn.layers.dense.Dense"):
            snn.register_layer(Other)
        with pytest.raises(TypeError, match="subclass of scratchnn.Layer"):
            snn.register_layer(int)
    finally:
        LAYERS.pop("Doubling", None)


def test_add_param_takes_an_initializer_name():
    class Scale(snn.Layer):
        def build(self, input_shape, rng):
            self.add_param("gamma", input_shape, "ones", 1, 1)
            return input_shape

        def forward(self, x, training=False):
            self._cache = x
            return x * self.gamma

        def backward(self, grad_out):
            x = self._saved()
            np.sum(grad_out * x, axis=0, out=self.dgamma)
            return grad_out * self.gamma

    model = snn.Sequential([Scale()], input_shape=(3,))
    np.testing.assert_array_equal(model.params, np.ones(3))
    assert max(snn.gradcheck(Scale(), np.random.default_rng(0).normal(size=(2, 3))).values()) < 1e-8

    class BadInit(Scale):
        def build(self, input_shape, rng):
            self.add_param("gamma", input_shape, "uniform_ones", 1, 1)
            return input_shape

    with pytest.raises(ValueError, match="the initializer of 'gamma' must be a callable or one of"):
        snn.Sequential([BadInit()], input_shape=(3,))

    class BadShape(Scale):
        def build(self, input_shape, rng):
            self.add_param("gamma", (3, 0), "ones", 1, 1)
            return input_shape

    with pytest.raises(ValueError, match="the shape of 'gamma' must be a tuple of positive integers"):
        snn.Sequential([BadShape()], input_shape=(3,))


# ---------------------------------------------------------- mistakes, refused
@pytest.mark.parametrize("layers, loss, message", [
    (lambda: [snn.Dense(3), snn.Softmax()], "cross_entropy", r"the last layer, Softmax\(\), would apply it twice"),
    (lambda: [snn.Dense(3, activation="softmax")], "cross_entropy", "activation='softmax' would apply it twice"),
    (lambda: [snn.Dense(1), snn.Sigmoid()], "binary_cross_entropy", "Sigmoid"),
    (lambda: [snn.Dense(1, activation="sigmoid")], "binary_cross_entropy", "sigmoid"),
])
def test_the_activation_that_the_loss_applies_itself_is_refused(layers, loss, message):
    """A Keras habit that silently applied softmax twice (loss 1.5 instead of 0.09
    on digits, probabilities capped near 1/k)."""
    X, codes = blobs(classes=2)
    with pytest.raises(ValueError, match=message):
        snn.Sequential(layers()).fit(X, codes, loss=loss)
    with pytest.raises(ValueError, match="remove it"):
        snn.Sequential(layers()).compile(loss)
    snn.Sequential(layers()).compile("mse")              # fine for another loss


def test_one_output_with_cross_entropy_explains_the_two_ways_out():
    X, codes = blobs(classes=2)
    with pytest.raises(ValueError, match=r"cross_entropy needs one output per class.*Dense\(2\).*"
                                         r"binary_cross_entropy"):
        snn.Sequential([snn.Dense(1)]).fit(X, codes, loss="cross_entropy")


def test_one_sample_instead_of_a_batch_suggests_reshape():
    X, codes = blobs()
    model = snn.Sequential([snn.Dense(3)], seed=0)
    model.fit(X, codes, loss="cross_entropy")
    for one in (X[0], X[0].tolist()):
        with pytest.raises(ValueError, match=r"one sample of shape \(4,\); for one sample use "
                                             r"X.reshape\(1, -1\)"):
            model.predict(one)
    assert model.predict(X[0].reshape(1, -1)).shape == (1,)


class Returns(snn.Layer):
    """A user's layer whose forward or backward returns what ``bad`` says."""

    def __init__(self, where, bad):
        super().__init__()
        self.where, self.bad = where, bad

    def forward(self, x, training=False):
        self._cache = x
        return self.bad(x) if self.where == "forward" else x

    def backward(self, grad_out):
        self._saved()
        return self.bad(grad_out) if self.where == "backward" else grad_out


@pytest.mark.parametrize("where", ["forward", "backward"])
@pytest.mark.parametrize("bad, got", [
    (lambda a: None, "got None"),
    (lambda a: a[:, :1], r"got shape \(\d+, 1\)"),
    (lambda a: a.astype(np.float64), "got an array of dtype float64"),
    (lambda a: a.tolist(), "got a list"),
])
def test_a_layer_returning_the_wrong_thing_is_named(where, bad, got):
    X, codes = blobs()
    model = snn.Sequential([snn.Dense(3), Returns(where, bad), snn.Dense(2)], seed=0)
    what = "its output" if where == "forward" else "its gradient dL/dx"
    with pytest.raises(ValueError, match=rf"layer 'returns_0' \(Returns\): {where}\(\) must return "
                                         rf"{what} as a float32 array of shape \(N, 3\), {got}"):
        model.fit(X, codes % 2, loss="cross_entropy")


def test_absurd_layer_sizes_are_refused_before_allocating():
    """`scratchnn train xor --hidden 1000000000000` printed a 14.6 TiB MemoryError."""
    model = snn.Sequential([snn.Dense(10**12), snn.Dense(1)])
    with pytest.raises(ValueError, match=r"'dense_0' alone has 3,000,000,000,000.*needs about "
                                         r".*TiB.*use smaller layers"):
        model.fit(np.zeros((4, 2)), np.zeros(4), loss="mse")
    assert not model.built


# ------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("eps", [0, -1e-6, float("nan"), float("inf"), 2.0, "1e-6", None])
def test_gradcheck_refuses_a_bad_step(eps):
    with pytest.raises(ValueError, match=r"eps must be a number in \(0, 1\]"):
        snn.gradcheck(snn.Dense(2), np.ones((2, 3)), eps=eps)


def test_gradcheck_checks_y():
    X = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match="y has 2 samples but X has 4"):
        snn.gradcheck(snn.Dense(2), X, [0, 1], loss="cross_entropy")
    with pytest.raises(ValueError, match="y is required"):
        snn.gradcheck(snn.Dense(2), X, loss="mse")
    with pytest.raises(ValueError, match="seed must be"):
        snn.gradcheck(snn.Dense(2), X, seed=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        errors = snn.gradcheck(snn.Dense(2), X, [0, 1, 1, 0], loss="cross_entropy")
    assert max(errors.values()) < 1e-7


def test_classes_that_do_not_fit_the_outputs_are_refused_at_predict():
    """model.classes set by hand to a list shorter than the outputs gave an IndexError."""
    X, codes = blobs()
    model = snn.Sequential([snn.Dense(3)], seed=0)
    model.fit(X, codes, loss="cross_entropy")
    model.classes = ["a", "b"]
    with pytest.raises(ValueError, match="model.classes"):
        model.predict(X)
    with pytest.raises(ValueError, match="model.classes"):
        model.evaluate(X, ["a", "b", "a"] * 20)
    model.classes = np.array(["x", "y", "z"])
    assert set(model.predict(X).tolist()) <= {"x", "y", "z"}


def test_sizes_that_overflow_int64_are_refused_by_name():
    """Shape products are Python ints: Flatten of (2^21, 2^21, 2^22) wrapped to 0 features."""
    for shape in [(2**31 - 1,) * 3, (2097152, 2097152, 4194304)]:
        with pytest.raises(ValueError, match="must be a positive integer up to|needs about"):
            snn.Sequential([snn.Flatten(), snn.Dense(3)]).build(shape)


# ------------------------------------------------- settings of the wrong type
@pytest.mark.parametrize("make, argument", [
    (lambda v: snn.Dense(2, use_bias=v), "use_bias"),
    (lambda v: snn.SGD(momentum=0.9, nesterov=v), "nesterov"),
    (lambda v: snn.EarlyStopping(restore_best_weights=v), "restore_best_weights"),
    (lambda v: snn.ModelCheckpoint("m.npz", save_best_only=v), "save_best_only"),
    (lambda v: snn.Sequential([snn.Dense(1)]).fit(np.ones((2, 2)), [0, 1], loss="mse", shuffle=v), "shuffle"),
])
@pytest.mark.parametrize("value", [np.array([1, 2]), "no", 1, None])
def test_flags_must_be_true_or_false(make, argument, value):
    """bool(np.array([1, 2])) raised NumPy's "ambiguous truth value"; bool("no") is True."""
    with pytest.raises(TypeError, match=rf"{argument} must be True or False"):
        make(value)


@pytest.mark.parametrize("make, message", [
    (lambda: snn.Sequential(5), "layers must be a list"),
    (lambda: snn.Sequential([snn.Dense(2, name=[])]), "name must be a non-empty string"),
    (lambda: snn.Sequential([snn.Dense(2)], name=3), "name must be a non-empty string"),
    (lambda: snn.Sequential([snn.Dense(2)]).compile("mse", metrics=5), "metrics must be a list"),
    (lambda: snn.Sequential([snn.Dense(2)], input_shape=(3,)).summary(print_fn=5), "print_fn must be"),
    (lambda: snn.Sequential([snn.Dense(1)]).fit(np.ones((2, 2)), [0, 1], loss="mse", callbacks=None),
     "callbacks must be a list"),
    (lambda: snn.Sequential([snn.Dense(1)]).fit(np.ones((2, 2)), [0, 1], loss="mse", verbose=np.array([1])),
     "verbose must be 0, 1 or 2"),
    (lambda: snn.Dense(10**400), "units must be a positive integer"),
    (lambda: snn.EarlyStopping(monitor=5), "monitor must be the name of a logged figure"),
    (lambda: snn.ReduceLROnPlateau(cooldown=-1), "cooldown must be an integer >= 0"),
    (lambda: snn.Sequential([snn.Dense(2)]).fit(np.zeros((2, 1, 2)), [0, 1], loss="cross_entropy"),
     r"X has samples of shape \(1, 2\): Dense expects inputs of shape \(N, features\)"),
])
def test_settings_of_the_wrong_type_are_named(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_schedules_never_overflow():
    from scratchnn import schedules
    with pytest.raises(ValueError, match=r"StepDecay: the learning rate .* is larger than any float"):
        schedules.StepDecay(0.1, 1, gamma=2)(10000)
    with pytest.raises(ValueError, match="ExponentialDecay"):
        schedules.ExponentialDecay(0.1, 2)(10000)
    assert schedules.CosineDecay(1.7976931348623157e308, 3)(0) == 1.7976931348623157e308
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        schedules.CosineDecay(0.1, 3)(-1)
    model = snn.Sequential([snn.Dense(1)])
    with pytest.raises(ValueError, match=r"schedule\(0\) must be a number in \(0, inf\), got 1e\+400"):
        model.fit(np.ones((2, 2)), [0, 1], loss="mse",
                  callbacks=[snn.LearningRateScheduler(lambda epoch: 10**400)])


@pytest.mark.parametrize("initializer, message", [
    (lambda rng, shape, fan_in, fan_out: np.full(shape, np.nan), "returned values that are not finite float32"),
    (lambda rng, shape, fan_in, fan_out: np.full(shape, 1e300), "returned values that are not finite float32"),
    (lambda rng, shape, fan_in, fan_out: np.zeros(1), r"returned shape \(1,\), expected \(4, 3\)"),
    (lambda rng, shape, fan_in, fan_out: np.full(shape, "x"), "must be numeric"),
    (lambda rng, shape, fan_in, fan_out: float("x"), "failed: ValueError: could not convert"),
])
def test_an_initializer_of_the_users_that_returns_the_wrong_thing_is_named(initializer, message):
    """It left NaN weights (a silent wrong model) or raised from inside NumPy."""
    with pytest.raises((ValueError, TypeError), match=rf"layer 'dense_0': the initializer of 'W' "
                                                      rf"\(kernel_initializer\).*{message}"):
        snn.Sequential([snn.Dense(3, kernel_initializer=initializer)], input_shape=(4,))


def test_gradcheck_refuses_inputs_whose_gradients_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="not finite in float64"):
            snn.gradcheck(snn.Dense(2, kernel_initializer="ones"), np.full((2, 3), 1e308))
        errors = snn.gradcheck(snn.Dense(2), np.full((2, 3), 1e100))   # huge, but finite
    assert errors["dense_0.W"] < 1e-6          # (eps = 1e-6 is lost next to 1e100 in X and b)


def test_metadata_nested_too_deeply_is_refused(tmp_path):
    deep = []
    for _ in range(2000):
        deep = [deep]
    model = snn.Sequential([snn.Dense(1)], input_shape=(2,))
    with pytest.raises(ValueError, match="nests lists or dicts more than 64 levels deep"):
        model.save(tmp_path / "m.npz", metadata={"x": deep})
    assert not (tmp_path / "m.npz").exists()


def test_a_checkpoint_path_that_cannot_be_formatted_is_named(tmp_path):
    X, codes = blobs()
    with pytest.raises(ValueError, match="could not be formatted"):
        snn.Sequential([snn.Dense(3)]).fit(X, codes, loss="cross_entropy",
                                           callbacks=[snn.ModelCheckpoint(str(tmp_path / "{epoch.x}"))])
