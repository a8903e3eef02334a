"""Imbalance measures against the golden vector of the issue (Charte et al. formulas)."""
import numpy as np
import pytest
import scipy.sparse as sp

from mltc.imbalance import imbalance_profile, irlbl, mean_ir, minority_labels, scumble, scumble_per_instance

Y = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])


def test_golden_vector():
    prof = imbalance_profile(Y)
    assert prof["per_label"]["count"] == [4, 2, 1, 1]
    np.testing.assert_allclose(irlbl(Y), [1, 2, 4, 4])
    assert prof["mean_ir"] == pytest.approx(2.75)
    assert prof["max_ir"] == pytest.approx(4)
    assert prof["cvir"] == pytest.approx(0.5454545, abs=1e-6)
    np.testing.assert_allclose(scumble_per_instance(Y), [0.2, 0.0571910, 0.0571910, 0.2, 0], atol=1e-6)
    assert scumble(Y) == pytest.approx(0.1028764, abs=1e-6)
    assert prof["n_labelsets"] == 4
    assert prof["cardinality"] == pytest.approx(8 / 5)
    np.testing.assert_array_equal(minority_labels(Y), [2, 3])


def test_scumble_matches_direct_formula_on_random_data():
    rng = np.random.default_rng(0)
    Yr = (rng.random((60, 7)) < rng.random(7) * 0.6).astype(int)
    Yr[:, 0] = 1
    ir = irlbl(Yr)
    expected = []
    for row in Yr:
        vals = ir[row == 1]
        expected.append(0.0 if vals.size == 0 else 1 - np.exp(np.log(vals).mean()) / vals.mean())
    np.testing.assert_allclose(scumble_per_instance(Yr), expected, atol=1e-12)
    assert scumble(sp.csr_matrix(Yr)) == pytest.approx(np.mean(expected))


def test_absent_label_is_infinite_and_left_out_of_means():
    Yz = np.column_stack([Y, np.zeros(5, dtype=int)])
    assert np.isinf(irlbl(Yz)[-1])
    assert mean_ir(Yz) == pytest.approx(2.75)
    assert scumble(Yz) == pytest.approx(scumble(Y))
    assert imbalance_profile(Yz)["n_labels_absent"] == 1
