"""Ranking metrics from the ranks of each user's relevant items.

Input: `ranks`, a `(n_users, max_targets)` float array of 1-based ranks of each user's relevant (target) items
in the full ranked list (padding = `inf`), and `n_targets` `(n_users,)`. Output: one value per user, so
confidence intervals and paired tests can be computed later.

With `R` = the set of a user's target ranks and `n = |R|`:
- HR@K     = 1 if some r in R has r <= K, else 0
- Recall@K = |{r in R : r <= K}| / n
- NDCG@K   = sum_{r in R, r <= K} 1 / log2(r + 1)  /  sum_{i=1}^{min(n, K)} 1 / log2(i + 1)
- MRR      = 1 / min(R)  (no cut-off)
- MAP@K    = sum_{i-th hit at rank r_i <= K} (i / r_i) / min(n, K)
- Precision@K = |{r in R : r <= K}| / K
With one target per user (leave-one-out), Recall@K = HR@K and NDCG@K = 1/log2(r + 1) when r <= K.
"""

from __future__ import annotations

import numpy as np


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks <= k).any(axis=1).astype(np.float64)


def recall(ranks: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return (ranks <= k).sum(axis=1) / np.maximum(n_targets, 1)


def precision(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks <= k).sum(axis=1) / k


def ndcg(ranks: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    gains = np.where(ranks <= k, 1.0 / np.log2(np.minimum(ranks, k) + 1.0), 0.0)
    ideal_discounts = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    ideal = ideal_discounts[np.clip(n_targets, 1, k) - 1]
    return gains.sum(axis=1) / ideal


def mrr(ranks: np.ndarray) -> np.ndarray:
    return 1.0 / ranks.min(axis=1)


def average_precision(ranks: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    sorted_ranks = np.sort(ranks, axis=1)
    hit_number = np.arange(1, ranks.shape[1] + 1)[None, :]
    precisions = np.where(sorted_ranks <= k, hit_number / sorted_ranks, 0.0)
    return precisions.sum(axis=1) / np.minimum(np.maximum(n_targets, 1), k)


def all_metrics(ranks: np.ndarray, n_targets: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every per-user metric at every cut-off in `ks`, keyed like `"NDCG@10"`, plus `"MRR"`."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate(ranks, k)
        out[f"Recall@{k}"] = recall(ranks, n_targets, k)
        out[f"NDCG@{k}"] = ndcg(ranks, n_targets, k)
        out[f"MAP@{k}"] = average_precision(ranks, n_targets, k)
        out[f"Precision@{k}"] = precision(ranks, k)
    out["MRR"] = mrr(ranks)
    return out
