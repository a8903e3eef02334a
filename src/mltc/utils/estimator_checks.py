"""Every sampler, model, loss and threshold rule of mltc, found by walking the package, and the checks each must pass.

In the shape of imbalanced-learn's ``parametrize_with_checks``: :func:`all_estimators` discovers the classes (a new
class is checked without anyone adding it to a list), :func:`parametrize_with_checks` turns them into one pytest
case per (estimator, check), and :data:`EXPECTED_FAILURES` lists the known exceptions, each with its reason.

Kinds (by what a class does, not where it lives):

- ``sampler``: has ``fit_resample(X, Y)`` (resamplers, weighting schemes, the empty strategy, pseudo-labelling);
- ``model``: a classifier with ``fit(X, Y)`` and ``predict_proba`` / ``decision_function``;
- ``threshold``: a :class:`mltc.thresholds.BaseThreshold` (``fit(scores, Y)``, ``predict(scores)``);
- ``loss``: a :class:`mltc.models.losses.BinaryLoss`.

Examples
--------
>>> from mltc.utils.estimator_checks import all_estimators
>>> sorted(name for name, _ in all_estimators("sampler"))[:3]
['LPROS', 'LPRUS', 'MLROS']
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_set_params)

__all__ = ["all_estimators", "build", "checks_for", "parametrize_with_checks", "EXPECTED_FAILURES", "KINDS",
           "SKIPPED_MODULES"]

KINDS = ("sampler", "model", "threshold", "loss")
# packages walked for components (data loaders, featurizers and the run machinery are not estimators in this sense)
_PACKAGES = ("mltc.strategies", "mltc.models", "mltc.thresholds")
# modules that could not be imported (an optional dependency missing), with the error: their classes go unchecked
SKIPPED_MODULES: dict[str, str] = {}

# (class name, check name) -> why it does not apply
EXPECTED_FAILURES = {
    ("MetaCostWeights", "check_different_seeds_differ"):
        "on small data the weight grid search ends on the same weights for every seed",
    ("FineTunedEncoder", "check_model_fit_predict"): "reads raw texts, not a feature matrix "
                                                      "(fitted on texts in tests/test_finetune.py)",
    ("FineTunedEncoder", "check_same_seed_same_output"): "reads raw texts (see tests/test_finetune.py)",
}


def _is_component(cls) -> bool:
    from mltc.models.losses import BinaryLoss
    from mltc.thresholds import BaseThreshold

    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)) or cls.__name__.startswith("_"):
        return False
    if cls in (BinaryLoss, BaseThreshold) or inspect.isabstract(cls) or cls.__name__.startswith("Base"):
        return False
    return _kind(cls) is not None


def _kind(cls) -> str | None:
    from mltc.models.losses import BinaryLoss
    from mltc.thresholds import BaseThreshold

    if issubclass(cls, BaseThreshold):
        return "threshold"
    if issubclass(cls, BinaryLoss):
        return "loss"
    if hasattr(cls, "fit_resample"):
        return "sampler"
    if hasattr(cls, "fit") and (hasattr(cls, "predict_proba") or hasattr(cls, "decision_function")):
        return "model"
    return None


def _modules():
    for name in _PACKAGES:
        module = importlib.import_module(name)
        yield module
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
            try:
                yield importlib.import_module(info.name)
            except ImportError as err:  # an optional extra (torch) missing: its classes cannot be built here
                SKIPPED_MODULES[info.name] = str(err)


def all_estimators(type_filter: str | None = None) -> list[tuple[str, type]]:
    """``(name, class)`` of every public sampler, model, threshold rule and loss defined in mltc, sorted by name.

    Parameters
    ----------
    type_filter : {"sampler", "model", "threshold", "loss"}, optional
        Only classes of that kind.
    """
    if type_filter is not None and type_filter not in KINDS:
        raise ValueError(f"type_filter={type_filter!r}: use one of {KINDS} or None.")
    found = {}
    for module in _modules():
        for name, cls in vars(module).items():
            # defined there, not imported: each class once, under the module that owns it
            if isinstance(cls, type) and cls.__module__ == module.__name__ and _is_component(cls):
                found[name] = cls
    return sorted((n, c) for n, c in found.items() if type_filter in (None, _kind(c)))


# ---- building an instance ----------------------------------------------------------------------------------------

def _lr():
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=200)


def _br():
    from mltc.models.binary_relevance import BinaryRelevance
    return BinaryRelevance(_lr())


def _xgb():
    from xgboost import XGBClassifier
    return XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, random_state=0)


# classes whose constructor needs a component; everything else builds from its defaults (plus random_state)
_REQUIRED = {
    "BinaryRelevance": lambda: {"estimator": _lr()},
    "BoostedBinaryRelevance": lambda: {"estimator": _xgb()},
    "LabelPowerset": lambda: {"estimator": _lr()},
    "ClassifierChain": lambda: {"estimator": _lr()},
    "EnsembleClassifierChains": lambda: {"estimator": _lr(), "n_chains": 2},
    "RAkEL": lambda: {"estimator": _lr(), "n_subsets": 2},
    "ScoreAverage": lambda: {"estimators": [_br()]},
    "ScoreStack": lambda: {"estimators": [_br(), _br()], "cv": 2},
    "MetaCostWeights": lambda: {"estimator": _br(), "grid": (1.0, 4.0)},
    "MetaCostRelabel": lambda: {"estimator": _br(), "n_estimators": 2},
    "PseudoLabeler": lambda: {"estimator": _br(), "n_rounds": 1, "threshold": 0.5, "minority_threshold": 0.5},
    "SamplerChain": lambda: {"steps": [_lazy("REMEDIAL")(), _lazy("MLROS")(random_state=0)]},
    "MLPClassifierHead": lambda: {"max_epochs": 2, "hidden_layer_sizes": (8,), "batch_size": 32},
}


def _lazy(name):
    return dict(all_estimators())[name]


def build(cls, random_state=0):
    """An instance of ``cls`` small enough for the checks, with ``random_state`` where it takes one."""
    params = _REQUIRED.get(cls.__name__, dict)()
    if "random_state" in inspect.signature(cls).parameters:
        params["random_state"] = random_state
    return cls(**params)


# ---- data --------------------------------------------------------------------------------------------------------

def _data(seed=0, n=120, n_features=12, kind="dense"):
    """Long-tailed labels (prevalence 0.6 down to 0.04) that depend on the features, a few rows unlabelled."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_features) * (rng.rand(n, n_features) < 0.6)
    prevalence = np.array([0.6, 0.35, 0.15, 0.08, 0.04])
    logits = 3 * (X - X.mean(0)) @ rng.randn(n_features, len(prevalence)) + np.log(prevalence / (1 - prevalence))
    Y = (rng.rand(n, len(prevalence)) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    Y[10:14] = 0  # rows with no label
    Y[0] = Y[1] = 1  # every label at least twice
    return (sp.csr_matrix(X) if kind == "csr" else X), Y


def _scores(seed=0, n=80, n_labels=4):
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, n_labels) < [0.5, 0.3, 0.15, 0.08][:n_labels]).astype(np.int8)
    Y[0] = 1
    S = np.clip(0.35 * Y + 0.65 * rng.rand(n, n_labels), 0, 1)
    return S, Y


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _out(est, kind, X, Y):
    """What a fitted ``est`` gives for the check's data: resampled data, scores or decisions."""
    if kind == "sampler":
        out = est.fit_resample(X, Y)
        return [_dense(out[0]), np.asarray(out[1])] + [np.asarray(o) for o in out[2:]]
    if kind == "model":
        from mltc.models.scores import predict_scores
        return [predict_scores(est.fit(X, Y), X)[0]]
    if kind == "threshold":
        return [est.fit(X, Y, Y_train=Y).predict(X)]
    return [est.fit(Y).value(X, Y)]


def _inputs(kind, seed):
    if kind in ("threshold", "loss"):
        S, Y = _scores(seed)
        return (S if kind == "threshold" else np.log(S / (1 - S) + 1e-9)), Y
    return _data(seed, kind="csr")


# ---- the checks --------------------------------------------------------------------------------------------------

def check_sklearn_api(name, est):
    """No attribute set in ``__init__``; ``get_params`` stable; ``set_params`` round-trips."""
    check_no_attributes_set_in_init(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, est)


def check_clone(name, est):
    """``clone`` gives an equal, unfitted copy (``get_params`` the same, no fitted attribute)."""
    copy = clone(est)
    assert type(copy) is type(est)
    assert set(copy.get_params(deep=False)) == set(est.get_params(deep=False))
    assert not [a for a in vars(copy) if a.endswith("_") and not a.startswith("_")], name


def check_init_keyword_only_params_stored(name, est):
    """Every ``__init__`` argument is stored under its own name (YAML key = argument = ``get_params`` key)."""
    sig = inspect.signature(type(est))
    params = est.get_params(deep=False)
    assert set(sig.parameters) - {"self"} == set(params), name


def check_same_seed_same_output(name, est):
    """Two fits with the same seed on the same data give the same output."""
    kind = _kind(type(est))
    X, Y = _inputs(kind, 1)
    a = _out(clone(est), kind, X, Y)
    b = _out(clone(est), kind, X, Y)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


def check_different_seeds_differ(name, est):
    """A randomised sampler gives different output for different seeds (its seed is used)."""
    X, Y = _inputs("sampler", 2)
    outs = [_out(clone(est).set_params(random_state=rs), "sampler", X, Y) for rs in (0, 1, 2)]

    def same(p, q):
        return all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(p, q))

    assert not (same(outs[0], outs[1]) and same(outs[0], outs[2])), f"{name} gives one output for seeds 0, 1, 2"


def check_sampler_keeps_container(name, est):
    """CSR stays CSR, dense stays dense; dtype, columns and label width are kept."""
    for kind in ("csr", "dense"):
        X, Y = _data(3, kind=kind)
        X = X.astype(np.float32)
        out = clone(est).fit_resample(X, Y)
        X2, Y2 = out[0], out[1]
        assert sp.issparse(X2) == (kind == "csr"), f"{name} turned {kind} input into {type(X2).__name__}"
        if kind == "csr":
            assert X2.format == "csr"
        assert X2.dtype == np.float32 and X2.shape[1] == X.shape[1]
        assert Y2.ndim == 2 and Y2.shape == (X2.shape[0], Y.shape[1]) and set(np.unique(Y2)) <= {0, 1}
        if len(out) > 2 and out[2] is not None:
            assert np.asarray(out[2]).shape == (X2.shape[0],)


def check_sampler_does_not_change_its_input(name, est):
    """``fit_resample`` leaves the caller's X and Y as they were."""
    X, Y = _data(4, kind="csr")
    X0, Y0 = X.copy(), Y.copy()
    clone(est).fit_resample(X, Y)
    np.testing.assert_array_equal(X.toarray(), X0.toarray())
    np.testing.assert_array_equal(Y, Y0)


def check_model_fit_predict(name, est):
    """``fit`` returns self; scores are (n, L); ``predict`` gives a (n, L) 0/1 matrix."""
    from mltc.models.scores import predict_scores

    X, Y = _data(5, kind="csr")
    model = clone(est)
    assert model.fit(X, Y) is model, f"{name}.fit must return self"
    S, _ = predict_scores(model, X)
    assert S.shape == Y.shape and np.isfinite(S).all()
    P = np.asarray(model.predict(X))
    assert P.shape == Y.shape and set(np.unique(P)) <= {0, 1}


def check_threshold_fit_predict(name, est):
    """``fit`` returns self; ``predict`` gives a 0/1 int8 matrix; ``summary_`` is a dict of numbers."""
    S, Y = _scores(6)
    rule = clone(est)
    assert rule.fit(S, Y, Y_train=Y) is rule, f"{name}.fit must return self"
    P = rule.predict(S)
    assert P.shape == S.shape and P.dtype == np.int8 and set(np.unique(P)) <= {0, 1}
    summary = rule.summary_
    assert isinstance(summary, dict) and all(isinstance(v, (int, float)) for v in summary.values())


def check_loss_fit_value_grad(name, est):
    """``fit(Y)`` (label statistics) returns self; value, gradient and hessian are finite (n, L) arrays."""
    z, Y = _inputs("loss", 7)
    loss = clone(est)
    assert loss.fit(Y) is loss
    value = loss.value(z, Y)
    g, h = loss.grad_hess(z, Y)
    for a in (value, g, h):
        assert a.shape == Y.shape and np.isfinite(a).all()


_CHECKS = {
    "all": (check_sklearn_api, check_clone, check_init_keyword_only_params_stored),
    "sampler": (check_same_seed_same_output, check_different_seeds_differ, check_sampler_keeps_container,
                check_sampler_does_not_change_its_input),
    "model": (check_model_fit_predict, check_same_seed_same_output),
    "threshold": (check_threshold_fit_predict, check_same_seed_same_output),
    "loss": (check_loss_fit_value_grad,),
}


def checks_for(cls) -> list:
    """The checks that apply to ``cls`` (by its kind)."""
    checks = list(_CHECKS["all"]) + list(_CHECKS[_kind(cls)])
    if "random_state" not in inspect.signature(cls).parameters:
        checks = [c for c in checks if c is not check_different_seeds_differ]
    return checks


def parametrize_with_checks(estimators=None):
    """A ``pytest.mark.parametrize`` over ``(estimator, check)`` for every discovered class (or ``estimators``).

    The test receives a built instance and a ``check(name, estimator)`` callable; a pair in
    :data:`EXPECTED_FAILURES` is marked ``xfail(strict=True)`` with its reason, so it fails loudly once it passes.
    """
    import pytest

    classes = estimators if estimators is not None else [c for _, c in all_estimators()]
    params = []
    for cls in classes:
        for check in checks_for(cls):
            reason = EXPECTED_FAILURES.get((cls.__name__, check.__name__))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            params.append(pytest.param(cls, check, id=f"{cls.__name__}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize("cls, check", params)


def run_check(cls, check):
    """Build ``cls`` and run ``check`` on it (warnings from tiny data silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(cls.__name__, build(cls))
