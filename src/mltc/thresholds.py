"""Decision rules: turn an (n, L) score matrix into 0/1 label predictions.

(Over 600 lines on purpose: one job, eight rules that share private helpers, the block-wise threshold
counts, the rank helpers and the top-label fill, and read best side by side. Splitting them into
``base`` / ``cuts`` / ``ranks`` modules would move pickled classes' ``__module__`` for no change in concern.)

Every rule is fitted on validation scores (or out-of-fold training scores, see
:func:`mltc.model_selection.oof_scores`) and then applied unchanged to test scores; ``predict`` never
sees labels. Two families:

* threshold rules (``thresholds_`` is an (L,) array; predict ``score >= threshold``):
  :class:`FixedThreshold`, :class:`GlobalThreshold`, :class:`PerLabelThreshold`,
  :class:`PerLabelCVThreshold`, :class:`SCut`;
* rank rules (``thresholds_`` is ``None``): :class:`PCut` (per label, over the
  documents of the batch), :class:`RCut` (top-k per document), :class:`MCut` (largest
  gap per document).

Every rule takes ``at_least_one``: a document left without labels gets its top label.

References
----------
Y. Yang. "A study of thresholding strategies for text categorization." SIGIR 2001.
R.-E. Fan and C.-J. Lin. "A study on threshold selection for multi-label
classification." Technical report, National Taiwan University, 2007.
C. Largeron, C. Moulin and M. Géry. "MCut: a thresholding strategy for multi-label
classification." IDA 2012.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mltc.metrics import THRESHOLD_METRICS, f1_from_tp_fp_fn
from mltc.model_selection import oof_scores  # noqa: F401 (its old home; import it from mltc.model_selection)

__all__ = [
    "BaseThreshold", "FixedThreshold", "GlobalThreshold", "PerLabelThreshold",
    "PerLabelCVThreshold", "SCut", "PCut", "RCut", "MCut", "oof_scores",
]

SCORE_KINDS = ("proba", "margin")
# Labels are processed in blocks so that per-label sorting of n x L scores stays
# within a few tens of MB when L is in the thousands.
_BLOCK_CELLS = 1 << 22


# --------------------------------------------------------------------------- helpers

def _check_scores(scores, name="scores", allow_no_rows=False) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (documents x labels) array, got shape {s.shape}.")
    if s.shape[1] == 0 or (s.shape[0] == 0 and not allow_no_rows):
        raise ValueError(f"{name} is empty (shape {s.shape}); this rule is tuned on labelled scores, so it "
                         "needs a validation split with at least one document.")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the model's predict_proba / "
                         "decision_function output.")
    return s


def _check_labels(Y, shape, name="Y") -> np.ndarray:
    Y = np.asarray(Y)
    if Y.shape != shape:
        raise ValueError(f"{name} has shape {Y.shape} but the scores have shape {shape}; pass the labels of "
                         "the same documents the scores were computed for.")
    if not np.isin(Y, (0, 1)).all():
        raise ValueError(f"{name} must be a 0/1 label indicator matrix.")
    return Y.astype(np.int8, copy=False)


def _top_label_fill(pred: np.ndarray, scores: np.ndarray) -> np.ndarray:
    empty = ~pred.any(axis=1)
    if empty.any():
        rows = np.flatnonzero(empty)
        pred[rows, scores[rows].argmax(axis=1)] = 1
    return pred


def _ranks_desc(scores: np.ndarray, axis: int) -> np.ndarray:
    """Rank of each score along ``axis`` (0 = highest); ties broken by position."""
    order = np.argsort(-scores, axis=axis, kind="stable")
    ranks = np.empty_like(order)
    shape = [1, 1]
    shape[axis] = scores.shape[axis]
    np.put_along_axis(ranks, order, np.arange(scores.shape[axis]).reshape(shape), axis=axis)
    return ranks


def _prevalence_counts(Y, Y_train, n_labels):
    """Positive counts and number of documents of the training labels (else of ``Y``)."""
    ref = Y if Y_train is None else np.asarray(Y_train)
    if ref.shape[0] == 0:
        raise ValueError("This rule needs label prevalences: pass Y_train (the training labels) to fit.")
    if ref.ndim != 2 or ref.shape[1] != n_labels:
        raise ValueError(f"Y_train has shape {ref.shape}; it must have one column per label ({n_labels}).")
    return ref.sum(axis=0).astype(np.int64), ref.shape[0]


def _threshold_counts(scores, Y, candidates, *, at_least_one=False, per_doc=False):
    """Predicted-positive and true-positive counts at every candidate threshold, in one pass.

    A score is predicted positive at candidate ``c`` iff ``candidates[c] <= score``. Each score
    is placed once in the sorted candidate grid (``searchsorted``) and the counts for all
    candidates follow from cumulative sums, so the cost is O(nL log C + (n + L) C).

    Returns ``(pred, tp)`` of shape (C, L), plus ``(pred_doc, tp_doc)`` of shape (n, C) when
    ``per_doc``. With ``at_least_one`` the counts include the top label given to documents
    that would otherwise be empty.
    """
    n, L = scores.shape
    C = candidates.size
    k = np.searchsorted(candidates, scores, side="right")  # candidates passed by each score
    col = np.broadcast_to(np.arange(L), (n, L))
    flat = (k * L + col).ravel()
    hist = np.bincount(flat, minlength=(C + 1) * L).reshape(C + 1, L)
    hist_tp = np.bincount(flat, weights=Y.ravel(), minlength=(C + 1) * L).reshape(C + 1, L)
    # predicted at c  <=>  k > c: reverse cumulative sum, dropping k = 0
    pred = np.cumsum(hist[::-1], axis=0)[::-1][1:]
    tp = np.cumsum(hist_tp[::-1], axis=0)[::-1][1:]
    if at_least_one:
        top = scores.argmax(axis=1)
        kmax = k[np.arange(n), top]
        y_top = Y[np.arange(n), top]
        # a document is empty at c  <=>  its top score passes no candidate >= c, i.e. c >= kmax
        add = np.bincount(kmax * L + top, minlength=(C + 1) * L).reshape(C + 1, L)
        add_tp = np.bincount(kmax * L + top, weights=y_top, minlength=(C + 1) * L).reshape(C + 1, L)
        pred = pred + np.cumsum(add, axis=0)[:C]
        tp = tp + np.cumsum(add_tp, axis=0)[:C]
    if not per_doc:
        return pred, tp
    row = np.broadcast_to(np.arange(n)[:, None], (n, L))
    flat_d = (row * (C + 1) + k).ravel()
    hd = np.bincount(flat_d, minlength=n * (C + 1)).reshape(n, C + 1)
    hd_tp = np.bincount(flat_d, weights=Y.ravel(), minlength=n * (C + 1)).reshape(n, C + 1)
    pred_d = np.cumsum(hd[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp_d = np.cumsum(hd_tp[:, ::-1], axis=1)[:, ::-1][:, 1:]
    if at_least_one:
        empty = np.arange(C)[None, :] >= kmax[:, None]
        pred_d = pred_d + empty
        tp_d = tp_d + empty * y_top[:, None]
    return pred, tp, pred_d, tp_d


def _f1(tp, pred, pos):
    """F1 from true positives, predicted positives and actual positives."""
    return f1_from_tp_fp_fn(tp, np.subtract(pred, tp), np.subtract(pos, tp))


def _global_curve(scores, Y, candidates, metric, at_least_one):
    """``metric`` (micro/macro/samples F1) at every candidate threshold."""
    if metric == "samples_f1":
        _, _, pred_d, tp_d = _threshold_counts(scores, Y, candidates, at_least_one=at_least_one, per_doc=True)
        return _f1(tp_d, pred_d, Y.sum(axis=1)[:, None]).mean(axis=0)
    pred, tp = _threshold_counts(scores, Y, candidates, at_least_one=at_least_one)
    if metric == "micro_f1":
        return _f1(tp.sum(axis=1), pred.sum(axis=1), Y.sum())
    return _f1(tp, pred, Y.sum(axis=0)[None, :]).mean(axis=1)


def _per_label_best(scores, Y, beta):
    """Best F-beta cut of each label's scores, over every distinct score (exact, like PR curves).

    Returns ``(threshold, best_fbeta, varies)``, each of shape (L,). The threshold is the
    midpoint between the lowest accepted and the highest rejected score, so a test score between
    two validation scores is decided by the nearer one. Labels without positives get NaN;
    ``varies`` is False for labels whose scores are all equal (nothing to rank by).
    """
    n, L = scores.shape
    b2 = beta * beta
    thr = np.full(L, np.nan)
    best_f = np.full(L, np.nan)
    varies = scores.max(axis=0) > scores.min(axis=0)
    block = max(1, _BLOCK_CELLS // n)
    rank = np.arange(1, n + 1, dtype=np.float64)[:, None]
    for start in range(0, L, block):
        sl = slice(start, min(L, start + block))
        order = np.argsort(-scores[:, sl], axis=0, kind="stable")
        s = np.take_along_axis(scores[:, sl], order, axis=0)
        tp = np.cumsum(np.take_along_axis(Y[:, sl], order, axis=0), axis=0, dtype=np.float64)
        pos = tp[-1]
        # F-beta when the top r documents are predicted: (1+b2) tp / (b2 * positives + r)
        f = (1.0 + b2) * tp / (b2 * pos + rank)
        # a cut inside a run of tied scores cannot be expressed by a threshold
        f[:-1][s[:-1] == s[1:]] = -1.0
        r = f.argmax(axis=0)
        cols = np.arange(r.size)
        lo = s[np.minimum(r + 1, n - 1), cols]
        hi = s[r, cols]
        mid = 0.5 * (hi + lo)
        # the midpoint of two adjacent floats may round onto the rejected score
        t = np.where((r < n - 1) & (mid > lo), mid, hi)
        has = pos > 0
        thr[sl] = np.where(has, t, np.nan)
        best_f[sl] = np.where(has, f[r, cols], np.nan)
    return thr, best_f, varies


def _prevalence_thresholds(scores, counts, n_ref):
    """Per-label threshold predicting each label for its reference share of these documents."""
    n = scores.shape[0]
    k = np.clip(-(-counts * n // n_ref), 1, n)  # ceil(prevalence * n)
    s = -np.sort(-scores, axis=0)
    cols = np.arange(scores.shape[1])
    hi = s[k - 1, cols]
    lo = s[np.minimum(k, n - 1), cols]
    mid = 0.5 * (hi + lo)
    # a tie across the cut would assign the label to every tied document (all of them when the
    # scores are constant): stop above the tie instead, and never assign a label absent from training
    above = np.nextafter(hi, np.inf)
    t = np.where(k == n, hi, np.where(mid > lo, mid, above))
    return np.where(counts == 0, np.nextafter(s[0], np.inf), t)


# --------------------------------------------------------------------------- base class

class BaseThreshold(BaseEstimator):
    """Common shape of all decision rules.

    Subclasses write ``_fit(scores, Y, Y_train)`` (setting ``thresholds_`` and their own
    fitted attributes) and, for rank rules, ``_predict(scores)``.
    """

    #: The pipeline supplies out-of-fold training scores instead of validation scores.
    needs_oof: bool = False
    #: The rule learns from labelled scores; when False, ``fit`` accepts zero rows (no validation split).
    needs_validation: bool = True

    _parameter_constraints: dict = {"at_least_one": ["boolean"]}

    def fit(self, scores, Y, *, score_kind="proba", Y_train=None):
        """Fit the rule on validation (or out-of-fold) scores.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_labels)
            Validation scores, or out-of-fold training scores when ``needs_oof``.
        Y : array-like of shape (n_samples, n_labels)
            True 0/1 labels of the same documents.
        score_kind : {"proba", "margin"}, default="proba"
            ``"proba"`` for probabilities in [0, 1], ``"margin"`` for decision values centred at 0.
        Y_train : array-like of shape (n_train, n_labels), optional
            Training labels, used by the prevalence-based rules; ``Y`` is used when absent.

        Returns
        -------
        self
        """
        self._validate_params()
        if score_kind not in SCORE_KINDS:
            raise ValueError(f"score_kind must be one of {SCORE_KINDS}, got {score_kind!r}.")
        scores = _check_scores(scores, allow_no_rows=not self.needs_validation)
        if score_kind == "proba" and scores.size and (scores.min() < 0 or scores.max() > 1):
            raise ValueError(f"{type(self).__name__}: score_kind='proba' but scores lie in "
                             f"[{scores.min():.3g}, {scores.max():.3g}]; pass score_kind='margin' for "
                             "decision_function outputs.")
        Y = _check_labels(Y, scores.shape)
        self.score_kind_ = score_kind
        self.n_labels_ = scores.shape[1]
        self._fit(scores, Y, Y_train)
        return self

    def predict(self, scores) -> np.ndarray:
        """Predict 0/1 labels for a score matrix.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_labels)

        Returns
        -------
        Y_pred : ndarray of shape (n_samples, n_labels), dtype int8
        """
        check_is_fitted(self, "n_labels_")
        scores = _check_scores(scores, allow_no_rows=True)
        if scores.shape[1] != self.n_labels_:
            raise ValueError(f"{type(self).__name__} was fitted on {self.n_labels_} labels but the scores have "
                             f"{scores.shape[1]} columns.")
        pred = self._predict(scores).astype(np.int8, copy=False)
        return _top_label_fill(pred, scores) if self.at_least_one and pred.size else pred

    def _predict(self, scores):
        return scores >= self.thresholds_[None, :]

    @property
    def summary_(self) -> dict:
        """Scalars worth logging (e.g. the threshold, or the spread of per-label thresholds), as a dict
        (an attribute, as on strategies and models; a subclass adds its own in :meth:`_summary`)."""
        check_is_fitted(self, "n_labels_")
        return self._summary()

    def _summary(self) -> dict:
        check_is_fitted(self, "n_labels_")
        t = self.thresholds_
        if t is None:
            return {}
        if np.all(t == t[0]):
            return {"threshold": float(t[0])}
        return {"threshold_mean": float(t.mean()), "threshold_median": float(np.median(t)),
                "threshold_min": float(t.min()), "threshold_max": float(t.max())}

    def to_frame(self, label_names=None) -> pd.DataFrame | None:
        """Per-label thresholds as a table (for an MLflow artifact); ``None`` for rank rules."""
        check_is_fitted(self, "n_labels_")
        if self.thresholds_ is None:
            return None
        names = list(label_names) if label_names is not None else [str(j) for j in range(self.n_labels_)]
        if len(names) != self.n_labels_:
            raise ValueError(f"{len(names)} label names for {self.n_labels_} labels.")
        df = pd.DataFrame({"label": names, "threshold": self.thresholds_})
        for extra in ("n_positives_", "best_score_", "source_"):
            if hasattr(self, extra):
                df[extra.rstrip("_")] = getattr(self, extra)
        return df


# --------------------------------------------------------------------------- threshold rules

class FixedThreshold(BaseThreshold):
    """One fixed threshold for every label.

    Parameters
    ----------
    threshold : float, default=None
        ``None`` means 0.5 for probabilities and 0.0 for margins.
    at_least_one : bool, default=False
        Give a document with no predicted label its top-scoring label.
    """

    needs_validation = False

    _parameter_constraints = {**BaseThreshold._parameter_constraints, "threshold": [Real, None]}

    def __init__(self, *, threshold=None, at_least_one=False):
        self.threshold = threshold
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        t = self.threshold
        if t is None:
            t = 0.5 if self.score_kind_ == "proba" else 0.0
        self.thresholds_ = np.full(self.n_labels_, float(t))


class GlobalThreshold(BaseThreshold):
    """One threshold for all labels, tuned on validation scores for a multi-label F1.

    Candidates are evenly spaced between the lowest and highest validation score; the
    metric is computed for all of them at once (see ``_threshold_counts``). With
    ``at_least_one`` the tuning accounts for the top label added to empty documents.

    Parameters
    ----------
    metric : str, default="micro_f1"
        ``micro_f1``, ``macro_f1``, ``samples_f1`` (fast path), or any other thresholded
        metric of :mod:`mltc.metrics` (``jaccard_samples_zd1``, ``macro_pr_f1``, ...),
        evaluated at each candidate.
    candidates : int, default=200
        Number of candidate thresholds.
    at_least_one : bool, default=False
    """

    _parameter_constraints = {
        **BaseThreshold._parameter_constraints,
        "metric": [StrOptions(set(THRESHOLD_METRICS))],
        "candidates": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, *, metric="micro_f1", candidates=200, at_least_one=False):
        self.metric = metric
        self.candidates = candidates
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        grid = np.unique(np.linspace(scores.min(), scores.max(), self.candidates))
        if self.metric in ("micro_f1", "macro_f1", "samples_f1"):
            curve = _global_curve(scores, Y, grid, self.metric, self.at_least_one)
        else:
            from mltc.metrics import threshold_metric

            fn = threshold_metric(self.metric)
            cut = (lambda t: _top_label_fill((scores >= t).astype(np.int8), scores)) if self.at_least_one else \
                (lambda t: scores >= t)
            curve = np.array([fn(Y, cut(t)) for t in grid])
        best = int(curve.argmax())
        self.candidates_ = grid
        self.curve_ = curve
        self.best_score_ = float(curve[best])
        self.thresholds_ = np.full(self.n_labels_, grid[best])

    def _summary(self):
        return {**super()._summary(), f"val_{self.metric}": self.best_score_}


class PerLabelThreshold(BaseThreshold):
    """One threshold per label maximising that label's F-beta on validation scores.

    Every distinct validation score is a candidate cut (exact, as in a precision-recall
    curve; vectorised with sorting and cumulative sums) and the threshold is the midpoint
    between the last accepted and the first rejected score (Fan & Lin 2007).

    Labels with fewer than ``min_positives`` validation positives, or with the same score for
    every validation document (a label the model never saw in training), have no usable optimum
    and take the ``fallback``:

    * ``"prevalence"``: the threshold that predicts the label for its training share of the
      validation documents (the PCut rule turned into a threshold; the share in ``Y`` when
      ``Y_train`` is not given); a label absent from training is never assigned;
    * ``"global"``: the micro-F1 tuned :class:`GlobalThreshold` of the same scores (too high
      for rare labels, whose scores stay small: on Reuters-21578 it leaves them unpredicted);
    * ``"fixed"``: 0.5 for probabilities, 0.0 for margins.

    ``shrinkage`` pulls thresholds tuned on few positives towards the global threshold:
    ``t = (n_pos * t_label + shrinkage * t_global) / (n_pos + shrinkage)``, a pseudo-count of
    ``shrinkage`` validation positives at the global threshold.

    Parameters
    ----------
    beta : float, default=1.0
        Recall weight of F-beta (1 = F1).
    fallback : {"prevalence", "global", "fixed"}, default="prevalence"
    shrinkage : float, default=0.0
        Pseudo-count towards the global threshold; 0 turns shrinkage off.
    min_positives : int, default=1
        Fewer validation positives than this and the label uses the fallback.
    at_least_one : bool, default=False
        Applied at prediction time; tuning ignores it (labels are tuned independently).

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_labels,)
    global_threshold_ : float
    n_positives_ : ndarray of shape (n_labels,)
        Validation positives per label.
    best_score_ : ndarray of shape (n_labels,)
        Validation F-beta at the tuned (unshrunk) threshold; NaN for fallback labels.
    source_ : ndarray of str
        ``"tuned"``, ``"shrunk"`` or ``"fallback_<rule>"`` per label.

    Examples
    --------
    >>> import numpy as np
    >>> from mltc.thresholds import PerLabelThreshold
    >>> scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    >>> Y = np.array([[1], [1], [0], [1], [0], [0]])
    >>> rule = PerLabelThreshold().fit(scores, Y)  # F1 peaks when the top four are predicted
    >>> rule.thresholds_
    array([0.55])
    >>> rule.predict(np.array([[0.56], [0.54]])).ravel()
    array([1, 0], dtype=int8)
    """

    _parameter_constraints = {
        **BaseThreshold._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="neither")],
        "fallback": [StrOptions({"global", "prevalence", "fixed"})],
        "shrinkage": [Interval(Real, 0, None, closed="left")],
        "min_positives": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, beta=1.0, fallback="prevalence", shrinkage=0.0, min_positives=1, at_least_one=False):
        self.beta = beta
        self.fallback = fallback
        self.shrinkage = shrinkage
        self.min_positives = min_positives
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        self.global_threshold_ = float(GlobalThreshold().fit(scores, Y, score_kind=self.score_kind_)
                                       .thresholds_[0])
        tuned, best, varies = _per_label_best(scores, Y, float(self.beta))
        n_pos = Y.sum(axis=0).astype(np.int64)
        use_fb = (n_pos < self.min_positives) | ~varies
        if self.fallback == "global":
            fb = np.full(self.n_labels_, self.global_threshold_)
        elif self.fallback == "prevalence":
            fb = _prevalence_thresholds(scores, *_prevalence_counts(Y, Y_train, self.n_labels_))
        else:
            fb = np.full(self.n_labels_, 0.5 if self.score_kind_ == "proba" else 0.0)
        lam = float(self.shrinkage)
        shrunk = (n_pos * np.nan_to_num(tuned) + lam * self.global_threshold_) / np.maximum(n_pos + lam, 1e-12)
        thr = np.where(lam > 0, shrunk, tuned)
        self.thresholds_ = np.where(use_fb, fb, thr)
        self.n_positives_ = n_pos
        self.best_score_ = np.where(use_fb, np.nan, best)
        self.source_ = np.where(use_fb, f"fallback_{self.fallback}", "shrunk" if lam > 0 else "tuned")

    def _summary(self):
        out = super()._summary()
        out["n_fallback"] = int(np.char.startswith(self.source_.astype(str), "fallback").sum())
        out["global_threshold"] = self.global_threshold_
        return out


class PerLabelCVThreshold(PerLabelThreshold):
    """:class:`PerLabelThreshold` fitted on out-of-fold training scores (no validation split).

    The caller computes the scores with :func:`mltc.model_selection.oof_scores` (``n_splits`` multi-label
    stratified folds on the training split) and refits the model on all training data for
    the test predictions, as LibMultiLabel does. ``fit`` is that of
    :class:`PerLabelThreshold`; ``n_splits`` is read by the caller.

    Parameters
    ----------
    n_splits : int, default=5
        Number of cross-validation folds.
    min_positives : int, default=3
        Higher than for validation scores: a label's only training positive is scored by a fold
        model that never saw a positive, and tuning on it assigns the label to hundreds of
        documents (Reuters-21578: micro-F1 0.18 with 1, 0.80 with 3).
    beta, fallback, shrinkage, at_least_one
        As in :class:`PerLabelThreshold`.
    """

    needs_oof = True

    _parameter_constraints = {
        **PerLabelThreshold._parameter_constraints,
        "n_splits": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, *, n_splits=5, beta=1.0, fallback="prevalence", shrinkage=0.0, min_positives=3,
                 at_least_one=False):
        self.n_splits = n_splits
        self.beta = beta
        self.fallback = fallback
        self.shrinkage = shrinkage
        self.min_positives = min_positives
        self.at_least_one = at_least_one


class SCut(BaseThreshold):
    """Score cut (Yang 2001): per label, the validation score threshold that maximises F1.

    This is the original formulation; :class:`PerLabelThreshold` is the extended variant
    (F-beta, fallbacks for labels without positives, shrinkage). SCut's only guard for rare
    labels is Yang's *fbr* heuristic (SCutFBR.1): when a label's best validation F1 is
    below ``fbr`` -- and always for a label without validation positives or with constant
    scores -- its threshold is raised just above the label's top validation score, so that
    only documents scoring higher than every validation document are assigned it.

    Parameters
    ----------
    fbr : float in [0, 1], default=None
        ``None`` applies the top-score rule only to labels without validation positives.
        Yang (2001) tunes it on validation data; 0.1 to 0.5 are typical.
    at_least_one : bool, default=False

    Attributes
    ----------
    thresholds_ : ndarray of shape (n_labels,)
    best_score_ : ndarray of shape (n_labels,)
        Best validation F1 per label (0 where a label has no positives).
    source_ : ndarray of str
        ``"tuned"`` or ``"fbr"`` per label.
    """

    _parameter_constraints = {
        **BaseThreshold._parameter_constraints,
        "fbr": [Interval(Real, 0, 1, closed="both"), None],
    }

    def __init__(self, *, fbr=None, at_least_one=False):
        self.fbr = fbr
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        tuned, best, varies = _per_label_best(scores, Y, 1.0)
        best = np.nan_to_num(best, nan=0.0)
        n_pos = Y.sum(axis=0)
        low = (n_pos == 0) | ~varies
        if self.fbr is not None:
            low |= best < self.fbr
        # strictly above the top score: a label scored constantly (e.g. never seen in training) must
        # not be assigned to every document that ties with it
        self.thresholds_ = np.where(low, np.nextafter(scores.max(axis=0), np.inf), tuned)
        self.n_positives_ = n_pos.astype(np.int64)
        self.best_score_ = best
        self.source_ = np.where(low, "fbr", "tuned")

    def _summary(self):
        return {**super()._summary(), "n_fbr": int((self.source_ == "fbr").sum())}


# --------------------------------------------------------------------------- rank rules

class PCut(BaseThreshold):
    """Proportional cut (Yang 2001): each label goes to its training share of the documents.

    For a batch of ``n`` documents label ``j`` is assigned to the ``ceil(p_j * n)``
    highest-scoring documents, ``p_j`` being its prevalence in ``Y_train`` (in ``Y`` when
    ``Y_train`` is not given). The rule needs the whole batch, so ``thresholds_`` is None;
    ties at the cut are broken by document order.

    Parameters
    ----------
    at_least_one : bool, default=False

    Attributes
    ----------
    prevalence_ : ndarray of shape (n_labels,)
    """

    needs_validation = False

    def __init__(self, *, at_least_one=False):
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        self.train_counts_, self.n_train_ = _prevalence_counts(Y, Y_train, self.n_labels_)
        self.prevalence_ = self.train_counts_ / self.n_train_
        self.thresholds_ = None

    def n_selected(self, n_docs: int) -> np.ndarray:
        """Documents assigned to each label in a batch of ``n_docs``: ``ceil(prevalence * n_docs)``."""
        check_is_fitted(self, "prevalence_")
        # integer ceiling: float prevalence * n can land just above a whole number
        return -(-self.train_counts_ * int(n_docs) // self.n_train_)

    def _predict(self, scores):
        return _ranks_desc(scores, axis=0) < self.n_selected(scores.shape[0])[None, :]

    def _summary(self):
        return {"prevalence_mean": float(self.prevalence_.mean())}


class RCut(BaseThreshold):
    """Rank cut (Yang 2001): the ``k`` highest-scoring labels of every document.

    Parameters
    ----------
    k : int or "cardinality", default=1
        ``"cardinality"`` uses the mean number of labels per training document (``Y_train``,
        else ``Y``), rounded, at least 1.
    at_least_one : bool, default=False
        Has no effect (k >= 1); kept so every rule takes it.

    Attributes
    ----------
    k_ : int
    """

    needs_validation = False

    _parameter_constraints = {
        **BaseThreshold._parameter_constraints,
        "k": [Interval(Integral, 1, None, closed="left"), StrOptions({"cardinality"})],
    }

    def __init__(self, *, k=1, at_least_one=False):
        self.k = k
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        if self.k == "cardinality":
            counts, n_ref = _prevalence_counts(Y, Y_train, self.n_labels_)
            self.cardinality_ = float(counts.sum() / n_ref)
            k = max(1, int(np.floor(self.cardinality_ + 0.5)))
        else:
            k = int(self.k)
        if k > self.n_labels_:
            raise ValueError(f"RCut(k={k}) asks for more labels per document than there are ({self.n_labels_}); "
                             "lower k.")
        self.k_ = k
        self.thresholds_ = None

    def _predict(self, scores):
        if self.k_ == scores.shape[1]:
            return np.ones(scores.shape, dtype=bool)
        top = np.argpartition(-scores, self.k_ - 1, axis=1)[:, :self.k_]
        pred = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(pred, top, True, axis=1)
        return pred

    def _summary(self):
        return {"k": self.k_}


class MCut(BaseThreshold):
    """Maximum cut (Largeron et al. 2012): split each document at its largest score gap.

    A document's scores are sorted in decreasing order and the labels above the largest
    gap between consecutive scores are predicted (the threshold is the gap's midpoint). It
    needs no tuning; when several gaps are equally large the first (highest) is used. A
    document always gets at least one label unless all its scores are equal.

    Parameters
    ----------
    at_least_one : bool, default=False
    """

    needs_validation = False

    def __init__(self, *, at_least_one=False):
        self.at_least_one = at_least_one

    def _fit(self, scores, Y, Y_train):
        if self.n_labels_ < 2:
            raise ValueError("MCut needs at least two labels to find a gap between scores; use fixed or global.")
        self.thresholds_ = None

    def _predict(self, scores):
        s = -np.sort(-scores, axis=1)
        gap = s[:, :-1] - s[:, 1:]
        n_keep = gap.argmax(axis=1) + 1
        n_keep[gap.max(axis=1) <= 0] = 0  # all scores equal: no gap to cut at
        return _ranks_desc(scores, axis=1) < n_keep[:, None]
