"""Full-ranking evaluation: a model and held-out interactions -> per-user metrics.

Input: a fitted model (`score(users, history)`), the `history` each user may read (train for validation,
train + valid for test) and `targets` (the held-out interactions). Output: `Evaluation` with per-user metric
arrays, their means and each user's top-K list.

Protocol (Krichene & Rendle 2020: sampled metrics mislead): every item of the catalogue is ranked, except the
user's history items, which are masked (a history item that is also a target stays rankable). Ties are broken
against the target: a target ranks below every other item with an equal score, and below targets of equal
score with a smaller index, so a model that gives all items one score earns no credit. Users are scored in
batches of at most `batch_size` users, fewer when `batch_size * n_items` would pass the memory budget
(`memory_mb`, counting `BYTES_PER_SCORE` per score: the model's scores, their copy, the partial sort's indices),
so evaluating over a catalogue of 100K or 1M items stays within it. Sampled-negative evaluation exists as an option
(`n_negatives`), never the default, and is labelled in `Evaluation.protocol`.

Cost: ranks are counted, not sorted: each (user, target) pair is compared once with the user's score row,
n_targets x n_items comparisons in all; the top-K list comes from a partial sort. Scores are copied before
masking, so a model may return a view of its own state. Outside the model, evaluating all 22k users of Amazon
Beauty over 12k items takes about 1.5 s of CPU. `top_items` lists masked items (score -inf) only when a user
has fewer than K unmasked items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from distillrec.data.interactions import Interactions
from distillrec.evaluate.metrics import all_metrics

DEFAULT_KS = (10, 20)
BYTES_PER_SCORE = 20  # float32 scores from the model and their copy, int64 indices of the partial sort, slack


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
    memory_mb: float = 512.0,
) -> Evaluation:
    _check_arguments(history, targets, ks, batch_size, n_negatives)
    batch_size = users_per_batch(batch_size, history.n_items, memory_mb)
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
        # A copy: masking writes -inf in place, and the model may have returned a view of its own state.
        scores = np.array(model.score(batch, history), dtype=np.float32, order="C", copy=True)
        if scores.shape != (len(batch), history.n_items):
            raise ValueError(
                f"score() returned shape {scores.shape}, expected {(len(batch), history.n_items)}"
            )
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN makes its row sum NaN (so may inf - inf)
            suspect = not np.isfinite(scores.sum(axis=1)).all()
        nan_rows = np.flatnonzero(np.isnan(scores).any(axis=1)) if suspect else []
        if len(nan_rows):
            raise ValueError(
                f"{type(model).__name__}.score() returned NaN scores for {len(nan_rows)} user(s) of this batch, "
                f"e.g. user {int(batch[nan_rows[0]])}"
            )
        target_rows = target_matrix[batch]
        history_rows = history_matrix[batch]
        seen = history_rows - history_rows.multiply(target_rows)  # history minus targets
        seen.eliminate_zeros()
        seen_coo = seen.tocoo()
        scores[seen_coo.row, seen_coo.col] = -np.inf
        if n_negatives is not None:
            _keep_sampled(scores, seen, target_rows, n_negatives, rng)
        ranks_parts.append(_target_ranks(scores, target_rows))
        top_parts.append(top_k(scores, min(max_k, history.n_items)))
        bar.update(len(batch))
    bar.close()
    width = max(p.shape[1] for p in ranks_parts)
    ranks = np.concatenate(
        [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.inf) for p in ranks_parts]
    )
    n_targets = np.diff(target_matrix.indptr)[users]
    protocol = "full" if n_negatives is None else f"sampled ({n_negatives} negatives, NOT full ranking)"
    return Evaluation(
        users, all_metrics(ranks, n_targets, ks), np.concatenate(top_parts), history.n_items, protocol
    )


def users_per_batch(batch_size: int, n_items: int, memory_mb: float) -> int:
    """At most `batch_size` users, and no more than a (users, n_items) batch of scores fits in `memory_mb`
    (at least one user)."""
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb}")
    return max(1, min(batch_size, int(memory_mb * 2**20 // (BYTES_PER_SCORE * max(1, n_items)))))


def _check_arguments(history: Interactions, targets: Interactions, ks, batch_size: int, n_negatives) -> None:
    if (history.n_users, history.n_items) != (targets.n_users, targets.n_items):
        raise ValueError(
            f"history is over {history.n_users} users x {history.n_items} items but targets over "
            f"{targets.n_users} x {targets.n_items}; both must come from one split"
        )
    if len(ks) == 0 or any(int(k) != k or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_negatives is not None and n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1 (or None for full ranking), got {n_negatives}")


_CHUNK_ELEMENTS = 1 << 22  # bounds the (chunk, n_items) comparison buffer to a few MB


def _target_ranks(scores: np.ndarray, target_rows) -> np.ndarray:
    """(batch, max_targets) 1-based ranks of each user's targets in one tie-broken list; padding = inf.

    rank(t) = #(non-target items scoring >= s_t) + #(targets ahead of t) + 1, where a target is ahead of t if
    it scores higher, or equally with a smaller item index. The first term is counted once per
    (user, target) pair against the full row, so the cost is n_pairs x n_items with no padding. NumPy, not
    torch: its compare-and-count is over 10x faster here (torch reduces a bool tensor slowly on CPU).
    """
    n_rows, n_items = scores.shape
    n_t = np.diff(target_rows.indptr)  # (batch,) >= 1 for every evaluated user
    width = int(n_t.max())
    valid = np.arange(width)[None, :] < n_t[:, None]  # (batch, T)
    idx = np.zeros((n_rows, width), dtype=np.int64)
    idx[valid] = target_rows.indices  # row-major order = the pairs' order in CSR
    s_t = np.take_along_axis(scores, idx, axis=1)  # (batch, T)

    # Items (targets included) scoring >= each target, one (user, target) pair at a time.
    pair_rows = np.repeat(np.arange(n_rows), n_t)  # (n_pairs,)
    pair_scores = s_t[valid]  # (n_pairs,), same order as pair_rows
    n_pairs = len(pair_rows)
    at_least = np.empty(n_pairs, dtype=np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n_items))
    one_per_row = n_pairs == n_rows  # leave-one-out: pair p is row p, no gather needed
    for lo in range(0, n_pairs, chunk):
        hi = min(lo + chunk, n_pairs)
        rows = scores[lo:hi] if one_per_row else scores[pair_rows[lo:hi]]  # (chunk, n_items)
        at_least[lo:hi] = np.count_nonzero(rows >= pair_scores[lo:hi, None], axis=1)
    at_least_t = np.zeros((n_rows, width), dtype=np.int64)
    at_least_t[valid] = at_least

    # Among the user's own targets: how many score >= t (t included), how many are ahead of t.
    other, this = s_t[:, None, :], s_t[:, :, None]  # (batch, 1, T), (batch, T, 1)
    mask = valid[:, None, :]
    t_ge = ((other >= this) & mask).sum(-1)
    t_ahead = (((other > this) | ((other == this) & (idx[:, None, :] < idx[:, :, None]))) & mask).sum(-1)
    ranks = (at_least_t - t_ge + t_ahead + 1).astype(np.float64)
    ranks[~valid] = np.inf
    return ranks


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(batch, k) indices of each row's k best items, best first; equal scores in index order.

    torch.topk selects (faster than NumPy's argpartition here); the lexsort then fixes the order of ties.
    """
    values, part = torch.topk(torch.from_numpy(scores), k, dim=1)  # (batch, k) each
    values, part = values.numpy(), part.numpy()
    order = np.lexsort((part, -values), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _keep_sampled(scores: np.ndarray, seen, target_rows, n_negatives: int, rng: np.random.Generator) -> None:
    """Sampled protocol: keep targets + `n_negatives` random unseen items per user; the rest score -inf.

    Negatives are the `n_negatives` smallest of uniform random keys over the eligible (unseen, non-target)
    items: a uniform sample without replacement, drawn for the whole batch at once.
    """
    n_rows, n_items = scores.shape
    keys = rng.random((n_rows, n_items), dtype=np.float32)  # (batch, n_items)
    for matrix in (seen, target_rows):
        coo = matrix.tocoo()
        keys[coo.row, coo.col] = np.inf
    keep = np.zeros(scores.shape, dtype=bool)
    if n_negatives < n_items:
        picked = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]  # (batch, n_negatives)
    else:
        picked = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    eligible = np.isfinite(np.take_along_axis(keys, picked, axis=1))  # fewer eligible than asked: keep all
    np.put_along_axis(keep, picked, eligible, axis=1)
    targets = target_rows.tocoo()
    keep[targets.row, targets.col] = True
    scores[~keep] = -np.inf
