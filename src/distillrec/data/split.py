"""Splits: one `Interactions` -> `Split(train, valid, test)`.

Input: a dataset's `Interactions` (sorted by user, then time). Output: three disjoint `Interactions` over the
same id space whose union is the input (property-tested in `tests/test_split.py`).

- `leave_one_out`: per user, the last interaction (in time order; equal timestamps keep file order) is the
  test item and the one before it the validation item. Users with fewer than `min_length` interactions stay
  wholly in train and are never evaluated. The field's default protocol for sequential recommendation.
- `temporal`: one global cut in time: the latest `test_frac` of interactions are the test set, the
  `valid_frac` before them validation, the rest train (no user's future leaks into training).
- `random_ratio`: per user, a random `valid_frac` / `test_frac` of the interactions (seeded).
- `cold_item`: a random `item_frac` of the items that have interactions is held out of training entirely;
  their interactions go half to validation, half to test (split by item). For measuring how models rank items
  they never saw in training (the text teacher's strength).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distillrec.data.interactions import Interactions

SPLITS = ("leave_one_out", "temporal", "random_ratio", "cold_item")


@dataclass(frozen=True, eq=False)
class Split:
    train: Interactions
    valid: Interactions
    test: Interactions
    protocol: str
    params: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def test_history(self) -> Interactions:
        """What every model may read for a user at test time: train + validation."""
        return self.train.concat(self.valid)


def _from_labels(inter: Interactions, labels: np.ndarray, protocol: str, params: dict) -> Split:
    """labels: (n,) 0 = train, 1 = valid, 2 = test."""
    return Split(
        inter.select(labels == 0), inter.select(labels == 1), inter.select(labels == 2), protocol, params
    )


def leave_one_out(inter: Interactions, min_length: int = 3) -> Split:
    if min_length < 3:
        raise ValueError("leave_one_out needs min_length >= 3 (one train, one valid, one test interaction)")
    labels = np.zeros(len(inter), dtype=np.int8)
    indptr = inter.indptr
    lengths = np.diff(indptr)
    evaluated = np.flatnonzero(lengths >= min_length)
    labels[indptr[evaluated + 1] - 1] = 2
    labels[indptr[evaluated + 1] - 2] = 1
    return _from_labels(inter, labels, "leave_one_out", {"min_length": min_length})


def temporal(inter: Interactions, valid_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    _check_fracs(valid_frac, test_frac)
    order = np.argsort(inter.timestamps, kind="stable")
    n = len(inter)
    n_test, n_valid = int(round(n * test_frac)), int(round(n * valid_frac))
    labels = np.zeros(n, dtype=np.int8)
    labels[order[n - n_test :]] = 2
    labels[order[n - n_test - n_valid : n - n_test]] = 1
    return _from_labels(inter, labels, "temporal", {"valid_frac": valid_frac, "test_frac": test_frac})


def random_ratio(
    inter: Interactions, valid_frac: float = 0.1, test_frac: float = 0.1, seed: int = 0
) -> Split:
    _check_fracs(valid_frac, test_frac)
    rng = np.random.default_rng(seed)
    labels = np.zeros(len(inter), dtype=np.int8)
    indptr = inter.indptr
    for user in inter.active_users():
        start, stop = indptr[user], indptr[user + 1]
        size = stop - start
        n_test, n_valid = int(round(size * test_frac)), int(round(size * valid_frac))
        if size - n_test - n_valid < 1:  # keep at least one training interaction
            continue
        picked = start + rng.permutation(size)[: n_test + n_valid]
        labels[picked[:n_test]] = 2
        labels[picked[n_test:]] = 1
    params = {"valid_frac": valid_frac, "test_frac": test_frac, "seed": seed}
    return _from_labels(inter, labels, "random_ratio", params)


def cold_item(inter: Interactions, item_frac: float = 0.1, seed: int = 0) -> Split:
    if not 0 < item_frac < 1:
        raise ValueError(f"item_frac must be in (0, 1), got {item_frac}")
    rng = np.random.default_rng(seed)
    interacted = np.flatnonzero(inter.item_counts() > 0)
    held = rng.permutation(interacted)[: int(round(len(interacted) * item_frac))]
    valid_items, test_items = held[: len(held) // 2], held[len(held) // 2 :]
    labels = np.zeros(len(inter), dtype=np.int8)
    labels[np.isin(inter.items, valid_items)] = 1
    labels[np.isin(inter.items, test_items)] = 2
    return _from_labels(inter, labels, "cold_item", {"item_frac": item_frac, "seed": seed})


def _check_fracs(valid_frac: float, test_frac: float) -> None:
    if valid_frac < 0 or test_frac <= 0 or valid_frac + test_frac >= 1:
        raise ValueError(
            f"need 0 <= valid_frac, 0 < test_frac, valid_frac + test_frac < 1; got {valid_frac}, {test_frac}"
        )


def make_split(inter: Interactions, protocol: str, **params) -> Split:
    """Dispatch by name; an unknown name lists the valid ones."""
    functions = {
        "leave_one_out": leave_one_out,
        "temporal": temporal,
        "random_ratio": random_ratio,
        "cold_item": cold_item,
    }
    if protocol not in functions:
        raise ValueError(f"unknown split {protocol!r}; choose one of {list(functions)}")
    return functions[protocol](inter, **params)
