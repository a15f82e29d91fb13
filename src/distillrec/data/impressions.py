"""Impressions with several behaviours (a click, a conversion): the data of multi-task (CTR/CVR) models.

Public data with real impressions and conversions is rare at a size two cores train, so `from_ratings` builds
them from a rating log, a stated proxy (as in ESMM's setting, Ma et al., SIGIR 2018):

- impressions: every rated item, plus `negatives_per_click` more per rated one, shown at the time of one of
  the user's own ratings drawn at random (so they fall in the user's own period), each an item the user has
  not rated by that time, drawn by its popularity at that time (which items a platform shows then): the item
  of a rating drawn from the latest `popularity_window` share of the log at or before that time (the first
  share of the log for the earliest times), or, one draw in ten, any item of the catalogue. Popularity over
  the whole log would show items before their time: an item rated mostly late would be shown early and
  unclicked, and a model would learn that clicks on it are rare just when they become common;
- click = the item is rated at that impression; conversion = its rating >= `conversion_rating` (4 by default),
  defined on clicks only: an impression not clicked never converts.

No label looks ahead: an unclicked impression may be of an item the user rates later (shown, ignored, found
again), as happens on a real platform; only the ratings up to its time decide what it can be.

A user's own logs bring their behaviours as they are: `Impressions` holds any number of 0/1 behaviour columns
(`click`, `purchase`, ...), each a condition on the one before it in `behaviours` (a purchase needs a click),
which `check_funnel` enforces. `read_impressions` reads them from a generic-format table (.tsv, .csv, .parquet)
with `user_id`, `item_id`, `timestamp` and one column per behaviour, the items those of a dataset (whose item
text a teacher reads); an error names the file, the line and what was expected.

`split_by_time` holds out each user's latest impressions (the last `test_share` as test, the `valid_share`
before them as validation): no training impression is later than a held-out one of the same user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillrec.data.errors import DataError
from distillrec.data.formats import LINE, read_table, require_columns
from distillrec.data.timestamps import parse_timestamps

__all__ = ["Impressions", "from_ratings", "split_by_time", "check_funnel", "concat", "read_impressions"]

_DRAWS = 20  # rounds of drawing again the unclicked impressions whose item the user had already rated
_ANY_ITEM = 0.1  # share of unclicked impressions drawn from the whole catalogue rather than by popularity


@dataclass(frozen=True, eq=False)
class Impressions:
    """Rows sorted by (user, time); `labels[name]` is a (n,) float32 0/1 array per behaviour, in funnel order."""

    users: np.ndarray  # (n,) int64
    items: np.ndarray  # (n,) int64
    timestamps: np.ndarray  # (n,) int64
    labels: dict[str, np.ndarray]
    n_users: int
    n_items: int

    def __len__(self) -> int:
        return len(self.users)

    @property
    def behaviours(self) -> list[str]:
        return list(self.labels)

    def take(self, rows: np.ndarray) -> Impressions:
        """The impressions at `rows` (in their order)."""
        labels = {name: values[rows] for name, values in self.labels.items()}
        return Impressions(
            self.users[rows], self.items[rows], self.timestamps[rows], labels, self.n_users, self.n_items
        )


def concat(parts: list[Impressions]) -> Impressions:
    """The impressions of `parts` (of one dataset and one set of behaviours) together, sorted by (user, time)."""
    first = parts[0]
    if any(
        p.behaviours != first.behaviours or (p.n_users, p.n_items) != (first.n_users, first.n_items)
        for p in parts
    ):
        raise ValueError("impressions to join must share their behaviours, users and items")
    users = np.concatenate([p.users for p in parts])
    times = np.concatenate([p.timestamps for p in parts])
    order = np.lexsort((times, users))
    labels = {name: np.concatenate([p.labels[name] for p in parts])[order] for name in first.behaviours}
    items = np.concatenate([p.items for p in parts])[order]
    return Impressions(users[order], items, times[order], labels, first.n_users, first.n_items)


def check_funnel(impressions: Impressions) -> None:
    """An error naming the behaviour and a row where a later behaviour happens without the one before it, or a
    label is not 0/1."""
    names = impressions.behaviours
    for name in names:
        values = impressions.labels[name]
        bad = np.flatnonzero((values != 0) & (values != 1))
        if len(bad):
            raise ValueError(
                f"behaviour {name!r}: row {int(bad[0])} is {float(values[bad[0]])}, expected 0 or 1"
            )
    broken = _funnel_break(impressions.labels, names)
    if broken is not None:
        row, before, after = broken
        raise ValueError(
            f"behaviour {after!r} is 1 without {before!r} at row {row}: each behaviour is a step "
            f"of the funnel {names}"
        )


def _funnel_break(labels: dict[str, np.ndarray], names: list[str]) -> tuple[int, str, str] | None:
    """(first row, the behaviour before, the behaviour after) where a behaviour is 1 and the one before it 0."""
    for before, after in zip(names, names[1:], strict=False):
        bad = np.flatnonzero((labels[after] == 1) & (labels[before] == 0))
        if len(bad):
            return int(bad[0]), before, after
    return None


def from_ratings(
    users: np.ndarray,
    items: np.ndarray,
    timestamps: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    negatives_per_click: float = 3.0,
    conversion_rating: float = 4.0,
    seed: int = 0,
    popularity_window: float = 0.05,
) -> Impressions:
    """Impressions from a rating log (see the module docstring); the arrays are the log's rows, any order."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    timestamps, ratings = np.asarray(timestamps, dtype=np.int64), np.asarray(ratings, dtype=np.float64)
    if not len(users) == len(items) == len(timestamps) == len(ratings):
        raise ValueError("users, items, timestamps and ratings must have one length")
    if negatives_per_click < 0:
        raise ValueError(f"negatives_per_click must be >= 0, got {negatives_per_click}")
    if not 0 < popularity_window <= 1:
        raise ValueError(f"popularity_window is a share of the log in (0, 1], got {popularity_window}")
    rng = np.random.default_rng(seed)
    by_time = np.argsort(timestamps, kind="stable")
    log_times, log_items = timestamps[by_time], items[by_time]
    window = max(1, round(popularity_window * len(log_times)))
    order = np.lexsort((timestamps, users))
    users, items, timestamps, ratings = users[order], items[order], timestamps[order], ratings[order]
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    wanted = np.round(negatives_per_click * counts).astype(np.int64)
    negative_users = np.repeat(np.arange(n_users), wanted)
    # each unclicked impression at the time of one of its user's ratings, drawn at random
    shown_at = starts[negative_users] + (rng.random(len(negative_users)) * counts[negative_users]).astype(
        np.int64
    )
    negative_times = timestamps[shown_at]
    # the first time each (user, item) was rated: an item counts as seen from then on
    keys = users * n_items + items
    first_keys, first_rows = np.unique(keys, return_index=True)
    first_times = timestamps[first_rows]
    negative_items = np.empty(len(negative_users), dtype=np.int64)
    pending = np.arange(len(negative_users))
    for round_ in range(_DRAWS):
        # the last rounds draw from the whole catalogue: the user may have rated every popular item of the time
        any_item = rng.random(len(pending)) < (_ANY_ITEM if round_ < _DRAWS // 2 else 1.0)
        negative_items[pending] = np.where(
            any_item,
            rng.integers(0, n_items, len(pending)),
            _popular_at(negative_times[pending], log_times, log_items, window, rng),
        )
        pending = pending[
            _seen_by(
                negative_users[pending],
                negative_items[pending],
                negative_times[pending],
                first_keys,
                first_times,
                n_items,
            )
        ]
        if len(pending) == 0:
            break
    keep = np.ones(len(negative_users), dtype=bool)
    keep[pending] = False  # a user who has rated nearly everything: fewer unclicked impressions
    negative_users, negative_items, negative_times = (
        negative_users[keep],
        negative_items[keep],
        negative_times[keep],
    )
    all_users = np.concatenate([users, negative_users])
    all_items = np.concatenate([items, negative_items])
    all_times = np.concatenate([timestamps, negative_times])
    click = np.concatenate([np.ones(len(users)), np.zeros(len(negative_users))]).astype(np.float32)
    conversion = np.concatenate([ratings >= conversion_rating, np.zeros(len(negative_users), bool)])
    # at equal times in random order: an unclicked impression shares its time with a rating, and clicks first
    # would put the clicks of a time in training and its unclicked impressions in the held-out part
    order = np.lexsort((rng.random(len(all_users)), all_times, all_users))
    labels = {"click": click[order], "conversion": conversion.astype(np.float32)[order]}
    return Impressions(all_users[order], all_items[order], all_times[order], labels, n_users, n_items)


def _popular_at(times, log_times, log_items, window: int, rng: np.random.Generator) -> np.ndarray:
    """One item per time: that of a rating drawn uniformly among the `window` latest ratings of the log at or
    before it (the first `window` ratings for a time before the log's `window`-th)."""
    end = np.maximum(np.searchsorted(log_times, times, side="right"), min(window, len(log_times)))
    start = np.maximum(end - window, 0)
    return log_items[start + (rng.random(len(times)) * (end - start)).astype(np.int64)]


def _seen_by(users, items, times, first_keys, first_times, n_items) -> np.ndarray:
    """Positions of the (user, item, time) rows whose item the user had rated at or before that time."""
    keys = users * n_items + items
    at = np.minimum(np.searchsorted(first_keys, keys), len(first_keys) - 1)
    return np.flatnonzero((first_keys[at] == keys) & (first_times[at] <= times))


def split_by_time(
    impressions: Impressions, valid_share: float = 0.1, test_share: float = 0.1
) -> tuple[Impressions, Impressions, Impressions]:
    """(train, valid, test): each user's impressions in time order, the last `test_share` held out as test and
    the `valid_share` before them as validation (rounded per user; a user with fewer than 3 impressions is
    all train)."""
    if not (0 < valid_share < 1 and 0 < test_share < 1 and valid_share + test_share < 1):
        raise ValueError(
            f"valid_share and test_share in (0, 1) with a sum below 1, got {valid_share}, {test_share}"
        )
    counts = np.bincount(impressions.users, minlength=impressions.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(impressions)) - starts[impressions.users]  # 0 .. count - 1 within the user
    count = counts[impressions.users]
    n_test = np.where(count >= 3, np.maximum(1, np.round(test_share * count)), 0)
    n_valid = np.where(count >= 3, np.maximum(1, np.round(valid_share * count)), 0)
    test = position >= count - n_test
    valid = ~test & (position >= count - n_test - n_valid)
    train = ~test & ~valid
    return tuple(impressions.take(np.flatnonzero(part)) for part in (train, valid, test))


def read_impressions(
    path, item_ids: np.ndarray, behaviours: list[str], timestamp_format: str = "auto"
) -> tuple[Impressions, np.ndarray]:
    """(impressions, user ids) from a table with `user_id`, `item_id`, `timestamp` and the 0/1 columns
    `behaviours` (funnel order: each needs the one before it). Items are indexed as in `item_ids` (a dataset's:
    an item it lacks is an error), users by their sorted ids (the second value: the id of each user index)."""
    path = Path(path)
    if len(behaviours) < 1 or len(set(behaviours)) != len(behaviours):
        raise ValueError(f"behaviours must name distinct columns, got {behaviours}")
    frame = read_table(path)
    require_columns(frame, path, ["user_id", "item_id", "timestamp", *behaviours])
    lines = frame[LINE].to_numpy()
    index = {str(item): i for i, item in enumerate(item_ids)}
    items = frame["item_id"].str.strip().map(index)
    if items.isna().any():
        row = int(np.flatnonzero(items.isna().to_numpy())[0])
        raise DataError(
            path, f"item_id {frame['item_id'].iloc[row]!r} is not an item of the dataset", int(lines[row])
        )
    user_ids, users = np.unique(frame["user_id"].str.strip().to_numpy(dtype=str), return_inverse=True)
    seconds, _ = parse_timestamps(frame, path, "timestamp", timestamp_format)
    labels = {}
    for name in behaviours:
        text = frame[name].str.strip()
        bad = ~text.isin(["0", "1", "0.0", "1.0"]).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                path, f"behaviour {name!r} must be 0 or 1, got {text.iloc[row]!r}", int(lines[row])
            )
        labels[name] = text.astype(float).to_numpy(dtype=np.float32)
    broken = _funnel_break(labels, behaviours)
    if broken is not None:
        row, before, after = broken
        raise DataError(
            path,
            f"{after!r} is 1 where {before!r} is 0: each behaviour needs the one before it",
            int(lines[row]),
        )
    order = np.lexsort((seconds, users))
    impressions = Impressions(
        users[order].astype(np.int64),
        items.to_numpy(dtype=np.int64)[order],
        seconds[order],
        {name: values[order] for name, values in labels.items()},
        len(user_ids),
        len(item_ids),
    )
    return impressions, user_ids
