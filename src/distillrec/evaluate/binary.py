"""Metrics of predicted probabilities against 0/1 labels: the per-task metrics of multi-task (CTR/CVR) models.

- `auc`: the probability that a random positive scores above a random negative (ties count one half), from
  average ranks (the Mann-Whitney U statistic); NaN when the labels hold one class only.
- `gauc`: the AUC of each user's own impressions, averaged with each user's number of impressions as weight
  (Zhou et al., KDD 2018, "Deep Interest Network"); users whose impressions are all of one class are left out.
  `per_user_auc` gives the per-user values (for paired tests across models).
- `logloss`: the mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7].
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["auc", "gauc", "per_user_auc", "logloss", "binary_metrics"]

EPS = 1e-7


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D of one length, got {labels.shape} and {scores.shape}"
        )
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN")
    return labels, scores


def auc(labels, scores) -> float:
    labels, scores = _check(labels, scores)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks: a tie between a positive and a negative counts one half
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def per_user_auc(users, labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, their AUC, their number of impressions) for each user with both classes among their rows."""
    users = np.asarray(users)
    labels, scores = _check(labels, scores)
    order = np.argsort(users, kind="stable")
    users, labels, scores = users[order], labels[order], scores[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    kept, values, counts = [], [], []
    for start, end in zip(starts, ends, strict=True):
        value = auc(labels[start:end], scores[start:end])
        if not np.isnan(value):
            kept.append(users[start])
            values.append(value)
            counts.append(end - start)
    return np.asarray(kept, dtype=np.int64), np.asarray(values), np.asarray(counts, dtype=np.int64)


def gauc(users, labels, scores) -> float:
    _, values, counts = per_user_auc(users, labels, scores)
    return float(np.average(values, weights=counts)) if len(values) else float("nan")


def logloss(labels, probabilities) -> float:
    labels, p = _check(labels, probabilities)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def binary_metrics(users, labels, probabilities) -> dict[str, float]:
    """{"AUC", "GAUC", "logloss", "n", "positives"} of one task's predictions."""
    labels = np.asarray(labels)
    return {
        "AUC": auc(labels, probabilities),
        "GAUC": gauc(users, labels, probabilities),
        "logloss": logloss(labels, probabilities),
        "n": int(len(labels)),
        "positives": int(np.asarray(labels).sum()),
    }
