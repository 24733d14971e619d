"""scikit-learn's own estimator checks, over both estimators and a convolutional
configuration: every check runs and passes (no expected failures, nothing skipped
beyond what scikit-learn skips for the tags we declare)."""

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import scratchnn as snn  # noqa: E402
from scratchnn.sklearn import NeuralNetClassifier, NeuralNetRegressor  # noqa: E402


def small_cnn(n_outputs):
    """Rows as 1-pixel-high images, a convolution across them, then the output layer
    (a module-level function, so that a fitted estimator pickles)."""
    return [snn.Conv2D(8, (1, 3), padding="same", activation="relu"), snn.Flatten(),
            snn.Dense(n_outputs)]


ESTIMATORS = [
    NeuralNetClassifier(),
    NeuralNetRegressor(),
    NeuralNetClassifier(layers=small_cnn, input_shape=(1, -1, 1)),
]


# A fit that stops at max_iter warns, as MLPClassifier does; the checks fit many
# small problems with the default max_iter. Any other warning is still an error.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_check(estimator, check):
    check(estimator)
