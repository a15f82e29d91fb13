"""Placing an item the model never saw in its item space, from the item's text alone.

`TextPlacement.fit(text, table)` learns a ridge map from the teacher's text vectors (with a bias) to the model's
item vectors over the known items; `place(text)` maps new items' text vectors and scales each result to the median
length of the known vectors. The scaling matters: a ridge prediction is shrunk towards the mean, so its inner
products with user vectors are small and a placed item would almost never reach a top-10; at the median length a
new item competes as a typical item does, which is also what lets it collect its first feedback. Measured on the
quickstart run (`benchmarks/new_items.py`, BENCHMARKS.md section 6): the map's own length gives a held-out item
HR@10 0.003, the median length 0.020, against 0.184 for the item's learned vector.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TextPlacement", "fit_text_map"]


def fit_text_map(text: np.ndarray, target: np.ndarray, seed: int = 0) -> np.ndarray:
    """(d_text + 1, dim) ridge map from text vectors (with a bias column) to item vectors; the ridge strength is
    the one of (0.1, 1, 10, 100) with the best mean cosine on a held-out tenth of the rows."""
    x = np.hstack([text, np.ones((len(text), 1), dtype=np.float32)]).astype(np.float64)
    y = target.astype(np.float64)
    held = np.random.default_rng(seed).random(len(x)) < 0.1
    if held.all() or not held.any():
        held = np.zeros(len(x), dtype=bool)

    def solve(rows: np.ndarray, strength: float) -> np.ndarray:
        a = x[rows].T @ x[rows] + strength * np.eye(x.shape[1])
        return np.linalg.solve(a, x[rows].T @ y[rows])

    def cosine(w: np.ndarray) -> float:
        pred, true = x[held] @ w, y[held]
        norms = np.linalg.norm(pred, axis=1) * np.linalg.norm(true, axis=1)
        return float(np.mean((pred * true).sum(axis=1) / np.maximum(norms, 1e-12)))

    strengths = (0.1, 1.0, 10.0, 100.0)
    best = max(strengths, key=lambda s: cosine(solve(~held, s))) if held.any() else 1.0
    return solve(np.ones(len(x), dtype=bool), best).astype(np.float32)


class TextPlacement:
    def fit(self, text: np.ndarray, table: np.ndarray) -> TextPlacement:
        """text (n, d_text) and table (n, dim): the known items' text vectors and the model's item vectors."""
        self.map_ = fit_text_map(text, table)  # (d_text + 1, dim)
        self.length_ = float(np.median(np.linalg.norm(table, axis=1)))
        return self

    def place(self, text: np.ndarray) -> np.ndarray:
        """(n, d_text) text vectors -> (n, dim) item vectors."""
        mapped = np.hstack([text, np.ones((len(text), 1), dtype=np.float32)]) @ self.map_
        return (
            mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12) * self.length_
        ).astype(np.float32)
