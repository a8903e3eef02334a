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


def _profile_by_full_casts(Yr):
    """The profile as computed before the one-pass version: full-size casts, sums and a CSR product."""
    Yd = np.asarray(Yr).astype(np.int8)
    counts = Yd.sum(axis=0).astype(np.int64)
    ir = irlbl(counts=counts)
    irf = np.where(np.isfinite(ir), ir, 0.0)
    n_lab = Yd.astype(bool).sum(axis=1)
    Ys = sp.csr_matrix(Yd.astype(bool), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ir = np.where(irf > 0, np.log(np.where(irf > 0, irf, 1.0)), 0.0)
        g = np.exp((Ys @ log_ir) / np.maximum(n_lab, 1))
        a = (Ys @ irf) / np.maximum(n_lab, 1)
        s = np.where(n_lab > 0, 1.0 - g / np.where(a > 0, a, 1.0), 0.0)
    return {"count": counts.tolist(), "cardinality": float(Yd.sum(axis=1).mean()), "scumble": float(s.mean()),
            "n_labelsets": len({r.tobytes() for r in np.packbits(Yd.astype(bool), axis=1)}),
            "n_empty": int((Yd.sum(axis=1) == 0).sum())}


@pytest.mark.parametrize("dtype", [np.int8, np.int64, bool, np.float32])
def test_one_pass_profile_is_identical_to_full_casts(dtype):
    # thousands of labels: the profile is computed from the positions of the ones; every value must be
    # exactly (to the last bit) what the full-size computation gives
    rng = np.random.default_rng(5)
    p = 1.0 / np.arange(1, 301) ** 1.1
    Yr = (rng.random((400, 300)) < 8 * p / p.sum()).astype(dtype)
    Yr[:, -20:] = 0
    Yr[:7] = 0
    prof, ref = imbalance_profile(Yr), _profile_by_full_casts(Yr)
    assert prof["per_label"]["count"] == ref["count"]
    for k in ("cardinality", "scumble", "n_labelsets", "n_empty"):
        assert prof[k] == ref[k], k
    assert imbalance_profile(sp.csr_matrix(Yr)) == prof


def test_profile_of_non_binary_counts_keeps_the_counts():
    Yc = np.array([[2, 0], [1, 1], [0, 0]])
    prof = imbalance_profile(Yc)
    assert prof["per_label"]["count"] == [3, 1] and prof["cardinality"] == pytest.approx(4 / 3)
