"""The scikit-learn estimators in ONNX: alone and at the end of a Pipeline whose other steps
skl2onnx converts; ONNX Runtime's label and probabilities equal predict and predict_proba."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler  # noqa: E402

import scratchnn as snn  # noqa: E402
from scratchnn.onnx import export_onnx, to_onnx  # noqa: E402
from scratchnn.sklearn import NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
X = X.astype(np.float32)


def _cnn(n_outputs):
    return [snn.Conv2D(4, (1, 3), padding="same", activation="relu"), snn.Flatten(), snn.Dense(n_outputs)]


def _session(model):
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


CLASSIFIERS = {
    "pipeline, string labels": (lambda: make_pipeline(StandardScaler(), MinMaxScaler(),
                                                      NeuralNetClassifier(max_iter=20, random_state=0)),
                                np.array(["ant", "bee", "cat"])[Y]),
    "binary": (lambda: NeuralNetClassifier(max_iter=20, random_state=0), Y % 2),
    # skl2onnx writes PCA at opset 13: brought to the network's by onnx's version converter
    "pipeline with PCA": (lambda: make_pipeline(PCA(5), NeuralNetClassifier(max_iter=20, random_state=0)), Y),
    "float64 pipeline": (lambda: make_pipeline(StandardScaler(), PCA(6), NeuralNetClassifier(
        max_iter=20, random_state=0, dtype="float64")), Y),
    "float64": (lambda: NeuralNetClassifier(max_iter=20, random_state=0, dtype="float64"), Y),
    "cnn": (lambda: NeuralNetClassifier(layers=_cnn, input_shape=(1, -1, 1), max_iter=5, random_state=0), Y),
    "multi-label": (lambda: NeuralNetClassifier(max_iter=20, random_state=0),
                    np.column_stack([Y == 0, Y == 1, X[:, 0] > 0]).astype(int)),
}


@pytest.mark.parametrize("name", list(CLASSIFIERS))
@pytest.mark.parametrize("batch", [1, 300])
def test_a_classifier_gives_predict_and_predict_proba(name, batch):
    make, target = CLASSIFIERS[name]
    estimator = make().fit(X, target)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    x = X[:batch].astype(final.model_.dtype)
    session = _session(to_onnx(estimator))
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    label, proba = session.run(None, {"input": x})
    np.testing.assert_array_equal(label, estimator.predict(x))
    rtol = 1e-10 if final.model_.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(proba, estimator.predict_proba(x), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("targets", ["one", "two"])
def test_a_regressor_pipeline_gives_predict(targets, tmp_path):
    y = X[:, 0] * 2 - X[:, 1] if targets == "one" else np.column_stack([X[:, 0], X[:, 1] * X[:, 2]])
    estimator = make_pipeline(StandardScaler(), NeuralNetRegressor(max_iter=30, random_state=0)).fit(X, y)
    path = export_onnx(estimator, tmp_path / "reg.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": X})
    assert out.shape == estimator.predict(X).shape
    np.testing.assert_allclose(out, estimator.predict(X), rtol=1e-5, atol=1e-5)
    metadata = onnx.load(path).metadata_props
    assert {p.key: p.value for p in metadata}["estimator"] == "NeuralNetRegressor"


def test_steps_skl2onnx_cannot_convert_and_unfitted_estimators_are_refused():
    pipeline = make_pipeline(FunctionTransformer(np.tanh), NeuralNetClassifier(max_iter=2)).fit(X, Y)
    with pytest.raises(ValueError, match="skl2onnx cannot convert the pipeline's steps"):
        to_onnx(pipeline)
    with pytest.raises(RuntimeError, match="is not fitted yet"):
        to_onnx(NeuralNetClassifier())


def test_bad_targets_and_objects_are_refused_before_any_work(tmp_path):
    estimator = NeuralNetClassifier(max_iter=2).fit(X, Y)
    with pytest.raises(FileNotFoundError, match="the directory .* does not exist"):
        export_onnx(estimator, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="ends with a path separator"):
        export_onnx(estimator, str(tmp_path) + "/")
    with pytest.raises(TypeError, match="to_onnx exports a scratchnn Sequential"):
        to_onnx(object())
    with pytest.raises(TypeError, match="probabilities must be True or False"):
        to_onnx(estimator, probabilities="yes")
