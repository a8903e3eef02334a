"""Checks every sampler must pass, over dense and CSR inputs, several seeds and degenerate data.

Known exceptions, and why:
- REMEDIAL and MLeNN are deterministic (no ``random_state``): "different seeds differ" does not apply.
- REMEDIAL rewrites the label sets of the rows it copies, so only features follow ``sample_indices_``.
- MLSMOTE and MLSOL append synthetic rows: ``sample_indices_`` covers the first rows only.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init

from mltc.strategies.chain import SamplerChain
from mltc.strategies.mlenn import MLeNN
from mltc.strategies.mlsmote import MLSMOTE
from mltc.strategies.mlsol import MLSOL
from mltc.strategies.remedial import REMEDIAL
from mltc.strategies.ros_rus import LPROS, LPRUS, MLROS, MLRUS

SAMPLERS = {
    "ml_ros": lambda rs: MLROS(random_state=rs),
    "ml_rus": lambda rs: MLRUS(random_state=rs),
    "lp_ros": lambda rs: LPROS(random_state=rs),
    "lp_rus": lambda rs: LPRUS(random_state=rs),
    "mlsmote": lambda rs: MLSMOTE(random_state=rs),
    "mlsmote_budget_cosine": lambda rs: MLSMOTE(percentage=25, metric="cosine", random_state=rs),
    "remedial": lambda rs: REMEDIAL(),
    "mlsol": lambda rs: MLSOL(random_state=rs),
    "mlenn": lambda rs: MLeNN(),
    "remedial_mlsmote": lambda rs: SamplerChain(steps=[REMEDIAL(), MLSMOTE(random_state=rs)]),
    "mlrus_mlros": lambda rs: SamplerChain(steps=[MLRUS(percentage=10, random_state=rs),
                                                  MLROS(percentage=10, random_state=rs)]),
}
DETERMINISTIC = {"remedial", "mlenn"}
RELABELS = {"remedial", "remedial_mlsmote"}

INVALID = [
    (MLROS, {"percentage": -1}),
    (MLRUS, {"percentage": 100}),
    (LPROS, {"percentage": "25"}),
    (LPRUS, {"random_state": "x"}),
    (MLSMOTE, {"k_neighbors": 0}),
    (MLSMOTE, {"label_generation": "majority"}),
    (MLSMOTE, {"metric": "manhattan"}),
    (MLSOL, {"percentage": -5}),
    (MLeNN, {"threshold": -0.1}),
    (MLeNN, {"n_neighbors": 1.5}),
]


def _data(kind, dtype, seed=0, n=120, degenerate=True):
    """Long-tailed labels plus the degenerate cases: a label with one positive, an all-zero
    label, rows with no label."""
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, 7) < [0.6, 0.35, 0.15, 0.08, 0.05, 0.0, 0.0]).astype(np.int8)
    if degenerate:
        Y[3, 6] = 1  # one positive (as the only minority label, it would make every oversampler trivial)
    Y[10:15] = 0  # rows with no label
    X = (rng.rand(n, 15) * (rng.rand(n, 15) < 0.5)).astype(dtype)
    return (sp.csr_matrix(X) if kind == "csr" else X), Y


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_container_dtype_and_indices(name, kind, dtype):
    X, Y = _data(kind, dtype)
    sampler = SAMPLERS[name](0)
    X2, Y2 = sampler.fit_resample(X, Y)
    assert sp.issparse(X2) == (kind == "csr")
    if kind == "csr":
        assert X2.format == "csr"
    assert X2.dtype == dtype
    assert Y2.dtype == Y.dtype and Y2.ndim == 2 and Y2.shape[1] == Y.shape[1]
    assert X2.shape == (Y2.shape[0], X.shape[1])
    assert set(np.unique(Y2)) <= {0, 1}
    idx = sampler.sample_indices_
    m = len(idx)
    assert m <= X2.shape[0] and idx.min() >= 0 and idx.max() < X.shape[0]
    np.testing.assert_array_equal(_dense(X2)[:m], _dense(X)[idx])
    if name not in RELABELS:
        np.testing.assert_array_equal(Y2[:m], Y[idx])
    # the label with no positives cannot gain any (no sampler invents a label nobody has)
    assert Y2[:, 5].sum() == 0


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_output_different_seeds_differ(name):
    X, Y = _data("csr", np.float64, seed=1, degenerate=False)
    outs = {}
    for rs in (0, 0, 1, 2):
        X2, Y2 = SAMPLERS[name](rs).fit_resample(X, Y)
        outs.setdefault(rs, []).append((X2.toarray(), Y2))
    (a, ya), (b, yb) = outs[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    if name in DETERMINISTIC:
        return

    def same(p, q):
        return p[0].shape == q[0].shape and np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1])

    assert not (same(outs[0][0], outs[1][0]) and same(outs[0][0], outs[2][0]))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_dense_and_csr_agree(name):
    Xd, Y = _data("dense", np.float64, seed=2)
    a, ya = SAMPLERS[name](5).fit_resample(Xd, Y)
    b, yb = SAMPLERS[name](5).fit_resample(sp.csr_matrix(Xd), Y)
    np.testing.assert_allclose(b.toarray(), a, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sklearn_api(name):
    sampler = SAMPLERS[name](0)
    check_no_attributes_set_in_init(name, sampler)
    check_get_params_invariance(name, sampler)
    X, Y = _data("dense", np.float64, seed=3)
    a = clone(sampler).fit_resample(X, Y)
    b = clone(sampler).fit_resample(X, Y)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("cls, params", INVALID, ids=lambda v: getattr(v, "__name__", str(v)))
def test_invalid_parameters_are_reported(cls, params):
    X, Y = _data("dense", np.float64)
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {cls.__name__}"):
        cls(**params).fit_resample(X, Y)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_invalid_data_is_reported(name):
    X, Y = _data("dense", np.float64)
    sampler = SAMPLERS[name](0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        sampler.fit_resample(X, Y * 2)
    with pytest.raises(ValueError, match="same documents"):
        sampler.fit_resample(X[:-1], Y)
    with pytest.raises(ValueError, match="2-D binary label matrix"):
        sampler.fit_resample(X, Y[:, 0])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_all_rows_without_labels_and_tiny_data(name):
    X = np.random.RandomState(0).rand(4, 3)
    X2, Y2 = SAMPLERS[name](0).fit_resample(X, np.zeros((4, 3), dtype=np.int8))
    assert Y2.sum() == 0 and X2.shape[1] == 3
    Y = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.int8)
    X2, Y2 = SAMPLERS[name](0).fit_resample(X, Y)
    assert Y2[:, 1].sum() >= 1  # the one-positive label survives every sampler


def test_every_config_instantiates_a_known_sampler():
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "strategy"
    names = sorted(set(SAMPLERS) - {"mlsmote_budget_cosine"})
    # the strategies that are not resamplers have their own tests (tests/test_pseudo_meta.py, tests/test_common.py);
    # a new strategy config must be added to one of the two lists
    others = {"none", "meta_cost", "metacost_relabel", "pseudo_label"}
    assert {p.stem for p in conf.glob("*.yaml")} == set(names) | others
    X, Y = _data("csr", np.float64)
    for name in names:
        cfg = OmegaConf.merge({"seed": 1}, {"s": OmegaConf.load(conf / f"{name}.yaml")})
        sampler = instantiate(cfg.s)
        X2, Y2 = sampler.fit_resample(X, Y)
        assert sp.issparse(X2) and X2.shape[0] == Y2.shape[0]
