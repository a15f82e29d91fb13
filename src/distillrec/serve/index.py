"""Top-k by inner product over an item table: exact below a catalogue size, a faiss HNSW graph above it.

`ExactIndex` scores every item (`table @ user`, float32) and takes the top k; `HNSWIndex` searches a faiss HNSW
graph (inner product), approximate, with the number of candidates `ef_search` it visits per query.
Both take a set of excluded rows (the user's history) and return rows and scores, best first, never an excluded
row. `recall_at_k` measures how many of the exact top-k an index finds, the figure a server reports for its
approximate index. Items added after the build (`add`) are searchable at once.
"""

from __future__ import annotations

import threading

import numpy as np

from distillrec.evaluate.ranking import top_k

__all__ = ["ExactIndex", "HNSWIndex", "make_index", "recall_at_k"]


class ExactIndex:
    kind = "exact"

    def __init__(self, table: np.ndarray) -> None:
        self.table = np.ascontiguousarray(table, dtype=np.float32)  # (n_items, dim)

    def __len__(self) -> int:
        return len(self.table)

    def add(self, rows: np.ndarray) -> None:
        self.table = np.concatenate(
            [self.table, np.asarray(rows, dtype=np.float32).reshape(-1, self.table.shape[1])]
        )

    def scores(self, user: np.ndarray) -> np.ndarray:
        """(n_items,) float32 inner products of every item with `user` (dim,)."""
        return self.table @ np.asarray(user, dtype=np.float32)

    def search(self, user: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(user)
        scores[exclude] = -np.inf
        picked = top_k(scores[None, :], min(k, len(scores)))[0]
        picked = picked[np.isfinite(scores[picked])]
        return picked, scores[picked]


class HNSWIndex(ExactIndex):
    """Approximate search with faiss (`IndexHNSWFlat`, inner product); `scores` stays exact."""

    kind = "hnsw"

    def __init__(self, table: np.ndarray, m: int = 32, ef_search: int = 128) -> None:
        try:
            import faiss
        except ImportError as exc:
            raise ImportError("an approximate index needs faiss: pip install -e '.[serve]'") from exc
        super().__init__(table)
        self.ef_search = ef_search
        self._index = faiss.IndexHNSWFlat(self.table.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = max(40, 2 * m)
        self._index.hnsw.efSearch = ef_search
        self._index.add(self.table)
        self._lock = threading.Lock()  # faiss does not search and add at once

    def add(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(np.asarray(rows, dtype=np.float32).reshape(-1, self.table.shape[1]))
        with self._lock:
            super().add(rows)
            self._index.add(rows)

    def search(self, user: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        exclude = np.unique(np.asarray(exclude, dtype=np.int64))
        want = min(len(self.table), k + len(exclude))  # enough candidates to drop the excluded ones
        with self._lock:
            self._index.hnsw.efSearch = max(self.ef_search, want)
            scores, rows = self._index.search(np.asarray(user, dtype=np.float32)[None, :], want)
        keep = (rows[0] >= 0) & ~np.isin(rows[0], exclude)
        return rows[0][keep][:k], scores[0][keep][:k]


def make_index(table: np.ndarray, kind: str = "auto", exact_below: int = 200_000) -> ExactIndex:
    """`kind` "exact", "hnsw", or "auto": exact for catalogues smaller than `exact_below` items."""
    if kind == "auto":
        kind = "exact" if len(table) < exact_below else "hnsw"
    if kind == "exact":
        return ExactIndex(table)
    if kind == "hnsw":
        return HNSWIndex(table)
    raise ValueError(f"index must be auto, exact or hnsw, got {kind!r}")


def recall_at_k(index: ExactIndex, users: np.ndarray, k: int = 10) -> float:
    """Mean share of each user vector's exact top-k (no exclusions) that `index.search` returns."""
    none = np.zeros(0, dtype=np.int64)
    exact = ExactIndex(index.table)
    found = [
        len(np.intersect1d(index.search(u, k, none)[0], exact.search(u, k, none)[0])) / min(k, len(exact))
        for u in users
    ]
    return float(np.mean(found)) if found else 1.0
