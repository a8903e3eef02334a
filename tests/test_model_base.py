"""The checks every model's ``fit`` starts with, written once (``BaseMultilabelClassifier._validate_fit_input``)."""
import re

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from mltc.models.base import BaseMultilabelClassifier
from mltc.utils.estimator_checks import _data, all_estimators, build

MODELS = all_estimators("model")
# where sample_weight goes: an inner estimator that must accept it, or the model's own loss
INNER = {"estimator": ["BinaryRelevance", "LabelPowerset", "ClassifierChain", "EnsembleClassifierChains", "RAkEL",
                       "LabelTree"],
         "estimators": ["ScoreAverage", "ScoreStack"],
         "own loss": ["BoostedBinaryRelevance", "MLPClassifierHead", "FineTunedEncoder"]}


def test_every_model_has_the_shared_base_and_a_weight_route():
    names = sorted(name for name, _ in MODELS)
    assert all(issubclass(cls, BaseMultilabelClassifier) for _, cls in MODELS)
    assert names == sorted(n for group in INNER.values() for n in group if n in names)
    assert set(names) >= set(INNER["estimator"] + INNER["estimators"])


@pytest.mark.parametrize("name, cls", MODELS, ids=[n for n, _ in MODELS])
def test_bad_label_matrix_is_named_before_fitting(name, cls):
    X, Y = _data()
    want = re.escape(f"{name} needs a 2-D label matrix (documents x labels) with one row per sample")
    with pytest.raises(ValueError, match=want + r".*Y of shape \(120,\)"):
        build(cls).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=want + r"; got X with 120 rows and Y of shape \(119, 5\)"):
        build(cls).fit(X, Y[:-1])


@pytest.mark.parametrize("name", INNER["estimator"] + INNER["estimators"])
def test_weights_for_an_estimator_that_cannot_take_them(name):
    X, Y = _data()
    est = build(dict(MODELS)[name])
    if name in INNER["estimator"]:
        est.set_params(estimator=KNeighborsClassifier())
        where = "estimator (KNeighborsClassifier)"
    else:
        est.set_params(estimators=[est.estimators[0], KNeighborsClassifier()], columns=None, weights=None)
        where = "estimators[1] (KNeighborsClassifier)"
    with pytest.raises(TypeError, match=re.escape(f"{name}: {where} does not accept sample_weight")):
        est.fit(X, Y, sample_weight=np.ones(len(Y)))
