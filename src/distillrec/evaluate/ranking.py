"""Full-ranking evaluation: a model and held-out interactions -> per-user metrics.

Input: a fitted model (`score(users, history)`), the `history` each user may read (train for validation,
train + valid for test) and `targets` (the held-out interactions). Output: `Evaluation` with per-user metric
arrays, their means and each user's top-K list.

Protocol (Krichene & Rendle 2020: sampled metrics mislead): every item of the catalogue is ranked, except the
user's history items, which are masked (a history item that is also a target stays rankable). Ties are broken
against the target: a target ranks below every other item with an equal score, and below targets of equal
score with a smaller index, so a model that gives all items one score earns no credit. Users are scored in
batches, so memory stays bounded by `batch_size * n_items`. Sampled-negative evaluation exists as an option
(`n_negatives`), never the default, and is labelled in `Evaluation.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from distillrec.data.interactions import Interactions
from distillrec.evaluate.metrics import all_metrics

DEFAULT_KS = (10, 20)


@dataclass(eq=False)
class Evaluation:
    users: np.ndarray  # (n_eval,) user indices
    per_user: dict[str, np.ndarray]  # metric -> (n_eval,)
    top_items: np.ndarray  # (n_eval, max_k) each user's top-K items, best first
    n_items: int
    protocol: str = "full"
    summary: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.summary = {name: float(values.mean()) for name, values in self.per_user.items()}
        for k in sorted({int(n.split("@")[1]) for n in self.per_user if "@" in n}):
            if k <= self.top_items.shape[1]:
                covered = np.unique(self.top_items[:, :k])
                self.summary[f"Coverage@{k}"] = len(covered) / self.n_items


def evaluate(
    model,
    history: Interactions,
    targets: Interactions,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 256,
    n_negatives: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Evaluation:
    users = targets.active_users()
    max_k = max(ks)
    if len(users) == 0:
        raise ValueError("no user has a held-out interaction to evaluate")
    ranks_parts, top_parts = [], []
    rng = np.random.default_rng(seed)
    history_matrix = history.user_items
    target_matrix = targets.user_items
    bar = tqdm(total=len(users), desc="evaluate", unit="user", disable=not progress, leave=False)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = np.asarray(model.score(batch, history), dtype=np.float32)
        if scores.shape != (len(batch), history.n_items):
            raise ValueError(f"score() returned shape {scores.shape}, expected {(len(batch), history.n_items)}")
        if np.isnan(scores).any():
            raise ValueError(f"{type(model).__name__}.score() returned NaN scores")
        target_rows = target_matrix[batch]
        seen = history_matrix[batch] - history_matrix[batch].multiply(target_rows)  # history minus targets
        scores_t = torch.from_numpy(scores)
        seen_coo = seen.tocoo()
        scores_t[seen_coo.row, seen_coo.col] = -torch.inf
        if n_negatives is not None:
            _keep_sampled(scores_t, seen, target_rows, n_negatives, rng)
        ranks_parts.append(_target_ranks(scores_t, target_rows))
        top_parts.append(torch.topk(scores_t, min(max_k, history.n_items), dim=1).indices.numpy())
        bar.update(len(batch))
    bar.close()
    width = max(p.shape[1] for p in ranks_parts)
    ranks = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.inf) for p in ranks_parts])
    n_targets = np.diff(target_matrix.indptr)[users]
    protocol = "full" if n_negatives is None else f"sampled ({n_negatives} negatives, NOT full ranking)"
    return Evaluation(users, all_metrics(ranks, n_targets, ks), np.concatenate(top_parts), history.n_items, protocol)


def _target_ranks(scores: torch.Tensor, target_rows) -> np.ndarray:
    """(batch, max_targets) 1-based ranks of each user's targets; padding = inf."""
    n_t = np.diff(target_rows.indptr)
    width = int(n_t.max())
    target_idx = np.zeros((len(n_t), width), dtype=np.int64)
    valid = np.arange(width)[None, :] < n_t[:, None]
    target_idx[valid] = target_rows.indices
    idx = torch.from_numpy(target_idx)
    valid_t = torch.from_numpy(valid)
    s_t = torch.gather(scores, 1, idx)  # (batch, T)
    ranks = torch.empty_like(s_t, dtype=torch.float64)
    # Bound memory of the (rows, T, n_items) comparison.
    rows_per_chunk = max(1, int(4e7 // max(1, width * scores.shape[1])))
    for lo in range(0, scores.shape[0], rows_per_chunk):
        hi = lo + rows_per_chunk
        s, st, v, ix = scores[lo:hi], s_t[lo:hi], valid_t[lo:hi], idx[lo:hi]
        at_least = (s[:, None, :] >= st[:, :, None]).sum(-1)  # items with score >= target's, incl. targets
        t_ge = ((st[:, None, :] >= st[:, :, None]) & v[:, None, :]).sum(-1)  # targets with score >= target's
        t_ahead = (
            ((st[:, None, :] > st[:, :, None]) | ((st[:, None, :] == st[:, :, None]) & (ix[:, None, :] < ix[:, :, None])))
            & v[:, None, :]
        ).sum(-1)
        ranks[lo:hi] = (at_least - t_ge + t_ahead + 1).double()
    ranks[~valid_t] = torch.inf
    return ranks.numpy()


def _keep_sampled(scores: torch.Tensor, seen, target_rows, n_negatives: int, rng: np.random.Generator) -> None:
    """Sampled protocol: keep targets + `n_negatives` random unseen items per user; the rest score -inf."""
    n_items = scores.shape[1]
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for row in range(scores.shape[0]):
        excluded = np.union1d(seen[row].indices, target_rows[row].indices)
        pool = np.setdiff1d(np.arange(n_items), excluded, assume_unique=True)
        picked = rng.choice(pool, size=min(n_negatives, len(pool)), replace=False)
        keep[row, torch.from_numpy(picked)] = True
        keep[row, torch.from_numpy(target_rows[row].indices.astype(np.int64))] = True
    scores[~keep] = -torch.inf
