"""A hyperparameter search across processes of a dask.distributed cluster, through
joblib's "dask" backend, with no code of ours: what a real cluster does across machines."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from scratchnn.sklearn import NeuralNetClassifier  # noqa: E402


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # raised inside dask/tornado, not by us
@pytest.mark.filterwarnings("ignore::ResourceWarning")      # sockets the workers close late
def test_grid_search_runs_on_a_local_dask_cluster():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}
    estimator = NeuralNetClassifier(max_iter=20, learning_rate_init=0.01, random_state=0)
    serial = GridSearchCV(estimator, grid, cv=2, n_jobs=1).fit(X, y)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            search = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(X, y)
        workers = {task["worker"] for task in stream.data}

    assert len(workers) == 2                       # both worker processes took fits
    # the same fits as in this process: deterministic given random_state
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    assert search.best_params_ == serial.best_params_
    np.testing.assert_array_equal(search.predict(X), serial.predict(X))
