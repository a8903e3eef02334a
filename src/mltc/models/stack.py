"""Score-level stacking: average the scores of several models, each on its own feature block.

With ``features=tfidf+minilm`` one matrix holds a TF-IDF block and an embedding block.
A single linear model on the concatenation must share one regularisation strength
between a 58k-dimensional sparse block and a 384-dimensional dense one; fitting one
model per block and averaging their probabilities (late fusion) lets each block keep
its own model and strength. The per-label thresholds tuned afterwards on validation
scores absorb the calibration differences of the averaged scores.

Averaging on the log-odds scale (``scale="logit"``) suits members whose scores are
margins, e.g. a linear SVM with boosted trees: their errors differ, so the average
beats each (Schapire & Singer 2000 on Reuters).

References
----------
Wolpert (1992), Stacked generalization. Neural Networks 5(2).
Kittler et al. (1998), On combining classifiers. IEEE TPAMI 20(3) (the mean rule).
Schapire & Singer (2000), BoosTexter: a boosting-based system for text categorization. Machine Learning 39.
"""
from __future__ import annotations

import inspect
import os
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from mltc.feature_cache import _versions
from mltc.models.base import BaseMultilabelClassifier
from mltc.model_selection import oof_folds
from mltc.models.scores import predict_scores
from mltc.progress import track

__all__ = ["ScoreAverage", "ScoreStack", "default_meta", "stack_features"]

# probabilities are clipped before the logit so that one saturated member cannot outvote the others alone
_EPS = 1e-6


def _logit(p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _column_slice(spec, n_features, i, feature_blocks=None):
    """``slice`` of columns from ``None`` (all), a block name, or ``[start, stop]`` (slice bounds, None = open)."""
    if spec is None:
        return slice(None)
    if isinstance(spec, str):
        if not feature_blocks:
            raise ValueError(f"columns[{i}]={spec!r} names a feature block, but fit got no feature_blocks: use a "
                             "featurizer with named blocks (TextUnion(names=[...])) through mltc run or "
                             "run_pipeline, pass fit(..., feature_blocks={name: [start, stop]}), or give [start, stop].")
        if spec not in feature_blocks:
            raise ValueError(f"columns[{i}]={spec!r} is not a block of the features; their blocks are "
                             f"{list(feature_blocks)}.")
        spec = feature_blocks[spec]
    if not (isinstance(spec, (list, tuple)) and len(spec) == 2
            and all(b is None or isinstance(b, Integral) for b in spec)):
        raise ValueError(f"columns[{i}]={spec!r} must be null (all columns) or [start, stop] with integer or null "
                         "bounds, e.g. [0, -384] for the TF-IDF block and [-384, null] for MiniLM's 384 dims, "
                         "or the name of a feature block.")
    sl = slice(*spec)
    if len(range(n_features)[sl]) == 0:
        raise ValueError(f"columns[{i}]={list(spec)} selects no column of a {n_features}-column matrix.")
    return sl


class ScoreAverage(BaseMultilabelClassifier):
    """Weighted mean of several models' label scores, each model on its own column block.

    Every estimator is cloned and fitted on ``X[:, columns[i]]``. With ``scale="proba"``
    margins (a model without ``predict_proba``) are squashed with the logistic function and
    probabilities are averaged; with ``scale="logit"`` probabilities become log-odds (clipped
    to ``[1e-6, 1 - 1e-6]``) and margins are used as they are. The mean rule of
    Kittler et al. (1998) as late fusion (Wolpert 1992 stacks with a learned combiner;
    a fixed mean needs no held-out data and no extra fit).

    Parameters
    ----------
    estimators : list of multi-label estimators
    columns : list of (None, str or [start, stop]), optional
        Column block of each estimator: the name of a featurizer block (``"word"``; see
        :class:`mltc.features.TextUnion` ``names``, handed to ``fit`` as ``feature_blocks``), or
        Python slice bounds (negative counts from the end). None: every estimator sees all columns.
    weights : list of float, optional
        Weight of each estimator's scores (normalised to sum 1); None is the plain mean.
        On the logit scale weights also put scales on a par (an SVM margin of 1 is the edge
        of its margin, a booster's log-odds span tens).
    scale : {"proba", "logit"}, default="proba"
        Average probabilities, or log-odds / margins.

    Attributes
    ----------
    estimators_ : list
        The fitted clones.
    score_kind_ : "proba" or "margin"
        What :func:`mltc.models.predict_scores` returns: the mean probability (``scale="proba"``)
        or the mean log-odds (``scale="logit"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mltc.models import BinaryRelevance
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(120, 6)); Y = (X[:, :2] > 0.5).astype(int)
    >>> m = ScoreAverage(estimators=[BinaryRelevance(LogisticRegression()), BinaryRelevance(LogisticRegression())],
    ...                  columns=[[0, 3], [3, None]]).fit(X, Y)
    >>> m.predict_proba(X).shape
    (120, 2)
    """

    _parameter_constraints = {
        "estimators": [list, tuple],
        "columns": [list, tuple, None],
        "weights": [list, tuple, None],
        "scale": [StrOptions({"proba", "logit"})],
    }

    def __init__(self, estimators=None, *, columns=None, weights=None, scale="proba"):
        self.estimators = estimators
        self.columns = columns
        self.weights = weights
        self.scale = scale

    def _check(self, n_features, feature_blocks=None):
        k = len(self.estimators or ())
        if k == 0:
            raise ValueError("ScoreAverage needs at least one estimator in estimators=[...].")
        cols = self.columns if self.columns is not None else [None] * k
        if len(cols) != k:
            raise ValueError(f"columns has {len(cols)} entries for {k} estimators; give one block per estimator.")
        w = np.ones(k) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights={self.weights} must be {k} non-negative numbers with a positive sum.")
        return [_column_slice(c, n_features, i, feature_blocks) for i, c in enumerate(cols)], w / w.sum()

    def _validate_fit_input(self, X, Y, sample_weight=None, *, binarize=False):
        # every member gets the weights
        members = {f"estimators[{i}]": est for i, est in enumerate(self.estimators or ())}
        return super()._validate_fit_input(X, Y, sample_weight, weighted=members, binarize=binarize)

    @staticmethod
    def _block(X, sl):
        if sl == slice(None):
            return X
        return X[:, sl].tocsr() if sp.issparse(X) else np.asarray(X)[:, sl]

    def fit(self, X, Y, sample_weight=None, feature_blocks=None):
        """Fit a clone of every estimator on its column block (``sample_weight`` goes to each).

        ``feature_blocks`` (name -> ``[start, stop]``, the featurizer's ``blocks_``) resolves block names in
        ``columns``.
        """
        self._validate_fit_input(X, Y, sample_weight)
        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        self.slices_, self.weights_ = self._check(X.shape[1], feature_blocks)
        self._fit_members(X, Y, self.estimators, sample_weight)
        self.score_kind_ = "proba" if self.scale == "proba" else "margin"
        return self

    def _fit_members(self, X, Y, members, sample_weight):
        """``estimators_``: a clone of every member fitted on its block of ``X`` (``slices_`` set)."""
        self.estimators_ = []
        for est, sl in zip(members, self.slices_):
            est = clone(est)
            Xi = self._block(X, sl)
            if sample_weight is None:
                est.fit(Xi, Y)
            else:
                est.fit(Xi, Y, sample_weight=sample_weight)
            self.estimators_.append(est)
        self.n_features_in_ = X.shape[1]

    def _fitted_input(self, X):
        check_is_fitted(self, "estimators_")
        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features but {type(self).__name__} was fitted on "
                             f"{self.n_features_in_}; use the featurizer fitted with the model.")
        return X

    def _mean(self, X):
        X = self._fitted_input(X)
        out = 0.0
        for est, sl, w in zip(self.estimators_, self.slices_, self.weights_):
            S, kind = predict_scores(est, self._block(X, sl))
            if self.scale == "proba":
                S = S if kind == "proba" else expit(S)
            elif kind == "proba":
                S = _logit(S)
            out = out + w * S
        return np.asarray(out, dtype=np.float64)

    def predict_proba(self, X):
        """(n_samples, n_labels) mean probability (``scale="proba"``) or sigmoid of the mean log-odds."""
        out = self._mean(X)
        return out if self.scale == "proba" else expit(out)

    def decision_function(self, X):
        """(n_samples, n_labels) mean log-odds (``scale="logit"``) or log-odds of the mean probability."""
        out = self._mean(X)
        return out if self.scale == "logit" else _logit(out)

    def predict(self, X):
        """Labels whose averaged score is above the midpoint (probability 0.5, log-odds 0)."""
        return (self.decision_function(X) > 0).astype(np.int8)


def _logit_scores(model, X):
    """A fitted member's scores on the log-odds scale (margins as they are)."""
    S, kind = predict_scores(model, X)
    return (_logit(S) if kind == "proba" else S), "margin"


def stack_features(M, weights, center, spread, label_prior):
    """:class:`ScoreStack`'s meta rows: (n, L, k) member log-odds -> (n * L, k + 4).

    Columns: the k standardised log-odds ``(M - center) / spread``, their ``weights``-weighted
    sum, the label's rank in its document by that sum (0 = top), the best sum among the
    document's other labels, and ``label_prior`` of the label.
    """
    n, L, _ = M.shape
    mean = M @ np.asarray(weights, dtype=np.float64)
    order = np.argsort(-mean, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(L)[None, :], axis=1)
    best = np.take_along_axis(mean, order[:, :1], axis=1)
    # one label: no other label to compete with, so the feature repeats the label's own mean (finite, uninformative)
    second = np.take_along_axis(mean, order[:, 1:2], axis=1) if L > 1 else best
    other = np.where(rank == 0, second, best)
    F = np.concatenate([(M - center) / spread, mean[..., None], rank[..., None].astype(np.float64), other[..., None],
                        np.broadcast_to(np.asarray(label_prior, dtype=np.float64)[None, :, None], (n, L, 1))],
                       axis=-1)
    return F.reshape(n * L, -1)


def _seeded(estimator, seed):
    """A clone of ``estimator`` whose ``random_state`` parameters left at None (at any depth) are ``seed``."""
    est = clone(estimator)
    if seed is None:
        return est
    unset = {k: seed for k, v in est.get_params(deep=True).items()
             if (k == "random_state" or k.endswith("__random_state")) and v is None}
    return est.set_params(**unset)


def default_meta(random_state=None, n_jobs=1):
    """The meta-learner :class:`ScoreStack` uses when none is given: a small, slow-learning LightGBM."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=300, learning_rate=0.03, num_leaves=15, min_child_samples=50, subsample=0.8,
                          subsample_freq=1, colsample_bytree=0.8, random_state=random_state, n_jobs=n_jobs,
                          verbose=-1)


def _fit_member(est, X, Y, sample_weight):
    est = clone(est)
    return est.fit(X, Y) if sample_weight is None else est.fit(X, Y, sample_weight=sample_weight)


def _fold_scores(est, X, Y, train, test, sample_weight=None, versions=None):
    """A member fitted on rows ``train``, its log-odds of rows ``test``.

    Module level, so that joblib.Memory can key and keep it; ``versions`` only keys the cache (scores kept
    by other library versions are not reused).
    """
    fitted = _fit_member(est, X[train], Y[train], None if sample_weight is None else sample_weight[train])
    return _logit_scores(fitted, X[test])[0]


def _fold_fit(est, X, Y, train, test, sample_weight=None, versions=None):
    """As :func:`_fold_scores`, and the fitted member too (``ScoreStack(refit=False)`` predicts with it)."""
    fitted = _fit_member(est, X[train], Y[train], None if sample_weight is None else sample_weight[train])
    return _logit_scores(fitted, X[test])[0], fitted


def _task(est, X, Y, train, test, sample_weight, memory, versions, keep=False):
    """A task of :meth:`ScoreStack.fit`'s pool: one fold's out-of-fold scores (with its fitted member where
    ``keep``), or (``test`` None) a refit."""
    if test is None:
        return _fit_member(est, X, Y, sample_weight)
    fn = _fold_fit if keep else _fold_scores
    fold = fn if memory is None else memory.cache(fn)
    return fold(est, X, Y, train, test, sample_weight, versions)


class _FoldMean:
    """A member's fold models as one model: the mean of their log-odds (``ScoreStack(refit=False)``)."""

    def __init__(self, estimators):
        self.estimators_ = list(estimators)

    def decision_function(self, X):
        return np.mean([_logit_scores(est, X)[0] for est in self.estimators_], axis=0)


class ScoreStack(ScoreAverage):
    """Stacked generalisation: a meta-learner scores every (document, label) pair from the members' scores.

    The members (as in :class:`ScoreAverage`, each on its column block) are fitted on
    ``cv`` multi-label stratified folds of the training data; their out-of-fold log-odds
    train one binary meta-learner shared by all labels (Wolpert 1992), then the members
    are refitted on all training data. Each (document, label) pair is one meta row:

    * every member's log-odds, standardised over the training pairs;
    * the ``weights``-weighted mean of the log-odds (what :class:`ScoreAverage` returns);
    * the label's rank in the document by that mean (0 = top) and the best mean of the
      document's other labels, so that labels compete within a document (Reuters stories
      are rarely both ``earn`` and ``acq``);
    * ``log(1 + training positives)`` of the label, so that rare labels get their own cut.

    The meta-learner's log-odds are the model's scores; thresholds are tuned on them as on
    any model's. Fitting costs ``cv + 1`` fits of every member (``cv`` with ``refit=False``).
    Memory grows with documents x labels (one meta row per pair).

    Parameters
    ----------
    estimators, columns, weights
        As in :class:`ScoreAverage`; ``weights`` only shape the mean-score features.
    scale : {"logit"}, default="logit"
        Members are combined as log-odds (margins as they are); the only scale, kept so that a
        :class:`ScoreAverage` configuration turns into a stack by changing its target.
    meta : binary classifier, optional
        With ``predict_proba``. None: :func:`default_meta` (LightGBM, 300 trees of 15 leaves).
    cv : int, default=5
        Folds of the out-of-fold member scores.
    refit : bool, default=True
        Refit every member on all training data for prediction. False keeps the ``cv`` fold
        models of each member instead and scores new documents with the mean of their log-odds
        (as bagged ensembles do, e.g. AutoGluon's): one member fit in ``cv + 1`` saved, each
        fold model trained on ``(cv - 1) / cv`` of the documents, prediction ``cv`` times the
        members' cost and a model ``cv`` times their size.
    random_state : int, optional
        Seeds the folds (the same folds for every member), the default meta-learner and every
        member parameter named ``random_state`` left at None (liblinear shuffles with numpy's
        global generator otherwise, which differs between the processes that fit the folds).
    n_jobs : int, optional
        Processes for one pool of tasks: every (member, fold) fit and every member's final
        refit (``len(estimators) * (cv + 1)`` tasks, in member order); the meta-learner is
        fitted in the calling process while the refits run. None is one task at a time. The
        numbers do not depend on it (members are seeded; results are collected in task order).
    memory : str, Path or joblib.Memory, optional
        Where the members' out-of-fold scores are kept and reused, one entry per (member, fold)
        (keyed by the member, its column block of ``X``, ``Y``, the fold's rows and the sample
        weights), so a second fit on the same data, e.g. with another meta-learner or one member
        changed, fits only what changed plus the final refits.
        ``mltc run`` sets it to ``<runs>/cache/oof`` unless ``cache.oof=false``.

    Attributes
    ----------
    estimators_ : list
        Members refitted on all training data (``refit=False``: each member's fold models,
        scored by the mean of their log-odds).
    meta_ : estimator
        The fitted meta-learner.
    meta_feature_names_ : list of str

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mltc.models import BinaryRelevance
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 6)); Y = (X[:, :3] > 0.3).astype(int)
    >>> m = ScoreStack(estimators=[BinaryRelevance(LogisticRegression())] * 2, columns=[[0, 3], [3, None]],
    ...                meta=LogisticRegression(), cv=3, random_state=0).fit(X, Y)
    >>> m.decision_function(X).shape
    (200, 3)
    """

    _parameter_constraints = {
        **ScoreAverage._parameter_constraints,
        "scale": [StrOptions({"logit"})],
        "meta": [HasMethods(["fit", "predict_proba"]), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
    }

    def __init__(self, estimators=None, *, columns=None, weights=None, scale="logit", meta=None, cv=5,
                 refit=True, random_state=None, n_jobs=None, memory=None):
        super().__init__(estimators, columns=columns, weights=weights, scale=scale)
        self.meta = meta
        self.cv = cv
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.memory = memory

    def _features(self, M):
        return stack_features(M, self.weights_, self.center_, self.spread_, self.label_prior_)

    def fit(self, X, Y, sample_weight=None, feature_blocks=None):
        """Out-of-fold member scores -> meta-learner; then every member refitted on all of ``X`` (if ``refit``).

        ``feature_blocks`` as in :meth:`ScoreAverage.fit`.
        """
        Y = self._validate_fit_input(X, Y, sample_weight, binarize=True)
        X = X.tocsr() if sp.issparse(X) else np.asarray(X)
        self.slices_, self.weights_ = self._check(X.shape[1], feature_blocks)
        fit_params = {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight, dtype=float)}
        seed = self.random_state if isinstance(self.random_state, Integral) else None
        members = [_seeded(est, seed) for est in self.estimators]
        memory = check_memory(self.memory)
        versions = None if memory.location is None else _versions()
        folds = oof_folds(Y, n_splits=self.cv, random_state=seed)
        blocks = [self._block(X, sl) for sl in self.slices_]
        w = fit_params.get("sample_weight")
        # every (member, fold) fit and every final refit is one task of one pool: no process waits for the
        # slowest fold of a member before the next member starts. Results come back in submission order and
        # every member is seeded, so the numbers do not depend on n_jobs.
        tasks = [(i, train, test) for i in range(len(members)) for train, test in folds]
        if self.refit:
            tasks += [(i, None, None) for i in range(len(members))]
        run = delayed(_task)
        keep = not self.refit
        results = Parallel(n_jobs=self.n_jobs, return_as="generator", batch_size=1, pre_dispatch="all")(
            run(members[i], blocks[i], Y, train, test, w, None if memory.location is None else memory, versions, keep)
            for i, train, test in tasks)
        M = np.empty((*Y.shape, len(members)))
        fold_models = [[] for _ in members]
        for i, _, test in track(tasks[:len(members) * len(folds)], "stack: out-of-fold member fits"):
            if keep:
                M[test, :, i], fitted = next(results)
                fold_models[i].append(fitted)
            else:
                M[test, :, i] = next(results)
        flat = M.reshape(-1, M.shape[-1])
        self.center_, self.spread_ = flat.mean(axis=0), flat.std(axis=0)
        self.spread_[self.spread_ == 0] = 1.0
        self.label_prior_ = np.log1p(Y.sum(axis=0).astype(np.float64))
        F = self._features(M)
        # the meta-learner is fitted here while the pool's processes go on with the final refits (if any)
        meta = clone(self.meta) if self.meta is not None else default_meta(seed)
        row_weight = None if w is None else np.repeat(w, Y.shape[1])
        meta.fit(F, Y.reshape(-1), **({} if row_weight is None else {"sample_weight": row_weight}))
        self.meta_ = meta
        k = len(self.estimators)
        self.meta_feature_names_ = [f"member{i}_logit" for i in range(k)] + [
            "mean_logit", "rank_in_document", "best_other_mean_logit", "log1p_train_positives"]
        imp = getattr(meta, "feature_importances_", None)
        imp = np.ravel(getattr(meta, "coef_", [np.nan] * F.shape[1])) if imp is None else imp
        # reaches the run's details.json: which meta-features the combiner leant on
        self.summary_ = {"meta": type(meta).__name__, "cv": self.cv, "refit": bool(self.refit),
                         "meta_feature_importance": dict(zip(self.meta_feature_names_, map(float, imp)))}
        self.estimators_ = list(results) if self.refit else [_FoldMean(f) for f in fold_models]
        self.n_features_in_ = X.shape[1]
        self.score_kind_ = "margin"
        return self

    def decision_function(self, X):
        """(n_samples, n_labels) meta-learner log-odds."""
        check_is_fitted(self, "meta_")
        X = self._fitted_input(X)
        M = np.stack([_logit_scores(est, self._block(X, sl))[0] for est, sl in zip(self.estimators_, self.slices_)],
                     axis=-1)
        F = self._features(M)
        # log-odds without the clipping of _logit where the meta-learner gives them (LightGBM: raw_score)
        if hasattr(self.meta_, "decision_function"):
            s = self.meta_.decision_function(F)
        elif "raw_score" in inspect.signature(self.meta_.predict_proba).parameters:
            s = self.meta_.predict_proba(F, raw_score=True)
        else:
            s = _logit(self.meta_.predict_proba(F)[:, 1])
        return np.asarray(s, dtype=np.float64).reshape(M.shape[0], M.shape[1])

    def predict_proba(self, X):
        """(n_samples, n_labels) meta-learner probabilities."""
        return expit(self.decision_function(X))
