"""What the runner does concurrently must not change results: held-out transforms in a
background thread, and the single BLAS thread given to liblinear fits."""
import os
import threading

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_info

from mltc.data import make_synthetic
from mltc.models.binary_relevance import BinaryRelevance, blas_limit
from mltc.pipeline import _sklearn_only, _transform_held_out, run_pipeline
from mltc.split import DatasetSplitter
from mltc.thresholds import GlobalThreshold


def _blas_threads():
    return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]


class _Recorder(ClassifierMixin, BaseEstimator):
    """A binary classifier that records the BLAS thread counts it was fitted under."""

    seen = []

    def __init__(self, solver="liblinear"):
        self.solver = solver

    def fit(self, X, y):
        type(self).seen.append(_blas_threads())
        self.classes_ = np.array([0, 1])
        self.p_ = float(np.mean(y))
        return self

    def predict_proba(self, X):
        return np.column_stack([np.full(X.shape[0], 1 - self.p_), np.full(X.shape[0], self.p_)])


def test_liblinear_fits_run_on_one_blas_thread_and_others_keep_theirs():
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library is loaded through threadpoolctl")
    X = np.random.default_rng(0).random((40, 5))
    Y = (X[:, :3] > 0.5).astype(int)
    _Recorder.seen = []
    BinaryRelevance(estimator=_Recorder(solver="liblinear")).fit(X, Y)
    assert _Recorder.seen and all(set(t) == {1} for t in _Recorder.seen)
    _Recorder.seen = []
    BinaryRelevance(estimator=_Recorder(solver="lbfgs")).fit(X, Y)
    assert all(t == before for t in _Recorder.seen)
    assert _blas_threads() == before  # restored afterwards


@pytest.mark.parametrize("est, limited", [(LinearSVC(), True), (LogisticRegression(solver="liblinear"), True),
                                          (LogisticRegression(), False)])
def test_blas_limit_applies_to_liblinear_only(est, limited):
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library is loaded through threadpoolctl")
    with blas_limit(est):
        inside = _blas_threads()
    assert (set(inside) == {1}) if limited else (inside == before)


def test_sklearn_only_featurizers_are_transformed_in_the_background():
    assert _sklearn_only(TfidfVectorizer())
    assert _sklearn_only(make_pipeline(TfidfVectorizer(), Normalizer()))
    assert _sklearn_only(FeatureUnion([("w", TfidfVectorizer()), ("c", TfidfVectorizer(analyzer="char"))]))
    assert not _sklearn_only(FeatureUnion([("w", TfidfVectorizer()), ("own", _Recorder())]))
    assert not _sklearn_only(_Recorder())


def test_background_transform_gives_the_same_result_as_in_order():
    ds = make_synthetic(n_docs=500, n_labels=5, random_state=0)

    def run(background):
        return run_pipeline(ds, splitter=DatasetSplitter(val_size=0.2, test_size=0.2, random_state=0),
                            featurizer=TfidfVectorizer(), thresholder=GlobalThreshold(),
                            model=BinaryRelevance(estimator=LogisticRegression(solver="liblinear")),
                            background_transform=background)

    a, b = run(True), run(False)
    assert a.metrics == b.metrics and a.val_metrics == b.val_metrics
    np.testing.assert_array_equal(a.extra["test_scores"], b.extra["test_scores"])
    assert a.timings["featurize"] > 0


class _Failing:
    def transform(self, texts):
        raise ValueError(f"cannot featurize {len(texts)} texts")


def test_background_transform_errors_reach_the_caller():
    held = _transform_held_out(_Failing(), [["a"], ["b", "c"]], background=True)
    with pytest.raises(ValueError, match="cannot featurize 1 texts"):
        held.result()


def test_background_transform_runs_in_another_thread():
    seen = []

    class Vec(TfidfVectorizer):
        def transform(self, raw_documents):
            seen.append(threading.get_ident())
            return super().transform(raw_documents)

    vec = Vec().fit(["alpha beta", "beta gamma"])
    (X_va, X_te), _ = _transform_held_out(vec, [["alpha beta"], ["gamma"]], background=True).result()
    assert (X_va != vec.transform(["alpha beta"])).nnz == 0 and X_te.shape == (1, 3)
    assert seen[0] != threading.get_ident()


def test_background_transform_only_with_a_spare_core(monkeypatch):
    # joblib's workers get OMP_NUM_THREADS = cores / n_jobs: with one core per job, no background thread
    from mltc.runtime import job_cores

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert job_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert job_cores() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert job_cores() == (os.cpu_count() or 1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert job_cores() == (os.cpu_count() or 1)
