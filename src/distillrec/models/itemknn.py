"""ItemKNN: item-based nearest neighbours with (shrunk) cosine similarity (Sarwar et al. 2001).

Input: training `Interactions`, read as the binary `user_items` matrix X `(n_users, n_items)`.
Output: a sparse item-item matrix S `(n_items, n_items)`; a user's scores are `history_row @ S`.

    sim(i, j) = (X^T X)_ij / (|x_i| |x_j| + shrink),   |x_i| = sqrt(number of users of item i)

The diagonal is zeroed, then each column j keeps only its `k_neighbours` largest similarities: the
neighbourhood of the item being scored, so score(u, j) = sum of sim(i, j) over the items i of u's history
that are among j's k nearest (Sarwar et al. 2001; the `ItemKNNCF` of Dacrema et al. 2019, "Are we really
making much progress?"). Ties are broken towards the smaller item index, so the result is deterministic.
Everything stays sparse: X^T X has at most sum_u |I_u|^2 entries, small for 12k-item catalogues.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import ItemKNNParams


class ItemKNN(Recommender):
    params_model = ItemKNNParams

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        if self.k_neighbours < 1:
            raise ValueError(f"k_neighbours must be >= 1, got {self.k_neighbours}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink}")
        self.similarity_ = cosine_top_k(train.user_items, self.k_neighbours, self.shrink)
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        rows = history.user_items[users]  # (batch, n_items) sparse
        return np.asarray((rows @ self.similarity_).toarray(), dtype=np.float32)  # (batch, n_items)

    def n_params(self) -> int:
        return int(self.similarity_.nnz)

    def fitted_state(self) -> dict[str, np.ndarray]:
        sim = self.similarity_  # sparse CSC: its three arrays and the shape
        return {"data": sim.data, "indices": sim.indices, "indptr": sim.indptr, "shape": np.array(sim.shape)}

    def restore(self, state: dict[str, np.ndarray], shape: Interactions) -> Self:
        arrays = (state["data"], state["indices"], state["indptr"])
        self.similarity_ = sp.csc_matrix(arrays, shape=tuple(int(n) for n in state["shape"]))
        return self


def cosine_top_k(user_items: sp.csr_matrix, k: int, shrink: float) -> sp.csc_matrix:
    """`(n_items, n_items)` shrunk cosine similarity, zero diagonal, top-`k` entries per column (CSC, float32)."""
    x = sp.csr_matrix(user_items, dtype=np.float64)
    x.data[:] = 1.0  # binary
    co = (x.T @ x).tocoo()  # (n_items, n_items) co-occurrence counts
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # (n_items,)
    off_diagonal = co.row != co.col
    rows, cols = co.row[off_diagonal], co.col[off_diagonal]
    values = co.data[off_diagonal] / (norms[rows] * norms[cols] + shrink)
    # Rank entries within each column: by column, then similarity descending, then row ascending.
    order = np.lexsort((rows, -values, cols))
    rows, cols, values = rows[order], cols[order], values[order]
    n_items = user_items.shape[1]
    starts = np.searchsorted(cols, np.arange(n_items))  # first entry of each column
    rank_in_column = np.arange(len(cols)) - starts[cols]
    keep = rank_in_column < k
    return sp.csc_matrix(
        (values[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n_items, n_items)
    )
