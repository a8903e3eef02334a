"""Sparse-matrix helpers shared by tests."""
from __future__ import annotations


def with_unsorted_indices(X):
    """A copy of CSR ``X`` whose column indices run backwards in every row (as some vectorizers leave them)."""
    Xu = X.copy()
    for i in range(Xu.shape[0]):
        a, b = Xu.indptr[i], Xu.indptr[i + 1]
        Xu.indices[a:b] = Xu.indices[a:b][::-1].copy()
        Xu.data[a:b] = Xu.data[a:b][::-1].copy()
    Xu.has_sorted_indices = False
    return Xu
