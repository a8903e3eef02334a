"""A label tree: one-vs-rest inside the nodes of a tree of label clusters, searched with a beam.

For thousands of labels. A document trains only the nodes whose subtree holds one of its labels, and
prediction follows the ``beam_width`` most probable branches, so both grow much more slowly than the
number of labels (one-vs-rest trains every label on every document and scores every label).

References
----------
Prabhu, Kag, Harsola, Agrawal, Varma (2018), Parabel: partitioned label trees for extreme classification. WWW.
Khandagale, Xiao, Babbar (2020), Bonsai: diverse and shallow trees for extreme multi-label classification. MLJ 109.
Lin et al. (2023), LibMultiLabel's ``linear.train_tree`` (the defaults here: 100 clusters, depth 10, beam 10).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from mltc.models.base import BaseMultilabelClassifier
from mltc.models.binary_relevance import BinaryRelevance, _Constant
from mltc.models.losses import sigmoid
from mltc.progress import track

__all__ = ["LabelTree", "TreeNode"]


@dataclass
class TreeNode:
    """One node of a fitted :class:`LabelTree`.

    Attributes
    ----------
    labels : ndarray of int
        The labels of the subtree, sorted.
    children : list of int
        Child node ids; empty for a node whose children are its labels (a leaf cluster).
    depth : int
        0 at the root.
    """

    labels: np.ndarray
    children: list
    depth: int

    @property
    def is_leaf(self) -> bool:
        return not self.children


def label_representations(X, Y):
    """Row j: the sum of the L2-normalised rows of ``X`` whose documents have label j, L2-normalised.

    Returns a sparse matrix for sparse ``X`` (labels x features); a label without training documents gets a zero row.
    """
    Yc = sp.csr_matrix((np.asarray(Y) > 0).astype(np.float64))
    R = Yc.T @ normalize(X)
    return normalize(sp.csr_matrix(R) if sp.issparse(R) else R)


def _split(R, K, rng):
    """Partition the rows of ``R`` into at most ``K`` non-empty groups (indices into ``R``)."""
    from sklearn.cluster import KMeans

    seed = rng.randint(np.iinfo(np.int32).max)
    with warnings.catch_warnings():
        # identical rows (e.g. labels without documents) leave fewer distinct clusters than K
        warnings.simplefilter("ignore")
        assign = KMeans(n_clusters=K, n_init=1, random_state=seed).fit(R).labels_
    groups = [np.flatnonzero(assign == k) for k in range(K)]
    groups = [g for g in groups if g.size]
    if len(groups) < 2:
        # all rows alike: k-means cannot separate them, so split in order to keep the depth bounded
        groups = [g for g in np.array_split(np.arange(R.shape[0]), K) if g.size]
    return groups


def _bisect(R, rng, max_iter=20):
    """Balanced spherical 2-means (Parabel): the rows of ``R`` (unit vectors) in two halves of equal size.

    Each round ranks the rows by their cosine to the first centroid minus the second and cuts the ranking in
    the middle, then recomputes both centroids; it stops when the halves no longer change.
    """
    n = R.shape[0]
    first, second = rng.choice(n, 2, replace=False)
    C = np.vstack([_row(R, first), _row(R, second)])
    half, previous = n // 2, None
    for _ in range(max_iter):
        S = np.asarray(R @ C.T)
        # stable: equal differences (e.g. labels without documents, all-zero rows) keep their order
        order = np.argsort(S[:, 1] - S[:, 0], kind="stable")
        a = np.sort(order[:half])
        if previous is not None and np.array_equal(a, previous):
            break
        previous = a
        inside = np.zeros(n, dtype=bool)
        inside[a] = True
        C = np.vstack([_centroid(R, inside), _centroid(R, ~inside)])
    b = np.setdiff1d(np.arange(n), previous)
    return previous, b


def _row(R, i):
    return R[i].toarray().ravel() if sp.issparse(R) else np.asarray(R[i], dtype=float).ravel()


def _centroid(R, mask):
    c = np.asarray(R[mask].sum(axis=0), dtype=float).ravel()
    norm = np.linalg.norm(c)
    return c / norm if norm > 0 else c


def _balanced_split(R, K, rng):
    """At most ``K`` groups of near-equal size: the largest group is bisected (:func:`_bisect`) until there are K."""
    groups = [np.arange(R.shape[0])]
    while len(groups) < K:
        largest = max(range(len(groups)), key=lambda i: groups[i].size)  # the first of equal sizes
        g = groups[largest]
        if g.size < 2:
            break
        a, b = _bisect(R[g], rng)
        groups[largest:largest + 1] = [g[a], g[b]]
    return groups


def _build(R, K, max_depth, rng, split="kmeans"):
    """The tree as a list of :class:`TreeNode` (root first, then depth-first in cluster order)."""
    nodes = []
    divide = _balanced_split if split == "balanced" else _split

    def grow(labels, depth):
        v = len(nodes)
        nodes.append(TreeNode(labels=labels, children=[], depth=depth))
        if labels.size > K and depth + 1 < max_depth:
            for g in divide(R[labels], K, rng):
                nodes[v].children.append(grow(labels[g], depth + 1))
        return v

    grow(np.arange(R.shape[0]), 0)
    return nodes


class LabelTree(BaseMultilabelClassifier):
    """Binary classifiers in a tree of label clusters, searched with a beam (Parabel, Bonsai, LibMultiLabel).

    Labels are represented by the normalised sum of their documents' normalised rows and split
    recursively by k-means (on unit vectors, as LibMultiLabel) into ``n_clusters`` groups until a node
    holds at most ``n_clusters`` labels. Each node fits one clone of ``estimator`` per child (a child
    is positive for a document that has a label in the child's subtree), on the documents that have a
    label in the node's subtree only (the root: every document). A label's score is the product of the
    child probabilities along its path, for the labels the beam reaches; 0 for the others.

    Parameters
    ----------
    estimator : estimator, default=None
        Binary classifier with ``predict_proba`` or ``decision_function`` (margins go through a sigmoid).
        None: ``LogisticRegression(solver="liblinear")``.
    n_clusters : int, default=100
        Children of an internal node (k-means' K); a node with at most this many labels is a leaf cluster.
    max_depth : int, default=10
        Most levels of classifiers from the root to a label (1: one-vs-rest at the root).
    beam_width : int, default=10
        Nodes kept per level of the search; at least the number of nodes scores every label.
    split : {"kmeans", "balanced"}, default="kmeans"
        How a node's labels are divided: ``"kmeans"``, k-means into ``n_clusters`` clusters of any size
        (LibMultiLabel); ``"balanced"``, ``n_clusters`` groups of near-equal size by repeated balanced
        spherical 2-means (Parabel's split), which bounds the depth at about log_K(labels) where k-means
        can leave one large cluster per level.
    n_jobs : int, default=1
        Children of a node fitted in parallel (see :class:`~mltc.models.BinaryRelevance`; same models
        for any value).
    random_state : int, RandomState or None, default=None
        Seeds the k-means of every split.

    Attributes
    ----------
    tree_ : list of TreeNode
        The nodes, root first.
    estimators_ : list of BinaryRelevance or None
        Per node, its children's classifiers (None: no training document reached the node; its
        children score 0).
    node_rows_ : list of int
        Per node, its training documents (those with a label in its subtree; the root: all).
    n_nodes_ : int
    n_labels_ : int
    summary_ : dict
        ``depth`` (levels of classifiers), ``n_nodes``, ``n_leaf_clusters``, ``mean_train_rows`` (per node),
        ``binary_rows`` (training rows summed over every binary classifier) and ``ovr_rows``
        (documents x labels: what one-vs-rest would train).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(6) + 0.1; Y = np.eye(6, dtype=int)
    >>> tree = LabelTree(n_clusters=2, random_state=0).fit(X, Y)
    >>> tree.predict_proba(X).shape, tree.summary_["n_leaf_clusters"] >= 3
    ((6, 6), True)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), None],
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "beam_width": [Interval(Integral, 1, None, closed="left")],
        "split": [StrOptions({"kmeans", "balanced"})],
        "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, estimator=None, n_clusters=100, max_depth=10, beam_width=10, split="kmeans", n_jobs=1,
                 random_state=None):
        self.estimator = estimator
        self.n_clusters = n_clusters
        self.max_depth = max_depth
        self.beam_width = beam_width
        self.split = split
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _base_estimator(self):
        if self.estimator is not None:
            return self.estimator
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(solver="liblinear")

    def fit(self, X, Y, sample_weight=None):
        """Build the tree on the training labels and fit every node's classifiers."""
        est = self._base_estimator()
        Y = self._validate_fit_input(X, Y, sample_weight, weighted={"estimator": est}, binarize=True)
        if sp.issparse(X):
            X = sp.csr_matrix(X)
        n, L = Y.shape
        rng = check_random_state(self.random_state)
        self.tree_ = _build(label_representations(X, Y), self.n_clusters, self.max_depth, rng, self.split)
        # documents x nodes: which documents have a label in each node's subtree (one product, not a pass per node)
        rows, cols = zip(*[(j, v) for v, node in enumerate(self.tree_) for j in node.labels])
        member = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(L, len(self.tree_)))
        reach = sp.csr_matrix(Y) @ member
        by_node = reach.tocsc()
        self.estimators_, self.node_rows_ = [], []
        for v, node in enumerate(track(self.tree_, "tree nodes", min_seconds=1.0)):
            docs = np.arange(n) if v == 0 else np.sort(by_node.indices[by_node.indptr[v]:by_node.indptr[v + 1]])
            if node.is_leaf:
                T = Y[docs][:, node.labels]
            else:
                T = reach[docs][:, node.children].toarray() > 0
            self.node_rows_.append(int(docs.size))
            if docs.size == 0:
                self.estimators_.append(None)
                continue
            br = BinaryRelevance(est, n_jobs=self.n_jobs)
            w = None if sample_weight is None else np.asarray(sample_weight)[docs]
            self.estimators_.append(br.fit(X[docs], T.astype(np.int8), sample_weight=w))
        width = [len(node.children) or node.labels.size for node in self.tree_]
        self.n_nodes_ = len(self.tree_)
        self.n_labels_ = L
        self.n_features_in_ = X.shape[1]
        self.score_kind_ = "proba"
        self.summary_ = {"depth": 1 + max(node.depth for node in self.tree_), "n_nodes": self.n_nodes_,
                         "n_leaf_clusters": sum(node.is_leaf for node in self.tree_),
                         "mean_train_rows": float(np.mean(self.node_rows_)),
                         "binary_rows": int(np.dot(self.node_rows_, width)), "ovr_rows": int(n * L)}
        return self

    def node_proba(self, v, X):
        """(n_samples, n_children) probabilities of node ``v``'s children (its labels for a leaf cluster)."""
        node, br = self.tree_[v], self.estimators_[v]
        width = len(node.children) or node.labels.size
        if br is None:
            return np.zeros((X.shape[0], width))
        if br.score_kind_ == "proba":
            return br.predict_proba(X)
        P = sigmoid(br.decision_function(X))
        for k, e in enumerate(br.estimators_):
            if isinstance(e, _Constant):  # a child constant in training keeps its 0 or 1, not sigmoid(+-1)
                P[:, k] = e.value
        return P

    def predict_proba(self, X):
        """(n_samples, n_labels) path probabilities of the labels the beam reaches; 0 for the others."""
        if sp.issparse(X):
            X = sp.csr_matrix(X)
        n = X.shape[0]
        out = np.zeros((n, self.n_labels_))
        # the beam of every document at once: node ids (-1: empty slot) and their path probabilities
        nodes = np.zeros((n, 1), dtype=np.intp)
        probs = np.ones((n, 1))
        leaf = np.array([node.is_leaf for node in self.tree_] + [True])  # index -1: empty slots count as done
        while not leaf[nodes].all():
            doc, node, prob = [], [], []
            for v in np.unique(nodes):
                if v < 0:
                    continue
                d, s = np.nonzero(nodes == v)
                if leaf[v]:  # a leaf cluster reached earlier keeps its place in the beam
                    doc.append(d)
                    node.append(np.full(d.size, v))
                    prob.append(probs[d, s])
                    continue
                children = np.asarray(self.tree_[v].children)
                doc.append(np.repeat(d, children.size))
                node.append(np.tile(children, d.size))
                prob.append((probs[d, s][:, None] * self.node_proba(v, X[d])).ravel())
            nodes, probs = self._keep_best(np.concatenate(doc), np.concatenate(node), np.concatenate(prob), n)
        for v in np.unique(nodes):
            if v >= 0:
                d, s = np.nonzero(nodes == v)
                out[d[:, None], self.tree_[v].labels] = probs[d, s][:, None] * self.node_proba(v, X[d])
        return out

    def _keep_best(self, doc, node, prob, n):
        """Each document's ``beam_width`` most probable candidates, as (n, width) node and probability arrays."""
        # ties broken by node id: the beam does not depend on the order nodes were visited in
        order = np.lexsort((node, -prob, doc))
        doc, node, prob = doc[order], node[order], prob[order]
        start = np.searchsorted(doc, np.arange(n))
        rank = np.arange(doc.size) - start[doc]
        keep = rank < self.beam_width
        width = int(rank[keep].max()) + 1
        nodes = np.full((n, width), -1, dtype=np.intp)
        probs = np.zeros((n, width))
        nodes[doc[keep], rank[keep]] = node[keep]
        probs[doc[keep], rank[keep]] = prob[keep]
        return nodes, probs

    def predict(self, X):
        """Labels whose path probability is at least 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int8)
