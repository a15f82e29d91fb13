"""Slices of an evaluation: head vs long-tail targets, cold targets.

Input: an `Evaluation`, the `targets` it was computed on, and the training interactions. Output: the mean of each
per-user metric over the users whose held-out item falls in the slice (for leave-one-out: one target each).

- head: the most popular items that together account for `head_share` (default 20%) of the catalogue's
  interacted items, by training interaction count (the "popular 20%" convention of LLM-ESR and others);
- tail: every other item with at least one training interaction;
- cold: items with no training interaction at all.
A user with several targets belongs to a slice when any of their targets does.
"""

from __future__ import annotations

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import Evaluation


def item_groups(train: Interactions, head_share: float = 0.2) -> dict[str, np.ndarray]:
    """Boolean masks over items: 'head', 'tail', 'cold'."""
    counts = train.item_counts()
    interacted = np.flatnonzero(counts > 0)
    n_head = int(round(len(interacted) * head_share))
    order = interacted[np.argsort(-counts[interacted], kind="stable")]
    head = np.zeros(train.n_items, dtype=bool)
    head[order[:n_head]] = True
    cold = counts == 0
    return {"head": head, "tail": ~head & ~cold, "cold": cold}


def slice_members(
    evaluation: Evaluation, targets: Interactions, train: Interactions, head_share: float = 0.2
) -> dict[str, np.ndarray]:
    """{slice: (n_eval,) bool}: which of the evaluated users have a target in head, tail and cold."""
    target_matrix = targets.user_items[evaluation.users]  # (n_eval, n_items)
    return {
        name: np.asarray(target_matrix[:, mask].sum(axis=1)).ravel() > 0
        for name, mask in item_groups(train, head_share).items()
    }


def slice_summaries(
    evaluation: Evaluation, targets: Interactions, train: Interactions, head_share: float = 0.2
) -> dict[str, dict[str, float]]:
    """{slice: {"users": n, metric: mean}} for head, tail and cold targets (slices with no user are left out)."""
    out: dict[str, dict[str, float]] = {}
    for name, in_slice in slice_members(evaluation, targets, train, head_share).items():
        if not in_slice.any():
            continue
        out[name] = {"users": int(in_slice.sum())}
        out[name].update({m: float(v[in_slice].mean()) for m, v in evaluation.per_user.items()})
    return out
