"""Metrics at scale: roc_auc and micro average precision keep their numbers with bounded temporaries.

At 1M documents x 500 labels the test scores are 100M float64 cells (0.8 GB); ranking every column at
once held ~11x that (the 1M run reached 11.4 GB resident in ``evaluate``).
"""
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import mltc.metrics as metrics


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    Y = rng.random((20000, 50)) < np.linspace(0.01, 0.3, 50)
    S = np.round(rng.random((20000, 50)) + 0.3 * Y, 3)  # rounded: many ties
    return Y, S


def _peak(fn, *args):
    tracemalloc.start()  # numpy reports its array buffers to tracemalloc
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_roc_auc_ranks_a_block_of_columns_at_a_time(data, monkeypatch):
    Y, S = data
    full, _ = _peak(metrics.roc_auc, Y, S)
    monkeypatch.setattr(metrics, "_AUC_BLOCK_CELLS", 1 << 16)  # 3 columns of 20,000 rows
    blocked, peak = _peak(metrics.roc_auc, Y, S)
    np.testing.assert_array_equal(blocked, full)  # rank sums are exact: blocks change nothing
    np.testing.assert_allclose(blocked, [roc_auc_score(Y[:, j], S[:, j]) for j in range(50)], rtol=1e-12)
    assert peak < S.nbytes  # ranking all 50 columns at once: ~11x S.nbytes


def test_micro_average_precision_drops_its_temporaries(data):
    Y, S = data
    value, peak = _peak(metrics.average_precision, Y, S)
    assert value == pytest.approx(average_precision_score(Y.ravel(), S.ravel()), rel=1e-12)
    assert peak < 3 * S.nbytes  # ~4.1x before: every n-long temporary alive until the end
