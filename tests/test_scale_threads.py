"""BinaryRelevance fits liblinear's primal solvers in threads: the same models as one label after another."""
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from mltc.models import BinaryRelevance
from mltc.models import binary_relevance as br
from _sparse import with_unsorted_indices


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = sp.random(400, 150, density=0.06, format="csr", random_state=3)
    Y = (np.asarray(X[:, :12].toarray()) + rng.random((400, 12)) * 0.2 > 0.15).astype(np.int8)
    Y[:, 5] = 0  # constant in training
    w = rng.uniform(0.5, 2.0, size=400)
    return X, Y, w


@pytest.mark.parametrize("est", [LogisticRegression(solver="liblinear", C=4.0, random_state=0),
                                 LinearSVC(dual=False, C=0.5, random_state=0)])
def test_threaded_fit_gives_the_sequential_models(data, est):
    X, Y, w = data
    one = BinaryRelevance(est, n_jobs=1).fit(X, Y, sample_weight=w)
    two = BinaryRelevance(est, n_jobs=2).fit(X, Y, sample_weight=w)
    for a, b in zip(one.estimators_, two.estimators_, strict=True):
        assert type(a) is type(b)
        if hasattr(a, "coef_"):
            np.testing.assert_array_equal(a.coef_, b.coef_)
            np.testing.assert_array_equal(a.intercept_, b.intercept_)
    np.testing.assert_array_equal(one.decision_function(X), two.decision_function(X))


def test_threaded_fit_runs_in_threads_of_this_process(data, monkeypatch):
    X, Y, _ = data
    seen = set()
    fit_one = br._fit_one

    def recording(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return fit_one(*args, **kwargs)

    monkeypatch.setattr(br, "_fit_one", recording)  # a process pool would not see this patch
    BinaryRelevance(LogisticRegression(solver="liblinear"), n_jobs=2).fit(X, Y)
    assert seen and all(name.startswith("mltc-br") for name in seen)


def test_threaded_fit_sorts_unsorted_indices_once(data):
    # liblinear sorts a CSR matrix's indices in place; threads sharing X must not race on it
    X, Y, _ = data
    Xu = with_unsorted_indices(X)
    est = LogisticRegression(solver="liblinear", random_state=0)
    two = BinaryRelevance(est, n_jobs=2).fit(Xu, Y)
    assert Xu.has_sorted_indices
    np.testing.assert_array_equal(two.predict_proba(X), BinaryRelevance(est).fit(X, Y).predict_proba(X))


def test_only_solvers_that_draw_no_random_numbers_are_threaded():
    # liblinear's dual and L1 solvers shuffle with one generator per process: threads would interleave it
    assert br._threadable(LogisticRegression(solver="liblinear"))
    assert br._threadable(LogisticRegression(solver="liblinear", l1_ratio=0.0))
    assert br._threadable(LinearSVC(dual=False))
    assert not br._threadable(LogisticRegression(solver="liblinear", dual=True))
    assert not br._threadable(LogisticRegression(solver="liblinear", l1_ratio=1.0))
    assert not br._threadable(LogisticRegression())  # lbfgs: not liblinear
    assert not br._threadable(LinearSVC())  # dual="auto" may pick the dual solver
    assert not br._threadable(LinearSVC(dual=True))


def test_minus_one_means_the_cores_this_job_may_use(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what joblib's launcher gives a job of a 2-core sweep
    assert br.job_cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os
    assert br.job_cores() == (os.cpu_count() or 1)


@pytest.mark.parametrize("limit", [0, 10 ** 9])
def test_large_prediction_files_are_stored_uncompressed_with_the_same_content(tmp_path, monkeypatch, limit):
    import types
    import zipfile

    import mltc.app as app

    rng = np.random.default_rng(2)
    Y = (rng.random((50, 7)) < 0.3).astype(np.int8)
    idx = np.arange(10, 40)
    scores = rng.random((30, 7))
    result = types.SimpleNamespace(extra={"test_index": idx, "test_pred": scores > 0.5, "test_scores": scores})
    monkeypatch.setattr(app, "NPZ_COMPRESS_MAX_CELLS", limit)
    path = tmp_path / "predictions.npz"
    app._write_predictions(result, Y)(path)
    with zipfile.ZipFile(path) as z:
        kinds = {info.compress_type for info in z.infolist()}
    assert kinds == ({zipfile.ZIP_STORED} if limit == 0 else {zipfile.ZIP_DEFLATED})
    got = np.load(path)
    np.testing.assert_array_equal(got["index"], idx)
    np.testing.assert_array_equal(got["scores"], scores.astype(np.float32))
    np.testing.assert_array_equal(np.unpackbits(got["pred"], axis=1, count=7).astype(bool), scores > 0.5)
    np.testing.assert_array_equal(np.unpackbits(got["true"], axis=1, count=7), Y[idx])
