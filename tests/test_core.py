"""The core's contracts: buffers (state that is not trained), copies that train like the
original, the public API other modules use, and no import circle between modules."""

import ast
import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import training
from scratchnn.layers import LAYERS


def blobs(n=48, features=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(scale=4.0, size=(classes, features))
    return centers[y] + rng.normal(size=(n, features)), y


class RunningCenter(snn.Layer):
    """Subtracts a mean from each feature, as batch normalization does:

        training:   y = x - mean_n(x),   running_mean = (1 - momentum) running_mean + momentum mean_n(x)
        inference:  y = x - running_mean

    dL/dx = g - mean_n(g) in training, g in inference. It has a trained scale too,
    y' = y * gamma, so that it has a parameter beside its buffer.
    """

    def __init__(self, momentum=0.5, name=None):
        super().__init__(name)
        self.momentum = momentum

    def build(self, input_shape, rng):
        self.add_param("gamma", input_shape, snn.initializers.get_initializer("ones"), 1, 1)
        self.add_buffer("running_mean", input_shape, fill=0.0)
        self.add_buffer("count", (), fill=0.0)
        return tuple(input_shape)

    def forward(self, x, training=False):
        if training:
            mean = x.mean(axis=0)
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.count += 1
            centered = x - mean
        else:
            centered = x - self.running_mean
        self._cache = (centered, training)
        return centered * self.gamma

    def backward(self, grad_out):
        centered, training = self._saved()
        np.sum(grad_out * centered, axis=0, out=self.dgamma)
        g = grad_out * self.gamma
        return g - g.mean(axis=0) if training else g

    def get_config(self):
        return {"momentum": self.momentum, "name": self.name}


def centered_model(seed=0, dtype="float64", dropout=0.0):
    return snn.Sequential([RunningCenter(), snn.Dense(6), snn.Tanh(), snn.Dropout(dropout),
                           RunningCenter(), snn.Dense(3)], seed=seed, dtype=dtype)


# ------------------------------------------------------------------- buffers
def test_buffers_live_in_their_own_vector_beside_the_parameters():
    model = centered_model().build((3,))
    assert model.buffers.size == 3 + 1 + 6 + 1
    assert model.params.size == 3 + (3 * 6 + 6) + 6 + (6 * 3 + 3)
    names = [name for name, _ in model.named_buffers()]
    assert names == ["running_center_0.running_mean", "running_center_0.count",
                     "running_center_1.running_mean", "running_center_1.count"]
    for name, view in model.named_buffers():
        assert np.shares_memory(view, model.buffers) and not np.shares_memory(view, model.params)
    assert "running_center_0.running_mean" not in dict(model.named_parameters())
    assert np.all(model.layers[0].running_mean == 0) and np.all(model.layers[0].gamma == 1)


def test_buffers_change_in_training_and_never_in_inference():
    X, y = blobs()
    model = centered_model()
    model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.01), epochs=2, batch_size=16)
    first = model.layers[0]
    assert first.count == 2 * 3                        # one update per training step
    # the running mean follows the data's mean (momentum 0.5 over 6 batches)
    np.testing.assert_allclose(first.running_mean, X.mean(axis=0), atol=1.0)
    before = model.buffers.copy()
    model.predict(X)
    model.predict_proba(X)
    model.evaluate(X, y)
    model.output(X, batch_size=5)
    np.testing.assert_array_equal(model.buffers, before)


def test_optimizers_and_weight_decay_never_touch_buffers():
    X, y = blobs()
    model = centered_model()
    model.build((3,))
    model.buffers[:] = 7.0                            # a value decay would shrink
    # lr tiny: the parameters move, but a decayed or optimized buffer would too
    optimizer = snn.AdamW(lr=1e-3, weight_decay=10.0)
    optimizer.step(model.params, np.ones_like(model.grads))
    assert np.all(model.buffers == 7.0)
    assert optimizer.state["m"].size == model.params.size


def test_gradcheck_never_sees_buffers_and_leaves_them_alone():
    X, y = blobs(n=6)
    model = centered_model(dtype="float64")
    model.build((3,))
    model.buffers[:] = np.linspace(-1, 1, model.buffers.size)
    for training_mode in (False, True):
        errors = snn.gradcheck(model, X, y, loss="cross_entropy", training=training_mode)
        assert set(errors) == {name for name, _ in model.named_parameters()} | {"input"}
        assert max(errors.values()) < 1e-6, errors
    assert np.allclose(model.buffers, np.linspace(-1, 1, model.buffers.size))
    # the gradcheck copy restores its buffers before each evaluation: a check in
    # training mode of a layer whose output depends on its updated buffer passes
    errors = snn.gradcheck(RunningCenter(), X, training=True)
    assert max(errors.values()) < 1e-6, errors


def test_buffers_are_saved_and_restored_by_model_files(tmp_path, monkeypatch):
    monkeypatch.setitem(LAYERS, "RunningCenter", RunningCenter)
    X, y = blobs()
    model = centered_model(dtype="float32")
    model.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16)
    loaded = snn.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.buffers, model.buffers)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    loaded.check_parameter_views()
    assert loaded.layers[0].running_mean.base is not None


def test_early_stopping_restores_the_buffers_of_the_best_epoch():
    X, y = blobs()
    model = centered_model()
    seen = {}

    class Record(snn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = (logs["val_loss"], model.get_weights())

    stopper = snn.EarlyStopping(patience=2)
    model.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=2.0), epochs=30, batch_size=8,
              validation_split=0.25, callbacks=[Record(), stopper])
    assert stopper.stopped_epoch is not None
    best = seen[stopper.best_epoch][1]
    final = model.get_weights()
    assert final.keys() == best.keys()
    for name in best:
        np.testing.assert_array_equal(final[name], best[name])
    # the buffers had moved on after the best epoch: the restore is not a no-op
    last = seen[max(seen)][1]
    assert not np.array_equal(last["running_center_0.running_mean"], best["running_center_0.running_mean"])


def test_astype_copies_buffers():
    X, y = blobs()
    model = centered_model(dtype="float32")
    model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=16)
    wide = model.astype("float64")
    assert wide.buffers.dtype == np.float64 and wide.layers[0].running_mean.dtype == np.float64
    np.testing.assert_array_equal(wide.buffers, model.buffers.astype(np.float64))
    assert np.shares_memory(wide.layers[0].running_mean, wide.buffers)
    np.testing.assert_allclose(wide.predict_proba(X), model.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_divergence_leaves_the_buffers_of_the_last_finite_step():
    X, y = blobs()
    model = centered_model(dtype="float32")
    before = []

    class Keep(snn.Callback):
        def on_batch_begin(self, batch, logs=None):
            before.append(model.buffers.copy())

    with pytest.raises(snn.DivergenceError, match="training diverged in epoch 1, batch 2"):
        model.fit(X * 1e3, y, loss="cross_entropy", optimizer=snn.SGD(lr=1e36), epochs=1,
                  batch_size=16, callbacks=[Keep()])
    assert len(before) == 2 and not np.array_equal(before[0], before[1])
    np.testing.assert_array_equal(model.buffers, before[-1])
    assert np.all(np.isfinite(model.buffers)) and np.all(np.isfinite(model.params))


def test_rebinding_a_buffer_is_caught():
    class Rebinding(RunningCenter):
        def forward(self, x, training=False):
            y = super().forward(x, training)
            self.running_mean = self.running_mean + 0.0
            return y

    X, y = blobs()
    model = snn.Sequential([Rebinding(), snn.Dense(3)], seed=0)
    with pytest.raises(RuntimeError, match=r"rebound 'running_mean'.*flat buffer vector"):
        model.fit(X, y, loss="cross_entropy", epochs=1)


def test_a_name_declared_twice_is_refused():
    class Twice(snn.Layer):
        def build(self, input_shape, rng):
            self.add_param("W", input_shape, snn.initializers.get_initializer("zeros"), 1, 1)
            self.add_buffer("W", input_shape)
            return input_shape

    with pytest.raises(ValueError, match="'W' must be a new identifier"):
        snn.Sequential([Twice()]).build((3,))


# -------------------------------------------------------------------- copies
def _copies():
    return {
        "deepcopy": copy.deepcopy,
        "pickle": lambda model: pickle.loads(pickle.dumps(model)),
        "astype": lambda model: model.astype(model.dtype.name),
    }


@pytest.mark.parametrize("how", list(_copies()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_copy_predicts_and_trains_exactly_like_the_original(how, dtype):
    X, y = blobs()
    original = centered_model(seed=3, dtype=dtype, dropout=0.2)
    original.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.01), epochs=2, batch_size=16)
    clone = _copies()[how](original)

    for name, view in clone.named_parameters() + clone.named_gradients() + clone.named_buffers():
        assert not np.shares_memory(view, original.params) and not np.shares_memory(view, original.buffers)
    for layer in clone.layers:
        for attribute in layer.bound_names():
            assert any(np.shares_memory(getattr(layer, attribute), v)
                       for v in (clone.params, clone.grads, clone.buffers)), attribute
    clone.check_parameter_views()
    assert clone.layers[3].rng is clone.rng            # dropout draws from the copy's generator
    np.testing.assert_array_equal(clone.predict_proba(X), original.predict_proba(X))

    original.fit(X, y, epochs=2, batch_size=16)
    clone.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(clone.params, original.params)
    np.testing.assert_array_equal(clone.buffers, original.buffers)
    assert clone.optimizer.iterations == original.optimizer.iterations == 4 * 3


def test_training_a_copy_leaves_the_original_as_it_was():
    X, y = blobs()
    original = centered_model()
    original.fit(X, y, loss="cross_entropy", epochs=1, batch_size=16)
    weights = original.get_weights()
    state = original.optimizer.state_dict()
    for clone in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
        clone.fit(X, y, epochs=2, batch_size=16)
        assert not np.array_equal(clone.params, original.params)
    for name, value in original.get_weights().items():
        np.testing.assert_array_equal(value, weights[name])
    for key, value in original.optimizer.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_an_unbuilt_model_copies_too():
    X, y = blobs()
    model = centered_model(seed=9)
    clone = pickle.loads(pickle.dumps(model))
    model.fit(X, y, loss="cross_entropy", epochs=1)
    clone.fit(X, y, loss="cross_entropy", epochs=1)
    np.testing.assert_array_equal(clone.params, model.params)


# ---------------------------------------------------------------- public API
def test_output_is_checked_batched_and_raw():
    X, y = blobs()
    model = centered_model()
    model.fit(X, y, loss="cross_entropy", epochs=1)
    raw = model.output(X)
    np.testing.assert_array_equal(model.output(X, batch_size=7), raw)
    np.testing.assert_allclose(snn.functional.softmax(raw, axis=1), model.predict_proba(X))
    np.testing.assert_array_equal(raw.argmax(axis=1), model.predict(X))
    with pytest.raises(ValueError, match="X has 2 features per sample, but the model expects 3"):
        model.output(X[:, :2])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.output(X, batch_size=0)


def test_get_and_set_weights():
    X, y = blobs()
    model = centered_model()
    model.fit(X, y, loss="cross_entropy", epochs=1)
    weights = model.get_weights()
    assert list(weights) == [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    other = centered_model(seed=99).build((3,))
    other.compile(loss="cross_entropy")
    other.set_weights(weights)
    np.testing.assert_array_equal(other.params, model.params)
    np.testing.assert_array_equal(other.buffers, model.buffers)
    np.testing.assert_array_equal(other.output(X), model.output(X))
    weights["dense_0.W"][...] = 0                      # copies: the model is not changed
    assert np.any(model.layers[1].W != 0)

    before = other.params.copy()
    bad = dict(weights, **{"dense_1.b": np.zeros(4)})
    with pytest.raises(ValueError, match=r"weights\['dense_1.b'\] has shape \(4,\), expected \(3,\)"):
        other.set_weights(bad)
    with pytest.raises(ValueError, match=r"missing \['dense_1.b'\]"):
        other.set_weights({k: v for k, v in weights.items() if k != "dense_1.b"})
    with pytest.raises(ValueError, match="NaN or infinity"):
        other.set_weights(dict(weights, **{"dense_1.b": np.full(3, np.nan)}))
    np.testing.assert_array_equal(other.params, before)   # nothing written by a refused call
    with pytest.raises(RuntimeError, match="not built"):
        snn.Sequential([snn.Dense(2)]).get_weights()


def test_named_gradients_match_the_flat_gradient_vector():
    X, y = blobs(n=8)
    model = centered_model()
    model.compile(loss="cross_entropy")
    x, target = model.check_data(X, y)
    model.loss.forward(model.forward(x, training=True), target)
    model.backward(model.loss.backward())
    offset = 0
    for (name, grad), (pname, param) in zip(model.named_gradients(), model.named_parameters()):
        assert name == pname and grad.shape == param.shape
        np.testing.assert_array_equal(grad.ravel(), model.grads[offset:offset + grad.size])
        offset += grad.size
    assert offset == model.grads.size


def test_metric_names_follow_the_loss():
    model = snn.Sequential([snn.Dense(2)])
    model.compile(loss="cross_entropy")
    assert model.metric_names == ["accuracy"]
    model.compile(loss="mse")
    assert model.metric_names == ["mae", "r2"]
    with pytest.raises(ValueError, match="metrics must be names from"):
        model.compile(metrics=["accuracy"])


def test_train_step_is_one_step_of_the_loop():
    X, y = blobs(n=16)
    looped, stepped = centered_model(seed=5), centered_model(seed=5)
    looped.fit(X, y, loss="cross_entropy", optimizer=snn.SGD(lr=0.1), epochs=1, batch_size=None)
    stepped.compile(loss="cross_entropy", optimizer=snn.SGD(lr=0.1))
    x, target = stepped.check_data(X, y)
    with training.quiet_overflow():
        loss, output = training.train_step(stepped, x, target)
    np.testing.assert_array_equal(stepped.params, looped.params)
    assert loss == looped.history.history["loss"][0]
    assert output.shape == (16, 3)


# -------------------------------------------------------------- module graph
def _imports(path: Path, package: Path) -> set:
    """The scratchnn modules that the module at ``path`` imports (anywhere in it)."""
    module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[:-len(".__init__")]
    parts = module.split(".")
    here = parts if path.name == "__init__.py" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("scratchnn"):
                continue
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scratchnn"))
    return found


def test_no_module_imports_one_that_imports_it_back():
    package = Path(snn.__file__).parent
    files = {}
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        files[module.removesuffix(".__init__")] = path
    graph = {m: {t for t in _imports(p, package) if t in files and t != m} for m, p in files.items()}
    # a module that imports from its own package (``from . import x``) does not
    # import the package's __init__ back: Python is running it already
    graph = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(m for m in graph if m in reachable(m))
    assert cycles == [], cycles
    assert "scratchnn.io" in graph["scratchnn.model"] and "scratchnn.model" not in reachable("scratchnn.io")


# ------------------------------------------------------- outputs (N, T, k)
class ToSteps(snn.Layer):
    """(N, T * k) -> (N, T, k): a stand-in for a recurrent layer's per-step outputs."""

    def __init__(self, steps, name=None):
        super().__init__(name)
        self.steps = steps

    def build(self, input_shape, rng):
        return (self.steps, input_shape[0] // self.steps)

    def forward(self, x, training=False):
        self._cache = x.shape
        return x.reshape(len(x), self.steps, -1)

    def backward(self, grad_out):
        return grad_out.reshape(self._saved())


def test_a_model_with_an_output_per_step_trains_predicts_and_checks_its_gradients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    # per step t: the class is which of three projections of x is largest
    projections = rng.normal(size=(5, 4, 3))
    y = np.einsum("nf,tfk->ntk", X, projections).argmax(axis=2)      # (60, 5)
    model = snn.Sequential([snn.Dense(32), snn.Tanh(), snn.Dense(15), ToSteps(5)], seed=0,
                           dtype="float64")
    history = model.fit(X, y, loss="cross_entropy", optimizer=snn.Adam(lr=0.02), epochs=60,
                        batch_size=20)
    assert model.output_shape == (5, 3)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    scores = model.evaluate(X, y)
    predicted = model.predict(X)
    assert predicted.shape == (60, 5)
    assert scores["accuracy"] == np.mean(predicted == y) > 0.8
    proba = model.predict_proba(X)
    assert proba.shape == (60, 5, 3)
    np.testing.assert_allclose(proba.sum(axis=2), 1.0)
    errors = snn.gradcheck(model, X[:4], y[:4])
    assert max(errors.values()) < 1e-6, errors
    with pytest.raises(ValueError, match=r"y"):
        model.evaluate(X, y[:, :4])
