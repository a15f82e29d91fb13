"""Each user's text profile at a point in time: the mean language-model vector of the items the user clicked
strictly before it, in the training impressions.

The teacher reads a user's profile beside the item's own text. A profile over all of a user's training clicks
would tell the teacher, on a clicked training impression, that its own item was clicked (and which items were
clicked later in training): the label leaks into the feature, the teacher's training fit flatters it and the soft
labels it hands the students are inflated. So a training impression reads the profile of the clicks before its
time (`at`), and held-out impressions and catalogue scoring read the profile of every training click (`final`),
all of which precede them.
"""

from __future__ import annotations

import numpy as np

from distillrec.data.impressions import Impressions

__all__ = ["ClickProfiles"]


class ClickProfiles:
    def __init__(self, train: Impressions, item_vectors: np.ndarray, click: np.ndarray) -> None:
        """`click`: the training impressions' click labels (0/1); `item_vectors`: (n_items, d)."""
        rows = np.flatnonzero(click == 1)
        order = rows[np.lexsort((train.timestamps[rows], train.users[rows]))]
        self.users, self.times = train.users[order], train.timestamps[order]
        self.n_users, self.dim = train.n_users, item_vectors.shape[1]
        self.starts = np.searchsorted(self.users, np.arange(train.n_users + 1))
        self.t_min = int(self.times.min()) if len(order) else 0
        self.span = (int(self.times.max()) if len(order) else 0) - self.t_min + 2
        self.keys = self._key(self.users, self.times)
        # per user, the running sum of its clicked items' vectors (in float64, kept in float32: within a user
        # the sums stay small, so the float32 difference of two of them is exact enough)
        running = np.cumsum(item_vectors[train.items[order]].astype(np.float64), axis=0)
        base = np.where(self.starts[self.users] > 0, self.starts[self.users] - 1, -1)
        before = np.where(base[:, None] >= 0, running[np.maximum(base, 0)], 0.0)
        self.sums = (running - before).astype(np.float32)  # row j: the user's clicks up to and including j

    def _key(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(times, dtype=np.int64) - self.t_min, 0, self.span - 1)
        return np.asarray(users, dtype=np.int64) * self.span + clipped

    def at(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(n, d): each (user, time)'s mean vector of the user's training clicks strictly before that time (zeros
        where there is none)."""
        users = np.asarray(users, dtype=np.int64)
        position = np.searchsorted(self.keys, self._key(users, times), side="left")  # first click at or after
        count = position - self.starts[users]
        out = np.zeros((len(users), self.dim), dtype=np.float32)
        some = count > 0
        out[some] = self.sums[position[some] - 1] / count[some, None]
        return out

    def final(self) -> np.ndarray:
        """(n_users, d): the mean vector of each user's training clicks (zeros for a user with none)."""
        users = np.arange(self.n_users)
        return self.at(users, np.full(self.n_users, self.t_min + self.span - 1))
