"""Drift weights: validation users weighted so their targets have the popularity mix expected one step later.

Under leave-one-out a user's validation target is their second-to-last item and the test target their last, so
the test targets come later in time and, on catalogues that keep adding items, fall on rarer items more often
(`benchmarks/target_drift.py`: on amazon-beauty 56% tail targets on the test against 50% on validation). A
setting picked on validation then favours the popular items more than the test rewards.

The shift can be read from the training data alone, one step earlier: drop each validated user's last training
item from the training interactions ("before"), and compare, by popularity bin in "before", those dropped items
with the validation targets that follow them. The ratio of the two shares of each bin is how the mix of a user's
next item moves in one step. Each validation user is then weighted by the ratio of their target's bin (its
training count), the importance weights of a label shift: the weighted validation targets have the mix one step
on, an estimate of the test's that reads no test item. The one-step-earlier shift is smaller than the real one
on the Amazon catalogues (it corrects part of the drift, not all of it).

Bins: 0 for items with no training interaction, then one per power of two of the training count (1, 2-3, 4-7,
...), the last bin open-ended; the counts of "before" are scaled by len(train) / len(before), so an item keeps
its bin from one count to the other. Each share gets one pseudo-count (no empty bin divides by zero). Input: the
training interactions and the validation targets; output: `(n_users,)` weights, 0 for users without a target, the
rest with mean 1.
"""

from __future__ import annotations

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import Evaluation
from distillrec.evaluate.slices import slice_members

__all__ = ["drift_weights", "popularity_bins", "weighted_summary"]

N_BINS = 12


def popularity_bins(counts: np.ndarray) -> np.ndarray:
    """(n_items,) bin of each item's training count: 0 when 0, else 1 + floor(log2(count)), at most N_BINS - 1."""
    counts = np.asarray(counts)
    bins = np.zeros(len(counts), dtype=np.int64)
    seen = counts > 0
    bins[seen] = 1 + np.floor(np.log2(counts[seen])).astype(np.int64)
    return np.minimum(bins, N_BINS - 1)


def _shares(items: np.ndarray, bins: np.ndarray) -> np.ndarray:
    return (np.bincount(bins[items], minlength=N_BINS) + 1.0) / (len(items) + N_BINS)


def drift_weights(train: Interactions, targets: Interactions) -> np.ndarray:
    """Each user's weight as in the module docstring: the one-step-earlier ratio of their target's bin."""
    users = np.unique(targets.users)
    lengths = np.diff(train.indptr)[users]
    stepped = users[lengths >= 2]  # a last training item with something before it
    if len(stepped) == 0:
        raise ValueError(
            "drift_weights: no target user has two training items; the one-step shift is unknown"
        )
    last_rows = train.indptr[stepped + 1] - 1
    keep = np.ones(len(train), dtype=bool)
    keep[last_rows] = False
    before = train.select(keep)
    before_bins = popularity_bins(before.item_counts() * (len(train) / len(before)))  # on the training scale
    # the validation target of each stepped user (the first, if several)
    first_target = targets.indptr[stepped]
    ratio = _shares(targets.items[first_target], before_bins) / _shares(train.items[last_rows], before_bins)
    weights = np.zeros(train.n_users)
    target_bins = popularity_bins(train.item_counts())[targets.items[targets.indptr[users]]]
    weights[users] = ratio[target_bins]
    weights[users] /= weights[users].mean()
    return weights


def weighted_summary(
    evaluation: Evaluation, targets: Interactions, train: Interactions, weights: np.ndarray
) -> dict[str, float | None]:
    """NDCG@10 over the evaluated users and over those with a tail target (`evaluate/slices.py`), each user
    counted with `weights[user]`; "tail" is None when no user has a tail target."""
    ndcg = evaluation.per_user["NDCG@10"]
    w = weights[evaluation.users]
    in_tail = slice_members(evaluation, targets, train)["tail"]
    tail = float(np.average(ndcg[in_tail], weights=w[in_tail])) if in_tail.any() else None
    return {"NDCG@10": float(np.average(ndcg, weights=w)), "tail": tail}
